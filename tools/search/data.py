"""What a search trial is judged on: labelled selection windows, never the test windows it reports.

SELECTION_PROTOCOL (printed in the search report) says exactly which data chooses and which reports.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyae.errors import UserError
from tinyae.train.data.csv_source import Series
from tinyae.train.data.splits import DatasetSplits, test_windows

SELECTION_PROTOCOL = """\
Selection protocol. Training and the normal validation windows follow the split protocol of
`tinyae model` unchanged. The search's objective is computed on labelled *selection*
windows that no trial trains on, and every trial is also scored on *holdout* windows that never
influence the search (reported only). For the embedded synthetic source the selection series is
new signal of the same machine, generated after the test part on the same timeline (every fault, at
both severities, in another order), and the holdout is the pipeline's own test split, so the holdout
figures compare directly with `tinyae model`. For other sources the labelled test series
are divided: with two or more, alternately (1st, 3rd, ... select; 2nd, 4th, ... hold out); with one,
cut by time at the middle, a gap of the longest searched window between the halves. Without labels
the objective is a stated proxy: the ROC AUC of held-out normal validation windows against
synthetic corruptions of the same windows (a gain step, added noise, a spike, a stuck channel)."""


@dataclass(frozen=True)
class Selection:
    selection: list[Series]
    holdout: list[Series]
    how: str
    labelled: bool


def _has_both(series: list[Series]) -> bool:
    labels = [s.labels for s in series if s.labels is not None]
    if not labels:
        return False
    joined = np.concatenate(labels)
    return bool(joined.any()) and bool((joined == 0).any())


def _synthetic_selection(seed: int, sample_rate_hz: float) -> Series:
    """A labelled series of machine `seed` after the default data set's test part (same timeline)."""
    from tinyae.train.data.synthetic import FAULT_KINDS, SEVERITY, generate, make_synthetic

    d = make_synthetic(seed, sample_rate_hz=sample_rate_hz)
    fs = sample_rate_hz

    def ns(s: float) -> int:
        return round(s * fs)

    start = ns(240 + 10 + 60 + 10) + len(d.test) + ns(10)
    fault_s, gap_s, lead_s = 6.0, 6.0, 12.0
    schedule = []
    for level in (1, 0):  # obvious first, then subtle: another order than the test part
        for name in reversed(tuple(SEVERITY)):
            schedule.append((name, SEVERITY[name][level]))
    n = ns(lead_s) + len(schedule) * (ns(fault_s) + ns(gap_s))
    fault = np.zeros(start + n, np.int8)
    sev = np.zeros(start + n, np.float32)
    pos = start + ns(lead_s)
    for name, s in schedule:
        fault[pos : pos + ns(fault_s)] = FAULT_KINDS.index(name)
        sev[pos : pos + ns(fault_s)] = s
        pos += ns(fault_s) + ns(gap_s)
    values, spike = generate(seed, start + n, sample_rate_hz, fault, sev)
    f = fault[start:]
    labels = ((f != 0) & (f != FAULT_KINDS.index("spikes"))).astype(np.int8)
    labels[spike[start:]] = 1
    return Series(
        values=values[start:].copy(),
        labels=labels,
        channel_names=d.test.channel_names,
        sample_rate_hz=float(sample_rate_hz),
        source=f"synthetic(seed={seed}):selection",
    )


def _cut(s: Series, gap: int) -> tuple[Series, Series]:
    n = len(s)
    a = (n - gap) // 2
    b = a + gap

    def part(lo: int, hi: int, name: str) -> Series:
        return Series(
            values=s.values[lo:hi],
            labels=None if s.labels is None else s.labels[lo:hi],
            channel_names=s.channel_names,
            sample_rate_hz=s.sample_rate_hz,
            source=f"{s.source}[{name} {lo}:{hi}]",
            classes=None if s.classes is None else s.classes[lo:hi],
        )

    return part(0, a, "selection"), part(b, n, "holdout")


def select(splits: DatasetSplits, source: str, seed: int, longest_window: int) -> Selection:
    """Divide a source's labelled test series into selection and holdout (SELECTION_PROTOCOL)."""
    test = list(splits.test)
    if source == "synthetic":
        sel = _synthetic_selection(seed, float(splits.sample_rate_hz or 100.0))
        return Selection([sel], test, "synthetic: new labelled series after the test part", True)
    if not test or not _has_both(test):
        return Selection([], test, "no labelled anomalies: proxy objective", False)
    if len(test) >= 2:
        every_other, rest = test[0::2], test[1::2]
        if _has_both(every_other) and _has_both(rest):
            return Selection(
                every_other,
                rest,
                f"alternate test series ({len(every_other)} select, {len(rest)} hold out)",
                True,
            )
    cut = [_cut(s, longest_window) for s in test]
    sel_parts, hold = [c[0] for c in cut], [c[1] for c in cut]
    if not _has_both(sel_parts):
        raise UserError(
            "the labelled test data cannot be divided into selection and holdout parts that both hold normal "
            "and anomalous samples; provide more labelled recordings (or a longer one)"
        )
    return Selection(sel_parts, hold, "each test series cut by time at its middle", True)


def windows(series: list[Series], length: int, hop: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Windows [n, L, C] and their labels (rule "any") of `series`; series shorter than L are skipped."""
    usable = [s for s in series if len(s) >= length]
    if not usable:
        return np.zeros((0, length, series[0].n_channels if series else 1), np.float32), None
    w, labels, _ = test_windows(usable, length, hop, "any")
    return w, labels


def corruptions(normal: np.ndarray, seed: int) -> np.ndarray:
    """Synthetic anomalies made from normal windows [n, L, C] (the proxy objective without labels).

    Each window gets one of: a gain step of x1.5 on one channel from mid-window, Gaussian noise of
    half the channel's spread, a spike of 6 standard deviations on one sample, or one channel stuck
    at its mean. Scales come from the windows themselves (per channel standard deviation)."""
    rng = np.random.default_rng(seed)
    out = normal.astype(np.float32).copy()
    n, length, channels = out.shape
    std = normal.reshape(-1, channels).std(axis=0) + 1e-6
    for i in range(n):
        c = int(rng.integers(channels))
        kind = i % 4
        if kind == 0:
            mean = out[i, :, c].mean()
            out[i, length // 2 :, c] = mean + 1.5 * (out[i, length // 2 :, c] - mean)
        elif kind == 1:
            out[i, :, c] += rng.normal(0.0, 0.5 * std[c], length).astype(np.float32)
        elif kind == 2:
            out[i, int(rng.integers(length)), c] += np.float32(6.0 * std[c] * rng.choice([-1.0, 1.0]))
        else:
            out[i, :, c] = out[i, :, c].mean()
    return out
