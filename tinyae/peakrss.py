"""Start a program whose peak memory is read (by itself or by us) from a clean peak-RSS counter.

Linux carries a process's peak resident size (getrusage `ru_maxrss`) across execve: a program started
from a 4 GB pytest worker or bench process reports a 4 GB peak before it allocates a byte. libFuzzer
reads that counter for its -rss_limit_mb check (and stopped CI with "out-of-memory" at its first input),
and a measured growth `after - before` reads 0. Started by a small shell that forks it, the program
inherits the shell's few MB instead.
"""

from __future__ import annotations

import os
from collections.abc import Sequence


def fresh(argv: Sequence[str | os.PathLike[str]]) -> list[str]:
    """argv run by a forking `sh` (`; exit $?` keeps the shell from exec-ing it), its exit code kept."""
    return ["sh", "-c", '"$@"; exit $?', "sh", *map(str, argv)]


# A small Python that runs argv and reports the peak of argv's process tree alone: its RUSAGE_CHILDREN
# covers the one child it waited for (and that child's own waited children), nothing the caller ran before.
_WRAPPER = (
    "import resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[1:]).returncode\n"
    "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
    "sys.stderr.write('\\n%s %d\\n' % (TAG, peak))\n"
    "sys.exit(code)\n"
)
PEAK_TAG = "tae-peak-kb"


def measured(argv: Sequence[str | os.PathLike[str]], python: str = "python3") -> list[str]:
    """argv run so that its own peak resident size ends its stderr (read it with `peak_bytes`)."""
    return fresh([python, "-c", _WRAPPER.replace("TAG", repr(PEAK_TAG)), *map(str, argv)])


def peak_bytes(stderr: str) -> int:
    """The peak resident size `measured` reported, in bytes (ValueError when it is not there)."""
    for line in reversed(stderr.splitlines()):
        if line.startswith(PEAK_TAG + " "):
            return int(line.split()[1]) * 1024
    raise ValueError("no peak memory figure in the program's output")
