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
