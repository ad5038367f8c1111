"""TFLite's integer quantization arithmetic, reimplemented exactly (generation-time side).

- `quantize_multiplier`: TFLite's QuantizeMultiplier (quantization_util.cc): frexp of the double
  scale, Q31 significand rounded half away from zero, the 2^31 edge case, flush of tiny scales.
- `activation_range`: TFLM's CalculateActivationRangeQuantized for NONE/RELU/RELU6/RELU_N1_TO_1.
- `multiply_by_quantized_multiplier`: the default (double rounding) MultiplyByQuantizedMultiplier,
  SaturatingRoundingDoublingHighMul then RoundingDivideByPOT (gemmlowp semantics), on int32 values.
- `elementwise_table`: a 256-entry int8->int8 table for LOGISTIC/TANH/QUANTIZE, built by running
  tflite_micro itself on a one-op model over all 256 inputs (bit-exact with TFLM by construction).
Learned from reading TFLite's quantization_util.cc, kernel_util.cc and common.h; no code copied.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from tinyae.errors import UserError

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1


def _round_half_away(x: float) -> int:
    """std::round: halfway cases away from zero."""
    r = math.floor(abs(x) + 0.5)
    return int(r) if x >= 0 else -int(r)


def quantize_multiplier(scale: float) -> tuple[int, int]:
    """Return (multiplier Q31, shift) with scale ~= multiplier * 2^(shift - 31); shift > 0 is a left shift."""
    if scale == 0.0:
        return 0, 0
    if not math.isfinite(scale) or scale < 0:
        raise UserError(
            f"a requantization scale of {scale} is not a positive finite number; re-quantize the model"
        )
    q, shift = math.frexp(scale)
    q_fixed = _round_half_away(q * float(1 << 31))
    assert q_fixed <= (1 << 31)
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift, q_fixed = 0, 0
    if shift > 30:
        raise UserError(
            f"a requantization scale of {scale:g} is too large for int8 kernels (shift {shift} > 30); "
            "check the model's quantization or use the TFLM engine (--engine tflm)"
        )
    return int(q_fixed), int(shift)


def activation_range(activation: str, scale: float, zero_point: int) -> tuple[int, int]:
    """TFLM's CalculateActivationRangeQuantized for int8 outputs."""
    qmin, qmax = -128, 127

    def quantize(f: float) -> int:
        # zero_point + static_cast<int32_t>(TfLiteRound(f / scale)), the division in float32
        v = float(np.float32(f) / np.float32(scale))
        if not math.isfinite(v):
            return qmax if f > 0 else qmin
        return zero_point + _round_half_away(v)

    if activation == "NONE":
        return qmin, qmax
    if activation == "RELU":
        return max(qmin, quantize(0.0)), qmax
    if activation == "RELU6":
        return max(qmin, quantize(0.0)), min(qmax, quantize(6.0))
    if activation == "RELU_N1_TO_1":
        return max(qmin, quantize(-1.0)), min(qmax, quantize(1.0))
    raise UserError(
        f"the fused activation {activation} is not supported by the compiled engine; use --engine tflm"
    )


def _wrap32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


def saturating_rounding_doubling_high_mul(a: int, b: int) -> int:
    if a == b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else (1 - (1 << 30))
    s = ab + nudge
    # C++ integer division truncates toward zero
    q = abs(s) >> 31
    return q if s >= 0 else -q


def rounding_divide_by_pot(x: int, exponent: int) -> int:
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def multiply_by_quantized_multiplier(x: int, multiplier: int, shift: int) -> int:
    left = shift if shift > 0 else 0
    right = 0 if shift > 0 else -shift
    return rounding_divide_by_pot(
        saturating_rounding_doubling_high_mul(_wrap32(x << left), multiplier), right
    )


def elementwise_table(op: str, in_scale: float, in_zp: int, out_scale: float, out_zp: int) -> np.ndarray:
    """int8 table t[x + 128] = TFLM(op)(x) for x in -128..127, computed by tflite_micro itself (a fresh
    copy of the table kept for these parameters)."""
    return _elementwise_table(op, float(in_scale), int(in_zp), float(out_scale), int(out_zp)).copy()


@functools.lru_cache(maxsize=1024)
def _elementwise_table(op: str, in_scale: float, in_zp: int, out_scale: float, out_zp: int) -> np.ndarray:
    """The table of one op and quantization, built once per process: a one-op model through
    tflite_micro costs ~10 ms, and a model is lowered again for every rule and check (the host
    reference, verify, the tie search, the bit-exactness tests)."""
    from tinyae.train.int8.onemodel import run_one_op

    table = run_one_op(op, in_scale, in_zp, out_scale, out_zp, np.arange(-128, 128, dtype=np.int8))
    return table.astype(np.int8)
