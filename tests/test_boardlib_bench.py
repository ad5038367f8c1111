"""TFLM measured, not quoted: each pinned library (Chirale_TensorFLowLite 2.0.0 with CMSIS-NN kernels,
upstream tflite-micro with reference kernels) runs the default model in the bench's own harness beside
the compiled engine (tools/bench/device.py), on the emulated Cortex-M4F: its outputs are checked against
tflite_micro window by window, and its instructions, flash and RAM are measured in the same run. The
checks are properties every such measurement has, never the figures themselves."""

from __future__ import annotations

import pytest
from boardlibs import require

from tests.conftest import has_arm_toolchain
from tinyae.tools.bench import device
from tinyae.tools.bench.models import ModelSpec, TrainedModel
from tinyae.train.manifest import Manifest

pytestmark = [
    pytest.mark.board_libs,
    pytest.mark.emulator,
    pytest.mark.timeout(2400),  # a first run builds the pinned TFLM libraries (boardlibs.py)
    pytest.mark.skipif(not has_arm_toolchain(), reason="needs arm-none-eabi-gcc and qemu-system-arm"),
]


def test_each_library_is_measured_in_the_compiled_engines_harness(default_model_dir, tmp_path):
    require()
    model = TrainedModel(
        ModelSpec("default", (), "configs/default.toml"), default_model_dir, "tinyae model", 0.0,
        Manifest.load(default_model_dir / "manifest.json"),
    )  # fmt: skip
    r = device.measure(model, tmp_path, ("-Os",))
    ours = r["Os"]
    assert set(r["tflm"]) == set(device.TFLM_LIBS)
    arena = model.manifest["arena"]["bytes"]
    for lib, t in r["tflm"].items():
        assert "status" not in t, t
        assert t["bit_exact_windows"] == t["windows"] > 0, lib  # per-tensor: every pinned library is exact
        assert t["instructions"] > ours["instructions"] > 0  # an interpreter around the same MACs
        assert t["flash_added"] > model.manifest["model"]["tflite_bytes"]  # the flatbuffer + the library
        assert t["ram_added"] >= arena  # the static arena (TAE_ARENA_BYTES) + the interpreter's objects
        assert "-mfloat-abi=softfp" in t["build_command"] and "libtflm.a" in t["build_command"]
    ratios = device.engine_ratios(r)
    assert set(ratios) == set(device.TFLM_LIBS)
    assert all(0 < v["instructions"] < 1 for v in ratios.values())
