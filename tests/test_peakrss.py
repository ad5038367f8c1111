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


def test_measured_reports_the_programs_own_peak_not_an_earlier_childs() -> None:
    big = "b = bytearray(300 * 2**20); b[::4096] = b'\\1' * len(b[::4096])"
    subprocess.run([sys.executable, "-c", big], check=True)  # an earlier, larger child of this process
    small = subprocess.run(peakrss.measured([sys.executable, "-c", "import sys; sys.exit(4)"], python=sys.executable),
                           capture_output=True, text=True)  # fmt: skip
    assert small.returncode == 4
    assert 1e6 < peakrss.peak_bytes(small.stderr) < 150e6
    grown = subprocess.run(peakrss.measured([sys.executable, "-c", big], python=sys.executable),
                           capture_output=True, text=True, check=True)  # fmt: skip
    assert peakrss.peak_bytes(grown.stderr) >= 300 * 2**20
