"""Fuzz the protocol decoder and the device application (libFuzzer + ASan + UBSan) for a minute."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tinyae import peakrss
from tinyae.tools.testing import fuzz

pytestmark = pytest.mark.skipif(shutil.which("clang-14") is None, reason="clang-14 is not installed")


def test_fuzzer_replays_the_vectors_cleanly(tmp_path):
    exe = fuzz.build_fuzzer()
    seeds = fuzz.seed_corpus(tmp_path / "seeds")
    proc = subprocess.run(peakrss.fresh([exe, "-runs=0", seeds]), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Done" in proc.stderr or "INITED" in proc.stderr


@pytest.mark.slow
def test_fuzz_one_minute_without_a_crash(tmp_path):
    proc = fuzz.run_fuzzer(60, tmp_path)
    crashes = (
        list(tmp_path.glob("crash-*")) + list(tmp_path.glob("leak-*")) + list(tmp_path.glob("timeout-*"))
    )
    assert proc.returncode == 0 and not crashes, proc.stderr[-4000:]
    assert "stat::number_of_executed_units" in proc.stderr


@pytest.mark.skipif(shutil.which("llvm-cov-14") is None, reason="llvm-14 is not installed")
def test_structured_seeds_reach_the_message_handlers(tmp_path):
    # the seeds alone (empty corpus): the structured mode's valid-CRC sessions must complete windows,
    # apply settings and switch modes, so most of tae_app.c runs, not only its error paths
    cov = fuzz.coverage_report(tmp_path / "empty_corpus")
    app, proto = cov["files"]["tae_app.c"], cov["files"]["tae_protocol.c"]
    assert app["lines"]["percent"] >= 85.0, cov["text"]
    assert app["functions"]["percent"] == 100.0, cov["text"]
    assert proto["lines"]["percent"] >= 80.0, cov["text"]
    # on-site calibration: a calibration accepted, refused, aborted, a record written, storage faults
    # (the host-only ctypes helpers of tae_calib.c are the functions the device never calls)
    assert cov["files"]["tae_calib.c"]["lines"]["percent"] >= 75.0, cov["text"]
