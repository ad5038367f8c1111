"""The TFLM glue built on the host against the library the esp32dev env pins (TensorFlowLite_ESP32
1.0.0: portable reference kernels, the ErrorReporter-era API), driven through ctypes: bit-exact with
tflite_micro on every test window of three models, and every refusal the glue makes, each against
the real library. Which libraries compute per-channel weights is checked here against every build."""

from __future__ import annotations

import json

import numpy as np
import pytest
from boardlibs import (
    ENGINE_OK,
    ERR_ALLOC,
    ERR_MODEL,
    TFLM_LIBRARY_OF,
    build_host_glue,
    compile_glue,
    model_variant,
)

from tests.conftest import LANE_MODELS, TIE_MODELS
from tinyae.train.render import banner, render

pytestmark = pytest.mark.board_libs


@pytest.mark.parametrize("model", [*LANE_MODELS, *TIE_MODELS])
def test_the_esp32_library_is_bit_exact_with_its_host_reference(model, lane_model, tmp_path):
    """Every test window bit for bit against the test vectors, which hold the host reference computed with
    the arithmetic of the model's targets (manifest reference.arithmetic: the pinned libraries' rule),
    including the retuned models where tflite_micro's rule differs."""
    model_dir = lane_model(model, "per_tensor")
    glue = build_host_glue("esp32", model_dir, tmp_path)
    assert glue.init() == ENGINE_OK, glue.reason()
    assert glue.reason() == "ok" and glue.lib.tae_engine_name() == b"tflm"
    assert glue.lib.tae_engine_library() == TFLM_LIBRARY_OF["esp32"].name.encode()
    vectors = np.load(model_dir / "test_vectors.npz")
    inputs, expected = vectors["input_q"], vectors["output_q"]
    assert str(vectors["arithmetic"]) == TFLM_LIBRARY_OF["esp32"].arithmetic.name
    results = [glue.invoke(x, expected.shape[1]) for x in inputs]
    assert all(rc == ENGINE_OK for rc, _ in results)
    outputs = np.stack([out for _, out in results])
    bad = np.argwhere(outputs != expected)
    assert len(bad) == 0, f"{len(bad)} elements differ, first (window, element): {bad[:5].tolist()}"
    assert len(inputs) > 100
    if model in TIE_MODELS:
        manifest = json.loads((model_dir / "manifest.json").read_text())
        assert manifest["reference"]["tflite_micro"]["elements_differing"] >= 3


# Which libraries compute per-channel FULLY_CONNECTED weights: the glue's compile-time probe of each
# library must agree with train/boards.py (upstream: yes, since 47b545074).
PROBES = [("chirale", "cm4"), ("esp32", "host"), ("upstream", "cm4")]


@pytest.mark.parametrize(
    ("lib", "arch"),
    [
        pytest.param(lib, arch, marks=pytest.mark.emulator) if arch == "cm4" else (lib, arch)
        for lib, arch in PROBES
    ],
    ids=[lib for lib, _ in PROBES],
)
def test_per_channel_models_build_only_against_libraries_that_compute_them(lib, arch, lane_model):
    proc = compile_glue(lib, arch, lane_model("default", "per_channel"))
    supported = TFLM_LIBRARY_OF[lib].per_channel_fully_connected if lib in TFLM_LIBRARY_OF else True
    assert (proc.returncode == 0) == supported, proc.stderr[-2000:]
    if not supported:
        assert "this model has per-channel FULLY_CONNECTED weights, which this TFLM library" in proc.stderr
    assert compile_glue(lib, arch, lane_model("default", "per_tensor")).returncode == 0


def test_a_per_channel_flatbuffer_is_refused_at_init_even_behind_a_per_tensor_config(lane_model, tmp_path):
    per_channel = (lane_model("default", "per_channel") / "model_int8.tflite").read_bytes()
    mixed = model_variant(lane_model("default", "per_tensor"), tmp_path / "mixed", lambda m: per_channel)
    glue = build_host_glue("esp32", mixed, tmp_path)
    assert glue.init() == ERR_MODEL
    assert glue.reason().startswith(
        "the model has per-channel FULLY_CONNECTED weights, which this TFLM library computes with the first "
        "channel's scale"
    )
    assert glue.invoke(np.zeros(1, np.int8), 1)[0] == ERR_MODEL  # nothing runs after a refusal


def test_an_arena_below_the_measured_need_does_not_build(lane_model, tmp_path):
    def below(manifest: dict) -> None:
        manifest["arena"]["bytes"] = manifest["arena"]["measured_bytes_host"] - 16

    proc = compile_glue(
        "esp32", "host", model_variant(lane_model("default", "per_tensor"), tmp_path / "m", below)
    )
    assert proc.returncode != 0
    assert "TAE_ARENA_BYTES is below TAE_ARENA_MIN_BYTES" in proc.stderr


def test_a_tiny_arena_is_an_allocation_error_with_its_reason(lane_model, tmp_path):
    def tiny(manifest: dict) -> None:  # a (faked) wrong measurement, to get below the floor
        manifest["arena"]["bytes"] = manifest["arena"]["measured_bytes_host"] = 512

    glue = build_host_glue(
        "esp32", model_variant(lane_model("default", "per_tensor"), tmp_path / "m", tiny), tmp_path
    )
    assert glue.init() == ERR_ALLOC
    assert "TFLM AllocateTensors failed: the arena (TAE_ARENA_BYTES) is too small" in glue.reason()
    assert glue.init() == ERR_ALLOC  # the status sticks: no second interpreter in the same storage


def test_an_op_missing_from_the_resolver_is_an_allocation_error(lane_model, tmp_path):
    model_dir = lane_model("sigmoid", "per_tensor")
    manifest = json.loads((model_dir / "manifest.json").read_text())
    assert "LOGISTIC" in manifest["model"]["ops"]
    variant = model_variant(model_dir, tmp_path / "m", lambda m: None)
    ops_h = render(
        "model_ops.h.j2", banner=banner(manifest["model"]["sha256"], "test"), ops=["FULLY_CONNECTED"]
    )
    (variant / "model_ops.h").write_text(ops_h)
    glue = build_host_glue("esp32", variant, tmp_path)
    assert glue.init() == ERR_ALLOC and "an op is missing from model_ops.h" in glue.reason()


@pytest.mark.parametrize(
    ("field", "reason"),
    [("input", "the model input quantization differs from model_config.h"),
     ("output", "the model output quantization differs from model_config.h")],
)  # fmt: skip
def test_a_config_from_another_model_is_refused(field, reason, lane_model, tmp_path):
    def other_scale(manifest: dict) -> None:
        manifest[field]["scale"] *= 2

    variant = model_variant(lane_model("default", "per_tensor"), tmp_path / "m", other_scale)
    glue = build_host_glue("esp32", variant, tmp_path)
    assert glue.init() == ERR_MODEL and glue.reason().startswith(reason)
