"""A child started with peakrss.fresh reports its own peak memory, not the parent's (Linux execve)."""

from __future__ import annotations

import subprocess
import sys

from tinyae import peakrss

PEAK_MB = "import resource; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)"


def test_a_fresh_child_does_not_inherit_the_parents_peak_memory() -> None:
    ballast = bytearray(400 * 2**20)
    ballast[::4096] = b"\1" * len(ballast[::4096])  # touch every page: 400 MB resident here
    direct = subprocess.run([sys.executable, "-c", PEAK_MB], capture_output=True, text=True, check=True)
    fresh = subprocess.run(peakrss.fresh([sys.executable, "-c", PEAK_MB]), capture_output=True, text=True)
    assert fresh.returncode == 0
    assert int(direct.stdout) >= 400  # the kind of fault: the parent's peak carried across exec
    assert int(fresh.stdout) < 200, fresh.stdout
    del ballast


def test_the_exit_code_and_arguments_pass_through() -> None:
    code = "import sys; print(sys.argv[1:]); sys.exit(3)"
    proc = subprocess.run(
        peakrss.fresh([sys.executable, "-c", code, "a b", "$HOME"]), capture_output=True, text=True
    )
    assert proc.returncode == 3 and proc.stdout.strip() == "['a b', '$HOME']"
