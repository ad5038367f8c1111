"""Run one TFLM elementwise int8 op (LOGISTIC, TANH, QUANTIZE) over given inputs with tflite_micro.

The model is a two-tensor flatbuffer written with the schema module that ships with tflite_micro.
"""

from __future__ import annotations

import flatbuffers
import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

_OPS = {
    "LOGISTIC": fb.BuiltinOperator.LOGISTIC,
    "TANH": fb.BuiltinOperator.TANH,
    "QUANTIZE": fb.BuiltinOperator.QUANTIZE,
}


def _tensor(name: str, n: int, scale: float, zp: int) -> fb.TensorT:
    t = fb.TensorT()
    t.name = name
    t.shape = [1, n]
    t.type = fb.TensorType.INT8
    t.buffer = 0
    q = fb.QuantizationParametersT()
    q.scale = [float(scale)]
    q.zeroPoint = [int(zp)]
    t.quantization = q
    return t


def one_op_model(op: str, n: int, in_scale: float, in_zp: int, out_scale: float, out_zp: int) -> bytes:
    sg = fb.SubGraphT()
    sg.tensors = [_tensor("x", n, in_scale, in_zp), _tensor("y", n, out_scale, out_zp)]
    sg.inputs, sg.outputs = [0], [1]
    o = fb.OperatorT()
    o.opcodeIndex, o.inputs, o.outputs = 0, [0], [1]
    sg.operators = [o]
    oc = fb.OperatorCodeT()
    oc.builtinCode = _OPS[op]
    oc.deprecatedBuiltinCode = _OPS[op]
    m = fb.ModelT()
    m.version = 3
    m.subgraphs = [sg]
    m.buffers = [fb.BufferT()]
    m.operatorCodes = [oc]
    b = flatbuffers.Builder(256)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def run_one_op(
    op: str, in_scale: float, in_zp: int, out_scale: float, out_zp: int, x: np.ndarray
) -> np.ndarray:
    from tflite_micro import runtime

    x = np.asarray(x, dtype=np.int8).reshape(1, -1)
    model = one_op_model(op, x.shape[1], in_scale, in_zp, out_scale, out_zp)
    interp = runtime.Interpreter.from_bytes(model, arena_size=16 * 1024)
    interp.set_input(x, 0)
    interp.invoke()
    return np.asarray(interp.get_output(0)).reshape(-1).astype(np.int8)
