"""The real-time budget (budgets.toml `window_time`, tools/budget/realtime.py): a window's computation must
fit its share of the hop period. The fast tests check the arithmetic, the sentences and the config; the
emulator tests run `tinyae budget check --model-dir` on the default model (fits, headroom printed) and on
a model that fits in flash but not in time (the same network sampled at 20 kHz: a window every 1.6 ms)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tinyae.cli import main as tinyae
from tinyae.errors import UserError
from tinyae.tools.budget.config import REPO_ROOT, load_budgets
from tinyae.tools.budget.realtime import time_check

TIMING = {  # tools/emulator/timing.py's keys, figures of the default model's trace
    "instructions": {"frontend": 11_428, "engine": 29_523, "score": 2_505, "window": 44_634},
    "cycles": {
        "frontend": {"nominal": 15_370, "low": 14_163, "high": 16_986},
        "engine": {"nominal": 41_309, "low": 41_179, "high": 42_307},
        "score": {"nominal": 4_252, "low": 3_866, "high": 4_442},
        "window": {"nominal": 63_163, "low": 61_378, "high": 66_091},
    },
}


def manifest(rate: float, hop: int = 32) -> dict:
    return {"window": {"length": 64, "hop": hop, "channels": 3, "sample_rate_hz": rate}, "model": {}}


def test_a_window_that_fits_has_headroom_and_no_violation():
    nano = load_budgets(REPO_ROOT / "budgets.toml").target("nano33ble")
    tc = time_check(nano, manifest(100.0), TIMING, "trace")
    assert tc.period_ms == pytest.approx(320.0) and tc.allowed_ms == pytest.approx(160.0)
    assert tc.ms("window", "high") == pytest.approx(66_091 / 64e3)
    assert tc.fits is True and tc.violation() is None


def test_a_window_longer_than_its_share_of_the_hop_is_one_sentence():
    nano = load_budgets(REPO_ROOT / "budgets.toml").target("nano33ble")
    tc = time_check(nano, manifest(20_000.0), TIMING, "trace")  # 32 samples every 1.6 ms, 0.8 ms allowed
    tc.model = "fast"
    assert tc.fits is False
    sentence = tc.violation()
    assert sentence is not None and "\n" not in sentence
    assert "1.033 ms" in sentence and "50% of its hop period (1.600 ms" in sentence and "0.800 ms" in sentence


def test_cores_without_a_model_are_not_estimated_and_not_gated():
    esp = load_budgets(REPO_ROOT / "budgets.toml").target("esp32dev")
    tc = time_check(esp, manifest(20_000.0), TIMING, "trace")
    assert not tc.estimated and tc.fits is None and tc.violation() is None
    assert "xtensa-lx6 is not estimated" in tc.reason


def test_a_model_without_sample_rate_is_not_gated():
    nano = load_budgets(REPO_ROOT / "budgets.toml").target("nano33ble")
    tc = time_check(nano, manifest(0.0), TIMING, "trace")
    assert tc.estimated and tc.fits is None and "no sample rate" in tc.reason


@pytest.mark.parametrize(
    ("value", "match"),
    [('"50 KiB"', "not a share of the hop period"), ('"150%"', "not a share"), ("50", "not a share")],
)
def test_window_time_must_be_a_share(tmp_path: Path, value: str, match: str):
    text = (
        (REPO_ROOT / "budgets.toml").read_text().replace('window_time = "50%"', f"window_time = {value}", 1)
    )
    p = tmp_path / "budgets.toml"
    p.write_text(text)
    with pytest.raises(UserError, match=match):
        load_budgets(p)


def test_a_time_budget_needs_a_clock(tmp_path: Path):
    text = (REPO_ROOT / "budgets.toml").read_text().replace("clock_hz = 64_000_000\n", "", 1)
    p = tmp_path / "budgets.toml"
    p.write_text(text)
    with pytest.raises(UserError, match="no clock_hz"):
        load_budgets(p)


# ---------------------------------------------------------------------------------- on the emulated board
@pytest.fixture(scope="module")
def fast_model(tmp_path_factory) -> Path:
    """The default network with its data sampled at 20 kHz: the same flash, a window every 1.6 ms."""
    from tinyae.train import config
    from tinyae.train.pipeline import run

    out = tmp_path_factory.mktemp("fast_model")
    cfg = config.load(REPO_ROOT / "configs" / "default.toml", ["data.sample_rate_hz=20000", "train.epochs=2"])
    run(cfg, out, "tinyae model --set data.sample_rate_hz=20000 --set train.epochs=2", show_progress=False)
    return out


FIXTURE_MARKS = {"fast_model": ("training",)}


@pytest.mark.emulator
def test_make_budget_passes_the_default_model_with_its_headroom(
    default_elf, default_model_dir, tmp_path, capsys
):
    out = tmp_path / "budget.json"
    code = tinyae(["budget", "check", str(default_elf), "--target", "mps2_an386", "--model-dir",
                   str(default_model_dir), "--json", str(out)])  # fmt: skip
    text = capsys.readouterr()
    assert code == 0, text.err
    assert (
        "ESTIMATE" in text.out and "time: fits; a window takes at most" in text.out and "headroom" in text.out
    )
    doc = json.loads(out.read_text())["time"]
    assert doc["fits"] is True and doc["how"] == "trace"
    assert (
        doc["cycles"]["window"]["low"]
        <= doc["cycles"]["window"]["nominal"]
        <= doc["cycles"]["window"]["high"]
    )


@pytest.mark.emulator
def test_make_budget_fails_a_model_that_fits_in_flash_but_not_in_time(fast_model, tmp_path, capsys):
    from tinyae.tools.emulator.qemu import build_image

    build_image(tmp_path / "fw", model_dir=fast_model)
    code = tinyae(["budget", "check", str(tmp_path / "fw" / "tinyae.elf"), "--target", "mps2_an386",
                   "--model-dir", str(fast_model), "--json", str(tmp_path / "b.json")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "more than the 50% of its hop period (1.600 ms" in errors[0], err
    doc = json.loads((tmp_path / "b.json").read_text())
    assert doc["ok"] and doc["violations"] == []  # flash and RAM fit: only time fails
    assert doc["time"]["fits"] is False
