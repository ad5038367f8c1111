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
The manifest fixes the bounds a calibration must respect (a site mean within `max_shift_std` training
standard deviations of the training mean, a site spread within [1/r, r] of the training spread, at most
`max_over_fraction` of the scored windows above the factory threshold T, a threshold within [T/r, T*r]);
outside them the device refuses the calibration and keeps what it used before: the data were not
normal, or the machine is not the one the model was trained for.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, fields
from fractions import Fraction
from typing import Any

import numpy as np

from tinyae.errors import UserError

RECORD_VERSION = 1
RECORD_MAGIC = b"TAEC"
METHODS = ("none", "percentile", "mean_std")  # index = the record's / TAE_CALIB_METHOD's code
RECORD_FIXED_BYTES = 72  # header, identity, threshold and score figures, CRC (tae_calib.h)


def record_bytes(channels: int) -> int:
    """Size of a stored calibration record: 72 + 16 bytes per channel (mean, std, shift, gain)."""
    return RECORD_FIXED_BYTES + 16 * int(channels)


def _f32(x: float) -> float:
    return float(np.float32(x))


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

    def check_windows(self, n: int) -> int:
        if not 1 <= int(n) <= self.windows:
            raise UserError(
                f"--windows {n} is outside what this model's firmware can calibrate with (1 to "
                f"{self.windows}, calibration.windows); pass a smaller N or rebuild with a larger "
                "calibration.windows"
            )
        return int(n)

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
        (counters, Welford per channel and over the scores, the order statistic's heap, the candidate
        record: 92 + 24 C + 4 K), the record in use unpacked (64 + 16 C), three packed records (in use,
        candidate, storage reads) and four flags. Measured equal on the emulated board's ELF."""
        c, k = self.channels, max(self.heap(), 1)
        return (92 + 24 * c + 4 * k) + (64 + 16 * c) + 3 * self.record_bytes + 4

    # ------------------------------------------------------------------ manifest
    def to_manifest(self) -> dict[str, Any]:
        return {
            "windows": self.windows,
            "phases": self.phases,
            "offsets": self.offsets,
            "scales": self.scales,
            "threshold": {
                "method": self.method,
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


def _method(
    cal_method: str, threshold_cfg, factory_threshold: float, normal_scores: np.ndarray | None
) -> tuple[str, float, float, str]:  # threshold_cfg: ThresholdConfig
    """The device's threshold method, its percentile and k, and how they were chosen (the config's words).

    The device knows two methods; a model's method maps onto them where it has an exact equivalent,
    or, for mad and pot (no on-device form), onto mean + k std with the k that reproduces the factory
    threshold on the factory's normal scores (the site threshold sits as many of the site's standard
    deviations above the site's mean as the factory threshold above the factory's); it is refused where it
    has none, so a site threshold never silently means something else."""
    if cal_method != "model":
        return (
            cal_method,
            threshold_cfg.percentile,
            threshold_cfg.k_std,
            f"calibration.threshold = {cal_method}",
        )
    method = threshold_cfg.method
    if method in ("mad", "pot"):
        s = np.asarray(normal_scores if normal_scores is not None else [], np.float64)
        if len(s) < 2 or s.std() == 0:
            raise UserError(
                f"threshold.method = {method} has no on-site form without the normal scores' spread; set "
                'calibration.threshold = "percentile" or "mean_std", or "none" to keep the factory threshold'
            )
        k = round(float((factory_threshold - s.mean()) / s.std()), 4)
        return (
            "mean_std",
            threshold_cfg.percentile,
            k,
            (
                f"threshold.method = {method} has no on-device form: mean + {k:g} std of the site's scores, "
                "the k that gives the factory threshold on the factory's normal scores"
            ),
        )
    if threshold_cfg.factor != 1.0 and method in ("percentile", "mean_std"):
        raise UserError(
            f"threshold.factor = {threshold_cfg.factor} has no on-site equivalent (the device computes the "
            'plain percentile or mean + k*std); set calibration.threshold = "none" to keep the factory '
            "threshold on site, or threshold.factor = 1"
        )
    if method == "best_f1":
        return (
            "percentile",
            threshold_cfg.percentile,
            threshold_cfg.k_std,
            (
                "threshold.method = best_f1 needs labels, which a site does not have: the percentile "
                "threshold.percentile instead"
            ),
        )
    if method == "target_fpr":
        # the lowest threshold with at most fpr*N windows above it is the nearest-rank (1 - fpr) quantile
        pct = round(100.0 * (1.0 - threshold_cfg.target_fpr), 6)
        return (
            "percentile",
            pct,
            threshold_cfg.k_std,
            (
                f"threshold.method = target_fpr ({threshold_cfg.target_fpr}): the {pct}th percentile of the "
                "site's scores"
            ),
        )
    return method, threshold_cfg.percentile, threshold_cfg.k_std, f"threshold.method = {method}"


def config_crc(fields_: dict[str, Any], manifest_like: dict[str, Any]) -> int:
    """CRC-32 over the canonical bytes of every constant a record's meaning depends on: the
    calibration settings and bounds, the factory normalization, the input quantization and the factory
    threshold. A record made under other constants is refused (tae_calib_unpack: OTHER_CONFIG)."""
    c = int(fields_["channels"])
    f32 = lambda xs: struct.pack(f"<{len(xs)}f", *xs)  # noqa: E731
    blob = b"tinyae-calibration" + struct.pack(
        "<BBBBBIIfII", RECORD_VERSION, c, int(fields_["offsets"]), int(fields_["scales"]),
        METHODS.index(fields_["method"]), int(fields_["rank_num"]), int(fields_["rank_den"]),
        float(fields_["k_std"]), int(fields_["over_num"]), int(fields_["over_den"]),
    )  # fmt: skip
    blob += f32(fields_["ref_mean"]) + f32(fields_["ref_std"]) + f32(fields_["max_shift"])
    blob += f32(
        [fields_["scale_min"], fields_["scale_max"], fields_["threshold_min"], fields_["threshold_max"]]
    )
    blob += f32([fields_["factory_threshold"], manifest_like["in_scale"]])
    blob += struct.pack("<i", int(manifest_like["in_zero_point"]))
    blob += f32(manifest_like["norm_offset"]) + f32(manifest_like["norm_gain"])
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

    train_windows: the raw normal training windows [n, L, C] (the per-channel reference statistics
    are computed over all their samples, in float64, stored as float32). normal_scores: the int8 scores
    the factory threshold was calibrated on (mad and pot map onto mean + k std through them).
    """
    x = np.asarray(train_windows, np.float64)
    x = x.reshape(-1, x.shape[-1])
    c = x.shape[1]
    mean, std = x.mean(axis=0), x.std(axis=0)
    if cfg.offsets or cfg.scales:
        for i in np.flatnonzero(std <= np.maximum(np.abs(mean), 1.0) * np.finfo(np.float32).eps):
            raise UserError(
                f"channel '{channel_names[i]}' is constant in the normal training data, so on-site "
                "calibration cannot learn its offset or scale; set calibration.offsets = false and "
                "calibration.scales = false, or drop the channel"
            )
    method, percentile, k_std, source = _method(
        cfg.threshold, threshold_cfg, factory_threshold, normal_scores
    )
    frac = Fraction(str(percentile)) / 100
    if frac.numerator * cfg.windows + frac.denominator >= 2**32:
        raise UserError(
            f"the calibration percentile {percentile} has too fine a fraction for "
            f"calibration.windows = {cfg.windows}; round the percentile (e.g. to 0.1)"
        )
    over = Fraction(str(cfg.max_over_fraction)).limit_denominator(1000)
    t = float(np.float32(factory_threshold))
    values: dict[str, Any] = {
        "windows": int(cfg.windows),
        "channels": c,
        "window_length": int(window_length),
        "hop": int(hop),
        "offsets": bool(cfg.offsets),
        "scales": bool(cfg.scales),
        "method": method,
        "percentile": float(percentile),
        "rank_num": frac.numerator,
        "rank_den": frac.denominator,
        "k_std": _f32(k_std),
        "over_num": over.numerator,
        "over_den": over.denominator,
        "ref_mean": tuple(_f32(v) for v in mean),
        "ref_std": tuple(_f32(v) for v in std),
        "max_shift": tuple(_f32(cfg.max_shift_std * s) for s in std),
        "scale_min": _f32(1.0 / cfg.max_scale_ratio),
        "scale_max": _f32(cfg.max_scale_ratio),
        "threshold_min": _f32(t / cfg.max_threshold_ratio),
        "threshold_max": _f32(t * cfg.max_threshold_ratio),
        "factory_threshold": t,
        "max_shift_std": float(cfg.max_shift_std),
        "max_scale_ratio": float(cfg.max_scale_ratio),
        "max_threshold_ratio": float(cfg.max_threshold_ratio),
        "method_source": source,
    }
    quant = {
        "in_scale": float(in_scale),
        "in_zero_point": int(in_zero_point),
        "norm_offset": [float(v) for v in np.asarray(norm_offset, np.float32)],
        "norm_gain": [float(v) for v in np.asarray(norm_gain, np.float32)],
    }
    return from_values(values, quant)


def from_values(values: dict[str, Any], quant: dict[str, Any]) -> CalibSpec:
    """A CalibSpec from every field but config_crc, which is computed (quant: manifest_quant's keys)."""
    names = {f.name for f in fields(CalibSpec)} - {"config_crc"}
    missing = names - set(values)
    if missing:
        raise ValueError(f"calibration values lack {sorted(missing)}")
    kept = {k: values[k] for k in names}
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
    """The manifest's (JSON layout) config_crc must be what its constants give (a hand-edited manifest is
    refused)."""
    values = {f.name: getattr(spec, f.name) for f in fields(spec)}
    if config_crc(values, manifest_quant(manifest)) != spec.config_crc:
        raise UserError(
            "the manifest's calibration.config_crc does not match its constants (the manifest was edited "
            "by hand); re-run `make model`"
        )
