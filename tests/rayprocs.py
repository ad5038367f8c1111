"""Ray's processes of one test, found by a marker: the test's private Ray temp dir (TAE_RAY_TMPDIR, or a
cluster's --temp-dir), so a test can wait for them to end and end any its search left behind.

A process is the test's when its command line holds the marker (GCS, raylets, monitors, drivers) or when
it holds a file open under it: the raylet's agents rename themselves (`ray::DashboardAgent`,
`ray::RuntimeEnvAgent`) and the head's Ray Client server names only the GCS address, but each writes
its log in the session's folder under the marker. Without that, an agent orphaned by a killed raylet
would never be seen."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path


def _holds(proc: Path, marker: bytes) -> bool:
    with contextlib.suppress(OSError):
        if marker in (proc / "cmdline").read_bytes():
            return True
        for fd in (proc / "fd").iterdir():
            with contextlib.suppress(OSError):
                if os.fsencode(os.readlink(fd)).startswith(marker):
                    return True
    return False


def processes(marker: str) -> list[int]:
    """PIDs (but this process's) whose command line holds `marker` or that hold a file open under it."""
    me, key = os.getpid(), os.fsencode(marker)
    return [int(d.name) for d in Path("/proc").iterdir() if d.name.isdigit() and int(d.name) != me
            and _holds(d, key)]  # fmt: skip


def _name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
    except OSError:
        return ""


def end(pids: list[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def wait_gone(marker: str, seconds: float) -> list[int]:
    """The processes still holding `marker` after waiting up to `seconds` for them to end."""
    deadline = time.time() + seconds
    while processes(marker) and time.time() < deadline:
        time.sleep(0.2)
    return processes(marker)


def stop_cluster(marker: str, seconds: float = 15) -> list[int]:
    """Stop the Ray processes holding `marker` the way `ray stop` orders it (ray/scripts/scripts.py):
    SIGTERM to the raylets, then to every other process but the GCS, then to the GCS, each group given up
    to `seconds` before SIGKILL. Signalled all at once, the raylet and the GCS each wait for the other and
    only SIGKILL ends them (15 s here), orphaning the raylet's agents. Returns what is left afterwards
    (nothing, or the test fails)."""
    found = processes(marker)
    raylets = [p for p in found if _name(p).endswith("/raylet")]
    gcs = [p for p in found if _name(p).endswith("/gcs_server")]
    rest = [p for p in found if p not in raylets and p not in gcs]
    for group in (raylets, rest, gcs):
        end(group, signal.SIGTERM)
        deadline = time.time() + seconds
        while time.time() < deadline and any(Path(f"/proc/{p}").exists() and _name(p) for p in group):
            time.sleep(0.1)
        end([p for p in group if _name(p)], signal.SIGKILL)
    # the agents a raylet started (and any process the groups above missed)
    end(processes(marker), signal.SIGTERM)
    left = wait_gone(marker, seconds)
    end(left, signal.SIGKILL)
    return wait_gone(marker, 5)
