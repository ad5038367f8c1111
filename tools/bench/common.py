"""Shared helpers of the bench: the machine description, medians of timed runs, subprocess runs.

Every figure the bench writes carries the command that produced it; the machine (core count, CPU,
date, commit) is recorded once per results file.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import shlex
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinyae.paths import DATASETS, ROOT

PY = ".venv/bin/python"  # how commands are written in the results (run from the repository root)
TINYAE = ".venv/bin/tinyae"  # the `tinyae` command the venv installs
# real public recordings kept outside the repository (../shared/datasets or $TAE_DATASETS, see its README)
SKAB_DATA = DATASETS / "skab" / "data"
SKAB_CONFIG = "configs/skab.toml"  # the one configuration of the SKAB bench (docs/skab.md)


def when() -> dict:
    """The date (UTC) and the commit a figure is measured at."""
    return {
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": _git("rev-parse", "--short", "HEAD"),
    }


def machine() -> dict:
    """Core count, CPU model, OS, Python and the commit the figures were measured on."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cores": os.cpu_count() or 0,
        "cpu": cpu,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        **when(),
        "dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "tools": _versions(),
    }


def _git(*args: str) -> str:
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def _versions() -> dict:
    out: dict[str, str] = {}
    for name, cmd in (("arm-none-eabi-gcc", ["arm-none-eabi-gcc", "-dumpversion"]),):
        try:
            out[name] = subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout.strip()
        except OSError:
            out[name] = "missing"
    try:
        qemu = subprocess.run(["qemu-system-arm", "--version"], capture_output=True, text=True, timeout=20)
        out["qemu-system-arm"] = qemu.stdout.split("\n", 1)[0].replace("QEMU emulator version ", "")
    except OSError:
        out["qemu-system-arm"] = "missing"
    from importlib.metadata import PackageNotFoundError, version

    for pkg in ("tensorflow-cpu", "tflite-micro", "numpy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "missing"
    return out


@dataclass
class Timing:
    """The median of several timed runs, with every run kept."""

    runs: list[float]

    @property
    def median(self) -> float:
        return float(statistics.median(self.runs))

    def to_dict(self, digits: int = 4) -> dict:
        return {"median": round(self.median, digits), "runs": [round(r, digits) for r in self.runs]}


def timed(fn: Callable[[], object], repeats: int) -> Timing:
    """Wall time (perf_counter) of `fn()` over `repeats` runs."""
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return Timing(runs)


def rate(fn: Callable[[], int], repeats: int, min_seconds: float = 0.3) -> tuple[Timing, int]:
    """Items per second of `fn` (which returns how many items it processed), median of `repeats` runs.

    Each run calls `fn` until at least `min_seconds` have passed, so short operations are timed over
    many calls. Returns the per-run rates and the items of the last run.
    """
    rates: list[float] = []
    items = 0
    for _ in range(repeats):
        items = 0
        t0 = time.perf_counter()
        while True:
            items += fn()
            elapsed = time.perf_counter() - t0
            if elapsed >= min_seconds:
                break
        rates.append(items / elapsed)
    return Timing(rates), items


def rel(p: Path | str) -> str:
    """A path relative to the repository root when it is inside it (commands are run from there)."""
    try:
        return str(Path(p).resolve().relative_to(ROOT))
    except ValueError:
        return str(p)


def command_text(argv: Sequence[str]) -> str:
    return " ".join(shlex.quote(str(a)) for a in argv)


def have(*programs: str) -> str | None:
    """None when every program is on PATH, else a sentence naming the first missing one."""
    import shutil

    for p in programs:
        if shutil.which(p) is None:
            return f"{p} is not installed (run `make toolchain`)"
    return None


def md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table's lines."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def fmt(v: Any, digits: int = 4) -> str:
    """A figure for the report: None as a dash, NaN as n/a, floats to `digits`, ints with separators."""
    if v is None:
        return "—"
    if isinstance(v, float):
        if v != v:  # NaN
            return "n/a"
        return f"{v:.{digits}f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def run_note(sec: dict) -> list[str]:
    """RESULTS.md's line for a section measured on its own (merge_section), else nothing."""
    run = sec.get("run")
    if not isinstance(run, dict) or "command" not in run:
        return []
    return [f"This section: `{run['command']}` on {run['date']}, commit `{run['commit']}`.", ""]
