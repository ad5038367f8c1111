"""Ray's processes of one test, found by a marker in their command lines (the test's private Ray temp dir,
TAE_RAY_TMPDIR), so a test can wait for them to end and end any its search left behind."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path


def processes(marker: str) -> list[int]:
    """PIDs (but this process's) whose command line holds `marker`."""
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            if marker.encode() in (d / "cmdline").read_bytes():
                pids.append(int(d.name))
        except OSError:
            continue
    return pids


def end(pids: list[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def wait_gone(marker: str, seconds: float) -> list[int]:
    """The processes still holding `marker` after waiting up to `seconds` for them to end."""
    deadline = time.time() + seconds
    while processes(marker) and time.time() < deadline:
        time.sleep(0.5)
    return processes(marker)
