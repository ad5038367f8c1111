"""On-site calibration's definition: from the experiment config and the training data to the manifest's
`calibration` section and the `TAE_CALIB_*` constants of model_config.h.

What the device learns from its first normal windows (firmware/lib/tinyae/src/tae_calib.c is the
definition, docs/architecture.md "On-site calibration" the prose):
- phase 1 (when offsets or scales are learned): N windows; every raw sample of them feeds a per-channel
  mean and standard deviation; the correction ``x' = (x - shift[c]) * gain[c]`` applied to every raw
  sample the front-end reads maps the site's mean onto the training mean (offsets) and its spread onto
  the training spread (scales);
- phase 2 (when the threshold is learned): the next N windows, scored with that correction; the
  threshold is the nearest-rank percentile (the ceil(p N / 100)-th smallest score, an exact order
  statistic) or mean + k std of the N scores.
The manifest fixes the bounds a calibration must respect (at least `min_windows` windows per phase, a
site mean within `max_shift_std` training standard deviations of the training mean, a site spread within
[1/r, r] of the training spread, at most `max_over_fraction` of the scored windows above the factory
threshold T and fewer than k of them among any n consecutive ones (`max_over_stretch`), a threshold
within [T/r, T*r]); outside
them the device refuses the calibration and keeps what it used before: too little data, data that were
not normal, or a machine the model was not trained for.

The settings (`PRIMARY`) are what the config and the training data give; every other constant (the
rank fraction, the bounds in sensor and score units, the minimum windows, the stretch bound, the CRC) is
derived from them by `from_values` and nowhere else, so a new factory threshold (`tinyae threshold`)
moves every bound with it (`CalibSpec.rederive`).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, fields
from fractions import Fraction
from typing import Any

import numpy as np

from tinyae import f32
from tinyae.errors import UserError
from tinyae.train.calibration import minimum
from tinyae.train.calibration.minimum import device_method
from tinyae.train.warned import warn

RECORD_VERSION = 1
RECORD_MAGIC = b"TAEC"
METHODS = ("none", "percentile", "mean_std")  # index = the record's / TAE_CALIB_METHOD's code
RECORD_FIXED_BYTES = 72  # header, identity, threshold and score figures, CRC (tae_calib.h)


def record_bytes(channels: int) -> int:
    """Size of a stored calibration record: 72 + 16 bytes per channel (mean, std, shift, gain)."""
    return RECORD_FIXED_BYTES + 16 * int(channels)


def _f32(x: float) -> float:
    return float(np.float32(x))


def _f32_limit(x: float) -> float:
    """An upper limit (a threshold's, a shift's) as a float32: one beyond float32's range is its largest value,
    which no float32 the device compares exceeds (a threshold near float32's max times
    calibration.max_threshold_ratio would otherwise be inf, which no header can hold)."""
    return f32.rounded(min(float(x), f32.MAX))


@dataclass(frozen=True)
class CalibSpec:
    """Everything the device's calibration needs, as the manifest's `calibration` section holds it."""

    windows: int  # N at most, per phase (the build-time capacity)
    channels: int
    window_length: int
    hop: int
    offsets: bool
    scales: bool
    method: str  # none | percentile | mean_std
    setting: str  # calibration.threshold: model (follows the model's threshold method) | the method
    percentile: float
    rank_num: int  # percentile / 100 as a reduced fraction: rank(N) = ceil(rank_num * N / rank_den)
    rank_den: int
    k_std: float
    over_num: int  # at most over_num / over_den of the scored windows above the factory threshold
    over_den: int
    ref_mean: tuple[float, ...]  # per-channel mean of the raw training samples (float32)
    ref_std: tuple[float, ...]  # per-channel standard deviation (population, float32)
    max_shift: tuple[float, ...]  # per channel, sensor units: |site mean - ref_mean| allowed
    scale_min: float  # site std / ref std allowed range
    scale_max: float
    threshold_min: float
    threshold_max: float
    factory_threshold: float
    max_shift_std: float
    max_scale_ratio: float
    max_threshold_ratio: float
    method_source: str  # how the method was chosen (the config's words)
    stats_windows: int  # the statistics rule's minimum (minimum.stats_rule, from the training data)
    stats_why: str
    # the threshold rule measured on the factory's normal scores (minimum.scores_rule: mad and pot, whose
    # k comes from them); 0: the device method's own rule (minimum.threshold_rule, from the settings)
    scores_windows: int
    scores_why: str
    max_over_stretch_setting: tuple[int, ...]  # calibration.max_over_stretch (empty: derived)
    min_windows: int  # N at least, per phase: max(threshold rule, statistics rule)
    min_windows_why: str
    stretch_k: int  # k of any stretch_n consecutive phase-2 windows above the factory threshold refuse
    stretch_n: int
    config_crc: int  # CRC-32 of every constant a record's meaning depends on (a record carries it)

    # ------------------------------------------------------------------ derived figures
    @property
    def phases(self) -> int:
        return int(self.offsets or self.scales) + int(self.method != "none")

    @property
    def has_stats_phase(self) -> bool:
        return self.offsets or self.scales

    @property
    def record_bytes(self) -> int:
        return record_bytes(self.channels)

    @property
    def crc_tag(self) -> str:
        return CONFIG_CRC_TAG

    @property
    def crc_recipe(self) -> tuple[tuple[str, ...], ...]:
        """config_crc's recipe, for the firmware's digest (TAE_CALIB_CONFIG_RECIPE)."""
        return CONFIG_CRC_RECIPE

    def check_windows(self, n: int, where: str = "this model's firmware") -> int:
        """n windows per phase, or UserError: below the minimum the statistics need (saying why), or
        above the capacity the firmware was built with."""
        if int(n) < self.min_windows:
            raise UserError(
                f"--windows {n} is too few: a calibration needs at least {self.min_windows} windows per "
                f"phase ({self.min_windows_why}); pass --windows {self.min_windows} or more"
            )
        if int(n) > self.windows:
            raise UserError(
                f"--windows {n} is more than {where} can calibrate with ({self.min_windows} to "
                f"{self.windows}, calibration.windows); pass a smaller N or rebuild with a larger "
                "calibration.windows"
            )
        return int(n)

    def primary(self) -> dict[str, Any]:
        """The settings every other constant is derived from (PRIMARY)."""
        return {k: getattr(self, k) for k in PRIMARY}

    def rederive(self, changes: dict[str, Any], quant: dict[str, Any]) -> CalibSpec:
        """This spec with some settings changed and every derived constant recomputed (quant:
        manifest_quant's keys, for the CRC)."""
        unknown = set(changes) - set(PRIMARY)
        if unknown:
            raise ValueError(f"{sorted(unknown)} are derived, not settings; change the settings instead")
        values = self.primary() | changes
        if {"method", "percentile", "k_std"} & set(changes) and "scores_windows" not in changes:
            # a rule measured for one method and k holds for no other: the new one's own rule
            values |= {"scores_windows": 0, "scores_why": ""}
        return from_values(values, quant)

    def rank(self, n: int) -> int:
        """The order statistic's rank (1-based) of the percentile over n scores: ceil(p n / 100)."""
        if self.method != "percentile":
            return 0
        r = (self.rank_num * n + self.rank_den - 1) // self.rank_den
        return min(max(r, 1), n)

    def heap(self, n: int | None = None) -> int:
        """Scores the order statistic must keep for n windows (the largest n - rank + 1 ones)."""
        n = self.windows if n is None else n
        return n - self.rank(n) + 1 if self.method == "percentile" else 0

    def stats_samples(self, n: int) -> int:
        """Raw samples of phase 1: every sample of windows 0..n-1 ((n-1) hop + L)."""
        return (n - 1) * self.hop + self.window_length if self.has_stats_phase else 0

    def total_windows(self, n: int) -> int:
        return self.phases * n

    def total_samples(self, n: int) -> int:
        """Samples a calibration of n windows per phase needs from its start (window 0)."""
        w = self.total_windows(n)
        return (w - 1) * self.hop + self.window_length

    @property
    def state_bytes(self) -> int:
        """Static RAM of on-site calibration in tae_app.c (Cortex-M, 4-byte alignment): tae_calib_t
        (counters, the last stretch_n windows' flags, Welford per channel and over the scores, the order
        statistic's heap, the candidate record: 100 + 24 C + 4 K), the record in use unpacked (64 + 16 C),
        three packed records (in use, candidate, storage reads) and four flags. Measured equal on the
        emulated board's ELF."""
        c, k = self.channels, max(self.heap(), 1)
        return (100 + 24 * c + 4 * k) + (64 + 16 * c) + 3 * self.record_bytes + 4

    # ------------------------------------------------------------------ manifest
    def to_manifest(self) -> dict[str, Any]:
        return {
            "windows": self.windows,
            "phases": self.phases,
            "offsets": self.offsets,
            "scales": self.scales,
            "min_windows": self.min_windows,
            "min_windows_why": self.min_windows_why,
            "statistics_min_windows": {"windows": self.stats_windows, "why": self.stats_why},
            "scores_min_windows": {"windows": self.scores_windows, "why": self.scores_why},
            "threshold": {
                "method": self.method,
                "setting": self.setting,
                "source": self.method_source,
                "percentile": self.percentile,
                "rank_fraction": [self.rank_num, self.rank_den],
                "k_std": self.k_std,
                "order_statistic_buffer": self.heap(),
            },
            "max_over_fraction": [self.over_num, self.over_den],
            "reference": {"mean": list(self.ref_mean), "std": list(self.ref_std)},
            "bounds": {
                "max_shift_std": self.max_shift_std,
                "max_shift": list(self.max_shift),
                "max_scale_ratio": self.max_scale_ratio,
                "scale_min": self.scale_min,
                "scale_max": self.scale_max,
                "max_threshold_ratio": self.max_threshold_ratio,
                "threshold_min": self.threshold_min,
                "threshold_max": self.threshold_max,
                "max_over_stretch": [self.stretch_k, self.stretch_n],
                "max_over_stretch_setting": list(self.max_over_stretch_setting),
            },
            "factory_threshold": self.factory_threshold,
            "record": {"version": RECORD_VERSION, "bytes": self.record_bytes},
            "config_crc": self.config_crc,
            "ram_bytes": self.state_bytes,
        }

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any]) -> CalibSpec:
        try:
            c = manifest["calibration"]
            w = manifest["window"]
            t, b = c["threshold"], c["bounds"]
            return cls(
                windows=int(c["windows"]),
                channels=int(w["channels"]),
                window_length=int(w["length"]),
                hop=int(w["hop"]),
                offsets=bool(c["offsets"]),
                scales=bool(c["scales"]),
                method=str(t["method"]),
                setting=str(t["setting"]),
                percentile=float(t["percentile"]),
                rank_num=int(t["rank_fraction"][0]),
                rank_den=int(t["rank_fraction"][1]),
                k_std=float(t["k_std"]),
                over_num=int(c["max_over_fraction"][0]),
                over_den=int(c["max_over_fraction"][1]),
                ref_mean=tuple(float(v) for v in c["reference"]["mean"]),
                ref_std=tuple(float(v) for v in c["reference"]["std"]),
                max_shift=tuple(float(v) for v in b["max_shift"]),
                scale_min=float(b["scale_min"]),
                scale_max=float(b["scale_max"]),
                threshold_min=float(b["threshold_min"]),
                threshold_max=float(b["threshold_max"]),
                factory_threshold=float(c["factory_threshold"]),
                max_shift_std=float(b["max_shift_std"]),
                max_scale_ratio=float(b["max_scale_ratio"]),
                max_threshold_ratio=float(b["max_threshold_ratio"]),
                method_source=str(t["source"]),
                stats_windows=int(c["statistics_min_windows"]["windows"]),
                stats_why=str(c["statistics_min_windows"]["why"]),
                scores_windows=int(c["scores_min_windows"]["windows"]),
                scores_why=str(c["scores_min_windows"]["why"]),
                max_over_stretch_setting=tuple(int(v) for v in b["max_over_stretch_setting"]),
                min_windows=int(c["min_windows"]),
                min_windows_why=str(c["min_windows_why"]),
                stretch_k=int(b["max_over_stretch"][0]),
                stretch_n=int(b["max_over_stretch"][1]),
                config_crc=int(c["config_crc"]),
            )
        except KeyError as exc:
            raise UserError(
                f"the manifest's `calibration` section lacks {exc.args[0]!r} (made before on-site "
                "calibration existed, or by an older tinyae); re-run `make model`"
            ) from None
        except (TypeError, ValueError, IndexError, AttributeError) as exc:
            raise UserError(
                f"the manifest has no usable `calibration` section ({exc}); re-run `make model`"
            ) from None


