"""The host CLI against the emulated Cortex-M4 (QEMU mps2-an386) running the real firmware:
verify on the default model's test split (zero mismatches), info, model mismatch at the handshake,
and the record -> train -> build -> verify round trip on the emulator's synthetic sensor."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from terminaltext import last_column

from tests.conftest import ROOT, has_arm_toolchain
from tinyae import __version__
from tinyae.cli import main as tinyae
from tinyae.tools.simdevice.port import sim_model_dir

pytestmark = [
    pytest.mark.emulator,
    pytest.mark.skipif(not has_arm_toolchain(), reason="needs arm-none-eabi-gcc and qemu-system-arm"),
]


def build_firmware(model_dir: Path, out: Path) -> Path:
    """make firmware-emu for `model_dir` into `out`; -o keeps make from retraining the model dir."""
    cmd = [
        "make", "--no-print-directory", "-s", "firmware-emu", f"MODEL_DIR={model_dir}", f"EMU_OUT={out}",
        "-o", f"{model_dir}/manifest.json",
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out / "tinyae.elf"


def test_verify_default_model_on_the_emulator(default_model_dir, default_elf, tmp_path, capsys):
    report = tmp_path / "verify.json"
    t0 = time.monotonic()
    code = tinyae(
        ["device", "verify", "--emulator", str(default_elf), "--model-dir", str(default_model_dir),
         "--json", str(report), "--markdown", str(tmp_path / "verify.md"), "--quiet"]
    )  # fmt: skip
    elapsed = time.monotonic() - t0
    r = json.loads(report.read_text())
    assert code == 0, r
    assert r["ok"] and r["output_mismatches"] == 0 and r["input_mismatches"] == 0
    assert r["windows_compared"] == r["windows_expected"] > 100
    assert r["scores_exact_equal"] == r["windows_compared"]
    assert r["cost"]["unit"] == "instructions" and r["cost"]["min"] > 1000
    assert r["device"]["flash_used"] > 0 and r["device"]["target"] == "qemu-mps2-an386"
    assert r["device"]["firmware"] == __version__  # pyproject.toml's, through model_config.h
    link = r["link"]
    per_window_tx = link["bytes_tx"] / r["windows_compared"]
    per_window_rx = link["bytes_rx"] / r["windows_compared"]
    with capsys.disabled():
        print(
            f"\n[cli-emulator] verify: {r['windows_compared']} windows in {elapsed:.1f} s end to end, "
            f"{r['windows_per_second']:.1f} windows/s streaming; {per_window_tx:.0f} B/window host->device, "
            f"{per_window_rx:.0f} B/window device->host"
        )


def test_info_and_model_mismatch_at_the_handshake(default_model_dir, default_elf, tmp_path, capsys):
    sha = json.loads((default_model_dir / "manifest.json").read_text())["model"]["sha256"]
    assert (
        tinyae(["device", "info", "--emulator", str(default_elf), "--model-dir", str(default_model_dir)]) == 0
    )
    out = capsys.readouterr().out
    # info's table folds the sha256 at a narrow terminal (xdist's workers see COLUMNS=80): read it whole
    assert sha in last_column(out) and "matches" in out and "qemu-mps2-an386" in out
    other = sim_model_dir(tmp_path / "other")  # artifacts of another model
    assert (
        tinyae(["device", "verify", "--emulator", str(default_elf), "--model-dir", str(other), "--quiet"])
        == 2
    )
    err = capsys.readouterr().err
    assert (
        sha[:12] in err and "000102030405" in err and "flash the firmware built from these artifacts" in err
    )


def test_record_train_verify_round_trip(default_model_dir, default_elf, tmp_path):
    capture = tmp_path / "capture.csv"
    code = tinyae(
        ["device", "record", "--emulator", str(default_elf), "--model-dir", str(default_model_dir),
         "--samples", "3000", "--out", str(capture), "--label", "0", "--quiet"]
    )  # fmt: skip
    assert code == 0
    assert len(capture.read_text().splitlines()) == 3001
    model = tmp_path / "rt_model"
    train = subprocess.run(
        [sys.executable, "-m", "tinyae", "model", "--config", "configs/default.toml",
         "--set", "data.source=csv", "--set", f'data.paths=["{capture}"]', "--set", "train.epochs=5",
         "--out", str(model), "--quiet"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert train.returncode == 0, train.stderr[-2000:]
    elf = build_firmware(model, tmp_path / "fw")
    report = tmp_path / "rt.json"
    code = tinyae(
        [
            "device",
            "verify",
            "--emulator",
            str(elf),
            "--model-dir",
            str(model),
            "--json",
            str(report),
            "--quiet",
        ]
    )
    r = json.loads(report.read_text())
    assert code == 0, r
    assert r["ok"] and r["output_mismatches"] == 0 and r["windows_compared"] > 0
    # and the recorded CSV itself streams through the new model bit-exact
    code = tinyae(["device", "verify", "--emulator", str(elf), "--model-dir", str(model), "--csv", str(capture),
                 "--json", str(report), "--quiet"])  # fmt: skip
    r = json.loads(report.read_text())
    assert code == 0 and r["windows_compared"] == (3000 - 64) // 32 + 1


def test_a_vae_model_verifies_bit_exact_on_the_emulator(tmp_path):
    # the VAE trains with a sampled latent and a KL term; what ships is its mean path + decoder
    model = tmp_path / "vae_model"
    train = subprocess.run(
        [sys.executable, "-m", "tinyae", "model", "--config", "configs/default.toml",
         "--set", "model.variant=vae", "--set", "model.kl_weight=0.01", "--set", "train.epochs=8",
         "--out", str(model), "--quiet"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert train.returncode == 0, train.stderr[-2000:]
    manifest = json.loads((model / "manifest.json").read_text())
    assert manifest["model"]["ops"] == ["FULLY_CONNECTED"]
    assert [la["activation"] for la in manifest["model"]["layers"]] == ["relu", "linear", "relu", "linear"]
    elf = build_firmware(model, tmp_path / "fw")
    report = tmp_path / "vae.json"
    code = tinyae(
        [
            "device",
            "verify",
            "--emulator",
            str(elf),
            "--model-dir",
            str(model),
            "--max-windows",
            "160",  # bit-exactness is a property of every window: 160 prove it at a quarter of the link time
            "--json",
            str(report),
            "--quiet",
        ]
    )
    r = json.loads(report.read_text())
    assert code == 0, r
    assert r["output_mismatches"] == 0 and r["input_mismatches"] == 0
    assert r["scores_exact_equal"] == r["windows_compared"] == r["windows_expected"] == 160
