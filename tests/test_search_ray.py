"""`tinyae search` on Ray, run as a user runs it (a subprocess in the data's folder): a spectral search from
README's relative `recordings/` layout, joined with `--address` to a real two-node Ray cluster started on
this machine, whose finalist matches its trial byte for byte. The test checks that no Ray process of its
own is left behind. (The stop-and-resume test is tests/test_search_ray_resume.py: a module of its own, so
pytest-xdist runs the two long Ray tests on different workers.)"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from rayprocs import stop_cluster

ROOT = Path(__file__).resolve().parent.parent
TINYAE = [sys.executable, "-m", "tinyae"]

pytestmark = [pytest.mark.slow, pytest.mark.training, pytest.mark.timeout(1800)]


def _recording(path: Path, n: int, seed: int, fault: bool = False) -> None:
    """A 3-axis vibration recording at 100 Hz: two tones and noise; `fault` adds a tone at 31 Hz."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 100.0
    cols = []
    for c in range(3):
        x = np.sin(2 * np.pi * (7 + c) * t) + 0.4 * np.sin(2 * np.pi * 19 * t + c)
        if fault:
            x += 0.8 * np.sin(2 * np.pi * 31 * t)
        cols.append(x + 0.2 * rng.normal(size=n))
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["timestamp,ax,ay,az"] + [
        f"{t[i]:.2f},{cols[0][i]:.5f},{cols[1][i]:.5f},{cols[2][i]:.5f}" for i in range(n)
    ]
    path.write_text("\n".join(lines) + "\n")


LAYOUT = """
[data]
source = "csv"
train = ["recordings/normal/*.csv"]
test = ["recordings/test-normal/*.csv", "recordings/fault/*.csv"]

[data.file_labels]
"recordings/normal/*.csv" = "normal"
"recordings/test-normal/*.csv" = "normal"
"recordings/fault/*.csv" = "fault"
"""


def _layout(folder: Path) -> None:
    for k in range(2):
        _recording(folder / "recordings" / "normal" / f"run{k}.csv", 2400, k)
    _recording(folder / "recordings" / "test-normal" / "run5.csv", 900, 5)
    _recording(folder / "recordings" / "fault" / "run8.csv", 900, 8, fault=True)
    _recording(folder / "recordings" / "fault" / "run9.csv", 900, 9, fault=True)


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


SPECTRAL = (
    LAYOUT
    + """
[window]
length = 64
hop = 32

[frontend]
kinds = ["spectral"]

[model]
hidden = [16]
latent = 4

[train]
epochs = 6
patience = 3

[search]
report_every = 2
grace = 1
finalists = 1
seed = 1
default_space = false

[search.space]
window.length = [64, 128]
frontend.fft_frames = [1, 2, 4]
frontend.bins = [0, 8]
frontend.log_floor_db = [3.0, 10.0, 30.0]
"""
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _two_node_cluster() -> Iterator[tuple[str, dict[str, str]]]:
    """`ray start --head` and a second node on loopback, one CPU each, with the cluster's own token
    authentication and a token of this test's: yields (address, environment with the token). The cluster
    is stopped by the PIDs of its processes, in `ray stop`'s order (`ray stop` itself would stop every Ray
    instance of this machine's user), and none may be left."""
    import secrets

    marker = tempfile.mkdtemp(prefix="tae-raycluster-", dir="/tmp")
    port = _free_port()
    ray_cli = [sys.executable, "-m", "ray.scripts.scripts"]
    common = ["--num-cpus=1", "--node-ip-address=127.0.0.1", "--disable-usage-stats"]
    env = {**_env(), "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16)}
    try:
        head = subprocess.run([*ray_cli, "start", "--head", f"--port={port}", f"--temp-dir={marker}",
                               "--include-dashboard=false", *common],
                              env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
        assert head.returncode == 0, head.stderr[-2000:]
        node = subprocess.run([*ray_cli, "start", f"--address=127.0.0.1:{port}", *common], env=env,
                              capture_output=True, text=True, timeout=300)  # fmt: skip
        assert node.returncode == 0, node.stderr[-2000:]
        yield f"127.0.0.1:{port}", env
    finally:
        assert stop_cluster(marker) == [], "Ray cluster processes left behind"


@pytest.mark.emulator  # the finalist is measured on the emulated board
def test_spectral_search_from_relative_paths_on_a_two_node_ray_cluster_reproduces_its_finalist(tmp_path):
    """One search proves three things: README's relative `recordings/` layout reaches the trials (they run
    in Ray workers whose working directory is the job's package, not the data's folder), `--address` joins
    a real two-node cluster and its trials run on both nodes, and the finalist matches its trial byte for
    byte and its estimate the emulated board's images."""
    _layout(tmp_path)
    (tmp_path / "exp.toml").write_text(SPECTRAL)
    budget = "flash=48k,ram=16k,instructions=200k"
    with _two_node_cluster() as (address, env):
        run = subprocess.run(
            [*TINYAE, "search", "--config", "exp.toml", "--budget", budget, "--target", "nano33ble_compiled",
             "--trials", "3", "--workers", "2", "--address", address, "--out", "out", "--quiet"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1500,
        )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    rows = doc["rows"]
    assert doc["address"] == address
    assert len(rows) == 3 and not [r for r in rows if r["status"] in ("failed", "interrupted")], rows
    # one CPU per node and two trials at a time: the trials ran on both nodes (every row names its node,
    # a trial ASHA stopped early too)
    assert len({r["node"] for r in rows}) == 2, rows
    assert doc["default"]["status"] == "ok"  # the configured spectral front-end, its log floors fitted
    for r in rows:  # every trial is spectral, with its FFT length from fft_frames
        assert r["settings"]["frontend.fft_frames"] in (1, 2, 4)
    best, fin = doc["best"], doc["finalists"][0]
    assert fin["trial_id"] == best["trial_id"] and fin["reproduced"], fin
    assert best["threads"] == 1
    # the estimate of the finalist's flash and RAM within 10 % of the emulated board's images
    checks = {c["figure"]: c for c in fin["checks"]}
    assert abs(checks["flash"]["difference"]) <= 0.10 and abs(checks["ram"]["difference"]) <= 0.10, checks
    # what README says: `tinyae model --config best.toml` trains the same int8 model again
    again = subprocess.run([*TINYAE, "model", "--config", "out/best.toml", "--out", "again"], cwd=tmp_path,
                           env=_env(), capture_output=True, text=True, timeout=900)  # fmt: skip
    assert again.returncode == 0, again.stderr[-2000:]
    manifest = json.loads((tmp_path / "again" / "manifest.json").read_text())
    assert manifest["model"]["sha256"] == best["sha256"]
    assert manifest["frontend"]["kinds"] == ["spectral"]