# The recipe of config_crc, in the order hashed after CONFIG_CRC_TAG: (encoding, the value here: a
# calibration field or a manifest_quant key, the firmware's constant or table [, its length]). The one
# definition: config_crc below packs it, and model_config.h carries it as TAE_CALIB_CONFIG_RECIPE
# (templates/calibration_block.j2), which the firmware's tae_digest_calibration() (tae_digest.c) runs over
# the constants and tables it was built with. Encodings: little-endian u8, u16, u32, i32, f32, and f32[]
# (one f32 per entry). The firmware hashes its own threshold (TAE_THRESHOLD) where the record's factory
# threshold goes: the two are one number in a consistent build (check_crc).
CONFIG_CRC_TAG = "tinyae-calibration"
CONFIG_CRC_RECIPE: tuple[tuple[str, ...], ...] = (
    ("u8", "version", "TAE_CALIB_VERSION"),
    ("u8", "channels", "TAE_CHANNELS"),
    ("u8", "offsets", "TAE_CALIB_OFFSETS"),
    ("u8", "scales", "TAE_CALIB_SCALES"),
    ("u8", "method", "TAE_CALIB_METHOD"),
    ("u32", "rank_num", "TAE_CALIB_RANK_NUM"),
    ("u32", "rank_den", "TAE_CALIB_RANK_DEN"),
    ("f32", "k_std", "TAE_CALIB_K_STD"),
    ("u32", "over_num", "TAE_CALIB_OVER_NUM"),
    ("u32", "over_den", "TAE_CALIB_OVER_DEN"),
    ("f32[]", "ref_mean", "tae_calib_ref_mean", "TAE_CHANNELS"),
    ("f32[]", "ref_std", "tae_calib_ref_std", "TAE_CHANNELS"),
    ("f32[]", "max_shift", "tae_calib_max_shift", "TAE_CHANNELS"),
    ("f32", "scale_min", "TAE_CALIB_SCALE_MIN"),
    ("f32", "scale_max", "TAE_CALIB_SCALE_MAX"),
    ("f32", "threshold_min", "TAE_CALIB_THRESHOLD_MIN"),
    ("f32", "threshold_max", "TAE_CALIB_THRESHOLD_MAX"),
    ("f32", "factory_threshold", "TAE_THRESHOLD"),
    ("f32", "in_scale", "TAE_IN_SCALE"),
    ("i32", "in_zero_point", "TAE_IN_ZERO_POINT"),
    ("f32[]", "norm_offset", "tae_norm_offset", "TAE_NORM_PERIOD"),
    ("f32[]", "norm_gain", "tae_norm_gain", "TAE_NORM_PERIOD"),
    ("u16", "min_windows", "TAE_CALIB_MIN_WINDOWS"),
    ("u16", "stretch_k", "TAE_CALIB_STRETCH_K"),
    ("u16", "stretch_n", "TAE_CALIB_STRETCH_N"),
)  # fmt: skip
_PACK = {"u8": "B", "u16": "H", "u32": "I", "i32": "i", "f32": "f"}


