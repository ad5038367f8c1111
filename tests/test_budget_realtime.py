"""The real-time budget (budgets.toml `window_time`, tools/budget/realtime.py): a window's computation must
fit its share of the hop period. The fast tests check the arithmetic, the sentences and the config; the
emulator tests run `tinyae budget check --model-dir` on the default model (fits, headroom printed) and on
a model that fits in flash but not in time (the same network sampled at 20 kHz: a window every 1.6 ms)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from boardlibs import model_variant

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


SHAPED = {  # a manifest's shape, enough for the estimate from the shape (tools/budget/cost.py)
    "model": {"sha256": "0" * 64, "layers": [{"units": 64}, {"units": 16}, {"units": 64}, {"units": 128}]},
    "window": {"length": 64, "hop": 32, "channels": 2, "sample_rate_hz": 100.0},
    "input": {"size": 128},
}


def test_verify_estimates_the_device_it_talked_to_from_its_handshake(tmp_path: Path):
    """verify's report: the INFO's target, engine and TFLM library pick the budgets.toml target and the
    kernels (the emulated board's "qemu-mps2-an386" is mps2_an386); what is not estimated says why."""
    from tinyae.tools.budget.realtime import device_estimate

    (tmp_path / "manifest.json").write_text(json.dumps(SHAPED))
    emu = device_estimate(tmp_path, "qemu-mps2-an386", "compiled", "")
    assert emu["estimated"] and emu["target"] == "mps2_an386" and emu["how"].startswith("from the shape")
    assert emu["ms"]["window"]["nominal"] == pytest.approx(
        emu["cycles"]["window"]["nominal"] / 64e3, abs=1e-4
    )
    cmsis = device_estimate(tmp_path, "nano33ble", "tflm", "Chirale_TensorFLowLite 2.0.0")
    reference = device_estimate(tmp_path, "qemu-mps2-an386", "tflm", "tflite-micro 90b983c")
    assert cmsis["target"] == "nano33ble" and cmsis["engine"] == "TFLM Chirale_TensorFLowLite 2.0.0"
    engine = [r["cycles"]["engine"]["nominal"] for r in (emu, cmsis, reference)]
    assert engine == sorted(engine) and len(set(engine)) == 3  # compiled < CMSIS-NN < reference kernels
    unknown = device_estimate(tmp_path, "nano33ble", "tflm", "SomeTFLM 9.9")
    assert not unknown["estimated"] and "SomeTFLM 9.9" in unknown["reason"]
    esp = device_estimate(tmp_path, "esp32dev", "compiled", "")
    assert not esp["estimated"] and "xtensa-lx6 is not estimated" in esp["reason"]
    other = device_estimate(tmp_path, "stm32-h7", "compiled", "")
    assert not other["estimated"] and "no target for the device's 'stm32-h7'" in other["reason"]


def test_sensor_mode_sampling_counts_the_same_window_time_as_the_real_time_budget():
    """One estimate of a window's computation on a Cortex-M4F board: `tinyae budget sampling` takes the
    real-time budget's cycles (cost.formula_timing) at budgets.toml's clock, not constants of its own."""
    from tinyae.tools.budget.cost import formula_timing
    from tinyae.tools.budget.sampling import estimate

    nano = load_budgets(REPO_ROOT / "budgets.toml").target("nano33ble")
    s = estimate(SHAPED, "nano33ble_compiled", "-D TAE_BOARD_SENSOR")
    cycles = formula_timing(SHAPED, "compiled")["cycles"]["window"]["nominal"]  # type: ignore[index]
    assert s.terms["window computation at the hop"] == pytest.approx(cycles / nano.clock_hz * 1e6)


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
def fast_model(default_model_dir, tmp_path_factory) -> Path:
    """The default network with its data sampled at 20 kHz: the same flash, a window every 1.6 ms. Only
    the rate differs (manifest and headers re-rendered from it), so no 20 kHz recording is generated and
    trained on: that cost 95 s of a CI run and proves nothing the rate alone does not."""

    def at_20_khz(manifest: dict) -> None:
        assert manifest["data"]["sample_rate_hz"] == manifest["window"]["sample_rate_hz"] == 100.0
        manifest["data"]["sample_rate_hz"] = manifest["window"]["sample_rate_hz"] = 20000.0

    return model_variant(default_model_dir, tmp_path_factory.mktemp("fast_model") / "m", at_20_khz)


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


@pytest.mark.emulator
def test_a_tflm_library_without_its_sources_is_one_sentence_and_runs_no_board_build(tmp_path, monkeypatch):
    """`--timing --engine tflm` and the bench need a pinned library (mk/tflm.mk): without its sources the
    answer is make's own sentence, on one line, at once (its advice is text, never a command the recipe
    runs: the backticks once started a PlatformIO build of the board inside the error message)."""
    from tinyae.tools.emulator import harness

    if (REPO_ROOT / "build" / "pio" / "libdeps" / "nano33ble" / "Chirale_TensorFLowLite").is_dir():
        pytest.skip("PlatformIO's copy of the library is here: make builds from it")
    monkeypatch.setattr(harness, "THIRD_PARTY", tmp_path)
    with pytest.raises(UserError) as caught:
        harness.tflm_library("chirale")
    text = str(caught.value)
    assert "\n" not in text and "Processing" not in text, text
    assert (
        f"are not at {tmp_path}/Chirale_TensorFLowLite-2.0.0; run `make build BOARD=nano33ble` once" in text
    )
