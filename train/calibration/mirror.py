"""The host mirror of an on-site calibration: from the samples a device saw (a CSV recording, or the
samples it reported in sensor mode), the record it computes, bit for bit.

Phase 1 feeds the raw samples to the core's C (tinyae.train.calibration.native); phase 2 scores its windows
with the candidate correction through the host reference (TFLM's kernels, bit-exact with the device's
engines) and feeds the scores to the same C. `cross_check` then recomputes everything independently
in NumPy (float64 statistics, a sort for the order statistic) within stated tolerances.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinyae.errors import UserError
from tinyae.train.calibration import native as nat
from tinyae.train.calibration.record import OUTCOMES, Record
from tinyae.train.calibration.spec import CalibSpec
from tinyae.train.data.windowing import make_windows

# scores(windows [k, L, C], correction (shift [C], gain [C]) or None) -> float32 [k]: the device's scores
Scorer = Callable[[np.ndarray, tuple[np.ndarray, np.ndarray] | None], np.ndarray]

# NumPy cross-check tolerances (float32 Welford over up to ~1e5 samples vs float64 two-pass): site mean
# and std within STATS_RTOL of the channel's scale (the largest of the training std, the site std and the
# site's shift from the training mean: the magnitude the device's float32 Welford rounds at) plus one
# float32 step of the site mean (what a float32 mean can hold at all); mean + k std within SCORE_RTOL
# relative. The order statistic is compared exactly.
STATS_RTOL = 1e-4
SCORE_RTOL = 1e-5
# A deviation from the training mean whose square is near float32's largest value (3.4e38) can make the
# device's M2 infinite where float64 stays finite: such a channel may be non-finite on either side.
OVERFLOW_DEVIATION = 1e18


@dataclass
class MirrorResult:
    windows: int  # N per phase
    outcome: str  # tae_calib.h's outcome: "stored" = a valid record to store, else the refusal
    detail: int  # the channel of a refusal (255: the scores)
    record: bytes  # the candidate record, packed (what the device stores when outcome is "stored")
    samples_used: int  # samples from the calibration's start to the end of its last window
    phase2_scores: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    cluster_end: int = (
        0  # phase-2 index of the last window of the densest stretch above the factory threshold
    )
    # per channel: "" when its phase-1 statistics are within the bounds, else the outcome that refuses it
    # (tae_calib_channel_verdict, the device's own check); empty when phase 1 did not end
    channel_verdicts: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return self.outcome == "stored"

    @property
    def parsed(self) -> Record:
        return Record.from_bytes(self.record)


def needed_samples(spec: CalibSpec, n: int) -> int:
    return spec.total_samples(n)


def default_windows(spec: CalibSpec, available: int, where: str, say: Callable[[str], None] | None) -> int:
    """Windows per phase when the user gives none: calibration.windows, or as many as `available`
    samples hold (at least the minimum: check_length says what is missing)."""
    most = max((k for k in range(spec.min_windows, spec.windows + 1) if spec.total_samples(k) <= available),
               default=spec.windows)  # fmt: skip
    if most < spec.windows and say is not None:
        say(f"note: {where} holds {most} windows per phase (of {spec.windows} at most): calibrating on them")
    return most


def check_length(spec: CalibSpec, n: int, available: int, where: str) -> None:
    need = spec.total_samples(n)
    if available < need:
        most = 0
        for k in range(spec.min_windows, spec.windows + 1):
            if spec.total_samples(k) <= available:
                most = k
        least = spec.total_samples(spec.min_windows)
        hint = (
            f"pass --windows {most} or less"
            if most
            else f"record a longer stretch of normal operation (at least {least} samples: the minimum of "
            f"{spec.min_windows} windows per phase)"
        )
        raise UserError(
            f"{where} has {available} samples but a calibration of {n} windows per phase needs {need} "
            f"({spec.phases} phase(s) of {n} windows of {spec.window_length} samples, hop {spec.hop}); {hint}"
        )


def run(spec: CalibSpec, include_dir: Path, samples: np.ndarray, n: int, scores: Scorer) -> MirrorResult:
    """The device's calibration of n windows per phase over `samples` [T, C] (from its first window)."""
    n = spec.check_windows(n)
    x = np.ascontiguousarray(samples, np.float32)
    check_length(spec, n, len(x), "the calibration data")
    cal = nat.NativeCalib(include_dir, spec.channels)
    cal.begin(n)
    ev = nat.EV_NONE
    first_scored = 0
    if spec.has_stats_phase:
        cal.samples(x[: spec.stats_samples(n)])
        for _ in range(n):  # phase-1 windows: their scores do not matter
            ev = cal.window(0.0, 0)
        first_scored = n
    phase2 = np.zeros(0, np.float32)
    if ev != nat.EV_DONE and spec.method != "none":
        correction = None
        if ev == nat.EV_CORRECTION:
            rec = Record.from_bytes(cal.candidate())
            correction = (np.asarray(rec.shift, np.float32), np.asarray(rec.gain, np.float32))
        windows = make_windows(x, spec.window_length, spec.hop)[first_scored : first_scored + n]
        phase2 = np.asarray(scores(windows, correction), np.float32)
        for s in phase2:
            ev = cal.window(float(s), 0)
    if ev != nat.EV_DONE:
        raise RuntimeError(
            "the calibration did not end after its windows (tae_calib.c and the mirror disagree)"
        )
    _, outcome, detail = cal.status()
    record = cal.candidate()
    verdicts: list[str] = []
    if spec.has_stats_phase:
        rec = Record.from_bytes(record)
        verdicts = [
            OUTCOMES[v] if v else ""
            for v in (cal.channel_verdict(k, rec.mean[k], rec.std[k]) for k in range(spec.channels))
        ]
    return MirrorResult(
        windows=n,
        outcome=OUTCOMES[outcome],
        detail=detail,
        record=record,
        samples_used=spec.total_samples(n),
        phase2_scores=phase2,
        cluster_end=cal.cluster_end(),
        channel_verdicts=verdicts,
    )


