"""The order test modules start in, so that two (or more) pytest-xdist workers finish together.

`make test` runs the modules on every core (`-n auto --dist loadscope`: a module's tests and its
module fixtures stay on one worker). A worker takes the next module when it is free, so the longest
modules must start first, or one of them starts last and runs alone. The order is:

- longest first, a module's length being the sum over its selected tests of each test's seconds in
  its last run (setup + call + teardown, kept by the controller in build/test-durations.json);
- a test with no record (a fresh clone, a new test) counts as its lane's typical figure: the modules
  that train and use the emulator or the board libraries come first, the fast lane last.

Within a module the tests keep their order. A run over part of the suite updates the tests it ran.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path

import pytest

RECORD = Path(__file__).resolve().parent.parent / "build" / "test-durations.json"

# Typical seconds of a test by the heaviest lane it is in (used for a test without a record).
LANE_SECONDS = {"board_libs": 30.0, "slow": 20.0, "emulator": 10.0, "training": 8.0}
FAST_SECONDS = 0.1


def _module(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def _lane_seconds(item: pytest.Item) -> float:
    marks = {m.name for m in item.iter_markers()}
    return max([s for lane, s in LANE_SECONDS.items() if lane in marks], default=FAST_SECONDS)


def _read() -> dict[str, float]:
    try:
        data = json.loads(RECORD.read_text())
    except (OSError, ValueError):
        return {}
    return {k: float(v) for k, v in data.items() if isinstance(v, int | float)}


def order(items: list[pytest.Item]) -> None:
    """Reorder `items` in place: modules longest first (record, else lane), tests in module order."""
    by_module: dict[str, list[pytest.Item]] = defaultdict(list)
    for item in items:
        by_module[_module(item.nodeid)].append(item)
    record = _read()
    weight = {m: sum(record.get(i.nodeid, _lane_seconds(i)) for i in its) for m, its in by_module.items()}
    first_seen = {m: i for i, m in enumerate(by_module)}
    modules = sorted(by_module, key=lambda m: (-weight[m], first_seen[m]))
    items[:] = [item for m in modules for item in by_module[m]]


class Recorder:
    """Sums each test's seconds from its reports (the controller's, under xdist) and merges them into
    RECORD at the end of the run."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.seconds[report.nodeid] += report.duration

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if not self.seconds or hasattr(session.config, "workerinput"):
            return
        data = _read()
        data.update({m: round(s, 2) for m, s in self.seconds.items()})
        RECORD.parent.mkdir(parents=True, exist_ok=True)
        tmp = RECORD.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(dict(sorted(data.items())), indent=1) + "\n")
        tmp.replace(RECORD)
