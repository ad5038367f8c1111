"""Measure the TFLM tensor arena a model needs, on the host, by bisection.

`tflite_micro` has no API returning the bytes used, and some undersized arenas crash the process, so the
probes run in a child interpreter process that answers one size per line; when a probe kills it, that
size counts as too small and a new child takes the next one (one process for the whole bisection, not
one per probe: a probe costs milliseconds, a process start with its imports a few hundred). The 64-bit
host needs more arena than the 32-bit device (pointers and alignment), so the host figure is a safe upper
bound for the device.
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
for line in sys.stdin:
    size = int(line)
    try:
        interp = runtime.Interpreter.from_bytes(data, arena_size=size)
        shape = tuple(int(d) for d in interp.get_input_details(0)["shape"])
        interp.set_input(np.zeros(shape, np.int8), 0)
        interp.invoke()
        ok = 1
    except Exception:
        ok = 0
    print(size, ok, flush=True)
"""


class _Prober:
    """Asks a child process whether the model runs in a given arena; restarts it after a crash."""

    def __init__(self, tflite_path: Path) -> None:
        self._path = tflite_path
        self._proc: subprocess.Popen[str] | None = None

    def fits(self, size: int) -> bool:
        if self._proc is None:
            self._proc = subprocess.Popen(
                [sys.executable, "-c", _PROBE, str(self._path)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
        assert self._proc.stdin is not None and self._proc.stdout is not None
        try:
            self._proc.stdin.write(f"{size}\n")
            self._proc.stdin.flush()
            answer = self._proc.stdout.readline().split()
        except BrokenPipeError:
            answer = []
        if answer != [str(size), "1"] and answer != [str(size), "0"]:  # the probe took the process down
            self.close()
            return False
        return answer[1] == "1"

    def close(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None


def measure_arena_bytes(tflite_path: Path, *, granularity: int = 16, limit: int = 1 << 24) -> int:
    """Smallest arena (to `granularity` bytes) in which the model allocates and invokes on the host."""
    probe = _Prober(tflite_path)
    try:
        upper = 1 << 14
        while not probe.fits(upper):
            upper *= 2
            if upper > limit:
                raise RuntimeError(f"{tflite_path} does not run in a {limit}-byte arena")
        lo, hi = 0, upper  # lo fails (or is 0), hi fits
        while hi - lo > granularity:
            mid = (lo + hi) // 2
            if probe.fits(mid):
                hi = mid
            else:
                lo = mid
        return hi
    finally:
        probe.close()
