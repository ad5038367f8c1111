"""Test lanes: which tests need the emulator or train a model, marked so `make test-fast` can leave them out.

Markers (pyproject.toml declares them):
- ``emulator``: starts arm-none-eabi-gcc or qemu-system-arm;
- ``training``: trains a model (the shared default model included);
- ``slow``: runs long for another reason (random models, fuzzing, the bench, the Ray search);
- ``board_libs``: needs the pinned board-library sources (tests/boardlibs.py).

Two mechanisms keep the markers true:
1. ``mark_from_fixtures``: a test that uses a fixture in ``FIXTURE_MARKS`` (directly or through another
   fixture) gets that fixture's markers at collection, so nobody has to remember them.
2. ``ToolGuard``: while a test without ``emulator`` runs (its fixtures' setup included), ``PATH`` starts
   with a folder of stand-ins for the Cortex-M toolchain and QEMU. A stand-in records its name and
   exits 127; the test then fails naming what it started. The stand-ins are found by every child
   process too (make, ``tinyae ...``), so a test cannot hide the emulator behind a subprocess.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path

import pytest

# fixture name -> the markers every test using it must carry (tests/conftest.py defines them).
FIXTURE_MARKS: dict[str, tuple[str, ...]] = {
    "default_model_dir": ("training",),
    "default_manifest": ("training",),
    "lane_model": ("training",),
    "default_elf": ("emulator", "training"),
}

# Programs only the emulator lane may start: the Cortex-M toolchain and QEMU.
EMULATOR_PROGRAMS = (
    "arm-none-eabi-gcc",
    "arm-none-eabi-g++",
    "arm-none-eabi-as",
    "arm-none-eabi-ld",
    "arm-none-eabi-objcopy",
    "arm-none-eabi-size",
    "arm-none-eabi-nm",
    "arm-none-eabi-objdump",
    "arm-none-eabi-ar",
    "qemu-system-arm",
)

_STANDIN = """#!/bin/sh
echo "$(basename "$0")" >> "${LOG}"
echo "$(basename "$0"): this test is not marked @pytest.mark.emulator (tests/lanes.py)" >&2
exit 127
"""


def mark_from_fixtures(items: list[pytest.Item]) -> None:
    """Add FIXTURE_MARKS' markers to every collected test that uses one of those fixtures; a test module
    may declare its own module fixtures' markers the same way (a module-level FIXTURE_MARKS dict)."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        module = getattr(item, "module", None)
        table = {**FIXTURE_MARKS, **getattr(module, "FIXTURE_MARKS", {})}
        for fixture, marks in table.items():
            if fixture in names:
                for mark in marks:
                    if item.get_closest_marker(mark) is None:
                        item.add_marker(mark)


class ToolGuard:
    """PATH stand-ins for the emulator's programs, active from a test's setup to its teardown."""

    def __init__(self, folder: Path) -> None:
        self.bin = folder / "bin"
        self.log = folder / "started.txt"
        self.bin.mkdir(parents=True, exist_ok=True)
        for name in EMULATOR_PROGRAMS:
            path = self.bin / name
            path.write_text(_STANDIN.replace("${LOG}", str(self.log)))
            path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        self._saved: str | None = None

    def start(self) -> None:
        self.log.unlink(missing_ok=True)
        self._saved = os.environ.get("PATH", "")
        os.environ["PATH"] = f"{self.bin}{os.pathsep}{self._saved}"

    def started(self) -> list[str]:
        """The programs started since start(), in order (empty when none)."""
        return self.log.read_text().split() if self.log.exists() else []

    def stop(self) -> None:
        """Restore PATH."""
        if self._saved is not None:
            os.environ["PATH"] = self._saved
            self._saved = None


_GUARD_KEY = pytest.StashKey[ToolGuard]()
_ACTIVE_KEY = pytest.StashKey[bool]()
_FOLDER_KEY = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    folder = tempfile.mkdtemp(prefix="tae-lane-guard-")
    config.stash[_FOLDER_KEY] = folder
    config.stash[_GUARD_KEY] = ToolGuard(Path(folder))


def pytest_unconfigure(config: pytest.Config) -> None:
    folder = config.stash.get(_FOLDER_KEY, None)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    mark_from_fixtures(items)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    active = item.get_closest_marker("emulator") is None
    item.stash[_ACTIVE_KEY] = active
    if active:
        item.config.stash[_GUARD_KEY].start()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    """Fail a test without ``emulator`` that started one of EMULATOR_PROGRAMS (in its setup or body)."""
    report = yield
    if not item.stash.get(_ACTIVE_KEY, False):
        return report
    guard = item.config.stash[_GUARD_KEY]
    if call.when == "teardown":
        guard.stop()
        return report
    started = guard.started()
    judged = call.when == "call" or report.outcome == "skipped"
    if started and judged and report.outcome != "failed":
        report.outcome = "failed"
        report.longrepr = (
            f"{item.nodeid} started {', '.join(sorted(set(started)))} without @pytest.mark.emulator: "
            "mark it (or its fixture in tests/lanes.py FIXTURE_MARKS) so `make test-fast` leaves it out"
        )
    return report
