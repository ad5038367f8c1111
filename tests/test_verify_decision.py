"""`verify` proves the whole decision on the emulated board (the compiled engine):

- the models retuned onto multiplier ties verify bit-exact, every window, against the reference of the
  engine the device names (the compiled engine follows the pinned libraries' rule);
- a device whose threshold, normalization, front-end, alarm rule or calibration constants differ from the
  artifacts is named by `info` (exit 1, one sentence) and fails `verify`, which decides at the artifacts'
  threshold, so a stale device never passes;
- the test split is streamed one recording at a time, so verify compares the report's windows.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from boardlibs import model_variant

from tests.conftest import TIE_MODELS, has_arm_toolchain, windows_to_verify
from tinyae.cli import main as tinyae
from tinyae.tools.emulator.qemu import build_image

pytestmark = [
    pytest.mark.emulator,
    pytest.mark.skipif(not has_arm_toolchain(), reason="needs arm-none-eabi-gcc and qemu-system-arm"),
]


def _verify(elf: Path, model_dir: Path, tmp_path: Path, *extra: str) -> tuple[int, dict]:
    report = tmp_path / f"verify-{model_dir.name}.json"
    code = tinyae(
        ["device", "verify", "--emulator", str(elf), "--emulator-storage", str(tmp_path / "storage"),
         "--model-dir", str(model_dir), "--json", str(report), "--quiet", *extra]
    )  # fmt: skip
    return code, json.loads(report.read_text())


@pytest.mark.parametrize("model", list(TIE_MODELS))
def test_the_compiled_engine_is_bit_exact_on_the_tie_models(model, lane_model, tmp_path):
    model_dir = lane_model(model, "per_tensor")
    build_image(tmp_path / "fw", model_dir=model_dir)
    windows = windows_to_verify(model_dir)
    code, r = _verify(tmp_path / "fw" / "tinyae.elf", model_dir, tmp_path, "--max-windows", str(windows))
    assert r["device"]["engine"] == "compiled" and r["reference"] == "tflm"
    assert code == 0 and r["ok"], r
    assert r["output_mismatches"] == 0 and r["windows_compared"] == r["windows_expected"] == windows
    tie = json.loads((model_dir / "manifest.json").read_text())["reference"]["tflite_micro"]
    assert tie["elements_differing"] >= 3  # where tflite_micro's multiplier would have failed verify


def _edited(base: Path, out: Path, edit) -> Path:  # type: ignore[no-untyped-def]
    """The artifacts `base` with one manifest constant edited and every header re-rendered from it."""
    return model_variant(base, out, lambda m: edit(m) and None)


def _threshold(m: dict) -> None:
    m["threshold"]["value"] = m["threshold"]["value"] * 0.9


def _normalization(m: dict) -> None:
    m["normalization"]["offset"][0] += 0.25


def _alarm_rule(m: dict) -> None:
    m["decision"]["k"] = max(1, m["decision"]["k"] - 1) if m["decision"]["k"] > 1 else 2
    m["decision"]["n"] = max(m["decision"]["n"], m["decision"]["k"])


# the calibration constants are derived from the threshold and the normalization (their digest follows)
CASES = {
    "threshold": (
        _threshold,
        ["threshold", "calibration constants (digest)"],
        "`tinyae threshold` changed the artifacts",
    ),
    "normalization": (
        _normalization,
        ["normalization (digest)", "calibration constants (digest)"],
        "flash the firmware built from",
    ),
    "alarm rule": (_alarm_rule, ["alarm rule"], "flash the firmware built from"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_device_with_other_constants_is_named_and_fails_verify(
    case, default_model_dir, default_elf, tmp_path, capsys
):
    """The device runs the default model's firmware; the artifacts differ in one constant (as after
    `tinyae threshold` or a rebuild that was not flashed)."""
    edit, names, advice = CASES[case]
    artifacts = _edited(default_model_dir, tmp_path / "artifacts", edit)
    capsys.readouterr()
    assert tinyae(["device", "info", "--emulator", str(default_elf), "--model-dir", str(artifacts)]) == 1
    err = capsys.readouterr().err
    assert "error: the device does not decide as" in err and advice in err and "Traceback" not in err
    for name in names:
        assert name in err
    code, r = _verify(default_elf, artifacts, tmp_path, "--max-windows", "120")
    assert code == 1 and not r["ok"]
    differ = [c["name"] for c in r["constants"] if not c["ok"]]
    assert set(names) <= set(differ), differ
    if case == "threshold":
        # decided at the artifacts' threshold: the device's decisions at its own one no longer agree
        assert r["threshold"] == pytest.approx(
            json.loads((artifacts / "manifest.json").read_text())["threshold"]["value"]
        )


def test_tinyae_threshold_after_flashing_is_caught(default_model_dir, default_elf, tmp_path, capsys):
    """The issue's case: `tinyae threshold` moves the threshold without a reflash; info names it and verify
    fails (before: info said the artifacts match and verify passed with 46 decisions wrong)."""
    moved = tmp_path / "thr2"
    shutil.copytree(default_model_dir, moved)
    assert (
        tinyae(["threshold", "--model-dir", str(moved), "--method", "percentile", "--percentile", "90"]) == 0
    )
    capsys.readouterr()
    assert tinyae(["device", "info", "--emulator", str(default_elf), "--model-dir", str(moved)]) == 1
    assert "threshold (device" in capsys.readouterr().err
    code, r = _verify(default_elf, moved, tmp_path)
    assert code == 1 and not r["ok"]
    assert r["n_decision_mismatches"] > 0  # decided at the artifacts' threshold, the stale device disagrees


def test_verify_streams_each_test_recording_on_its_own(default_model_dir, default_elf, tmp_path):
    """windows_expected equals the report's test windows: no window spans two recordings."""
    code, r = _verify(default_elf, default_model_dir, tmp_path)
    manifest = json.loads((default_model_dir / "manifest.json").read_text())
    with np.load(default_model_dir / "test_vectors.npz") as z:
        n_series = len(z["series_lengths"])
        assert len(z["windows"]) == manifest["metrics"]["windows"]["test"]
    assert code == 0 and r["windows_expected"] == manifest["metrics"]["windows"]["test"]
    assert {w["series"] for w in r.get("lost_windows", [])} <= set(range(n_series))
