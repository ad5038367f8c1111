"""Emit model_compiled.h/.c (the network as plain C over tae_kernels) from an int8 .tflite."""

from __future__ import annotations

import hashlib
from pathlib import Path

from tinyae import atomic
from tinyae.errors import UserError
from tinyae.train.int8.arithmetic import COMPILED_ENGINE, Arithmetic
from tinyae.train.int8.lower import (
    FcStage,
    Lowered,
    LutStage,
    kernel_words,
    lower,
    padded_bias,
    quant_params,
)
from tinyae.train.tflite import read_tflite


def _rows(values, fmt, per_row: int) -> list[str]:
    items = [fmt(v) for v in values]
    return [", ".join(items[i : i + per_row]) + "," for i in range(0, len(items), per_row)]


def _u32(v: int) -> str:
    return f"0x{int(v):08x}u"


def _i32(v: int) -> str:
    v = int(v)
    return "INT32_MIN" if v == -(1 << 31) else str(v)


LAYOUTS = ("auto", "plain", "general")


def kernel_function(paired: bool, per_channel: bool, lut: bool) -> str:
    """The tae_kernels entry point a layer's call uses: one per paired variant, so an image links
    only the whole-layer loops its model needs; tae_fc_s8 (any layer) for the plain layout."""
    if not paired:
        return "tae_fc_s8"
    return f"tae_fc_paired_{'pc' if per_channel else 'pt'}{'_lut' if lut else ''}_s8"


def _context(low: Lowered, layouts: str = "auto") -> dict:
    """Template context: one entry per stage with its C arrays already formatted. `layouts` is a
    testing aid: "plain" never takes the paired weight layout, "general" also never the fast
    requantization (the kernels' other paths, which the generator picks only for unusual layers)."""
    stages = []
    act_bytes = 0
    xbuf_words = 0
    for i, st in enumerate(low.stages):
        last = i == len(low.stages) - 1
        if not last:
            out_size = st.out_features if isinstance(st, FcStage) else st.size
            act_bytes = max(act_bytes, out_size)
        entry: dict = {"index": i, "src": "in" if i == 0 else "tae_act", "dst": "out" if last else "tae_act"}
        if isinstance(st, FcStage):
            xbuf_words = max(xbuf_words, (st.in_features + 7) // 8 * 4)
            paired = st.paired and layouts == "auto"
            fast = st.fast and layouts != "general"
            words = kernel_words(st, paired)
            bias = padded_bias(st)
            mult, shift = quant_params(st, paired)
            entry.update(
                kind="fc",
                fn=kernel_function(paired, st.per_channel, st.lut is not None),
                n=st.in_features,
                m=st.out_features,
                activation=st.activation,
                lut_ops=st.lut_ops,
                weights=_rows(words, _u32, 8),
                weight_words=len(words),
                bias=_rows(bias, _i32, 8),
                bias_len=len(bias),
                paired=int(paired),
                stream_quant=int(paired and st.per_channel),
                mult=_rows(mult, _i32, 8) if mult is not None else None,
                shift=_rows(shift, str, 16),
                nq=len(shift),
                per_channel=int(st.per_channel),
                fast=int(fast),
                out_zp=st.out_zero_point,
                act_min=st.act_min,
                act_max=st.act_max,
                lut=_rows(st.lut, str, 16) if st.lut is not None else None,
            )
        else:
            assert isinstance(st, LutStage)
            entry.update(kind="lut", n=st.size, lut_ops=st.lut_ops, lut=_rows(st.lut, str, 16))
        stages.append(entry)
    return {"stages": stages, "act_bytes": act_bytes, "xbuf_words": xbuf_words}


def _info(low: Lowered, ctx: dict) -> dict:
    fcs = [s for s in low.stages if isinstance(s, FcStage)]
    # paired layers carry their biases inside the weight stream, per-channel ones also their
    # multipliers (one word per padded output channel); the shift tables are int8 arrays
    bias_bytes = sum(4 * ((s.out_features + 3) // 4 * 4) for s in fcs)
    weight_bytes = quant_bytes = 0
    for e in ctx["stages"]:
        if e["kind"] != "fc":
            continue
        words = int(e["weight_words"]) - (e["bias_len"] if e["paired"] else 0)
        stream_quant = e["bias_len"] if e["stream_quant"] else 0
        weight_bytes += 4 * (words - stream_quant)
        quant_bytes += 4 * stream_quant + e["nq"] * (1 if e["stream_quant"] else 5)
    lut_bytes = sum(256 for s in low.stages if s.lut is not None)
    scratch = ctx["act_bytes"] + 4 * ctx["xbuf_words"]
    return {
        "scratch_bytes": int(scratch),
        "activation_bytes": int(ctx["act_bytes"]),
        "xbuf_bytes": int(4 * ctx["xbuf_words"]),
        "weight_bytes": int(weight_bytes),
        "bias_bytes": int(bias_bytes),
        "quant_param_bytes": int(quant_bytes),
        "lut_bytes": int(lut_bytes),
        "const_bytes": int(weight_bytes + bias_bytes + quant_bytes + lut_bytes),
        "macs": int(sum(s.in_features * s.out_features for s in fcs)),
        "layers": low.layers,
        "ops": low.ops,
        "stages": len(low.stages),
        "input_size": low.input_size,
        "output_size": low.output_size,
    }


def render(
    tflite_bytes: bytes,
    banner_command: str,
    *,
    layouts: str = "auto",
    arithmetic: Arithmetic = COMPILED_ENGINE,
    model_file: str = "model_int8.tflite",
) -> tuple[str, str, dict]:
    """Return (model_compiled.h text, model_compiled.c text, info) for the model bytes (`layouts`:
    see _context; `arithmetic`: the multiplier rule, train/int8/arithmetic.py; only tests pass anything
    but the defaults; model_file: the file's name for the banner)."""
    from tinyae.train.render import banner, environment

    low = lower(read_tflite(tflite_bytes), arithmetic)
    sha = hashlib.sha256(tflite_bytes).hexdigest()
    if layouts not in LAYOUTS:
        raise ValueError(f"layouts must be one of {LAYOUTS}")
    ctx = _context(low, layouts)
    info = _info(low, ctx)
    common = {
        "banner": banner(sha, banner_command, model_file=model_file),
        "sha": sha,
        "low": low,
        "info": info,
        **ctx,
    }
    env = environment(trim_blocks=True)
    header = env.get_template("model_compiled.h.j2").render(**common)
    source = env.get_template("model_compiled.c.j2").render(**common)
    return header, source, info


def generate(tflite_path: Path, out_dir: Path, *, banner_command: str) -> dict:
    """Write model_compiled.h/.c for `tflite_path` into `out_dir`; return the generator's figures."""
    tflite_path = Path(tflite_path)
    if not tflite_path.is_file():
        raise UserError(f"the model file {tflite_path} does not exist; run `make model` first")
    header, source, info = render(tflite_path.read_bytes(), banner_command, model_file=tflite_path.name)
    out_dir = Path(out_dir)
    with atomic.files() as g:  # both or neither (tinyae/atomic.py)
        g.write_text(out_dir / "model_compiled.h", header)
        g.write_text(out_dir / "model_compiled.c", source)
    return info


def check_ops(tflite_path: Path) -> list[str]:
    """The model's op names in order; UserError when the compiled engine cannot run one of them."""
    from tinyae.train.int8.lower import check_graph_ops

    return check_graph_ops(read_tflite(Path(tflite_path)))


__all__ = ["check_ops", "generate", "render"]
