"""Models built to land where the two multiplier rules disagree (testing only).

TFLM's C++ forms a per-tensor FULLY_CONNECTED multiplier from the single-precision product of the input
and weight scales; the tflite_micro nightly forms it in double (train/int8/arithmetic.py). The two give
different outputs only where an accumulator's product lands between the two roundings, which training
rarely hits. `retune` moves one layer's weight scale by the fewest float32 steps that make the rules
disagree on given inputs, so the board-library lane and the compiled engine are tested exactly there
instead of waiting for a model to stumble on such a case. The model stays a valid int8 model: its weights
and every other scale are unchanged; the moved scale differs from the trained one by the least that lands
an output on a tie (typically parts in 10^5 to 10^3).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import flatbuffers
import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

from tinyae.train.int8 import network, quant
from tinyae.train.int8.arithmetic import TFLITE_MICRO, TFLM
from tinyae.train.int8.lower import FcStage, lower
from tinyae.train.tflite import read_tflite


@dataclass(frozen=True)
class Tie:
    layer: int  # which FULLY_CONNECTED op (0-based, in model order)
    tensor: int  # the weight tensor's index in the subgraph
    old_scale: float
    new_scale: float
    steps: int  # float32 steps between them
    elements: int  # output elements of `inputs` where TFLM and tflite_micro now differ
    windows: int  # inputs with at least one such element


def _set_weight_scale(flatbuffer: bytes, tensor: int, scale: float) -> bytes:
    model = fb.ModelT.InitFromPackedBuf(flatbuffer, 0)
    model.subgraphs[0].tensors[tensor].quantization.scale = [float(np.float32(scale))]
    b = flatbuffers.Builder(1 << 16)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def _disagreements(flatbuffer: bytes, inputs: np.ndarray) -> tuple[int, int]:
    g = read_tflite(flatbuffer)  # lowering reads the graph, never changes it
    a = network.run(lower(g, TFLM), inputs)
    b = network.run(lower(g, TFLITE_MICRO), inputs)
    diff = a != b
    return int(diff.sum()), int(diff.any(axis=1).sum())


def differing_windows(model_dir: Path) -> np.ndarray:
    """Indices of the model's test windows (test_vectors.npz, in the order `verify` streams them) whose
    int8 outputs differ between the two multiplier rules."""
    with np.load(model_dir / "test_vectors.npz") as z:
        inputs = z["input_q"]
    flatbuffer = (model_dir / "model_int8.tflite").read_bytes()
    a = network.run(lower(read_tflite(flatbuffer), TFLM), inputs)
    b = network.run(lower(read_tflite(flatbuffer), TFLITE_MICRO), inputs)
    return np.flatnonzero((a != b).any(axis=1))


def _crossings(t: np.ndarray, right: int) -> list[np.ndarray]:
    """For the exact products t = x * M / 2^31, the nearest values whose crossing flips the int8 result:
    half-integers where the first rounding (SaturatingRoundingDoublingHighMul) changes `high` across the
    second rounding's (RoundingDivideByPOT) boundary k 2^r + 2^(r-1), or any half-integer without a
    right shift."""
    if right == 0:
        return [np.floor(t) + 0.5, np.ceil(t) - 0.5]
    step, half = float(1 << right), float(1 << (right - 1))
    k = np.floor(t / step)
    return [(k + d) * step + half + e for d in (-1, 0, 1) for e in (-0.5, 0.5)]


def retune(
    flatbuffer: bytes, inputs: np.ndarray, *, layer: int = -1, want: int = 1, candidates: int = 400
) -> tuple[bytes, Tie]:
    """A copy of `flatbuffer` whose FULLY_CONNECTED `layer` (per-tensor weights) has the float32 weight
    scale nearest its own at which the two rules give different outputs on `inputs` (int8 [n, N]) in at
    least `want` elements; ValueError when none of the `candidates` nearest ties works.

    Ties are found, not waited for: for every accumulator the exact multiplier at which its result flips
    is known (the rounding boundaries of MultiplyByQuantizedMultiplier), so the scale that puts that
    multiplier between the single- and the double-precision one is searched only there."""
    g = read_tflite(flatbuffer)
    fc_ops = [op for op in g.ops if op.name == "FULLY_CONNECTED"]
    op = fc_ops[layer]
    k = fc_ops.index(op)
    w = g.tensors[op.inputs[1]]
    if len(w.scale) != 1:
        raise ValueError("retune needs a per-tensor layer")
    s_in = g.tensors[op.inputs[0]].scale[0]
    s_out = g.tensors[op.outputs[0]].scale[0]
    low = lower(g, TFLM)
    fcs = [i for i, st in enumerate(low.stages) if isinstance(st, FcStage)]
    x = np.asarray(inputs, np.int8)
    for st in low.stages[: fcs[k]]:
        x = network.run_stage(st, x)
    st = low.stages[fcs[k]]
    assert isinstance(st, FcStage)
    a = network.accumulate(st, x)  # the accumulators do not depend on the weight scale being tried
    acc = a.reshape(-1).astype(np.float64)
    base = float(np.float32(w.scale[0]))
    m0, sh0 = quant.quantize_multiplier(TFLITE_MICRO.effective_scale(s_in, base, s_out, per_channel=False))
    scaled = acc * 2.0 ** max(sh0, 0)
    t = scaled * m0 / 2.0**31
    moves = []
    for c in _crossings(t, max(-sh0, 0)):
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.where(scaled != 0, c / np.where(t != 0, t, 1.0) - 1.0, np.inf)
        moves.append(rel)
    rel = np.concatenate(moves)
    rel = rel[np.isfinite(rel) & (rel != 0)]
    tried: set[float] = set()
    for r in rel[np.argsort(np.abs(rel))][: candidates * 4]:
        target = np.float32(base * (1.0 + r))
        for d in range(-3, 4):
            s = float(target if d == 0 else _ulps(target, d))
            if s in tried or s <= 0:
                continue
            tried.add(s)
            m32 = quant.quantize_multiplier(TFLM.effective_scale(s_in, s, s_out, per_channel=False))
            m64 = quant.quantize_multiplier(TFLITE_MICRO.effective_scale(s_in, s, s_out, per_channel=False))
            if m32 == m64:
                continue
            if not np.any(network.requantize(st, a, *m32) != network.requantize(st, a, *m64)):
                continue
            tuned = _set_weight_scale(flatbuffer, op.inputs[1], s)
            elements, windows = _disagreements(tuned, inputs)
            if elements >= want:
                steps = int(abs(int(np.float32(s).view(np.int32)) - int(np.float32(base).view(np.int32))))
                return tuned, Tie(k, op.inputs[1], base, s, steps, elements, windows)
        if len(tried) > candidates * 7:
            break
    raise ValueError(f"none of the {len(tried)} nearest tie scales makes the rules disagree {want} times")


def _ulps(v: np.float32, d: int) -> np.float32:
    return np.float32((np.asarray(v, np.float32).view(np.int32) + np.int32(d)).view(np.float32))


def tie_model_dir(
    model_dir: Path, out: Path, *, layer: int = -1, want: int = 2, first: int | None = None
) -> tuple[Path, Tie]:
    """A copy of a trained model directory with one layer retuned onto ties of its test vectors' inputs
    (of the `first` ones only when given, so that a test streaming just those windows meets the ties),
    every artifact regenerated from the new flatbuffer as `make model` would (headers, compiled engine,
    manifest, test vectors; the threshold and data stay)."""
    from tinyae.train.compiled import generate
    from tinyae.train.export import write_headers
    from tinyae.train.manifest import Manifest
    from tinyae.train.pipeline import check_against_tflite_micro
    from tinyae.train.reference import HostReference

    shutil.copytree(model_dir, out)
    with np.load(out / "test_vectors.npz") as z:
        vectors = {k: z[k] for k in z.files}
    tuned, tie = retune(
        (out / "model_int8.tflite").read_bytes(), vectors["input_q"][:first], layer=layer, want=want
    )
    (out / "model_int8.tflite").write_bytes(tuned)
    doc = json.loads((out / "manifest.json").read_text())
    doc["model"]["sha256"] = hashlib.sha256(tuned).hexdigest()
    doc["model"]["tflite_bytes"] = len(tuned)
    doc["generator"]["command"] += f" (weight scale of layer {tie.layer} retuned onto multiplier ties)"
    manifest = Manifest.from_dict(doc)
    ref = HostReference.from_manifest(tuned, manifest)
    doc["reference"]["tflite_micro"] = check_against_tflite_micro(tuned, ref, vectors["input_q"])
    manifest = Manifest.from_dict(doc)
    manifest.write(out / "manifest.json")
    write_headers(manifest, tuned, out)
    generate(out / "model_int8.tflite", out, banner_command=manifest.generator.command)
    from tinyae.train import preprocess

    out_q = ref.run_int8(vectors["input_q"])
    scores = ref.score_int8(vectors["input_q"], out_q)
    an, alarm = preprocess.decisions_by_piece(
        scores,
        vectors.get("window_series"),
        manifest.threshold.value,
        manifest.decision.k,
        manifest.decision.n,
    )
    vectors.update(output_q=out_q, scores=scores, anomaly=an.astype(np.int8), alarm=alarm.astype(np.int8))
    np.savez_compressed(out / "test_vectors.npz", **vectors)
    return out, tie
