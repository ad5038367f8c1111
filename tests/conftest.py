"""Shared fixtures: the default model is trained once per session and reused by every test that needs it."""

from __future__ import annotations

import gc
import itertools
import json
import os
import shutil
import signal
from pathlib import Path

import lanes
import modelcache
import pytest
import schedule
from hypothesis import HealthCheck, settings

pytest_plugins = ["pytester"]  # tests/test_lanes.py runs pytest on small test files

# Property tests draw the same cases on every run (derandomized, no example database), so a landing
# never fails at random. `make explore` (TAE_HYPOTHESIS=explore) draws new cases and keeps what it
# finds in .hypothesis/; a case it finds becomes an explicit @example in the test.
# Nothing in the profile depends on the machine's speed either: no deadline and no "too slow" health
# check, which a loaded CI machine would otherwise fail at random.
settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    print_blob=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("explore", derandomize=False, print_blob=True)
settings.load_profile(os.environ.get("TAE_HYPOTHESIS", "ci"))

ROOT = Path(__file__).resolve().parent.parent


def has_arm_toolchain() -> bool:
    return shutil.which("arm-none-eabi-gcc") is not None and shutil.which("qemu-system-arm") is not None


@pytest.fixture(scope="session")
def default_model_dir(tmp_path_factory) -> Path:
    """The default experiment (configs/default.toml) run end to end: trained once per content for every
    test, worker and run (tests/modelcache.py); read it, never write into it."""
    return modelcache.trained(
        command="tinyae model --config configs/default.toml", scratch=tmp_path_factory.mktemp("default_model")
    )


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
# Lane models retuned onto multiplier ties (tools/testing/ties.py): a trained lane model whose layer's
# weight scale is moved to where TFLM's single-precision multiplier and tflite_micro's double one give
# other outputs on the test windows. Per-tensor only (per-channel multipliers are double everywhere).
# The ties are placed in the first TIE_WINDOWS test windows, so a test streaming those meets every one.
TIE_MODELS: dict[str, tuple[str, int]] = {"tie_output": ("default", -1), "tie_hidden": ("sigmoid", 0)}
TIE_WINDOWS = 160


def windows_to_verify(model_dir: Path) -> int:
    """How many test windows a bit-exactness verify of a lane model streams (`--max-windows`): the first
    TIE_WINDOWS, further when needed to hold the first alarm (decisions and alarms both ways) and every
    window where the two multiplier rules disagree. Bit-exactness is a property of every window, not a
    count: these prove it at a quarter of the link time of all 661."""
    import numpy as np

    from tinyae.tools.testing.ties import differing_windows

    with np.load(model_dir / "test_vectors.npz") as z:
        first_alarm = int(np.flatnonzero(z["alarm"])[0])
    return max(TIE_WINDOWS, first_alarm + 1, int(differing_windows(model_dir).max(initial=-1)) + 1)


@pytest.fixture(scope="session")
def lane_model(default_model_dir, tmp_path_factory):
    """lane_model(name, weights) -> model directory; name in LANE_MODELS, weights per_tensor|per_channel."""
    cache: dict[tuple[str, str], Path] = {}
    if (
        json.loads((default_model_dir / "manifest.json").read_text())["quantization"]["weights"]
        == "per_tensor"
    ):
        cache["default", "per_tensor"] = default_model_dir

    def get(name: str, weights: str) -> Path:
        if name in TIE_MODELS and (name, weights) not in cache:
            from tinyae.tools.testing.ties import tie_model_dir

            assert weights == "per_tensor", "tie models are per-tensor"
            base, layer = TIE_MODELS[name]
            out, _ = tie_model_dir(
                get(base, weights),
                tmp_path_factory.mktemp(f"lane_{name}") / "m",
                layer=layer,
                first=TIE_WINDOWS,
            )
            cache[name, weights] = out
        if (name, weights) not in cache:
            overrides = LANE_MODELS[name] + (PER_CHANNEL if weights == "per_channel" else [])
            out = modelcache.trained(
                overrides,
                command=f"pytest lane model {name} {weights}",
                scratch=tmp_path_factory.mktemp(f"lane_{name}_{weights}"),
            )
            manifest = json.loads((out / "manifest.json").read_text())
            assert manifest["quantization"]["weights"] == weights
            cache[name, weights] = out
        return cache[name, weights]

    return get


