"""A k-of-n alarm rule as one statistic per row, so that every threshold's alarms are a comparison
(the SKAB selection and the threshold study score thousands of thresholds on the same scores)."""

from __future__ import annotations

import numpy as np


def alarm_statistic(scores: np.ndarray, k: int, n: int, rows: int, length: int) -> np.ndarray:
    """float32 [rows]: at each row, the k-th highest score of the last n windows ending there (-inf
    where fewer than k windows have ended), so that the device's alarm (row_alarms) is exactly
    `alarm_statistic(...) > float32(threshold)`: a k-of-n rule is a threshold on this statistic."""
    from numpy.lib.stride_tricks import sliding_window_view

    s = np.asarray(scores, np.float32)
    padded = np.r_[np.full(n - 1, -np.inf, np.float32), s]
    kth = -np.partition(-sliding_window_view(padded, n), k - 1, axis=1)[:, k - 1]
    out = np.full(rows, -np.inf, np.float32)
    out[length - 1 :] = kth
    return out
