"""firmware/tests/core_driver.c built with ASan + UBSan as a standalone executable: it must run clean
on streams with NaN/inf/huge samples and print exactly what the ctypes host build computes."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from test_core_support import CORE_SRC, FW_TESTS, PIPELINE_SOURCES, Config, Pipeline, Windows

from tinyae import hostbuild

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")


def build_driver(cfg: Config, directory: Path) -> Path:
    """The driver built against cfg's headers (written into `directory`; built once per content)."""
    cfg.write(directory)
    return hostbuild.build_program(
        "core_driver",
        [FW_TESTS / "core_driver.c", *PIPELINE_SOURCES],
        [directory, CORE_SRC, FW_TESTS],
        sanitize=True,
        opt="-O1",
    )


def run_driver(exe: Path, samples: np.ndarray, cfg: Config, *args: str) -> Windows:
    text = "\n".join(" ".join(float(v).hex() for v in row) for row in samples.astype(np.float32)) + "\n"
    proc = subprocess.run([str(exe), *args], input=text, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "runtime error" not in proc.stderr and "AddressSanitizer" not in proc.stderr, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[-1] == f"END {len(lines) - 1}"
    rows = [line.split() for line in lines[:-1]]
    assert all(r[0] == "W" for r in rows)

    def hexes(col: int) -> np.ndarray:
        q = np.array([np.frombuffer(bytes.fromhex(r[col]), np.int8) for r in rows])
        return q.reshape(len(rows), cfg.size)

    return Windows(
        seq=np.array([int(r[1]) for r in rows], np.uint32),
        score=np.array([int(r[2], 16) for r in rows], np.uint32).view(np.float32),
        anomaly=np.array([int(r[3]) for r in rows], np.uint8),
        alarm=np.array([int(r[4]) for r in rows], np.uint8),
        status=np.array([int(r[5]) for r in rows], np.int32),
        cost=np.array([int(r[6]) for r in rows], np.uint32),
        inputs=hexes(7),
        outputs=hexes(8),
    )


@pytest.mark.parametrize(
    ("L", "H", "kind"), [(12, 5, "mse"), (4, 4, "mae"), (3, 7, "mse")], ids=["overlap", "tile", "gap"]
)
def test_sanitized_driver_matches_ctypes(tmp_path: Path, L: int, H: int, kind: str) -> None:
    cfg = Config(L=L, H=H, kind=kind, k=2, n=3, threshold=0.5)
    rng = np.random.default_rng(L + H)
    samples = (rng.normal(0, 4, (700, cfg.C)) + np.asarray(cfg.offset)).astype(np.float32)
    flat = samples.reshape(-1)
    pick = rng.random(flat.shape) < 0.03
    flat[pick] = rng.choice(np.array([np.nan, np.inf, -np.inf, 3e38, -0.0], np.float32), pick.sum())

    exe = build_driver(cfg, tmp_path / "asan")
    p = Pipeline(cfg, tmp_path / "ctypes")
    want = p.run(samples)
    assert len(want.seq) == (len(samples) - L) // H + 1
    run_driver(exe, samples, cfg).assert_equal(want)

    # runtime threshold override and engine failures go through the same code under the sanitizers
    thr = float(np.median(want.score))
    p.reset(fail_every=4)
    p.set_threshold(thr)
    want2 = p.run(samples)
    assert (want2.status != 0).any() and want2.anomaly.any()
    run_driver(exe, samples, cfg, "-t", float(np.float32(thr)).hex(), "-f", "4").assert_equal(want2)


def test_driver_rejects_garbage(tmp_path: Path) -> None:
    exe = build_driver(Config(), tmp_path)
    proc = subprocess.run([str(exe)], input="1.0 2.0 banana\n", capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "not a number: banana" in proc.stderr
