"""The front-end through the whole job: a model trained on spectral + stats features (the core's C
through ctypes), its manifest and header, its test vectors, and the device: features bit for bit on
the emulated Cortex-M4F and `verify` over the real firmware with zero mismatches."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from clirun import tinyae

from tests.conftest import ROOT, has_arm_toolchain
from tinyae.train.frontend import FrontendSpec, mirror
from tinyae.train.frontend.native import NativeFrontend
from tinyae.train.manifest import Manifest
from tinyae.train.reference import HostReference

CONFIG = ["frontend.kinds=spectral,stats", "frontend.fft_length=32", "frontend.bins=12", "train.epochs=6"]


FIXTURE_MARKS = {"feature_model": ("training",)}  # tests/lanes.py: its users are in the training lane


@pytest.fixture(scope="module")
def feature_model(tmp_path_factory) -> Path:
    from tinyae.train import config
    from tinyae.train.pipeline import run

    out = tmp_path_factory.mktemp("frontend_model")
    cfg = config.load(ROOT / "configs" / "default.toml", CONFIG)
    run(cfg, out, "tinyae model --set " + " --set ".join(CONFIG), show_progress=False)
    return out


def test_manifest_and_header_describe_the_front_end(feature_model: Path) -> None:
    m = json.loads((feature_model / "manifest.json").read_text())
    fe = m["frontend"]
    assert fe["kinds"] == ["spectral", "stats"]
    assert fe["feature_size"] == 3 * 12 + 3 * 8 == m["input"]["size"] == len(fe["feature_names"])
    assert fe["spectral"]["frames"] == 2 and fe["spectral"]["fft_length"] == 32
    assert m["normalization"]["per"] == "feature" and len(m["normalization"]["offset"]) == fe["feature_size"]
    header = (feature_model / "model_config.h").read_text()
    assert "#define TAE_FEATURE_SIZE 60" in header and "#define TAE_NORM_PERIOD 60" in header
    assert "#define TAE_FE_STATS 1" in header and "#define TAE_FE_FRAMES 2" in header


def test_test_vectors_hold_the_c_features_and_the_reference_inputs(feature_model: Path) -> None:
    m = json.loads((feature_model / "manifest.json").read_text())
    v = np.load(feature_model / "test_vectors.npz")
    spec = FrontendSpec.from_manifest(m)
    native = NativeFrontend(spec)(v["windows"])
    assert np.array_equal(native.view(np.uint32), v["features"].view(np.uint32))
    assert np.array_equal(mirror.features(v["windows"], spec).view(np.uint32), native.view(np.uint32))
    ref = HostReference.from_manifest(
        (feature_model / "model_int8.tflite").read_bytes(), Manifest.from_dict(m)
    )
    assert np.array_equal(ref.quantize(v["windows"]), v["input_q"])
    assert "int8" in m["metrics"] and 0.5 < m["metrics"]["int8"]["roc_auc"] <= 1.0


def test_a_bad_front_end_config_ends_in_one_sentence(tmp_path: Path) -> None:
    proc = tinyae("model", "--set", "frontend.kinds=fft", "--out", str(tmp_path / "m"), cwd=ROOT)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert (
        "error: frontend.kinds = ['fft'] has 'fft', which is not one of raw, spectral, stats" in proc.stderr
    )


needs_arm = pytest.mark.skipif(not has_arm_toolchain(), reason="needs arm-none-eabi-gcc and qemu-system-arm")


@pytest.mark.emulator
@needs_arm
@pytest.mark.parametrize(
    "kw",
    [
        {"kinds": ["spectral"]},
        {
            "kinds": ["spectral"],
            "spectrum": "magnitude",
            "log": False,
            "window_fn": "hamming",
            "fft_length": 16,
        },
        {"kinds": ["raw", "stats"]},
    ],
    ids=["spectral-log", "magnitude-frames", "raw+stats"],
)
def test_device_features_equal_the_host_build_bit_for_bit(
    kw: dict, default_model_dir: Path, tmp_path: Path
) -> None:
    from tinyae.tools.bench.frontend import compare
    from tinyae.train.config import FrontendConfig
    from tinyae.train.frontend import build_spec
    from tinyae.train.frontend.fit import fit_log_floor

    windows = np.load(default_model_dir / "test_vectors.npz")["windows"][:10].copy()
    spec = fit_log_floor(build_spec(FrontendConfig(**kw), 64, 3, 100.0), windows)
    windows[3, 7, 1] = np.nan  # a glitch sample: NaN must travel the same way on both sides
    windows[4] *= np.float32(1e19)  # squares overflow
    r = compare(spec, windows, tmp_path)
    assert r["bit_equal_values"] == r["windows"] * r["features"], r["max_abs_diff"]
    assert r["instructions_min"] > 0


@pytest.mark.emulator
@needs_arm
def test_verify_a_feature_model_on_the_emulator(feature_model: Path, tmp_path: Path) -> None:
    from tinyae.cli import main as tinyae
    from tinyae.tools.emulator.qemu import build_image

    build_image(tmp_path, app="core", model_dir=feature_model)
    report = tmp_path / "verify.json"
    # bit-exactness is a property of every window: 160 prove it at a quarter of the link time of all
    code = tinyae(
        ["device", "verify", "--emulator", str(tmp_path / "tinyae.elf"), "--model-dir", str(feature_model),
         "--max-windows", "160", "--json", str(report), "--quiet"]
    )  # fmt: skip
    r = json.loads(report.read_text())
    assert code == 0, r
    assert r["input_mismatches"] == 0 and r["output_mismatches"] == 0
    assert r["windows_compared"] == r["windows_expected"] == 160
    assert r["scores_exact_equal"] == r["windows_compared"]
