"""Run one step of a build or a bench (a compiler, make, QEMU, tinyae itself) from the repository root.

The one runner of tools/emulator (harness images) and tools/bench: a step that fails, cannot start or
runs out of time ends in one UserError sentence naming the command and what it said (its own `error:`
sentence when it printed one, as tinyae and make's recipes do, else its last lines).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from collections.abc import Sequence

from tinyae.errors import UserError
from tinyae.paths import ROOT

TAIL_LINES = 3


def _shown(argv: Sequence[str]) -> str:
    words = [shlex.quote(str(a)) for a in argv]
    return " ".join(words[:3]) + (" ..." if len(words) > 3 else "")


def run_step(argv: Sequence[str], *, timeout: float = 600, env: dict | None = None) -> tuple[float, str]:
    """(wall seconds, stdout + stderr) of argv run from ROOT with env added to ours; UserError on failure."""
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            [str(a) for a in argv],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
        )
    except subprocess.TimeoutExpired:
        raise UserError(f"`{_shown(argv)}` did not finish within {timeout:.0f} s") from None
    except OSError as exc:
        raise UserError(
            f"cannot run {argv[0]} ({exc}); install the toolchain with `make toolchain`"
        ) from None
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        lines = [line.strip() for line in (proc.stderr or proc.stdout).splitlines() if line.strip()]
        said = [line.removeprefix("error: ") for line in lines if line.startswith("error: ")]
        tail = said[-1] if said else " | ".join(lines[-TAIL_LINES:])
        raise UserError(f"`{_shown(argv)}` failed (exit {proc.returncode}): {tail}")
    return wall, proc.stdout + proc.stderr
