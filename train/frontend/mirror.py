"""A NumPy mirror of tae_frontend.c, vectorized over windows and channels: every float32 operation in
the order the C performs it, so the features are bit-equal (tests/test_frontend_native.py checks).
It is faster than the ctypes path for large batches and is the C code's independent second reading."""

from __future__ import annotations

import numpy as np

from tinyae.train.frontend.spec import STATS, FrontendSpec

F32 = np.float32
# tae_fe_logf's constants, the same decimal literals as the C source.
LOG_C7, LOG_C5, LOG_C3 = F32("0.142857149"), F32("0.200000003"), F32("0.333333343")
LN2 = F32("0.693147182")
SQRT_HALF_BITS = 0x3F3504F3  # float32 sqrt(1/2)


def logf(x: np.ndarray) -> np.ndarray:
    """tae_fe_logf: positive normal floats only; everything else passes through."""
    x = np.asarray(x, F32)
    u = x.view(np.uint32)
    ok = (u - np.uint32(0x00800000)) < np.uint32(0x7F000000)  # uint32 wrap-around, as in C
    u2 = np.where(ok, u, np.uint32(0x3F800000)) + np.uint32(0x3F800000 - SQRT_HALF_BITS)
    e = (u2 >> np.uint32(23)).astype(np.int32) - 127
    m = ((u2 & np.uint32(0x007FFFFF)) + np.uint32(SQRT_HALF_BITS)).astype(np.uint32).view(F32)
    s = (m - F32(1)) / (m + F32(1))
    z = s * s
    p = z * LOG_C7 + LOG_C5
    p = p * z + LOG_C3
    p = p * z + F32(1)
    y = e.astype(F32) * LN2 + (s + s) * p
    return np.where(ok, y, x).astype(F32)


def _seq_sum(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Sequential float32 sum in index order (np.sum pairs terms, C does not)."""
    return np.asarray(np.cumsum(x, axis=axis, dtype=F32).take(-1, axis=axis))


def fft_half(re: np.ndarray, im: np.ndarray, twiddle: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """tae_fe_fft_half over the last axis: n = N/2 points already in bit-reversed order; twiddle = the
    interleaved N-point table (cos, -sin)."""
    re, im = np.array(re, F32), np.array(im, F32)
    n, big_n = re.shape[-1], 2 * re.shape[-1]
    tw_re, tw_im = twiddle[0::2], twiddle[1::2]
    if n >= 4:  # stages of length 2 and 4 in one pass of additions (twiddles 1 and -i)
        shape = re.shape
        r, i = re.reshape(*shape[:-1], n // 4, 4), im.reshape(*shape[:-1], n // 4, 4)
        b0r, b0i = r[..., 0] + r[..., 1], i[..., 0] + i[..., 1]
        b1r, b1i = r[..., 0] - r[..., 1], i[..., 0] - i[..., 1]
        b2r, b2i = r[..., 2] + r[..., 3], i[..., 2] + i[..., 3]
        b3r, b3i = r[..., 2] - r[..., 3], i[..., 2] - i[..., 3]
        re = np.stack([b0r + b2r, b1r + b3i, b0r - b2r, b1r - b3i], axis=-1).reshape(shape)
        im = np.stack([b0i + b2i, b1i - b3r, b0i - b2i, b1i + b3r], axis=-1).reshape(shape)
        length = 8
    else:  # n == 2
        re = np.stack([re[..., 0] + re[..., 1], re[..., 0] - re[..., 1]], axis=-1)
        im = np.stack([im[..., 0] + im[..., 1], im[..., 0] - im[..., 1]], axis=-1)
        length = 4
    while length <= n:
        half, step = length // 2, big_n // length
        starts = np.arange(0, n, length)
        a0, b0 = starts, starts + half  # k = 0: W = 1, no multiplication
        ra, ia, rb, ib = re[..., a0], im[..., a0], re[..., b0], im[..., b0]
        re[..., b0], im[..., b0] = ra - rb, ia - ib
        re[..., a0], im[..., a0] = ra + rb, ia + ib
        if half > 1:
            k = np.arange(1, half)
            a = (starts[:, None] + k[None, :]).ravel()
            b = a + half
            wr = np.tile(tw_re[k * step], n // length)
            wi = np.tile(tw_im[k * step], n // length)
            tr = wr * re[..., b] - wi * im[..., b]
            ti = wr * im[..., b] + wi * re[..., b]
            ra, ia = re[..., a], im[..., a]
            re[..., b], im[..., b] = ra - tr, ia - ti
            re[..., a], im[..., a] = ra + tr, ia + ti
        length *= 2
    return re, im


def real_bins(re: np.ndarray, im: np.ndarray, twiddle: np.ndarray, magnitude: bool) -> np.ndarray:
    """tae_fe_real_bins: power (or magnitude) of bins 1..N/2 from the half-length FFT Z (index 0,
    the DC bin the C never computes, is 0 here)."""
    h = re.shape[-1]
    tw_re, tw_im = twiddle[0::2], twiddle[1::2]

    def value(xr: np.ndarray, xi: np.ndarray) -> np.ndarray:
        p = xr * xr + xi * xi
        return np.sqrt(p) if magnitude else p

    out = np.zeros((*re.shape[:-1], h + 1), F32)
    k = np.arange(1, h // 2)
    if len(k):
        ar, ai, br, bi = re[..., k], im[..., k], re[..., h - k], im[..., h - k]
        er, ei = ar + br, ai - bi
        o_r, o_i = ai + bi, br - ar
        c, s = tw_re[k], tw_im[k]
        pr = c * o_r - s * o_i
        pi = c * o_i + s * o_r
        out[..., k] = value(er + pr, ei + pi)
        out[..., h - k] = value(er - pr, ei - pi)
    q = h // 2
    out[..., q] = value(re[..., q] + re[..., q], im[..., q] + im[..., q])
    d = re[..., 0] - im[..., 0]
    out[..., h] = value(d + d, np.zeros_like(d))
    return out


def _spectral(x: np.ndarray, mean: np.ndarray, spec: FrontendSpec) -> np.ndarray:
    """x: [n, C, L] -> [n, C, bands]."""
    sp = spec.spectral
    assert sp is not None
    window = sp.window_table()
    twiddle = sp.twiddles()
    rev = sp.bit_reversal()
    acc = np.zeros((*x.shape[:2], sp.fft_length // 2 + 1), F32)
    for f in range(sp.frames):
        seg = x[..., f * sp.fft_length : (f + 1) * sp.fft_length]
        v = (seg - mean[..., None]) * window
        re, im = fft_half(v[..., 0::2][..., rev], v[..., 1::2][..., rev], twiddle)
        acc = acc + real_bins(re, im, twiddle, sp.spectrum == "magnitude")
    out = []
    for k0, k1 in zip(sp.band_edges[:-1], sp.band_edges[1:], strict=True):
        out.append(_seq_sum(acc[..., k0:k1]) / F32((k1 - k0) * sp.frames))
    v = np.stack(out, axis=-1).astype(F32)
    if sp.log:
        floor = np.asarray(sp.log_floor, F32).reshape(spec.channels, sp.bands)
        v = logf(np.where(v < floor, floor, v))
    return v


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
