"""Experiment configuration: one TOML file per experiment, command-line overrides, saved with the artifacts.

Unknown sections or keys are refused (a typo must not silently fall back to a default).
"""

from __future__ import annotations

import copy
import math
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import tomli_w

from tinyae.errors import UserError


@dataclass
class DataConfig:
    source: str = "synthetic"  # synthetic | csv | ucr | a dataset name (basicmotions, daphnet)
    paths: list[str] = field(default_factory=list)  # CSV files/globs, each cut by time into train|val|test
    train: list[str] = field(default_factory=list)  # CSV files/globs for training (cut into train|val)
    test: list[str] = field(default_factory=list)  # CSV files/globs tested whole (normal and faulty)
    file_labels: dict[str, str] = field(default_factory=dict)  # path or glob -> label of the whole file
    channels: list[str] = field(default_factory=list)  # CSV column names; empty = numeric non-index columns
    timestamp: str = ""  # CSV timestamp column; "" = a column named like a timestamp, "none" = no column
    timestamp_unit: str = "auto"  # auto | s | ms | us | ns (numeric timestamps)
    timestamp_format: str = ""  # strptime format of date-time timestamps; "" = ISO 8601
    label: str = ""  # CSV label column; "" = a column named like a label, "none" = no column
    normal: list[str] = field(default_factory=list)  # label values that mean "normal" (a scalar is fine)
    sample_rate_hz: float = 0.0  # 0 = from the timestamps / the data set
    gaps: str = "refuse"  # refuse | split: what a gap in the timestamps does
    val_fraction: float = 0.2  # of each training recording, cut by time
    test_fraction: float = 0.2  # of each data.paths recording, cut by time (unused with data.test)
    seed: int = 0


@dataclass
class WindowConfig:
    length: int = 64
    hop: int = 32


@dataclass
class NormalizationConfig:
    method: str = "zscore"  # zscore | minmax | robust (median / IQR)
    outliers: str = "clip"  # clip | refuse | keep: training samples beyond outlier_iqr
    outlier_iqr: float = 10.0  # a sample this many IQRs from its channel's median is an outlier; 0 = off
    min_levels: int = 16  # warn when a channel's normal data use fewer int8 input levels


@dataclass
class FrontendConfig:
    """What the network sees of a window (train/frontend/spec.py validates it against the window)."""

    kinds: list[str] = field(default_factory=lambda: ["raw"])  # any of raw, spectral, stats
    fft_length: int = 0  # spectral: power of two <= window.length; 0 = the largest that fits
    window_fn: str = "hann"  # spectral: hann | hamming | rect
    spectrum: str = "power"  # spectral: power | magnitude
    log: bool = True  # spectral: natural log of each band, floored at log_floor
    log_floor: float = 0.0  # 0 = per band, from the training windows; else squared/plain sensor units
    bins: int = 0  # spectral: average the kept FFT bins into this many bands; 0 = one per bin
    freq_min_hz: float = 0.0  # spectral: lowest frequency kept (needs the sample rate); DC never kept
    freq_max_hz: float = 0.0  # spectral: highest frequency kept; 0 = Nyquist
    stats: list[str] = field(
        default_factory=lambda: ["mean", "rms", "std", "p2p", "crest", "skew", "kurtosis", "zcr"]
    )


@dataclass
class ModelConfig:
    hidden: list[int] = field(default_factory=lambda: [64])
    latent: int = 8
    activation: str = "relu"  # relu | relu6 | linear
    output_activation: str = "linear"  # linear | sigmoid | tanh
    variant: str = "plain"  # plain | denoising | sparse | contractive | vae
    noise_std: float = 0.2  # denoising: std of the Gaussian input corruption (normalized units)
    sparsity_l1: float = 1e-3  # sparse: L1 penalty on the latent activations
    contractive: float = 1e-3  # contractive: weight of the encoder-Jacobian Frobenius penalty
    kl_weight: float = 1e-3  # vae: weight of the KL divergence of the Gaussian latent from N(0, I)


@dataclass
class TrainConfig:
    epochs: int = 80
    batch_size: int = 64
    learning_rate: float = 2e-3
    patience: int = 10
    loss: str = "mse"  # mse | mae (also the score definition)
    seed: int = 0


