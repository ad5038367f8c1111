"""A number the device stores as a float32 (a threshold, a sample rate, a calibration bound) is checked as the
float32 it becomes, never as the double it was typed as: 1e-50 is above 0 as a double but 0 as a float32, 1e-45
a subnormal (tae_fe_logf's domain and a threshold's sense both need normal floats), and 3.4028235e38 is
above float32's largest value as a double but rounds to it. `problem` is the one check; the command-line
types (tinyae/args.py), the configuration schema (train/config.py, `Bounds.f32`), the threshold a method
computes (train/calibrate.py), `tinyae threshold --value`, the manifest's threshold (train/manifest.py)
and the host's SET THRESHOLD (tools/link/device.py) all use it."""

from __future__ import annotations

import math
import struct

MAX = 3.4028234663852886e38  # the largest finite float32
TINY = 1.1754943508222875e-38  # the smallest positive normal float32


def rounded(value: float) -> float:
    """`value` rounded to the nearest float32 (as the device stores it), math.inf (with its sign) when it
    rounds beyond float32's range; NaN stays NaN."""
    try:
        return float(struct.unpack("<f", struct.pack("<f", value))[0])
    except OverflowError:
        return math.copysign(math.inf, value)


def problem(value: float, *, positive: bool = False) -> str | None:
    """Why `value` is not a usable float32 for the device, as the end of a sentence ("becomes 0 as a
    float32 ..."), or None. Usable: finite once rounded to float32 and, unless it is 0, a normal float32
    (not 0 or subnormal after rounding); positive: also above 0."""
    if not math.isfinite(value):
        return "is not a finite number"
    if positive and value <= 0:
        return "must be above 0"
    v32 = rounded(value)
    if math.isinf(v32):
        return f"does not fit a float32 (at most {MAX:.8g})"
    if value != 0 and abs(v32) < TINY:
        shown = "0" if v32 == 0 else f"the subnormal {v32:.4g}"
        return (
            f"becomes {shown} as a float32, the number the device stores; "
            f"pass {'at least' if positive else 'a magnitude of at least'} {TINY:.8g} (the smallest normal float32)"
        )
    return None
