"""Compiled engine vs TFLM on models made by the real TFLite converter (Keras Dense -> int8).

Converter output differs from the hand-built random models: per-channel or per-tensor FC weights
(both granularities of each model), RESHAPE around multi-dimensional inputs/outputs, LOGISTIC/TANH
with the converter's fixed output quantization.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import modelcache
import numpy as np
import pytest
import random_models as rm
from test_compiled_bitexact import FcLayer, run_stages

from tinyae.hostbuild import CORE_DIR, build_shared, load
from tinyae.train.compiled import check_ops, generate
from tinyae.train.tflite import fully_connected_per_channel

SRC = CORE_DIR / "src"


def _keras_models():
    import keras

    keras.utils.set_random_seed(7)
    L = keras.layers
    yield (
        "relu_linear",
        keras.Sequential(
            [L.Input((32,)), L.Dense(16, activation="relu"), L.Dense(8, activation="relu6"), L.Dense(32)]
        ),
        (32,),
    )
    yield (
        "tanh_sigmoid",
        keras.Sequential([L.Input((20,)), L.Dense(10, activation="tanh"), L.Dense(20, activation="sigmoid")]),
        (20,),
    )
    yield (
        "reshape",
        keras.Sequential(
            [
                L.Input((6, 4), batch_size=1),  # a fixed batch: the converter folds the RESHAPE shapes
                L.Flatten(),
                L.Dense(8, activation="relu"),
                L.Dense(24),
                L.Reshape((6, 4)),
            ]
        ),
        (6, 4),
    )


SHAPES = {"relu_linear": (32,), "tanh_sigmoid": (20,), "reshape": (6, 4)}


def _convert_all() -> dict[str, bytes]:
    """Every model of _keras_models at both weight granularities (name_pc / name_pt)."""
    from tinyae.train.quantize import convert

    out = {}
    rng = np.random.default_rng(3)
    for name, model, shape in _keras_models():
        assert SHAPES[name] == shape
        rep = rng.normal(size=(64, *shape)).astype(np.float32)
        for per_channel in (True, False):
            flat_rep = rep.reshape(64, -1) if len(shape) == 1 else rep
            out[f"{name}_{'pc' if per_channel else 'pt'}"] = convert(model, flat_rep, per_channel=per_channel)
    return out


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """(name, path, input size) of each converted model; the conversions (Keras, TensorFlow) are kept by
    content (tests/modelcache.py: this file and the conversion code)."""
    models: dict[str, bytes] | None = None

    def one(stem: str) -> bytes:
        nonlocal models

        def convert() -> bytes:
            nonlocal models
            models = models or _convert_all()
            return models[stem]

        return modelcache.converted(f"test_compiled_converter {stem}", Path(__file__), convert)

    out = []
    d = tmp_path_factory.mktemp("conv")
    for name, shape in SHAPES.items():
        for per_channel in (True, False):
            stem = f"{name}_{'pc' if per_channel else 'pt'}"
            flatbuffer = one(stem)
            assert fully_connected_per_channel(flatbuffer) == per_channel
            path = d / f"{stem}.tflite"
            path.write_bytes(flatbuffer)
            out.append((path.stem, path, int(np.prod(shape))))
    return out


@pytest.fixture(scope="module")
def kernels():
    lib = load(build_shared("tae_kernels", [SRC / "tae_kernels.c"], [SRC]))
    lib.tae_fc_s8.argtypes = [ctypes.POINTER(FcLayer), ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    lib.tae_lut_s8.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint32]
    return lib


def test_converter_models_bitexact(converted, kernels, tmp_path) -> None:
    rng = np.random.default_rng(11)
    all_ops = set()
    for name, path, n in converted:
        ops = check_ops(path)
        all_ops.update(ops)
        model = path.read_bytes()
        x = rm.random_inputs(rng, n, 24)
        ref = rm.run_tflm(model, x)
        got = run_stages(kernels, model, x)
        assert np.array_equal(ref, got), f"{name}: {np.argwhere(ref != got)[:5]}"
        info = generate(path, tmp_path / name, banner_command="pytest")
        assert info["ops"] == ops
        assert info["macs"] > 0
    assert {"FULLY_CONNECTED", "LOGISTIC", "TANH", "RESHAPE"} <= all_ops, all_ops
