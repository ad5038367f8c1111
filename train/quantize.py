"""Full-integer int8 conversion (int8 input and output) and what the firmware needs to know about it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from train.errors import UserError
from train.quiet import captured_fds
from train.tflite_schema import BUILTIN_NAMES, read_model

# Ops the firmware can run: the compiled engine's kernels; the TFLM engine registers the same set.
SUPPORTED_OPS = ("FULLY_CONNECTED", "LOGISTIC", "TANH", "RESHAPE", "QUANTIZE", "DEQUANTIZE")


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


def convert(model: keras.Model, representative: np.ndarray) -> bytes:
    """Keras float model -> int8 TFLite flatbuffer, calibrated on normal windows."""
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
    with captured_fds() as log:
        try:
            flatbuffer = conv.convert()
        except Exception as exc:  # the converter raises many types; the log says why
            flatbuffer = None
            error = exc
    if flatbuffer is None:
        tail = log[0].strip().splitlines()[-3:] if log else []
        raise UserError(f"TFLite int8 conversion failed: {error}; converter said: {' | '.join(tail)}")
    return flatbuffer


def inspect(flatbuffer: bytes) -> QuantInfo:
    """Ops and input/output quantization; refuses models the firmware cannot run."""
    model = read_model(flatbuffer)
    sg = model.subgraphs[0]
    ops = []
    for op in sg.operators:
        code = model.operatorCodes[op.opcodeIndex]
        ops.append(BUILTIN_NAMES.get(max(code.builtinCode, code.deprecatedBuiltinCode), "CUSTOM"))
    unsupported = sorted(set(ops) - set(SUPPORTED_OPS))
    if unsupported:
        raise UserError(
            f"the model uses {', '.join(unsupported)}, which the tinyae firmware cannot run "
            f"(supported: {', '.join(SUPPORTED_OPS)}); use Dense layers with relu/relu6/linear/sigmoid/tanh"
        )
    tin = sg.tensors[sg.inputs[0]]
    tout = sg.tensors[sg.outputs[0]]
    for what, t in (("input", tin), ("output", tout)):
        if t.type != 9 or t.quantization is None or t.quantization.scale is None:  # 9 = INT8
            raise UserError(f"the model's {what} is not int8-quantized; convert with int8 input and output")
    return QuantInfo(
        ops=list(dict.fromkeys(ops)),
        input_scale=float(tin.quantization.scale[0]),
        input_zero_point=int(tin.quantization.zeroPoint[0]),
        output_scale=float(tout.quantization.scale[0]),
        output_zero_point=int(tout.quantization.zeroPoint[0]),
        input_size=int(np.prod(tin.shape)),
        output_size=int(np.prod(tout.shape)),
        sha256=hashlib.sha256(flatbuffer).hexdigest(),
        size_bytes=len(flatbuffer),
    )


def load_tflite(path: Path) -> bytes:
    if not path.is_file():
        raise UserError(f"model file {path} does not exist; run `make model` first")
    data = path.read_bytes()
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise UserError(f"{path} is not a TFLite flatbuffer (no TFL3 identifier); pass a .tflite file")
    return data