@dataclass
class QuantizeConfig:
    representative_windows: int = 500
    # FULLY_CONNECTED weight scales: auto (per-channel only when every target computes it) |
    # per_channel | per_tensor. train/boards.py knows what each target's TFLM library supports.
    weights: str = "auto"
    targets: list[str] = field(default_factory=list)  # board envs / mps2_an386; empty = all of them
    # the int8 ranges cover the representative windows and, above 1, those windows times headroom
    # (normalized units): anomalies far outside the normal range then saturate later (docs/skab.md)
    headroom: float = 1.0


@dataclass
class ThresholdConfig:
    method: str = "percentile"  # percentile | mean_std | target_fpr | best_f1
    percentile: float = 99.5
    k_std: float = 3.0
    factor: float = 1.0  # percentile / mean_std: the threshold is that value times this (a control limit)
    target_fpr: float = 0.005  # target_fpr: highest false-alarm rate allowed on normal validation windows


@dataclass
class CalibrationConfig:
    """On-site calibration (train/calibration/): what the device may learn from its first normal windows."""

    windows: int = 128  # N: windows per phase at most (the device's buffers are sized for it at build time)
    offsets: bool = True  # learn per-channel offsets of the front-end's input (the raw samples)
    scales: bool = False  # also learn per-channel scales
    threshold: str = "model"  # model (threshold.method; best_f1 -> percentile) | percentile | mean_std | none
    max_shift_std: float = 3.0  # |site mean - training mean| <= this x training std, per channel
    max_scale_ratio: float = 2.0  # site std / training std within [1/r, r], per channel
    # at most this fraction of the scored calibration windows above the factory threshold (the trained
    # distribution's upper percentile); more means the data were not normal operation
    max_over_fraction: float = 0.5
    max_threshold_ratio: float = 4.0  # calibrated threshold within [T/r, T*r] of the factory threshold T
    # [k, n]: refuse a calibration when k of any n consecutive scored windows are above the factory
    # threshold (an anomalous stretch, e.g. a recording that ends in a fault); [] = [2m + 1, 4m] with
    # m = ceil(window.length / window.hop), n at most 32
    max_over_stretch: list[int] = field(default_factory=list)


@dataclass
class DecisionConfig:
    k: int = 1
    n: int = 1


@dataclass
class ArenaConfig:
    margin_bytes: int = 1024  # added to the host-measured TFLM arena


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    window: WindowConfig = field(default_factory=WindowConfig)
    frontend: FrontendConfig = field(default_factory=FrontendConfig)
    normalization: NormalizationConfig = field(default_factory=NormalizationConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    quantize: QuantizeConfig = field(default_factory=QuantizeConfig)
    threshold: ThresholdConfig = field(default_factory=ThresholdConfig)
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)
    decision: DecisionConfig = field(default_factory=DecisionConfig)
    arena: ArenaConfig = field(default_factory=ArenaConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, path: Path) -> None:
        path.write_text(tomli_w.dumps(self.to_dict()))


THRESHOLD_METHODS = ("percentile", "mean_std", "target_fpr", "best_f1")
CHOICES = {
    ("data", "timestamp_unit"): ("auto", "s", "ms", "us", "ns"),
    ("data", "gaps"): ("refuse", "split"),
    ("normalization", "method"): ("zscore", "minmax", "robust"),
    ("normalization", "outliers"): ("clip", "refuse", "keep"),
    ("frontend", "window_fn"): ("hann", "hamming", "rect"),
    ("frontend", "spectrum"): ("power", "magnitude"),
    ("model", "activation"): ("relu", "relu6", "linear"),
    ("model", "output_activation"): ("linear", "sigmoid", "tanh"),
    ("model", "variant"): ("plain", "denoising", "sparse", "contractive", "vae"),
    ("train", "loss"): ("mse", "mae"),
    ("threshold", "method"): THRESHOLD_METHODS,
    ("quantize", "weights"): ("auto", "per_channel", "per_tensor"),
    ("calibration", "threshold"): ("model", "percentile", "mean_std", "none"),
}


