"""A lowered int8 network (train/int8/lower.py) executed in NumPy, exactly as TFLM's int8 kernels compute it.

FULLY_CONNECTED: int32 accumulation of the weights times the inputs plus the bias (the input zero point
folded into it; modular int32 arithmetic, as the C kernels wrap), then TFLite's default double-rounding
MultiplyByQuantizedMultiplier (SaturatingRoundingDoublingHighMul, RoundingDivideByPOT), the output zero
point, the fused activation's clamp, and the stage's 256-entry table for a following LOGISTIC / TANH /
QUANTIZE (tflite_micro's own outputs over all 256 inputs). The scalar definitions are train/int8/quant.py;
this is the same arithmetic on whole arrays, so the host reference computes hundreds of windows at once.

Which multiplier an engine forms is the `Arithmetic` the stages were lowered with: with
arithmetic.TFLITE_MICRO the outputs are tflite_micro's bit for bit, with arithmetic.TFLM the pinned board
libraries' and the compiled engine's (tests/test_int8_network.py, tests/test_boardlib_*.py).
"""

from __future__ import annotations

import numpy as np

from tinyae.train.int8.lower import FcStage, Lowered, LutStage
from tinyae.train.int8.quant import INT32_MAX, INT32_MIN


def _wrap32(x: np.ndarray) -> np.ndarray:
    """int64 -> the int32 two's-complement value (as int64)."""
    y = x + (1 << 31)
    y &= 0xFFFFFFFF
    y -= 1 << 31
    return y


def multiply_by_quantized_multiplier(x: np.ndarray, multiplier: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Elementwise quant.multiply_by_quantized_multiplier on int64 arrays holding int32 values
    (multiplier/shift broadcast against x).

    Branch-free and in place where it can be (the host reference and the tie search call it thousands
    of times on [windows, outputs] arrays): a sign mask (v >> 63: 0 or -1) picks the rounding nudge and
    turns the floor of `>> 31` into C++'s truncation toward zero."""
    x = np.asarray(x, np.int64)
    multiplier = np.asarray(multiplier, np.int64)
    shift = np.asarray(shift, np.int64)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    a = _wrap32(x << left)
    ab = a * multiplier  # |a|, |multiplier| <= 2^31: fits int64
    s = ab >> 63  # the nudge: 2^30 for ab >= 0, 1 - 2^30 below
    s &= 1 - (1 << 31)
    s += 1 << 30
    s += ab
    high = s >> 63  # s / 2^31 truncated toward zero: floor after adding 2^31 - 1 to a negative s
    high &= (1 << 31) - 1
    high += s
    high >>= 31
    if np.any(multiplier == INT32_MIN):
        high = np.where((a == INT32_MIN) & (multiplier == INT32_MIN), INT32_MAX, high)
    mask = (np.int64(1) << right) - 1
    threshold = (mask >> 1) + (high < 0)
    out = high >> right
    out += (high & mask) > threshold
    return out


def accumulate(st: FcStage, x: np.ndarray) -> np.ndarray:
    """The int32 accumulators [n, out] of a FULLY_CONNECTED stage (as int64 values)."""
    return _wrap32(np.asarray(x, np.int64) @ st.weights.astype(np.int64).T + st.bias[None, :])


def requantize(st: FcStage, acc: np.ndarray, multiplier=None, shift=None) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Accumulators -> the stage's int8 outputs (its own multipliers unless given)."""
    m = st.multiplier[None, :] if multiplier is None else np.asarray(multiplier)
    sh = st.shift[None, :] if shift is None else np.asarray(shift)
    y = multiply_by_quantized_multiplier(acc, m, sh) + st.out_zero_point
    y = np.clip(np.clip(y, st.act_min, st.act_max), -128, 127)
    if st.lut is not None:
        return st.lut[y + 128]
    return y.astype(np.int8)


def run_stage(st: FcStage | LutStage, x: np.ndarray) -> np.ndarray:
    if isinstance(st, FcStage):
        return requantize(st, accumulate(st, x))
    return st.lut[np.asarray(x, np.int64) + 128]


def run(lowered: Lowered, x: np.ndarray) -> np.ndarray:
    """int8 inputs [n, input_size] -> int8 outputs [n, output_size]."""
    y = np.asarray(x, np.int8).reshape(len(x), -1)
    if y.shape[1] != lowered.input_size:
        raise ValueError(f"the network takes {lowered.input_size} inputs, got {y.shape[1]}")
    for st in lowered.stages:
        y = run_stage(st, y)
    return np.asarray(y, np.int8)
