"""Glitch samples in the normal data: found, named, and kept from wrecking normalization and quantization.

One sample of 1e5 among accelerations of about 1 makes a z-score scale 3,000 times too large and the
int8 input scale too: the channel then quantizes to one constant level and no anomaly on it can be
seen. So before anything is fitted, every channel of the training and validation parts is screened
with robust statistics of the training part (median and interquartile range, which one sample cannot
move): a sample further than `limit` IQRs from its channel's median is an outlier (Tukey's fences
with a wide k: 10 by default, 13.5 standard deviations for Gaussian data). What happens to them is
`normalization.outliers`:
- clip (default): set to the nearest value the channel's other training samples reach (winsorized, so
  the glitch neither widens the normalization nor the int8 input range), named in a warning; the
  test data are left as they are;
- refuse: stop, naming the first one;
- keep: named in a warning only.
A channel whose IQR is zero (mostly one value) is not screened, and says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from tinyae.errors import UserError, printable
from tinyae.train.data.splits import DatasetSplits
from tinyae.train.data.windowing import used_samples

SHOWN = 3  # outliers listed per channel in the warning and the manifest
MODES = ("clip", "refuse", "keep")


@dataclass
class OutlierReport:
    mode: str
    limit_iqr: float
    channels: dict[str, dict] = field(default_factory=dict)  # name -> count, fence, first few
    unscreened: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return sum(c["count"] for c in self.channels.values())

    def sentence(self) -> str:
        """One line naming the outliers (empty when there are none)."""
        if not self.count:
            return ""
        parts = []
        for name, c in self.channels.items():
            shown = ", ".join(f"{o['where']} = {o['value']:.6g} ({o['iqrs']:.3g} IQR)" for o in c["first"])
            more = f" and {c['count'] - len(c['first'])} more" if c["count"] > len(c["first"]) else ""
            parts.append(f"'{printable(name)}' {c['count']}: {shown}{more}")
        what = {
            "clip": "clipped to the range of the channel's other samples",
            "keep": "kept (normalization.outliers = keep)",
        }[self.mode]
        return (
            f"{self.count} training/validation sample(s) lie "
            f"beyond {self.limit_iqr:g} IQR of their channel's "
            f"median and were {what}: {'; '.join(parts)}"
        )

    def to_dict(self) -> dict:
        return {
            "mode": self.mode,
            "limit_iqr": self.limit_iqr,
            "count": self.count,
            "channels": self.channels,
            "unscreened": self.unscreened,
        }


def screen(
    splits: DatasetSplits, limit_iqr: float, mode: str, length: int | None = None, hop: int | None = None
) -> tuple[DatasetSplits, OutlierReport]:
    """Screen the train and validation parts (see the module docstring); test parts are untouched.

    With the window length and hop, only the samples of the windows training keeps count (samples that
    lie only in windows left out for their anomalies are neither fitted on nor reported).
    """
    report = OutlierReport(mode, limit_iqr)
    if limit_iqr <= 0 or not splits.train:
        return splits, report

    def used(s) -> np.ndarray:  # type: ignore[no-untyped-def]
        if length is None or hop is None:
            return np.ones(len(s), bool)
        return used_samples(len(s), s.labels, length, hop)

    fit = np.concatenate([s.values[used(s)] for s in splits.train])
    if not len(fit):
        return splits, report
    q1, med, q3 = np.percentile(fit, [25, 50, 75], axis=0).astype(np.float64)
    iqr = q3 - q1
    lo, hi = med - limit_iqr * iqr, med + limit_iqr * iqr
    names = splits.channel_names
    report.unscreened = [names[c] for c in np.flatnonzero(iqr <= 0)]
    active = iqr > 0
    keep_lo, keep_hi = med.copy(), med.copy()  # the range the inliers reach, per channel
    for c in range(fit.shape[1]):
        col = fit[:, c]
        inl = col[(col >= lo[c]) & (col <= hi[c])]
        if len(inl):
            keep_lo[c], keep_hi[c] = float(inl.min()), float(inl.max())
    del fit
    found: dict[int, list[tuple[float, str, float]]] = {}
    counts = np.zeros(len(names), np.int64)
    for part in (splits.train, splits.val):
        for s in part:
            v = s.values
            bad = ((v < lo) | (v > hi)) & active & used(s)[:, None]
            if not bad.any():
                continue
            for c in np.flatnonzero(bad.any(axis=0)):
                rows = np.flatnonzero(bad[:, c])
                counts[c] += len(rows)
                lst = found.setdefault(int(c), [])
                for r in rows[: max(0, SHOWN - len(lst))]:
                    x = float(v[r, c])
                    lst.append((x, s.where(int(r)), abs(x - med[c]) / iqr[c]))
    for c, lst in found.items():
        report.channels[names[c]] = {
            "count": int(counts[c]),
            "median": float(med[c]),
            "iqr": float(iqr[c]),
            "fence": [float(lo[c]), float(hi[c])],
            "clipped_to": [float(keep_lo[c]), float(keep_hi[c])],
            "first": [{"where": w, "value": x, "iqrs": round(k, 1)} for x, w, k in lst],
        }
    if not report.count:
        return splits, report
    if mode == "refuse":
        name, first = next(iter(report.channels.items()))
        o = first["first"][0]
        raise UserError(
            f"{o['where']}: channel '{printable(name)}' is {o['value']:.6g}, {o['iqrs']:.3g} IQR from its median "
            f"{first['median']:.6g} ({report.count} such sample(s) "
            "in the training data); fix or remove the glitch, "
            'or set normalization.outliers = "clip"'
        )
    if mode == "keep":
        return splits, report
    lo32, hi32 = np.where(active, keep_lo, -np.inf), np.where(active, keep_hi, np.inf)

    def clipped(part: list) -> list:  # type: ignore[type-arg]
        return [replace(s, values=np.clip(s.values, lo32, hi32).astype(np.float32)) for s in part]

    return replace(splits, train=clipped(splits.train), val=clipped(splits.val)), report
