"""Sliding windows over one series: time-major `[n, L, C]`, with a label rule per window.

A window of length L starting at sample s covers samples s .. s+L-1; starts are 0, hop, 2·hop, ...
while the window fits (a tail shorter than L is dropped). Window labels use the "any" rule by
default: a window is anomalous (1) when any of its samples is — a window that touches a fault should
raise an alarm. The "majority" rule (more than half of the samples) is available for comparison.
"""

from __future__ import annotations

import numpy as np

from tinyae.errors import UserError

LABEL_RULES = ("any", "majority")


def check_window(length: int, hop: int) -> None:
    if int(length) != length or length < 1:
        raise UserError(f"the window length must be a positive integer, got {length}; pass e.g. 32")
    if int(hop) != hop or hop < 1:
        raise UserError(f"the hop must be a positive integer, got {hop}; pass e.g. half the window length")


def window_starts(n_samples: int, length: int, hop: int) -> np.ndarray:
    check_window(length, hop)
    if n_samples < length:
        return np.zeros(0, np.int64)
    return np.arange(0, n_samples - length + 1, hop, dtype=np.int64)


def make_windows(values: np.ndarray, length: int, hop: int) -> np.ndarray:
    """float32 [n, length, C] windows of `values` [T, C] (or [T], taken as one channel); a copy."""
    v = np.asarray(values, np.float32)
    if v.ndim == 1:
        v = v[:, None]
    if v.ndim != 2:
        raise UserError(f"values must be [time, channels], got shape {v.shape}; reshape the array")
    starts = window_starts(len(v), length, hop)
    idx = starts[:, None] + np.arange(length)[None, :]
    return v[idx].astype(np.float32, copy=False)


def window_labels(labels: np.ndarray, length: int, hop: int, rule: str = "any") -> np.ndarray:
    """int8 [n] label per window from per-sample labels [T] (see the module docstring)."""
    if rule not in LABEL_RULES:
        raise UserError(f"unknown window label rule {rule!r}; choose 'any' or 'majority'")
    lab = np.asarray(labels).astype(np.int64)
    starts = window_starts(len(lab), length, hop)
    csum = np.concatenate([[0], np.cumsum(lab != 0)])
    count = csum[starts + length] - csum[starts]
    out = count > 0 if rule == "any" else 2 * count > length
    return out.astype(np.int8)


def window_names(names: np.ndarray, labels: np.ndarray, length: int, hop: int) -> np.ndarray:
    """Per window: the most frequent name among its anomalous samples, or among all its samples when
    none is anomalous (e.g. "imbalance" / "normal" for the synthetic set, "Running" / "Walking" for a
    class-labelled set)."""
    starts = window_starts(len(labels), length, hop)
    out = np.empty(len(starts), dtype=object)
    for i, s in enumerate(starts):
        seg = names[s : s + length]
        anom = labels[s : s + length] != 0
        if anom.any():
            seg = seg[anom]
        vals, counts = np.unique(seg.astype(str), return_counts=True)
        out[i] = str(vals[np.argmax(counts)])
    return out


def used_samples(n_samples: int, labels: np.ndarray | None, length: int, hop: int) -> np.ndarray:
    """bool [n_samples]: the samples that lie in at least one window without an anomalous sample (the
    windows training keeps; all windows when there are no labels)."""
    starts = window_starts(n_samples, length, hop)
    if labels is not None:
        starts = starts[window_labels(labels, length, hop, "any") == 0]
    cover = np.zeros(n_samples + 1, np.int64)
    np.add.at(cover, starts, 1)
    np.add.at(cover, starts + length, -1)
    return np.cumsum(cover[:-1]) > 0