def config_crc(fields_: dict[str, Any], manifest_like: dict[str, Any]) -> int:
    """CRC-32 over the canonical bytes of every constant a record's meaning depends on (CONFIG_CRC_RECIPE):
    the calibration settings and bounds, the minimum windows and the anomalous-stretch rule, the factory
    normalization, the input quantization and the factory threshold. A record made under other constants
    is refused (tae_calib_unpack: OTHER_CONFIG)."""
    values = manifest_like | fields_ | {"version": RECORD_VERSION, "method": METHODS.index(fields_["method"])}
    blob = CONFIG_CRC_TAG.encode()
    for kind, name, *_ in CONFIG_CRC_RECIPE:
        if kind == "f32[]":
            xs = [float(v) for v in values[name]]
            blob += struct.pack(f"<{len(xs)}f", *xs)
        else:
            v = values[name]
            blob += struct.pack("<" + _PACK[kind], float(v) if kind == "f32" else int(v))
    return zlib.crc32(blob) & 0xFFFFFFFF


def build(
    cfg,  # tinyae.train.config.CalibrationConfig
    threshold_cfg,  # tinyae.train.config.ThresholdConfig
    train_windows: np.ndarray,
    *,
    window_length: int,
    hop: int,
    channel_names: list[str],
    factory_threshold: float,
    norm_offset: np.ndarray,
    norm_gain: np.ndarray,
    in_scale: float,
    in_zero_point: int,
    normal_scores: np.ndarray | None = None,
) -> CalibSpec:
    """The manifest's calibration section for a trained model.

    train_windows: the raw normal training windows [n, L, C] in time order (the per-channel reference
    statistics are computed over all their samples, in float64, stored as float32; the statistics rule
    measures how they vary over stretches of consecutive windows). normal_scores: the int8 scores the
    factory threshold was calibrated on (mad and pot map onto mean + k std through them, and their
    threshold rule is measured on them). The statistics rule's limits are warned about (train/warned.py).
    """
    x = np.asarray(train_windows, np.float64)
    flat = x.reshape(-1, x.shape[-1])
    c = flat.shape[1]
    mean, std = flat.mean(axis=0), flat.std(axis=0)
    if cfg.offsets or cfg.scales:
        for i in np.flatnonzero(std <= np.maximum(np.abs(mean), 1.0) * np.finfo(np.float32).eps):
            raise UserError(
                f"channel '{channel_names[i]}' is constant in the normal training data, so on-site "
                "calibration cannot learn its offset or scale; set calibration.offsets = false and "
                "calibration.scales = false, or drop the channel"
            )
    method, percentile, k_std, source = device_method(
        cfg.threshold, threshold_cfg, factory_threshold, normal_scores
    )
    measured = None
    if method == "mean_std" and cfg.threshold == "model" and threshold_cfg.method in minimum.MAPPED:
        assert normal_scores is not None  # device_method refused the mapping without them
        measured = minimum.scores_rule(normal_scores, k_std, factory_threshold, threshold_cfg.method)
    stats, warning = minimum.stats_rule(
        x, hop, offsets=cfg.offsets, scales=cfg.scales, channel_names=channel_names, windows=cfg.windows
    )
    if warning:
        warn(warning)
    windows = int(cfg.windows)
    # the rules measured on the trained model are known only now: rather than lose the training run,
    # the capacity rises to what they need, saying so (as `tinyae threshold` does when its method needs
    # more); a minimum the settings alone imply was refused when the config was loaded
    least, why = max((stats.windows, stats.why), (measured.windows, measured.why) if measured else (0, ""))
    if windows < least <= minimum.MAX_WINDOWS:
        warn(
            f"calibration.windows {windows} -> {least}: an on-site calibration of this model needs at least "
            f"{least} windows per phase ({why}); the device's calibration buffers are sized for {least} "
            '(set calibration.windows to at least that to silence this, or calibration.threshold = "none" '
            "and calibration.offsets / scales = false to learn less on site)"
        )
        windows = least
    over = Fraction(str(cfg.max_over_fraction)).limit_denominator(1000)
    values: dict[str, Any] = {
        "windows": windows,
        "channels": c,
        "window_length": int(window_length),
        "hop": int(hop),
        "offsets": bool(cfg.offsets),
        "scales": bool(cfg.scales),
        "method": method,
        "setting": str(cfg.threshold),
        "percentile": float(percentile),
        "k_std": _f32(k_std),
        "over_num": over.numerator,
        "over_den": over.denominator,
        "ref_mean": tuple(_f32(v) for v in mean),
        "ref_std": tuple(_f32(v) for v in std),
        "factory_threshold": float(np.float32(factory_threshold)),
        "max_shift_std": float(cfg.max_shift_std),
        "max_scale_ratio": float(cfg.max_scale_ratio),
        "max_threshold_ratio": float(cfg.max_threshold_ratio),
        "method_source": source,
        "stats_windows": stats.windows,
        "stats_why": stats.why,
        "scores_windows": measured.windows if measured else 0,
        "scores_why": measured.why if measured else "",
        "max_over_stretch_setting": tuple(int(v) for v in cfg.max_over_stretch),
    }
    quant = {
        "in_scale": float(in_scale),
        "in_zero_point": int(in_zero_point),
        "norm_offset": [float(v) for v in np.asarray(norm_offset, np.float32)],
        "norm_gain": [float(v) for v in np.asarray(norm_gain, np.float32)],
    }
    return from_values(values, quant)


