"""Experiment configuration: one TOML file per experiment, command-line overrides, saved with the artifacts.

One schema holds every key: the dataclasses below declare each key's type (the annotation) and its bounds
(`field(metadata=bounds(...))`: finite numbers only, a minimum and maximum, inclusive or not, a value 0 that means "from
the data", choices, list items, and the setting a key belongs to), and RULES hold what must agree between
keys (window.hop <= window.length, the output activation against the normalization, ...). `load` applies
the TOML file and every `--set` first and checks the whole configuration once, so the order of the
overrides never matters; every refusal is one sentence naming the key, what it must be and why.
Unknown sections or keys are refused (a typo must not silently fall back to a default). The command-line
options that set the same constants (`tinyae threshold --k-std`, `tinyae calibrate --windows`) take their
bounds from here (`option_type`).
"""

from __future__ import annotations

import argparse
import copy
import math
import tomllib
import typing
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from types import GenericAlias
from typing import Any

import tomli_w

from tinyae import f32
from tinyae.errors import UserError, printable
from tinyae.train.calibration import minimum
from tinyae.train.calibration.minimum import MAX_WINDOWS, STRETCH_MAX_N

#: Where data come from: the named data sets (train/data/datasets.py) and the file formats.
DATASET_SOURCES = ("synthetic", "basicmotions", "daphnet", "internalbleeding")
FILE_SOURCES = ("csv", "ucr", "edgeimpulse")
SOURCES = (*DATASET_SOURCES[:1], *FILE_SOURCES, *DATASET_SOURCES[1:])
THRESHOLD_METHODS = ("percentile", "mean_std", "mad", "upper_mad", "pot", "target_fpr", "best_f1")
THRESHOLD_SCORES = ("validation", "training+validation")
# the feature front-end's vocabulary and limits (train/frontend/spec.py takes them from here)
FRONTEND_KINDS = ("raw", "spectral", "stats")
FRONTEND_STATS = ("mean", "rms", "std", "p2p", "crest", "skew", "kurtosis", "zcr")
FRONTEND_WINDOWS = ("hann", "hamming", "rect")
FRONTEND_SPECTRA = ("power", "magnitude")
FFT_MIN, FFT_MAX = 4, 4096  # band edges are uint16 in the C tables
F32_TINY = f32.TINY  # the smallest positive normal float32 (tae_fe_logf's domain)
#: The alarm rule's n (and so k) at most: the handshake carries decision_k and decision_n as uint8
#: (docs/protocol.md, INFO; tae_msg_info_t). The one source: the schema's bounds below, the manifest's check
#: (train/manifest.py), model_config.h's TAE_DECISION_MAX_N (tae_pipeline.c and tae_app.c check against it).
DECISION_MAX_N = 255
#: The range an output activation can produce, and the range a normalization maps normal data onto.
OUTPUT_RANGE = {"linear": None, "sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0)}
NORMALIZED_RANGE = {"zscore": None, "robust": None, "minmax": (0.0, 1.0)}
#: VAE: above this weight the KL term outweighs the reconstruction (measured, see README "Configuration").
KL_WEIGHT_WARN = 0.01


@dataclass(frozen=True)
class Bounds:
    """What a key accepts beyond its type. Numbers are always finite; for a list, the bounds hold for
    each item."""

    ge: float | None = None  # minimum, inclusive
    gt: float | None = None  # minimum, exclusive
    le: float | None = None  # maximum, inclusive
    lt: float | None = None  # maximum, exclusive
    choices: tuple[str, ...] = ()
    zero: str = ""  # 0 is also accepted and means this ("from the data")
    pow2: bool = False  # a power of two (or 0 when `zero` says what 0 means)
    nonempty: bool = False  # a list: at least one item
    unique: bool = False  # a list: each item once
    what: str = ""  # what the value is, in words, for messages ("samples per window")
    # the key matters only when another key has one of these values (a list key: contains one of them);
    # a value other than the default elsewhere is warned about, or refused when unused = "refuse"
    applies: tuple[str, tuple[str, ...]] | None = None
    unused: str = "warn"
    # the device stores it as a float32: the bounds hold for the float32 it rounds to, which must be finite
    # and, unless 0, normal (tinyae/f32.py: 1e-50 would be 0 on the device)
    f32: bool = False

    def range_text(self) -> str:
        """ "between 2 and 65535", "above 0 and at most 1", "0 (from the data) or at least 1", ..."""
        if self.choices:
            return "one of " + ", ".join(self.choices)
        lo = self.ge if self.ge is not None else self.gt
        hi = self.le if self.le is not None else self.lt
        low = f"{'at least' if self.gt is None else 'above'} {_num(lo)}" if lo is not None else ""
        high = f"{'at most' if self.lt is None else 'below'} {_num(hi)}" if hi is not None else ""
        if lo is not None and hi is not None:
            both = self.gt is None and self.lt is None
            text = f"between {_num(lo)} and {_num(hi)}" if both else f"{low} and {high}"
        else:
            text = low or high or "a finite number"
        if self.pow2:
            text = f"a power of two {text}"
        if self.zero:
            text = f"0 ({self.zero}) or {text}"
        return text


def _num(x: float) -> str:
    """A bound in words: whole numbers in full (65535, 2147483647), others as %g."""
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e16 else f"{x:g}"


def bounds(**kw: Any) -> dict[str, Bounds]:
    """A key's field metadata: `field(default=64, metadata=bounds(ge=2, le=65535))` (Bounds' arguments)."""
    return {"bounds": Bounds(**kw)}


_CSV = ("csv", "edgeimpulse")
_NOT_SYNTHETIC = tuple(s for s in SOURCES if s != "synthetic")
_SPECTRAL = ("frontend.kinds", ("spectral",))


@dataclass
class DataConfig:
    # synthetic | csv | ucr | edgeimpulse | a data set name (basicmotions, daphnet, internalbleeding)
    source: str = field(default="synthetic", metadata=bounds(choices=SOURCES))
    # CSV or Edge Impulse files/globs/folders, each cut by time into train|val|test (ucr: the TRAIN/TEST files)
    paths: list[str] = field(
        default_factory=list, metadata=bounds(applies=("data.source", FILE_SOURCES), unused="refuse")
    )
    # files/globs for training (cut into train|val)
    train: list[str] = field(
        default_factory=list, metadata=bounds(applies=("data.source", _CSV), unused="refuse")
    )
    # files/globs tested whole (normal and faulty)
    test: list[str] = field(
        default_factory=list, metadata=bounds(applies=("data.source", _CSV), unused="refuse")
    )
    # path or glob -> label of the whole file
    file_labels: dict[str, str] = field(
        default_factory=dict, metadata=bounds(applies=("data.source", _CSV), unused="refuse")
    )
    # CSV column / Edge Impulse sensor names; empty = numeric non-index columns
    channels: list[str] = field(
        default_factory=list, metadata=bounds(unique=True, applies=("data.source", _CSV), unused="refuse")
    )
    # CSV timestamp column; "" = a column named like a timestamp, "none" = no column
    timestamp: str = field(default="", metadata=bounds(applies=("data.source", ("csv",))))
    timestamp_unit: str = field(
        default="auto",
        metadata=bounds(choices=("auto", "s", "ms", "us", "ns"), applies=("data.source", ("csv",))),
    )
    # strptime format of date-time timestamps; "" = ISO 8601
    timestamp_format: str = field(default="", metadata=bounds(applies=("data.source", ("csv",))))
    # CSV label column; "" = a column named like a label, "none" = no column
    label: str = field(default="", metadata=bounds(applies=("data.source", ("csv",))))
    # label values that mean "normal" (a scalar is fine)
    normal: list[str] = field(default_factory=list, metadata=bounds(applies=("data.source", _NOT_SYNTHETIC)))
    sample_rate_hz: float = field(
        default=0.0,
        metadata=bounds(gt=0, le=1e7, zero="from the timestamps or the data set", what="Hz", f32=True),
    )
    # what a gap in the timestamps does
    gaps: str = field(
        default="refuse", metadata=bounds(choices=("refuse", "split"), applies=("data.source", ("csv",)))
    )
    # of each training recording, cut by time
    val_fraction: float = field(
        default=0.2,
        metadata=bounds(
            ge=0, lt=1, what="a fraction of each training recording", applies=("data.source", _NOT_SYNTHETIC)
        ),
    )
    # of each data.paths recording, cut by time (unused with data.test)
    test_fraction: float = field(
        default=0.2,
        metadata=bounds(
            ge=0,
            lt=1,
            what="a fraction of each recording",
            applies=("data.source", ("csv", "ucr", "edgeimpulse", "daphnet")),
        ),
    )
    seed: int = field(default=0, metadata=bounds(ge=0, le=2**31 - 1, applies=("data.source", ("synthetic",))))


@dataclass
class WindowConfig:
    length: int = field(default=64, metadata=bounds(ge=2, le=65535, what="samples per window"))
    hop: int = field(default=32, metadata=bounds(ge=1, le=65535, what="samples between window starts"))


@dataclass
class NormalizationConfig:
    method: str = field(
        default="zscore", metadata=bounds(choices=("zscore", "minmax", "robust"))
    )  # robust = median / IQR
    # training samples beyond outlier_iqr
    outliers: str = field(default="clip", metadata=bounds(choices=("clip", "refuse", "keep")))
    # a sample this many IQRs from its channel's median is an outlier; 0 = off
    outlier_iqr: float = field(
        default=10.0, metadata=bounds(ge=1, le=1e6, zero="no outlier screen", what="interquartile ranges")
    )
    # warn when a channel's normal data use fewer int8 input levels
    min_levels: int = field(default=16, metadata=bounds(ge=0, le=256, what="of the 256 int8 input levels"))


@dataclass
class FrontendConfig:
    """What the network sees of a window (train/frontend/spec.py checks it against the data's rate)."""

    kinds: list[str] = field(
        default_factory=lambda: ["raw"], metadata=bounds(choices=FRONTEND_KINDS, nonempty=True, unique=True)
    )
    # spectral: power of two <= window.length; 0 = the largest that fits
    fft_length: int = field(
        default=0,
        metadata=bounds(
            ge=FFT_MIN, le=FFT_MAX, pow2=True, zero="the largest that fits the window", applies=_SPECTRAL
        ),
    )
    window_fn: str = field(default="hann", metadata=bounds(choices=FRONTEND_WINDOWS, applies=_SPECTRAL))
    spectrum: str = field(default="power", metadata=bounds(choices=FRONTEND_SPECTRA, applies=_SPECTRAL))
    # natural log of each band, floored at log_floor
    log: bool = field(default=True, metadata=bounds(applies=_SPECTRAL))
    # 0 = per band, from the training windows; else squared/plain sensor units
    log_floor: float = field(
        default=0.0,
        metadata=bounds(ge=F32_TINY, le=1e30, zero="from the training windows", applies=_SPECTRAL, f32=True),
    )
    # log_floor = 0: each band's floor sits this many decibels below the band's median on the training windows
    log_floor_db: float = field(default=3.0, metadata=bounds(ge=0, le=120, what="dB", applies=_SPECTRAL))
    # average the kept FFT bins into this many bands; 0 = one per bin
    bins: int = field(
        default=0, metadata=bounds(ge=1, le=2048, zero="one band per FFT bin", applies=_SPECTRAL)
    )
    # lowest frequency kept (needs the sample rate); DC never kept
    freq_min_hz: float = field(
        default=0.0, metadata=bounds(gt=0, le=5e6, zero="from the lowest bin", what="Hz", applies=_SPECTRAL)
    )
    # highest frequency kept; 0 = Nyquist
    freq_max_hz: float = field(
        default=0.0, metadata=bounds(gt=0, le=5e6, zero="Nyquist", what="Hz", applies=_SPECTRAL)
    )
    stats: list[str] = field(
        default_factory=lambda: list(FRONTEND_STATS),
        metadata=bounds(
            choices=FRONTEND_STATS, nonempty=True, unique=True, applies=("frontend.kinds", ("stats",))
        ),
    )


@dataclass
class ModelConfig:
    hidden: list[int] = field(
        default_factory=lambda: [64], metadata=bounds(ge=1, le=4096, what="units per hidden layer")
    )
    latent: int = field(default=8, metadata=bounds(ge=1, le=4096, what="units"))
    activation: str = field(default="relu", metadata=bounds(choices=("relu", "relu6", "linear")))
    output_activation: str = field(default="linear", metadata=bounds(choices=("linear", "sigmoid", "tanh")))
    variant: str = field(
        default="plain", metadata=bounds(choices=("plain", "denoising", "sparse", "contractive", "vae"))
    )
    # denoising: std of the Gaussian input corruption (normalized units)
    noise_std: float = field(
        default=0.2,
        metadata=bounds(ge=0, le=10, what="normalized units", applies=("model.variant", ("denoising",))),
    )
    # sparse: L1 penalty on the latent activations
    sparsity_l1: float = field(
        default=1e-3, metadata=bounds(ge=0, le=10, applies=("model.variant", ("sparse",)))
    )
    # contractive: weight of the encoder-Jacobian Frobenius penalty
    contractive: float = field(
        default=1e-3, metadata=bounds(ge=0, le=10, applies=("model.variant", ("contractive",)))
    )
    # vae: weight of the KL divergence of the Gaussian latent from N(0, I)
    kl_weight: float = field(
        default=1e-3,
        metadata=bounds(
            ge=0,
            le=1,
            what="the weight of the KL term against the reconstruction error",
            applies=("model.variant", ("vae",)),
        ),
    )


@dataclass
class TrainConfig:
    epochs: int = field(default=80, metadata=bounds(ge=1, le=100_000))
    batch_size: int = field(default=64, metadata=bounds(ge=1, le=65536, what="windows"))
    learning_rate: float = field(default=2e-3, metadata=bounds(gt=0, le=1))
    patience: int = field(
        default=10, metadata=bounds(ge=1, le=100_000, what="epochs to wait for a better validation loss")
    )
    loss: str = field(default="mse", metadata=bounds(choices=("mse", "mae")))  # also the score definition
    seed: int = field(default=0, metadata=bounds(ge=0, le=2**31 - 1))
    # TensorFlow's intra-op threads while training. Its float sums are split by thread, so the weights are
    # the same bit for bit only with the same count: 0 leaves TensorFlow's choice (every core of the
    # machine); `tinyae search` writes its trials' count (search.cpus_per_trial) into best.toml.
    threads: int = field(
        default=0, metadata=bounds(ge=1, le=1024, zero="TensorFlow's choice: every core", what="threads")
    )


@dataclass
class QuantizeConfig:
    representative_windows: int = field(
        default=500, metadata=bounds(ge=1, le=1_000_000, what="normal training windows")
    )
    # FULLY_CONNECTED weight scales: auto (per-channel only when every target computes it) |
    # per_channel | per_tensor. train/boards.py knows what each target's TFLM library supports.
    weights: str = field(default="auto", metadata=bounds(choices=("auto", "per_channel", "per_tensor")))
    # board envs / mps2_an386; empty = all of them (train/boards.py checks the names)
    targets: list[str] = field(default_factory=list, metadata=bounds(unique=True))
    # the int8 ranges cover the representative windows and, above 1, those windows times headroom
    # (normalized units): anomalies far outside the normal range then saturate later (docs/skab.md)
    headroom: float = field(default=1.0, metadata=bounds(ge=1, le=64, what="times the normal range"))


@dataclass
class ThresholdConfig:
    """How the threshold is set from the normal windows' scores (train/calibrate.py describes each method)."""

    # percentile | mean_std | mad | upper_mad | pot | target_fpr | best_f1 (an oracle). The default, median +
    # 4 x the upper MAD of the validation scores, is the threshold study's choice (bench/RESULTS.md,
    # "Threshold").
    method: str = field(default="upper_mad", metadata=bounds(choices=THRESHOLD_METHODS))
    percentile: float = field(
        default=99.5,
        metadata=bounds(
            gt=0, le=100, what="of the normal scores", applies=("threshold.method", ("percentile",))
        ),
    )
    k_std: float = field(
        default=3.0, metadata=bounds(ge=0, le=100, what="standard deviations above the mean", f32=True)
    )
    # mad: median + k_mad x 1.4826 x MAD
    k_mad: float = field(
        default=7.0, metadata=bounds(ge=0, le=100, what="scaled median absolute deviations above the median")
    )
    # upper_mad: median + k_upper_mad x 1.4826 x the median of the deviations above the median
    k_upper_mad: float = field(
        default=4.0,
        metadata=bounds(ge=0, le=100, what="scaled upper median absolute deviations above the median"),
    )
    # pot: probability that a normal score exceeds the threshold (a generalized Pareto fit of the tail)
    pot_risk: float = field(default=1e-3, metadata=bounds(gt=0, lt=1, what="a probability"))
    # pot: the tail fitted is the scores above this quantile
    pot_quantile: float = field(
        default=0.9, metadata=bounds(ge=0.5, lt=1, what="a quantile of the normal scores")
    )
    # percentile / mean_std / mad / upper_mad / pot: the threshold is that value times this (a control limit)
    factor: float = field(default=1.0, metadata=bounds(gt=0, le=1000, what="times the calibrated value"))
    # target_fpr: highest false-alarm rate allowed on normal validation windows
    target_fpr: float = field(
        default=0.005, metadata=bounds(gt=0, lt=1, what="a fraction of the validation windows")
    )
    # the normal windows the threshold is calibrated on
    scores: str = field(default="validation", metadata=bounds(choices=THRESHOLD_SCORES))


@dataclass
class CalibrationConfig:
    """On-site calibration (train/calibration/): what the device may learn from its first normal windows."""

    # N: windows per phase at most (the device's buffers are sized for it at build time); at least the
    # minimum an on-site calibration needs (train/calibration/minimum.py: the rule `_calibration_windows`)
    windows: int = field(default=128, metadata=bounds(ge=1, le=MAX_WINDOWS, what="windows per phase"))
    offsets: bool = field(
        default=True, metadata=bounds()
    )  # learn per-channel offsets of the front-end's input (the raw samples)
    scales: bool = field(default=False, metadata=bounds())  # also learn per-channel scales
    # model (threshold.method; best_f1 -> percentile, mad / upper_mad / pot -> mean + k std) | percentile |
    # mean_std | none
    threshold: str = field(
        default="model", metadata=bounds(choices=("model", "percentile", "mean_std", "none"))
    )
    # |site mean - training mean| <= this x training std, per channel
    max_shift_std: float = field(
        default=3.0, metadata=bounds(gt=0, le=1000, what="training standard deviations", f32=True)
    )
    # site std / training std within [1/r, r], per channel
    max_scale_ratio: float = field(default=2.0, metadata=bounds(gt=1, le=1000, f32=True))
    # at most this fraction of the scored calibration windows above the factory threshold (the trained
    # distribution's upper percentile); more means the data were not normal operation
    max_over_fraction: float = field(
        default=0.5, metadata=bounds(gt=0, le=1, what="a fraction of the calibration windows")
    )
    # calibrated threshold within [T/r, T*r] of the factory threshold T
    max_threshold_ratio: float = field(default=4.0, metadata=bounds(gt=1, le=1000, f32=True))
    # [k, n]: refuse a calibration when k of any n consecutive scored windows are above the factory
    # threshold (an anomalous stretch, e.g. a recording that ends in a fault); [] = [2m + 1, 4m] with
    # m = ceil(window.length / window.hop), n at most 32 (the rule `_over_stretch_k_of_n`)
    max_over_stretch: list[int] = field(
        default_factory=list, metadata=bounds(ge=1, le=STRETCH_MAX_N, what="consecutive scored windows")
    )


@dataclass
class DecisionConfig:
    k: int = field(
        default=1, metadata=bounds(ge=1, le=DECISION_MAX_N, what="anomalous windows of the last n")
    )
    n: int = field(
        default=1,
        metadata=bounds(ge=1, le=DECISION_MAX_N, what="windows; the handshake carries n in one byte"),
    )


@dataclass
class ArenaConfig:
    margin_bytes: int = field(
        default=1024, metadata=bounds(ge=0, le=1 << 20, what="bytes added to the TFLM arena")
    )


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
        from tinyae import atomic

        atomic.write_text(path, tomli_w.dumps(self.to_dict()))


# ------------------------------------------------------------------ the schema, read from the dataclasses
@dataclass(frozen=True)
class Key:
    """One configuration key: where it lives, its type (from the annotation), default and bounds."""

    section: str
    name: str
    type: Any  # int | float | bool | str | list[int] | list[str] | dict[str, str]
    default: Any
    bounds: Bounds

    @property
    def path(self) -> str:
        return f"{self.section}.{self.name}"


_SCHEMA: dict[str, Key] = {}


def section_keys(cls: type, section: str) -> dict[str, Key]:
    """The keys of one dataclass of settings (a config section, or another command's, e.g. [search])."""
    hints = typing.get_type_hints(cls)
    defaults = cls()
    return {
        f"{section}.{f.name}": Key(
            section, f.name, hints[f.name], getattr(defaults, f.name), f.metadata.get("bounds", Bounds())
        )
        for f in fields(cls)
    }


def check_section(obj: Any, section: str) -> None:
    """Refuse, in one sentence, the first field of `obj` (a dataclass of settings) out of its bounds."""
    for k in section_keys(type(obj), section).values():
        value = getattr(obj, k.name)
        p = problem(k, value)
        if p:
            raise UserError(f"{k.path} = {value!r} {p}")


def schema() -> dict[str, Key]:
    """Every key of the experiment configuration, "section.name" -> Key, in the dataclasses' order."""
    if not _SCHEMA:
        for sf in fields(Config):
            _SCHEMA.update(section_keys(typing.get_type_hints(Config)[sf.name], sf.name))
    return _SCHEMA


#: The scalar keys with a fixed set of values (tinyae search checks its space against them).
CHOICES = {
    (k.section, k.name): k.bounds.choices
    for k in schema().values()
    if k.bounds.choices and typing.get_origin(k.type) is None
}


def _get(cfg: Config, path: str) -> Any:
    section, name = path.split(".", 1)
    return getattr(getattr(cfg, section), name)


# ------------------------------------------------------------------ types
def _words(typ: Any) -> str:
    """A type in words, for messages."""
    origin = typing.get_origin(typ)
    if origin is list:
        return "a list of " + {int: "whole numbers", float: "numbers"}.get(
            typing.get_args(typ)[0], "text values"
        )
    if origin is dict:
        return "a table of path = label"
    return {bool: "true or false", int: "a whole number", float: "a number", str: "text"}.get(typ, str(typ))


def _scalar(v: Any, typ: Any, in_list: bool = False) -> Any:
    """One TOML / command-line value as `typ`, or ValueError. Numbers given for text items keep their TOML
    spelling (data.normal = 1 -> "1"); a bool is never a number."""
    if typ is bool:
        if isinstance(v, bool):
            return v
        if isinstance(v, str) and v.strip().lower() in ("true", "false", "1", "0"):
            return v.strip().lower() in ("true", "1")
        if isinstance(v, int) and v in (0, 1):
            return bool(v)
        raise ValueError
    if isinstance(v, bool):
        raise ValueError
    if typ is int:
        if isinstance(v, float) and not (v.is_integer() and abs(v) <= 2**53):
            raise ValueError  # a fraction, or beyond the whole numbers a float holds exactly
        return int(v.strip()) if isinstance(v, str) else int(v)
    if typ is float:
        return float(v)
    if typ is str:
        if isinstance(v, str):
            return v
        if in_list and isinstance(v, int | float):
            return repr(v)
        raise ValueError
    raise ValueError


def _convert(value: Any, typ: Any, where: str, bounds: Bounds | None = None) -> Any:
    """A TOML or command-line value converted to the key's type, or one sentence saying what it should be
    (with the key's range when `bounds` are given)."""
    origin = typing.get_origin(typ)
    try:
        if origin is list:
            item = typing.get_args(typ)[0]
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            elif isinstance(value, int | float) and not isinstance(value, bool):
                value = [value]  # a scalar is a list of one (data.normal = 1)
            if not isinstance(value, list):
                raise ValueError
            return [_scalar(v, item, in_list=True) for v in value]
        if origin is dict:
            if not isinstance(value, dict):
                raise ValueError
            return {str(k): _scalar(v, str, in_list=True) for k, v in value.items()}
        return _scalar(value, typ)
    except (TypeError, ValueError, OverflowError):
        pass
    expected = _words(typ)
    if bounds is not None and (bounds.choices or (typing.get_origin(typ) is None and typ in (int, float))):
        expected += f" ({bounds.range_text()})" if not bounds.choices else f": {bounds.range_text()}"
    raise UserError(f"{where} = {value!r} should be {expected}")


def _coerce(value: Any, current: Any, where: str) -> Any:
    """`value` converted to the type of `current` (for settings outside the schema, e.g. [search])."""
    if isinstance(current, list):
        typ: Any = GenericAlias(list, (type(current[0]),)) if current else list[str]
    elif isinstance(current, dict):
        typ = dict[str, str]
    else:
        typ = type(current)
    return _convert(value, typ, where)


# ------------------------------------------------------------------ bounds
def _is_type(v: Any, typ: Any) -> bool:
    if typ is float:
        return isinstance(v, int | float) and not isinstance(v, bool)
    if typ is int:
        return isinstance(v, int) and not isinstance(v, bool)
    return isinstance(v, typ)


def _scalar_problem(b: Bounds, v: Any, typ: Any) -> str | None:
    """What is wrong with one value against its bounds ("must be between 2 and 65535 (...)"), or None."""
    if not _is_type(v, typ):
        return f"should be {_words(typ)}"
    if b.choices:
        return None if v in b.choices else f"is not one of {', '.join(b.choices)}"
    if typ not in (int, float):
        return None
    must = f"must be {b.range_text()}" + (f" ({b.what})" if b.what else "")
    if not math.isfinite(v):
        return f"is not a finite number; it {must}"
    if b.zero and v == 0:
        return None
    edge: Callable[[float], float] = float  # a bound as the value is compared with it
    if b.f32:  # the float32 the device stores against the bounds as float32s (1e30 is 1.0000000150e30 there)
        wrong = f32.problem(v)
        if wrong:
            return f"{wrong.split(';')[0]}; it {must}"
        if f32.rounded(v) != v:
            v = f32.rounded(v)
            must = f"is {v!r} as a float32, the number the device stores; it {must}"
        edge = f32.rounded
    if b.pow2 and (int(v) != v or v <= 0 or int(v) & (int(v) - 1)):
        return must
    if (
        (b.ge is not None and not v >= edge(b.ge))
        or (b.gt is not None and not v > edge(b.gt))
        or (b.le is not None and not v <= edge(b.le))
        or (b.lt is not None and not v < edge(b.lt))
    ):
        return must
    return None


def problem(k: Key, value: Any) -> str | None:
    """What is wrong with `value` for key `k`, as the end of a sentence ("must be at least 1"), or None."""
    b = k.bounds
    origin = typing.get_origin(k.type)
    if origin is dict:
        ok = isinstance(value, dict) and all(isinstance(x, str) for x in (*value, *value.values()))
        return None if ok else f"should be {_words(k.type)}"
    if origin is None:
        return _scalar_problem(b, value, k.type)
    if not isinstance(value, list):
        return f"should be {_words(k.type)}"
    if b.nonempty and not value:
        return "must not be empty" + (f"; list one or more of {', '.join(b.choices)}" if b.choices else "")
    if b.unique and len({repr(v) for v in value}) < len(value):
        return "names an item twice; list each once"
    item = typing.get_args(k.type)[0]
    for v in value:
        p = _scalar_problem(b, v, item)
        if p:
            return f"has {v!r}, which {p.replace('must be', 'should be', 1)}"
    return None


def check_value(path: str, value: Any, name: str | None = None) -> Any:
    """`value` for the key `path` ("threshold.k_std"), or a UserError naming it as `name` (e.g. "--k-std")."""
    k = schema()[path]
    value = _convert(value, k.type, name or path)
    p = problem(k, value)
    if p:
        raise UserError(f"{name or path} {value!r} {p}" if name else f"{path} = {value!r} {p}")
    return value


def option_type(path: str) -> Callable[[str], Any]:
    """An argparse `type=` for a command-line option that sets the key `path`: the key's type and bounds,
    a bad value refused in one sentence (`--k-std inf`: "inf is not a finite number; it must be ...")."""
    k = schema()[path]

    def parse(text: str) -> Any:
        try:
            raw = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            raw = text
        try:
            value = _convert(raw, k.type, path)
        except UserError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {_words(k.type)}") from None
        p = problem(k, value)
        if p:
            raise argparse.ArgumentTypeError(f"{text} {p}")
        return value

    parse.__name__ = path  # argparse names the type in its own messages
    return parse


# ------------------------------------------------------------------ rules between keys
Rule = Callable[[Config], str | None]
RULES: list[Rule] = []  # a combination that cannot work: refused
ADVICE: list[Rule] = []  # a combination that works badly or not as meant: warned about


def rule(fn: Rule) -> Rule:
    RULES.append(fn)
    return fn


def advice(fn: Rule) -> Rule:
    ADVICE.append(fn)
    return fn


def _unused(cfg: Config) -> list[tuple[Key, str]]:
    """Keys set away from their default where they have no effect (Bounds.applies), with a sentence."""
    out = []
    for k in schema().values():
        if k.bounds.applies is None or _get(cfg, k.path) == k.default:
            continue
        other, allowed = k.bounds.applies
        v = _get(cfg, other)
        if any(x in allowed for x in v) if isinstance(v, list) else v in allowed:
            continue
        needs = f"{'contains' if isinstance(v, list) else '='} {' or '.join(allowed)}"
        out.append(
            (
                k,
                f"{k.path} = {_get(cfg, k.path)!r} has no effect with {other} = {v!r} (it is read only when "
                f"{other} {needs}); set {other} or remove {k.path}",
            )
        )
    return out


@rule
def _hop_within_window(cfg: Config) -> str | None:
    w = cfg.window
    if w.hop <= w.length:
        return None
    return (
        f"window.hop = {w.hop} must be between 1 and window.length ({w.length}): a larger hop skips samples "
        "between windows"
    )


@rule
def _k_of_n(cfg: Config) -> str | None:
    d = cfg.decision
    if d.k <= d.n:
        return None
    return f"decision.k = {d.k} must be between 1 and decision.n = {d.n} (k anomalous windows of the last n)"


@rule
def _fractions(cfg: Config) -> str | None:
    d = cfg.data
    if d.val_fraction + d.test_fraction < 1:
        return None
    return (
        f"data.val_fraction ({d.val_fraction}) and data.test_fraction ({d.test_fraction}) must sum below 1 "
        "(the rest trains); e.g. 0.2 and 0.2"
    )


@rule
def _calibration_learns(cfg: Config) -> str | None:
    cal = cfg.calibration
    if cal.offsets or cal.scales or cal.threshold != "none":
        return None
    return (
        "calibration learns nothing with offsets = false, scales = false and threshold = 'none'; "
        "enable at least one of them"
    )


@rule
def _over_stretch_k_of_n(cfg: Config) -> str | None:
    return minimum.stretch_problem(cfg.calibration.max_over_stretch)


@rule
def _calibration_windows(cfg: Config) -> str | None:
    """calibration.windows against the threshold rule of the on-site method (mad, upper_mad and pot, and the
    statistics rule, need the trained model: checked when it is built)."""
    return minimum.windows_problem(cfg.calibration, cfg.threshold)


@rule
def _output_reaches_the_data(cfg: Config) -> str | None:
    """The decoder's last activation must be able to produce the normalized data it reconstructs."""
    out = OUTPUT_RANGE[cfg.model.output_activation]
    norm = NORMALIZED_RANGE[cfg.normalization.method]
    if out is None or (norm is not None and out[0] <= norm[0] and norm[1] <= out[1]):
        return None
    spread = (
        f"onto [{norm[0]:g}, {norm[1]:g}]"
        if norm
        else "around 0 with unit spread (much of it outside that range)"
    )
    return (
        f"model.output_activation = {cfg.model.output_activation!r} produces values in "
        f"({out[0]:g}, {out[1]:g}) only, but normalization.method = {cfg.normalization.method!r} maps normal "
        f'data {spread}, which the network then cannot reconstruct; use output_activation = "linear" or '
        'normalization.method = "minmax"'
    )


@advice
def _kl_drowns_reconstruction(cfg: Config) -> str | None:
    m = cfg.model
    if m.variant != "vae" or m.kl_weight <= KL_WEIGHT_WARN:
        return None
    return (
        f"model.kl_weight = {m.kl_weight:g} weighs the VAE's KL term so heavily that the latent code carries "
        f"little of the window and anomalies score like normal data; keep it at or below {KL_WEIGHT_WARN:g} "
        "(the default 0.001)"
    )


@advice
def _representative_set(cfg: Config) -> str | None:
    """Measured on the synthetic default: int8 ROC AUC 0.869 / 0.956 / 0.989 / 0.990 / 0.990 with 1 / 4 /
    16 / 64 / 500 representative windows (float 0.993): the int8 ranges need about a batch of windows."""
    q, t = cfg.quantize, cfg.train
    if q.representative_windows >= t.batch_size:
        return None
    return (
        f"quantize.representative_windows = {q.representative_windows} is fewer than one training batch "
        f"(train.batch_size = {t.batch_size}): the int8 ranges then come from too few windows and the int8 "
        "model loses accuracy (ROC AUC 0.87 with 1 window, 0.99 with 64 on the default data); use at least "
        f"{t.batch_size}"
    )


@advice
def _screen_off(cfg: Config) -> str | None:
    n = cfg.normalization
    if n.outlier_iqr != 0 or n.outliers == "clip":
        return None
    return (
        f"normalization.outliers = {n.outliers!r} does nothing with normalization.outlier_iqr = 0 (the outlier "
        "screen is off); set outlier_iqr (e.g. 10)"
    )


def validate(cfg: Config) -> None:
    """Refuse, in one sentence, the first key out of bounds, key set where it cannot apply, or rule broken."""
    for k in schema().values():
        value = _get(cfg, k.path)
        p = problem(k, value)
        if p:
            raise UserError(f"{k.path} = {value!r} {p}")
    for k, text in _unused(cfg):
        if k.bounds.unused == "refuse":
            raise UserError(text)
    for r in RULES:
        broken = r(cfg)
        if broken:
            raise UserError(broken)


def warnings(cfg: Config) -> list[str]:
    """Sentences about settings that work, but not as they were probably meant (printed by training)."""
    out = [text for k, text in _unused(cfg) if k.bounds.unused != "refuse"]
    return out + [t for t in (a(cfg) for a in ADVICE) if t]


# ------------------------------------------------------------------ reading
def _apply(cfg: Config, section: str, values: dict[str, Any], source: str) -> None:
    obj = getattr(cfg, section)
    known = {f.name for f in fields(obj)}
    for name, value in values.items():
        if name not in known:
            raise UserError(
                f"unknown key '{printable(name)}' in section [{printable(section)}] of {printable(source, None)}; "
                f"known keys: {', '.join(sorted(known))}"
            )
        k = schema()[f"{section}.{name}"]
        setattr(obj, name, _convert(value, k.type, k.path, k.bounds))


#: Sections of an experiment file that another command reads; the others ignore them.
OTHER_COMMAND_SECTIONS = {"search": "tinyae search"}


def from_dict(
    raw: dict[str, Any], source: str = "the config", base: Config | None = None, *, check: bool = True
) -> Config:
    """`base` (or the defaults) with the sections of `raw` applied, then checked as a whole (unless check
    is False: more overrides follow)."""
    cfg = copy.deepcopy(base) if base else Config()
    _apply_sections(cfg, raw, source)
    if check:
        validate(cfg)
    return cfg


def _apply_sections(cfg: Config, raw: dict[str, Any], source: str) -> None:
    """The sections of `raw` applied to `cfg` in place (each key converted and bounded)."""
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
        _apply(cfg, section, values, source)


def load(path: Path | None, overrides: Sequence[str] = ()) -> Config:
    """Read a TOML config (or the defaults when path is None), apply every `section.key=value` override,
    then check the result once: overrides may come in any order."""
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
    cfg = from_dict(raw, source, check=False)
    for item in overrides:
        key_text, sep, value = item.partition("=")
        section, dot, name = key_text.strip().partition(".")
        if not sep or not dot:
            raise UserError(f"override '{item}' must look like section.key=value (e.g. train.epochs=20)")
        try:
            parsed = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            parsed = value
        _apply_sections(cfg, {section: {name: parsed}}, f"override '{item}'")  # cfg is this call's own
    validate(cfg)
    return cfg
