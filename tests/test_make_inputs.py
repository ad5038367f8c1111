"""Issue 15, fault 6 and its kind: every input a model depends on decides whether `make` rebuilds it,
the config's content (not the CONFIG variable's file time), the data files it names and the C
front-end training runs. The model directory records what it was built from; make compares."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT
from tinyae.train import config

pytestmark = pytest.mark.training  # the module fixture trains a model


def _csv(path: Path, seed: int = 0, n: int = 1500) -> Path:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    path.write_text(
        "time,a,b\n" + "\n".join(f"{i * 0.01:.2f},{u:.5f},{v:.5f}" for i, (u, v) in enumerate(x)) + "\n"
    )
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A small CSV model trained from configs a.toml (make's view: CONFIG=a.toml MODEL_DIR=model)."""
    from tinyae.train.pipeline import run

    d = tmp_path_factory.mktemp("make_inputs")
    data = _csv(d / "data.csv")
    common = f'[data]\nsource = "csv"\npaths = ["{d}/*.csv"]\n[window]\nlength = 32\nhop = 16\n'
    (d / "a.toml").write_text(common + "[train]\nepochs = 1\n")
    (d / "b.toml").write_text(common + "[train]\nepochs = 2\n")
    run(config.load(d / "a.toml"), d / "model", "test", show_progress=False)
    return d, data


def make_would_train(d: Path, cfg: str) -> bool:
    proc = subprocess.run(
        ["make", "-n", "--no-print-directory", "model", f"CONFIG={d / cfg}", f"MODEL_DIR={d / 'model'}"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return "tinyae model" in proc.stdout


def test_make_rebuilds_when_the_config_content_or_the_data_change(built):
    d, data = built
    assert not make_would_train(d, "a.toml")  # up to date
    assert make_would_train(d, "b.toml")  # another config: the stale-model case
    assert not make_would_train(d, "a.toml")  # and back: nothing to do
    # same content under another name: no rebuild (content, not file name or time, decides)
    shutil.copy(d / "a.toml", d / "a-copy.toml")
    assert not make_would_train(d, "a-copy.toml")
    original = data.read_bytes()
    try:
        data.write_bytes(original.replace(b"0.00,", b"0.00,1", 1))  # edit one value
        assert make_would_train(d, "a.toml")
        data.write_bytes(original)  # same content again, newer file time: nothing to do
        assert not make_would_train(d, "a.toml")
        _csv(d / "more.csv", seed=1)  # a new recording matching the glob
        assert make_would_train(d, "a.toml")
    finally:
        data.write_bytes(original)
        (d / "more.csv").unlink(missing_ok=True)


def test_stale_reasons_name_what_changed(built, monkeypatch, tmp_path):
    from tinyae.train import inputs

    d, _ = built
    import json

    then = json.loads((d / "model" / "manifest.json").read_text())["built_from"]
    cfg = config.load(d / "a.toml")
    assert inputs.stale_reason(inputs.built_from(cfg, None, then), then) == ""
    cfg_b = config.load(d / "b.toml")
    assert "the config differs" in inputs.stale_reason(inputs.built_from(cfg_b, None, then), then)
    # the C front-end that training runs: a copy with one byte changed
    fake = []
    for src in inputs.FRONTEND_C:
        dst = tmp_path / src.name
        dst.write_bytes(src.read_bytes() + (b"\n/* changed */\n" if src.suffix == ".c" else b""))
        fake.append(dst)
    monkeypatch.setattr(inputs, "FRONTEND_C", fake)
    assert inputs.stale_reason(inputs.built_from(cfg, None, then), then) == (
        "the C front-end (tae_frontend.c/.h) changed"
    )
    assert "no inputs" in inputs.stale_reason(inputs.built_from(cfg, None), None)


def test_the_check_sets_the_stamp_for_make(built, tmp_path):
    from tinyae.train import inputs

    d, _ = built
    stamp = tmp_path / "stamp"
    assert inputs.check(config.load(d / "a.toml"), None, d / "model", stamp) == ""
    assert stamp.stat().st_mtime_ns == 0  # older than any model
    assert "config differs" in inputs.check(config.load(d / "b.toml"), None, d / "model", stamp)
    assert stamp.stat().st_mtime > (d / "model" / "manifest.json").stat().st_mtime
    assert "no model yet" in inputs.check(config.load(d / "a.toml"), None, tmp_path / "none", stamp)