# The settings a CalibSpec is made from; every other field is derived from them in `from_values`.
PRIMARY = (
    "windows", "channels", "window_length", "hop", "offsets", "scales", "method", "setting", "percentile",
    "k_std", "over_num", "over_den", "ref_mean", "ref_std", "factory_threshold", "max_shift_std",
    "max_scale_ratio", "max_threshold_ratio", "method_source", "stats_windows", "stats_why",
    "scores_windows", "scores_why", "max_over_stretch_setting",
)  # fmt: skip


def from_values(values: dict[str, Any], quant: dict[str, Any]) -> CalibSpec:
    """A CalibSpec from its settings (PRIMARY; other keys are ignored): the one place the derived
    constants are computed (quant: manifest_quant's keys, for the CRC). UserError when the settings
    cannot work together (calibration.windows below the minimum, a percentile too fine)."""
    missing = set(PRIMARY) - set(values)
    if missing:
        raise ValueError(f"calibration values lack {sorted(missing)}")
    v: dict[str, Any] = {k: values[k] for k in PRIMARY}
    windows, t = int(v["windows"]), _f32(v["factory_threshold"])
    frac = Fraction(str(v["percentile"])) / 100
    if v["method"] == "percentile" and frac.numerator * windows + frac.denominator >= 2**32:
        raise UserError(
            f"the calibration percentile {v['percentile']} has too fine a fraction for "
            f"calibration.windows = {windows}; round the percentile (e.g. to 0.1)"
        )
    if int(v["scores_windows"]):  # measured on the factory's normal scores (mad, pot)
        rule = minimum.Rule(int(v["scores_windows"]), str(v["scores_why"]))
    else:
        rule = minimum.threshold_rule(v["method"], float(v["percentile"]), float(v["k_std"]), windows)
    least = max(rule.windows, int(v["stats_windows"]))
    why = rule.why if rule.windows >= int(v["stats_windows"]) else str(v["stats_why"])
    if least > windows:
        raise UserError(
            f"calibration.windows = {windows} is below the {least} windows per phase an on-site calibration "
            f'needs ({why}); set calibration.windows to at least {least}, or calibration.threshold = "none" '
            "(and calibration.offsets / scales = false) to learn less on site"
        )
    derived = {
        "factory_threshold": t,
        "rank_num": frac.numerator,
        "rank_den": frac.denominator,
        "max_shift": tuple(_f32_limit(v["max_shift_std"] * s) for s in v["ref_std"]),
        "scale_min": _f32(1.0 / v["max_scale_ratio"]),
        "scale_max": _f32(v["max_scale_ratio"]),
        "threshold_min": _f32(t / v["max_threshold_ratio"]),
        "threshold_max": _f32_limit(t * v["max_threshold_ratio"]),
        "min_windows": least,
        "min_windows_why": why,
    }
    derived["stretch_k"], derived["stretch_n"] = minimum.stretch(
        v["window_length"], v["hop"], tuple(v["max_over_stretch_setting"])
    )
    kept = v | derived
    return CalibSpec(**kept, config_crc=config_crc(kept, quant))


