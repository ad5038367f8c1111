"""A NumPy mirror of tae_frontend.c, vectorized over windows and channels: every float32 operation in
the order the C performs it, so the features are bit-equal (tests/test_frontend_native.py checks).
It is faster than the ctypes path for large batches and is the C code's independent second reading."""

from __future__ import annotations

import numpy as np

from train.frontend.spec import STATS, FrontendSpec

F32 = np.float32
# tae_fe_logf's constants, the same decimal literals as the C source.
LOG_C11, LOG_C9, LOG_C7, LOG_C5, LOG_C3 = (
    F32("0.0909090936"),
    F32("0.111111112"),
    F32("0.142857149"),
    F32("0.200000003"),
    F32("0.333333343"),
)
LN2 = F32("0.693147182")
SQRT2 = F32("1.41421354")


def logf(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, F32)
    ok = (x > 0) & (x <= np.finfo(F32).max)
    xs = np.where(ok, x, F32(1))
    u = xs.view(np.uint32)
    e = (u >> 23).astype(np.int32) - 127
    m = ((u & 0x007FFFFF) | 0x3F800000).astype(np.uint32).view(F32)
    big = m > SQRT2
    m = np.where(big, m * F32(0.5), m)
    e = e + big
    s = (m - F32(1)) / (m + F32(1))
    z = s * s
    p = z * LOG_C11 + LOG_C9
    p = p * z + LOG_C7
    p = p * z + LOG_C5
    p = p * z + LOG_C3
    p = p * z + F32(1)
    y = e.astype(F32) * LN2 + (s + s) * p
    return np.where(ok, y, x).astype(F32)


