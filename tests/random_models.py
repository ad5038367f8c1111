"""Random int8 dense models written directly as .tflite flatbuffers (no TensorFlow needed).

Built with the object API of the TFLite schema module that ships with tflite_micro, so a model
costs a few milliseconds. Used by the compiled-engine bit-exactness tests: every model built
here must be accepted by `tflite_micro` (the host reference) and by the compiled-engine generator.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import flatbuffers
import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

ACTIVATIONS = {"NONE": 0, "RELU": 1, "RELU6": 3}


@dataclass
class DenseLayer:
    units: int
    activation: str = "NONE"  # NONE | RELU | RELU6
    per_channel: bool = False
    bias: bool = True


@dataclass
class ModelSpec:
    inputs: int
    layers: list[DenseLayer]
    final: str | None = None  # None | "LOGISTIC" | "TANH"
    requantize_after: int | None = None  # insert an int8->int8 QUANTIZE after this layer index
    reshape_input: bool = False  # feed the first layer through a RESHAPE [1, n] -> [1, n]
    seed: int = 0
    # scale ranges (log10) for activations and weights
    act_scale_log10: tuple[float, float] = (-3.0, 0.0)
    weight_scale_log10: tuple[float, float] = (-3.5, -1.0)
    extra: dict = field(default_factory=dict)


class _Builder:
    def __init__(self) -> None:
        self.tensors: list[fb.TensorT] = []
        self.buffers: list[fb.BufferT] = [fb.BufferT()]  # buffer 0: the empty sentinel
        self.operators: list[fb.OperatorT] = []
        self.opcodes: list[int] = []

    def tensor(
        self,
        name: str,
        shape: list[int],
        ttype: int,
        scale: list[float] | None = None,
        zero_point: list[int] | None = None,
        data: bytes | None = None,
        qdim: int = 0,
    ) -> int:
        t = fb.TensorT()
        t.name = name
        t.shape = list(shape)
        t.type = ttype
        if data is not None:
            buf = fb.BufferT()
            buf.data = np.frombuffer(data, dtype=np.uint8)
            self.buffers.append(buf)
            t.buffer = len(self.buffers) - 1
        else:
            t.buffer = 0
        if scale is not None:
            q = fb.QuantizationParametersT()
            # NumPy vectors: the flatbuffer packs them in one copy, a list element by element
            q.scale = np.asarray(scale, np.float32)
            q.zeroPoint = np.asarray(zero_point if zero_point is not None else [0] * len(scale), np.int64)
            q.quantizedDimension = qdim
            t.quantization = q
        self.tensors.append(t)
        return len(self.tensors) - 1

    def op(self, code: int, inputs: list[int], outputs: list[int], opt_type: int = 0, opts=None) -> None:
        if code not in self.opcodes:
            self.opcodes.append(code)
        o = fb.OperatorT()
        o.opcodeIndex = self.opcodes.index(code)
        o.inputs = inputs
        o.outputs = outputs
        o.builtinOptionsType = opt_type
        o.builtinOptions = opts
        self.operators.append(o)

    def finish(self, inputs: list[int], outputs: list[int]) -> bytes:
        sg = fb.SubGraphT()
        sg.tensors = self.tensors
        sg.inputs = inputs
        sg.outputs = outputs
        sg.operators = self.operators
        sg.name = "main"
        m = fb.ModelT()
        m.version = 3
        m.description = "tinyae random dense model"
        m.subgraphs = [sg]
        m.buffers = self.buffers
        codes = []
        for c in self.opcodes:
            oc = fb.OperatorCodeT()
            oc.builtinCode = c
            oc.deprecatedBuiltinCode = min(c, 127)
            oc.version = 1
            codes.append(oc)
        m.operatorCodes = codes
        b = flatbuffers.Builder(1024)
        b.Finish(m.Pack(b), file_identifier=b"TFL3")
        return bytes(b.Output())


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.float32(10.0 ** rng.uniform(lo, hi)))


def build_model(spec: ModelSpec) -> bytes:
    """Build the .tflite bytes of `spec`; weights, scales and zero points drawn from spec.seed."""
    rng = np.random.default_rng(spec.seed)
    B = _Builder()
    I8, I32 = fb.TensorType.INT8, fb.TensorType.INT32
    s = _log_uniform(rng, *spec.act_scale_log10)
    z = int(rng.integers(-128, 128))
    cur = B.tensor("input", [1, spec.inputs], I8, [s], [z])
    model_in = cur
    n = spec.inputs
    if spec.reshape_input:
        shape = B.tensor("shape", [2], I32, data=np.array([1, n], dtype="<i4").tobytes())
        out = B.tensor("reshaped", [1, n], I8, [s], [z])
        opts = fb.ReshapeOptionsT()
        opts.newShape = [1, n]
        B.op(fb.BuiltinOperator.RESHAPE, [cur, shape], [out], fb.BuiltinOptions.ReshapeOptions, opts)
        cur = out
    for li, layer in enumerate(spec.layers):
        m = layer.units
        nch = m if layer.per_channel else 1
        w_scales = [_log_uniform(rng, *spec.weight_scale_log10) for _ in range(nch)]
        w = rng.integers(-127, 128, size=(m, n), dtype=np.int64)
        if rng.random() < 0.2:  # saturated weights
            w = np.where(rng.random((m, n)) < 0.5, -127, 127)
        wt = B.tensor(f"w{li}", [m, n], I8, w_scales, [0] * nch, w.astype(np.int8).tobytes(), qdim=0)
        ins = [cur, wt]
        if layer.bias:
            b_scales = [float(np.float32(s) * np.float32(ws)) for ws in w_scales]
            bias = rng.integers(-(1 << 15), 1 << 15, size=m, dtype=np.int64)
            bt = B.tensor(f"b{li}", [m], I32, b_scales, [0] * nch, bias.astype("<i4").tobytes())
            ins.append(bt)
        else:
            ins.append(-1)
        # output scale: roughly matched to the accumulator range, sometimes far off (saturation)
        so = float(np.float32(s * np.mean(w_scales) * np.sqrt(n) * 40.0 * 10.0 ** rng.uniform(-1.0, 1.0)))
        zo = int(rng.integers(-128, 128))
        if layer.activation != "NONE" and rng.random() < 0.5:
            zo = -128
        out = B.tensor(f"fc{li}", [1, m], I8, [so], [zo])
        opts = fb.FullyConnectedOptionsT()
        opts.fusedActivationFunction = ACTIVATIONS[layer.activation]
        B.op(fb.BuiltinOperator.FULLY_CONNECTED, ins, [out], fb.BuiltinOptions.FullyConnectedOptions, opts)
        cur, s, z, n = out, so, zo, m
        if spec.requantize_after == li:
            s2 = float(np.float32(s * 10.0 ** rng.uniform(-0.7, 0.7)))
            z2 = int(rng.integers(-128, 128))
            out = B.tensor(f"rq{li}", [1, n], I8, [s2], [z2])
            B.op(fb.BuiltinOperator.QUANTIZE, [cur], [out])
            cur, s, z = out, s2, z2
    if spec.final == "LOGISTIC":
        out = B.tensor("logistic", [1, n], I8, [1.0 / 256.0], [-128])
        B.op(fb.BuiltinOperator.LOGISTIC, [cur], [out])
        cur = out
    elif spec.final == "TANH":
        out = B.tensor("tanh", [1, n], I8, [1.0 / 128.0], [0])
        B.op(fb.BuiltinOperator.TANH, [cur], [out])
        cur = out
    return B.finish([model_in], [cur])


def random_spec(seed: int, max_width: int = 256) -> ModelSpec:
    """A random dense network: 1-6 layers, widths 1..max_width, mixed quantization and activations."""
    rng = np.random.default_rng(seed)
    n_layers = int(rng.integers(1, 7))

    def width() -> int:
        r = rng.random()
        if r < 0.15:
            return int(rng.integers(1, 5))
        if r < 0.3:
            return int(max_width)
        return int(rng.integers(1, max_width + 1))

    layers = [
        DenseLayer(
            units=width(),
            activation=str(rng.choice(list(ACTIVATIONS))),
            per_channel=bool(rng.random() < 0.5),
            bias=bool(rng.random() < 0.8),
        )
        for _ in range(n_layers)
    ]
    final = [None, None, "LOGISTIC", "TANH"][int(rng.integers(0, 4))]
    spec = ModelSpec(inputs=width(), layers=layers, final=final, seed=seed)
    if rng.random() < 0.15:
        spec.requantize_after = int(rng.integers(0, n_layers))
    spec.reshape_input = bool(rng.random() < 0.1)
    if rng.random() < 0.15:  # extreme scales
        spec.act_scale_log10 = (-6.0, 2.0)
        spec.weight_scale_log10 = (-6.0, 0.5)
    return spec


def run_tflm(model: bytes, inputs: np.ndarray, arena_size: int = 64 * 1024) -> np.ndarray:
    """Run int8 input rows [k, n] through tflite_micro; returns the int8 outputs [k, m]."""
    from tflite_micro import runtime

    interp = runtime.Interpreter.from_bytes(model, arena_size=arena_size)
    shape = tuple(int(d) for d in interp.get_input_details(0)["shape"])
    outs = []
    for row in inputs:
        interp.set_input(np.asarray(row, dtype=np.int8).reshape(shape), 0)
        interp.invoke()
        outs.append(np.asarray(interp.get_output(0)).reshape(-1).copy())
    return np.stack(outs).astype(np.int8)


def random_inputs(rng: np.random.Generator, n: int, count: int = 6) -> np.ndarray:
    """`count` int8 input rows of length n: all -128, all 127, alternating extremes, then random."""
    rows = [np.full(n, -128), np.full(n, 127), np.where(np.arange(n) % 2 == 0, -128, 127)]
    while len(rows) < count:
        rows.append(rng.integers(-128, 128, size=n))
    return np.stack(rows[:count]).astype(np.int8)


def fast_requant_cases(rng: np.random.Generator) -> list[tuple[int, int, int, int]]:
    """(acc, multiplier, shift, out_zero_point) inside the compiled engine's `fast` requantization
    domain (shift <= -1, |acc| < 2^30, |acc| + 2 + 2^(r-1) + 128 * 2^r < 2^31), weighted to its edges:
    the largest accumulators, zero, +-1 (h rounds to 0 for a negative acc), rounding ties of
    RoundingDivideByPOT and their neighbours, extreme multipliers and zero points."""
    cases = []
    mults = [1 << 30, (1 << 31) - 1, 1518500250, *(int(v) for v in rng.integers(1 << 30, 1 << 31, 6))]
    for r in (1, 2, 3, 7, 12, 15, 20, 22):
        bound = min((1 << 30) - 1, (1 << 31) - 3 - (1 << (r - 1)) - 128 * (1 << r))
        for m in mults:
            zp = int(rng.choice([-128, -1, 0, 5, 127]))
            accs = {0, 1, -1, 2, -2, bound, -bound, bound - 1, -bound + 1}
            # accumulators whose high product h lands on or next to a tie k * 2^r + 2^(r-1)
            for _ in range(6):
                k = int(rng.integers(-(bound >> r) // 2, (bound >> r) // 2 + 1))
                h = k * (1 << r) + (1 << (r - 1))
                base = (h << 31) // m
                accs.update(base + d for d in (-2, -1, 0, 1, 2))
            accs.update(int(v) for v in rng.integers(-bound, bound + 1, 8))
            cases += [(a, m, -r, zp) for a in sorted(accs) if abs(a) <= bound]
    return cases


def with_extra_op(model: bytes, code: int) -> bytes:
    """`model` with one more op after its output (one input, one int8 output of the same shape; e.g.
    SOFTMAX), which becomes the model's output."""
    m = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(model, 0))
    sg = m.subgraphs[0]
    out = sg.tensors[sg.outputs[0]]
    t = fb.TensorT()
    t.name, t.shape, t.type, t.buffer = "extra", list(out.shape), fb.TensorType.INT8, 0
    q = fb.QuantizationParametersT()
    q.scale, q.zeroPoint = [1.0 / 256], [-128]
    t.quantization = q
    sg.tensors.append(t)
    oc = fb.OperatorCodeT()
    oc.builtinCode = code
    oc.deprecatedBuiltinCode = code
    m.operatorCodes.append(oc)
    op = fb.OperatorT()
    op.opcodeIndex = len(m.operatorCodes) - 1
    op.inputs, op.outputs = [sg.outputs[0]], [len(sg.tensors) - 1]
    sg.operators.append(op)
    sg.outputs = [len(sg.tensors) - 1]
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())
