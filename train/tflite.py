"""Read an int8 .tflite into a small graph description, through the TFLite flatbuffer schema module
that ships with tflite_micro (no TensorFlow import)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

from tinyae.errors import UserError

_OP_NAMES = {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}
_TYPE_NAMES = {v: k for k, v in vars(fb.TensorType).items() if not k.startswith("_")}
_ACT_NAMES = {v: k for k, v in vars(fb.ActivationFunctionType).items() if not k.startswith("_")}
_NP_TYPES: dict[str, np.dtype] = {
    "INT8": np.dtype(np.int8),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FLOAT32": np.dtype("<f4"),
}

# The ops tinyae deploys: the compiled engine implements them and the firmware registers them with TFLM
# (`inspect` refuses a model with any other).
SUPPORTED_OPS = ("FULLY_CONNECTED", "LOGISTIC", "TANH", "RESHAPE", "QUANTIZE", "DEQUANTIZE")


@dataclass
class Tensor:
    index: int
    name: str
    shape: list[int]
    type: str
    scale: list[float]
    zero_point: list[int]
    quantized_dimension: int
    data: np.ndarray | None  # constant data (weights, biases, shapes) or None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape)) if self.shape else 1


@dataclass
class Op:
    name: str
    inputs: list[int]  # -1 = optional input absent
    outputs: list[int]
    activation: str = "NONE"
    options: dict = field(default_factory=dict)


@dataclass
class Graph:
    tensors: list[Tensor]
    ops: list[Op]
    inputs: list[int]
    outputs: list[int]


def _op_name(code: fb.OperatorCodeT) -> str:
    builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
    if builtin == fb.BuiltinOperator.CUSTOM:
        name = code.customCode.decode() if isinstance(code.customCode, bytes) else str(code.customCode)
        return f"CUSTOM({name})"
    return _OP_NAMES.get(builtin, f"BUILTIN_{builtin}")


def read_tflite(source: Path | bytes) -> Graph:
    """Parse a .tflite file (or its bytes) into a Graph; raises UserError when it is not a model."""
    raw = source if isinstance(source, bytes | bytearray) else Path(source).read_bytes()
    if len(raw) < 8 or raw[4:8] != b"TFL3":
        raise UserError(
            f"{source if not isinstance(source, bytes | bytearray) else 'the input'} is not a "
            ".tflite flatbuffer (identifier TFL3 missing); pass the model_int8.tflite file"
        )
    model = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(raw, 0))
    if not model.subgraphs or len(model.subgraphs) != 1:
        raise UserError("the model must have exactly one subgraph for the compiled engine; use --engine tflm")
    sg = model.subgraphs[0]
    tensors: list[Tensor] = []
    for i, t in enumerate(sg.tensors or []):
        ttype = _TYPE_NAMES.get(t.type, str(t.type))
        data = None
        buf = model.buffers[t.buffer] if t.buffer < len(model.buffers or []) else None
        if buf is not None:
            blob = None
            if buf.data is not None and len(buf.data) > 0:
                blob = np.asarray(buf.data, dtype=np.uint8).tobytes()
            elif buf.offset > 1 and buf.size > 0:
                blob = raw[buf.offset : buf.offset + buf.size]
            if blob is not None and ttype in _NP_TYPES:
                data = np.frombuffer(blob, dtype=_NP_TYPES[ttype]).copy()
        q = t.quantization
        scale = [float(s) for s in (q.scale if q is not None and q.scale is not None else [])]
        zps = [int(z) for z in (q.zeroPoint if q is not None and q.zeroPoint is not None else [])]
        name = t.name.decode() if isinstance(t.name, bytes) else str(t.name or "")
        shape = [int(d) for d in (t.shape if t.shape is not None else [])]
        qdim = int(q.quantizedDimension) if q is not None else 0
        tensors.append(Tensor(i, name, shape, ttype, scale, zps, qdim, data))
    ops: list[Op] = []
    for o in sg.operators or []:
        name = _op_name(model.operatorCodes[o.opcodeIndex])
        op = Op(
            name,
            [int(x) for x in (o.inputs if o.inputs is not None else [])],
            [int(x) for x in (o.outputs if o.outputs is not None else [])],
        )
        opts = o.builtinOptions
        if opts is not None and hasattr(opts, "fusedActivationFunction"):
            op.activation = _ACT_NAMES.get(opts.fusedActivationFunction, str(opts.fusedActivationFunction))
        if isinstance(opts, fb.FullyConnectedOptionsT):
            op.options["weights_format"] = int(opts.weightsFormat)
        ops.append(op)
    return Graph(tensors, ops, [int(x) for x in sg.inputs], [int(x) for x in sg.outputs])


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
