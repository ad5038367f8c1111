"""The host arena measurement: bisection in one child process, which a crashing probe may take down."""

from __future__ import annotations

from pathlib import Path

import pytest

from tinyae.train import arena

# A stand-in for the probe: the "model" runs in 3000 bytes or more, and sizes below 2600 crash the process
# (as some undersized TFLM arenas do), so the prober must restart it and count those sizes as too small.
FAKE_PROBE = """
import os, sys
for line in sys.stdin:
    size = int(line)
    if size < 2600:
        os._exit(11)
    print(size, int(size >= 3000), flush=True)
"""


def test_bisection_survives_crashing_probes_and_finds_the_smallest_arena(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(arena, "_PROBE", FAKE_PROBE)
    starts = []
    real_popen = arena.subprocess.Popen

    def popen(*args, **kwargs):  # type: ignore[no-untyped-def]
        starts.append(1)
        return real_popen(*args, **kwargs)

    monkeypatch.setattr(arena.subprocess, "Popen", popen)
    size = arena.measure_arena_bytes(Path("unused.tflite"))
    assert 3000 <= size < 3000 + 16
    assert len(starts) >= 2  # the crash at a small size started a second process
    assert len(starts) < 6  # and not one per probe


def test_a_model_that_never_fits_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(arena, "_PROBE", FAKE_PROBE.replace("size >= 3000", "False"))
    with pytest.raises(RuntimeError, match="does not run in a 65536-byte arena"):
        arena.measure_arena_bytes(Path("m.tflite"), limit=1 << 16)