@pytest.fixture(autouse=True)
def _shared_models_stay_unchanged():
    """A test that writes into a shared model directory fails (tests/modelcache.py Guard)."""
    yield
    changed = modelcache.GUARD.changed()
    if changed:
        pytest.fail(
            "this test wrote into shared model directories: " + "; ".join(changed)
            + "; copy one (shutil.copytree) before changing it"
        )  # fmt: skip


def heed_ctrl_c() -> None:
    """A test run started in the background (`make test-fast &`, a script, nohup) has SIGINT ignored, and
    every child inherits that: the tests that press Ctrl-C on a command (tests/test_signals.py ...) then
    waited a minute and failed. They test a command started from a terminal, so the run restores Python's
    own handler (which each child's exec resets to the default)."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_configure(config):
    """Test lanes (markers from fixtures, the emulator guard): tests/lanes.py. The durations that order
    the modules for parallel workers: tests/schedule.py (recorded by the controller or a serial run)."""
    config.pluginmanager.register(lanes, "tinyae-lanes")
    heed_ctrl_c()
    # PlatformIO, as the tests start it (`pio project config`, board builds), sends no usage statistics:
    # sending them also held every `pio` call up to a second at exit (platformio/telemetry.py).
    os.environ.setdefault("PLATFORMIO_SETTING_ENABLE_TELEMETRY", "No")
    # Under pytest-xdist (`make test`, `make test-fast`) every core runs a worker, so a worker's NumPy and
    # SciPy use one OpenBLAS thread: OpenBLAS's threads spin while they wait for each other, and two
    # workers with two threads each on two cores made one SVD take several times its CPU and wall time.
    # Set here, in the controller, before the workers start (OpenBLAS reads it when it loads).
    if getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput"):
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    if not hasattr(config, "workerinput"):
        config.pluginmanager.register(schedule.Recorder(), "tinyae-durations")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (`make test`), the longest modules start first (tests/schedule.py)."""
    if hasattr(config, "workerinput"):
        schedule.order(items)


def pytest_collection_finish(session):
    """What collection made (the imported libraries, the test items: ~300,000 objects) lives to the end of
    the run: frozen out of the garbage collector's reach, so its full collections during the tests scan
    only what the tests make (they took ~2.5 s of a fast-lane process's CPU)."""
    gc.freeze()


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session):
    """pytest collects garbage twice after the run (its unraisable-exception check, at unconfigure and at
    cleanup), each a full scan of what the tests left (0.5 s each in a one-process fast lane, at its end).
    One collection here finds the same cycles while that check still listens; what survives it is frozen,
    so pytest's two scan nearly nothing."""
    gc.collect()
    gc.freeze()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """The board-library lane needs TAE_THIRD_PARTY: skipped (one line), or failed under CI=true,
    before any of its fixtures (models, builds) is set up."""
    if item.get_closest_marker("board_libs"):
        from boardlibs import require

        require()


_STORAGE_NUMBERS = itertools.count()


@pytest.fixture(autouse=True)
def _own_emulated_board_storage(monkeypatch, tmp_path_factory):
    """`--emulator` without `--emulator-storage` uses a storage directory of its own per test, never the
    repository's build/emulator/storage: a calibration record an earlier run left there cannot change
    what a test measures. The directory is named here and made by the emulator when a test uses it
    (Emulator.start), not made for each of the ~1,300 tests that never boot one."""
    from tinyae.tools.emulator import qemu

    fresh = tmp_path_factory.getbasetemp() / "board-storage" / str(next(_STORAGE_NUMBERS))
    assert not fresh.exists()
    monkeypatch.setattr(qemu, "DEFAULT_STORAGE", fresh)


@pytest.fixture(autouse=True)
def _stub_reference_for_the_stub_engine(monkeypatch):
    """`verify` against the simulated device's stand-in engine (its manifest lists the op SIM_STUB)
    compares with that engine's reference; the product command only knows TFLM's (tools/testing)."""
    from tinyae.tools.commands import verify
    from tinyae.tools.testing.simstub import SimStubReference

    real = verify.make_reference

    def make_reference(art, info):
        manifest = art.require()
        if "SIM_STUB" in manifest.model.ops:
            return SimStubReference(manifest)
        return real(art, info)

    monkeypatch.setattr(verify, "make_reference", make_reference)
