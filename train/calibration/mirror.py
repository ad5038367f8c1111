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
# and std within STATS_RTOL of the training std; mean + k std within SCORE_RTOL relative. The order
# statistic is compared exactly.
STATS_RTOL = 1e-4
SCORE_RTOL = 1e-5


@dataclass
class MirrorResult:
    windows: int  # N per phase
    outcome: str  # tae_calib.h's outcome: "stored" = a valid record to store, else the refusal
    detail: int  # the channel of a refusal (255: the scores)
    record: bytes  # the candidate record, packed (what the device stores when outcome is "stored")
    samples_used: int  # samples from the calibration's start to the end of its last window
    phase2_scores: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))

    @property
    def accepted(self) -> bool:
        return self.outcome == "stored"

    @property
    def parsed(self) -> Record:
        return Record.from_bytes(self.record)


def needed_samples(spec: CalibSpec, n: int) -> int:
    return spec.total_samples(n)


def check_length(spec: CalibSpec, n: int, available: int, where: str) -> None:
    need = spec.total_samples(n)
    if available < need:
        most = 0
        for k in range(1, spec.windows + 1):
            if spec.total_samples(k) <= available:
                most = k
        hint = f"pass --windows {most} or less" if most else "record a longer stretch of normal operation"
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
    return MirrorResult(
        windows=n,
        outcome=OUTCOMES[outcome],
        detail=detail,
        record=cal.candidate(),
        samples_used=spec.total_samples(n),
        phase2_scores=phase2,
    )


def cross_check(spec: CalibSpec, samples: np.ndarray, result: MirrorResult) -> dict:
    """Everything the record says, recomputed independently in NumPy; the deviations and whether they
    are within STATS_RTOL / SCORE_RTOL (the order statistic must be exact)."""
    rec = result.parsed
    n = result.windows
    out: dict = {"stats_rtol": STATS_RTOL, "score_rtol": SCORE_RTOL, "ok": True}
    ref_std = np.asarray(spec.ref_std, np.float64)
    if spec.has_stats_phase and result.outcome not in ("not_finite",):
        x = np.asarray(samples, np.float64)[: spec.stats_samples(n)]
        mean, std = x.mean(axis=0), x.std(axis=0)
        dm = float(np.max(np.abs(mean - np.asarray(rec.mean)) / ref_std))
        ds = float(np.max(np.abs(std - np.asarray(rec.std)) / ref_std))
        out["site_mean_max_dev_in_ref_std"] = dm
        out["site_std_max_dev_in_ref_std"] = ds
        out["ok"] &= dm <= STATS_RTOL and ds <= STATS_RTOL
    if len(result.phase2_scores) == n and (rec.flags & 0x04 or result.outcome.startswith("threshold")):
        s = result.phase2_scores.astype(np.float64)
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
