"""The device's preprocessing and score, mirrored in NumPy float32 (docs/architecture.md).

Every operation here is the same IEEE float32 operation the C core performs, in the same order,
so the int8 inputs are identical and the scores equal bit for bit (sums are sequential, as in C).
"""

from __future__ import annotations

import numpy as np

ROWS_PER_BLOCK = 4096


def input_gain(norm_scale: np.ndarray, input_scale: float) -> np.ndarray:
    """gain[c] = float32(1 / (scale[c] * s_in)), computed in float64."""
    return (1.0 / (np.asarray(norm_scale, np.float64) * float(input_scale))).astype(np.float32)


def round_half_away(v: np.ndarray) -> np.ndarray:
    """Round half away from zero, exactly (no float32 `v + 0.5` rounding trap)."""
    v = np.asarray(v, np.float32)
    tr = np.trunc(v)
    with np.errstate(invalid="ignore"):  # inf - inf = NaN: no adjustment, inf is clamped later
        frac = np.abs(v - tr)  # exact in float32
    return (tr + np.where(frac >= np.float32(0.5), np.sign(v), np.float32(0))).astype(np.float32)


def quantize_features(
    features: np.ndarray, offset: np.ndarray, gain: np.ndarray, zero_point: int
) -> np.ndarray:
    """Features [n, F] (float) -> int8 network inputs [n, F]; element i uses offset/gain[i % P].

    P = len(offset): C for the raw front-end (per-channel normalization of a time-major window),
    F for the other front-ends (one normalization per feature).
    """
    x = np.asarray(features, np.float32)
    period = len(offset)
    reps = x.shape[1] // period
    off = np.tile(np.asarray(offset, np.float32), reps)
    g = np.tile(np.asarray(gain, np.float32), reps)
    out = np.empty(x.shape, np.int8)
    for a in range(0, len(x), ROWS_PER_BLOCK):  # blocks of rows: temporaries stay small
        with np.errstate(over="ignore"):  # a huge sample overflows to inf in float32, as on the device
            v = (x[a : a + ROWS_PER_BLOCK] - off) * g
        nan = np.isnan(v)
        r = np.clip(round_half_away(np.where(nan, np.float32(0), v)), -512, 512)
        t = np.clip(r + np.float32(zero_point), -128, 127)
        out[a : a + ROWS_PER_BLOCK] = np.where(nan, np.int8(zero_point), t.astype(np.int8))
    return out


def quantize_windows(
    windows: np.ndarray, offset: np.ndarray, gain: np.ndarray, zero_point: int
) -> np.ndarray:
    """Raw windows [n, L, C] (float) -> int8 network inputs [n, L*C], time-major, per-channel."""
    x = np.asarray(windows, np.float32)
    return quantize_features(x.reshape(len(x), -1), offset, gain, zero_point)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return (q.astype(np.int32) - zero_point).astype(np.float32) * np.float32(scale)


def scores(
    in_q: np.ndarray,
    out_q: np.ndarray,
    in_scale: float,
    in_zero_point: int,
    out_scale: float,
    out_zero_point: int,
    kind: str = "mse",
) -> np.ndarray:
    """Reconstruction error per window, float32, accumulated sequentially like the device."""
    d = dequantize(out_q, out_scale, out_zero_point) - dequantize(in_q, in_scale, in_zero_point)
    e = d * d if kind == "mse" else np.abs(d)
    if kind not in ("mse", "mae"):
        raise ValueError(f"unknown score kind {kind!r}")
    acc = np.cumsum(e.astype(np.float32), axis=1, dtype=np.float32)[:, -1]
    return (acc / np.float32(e.shape[1])).astype(np.float32)


def decisions(score: np.ndarray, threshold: float, k: int = 1, n: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(anomaly, alarm) per window: score > threshold, and >= k of the last n windows anomalous."""
    anomaly = np.asarray(score, np.float32) > np.float32(threshold)
    counts = np.convolve(anomaly.astype(np.int32), np.ones(n, np.int32))[: len(anomaly)]
    return anomaly, counts >= k


def decisions_by_piece(
    score: np.ndarray, piece: np.ndarray | None, threshold: float, k: int = 1, n: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """decisions() with the alarm history restarting at every piece (piece[i]: the recording window i
    belongs to, non-decreasing; None: one piece), as a device does when each recording is streamed on
    its own."""
    score = np.asarray(score, np.float32)
    if piece is None or len(piece) == 0:
        return decisions(score, threshold, k, n)
    bounds = np.flatnonzero(np.diff(np.asarray(piece))) + 1
    parts = [decisions(s, threshold, k, n) for s in np.split(score, bounds)]
    return np.concatenate([a for a, _ in parts]), np.concatenate([b for _, b in parts])