def _seq_sum(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Sequential float32 sum in index order (np.sum pairs terms, C does not)."""
    return np.cumsum(x, axis=axis, dtype=F32).take(-1, axis=axis)


def fft_half(
    re: np.ndarray, im: np.ndarray, tw_re: np.ndarray, tw_im: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """tae_fe_fft_half over the last axis (n = N/2 points; tw_* = the N-point twiddle table)."""
    re, im = np.array(re, F32), np.array(im, F32)
    n, big_n = re.shape[-1], 2 * re.shape[-1]
    bits = n.bit_length() - 1
    rev = np.array([int(format(i, f"0{bits}b")[::-1], 2) if bits else 0 for i in range(n)])
    re, im = re[..., rev], im[..., rev]
    length = 2
    while length <= n:
        half, step = length // 2, big_n // length
        a = (np.arange(0, n, length)[:, None] + np.arange(half)[None, :]).ravel()
        b = a + half
        wr = np.tile(tw_re[np.arange(half) * step], n // length)
        wi = np.tile(tw_im[np.arange(half) * step], n // length)
        tr = wr * re[..., b] - wi * im[..., b]
        ti = wr * im[..., b] + wi * re[..., b]
        ra, ia = re[..., a], im[..., a]
        re[..., b], im[..., b] = ra - tr, ia - ti
        re[..., a], im[..., a] = ra + tr, ia + ti
        length *= 2
    return re, im


def real_bins(
    re: np.ndarray, im: np.ndarray, tw_re: np.ndarray, tw_im: np.ndarray, magnitude: bool
) -> np.ndarray:
    """tae_fe_real_bins: power (or magnitude) of bins 0..N/2 from the half-length FFT Z."""
    h = re.shape[-1]
    k = np.arange(h + 1)
    ka, kb = np.where(k == h, 0, k), np.where(k == 0, 0, h - k)
    ar, ai, br, bi = re[..., ka], im[..., ka], re[..., kb], -im[..., kb]
    half = F32(0.5)
    er, ei = (ar + br) * half, (ai + bi) * half
    o_r, o_i = (ai - bi) * half, (br - ar) * half
    c = np.append(tw_re[:h], F32(-1)).astype(F32)
    s = np.append(tw_im[:h], F32(0)).astype(F32)
    xr = er + (c * o_r - s * o_i)
    xi = ei + (c * o_i + s * o_r)
    p = xr * xr + xi * xi
    return np.sqrt(p) if magnitude else p


def _spectral(x: np.ndarray, mean: np.ndarray, spec: FrontendSpec) -> np.ndarray:
    """x: [n, C, L] -> [n, C, bands]."""
    sp = spec.spectral
    assert sp is not None
    window = sp.window_table()
    tw_re, tw_im = sp.twiddles()
    acc = np.zeros((*x.shape[:2], sp.fft_length // 2 + 1), F32)
    for f in range(sp.frames):
        seg = x[..., f * sp.fft_length : (f + 1) * sp.fft_length]
        v = (seg - mean[..., None]) * window
        re, im = fft_half(v[..., 0::2], v[..., 1::2], tw_re, tw_im)
        acc = acc + real_bins(re, im, tw_re, tw_im, sp.spectrum == "magnitude")
    out = []
    for k0, k1 in zip(sp.band_edges[:-1], sp.band_edges[1:], strict=True):
        v = _seq_sum(acc[..., k0:k1]) / F32((k1 - k0) * sp.frames)
        if sp.log:
            v = logf(np.where(v < F32(sp.log_floor), F32(sp.log_floor), v))
        out.append(v)
    return np.stack(out, axis=-1).astype(F32)


def _stats(x: np.ndarray, mean: np.ndarray, spec: FrontendSpec) -> np.ndarray:
    """x: [n, C, L] -> [n, C, len(stats)]."""
    length = F32(x.shape[-1])
    d = x - mean[..., None]
    d2 = d * d
    sumsq = _seq_sum(x * x)
    m2 = _seq_sum(d2) / length
    m3 = _seq_sum(d2 * d) / length
    m4 = _seq_sum(d2 * d2) / length
    mx = x[..., 0]
    mn = x[..., 0]
    peak = np.zeros_like(mx)
    for t in range(x.shape[-1]):  # the C's comparisons, NaN included
        xt = x[..., t]
        mx = np.where(xt > mx, xt, mx)
        mn = np.where(xt < mn, xt, mn)
        peak = np.where(np.abs(xt) > peak, np.abs(xt), peak)
    pos = d >= 0
    crossings = np.count_nonzero(pos[..., 1:] != pos[..., :-1], axis=-1)
    std = np.sqrt(m2)
    rms = np.sqrt(sumsq / length)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        all_stats = {
            "mean": mean,
            "rms": rms,
            "std": std,
            "p2p": mx - mn,
            "crest": np.where(rms > 0, peak / rms, F32(0)),
            "skew": np.where(m2 > 0, m3 / (m2 * std), F32(0)),
            "kurtosis": np.where(m2 > 0, m4 / (m2 * m2), F32(0)),
            "zcr": crossings.astype(F32) / F32(x.shape[-1] - 1),
        }
    return np.stack([all_stats[s] for s in STATS if s in spec.stats], axis=-1).astype(F32)


def features(windows: np.ndarray, spec: FrontendSpec) -> np.ndarray:
    """Raw windows [n, L, C] -> features [n, F], bit-equal to tae_frontend_compute."""
    w = np.asarray(windows, F32)
    parts = []
    if "raw" in spec.kinds:
        parts.append(w.reshape(len(w), -1))
    if spec.spectral or spec.stats:
        x = np.ascontiguousarray(np.moveaxis(w, 1, 2))  # [n, C, L]
        mean = _seq_sum(x) / F32(spec.length)
        with np.errstate(invalid="ignore", over="ignore"):
            if spec.spectral:
                parts.append(_spectral(x, mean, spec).reshape(len(w), -1))
            if spec.stats:
                parts.append(_stats(x, mean, spec).reshape(len(w), -1))
    return np.concatenate(parts, axis=1).astype(F32) if parts else np.zeros((len(w), 0), F32)
