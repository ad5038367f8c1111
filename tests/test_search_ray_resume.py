"""`tinyae search` on its own local Ray, run as a user runs it (a subprocess), stopped by SIGTERM and by a
terminal's Ctrl-C and resumed: the finished trials are kept, the interrupted ones named and rerun. The test
checks that no Ray process of its own is left behind. (A module apart from tests/test_search_ray.py, so
pytest-xdist runs the two long Ray tests on different workers.)"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from rayprocs import end, wait_gone

TINYAE = [sys.executable, "-m", "tinyae"]

pytestmark = [pytest.mark.slow, pytest.mark.training, pytest.mark.timeout(1800)]


@pytest.fixture
def ray_tmp(monkeypatch):
    """A private Ray temp dir (TAE_RAY_TMPDIR): afterwards no process naming it may be left (the search
    shuts its local Ray down itself); any that is, is ended by its PID and fails the test."""
    tmp = tempfile.mkdtemp(prefix="tae-ray-", dir="/tmp")
    monkeypatch.setenv("TAE_RAY_TMPDIR", tmp)
    yield tmp
    left = wait_gone(tmp, 30)
    end(left, signal.SIGKILL)
    assert left == [], "Ray processes left behind"


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


def _search(cwd: Path, args: list[str], timeout: float = 1500) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*TINYAE, "search", *args], cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout
    )


def _statuses(experiment: Path, old: frozenset[str] = frozenset()) -> dict[str, str]:
    """Each trial's status in Ray Tune's newest saved experiment state (what `--resume` will read); {}
    while the newest is one of the `old` files (a resumed search writes a file of its own)."""
    states = sorted(experiment.glob("experiment_state-*.json"))
    if not states or states[-1].name in old:
        return {}
    try:
        doc = json.loads(states[-1].read_text())
        trials = [json.loads(t[0]) for t in doc.get("trial_data", [])]
        return {t["trial_id"]: t["status"] for t in trials}
    except (ValueError, KeyError, IndexError, OSError):
        return {}


def _wait_mid_search(
    experiment: Path, proc: subprocess.Popen, done: set[str], old: frozenset[str], timeout: float = 900
) -> None:
    """Until a trial outside `done` has finished while another is still to run, as Tune's saved state
    says: the moment to stop the search in the middle of its trials (not before them, when the state file
    is the previous run's, nor after them, when there is nothing left to interrupt)."""
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        status = _statuses(experiment, old)
        finished = {t for t, s in status.items() if s == "TERMINATED"}
        if finished - done and any(s in ("PENDING", "RUNNING", "PAUSED") for s in status.values()):
            return
        time.sleep(0.2)
    raise AssertionError(
        f"no new finished trial with another still to run before the search ended or {timeout} s"
    )


def test_stopped_search_keeps_finished_trials_and_resume_reruns_the_rest(tmp_path, ray_tmp):
    """SIGTERM (exit 143), then a terminal's Ctrl-C sent to the whole process group, Ray's workers included
    (exit 130): the finished trials are kept and written, the interrupted ones named, and `--resume` runs
    exactly the unfinished ones."""
    cfg = tmp_path / "exp.toml"
    cfg.write_text(
        "[window]\nlength = 32\nhop = 16\n[model]\nhidden = [16]\nlatent = 4\n[train]\nepochs = 30\n"
        "patience = 30\n[search]\nreport_every = 10\ngrace = 3\nfinalists = 0\nseed = 2\n"
        "default_space = false\n[search.space]\nmodel.hidden = [[8], [16], [32]]\n"
        "train.learning_rate = { min = 1e-3, max = 3e-3 }\n"
    )
    # One worker: the trials run one after another, so when a trial has finished the next ones are still to
    # run (whatever the machine's speed, each signal lands with two trials or more still to run), and each
    # run starts one TensorFlow process for its trials, not two. Epochs barely change a trial's length
    # (its fixed costs dominate: the conversions, the host reference, a new worker's TensorFlow start).
    args = ["--config", str(cfg), "--budget", "flash=64k", "--target", "nano33ble_compiled", "--trials", "5",
            "--workers", "1", "--out", "out", "--quiet", "--finalists", "0"]  # fmt: skip
    experiment = tmp_path / "out" / "ray" / "trials"
    ids_done: set[str] = set()
    for sig, code in ((signal.SIGTERM, 143), (signal.SIGINT, 130)):
        extra = ["--resume"] if sig == signal.SIGINT else []
        old = frozenset(p.name for p in experiment.glob("experiment_state-*.json"))
        # Tune saves its state every second here (not every ~10 s): the test sees the trials' progress
        proc = subprocess.Popen([*TINYAE, "search", *args, *extra], cwd=tmp_path,
                                env={**_env(), "TUNE_GLOBAL_CHECKPOINT_S": "1"},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)  # fmt: skip
        try:
            _wait_mid_search(experiment, proc, ids_done, old)
            if sig == signal.SIGINT:
                os.killpg(proc.pid, signal.SIGINT)  # a terminal's Ctrl-C reaches the whole group
            else:
                proc.send_signal(sig)
            _, err = proc.communicate(timeout=300)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        assert proc.returncode == code, err[-3000:]
        assert "--resume" in err and "Traceback" not in err
        doc = json.loads((tmp_path / "out" / "results.json").read_text())
        assert doc["stopped"] in ("SIGTERM", "Ctrl-C")
        done = {
            r["trial_id"] for r in doc["rows"] if r["status"] in ("ok", "stopped", "infeasible", "failed")
        }
        assert ids_done <= done and len(done) > len(ids_done), err[-3000:]  # kept, and more finished
        for r in doc["rows"]:
            assert "epoch None" not in r.get("reason", "")
            if r["trial_id"] not in done:
                assert r["status"] == "interrupted" and "--resume" in r["reason"]
        ids_done = done
    final = _search(tmp_path, [*args, "--resume"])
    assert final.returncode == 0, final.stderr[-3000:]
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    rows = doc["rows"]
    assert len(rows) == 5 and ids_done <= {r["trial_id"] for r in rows}
    assert {r["status"] for r in rows} <= {"ok", "stopped", "infeasible"}, rows
