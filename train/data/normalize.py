"""Per-channel (or per-feature) normalization, fitted on normal training data only:
x_norm = (x - offset) / scale.

- zscore: offset = mean, scale = standard deviation (population, ddof 0).
- minmax: offset = min, scale = max - min, so the training data maps onto [0, 1].
- robust: offset = median, scale = interquartile range / 1.349 (equal to the standard deviation for
  Gaussian data, but one glitch sample cannot move it); a column whose IQR is zero (mostly one value)
  falls back to its standard deviation.
Statistics are computed in float64 and stored as float32 (what the manifest's `normalization` holds).
A channel with zero spread cannot be normalized and is refused by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tinyae.errors import UserError, printable

METHODS = ("zscore", "minmax", "robust")
IQR_PER_STD = 1.349  # interquartile range of a unit Gaussian


@dataclass(frozen=True, eq=False)
class Normalization:
    offset: np.ndarray  # float32 [C]
    scale: np.ndarray  # float32 [C]
    method: str

    def apply(self, x: np.ndarray) -> np.ndarray:
        """(x - offset) / scale in float32, over the last axis (channels)."""
        return ((np.asarray(x, np.float32) - self.offset) / self.scale).astype(np.float32)

    def invert(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, np.float32) * self.scale + self.offset).astype(np.float32)

    def to_manifest(self) -> dict:
        return {"method": self.method, "offset": self.offset.tolist(), "scale": self.scale.tolist()}


ROWS_PER_PASS = 1 << 18


def _moments(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and population standard deviation per column, in float64, a block of rows at a time
    (no float64 copy of the whole data)."""
    n = len(x)
    total = np.zeros(x.shape[1], np.float64)
    for a in range(0, n, ROWS_PER_PASS):
        total += x[a : a + ROWS_PER_PASS].sum(axis=0, dtype=np.float64)
    mean = total / n
    sq = np.zeros(x.shape[1], np.float64)
    for a in range(0, n, ROWS_PER_PASS):
        d = x[a : a + ROWS_PER_PASS].astype(np.float64) - mean
        sq += (d * d).sum(axis=0)
    return mean, np.sqrt(sq / n)


def fit_normalization(
    data: np.ndarray,
    method: str = "zscore",
    channel_names: Sequence[str] | None = None,
    *,
    constant_ok: bool = False,
) -> Normalization:
    """Fit on windows [n, L, C], values [T, C] or features [n, F] (normal training data only).

    constant_ok: a column with zero spread gets scale 1 instead of being refused (front-end
    features such as a zero-crossing rate may legitimately not vary; a raw channel must).
    """
    if method not in METHODS:
        raise UserError(f"unknown normalization {method!r}; choose 'zscore', 'minmax' or 'robust'")
    x = np.asarray(data)
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float64)
    if x.ndim < 2 or x.size == 0:
        raise UserError(
            f"no data to fit the normalization on (shape {x.shape}); provide normal training windows"
        )
    x = x.reshape(-1, x.shape[-1])
    if not np.all(np.isfinite(x)):
        raise UserError("the training data contain NaN or infinite values; clean the input before fitting")
    if method == "zscore":
        offset, scale = _moments(x)
    elif method == "robust":
        q1, offset, q3 = np.percentile(x, [25, 50, 75], axis=0).astype(np.float64)
        scale = (q3 - q1) / IQR_PER_STD
        scale = np.where(scale > 0, scale, _moments(x)[1])
    else:
        lo, hi = x.min(axis=0).astype(np.float64), x.max(axis=0).astype(np.float64)
        offset, scale = lo, hi - lo
    tiny = np.maximum(np.abs(offset), 1.0) * np.finfo(np.float32).eps
    if constant_ok:
        scale = np.where(scale <= tiny, 1.0, scale)
    for c in np.flatnonzero(scale <= tiny):
        name = channel_names[c] if channel_names is not None and c < len(channel_names) else f"#{c}"
        raise UserError(
            f"channel '{printable(name)}' is constant in the normal training data (zero spread); "
            "drop that channel or check the sensor"
        )
    return Normalization(offset.astype(np.float32), scale.astype(np.float32), method)
