"""Lower a parsed int8 TFLite graph to the compiled engine's stages (FC layers and lookup tables).

Everything TFLM computes at Prepare time is computed here instead: folded biases, requantization
multipliers/shifts, activation clamp ranges, and 256-entry tables for elementwise int8 ops.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tinyae.errors import UserError
from tinyae.train.int8 import quant
from tinyae.train.int8.arithmetic import Arithmetic
from tinyae.train.tflite import SUPPORTED_OPS, Graph, Op, Tensor

ELEMENTWISE = ("LOGISTIC", "TANH", "QUANTIZE")
TFLM_HINT = "use the TFLM engine (--engine tflm)"
# entries of a paired per-channel layer's shift table (2-bit index per channel, tae_kernels.h)
SHIFT_TABLE = 4


@dataclass
class FcStage:
    in_features: int
    out_features: int
    weights: np.ndarray  # int8 [out, in]
    bias: np.ndarray  # int64 [out], zero point folded, checked to fit int32
    multiplier: np.ndarray  # int64 [out] or [1]
    shift: np.ndarray  # int64, same length
    per_channel: bool
    out_zero_point: int
    act_min: int
    act_max: int
    activation: str
    lut: np.ndarray | None = None  # int8 [256]
    lut_ops: list[str] = field(default_factory=list)

    @property
    def fast(self) -> bool:
        """True when the kernel's short requantization (tae_kernels.c) is exact for every reachable
        accumulator: every channel shifts right (r >= 1), |acc| <= sum|w| * 128 + |bias'| stays below
        2^30 (the kernel doubles it for one SMMULR), and |h| <= |acc| + 1 leaves room for the rounding
        constant 2^(r-1) + z_out * 2^r in int32."""
        bound = int((np.abs(self.weights.astype(np.int64)).sum(axis=1) * 128 + np.abs(self.bias)).max())
        if bound >= (1 << 30) or any(int(s) > -1 for s in self.shift):
            return False
        r = max(-int(s) for s in self.shift)
        return bound + 2 + (1 << (r - 1)) + 128 * (1 << r) < (1 << 31)

    @property
    def shift_table(self) -> list[int]:
        """The distinct TFLite shifts of the layer, largest first (smallest right shift first)."""
        return sorted({int(s) for s in self.shift}, reverse=True)

    @property
    def paired(self) -> bool:
        """True when the kernel takes the paired weight layout: the fast requantization applies,
        A - B = 256 * S_odd cannot wrap, i.e. sum_k |w[row][k]| * 128 < 2^23 for every row
        (tae_kernels.h), and a per-channel layer has at most 4 distinct shifts (each channel's
        multiplier word carries a 2-bit index into the layer's table of shifts)."""
        rows = int(np.abs(self.weights.astype(np.int64)).sum(axis=1).max(initial=0))
        if not (self.fast and rows * 128 < (1 << 23)):
            return False
        if self.per_channel:
            ok_m = bool(np.all((self.multiplier >= (1 << 30)) & (self.multiplier < (1 << 31))))
            return ok_m and len(self.shift_table) <= SHIFT_TABLE
        return True


@dataclass
class LutStage:
    size: int
    lut: np.ndarray  # int8 [256]
    lut_ops: list[str] = field(default_factory=list)


@dataclass
class Lowered:
    stages: list[FcStage | LutStage]
    input_size: int
    output_size: int
    input_scale: float
    input_zero_point: int
    output_scale: float
    output_zero_point: int
    layers: list[dict]  # one entry per model op: op, in, out, activation
    ops: list[str]  # distinct op names in model order
    arithmetic: Arithmetic  # the multiplier rule the stages were lowered with


def _q1(t: Tensor, what: str) -> tuple[float, int]:
    if t.type != "INT8":
        raise UserError(
            f"the {what} tensor '{t.name}' is {t.type}, but the compiled engine needs int8 activations; "
            f"export a full-int8 model or {TFLM_HINT}"
        )
    if len(t.scale) != 1 or len(t.zero_point) != 1:
        raise UserError(f"the {what} tensor '{t.name}' must have one scale and zero point; {TFLM_HINT}")
    return t.scale[0], t.zero_point[0]


def check_graph_ops(g: Graph) -> list[str]:
    """Distinct op names in model order; UserError naming the first unsupported op."""
    names: list[str] = []
    for op in g.ops:
        if op.name not in SUPPORTED_OPS:
            raise UserError(
                f"the op {op.name} is not supported by the compiled engine (it supports "
                f"{', '.join(SUPPORTED_OPS[:-2])}); {TFLM_HINT}"
            )
        if op.name not in names:
            names.append(op.name)
    return names


def _compose(first: np.ndarray | None, second: np.ndarray) -> np.ndarray:
    if first is None:
        return second.copy()
    return second[first.astype(np.int64) + 128].astype(np.int8)


def _fc_stage(g: Graph, op: Op, arithmetic: Arithmetic) -> FcStage:
    x = g.tensors[op.inputs[0]]
    w = g.tensors[op.inputs[1]]
    b = g.tensors[op.inputs[2]] if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
    y = g.tensors[op.outputs[0]]
    s_in, z_in = _q1(x, "FULLY_CONNECTED input")
    s_out, z_out = _q1(y, "FULLY_CONNECTED output")
    if op.options.get("weights_format", 0) != 0:
        raise UserError(f"FULLY_CONNECTED with shuffled weights is not supported; {TFLM_HINT}")
    if w.type != "INT8" or w.data is None or len(w.shape) != 2:
        raise UserError(f"FULLY_CONNECTED weights '{w.name}' must be constant int8 [out, in]; {TFLM_HINT}")
    m, n = w.shape
    if m < 1 or n < 1:
        raise UserError(
            f"FULLY_CONNECTED weights '{w.name}' have an empty shape {w.shape}; re-export the model"
        )
    if x.size != n or y.size != m:
        raise UserError(
            f"FULLY_CONNECTED '{y.name}' maps {x.size} values with weights {w.shape}; only batch 1 is "
            f"supported; {TFLM_HINT}"
        )
    if m > 65535 or n > 65535:
        raise UserError(f"FULLY_CONNECTED '{y.name}' is wider than 65535; {TFLM_HINT}")
    if any(z != 0 for z in w.zero_point):
        raise UserError(f"FULLY_CONNECTED weights '{w.name}' have a non-zero zero point; {TFLM_HINT}")
    weights = w.data.reshape(m, n).astype(np.int8)
    nch = len(w.scale)
    if nch not in (1, m) or (nch == m and m > 1 and w.quantized_dimension != 0):
        raise UserError(f"FULLY_CONNECTED weights '{w.name}' have {nch} scales for {m} outputs; {TFLM_HINT}")
    per_channel = nch > 1
    mults, shifts = [], []
    for ws in w.scale:
        mu, sh = quant.quantize_multiplier(
            arithmetic.effective_scale(s_in, ws, s_out, per_channel=per_channel)
        )
        mults.append(mu)
        shifts.append(sh)
    if b is not None:
        if b.type != "INT32" or b.data is None or b.size != m:
            raise UserError(f"FULLY_CONNECTED bias '{b.name}' must be constant int32 [{m}]; {TFLM_HINT}")
        bias = b.data.astype(np.int64)
    else:
        bias = np.zeros(m, dtype=np.int64)
    folded = bias - int(z_in) * weights.astype(np.int64).sum(axis=1)
    if folded.min() < quant.INT32_MIN or folded.max() > quant.INT32_MAX:
        raise UserError(
            f"FULLY_CONNECTED '{y.name}' has a bias that overflows int32 after folding; {TFLM_HINT}"
        )
    if op.activation not in ("NONE", "RELU", "RELU6", "RELU_N1_TO_1"):
        raise UserError(
            f"the fused activation {op.activation} is not supported by the compiled engine; {TFLM_HINT}"
        )
    lo, hi = quant.activation_range(op.activation, s_out, z_out)
    return FcStage(
        in_features=n,
        out_features=m,
        weights=weights,
        bias=folded,
        multiplier=np.array(mults, dtype=np.int64),
        shift=np.array(shifts, dtype=np.int64),
        per_channel=per_channel,
        out_zero_point=int(z_out),
        act_min=int(lo),
        act_max=int(hi),
        activation=op.activation,
    )


def lower(g: Graph, arithmetic: Arithmetic) -> Lowered:
    """The graph as integer stages, its multipliers formed by `arithmetic` (the engine's rule)."""
    check_graph_ops(g)
    if len(g.inputs) != 1 or len(g.outputs) != 1:
        raise UserError(
            f"the model has {len(g.inputs)} inputs and {len(g.outputs)} outputs; the compiled "
            f"engine needs one of each; {TFLM_HINT}"
        )
    model_in = g.tensors[g.inputs[0]]
    model_out = g.tensors[g.outputs[0]]
    for t, what in ((model_in, "input"), (model_out, "output")):
        if t.type != "INT8":
            raise UserError(
                f"the model {what} is {t.type}; tinyae models are int8 in and out: convert with "
                "inference_input_type/inference_output_type = tf.int8"
            )
    s_in, z_in = _q1(model_in, "model input")
    s_out, z_out = _q1(model_out, "model output")
    consumers: dict[int, int] = {}
    for op in g.ops:
        for i in op.inputs:
            if i >= 0:
                consumers[i] = consumers.get(i, 0) + 1
    stages: list[FcStage | LutStage] = []
    layers: list[dict] = []
    cur = g.inputs[0]
    for op in g.ops:
        x = g.tensors[op.inputs[0]]
        y = g.tensors[op.outputs[0]]
        if op.inputs[0] != cur or len(op.outputs) != 1:
            raise UserError(
                f"the model is not a single chain of ops (op {op.name} reads '{x.name}'); {TFLM_HINT}"
            )
        if consumers.get(cur, 0) > 1 or (cur != g.inputs[0] and cur in g.outputs):
            raise UserError(f"the tensor '{x.name}' feeds several ops; {TFLM_HINT}")
        if op.name in ("QUANTIZE", "DEQUANTIZE") and (x.type != "INT8" or y.type != "INT8"):
            raise UserError(
                f"the model contains a float boundary {op.name} ({x.type} -> {y.type}); tinyae models "
                "are int8 in and out: convert with inference_input_type/inference_output_type = tf.int8"
            )
        if op.name == "DEQUANTIZE":
            raise UserError(f"DEQUANTIZE int8 -> int8 is not a valid op; {TFLM_HINT}")
        layer = {"op": op.name, "in": x.size, "out": y.size, "activation": op.activation}
        if op.name == "FULLY_CONNECTED":
            stages.append(_fc_stage(g, op, arithmetic))
        elif op.name == "RESHAPE":
            if x.size != y.size or _q1(x, "RESHAPE input") != _q1(y, "RESHAPE output"):
                raise UserError(f"RESHAPE '{y.name}' changes size or quantization; {TFLM_HINT}")
            layer["activation"] = "NONE"
        else:  # LOGISTIC, TANH, QUANTIZE int8 -> int8
            if x.size != y.size:
                raise UserError(f"{op.name} '{y.name}' changes the number of values; {TFLM_HINT}")
            si, zi = _q1(x, f"{op.name} input")
            so, zo = _q1(y, f"{op.name} output")
            table = quant.elementwise_table(op.name, si, zi, so, zo)
            last = stages[-1] if stages else None
            if last is not None:
                last.lut = _compose(last.lut, table)
                last.lut_ops.append(op.name)
            else:
                stages.append(LutStage(size=x.size, lut=table, lut_ops=[op.name]))
            layer["activation"] = "NONE"
        layers.append(layer)
        cur = op.outputs[0]
    if cur != g.outputs[0]:
        raise UserError(f"the model output '{model_out.name}' is not produced by the op chain; {TFLM_HINT}")
    for st in stages:
        if isinstance(st, FcStage) and st.lut is not None:
            # fold the activation clamp into the table: the kernels then only saturate to int8
            v = np.clip(np.arange(-128, 128), st.act_min, st.act_max)
            st.lut = st.lut[v + 128].astype(np.int8)
            st.act_min, st.act_max = -128, 127
    if not stages:  # only reshapes: an identity table keeps the engine uniform
        stages.append(LutStage(size=model_in.size, lut=np.arange(-128, 128, dtype=np.int8), lut_ops=["COPY"]))
    ops: list[str] = []
    for op in g.ops:
        if op.name not in ops:
            ops.append(op.name)
    return Lowered(
        stages=stages,
        input_size=model_in.size,
        output_size=model_out.size,
        input_scale=s_in,
        input_zero_point=z_in,
        output_scale=s_out,
        output_zero_point=z_out,
        layers=layers,
        ops=ops,
        arithmetic=arithmetic,
    )


def _blocks(w: np.ndarray) -> np.ndarray:
    """[out, in] int8 -> [blocks, groups, 4 rows, 4 k], zero-padded to 4 rows and an even number of groups."""
    m, n = w.shape
    mp, np_ = (m + 3) // 4 * 4, (n + 7) // 8 * 8
    padded = np.zeros((mp, np_), dtype=np.int8)
    padded[:m, :n] = w
    return padded.reshape(mp // 4, 4, np_ // 4, 4).transpose(0, 2, 1, 3)


def pack_weights(w: np.ndarray, paired: bool = False) -> np.ndarray:
    """[out, in] int8 -> uint32 words of the weights in one of the kernel layouts of tae_kernels.h:
    plain (one word per row and group) or paired (one word per row pair and input pair), block by block."""
    blocks = _blocks(w)
    if paired:
        u = blocks.view(np.uint8)
        even = u[:, :, 0::2, :] ^ 0x80  # [b, g, pair, k]: even rows, offset to unsigned
        odd = u[:, :, 1::2, :]
        words = np.empty((*blocks.shape[:2], 2, 2, 4), dtype=np.uint8)  # [b, g, pair, half, byte]
        for half, (p, q) in enumerate(((0, 2), (1, 3))):
            words[:, :, :, half, 0] = even[:, :, :, p]
            words[:, :, :, half, 1] = odd[:, :, :, p]
            words[:, :, :, half, 2] = even[:, :, :, q]
            words[:, :, :, half, 3] = odd[:, :, :, q]
        return np.ascontiguousarray(words).reshape(-1).view("<u4").astype(np.uint32)
    return np.ascontiguousarray(blocks).reshape(-1).view("<u4").astype(np.uint32)


def kernel_words(st: FcStage, paired: bool | None = None) -> np.ndarray:
    """The layer's weight stream: plain weights, or paired weights with each block's biases around
    its weights ([b0, b2], weights, [2 b1, 2 b3]) and, when per-channel, the block's 4 multiplier
    words (M & 0x3FFFFFFF) | d << 30, d = the channel's index in shift_params' table (tae_kernels.h)."""
    paired = st.paired if paired is None else paired
    words = pack_weights(st.weights, paired)
    if not paired:
        return words
    assert st.fast, "the paired layout needs the fast requantization"
    bias = padded_bias(st).reshape(-1, 4)
    parts = [
        bias[:, [0, 2]],
        words.reshape(bias.shape[0], -1).astype(np.int64),
        2 * bias[:, [1, 3]],
    ]
    if st.per_channel:
        table = st.shift_table
        assert len(table) <= SHIFT_TABLE and np.all(st.multiplier >= (1 << 30)), "not a paired layer"
        mp = bias.size
        mult = np.full(mp, 1 << 30, dtype=np.int64)  # padded rows: M = 2^30, d = 0 (outputs dropped)
        index = np.zeros(mp, dtype=np.int64)
        mult[: st.out_features] = st.multiplier
        index[: st.out_features] = [table.index(int(s)) for s in st.shift]
        parts.append(((mult & 0x3FFFFFFF) | (index << 30)).reshape(-1, 4))
    return (np.concatenate(parts, axis=1).reshape(-1) & 0xFFFFFFFF).astype(np.uint32)


def quant_params(st: FcStage, paired: bool | None = None) -> tuple[np.ndarray | None, np.ndarray]:
    """The layer's `multiplier` (int32, or None) and `shift` (int8) arrays for tae_fc_layer_t: one
    entry per output channel (plain per-channel), one (per-tensor), or for a paired per-channel
    layer no multipliers (they are in the stream) and its table of SHIFT_TABLE shifts, the last one
    repeated to fill it."""
    paired = st.paired if paired is None else paired
    if paired and st.per_channel:
        table = st.shift_table
        table += [table[-1]] * (SHIFT_TABLE - len(table))
        return None, np.array(table, dtype=np.int8)
    return st.multiplier.astype(np.int32), st.shift.astype(np.int8)


def padded_bias(st: FcStage) -> np.ndarray:
    """The folded bias padded with zeros to a multiple of 4 entries (the kernel reads whole blocks)."""
    out = np.zeros((st.out_features + 3) // 4 * 4, dtype=np.int64)
    out[: st.out_features] = st.bias
    return out
