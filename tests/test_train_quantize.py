"""The int8 conversion step: what it reports, and the models the firmware cannot run."""

from pathlib import Path

import modelcache
import numpy as np
import pytest

from tinyae.errors import UserError
from tinyae.train.tflite import inspect, load_tflite, read_tflite

# Keras and the conversion stage (TensorFlow) load only when a model is converted (tests/test_fast_startup.py);
# the converted models are kept by content (tests/modelcache.py: this file and the conversion code).


def _converted(activation: str, per_channel: bool = True) -> bytes:
    def convert() -> bytes:
        import keras

        from tinyae.train.quantize import convert

        model = keras.Sequential(
            [
                keras.Input(shape=(12,)),
                keras.layers.Dense(8, activation="relu"),
                keras.layers.Dense(12, activation=activation),
            ]
        )
        rep = np.random.default_rng(0).standard_normal((64, 12)).astype(np.float32)
        return convert(model, rep, per_channel=per_channel)

    name = f"test_train_quantize {activation} {'per_channel' if per_channel else 'per_tensor'}"
    return modelcache.converted(name, Path(__file__), convert)


def test_inspect_reports_int8_io_and_ops():
    info = inspect(_converted("linear"))
    assert info.ops == ["FULLY_CONNECTED"]
    assert info.per_channel_weights
    assert (info.input_size, info.output_size) == (12, 12)
    assert info.input_scale > 0 and -128 <= info.input_zero_point <= 127


def test_per_tensor_weights_on_request():
    flatbuffer = _converted("linear", per_channel=False)
    assert not inspect(flatbuffer).per_channel_weights
    graph = read_tflite(flatbuffer)
    assert all(len(graph.tensors[op.inputs[1]].scale) == 1 for op in graph.ops)


def test_a_model_with_an_op_the_firmware_cannot_run_is_refused():
    with pytest.raises(UserError, match="the model uses SOFTMAX, which the tinyae firmware cannot run"):
        inspect(_converted("softmax"))


def test_load_tflite_refuses_other_files(tmp_path):
    bad = tmp_path / "model.tflite"
    bad.write_bytes(b"not a model at all")
    with pytest.raises(UserError, match=r"not a \.tflite flatbuffer"):
        load_tflite(bad)
    with pytest.raises(UserError, match="does not exist"):
        load_tflite(tmp_path / "missing.tflite")
