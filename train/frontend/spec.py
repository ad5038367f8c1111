"""The front-end's definition: from the experiment config to the manifest's `frontend` section, the
feature layout, the generated tables and `frontend_config.h`.

The manifest section is the one source: the C header is rendered from it, and the host build, the
NumPy mirror and the device all read the same numbers (docs/architecture.md, "Front-end").
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from tinyae.errors import UserError
from tinyae.train.config import (
    F32_TINY,
    FFT_MAX,
    FFT_MIN,
    FRONTEND_KINDS,
    FRONTEND_SPECTRA,
    FRONTEND_STATS,
    FRONTEND_WINDOWS,
)

KINDS = FRONTEND_KINDS
STATS = FRONTEND_STATS
WINDOW_FUNCTIONS = FRONTEND_WINDOWS
SPECTRA = FRONTEND_SPECTRA
MIN_FFT, MAX_FFT = FFT_MIN, FFT_MAX  # band edges are uint16 in the C tables
SMALLEST_FLOOR = F32_TINY  # tae_fe_logf's domain: positive normal floats
# frontend.log_floor = 0 (the default): each band's floor is its median over the normal training
# windows, frontend.log_floor_db (default AUTO_FLOOR_DB) decibels down (train/frontend/fit.py), whatever
# the sensor's unit (g, m/s^2, ADC counts). 3 dB did best of 0/3/6/10/20/30 dB on the bench's spectral
# models (README, measured figures).
AUTO_FLOOR_DB = 3.0


@dataclass(frozen=True)
class Spectral:
    fft_length: int
    frames: int  # non-overlapping frames of fft_length samples from the window's start, averaged
    window: str
    spectrum: str  # power | magnitude
    log: bool
    # per feature (channel-major, C*bands), in the spectrum's units; () = not fitted yet (auto) or no log
    log_floor: tuple[float, ...]
    band_edges: tuple[int, ...]  # band b averages FFT bins [edges[b], edges[b+1])
    floor_rule: str = "fixed"  # "fixed" (frontend.log_floor) or "auto" (fitted on the training windows)
    floor_db: float = AUTO_FLOOR_DB  # "auto": decibels below each band's median (frontend.log_floor_db)

    @property
    def bands(self) -> int:
        return len(self.band_edges) - 1

    @property
    def work_bytes(self) -> int:
        """sizeof(tae_frontend_work_t): half-length FFT re/im + per-bin accumulator, float32."""
        n = self.fft_length
        return 4 * (n + n // 2 + 1)

    @classmethod
    def from_manifest(cls, sp: dict) -> Spectral:
        return cls(
            fft_length=int(sp["fft_length"]),
            frames=int(sp["frames"]),
            window=sp["window"],
            spectrum=sp["spectrum"],
            log=bool(sp["log"]),
            log_floor=tuple(float(v) for v in sp["log_floor"] or ()),
            band_edges=tuple(int(e) for e in sp["band_edges"]),
            floor_rule=sp.get("log_floor_rule", "fixed"),
            floor_db=float(sp.get("log_floor_db", AUTO_FLOOR_DB)),
        )

    def window_table(self) -> np.ndarray:
        """The window function times 1/sum(w): the real FFT's split step doubles it, so a bin-centred
        tone of amplitude A reads A."""
        n = np.arange(self.fft_length, dtype=np.float64)
        phase = 2.0 * math.pi * n / self.fft_length  # periodic (DFT-even) windows
        w = {
            "hann": 0.5 - 0.5 * np.cos(phase),
            "hamming": 0.54 - 0.46 * np.cos(phase),
            "rect": np.ones(self.fft_length),
        }[self.window]
        return (w * (1.0 / w.sum())).astype(np.float32)

    def twiddles(self) -> np.ndarray:
        """[N] float32: cos(2 pi k/N), -sin(2 pi k/N) interleaved for k < N/2, rounded from float64."""
        k = np.arange(self.fft_length // 2, dtype=np.float64)
        ang = 2.0 * math.pi * k / self.fft_length
        return np.stack([np.cos(ang), -np.sin(ang)], axis=1).reshape(-1).astype(np.float32)

    def bit_reversal(self) -> np.ndarray:
        """[N/2] the bit-reversal permutation of the N/2 complex points (uint16 in the C table)."""
        n = self.fft_length // 2
        bits = n.bit_length() - 1
        return np.array([int(format(i, f"0{bits}b")[::-1], 2) if bits else 0 for i in range(n)], np.int64)

    def to_manifest(self, sample_rate_hz: float) -> dict[str, Any]:
        hz = sample_rate_hz / self.fft_length if sample_rate_hz > 0 else None
        return {
            "fft_length": self.fft_length,
            "frames": self.frames,
            "window": self.window,
            "spectrum": self.spectrum,
            "log": self.log,
            "log_floor": list(self.log_floor) if self.log else None,
            "log_floor_rule": self.floor_rule,
            **({"log_floor_db": self.floor_db} if self.floor_rule == "auto" else {}),
            "band_edges": list(self.band_edges),
            "bands_hz": (
                # centre frequencies of each band's first and last bin
                [
                    [a * hz, (b - 1) * hz]
                    for a, b in zip(self.band_edges[:-1], self.band_edges[1:], strict=True)
                ]
                if hz
                else None
            ),
        }


@dataclass(frozen=True)
class FrontendSpec:
    kinds: tuple[str, ...]
    length: int
    channels: int
    spectral: Spectral | None = None
    stats: tuple[str, ...] = ()

    @property
    def raw_only(self) -> bool:
        return self.kinds == ("raw",)

    @property
    def needs_fit(self) -> bool:
        """True while the spectral log floor is still to be derived from training windows."""
        return bool(self.spectral and self.spectral.log and not self.spectral.log_floor)

    @property
    def sizes(self) -> dict[str, int]:
        return {
            "raw": self.length * self.channels if "raw" in self.kinds else 0,
            "spectral": self.channels * self.spectral.bands if self.spectral else 0,
            "stats": self.channels * len(self.stats),
        }

    @property
    def feature_size(self) -> int:
        return sum(self.sizes.values())

    def feature_names(self, channel_names: list[str]) -> list[str]:
        names: list[str] = []
        if "raw" in self.kinds:
            names += [f"{ch}@{t}" for t in range(self.length) for ch in channel_names]
        if self.spectral:
            names += [f"{ch}.band{b}" for ch in channel_names for b in range(self.spectral.bands)]
        names += [f"{ch}.{s}" for ch in channel_names for s in self.stats]
        return names

    def to_manifest(self, sample_rate_hz: float = 0.0) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kinds": list(self.kinds),
            "feature_size": self.feature_size,
            "sizes": self.sizes,
        }
        if self.spectral:
            out["spectral"] = self.spectral.to_manifest(sample_rate_hz)
        if self.stats:
            out["stats"] = list(self.stats)
        return out

    @classmethod
    def from_manifest(cls, manifest: dict) -> FrontendSpec:
        fe, w = manifest["frontend"], manifest["window"]
        spectral = Spectral.from_manifest(fe["spectral"]) if fe.get("spectral") else None
        return cls(
            tuple(fe["kinds"]), int(w["length"]), int(w["channels"]), spectral, tuple(fe.get("stats", ()))
        )

    def digest(self) -> str:
        return hashlib.sha256(repr(self).encode()).hexdigest()[:16]


def _fft_length(requested: int, length: int) -> int:
    if requested == 0:
        n = 1 << (length.bit_length() - 1)  # the largest power of two in the window
        if n < MIN_FFT:
            raise UserError(
                f"the spectral front-end needs a window of at least {MIN_FFT} samples "
                f"(window.length = {length}); lengthen the window"
            )
        return min(n, MAX_FFT)
    if requested < MIN_FFT or requested > MAX_FFT or requested & (requested - 1):
        raise UserError(
            f"frontend.fft_length = {requested} must be a power of two between {MIN_FFT} and {MAX_FFT} "
            "(or 0 for the largest one that fits the window)"
        )
    if requested > length:
        raise UserError(
            f"frontend.fft_length = {requested} is longer than the window ({length} samples); "
            "use a shorter FFT or a longer window.length"
        )
    return requested


def _band_edges(cfg, n: int, sample_rate_hz: float) -> tuple[int, ...]:
    if (cfg.freq_min_hz > 0 or cfg.freq_max_hz > 0) and sample_rate_hz <= 0:
        raise UserError(
            "frontend.freq_min_hz/freq_max_hz need the sample rate, which this data source does not give; "
            "set data.sample_rate_hz"
        )
    if cfg.freq_min_hz < 0 or cfg.freq_max_hz < 0:
        raise UserError("frontend.freq_min_hz and frontend.freq_max_hz must not be negative")
    nyquist = sample_rate_hz / 2
    for key in ("freq_min_hz", "freq_max_hz"):
        if getattr(cfg, key) > nyquist * (1 + 1e-9):
            raise UserError(
                f"frontend.{key} = {getattr(cfg, key):g} is above the Nyquist frequency ({nyquist:g} Hz at "
                f"{sample_rate_hz:g} Hz); lower it, or check the data's sample rate"
            )
    # Bin 0 (DC) is never kept: the mean was removed, so it only holds frame-to-frame drift.
    lo = max(1, math.ceil(cfg.freq_min_hz * n / sample_rate_hz)) if cfg.freq_min_hz > 0 else 1
    hi = min(n // 2, math.floor(cfg.freq_max_hz * n / sample_rate_hz)) if cfg.freq_max_hz > 0 else n // 2
    if hi < lo:
        raise UserError(
            f"no FFT bin lies between frontend.freq_min_hz = {cfg.freq_min_hz} and freq_max_hz = "
            f"{cfg.freq_max_hz} (bin width {sample_rate_hz / n:g} Hz); widen the range or lengthen the FFT"
        )
    kept = hi - lo + 1
    bands = cfg.bins or kept
    if not 1 <= bands <= kept:
        raise UserError(
            f"frontend.bins = {cfg.bins} must be between 1 and the {kept} FFT bins in the frequency range "
            "(0 keeps every bin)"
        )
    return (*(lo + (b * kept) // bands for b in range(bands)), hi + 1)


def build_spec(cfg, length: int, channels: int, sample_rate_hz: float) -> FrontendSpec:
    """Validate the [frontend] config section against the window and return the spec."""
    kinds = tuple(cfg.kinds)
    if not kinds:
        raise UserError(f"frontend.kinds is empty; choose one or more of {', '.join(KINDS)}")
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise UserError(f"frontend.kinds contains {unknown[0]!r}; choose from {', '.join(KINDS)}")
    if len(set(kinds)) != len(kinds):
        raise UserError(f"frontend.kinds = {list(kinds)} names a kind twice; list each once")
    kinds = tuple(k for k in KINDS if k in kinds)  # the feature layout's order, whatever the config's
    spectral = None
    if "spectral" in kinds:
        if cfg.window_fn not in WINDOW_FUNCTIONS:
            raise UserError(
                f"frontend.window_fn = {cfg.window_fn!r}; choose from {', '.join(WINDOW_FUNCTIONS)}"
            )
        if cfg.spectrum not in SPECTRA:
            raise UserError(f"frontend.spectrum = {cfg.spectrum!r}; choose power or magnitude")
        if cfg.log and cfg.log_floor != 0 and not SMALLEST_FLOOR <= cfg.log_floor <= 1e30:
            raise UserError(
                f"frontend.log_floor = {cfg.log_floor:g} must be 0 (derived from the training data) or a "
                f"positive normal float32 (at least {SMALLEST_FLOOR:.3g}); the log of a spectrum needs a "
                "floor above zero"
            )
        n = _fft_length(cfg.fft_length, length)
        edges = _band_edges(cfg, n, sample_rate_hz)
        auto = bool(cfg.log) and cfg.log_floor == 0
        fixed = (float(np.float32(cfg.log_floor)),) * (channels * (len(edges) - 1))
        spectral = Spectral(
            fft_length=n,
            frames=length // n,
            window=cfg.window_fn,
            spectrum=cfg.spectrum,
            log=bool(cfg.log),
            log_floor=() if auto or not cfg.log else fixed,
            band_edges=edges,
            floor_rule="auto" if auto else "fixed",
            floor_db=float(getattr(cfg, "log_floor_db", AUTO_FLOOR_DB)),
        )
    stats: tuple[str, ...] = ()
    if "stats" in kinds:
        bad = [s for s in cfg.stats if s not in STATS]
        if bad or not cfg.stats:
            raise UserError(f"frontend.stats = {list(cfg.stats)} must list some of {', '.join(STATS)}")
        stats = tuple(s for s in STATS if s in cfg.stats)
    return FrontendSpec(kinds, length, channels, spectral, stats)