PHASE2_OUTCOMES = ("threshold_high", "threshold_low", "not_normal", "anomalous_stretch")


def cross_check(spec: CalibSpec, samples: np.ndarray, result: MirrorResult) -> dict:
    """Everything the record says, recomputed independently in NumPy, whatever the outcome: the site
    statistics of every channel once phase 1 ended, the threshold and the counts above the factory
    threshold once phase 2 ended; the deviations and whether they are within STATS_RTOL / SCORE_RTOL
    (the order statistic and the counts must be exact)."""
    rec = result.parsed
    n = result.windows
    out: dict = {"stats_rtol": STATS_RTOL, "score_rtol": SCORE_RTOL, "ok": True}
    ref_std = np.asarray(spec.ref_std, np.float64)
    if spec.has_stats_phase and rec.samples:
        x = np.asarray(samples, np.float64)[: spec.stats_samples(n)]
        ref_mean = np.asarray(spec.ref_mean, np.float64)
        with np.errstate(over="ignore", invalid="ignore"):
            mean, std = x.mean(axis=0), x.std(axis=0)
            near_overflow = np.max(np.abs(x - ref_mean), axis=0, initial=0.0) >= OVERFLOW_DEVIATION
        finite = np.isfinite(mean) & np.isfinite(std)
        r_mean, r_std = np.asarray(rec.mean, np.float64), np.asarray(rec.std, np.float64)
        r_finite = np.isfinite(r_mean) & np.isfinite(r_std)
        same_finite = bool(np.all((r_finite == finite) | near_overflow))
        both = finite & r_finite
        scale = np.maximum.reduce([ref_std, std, np.abs(mean - ref_mean)])[both]
        mean_step = np.spacing(np.abs(r_mean[both]).astype(np.float32)).astype(np.float64)
        dm = float(np.max(np.maximum(np.abs(mean - r_mean)[both] - mean_step, 0.0) / scale, initial=0.0))
        ds = float(np.max(np.abs(std - r_std)[both] / scale, initial=0.0))
        out["site_mean_max_dev_in_scale"] = dm
        out["site_std_max_dev_in_scale"] = ds
        out["non_finite_channels_equal"] = same_finite
        out["ok"] &= dm <= STATS_RTOL and ds <= STATS_RTOL and same_finite
    phase2_ended = bool(rec.flags & 0x04) or result.outcome in PHASE2_OUTCOMES
    if len(result.phase2_scores) == n and phase2_ended and np.all(np.isfinite(result.phase2_scores)):
        s = result.phase2_scores.astype(np.float64)
        above = result.phase2_scores > np.float32(spec.factory_threshold)
        densest, _ = _densest(above, spec.stretch_n)
        out["over_equal"] = int(above.sum()) == rec.over and densest == rec.cluster
        out["ok"] &= out["over_equal"]
        if spec.method == "percentile":
            want = float(np.sort(result.phase2_scores)[spec.rank(n) - 1])
            out["order_statistic_equal"] = want == rec.threshold
            out["ok"] &= want == rec.threshold
        else:
            want = float(s.mean() + spec.k_std * s.std())
            dev = abs(want - rec.threshold) / max(abs(want), 1e-30)
            out["mean_std_rel_dev"] = dev
            out["ok"] &= dev <= SCORE_RTOL
    return out


def _runs(above: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of every run of True."""
    edges = np.flatnonzero(np.diff(np.r_[0, above.astype(np.int8), 0]))
    return [(int(a), int(b)) for a, b in edges.reshape(-1, 2)]


def _densest(above: np.ndarray, n: int) -> tuple[int, int]:
    """The most True among any n consecutive entries (windows before the first count as False, as on
    the device) and the index of the first entry that ends such a stretch."""
    if not len(above):
        return 0, 0
    counts = np.convolve(above.astype(np.int64), np.ones(n, np.int64))[: len(above)]
    end = int(np.argmax(counts))
    return int(counts[end]), end


def over_factory(spec: CalibSpec, result: MirrorResult) -> dict:
    """Where the phase-2 windows above the factory threshold are: their count, every run of them, and
    the densest stretch of stretch_n windows (the one the device judges), each as phase-2 windows,
    calibration windows and samples from the calibration's first sample."""
    scores = result.phase2_scores
    above = scores > np.float32(spec.factory_threshold)
    first = result.windows if spec.has_stats_phase else 0

    def span(a: int, b: int) -> dict:  # phase-2 windows a..b
        w0, w1 = first + a, first + b
        return {
            "phase2_windows": [a, b],
            "windows": [w0, w1],
            "samples": [w0 * spec.hop, w1 * spec.hop + spec.window_length - 1],
        }

    count, end = _densest(above, spec.stretch_n)
    dense = None
    if count:
        inside = np.flatnonzero(above[max(0, end - spec.stretch_n + 1) : end + 1]) + max(
            0, end - spec.stretch_n + 1
        )
        dense = span(int(inside[0]), int(inside[-1])) | {"above": count, "of": spec.stretch_n}
    return {
        "count": int(above.sum()),
        "scored": len(scores),
        "runs": [span(a, b - 1) for a, b in _runs(above)],
        "densest": dense,
    }
