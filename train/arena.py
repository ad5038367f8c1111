"""Measure the TFLM tensor arena a model needs, on the host, by bisection in subprocesses.

`tflite_micro` has no API returning the bytes used, and some undersized arenas crash the process,
so every probe runs in its own interpreter process. The 64-bit host needs more arena than the
32-bit device (pointers and alignment), so the host figure is a safe upper bound for the device.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

_PROBE = """
import sys
import numpy as np
from tflite_micro.python.tflite_micro import runtime
data = open(sys.argv[1], "rb").read()
interp = runtime.Interpreter.from_bytes(data, arena_size=int(sys.argv[2]))
shape = tuple(int(d) for d in interp.get_input_details(0)["shape"])
interp.set_input(np.zeros(shape, np.int8), 0)
interp.invoke()
print("ok")
"""


def _fits(tflite_path: Path, size: int) -> bool:
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, str(tflite_path), str(size)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc.returncode == 0 and proc.stdout.strip().endswith("ok")


def measure_arena_bytes(tflite_path: Path, *, granularity: int = 16, limit: int = 1 << 24) -> int:
    """Smallest arena (to `granularity` bytes) in which the model allocates and invokes on the host."""
    upper = 1 << 14
    while not _fits(tflite_path, upper):
        upper *= 2
        if upper > limit:
            raise RuntimeError(f"{tflite_path} does not run in a {limit}-byte arena")
    lo, hi = 0, upper  # lo fails (or is 0), hi fits
    while hi - lo > granularity:
        mid = (lo + hi) // 2
        if _fits(tflite_path, mid):
            hi = mid
        else:
            lo = mid
    return hi
