"""Issue 24: exit codes as README promises for every command under Ctrl-C (130) and SIGTERM (143), tested
with real signals sent to child processes, and what each keeps: the device commands keep what they
received (record's CSV and sidecar, monitor's log and summary) and leave the device in host-stream mode.
`tinyae model` interrupted leaves the previous model as it was (tests/test_artifacts_cli.py), `tinyae
emulate` stops QEMU (tests/test_emulator_run.py), `tinyae search` stops Ray Tune (below, slow lane)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT, heed_ctrl_c
from tinyae.tools.simdevice.port import sim_model_dir, sim_series

SIGNALS = [(signal.SIGINT, 130, "interrupted (Ctrl-C)"), (signal.SIGTERM, 143, "terminated (SIGTERM)")]


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tinyae", *args],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def wait_for(pred, proc: subprocess.Popen[str], timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not pred():
        if proc.poll() is not None:
            raise AssertionError(f"the command ended first ({proc.returncode}): {proc.stderr.read()}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("the command never got going")
        time.sleep(0.05)


def stop(proc: subprocess.Popen[str], sig: int) -> tuple[int, str, str]:
    proc.send_signal(sig)
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, out, err


def both_signals(tmp_path: Path, command, ready) -> list[tuple[int, int, str, str, Path]]:  # type: ignore[no-untyped-def]
    """Run `command(dir)` twice at once, one per signal; once `ready(dir)`, signal each. Returns
    (signal, exit code, stdout, stderr, dir) per run."""
    runs = []
    for sig, _, _ in SIGNALS:
        d = tmp_path / sig.name
        d.mkdir()
        runs.append((sig, d, start(*command(d))))
    for _, d, proc in runs:
        wait_for(lambda d=d: ready(d), proc)
    time.sleep(0.3)
    out = []
    for sig, d, proc in runs:
        rc, o, e = stop(proc, sig)
        out.append((sig, rc, o, e, d))
    for (sig, rc, _, err, _), (_, code, said) in zip(out, SIGNALS, strict=True):
        assert rc == code, (sig, err)
        assert err.strip().endswith(said) and "Traceback" not in err, err
    return out


def test_record_keeps_the_capture_and_exits_130_or_143(tmp_path: Path) -> None:
    model = sim_model_dir(tmp_path / "model")
    runs = both_signals(
        tmp_path,
        lambda d: ["device", "record", "--port", "sim://?sensor_rate=200", "--duration", "120",
                   "--out", str(d / "capture.csv"), "--model-dir", str(model), "--quiet"],
        # the capture is written aside (.capture.new-*.csv) until the end
        lambda d: any(p.name.startswith(".capture") for p in d.iterdir()),
    )  # fmt: skip
    for sig, _, _, _, d in runs:
        out = d / "capture.csv"
        meta = json.loads(out.with_suffix(".csv.json").read_text())
        assert meta["stopped_by"] == ("terminated" if sig == signal.SIGTERM else "interrupted")
        assert len(out.read_text().splitlines()) - 1 == meta["samples"] > 0
        assert [p.name for p in d.iterdir() if ".new-" in p.name] == []


def _ignores_sigint(pid: int) -> bool:
    mask = next(
        line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("SigIgn:")
    )
    return bool(int(mask.split()[1], 16) & (1 << (signal.SIGINT - 1)))


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="reads a child's signal mask from /proc")
def test_a_run_started_in_the_background_still_presses_ctrl_c_on_its_commands() -> None:
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as `make test-fast &` starts pytest
    try:
        heed_ctrl_c()
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
        try:  # Popen returns once the child has exec'd: its dispositions are the program's now
            assert not _ignores_sigint(child.pid)
        finally:
            child.kill()
            child.wait()
    finally:
        signal.signal(signal.SIGINT, before)


@pytest.mark.slow  # the same mechanism as record's, which the fast lane runs
def test_monitor_closes_its_log_prints_the_summary_and_exits_130_or_143(tmp_path: Path) -> None:
    model = sim_model_dir(tmp_path / "model")
    runs = both_signals(
        tmp_path,
        lambda d: ["device", "monitor", "--port", "sim://?sensor_rate=200", "--log", str(d / "alarms.csv"),
                   "--model-dir", str(model), "--quiet"],
        lambda d: (d / "alarms.csv").exists() and (d / "alarms.csv").stat().st_size > 100,
    )  # fmt: skip
    for _, _, out, _, d in runs:
        assert out.startswith("monitor: ") and len((d / "alarms.csv").read_text().splitlines()) > 1


@pytest.mark.slow
def test_stream_keeps_the_results_received_and_exits_130_or_143(tmp_path: Path) -> None:
    series = np.tile(sim_series(200), (50, 1))
    csv = tmp_path / "long.csv"
    np.savetxt(csv, series, delimiter=",", header="ch0,ch1,ch2", comments="", fmt="%.6f")
    model = sim_model_dir(tmp_path / "model", series)
    runs = both_signals(
        tmp_path,
        lambda d: ["device", "stream", "--port", "sim://", "--csv", str(csv), "--realtime",
                   "--out", str(d / "results.csv"), "--model-dir", str(model), "--quiet"],
        lambda d: (d / "results.csv").exists() and (d / "results.csv").stat().st_size > 200,
    )  # fmt: skip
    for *_, d in runs:
        assert len((d / "results.csv").read_text().splitlines()) > 2


@pytest.mark.slow
@pytest.mark.training
@pytest.mark.timeout(1800)
def test_search_stops_ray_tune_on_the_first_ctrl_c_and_exits_130(tmp_path: Path) -> None:
    """Ray Tune's own SIGINT handler is off (TUNE_DISABLE_SIGINT_HANDLER): the first Ctrl-C asks Tune to
    stop (its SIGUSR1 handler), Tune saves the experiment, the command says how to resume and exits 130
    without training finalists."""
    from rayprocs import wait_gone
    from searchconfigs import BUDGET, TINY

    cfg = tmp_path / "exp.toml"
    cfg.write_text(TINY)
    ray_tmp = tempfile.mkdtemp(prefix="tae-ray-", dir="/tmp")
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tinyae", "search", "--config", str(cfg), "--budget", BUDGET,
         "--target", "nano33ble_compiled", "--workers", "1", "--out", str(out), "--quiet",
         "--trials", "12"],  # 12 trials on one worker: still among them when the Ctrl-C lands
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "TAE_RAY_TMPDIR": ray_tmp},
    )  # fmt: skip
    try:
        # the trials have started once Tune has written its experiment state
        wait_for(lambda: any((out / "ray").rglob("experiment_state*.json")), proc, timeout=600)
        rc, _, err = stop(proc, signal.SIGINT)
        assert rc == 130, err
        assert "--resume" in err and "the search was stopped by Ctrl-C" in err and "Traceback" not in err
        assert not (out / "finalists").exists()  # it stopped: no finalist was trained
    finally:
        if proc.poll() is None:
            proc.kill()
        assert wait_gone(ray_tmp, 30) == [], "Ray processes left behind"