def _item(item_type: type, v: Any) -> Any:
    """One list item: numbers given for text keep their TOML spelling (1 -> "1", 1.5 -> "1.5")."""
    if item_type is str:
        if isinstance(v, bool | list | dict):
            raise ValueError
        return v if isinstance(v, str) else repr(v)
    if isinstance(v, float) and item_type is int and not v.is_integer():
        raise ValueError
    return item_type(v)


def _coerce(value: Any, current: Any, where: str) -> Any:
    """Convert a TOML or command-line value to the type of the default."""
    try:
        if isinstance(current, bool):
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0"):
                    raise ValueError
                return value.lower() in ("true", "1")
            return bool(value)
        if isinstance(current, int):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        if isinstance(current, float):
            return float(value)
        if isinstance(current, list):
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            elif isinstance(value, int | float) and not isinstance(value, bool):
                value = [value]  # a scalar is a list of one (data.normal = 1)
            if not isinstance(value, list):
                raise ValueError
            item_type = type(current[0]) if current else str
            return [_item(item_type, v) for v in value]
        if isinstance(current, dict):
            if not isinstance(value, dict):
                raise ValueError
            return {str(k): _item(str, v) for k, v in value.items()}
        if isinstance(current, str):
            if not isinstance(value, str):
                raise ValueError
            return value
    except (TypeError, ValueError):
        pass
    raise UserError(f"config value {where} = {value!r} should be a {type(current).__name__}; fix the config")


def _apply(section_obj: Any, section: str, values: dict[str, Any], source: str) -> None:
    known = {f.name for f in fields(section_obj)}
    for key, value in values.items():
        if key not in known:
            raise UserError(
                f"unknown key '{key}' in section [{section}] of {source}; "
                f"known keys: {', '.join(sorted(known))}"
            )
        coerced = _coerce(value, getattr(section_obj, key), f"{section}.{key}")
        choices = CHOICES.get((section, key))
        if choices and coerced not in choices:
            raise UserError(f"{section}.{key} = {coerced!r} is not one of {', '.join(choices)}")
        setattr(section_obj, key, coerced)


#: Sections of an experiment file that another command reads; the others ignore them.
OTHER_COMMAND_SECTIONS = {"search": "tinyae search"}


def from_dict(raw: dict[str, Any], source: str = "the config", base: Config | None = None) -> Config:
    cfg = copy.deepcopy(base) if base else Config()
    sections = {f.name for f in fields(cfg)}
    for section, values in raw.items():
        if section in OTHER_COMMAND_SECTIONS:
            continue
        if section not in sections:
            raise UserError(
                f"unknown section [{section}] in {source}; known sections: {', '.join(sorted(sections))}"
            )
        if not isinstance(values, dict):
            raise UserError(f"[{section}] in {source} must be a table of keys")
        _apply(getattr(cfg, section), section, values, source)
    validate(cfg)
    return cfg