def manifest_quant(manifest: dict[str, Any]) -> dict[str, Any]:
    """The constants config_crc reads from a manifest (its JSON layout) besides the calibration section."""
    return {
        "in_scale": manifest["input"]["scale"],
        "in_zero_point": manifest["input"]["zero_point"],
        "norm_offset": manifest["normalization"]["offset"],
        "norm_gain": manifest["input"]["gain"],
    }


def check_crc(spec: CalibSpec, manifest: dict[str, Any]) -> None:
    """The manifest's (JSON layout) calibration constants must be what its settings give, and its factory
    threshold the model's threshold (a hand-edited manifest, or one whose threshold an older tinyae
    moved without its calibration constants, is refused)."""
    if config_crc(spec.primary() | _derived(spec), manifest_quant(manifest)) != spec.config_crc or (
        from_values(spec.primary(), manifest_quant(manifest)) != spec
    ):
        raise UserError(
            "the manifest's calibration constants do not match its settings (the manifest was edited "
            "by hand); re-run `make model`"
        )
    threshold = _f32(manifest["threshold"]["value"])
    if threshold != spec.factory_threshold:
        raise UserError(
            f"the manifest's threshold is {threshold:.6g} but its calibration constants were derived from "
            f"{spec.factory_threshold:.6g} (the threshold was moved by an older `tinyae threshold`); run "
            "`tinyae threshold` again with the method you want, or `make model`"
        )


def _derived(spec: CalibSpec) -> dict[str, Any]:
    return {f.name: getattr(spec, f.name) for f in fields(spec) if f.name not in PRIMARY}
