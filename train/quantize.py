"""Full-integer int8 conversion (int8 input and output); what the firmware needs to know about the result is
read by train/tflite.py (`inspect`), which needs no TensorFlow."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from tinyae.errors import UserError
from tinyae.train.quiet import captured_fds
from tinyae.train.tflite import (  # what an int8 model is: read without TensorFlow (train/tflite.py)
    QuantInfo,
    dense_layers,
    fully_connected_per_channel,
    inspect,
    load_tflite,
)

__all__ = [
    "QuantInfo",
    "convert",
    "dense_layers",
    "fully_connected_per_channel",
    "inspect",
    "load_tflite",
    "representative_set",
]

if TYPE_CHECKING:
    import keras


def convert(model: keras.Model, representative: np.ndarray, *, per_channel: bool) -> bytes:
    """Keras float model -> int8 TFLite flatbuffer, calibrated on normal windows [n, features].

    per_channel: FULLY_CONNECTED weights with one scale per output channel (TFLite's default) or one
    scale per tensor, for TFLM libraries older than upstream's per-channel support (train/boards.py).
    """
    import tensorflow as tf  # only here: importing this module (representative_set, inspect) stays light

    rep = np.asarray(representative, np.float32)

    def dataset():
        for row in rep:
            yield [row[None, :]]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = dataset
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    # TFLiteConverter's switch for per-tensor dense weights (TF >= 2.16; checked after conversion).
    conv._experimental_disable_per_channel_quantization_for_dense_layers = not per_channel
    with captured_fds() as log:
        try:
            flatbuffer = conv.convert()
        except Exception as exc:  # the converter raises many types; the log says why
            flatbuffer = None
            error = exc
    if flatbuffer is None:
        tail = log[0].strip().splitlines()[-3:] if log else []
        raise UserError(f"TFLite int8 conversion failed: {error}; converter said: {' | '.join(tail)}")
    if not per_channel and fully_connected_per_channel(flatbuffer):
        raise UserError(
            "the TFLite converter ignored the request for per-tensor FULLY_CONNECTED weights; "
            "the pinned tensorflow version lacks that option, so the model cannot go to a board whose "
            "TFLM library lacks per-channel support"
        )
    return flatbuffer


def representative_set(windows: np.ndarray, headroom: float = 1.0) -> np.ndarray:
    """The converter's calibration windows: the normalized normal windows [n, F] and, when headroom > 1,
    the same windows times headroom, so every int8 range (input, hidden layers, output) spans that many
    times the normal spread and inputs far outside it are not clipped at the edge of the normal range."""
    x = np.asarray(windows, np.float32)
    return x if headroom <= 1.0 else np.concatenate([x, x * np.float32(headroom)])
