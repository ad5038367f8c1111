"""Full-integer int8 conversion (int8 input and output) and what the firmware needs to know about it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tinyae.errors import UserError
from tinyae.train.quiet import captured_fds
from tinyae.train.tflite import SUPPORTED_OPS, Graph, read_tflite


@dataclass(frozen=True)
class QuantInfo:
    ops: list[str]
    input_scale: float
    input_zero_point: int
    output_scale: float
    output_zero_point: int
    input_size: int
    output_size: int
    sha256: str
    size_bytes: int
    per_channel_weights: bool  # some FULLY_CONNECTED weight tensor has one scale per output channel
    layers: list[dict]  # one per FULLY_CONNECTED, input to output: units, activation (dense_layers)
    macs: int  # multiply-accumulates per window
    params: int  # weights and biases


def convert(model: keras.Model, representative: np.ndarray, *, per_channel: bool) -> bytes:
    """Keras float model -> int8 TFLite flatbuffer, calibrated on normal windows [n, features].

    per_channel: FULLY_CONNECTED weights with one scale per output channel (TFLite's default) or one
    scale per tensor, for TFLM libraries older than upstream's per-channel support (train/boards.py).
    """
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


def fully_connected_per_channel(flatbuffer: bytes) -> bool:
    """True when any FULLY_CONNECTED weight tensor carries more than one scale."""
    graph = read_tflite(flatbuffer)
    return any(
        op.name == "FULLY_CONNECTED" and len(graph.tensors[op.inputs[1]].scale) > 1 for op in graph.ops
    )


# A Keras activation's name for what follows a FULLY_CONNECTED in the int8 graph (fused, or the next op)
FUSED_NAMES = {
    "NONE": "linear",
    "RELU": "relu",
    "RELU6": "relu6",
    "RELU_N1_TO_1": "relu_n1_to_1",
    "TANH": "tanh",
}
ELEMENTWISE_NAMES = {"LOGISTIC": "sigmoid", "TANH": "tanh"}


def dense_layers(graph: Graph) -> tuple[list[dict], int, int]:
    """The int8 network's dense layers ({"units", "activation"} per FULLY_CONNECTED, input to output),
    its multiply-accumulates and parameters, read from the graph itself, so a model trained here and one
    imported are described alike. The activation is named as Keras names it: the fused one ("linear",
    "relu", "relu6") or the elementwise op that follows ("sigmoid" for LOGISTIC, "tanh"), joined by "+"
    when there are both."""
    layers: list[dict] = []
    macs = params = 0
    for op in graph.ops:
        if op.name == "FULLY_CONNECTED":
            m, n = graph.tensors[op.inputs[1]].shape
            bias = len(op.inputs) > 2 and op.inputs[2] >= 0
            macs += m * n
            params += m * n + (m if bias else 0)
            names = [FUSED_NAMES.get(op.activation, op.activation.lower())]
            layers.append({"units": int(m), "activation": names})
        elif op.name in ELEMENTWISE_NAMES and layers:
            layers[-1]["activation"].append(ELEMENTWISE_NAMES[op.name])
    for layer in layers:
        acts = layer["activation"]
        kept = [a for a in acts if a != "linear"] if len(acts) > 1 else acts
        layer["activation"] = "+".join(kept)
    return layers, int(macs), int(params)


def inspect(flatbuffer: bytes) -> QuantInfo:
    """Ops and input/output quantization; refuses models the firmware cannot run."""
    graph = read_tflite(flatbuffer)
    ops = [op.name for op in graph.ops]
    unsupported = sorted(set(ops) - set(SUPPORTED_OPS))
    if unsupported:
        raise UserError(
            f"the model uses {', '.join(unsupported)}, which the tinyae firmware cannot run "
            f"(supported: {', '.join(SUPPORTED_OPS)}); use Dense layers with relu/relu6/linear/sigmoid/tanh"
        )
    tin = graph.tensors[graph.inputs[0]]
    tout = graph.tensors[graph.outputs[0]]
    for what, t in (("input", tin), ("output", tout)):
        if t.type != "INT8" or not t.scale:
            raise UserError(f"the model's {what} is not int8-quantized; convert with int8 input and output")
    layers, macs, params = dense_layers(graph)
    return QuantInfo(
        ops=list(dict.fromkeys(ops)),
        input_scale=tin.scale[0],
        input_zero_point=tin.zero_point[0],
        output_scale=tout.scale[0],
        output_zero_point=tout.zero_point[0],
        input_size=tin.size,
        output_size=tout.size,
        sha256=hashlib.sha256(flatbuffer).hexdigest(),
        size_bytes=len(flatbuffer),
        per_channel_weights=fully_connected_per_channel(flatbuffer),
        layers=layers,
        macs=macs,
        params=params,
    )


def load_tflite(path: Path) -> bytes:
    if not path.is_file():
        raise UserError(f"model file {path} does not exist; run `make model` first")
    data = path.read_bytes()
    read_tflite(data)  # refuses anything that is not a TFLite model, in one sentence
    return data


def representative_set(windows: np.ndarray, headroom: float = 1.0) -> np.ndarray:
    """The converter's calibration windows: the normalized normal windows [n, F] and, when headroom > 1,
    the same windows times headroom, so every int8 range (input, hidden layers, output) spans that many
    times the normal spread and inputs far outside it are not clipped at the edge of the normal range."""
    x = np.asarray(windows, np.float32)
    return x if headroom <= 1.0 else np.concatenate([x, x * np.float32(headroom)])
