"""Shared fixtures: the default model is trained once per session and reused by every test that needs it."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import lanes
import pytest
from hypothesis import settings

pytest_plugins = ["pytester"]  # tests/test_lanes.py runs pytest on small test files

# Property tests draw the same cases on every run (derandomized, no example database), so a landing
# never fails at random. `make explore` (TAE_HYPOTHESIS=explore) draws new cases and keeps what it
# finds in .hypothesis/; a case it finds becomes an explicit @example in the test.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", derandomize=False, print_blob=True)
settings.load_profile(os.environ.get("TAE_HYPOTHESIS", "ci"))

ROOT = Path(__file__).resolve().parent.parent


def has_arm_toolchain() -> bool:
    return shutil.which("arm-none-eabi-gcc") is not None and shutil.which("qemu-system-arm") is not None


@pytest.fixture(scope="session")
def default_model_dir(tmp_path_factory) -> Path:
    """The default experiment (configs/default.toml) run end to end into a session temp dir."""
    from tinyae.train import config
    from tinyae.train.pipeline import run

    out = tmp_path_factory.mktemp("default_model")
    cfg = config.load(ROOT / "configs" / "default.toml")
    run(cfg, out, "tinyae model --config configs/default.toml", show_progress=False)
    return out


@pytest.fixture(scope="session")
def default_manifest(default_model_dir) -> dict:
    return json.loads((default_model_dir / "manifest.json").read_text())


@pytest.fixture(scope="session")
def default_elf(default_model_dir, tmp_path_factory) -> Path:
    """The Cortex-M4 image (core + compiled engine) of the default model, built once per session."""
    if not has_arm_toolchain():
        pytest.skip("arm-none-eabi-gcc / qemu-system-arm not installed (make toolchain)")
    from tinyae.tools.emulator.qemu import build_image

    out = tmp_path_factory.mktemp("fw_default")
    build_image(out, model_dir=default_model_dir)
    return out / "tinyae.elf"


# The board-library lane's models (tests/test_boardlib_*.py): the default model and two other shapes,
# each with both FULLY_CONNECTED weight granularities (one Keras model, two conversions: same seed).
LANE_MODELS: dict[str, list[str]] = {
    "default": [],
    "sigmoid": ["normalization.method=minmax", "model.output_activation=sigmoid", "train.epochs=15"],
    "deep": ["model.hidden=[96, 48]", "model.latent=12", "train.epochs=15"],
}
PER_CHANNEL = ["quantize.weights=per_channel", "quantize.targets=mps2_an386"]


@pytest.fixture(scope="session")
def lane_model(default_model_dir, tmp_path_factory):
    """lane_model(name, weights) -> model directory; name in LANE_MODELS, weights per_tensor|per_channel."""
    from tinyae.train import config
    from tinyae.train.pipeline import run

    cache: dict[tuple[str, str], Path] = {}
    if (
        json.loads((default_model_dir / "manifest.json").read_text())["quantization"]["weights"]
        == "per_tensor"
    ):
        cache["default", "per_tensor"] = default_model_dir

    def get(name: str, weights: str) -> Path:
        if (name, weights) not in cache:
            overrides = LANE_MODELS[name] + (PER_CHANNEL if weights == "per_channel" else [])
            out = tmp_path_factory.mktemp(f"lane_{name}_{weights}")
            cfg = config.load(ROOT / "configs" / "default.toml", overrides)
            manifest = run(cfg, out, f"pytest lane model {name} {weights}", show_progress=False)
            assert manifest.quantization.weights == weights
            cache[name, weights] = out
        return cache[name, weights]

    return get


def pytest_configure(config):
    """Test lanes (markers from fixtures, the emulator guard): tests/lanes.py."""
    config.pluginmanager.register(lanes, "tinyae-lanes")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """The board-library lane needs TAE_THIRD_PARTY: skipped (one line), or failed under CI=true,
    before any of its fixtures (models, builds) is set up."""
    if item.get_closest_marker("board_libs"):
        from boardlibs import require

        require()


@pytest.fixture(autouse=True)
def _own_emulated_board_storage(monkeypatch, tmp_path_factory):
    """`--emulator` without `--emulator-storage` uses a storage directory of its own per test, never the
    repository's build/emulator/storage: a calibration record an earlier run left there cannot change
    what a test measures."""
    from tinyae.tools.emulator import qemu

    monkeypatch.setattr(qemu, "DEFAULT_STORAGE", tmp_path_factory.mktemp("board-storage"))


@pytest.fixture(autouse=True)
def _stub_reference_for_the_stub_engine(monkeypatch):
    """`verify` against the simulated device's stand-in engine (its manifest lists the op SIM_STUB)
    compares with that engine's reference; the product command only knows TFLM's (tools/testing)."""
    from tinyae.tools.commands import verify
    from tinyae.tools.testing.simstub import SimStubReference

    real = verify.make_reference

    def make_reference(art):
        manifest = art.require()
        if "SIM_STUB" in manifest.model.ops:
            return SimStubReference(manifest)
        return real(art)

    monkeypatch.setattr(verify, "make_reference", make_reference)