def load(path: Path | None, overrides: list[str] = ()) -> Config:
    """Read a TOML config (or the defaults when path is None) and apply `section.key=value` overrides."""
    raw: dict[str, Any] = {}
    source = "the defaults"
    if path is not None:
        source = str(path)
        if not path.is_file():
            raise UserError(f"config file {path} does not exist; pass an existing TOML file with --config")
        try:
            raw = tomllib.loads(path.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise UserError(f"config file {path} is not valid TOML ({exc}); fix the syntax") from None
    cfg = from_dict(raw, source)
    for item in overrides:
        key, sep, value = item.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot:
            raise UserError(f"override '{item}' must look like section.key=value (e.g. train.epochs=20)")
        try:
            parsed = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            parsed = value
        cfg = from_dict({section: {name: parsed}}, f"override '{item}'", base=cfg)
    return cfg


def validate(cfg: Config) -> None:
    w = cfg.window
    if w.length < 2:
        raise UserError(f"window.length = {w.length} is too short; use at least 2 samples")
    if not 1 <= w.hop <= w.length:
        raise UserError(f"window.hop = {w.hop} must be between 1 and window.length ({w.length})")
    if cfg.model.latent < 1 or any(h < 1 for h in cfg.model.hidden):
        raise UserError("model.hidden and model.latent must be positive layer widths")
    if not 0 < cfg.threshold.percentile <= 100:
        raise UserError(f"threshold.percentile = {cfg.threshold.percentile} must be above 0 and at most 100")
    if not cfg.threshold.factor > 0:
        raise UserError(f"threshold.factor = {cfg.threshold.factor} must be positive (1 = the value itself)")
    if not 1.0 <= cfg.quantize.headroom <= 64.0:
        raise UserError(f"quantize.headroom = {cfg.quantize.headroom} must be between 1 (none) and 64")
    if cfg.model.kl_weight < 0:
        raise UserError(f"model.kl_weight = {cfg.model.kl_weight} must not be negative")
    if not 1 <= cfg.decision.k <= cfg.decision.n:
        raise UserError(f"decision.k = {cfg.decision.k} must be between 1 and decision.n = {cfg.decision.n}")
    if cfg.arena.margin_bytes < 0:
        raise UserError(
            f"arena.margin_bytes = {cfg.arena.margin_bytes} must be 0 or more (bytes added to the TFLM arena)"
        )
    if cfg.train.epochs < 1 or cfg.train.batch_size < 1:
        raise UserError("train.epochs and train.batch_size must be at least 1")
    if not 0 < cfg.train.learning_rate < math.inf:
        raise UserError(
            f"train.learning_rate = {cfg.train.learning_rate} must be a positive number (e.g. 0.002)"
        )
    if cfg.train.patience < 1:
        raise UserError(
            f"train.patience = {cfg.train.patience} must be at least 1 "
            "(epochs to wait for a better validation loss)"
        )
    for key in ("noise_std", "sparsity_l1", "contractive"):
        if not 0 <= getattr(cfg.model, key) < math.inf:
            raise UserError(f"model.{key} = {getattr(cfg.model, key)} must be 0 or a positive number")
    d = cfg.data
    if not (0 <= d.val_fraction < 1 and 0 <= d.test_fraction < 1 and d.val_fraction + d.test_fraction < 1):
        raise UserError(
            f"data.val_fraction ({d.val_fraction}) and data.test_fraction ({d.test_fraction}) must be in "
            "[0, 1) and sum below 1; e.g. 0.2 and 0.2"
        )
    if d.sample_rate_hz < 0:
        raise UserError(f"data.sample_rate_hz = {d.sample_rate_hz} must be positive (or 0: from the data)")
    if not 0 < cfg.threshold.target_fpr < 1:
        raise UserError(f"threshold.target_fpr = {cfg.threshold.target_fpr} must be between 0 and 1")
    n = cfg.normalization
    if n.outlier_iqr < 0 or n.min_levels < 0:
        raise UserError("normalization.outlier_iqr and normalization.min_levels must not be negative")
    cal = cfg.calibration
    if not 1 <= cal.windows <= 65535:
        raise UserError(
            f"calibration.windows = {cal.windows} must be between 1 and 65535 (windows per phase)"
        )
    if not cal.offsets and not cal.scales and cal.threshold == "none":
        raise UserError(
            "calibration learns nothing with offsets = false, scales = false and threshold = 'none'; "
            "enable at least one of them"
        )
    if not cal.max_shift_std > 0:
        raise UserError(f"calibration.max_shift_std = {cal.max_shift_std} must be positive (training stds)")
    if not 0 < cal.max_over_fraction <= 1:
        raise UserError(
            f"calibration.max_over_fraction = {cal.max_over_fraction} must be in (0, 1] (a fraction of the "
            "calibration windows)"
        )
    if not cal.max_scale_ratio > 1:
        raise UserError(f"calibration.max_scale_ratio = {cal.max_scale_ratio} must be above 1")
    if not cal.max_threshold_ratio > 1:
        raise UserError(f"calibration.max_threshold_ratio = {cal.max_threshold_ratio} must be above 1")
    from tinyae.train.calibration.minimum import check_windows, stretch

    if cal.max_over_stretch and len(cal.max_over_stretch) != 2:
        raise UserError(
            f"calibration.max_over_stretch = {cal.max_over_stretch} must be [k, n] (k of n consecutive scored "
            "windows above the factory threshold refuse a calibration) or [] for the default"
        )
    stretch(w.length, w.hop, cal.max_over_stretch)
    if cal.threshold != "none":
        check_windows(cal, cfg.threshold)  # the threshold rule; the statistics rule needs the data
