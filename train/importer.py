"""`tinyae import MODEL.tflite`: an int8 dense autoencoder trained elsewhere (a Keras script, another tool's
export) becomes a model directory like the one `tinyae model` writes, so `make firmware-emu`, `budget`,
`device verify`, `stream` and `calibrate` work on it as on any model.

What the model must be (checked before any data are read; each refusal is one sentence naming the op or
tensor): full-integer int8 (int8 input and output: TFLiteConverter with a representative dataset,
TFLITE_BUILTINS_INT8, inference_input_type = inference_output_type = tf.int8); one chain of
FULLY_CONNECTED layers (fused ReLU, ReLU6 or none) with LOGISTIC, TANH, RESHAPE and QUANTIZE between them,
which is what both engines run; one flat input per window and an output of the same size (the score
measures how far the output is from the input). Its input size must be the configured front-end's: a
window of window.length samples x C channels, time-major (the window [L, C] flattened row by row, NumPy's
`reshape(-1)`), for the raw front-end, else the spectral/stats features.

What the user gives: the normal data and settings through the same config as `tinyae model` ([data],
[window], [frontend], [normalization], [threshold], [calibration], [decision], [arena], quantize.targets,
and train.loss as the score); [model], the rest of [train] and quantize's conversion keys describe a
training that did not happen here and are not read.

How a raw window becomes the model's float inputs. The device computes, per input element,
q = round((f - offset) / scale / s_in) + z_in: f the front-end's value, offset/scale tinyae's
normalization, (s_in, z_in) the model's own input quantization, which the user's converter fitted on
whatever float inputs their script fed it. So tinyae must know that step (`--normalization`):
- `fit` (default): fit normalization.method (zscore | minmax | robust) on the normal training windows, as
  `tinyae model` does; right when the script normalized that way (e.g. scikit-learn's StandardScaler per
  channel is zscore, MinMaxScaler is minmax);
- `none`: the model takes the front-end's values as they are (offset 0, scale 1); its input quantization
  alone maps them to int8;
- `FILE.json`: {"offset": [...], "scale": [...]} as the script computed them, x = (f - offset) / scale,
  one value per channel (raw front-end) or per feature, or one for all.
Whichever it is, the normal training windows are then checked against the model's int8 input range: a
normalization under which more than MAX_OUTSIDE of their values fall outside it (the model never saw such
inputs), or which leaves them on fewer than normalization.min_levels of the 256 levels (the model's range is
not theirs), is refused in one sentence; the manifest's `imported.input_check` keeps the figures. A model
that reconstructs the validation windows worse than their mean is named in a warning (pipeline R²).

Everything after the int8 model is train/pipeline.py's `finish`, the path `tinyae model` takes too: host
reference, threshold on the device's int8 scores, on-site calibration constants, TFLM arena, C array,
compiled engine, test vectors, report. An imported model has no float model: no loss curve, no float
metrics.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tinyae import f32
from tinyae.errors import UserError
from tinyae.train import pipeline, preprocess
from tinyae.train.config import Config
from tinyae.train.config import warnings as config_warnings
from tinyae.train.manifest import Manifest
from tinyae.train.tflite import Graph, read_tflite
from tinyae.train.warned import collecting, warn

# The ops tinyae runs on both engines (train/tflite.py SUPPORTED_OPS without the float boundary).
IMPORTABLE_OPS = ("FULLY_CONNECTED", "LOGISTIC", "TANH", "RESHAPE", "QUANTIZE")
NORMALIZATIONS = ("fit", "none")  # or a JSON file
BUILDER = "tinyae import"  # the manifest's built_from.builder: make never trains over such a directory
MAX_OUTSIDE = 0.01  # share of the normal training inputs allowed outside the model's int8 input range
FULL_INT8 = (
    "convert it with full-integer quantization (converter.optimizations = [tf.lite.Optimize.DEFAULT], a "
    "representative_dataset, converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8], "
    "converter.inference_input_type = converter.inference_output_type = tf.int8)"
)
DENSE_ONLY = (
    "tinyae imports int8 dense autoencoders: FULLY_CONNECTED layers (ReLU, ReLU6 or linear) with LOGISTIC, "
    "TANH, RESHAPE and QUANTIZE between them"
)


def run_import(
    cfg: Config,
    model: Path,
    out_dir: Path,
    command: str,
    *,
    normalization: str = "fit",
    show_progress: bool = True,
    config_file: str | None = None,
    overrides: Sequence[str] = (),
) -> Manifest:
    """Import `model` (an int8 .tflite) into out_dir with cfg's data and settings; returns the manifest
    (also written to out_dir/manifest.json). normalization: "fit", "none" or a JSON file (module docstring).

    out_dir is replaced whole, all or nothing, under a lock (tinyae/atomic.py), as `tinyae model` does: a
    refusal or an interruption leaves the previous directory as it was, and a model trained there before
    leaves no float model behind. The manifest records builder "tinyae import", so make never trains over it
    (train/inputs.py)."""
    from tinyae import atomic
    from tinyae.train.inputs import built_from

    model = Path(model)
    flatbuffer = read_model(model)
    graph = check_model(flatbuffer, model)
    how, norm_file = normalization_mode(normalization)
    # before anything runs: what this model is built from
    inputs = built_from(cfg, config_file, overrides=overrides, builder=BUILDER, command=command)
    with (
        collecting(),  # every warning of the run goes to the manifest (train/warned.py)
        atomic.replace_dir(out_dir, fresh=True, owned=pipeline.is_model_file, what="another --out") as stage,
    ):
        for w in config_warnings(cfg):
            warn(w)
        t = pipeline.Timings()
        tick = time.perf_counter()
        data = pipeline.read_data(cfg, show_progress)
        feats = pipeline.front_end(cfg, data)
        check_sizes(graph, feats, list(data.prep.channel_names))
        norm = normalize(cfg, data, feats, how, norm_file)
        t.data = time.perf_counter() - tick
        pipeline.describe_data(cfg, data, feats, normalization=describe(how, norm_file, cfg))
        tick = time.perf_counter()
        q = int8_model(cfg, flatbuffer, model, stage, feats, norm, how, norm_file)
        t.conversion = time.perf_counter() - tick
        manifest = pipeline.finish(pipeline.Built(cfg, command, inputs, data, feats, norm, q), stage, t)
    pipeline.print_summary(manifest, out_dir)
    return manifest


# ----------------------------------------------------------------------------------- the model alone
def read_model(path: Path) -> bytes:
    if not path.is_file():
        raise UserError(f"{path} does not exist; give the int8 .tflite file to import")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read {path} ({exc.strerror}); check the path and its permissions") from None
    return data


def check_model(flatbuffer: bytes, path: Path) -> Graph:
    """The model's graph when tinyae can run it (module docstring); UserError naming the op or tensor."""
    from tinyae.train.int8.arithmetic import COMPILED_ENGINE
    from tinyae.train.int8.lower import TFLM_HINT, lower

    if len(flatbuffer) < 8 or flatbuffer[4:8] != b"TFL3":
        raise UserError(
            f"{path} is not a .tflite model (no TFL3 identifier); give the converter's output file"
        )
    try:
        g = read_tflite(flatbuffer)
    except UserError:
        raise
    except Exception as exc:  # a damaged flatbuffer: the schema reader raises whatever it meets
        raise UserError(
            f"{path} is not a readable .tflite model (its flatbuffer is truncated or damaged: "
            f"{type(exc).__name__}); export it again"
        ) from None
    if len(g.inputs) != 1 or len(g.outputs) != 1:
        raise UserError(
            f"the model has {len(g.inputs)} inputs and {len(g.outputs)} outputs; tinyae imports a model with "
            "one input (a window) and one output (its reconstruction)"
        )
    for what, index in (("input", g.inputs[0]), ("output", g.outputs[0])):
        t = g.tensors[index]
        if t.type != "INT8":
            raise UserError(
                f"the model {what} '{t.name}' is {t.type}, but tinyae runs int8 models: {FULL_INT8}"
            )
    bad = list(dict.fromkeys(op.name for op in g.ops if op.name not in IMPORTABLE_OPS))
    if bad:
        k, first = next((k, op) for k, op in enumerate(g.ops) if op.name == bad[0])
        where = f", output '{g.tensors[first.outputs[0]].name}'" if first.outputs else ""
        ops = f"the op {bad[0]}" if len(bad) == 1 else f"the ops {', '.join(bad)}"
        raise UserError(f"{ops} (op {k}{where}) cannot be imported: {DENSE_ONLY}")
    for op in g.ops:
        for i in [*op.inputs, *op.outputs]:
            inner = g.tensors[i] if i >= 0 else None
            if inner is not None and inner.data is None and inner.type != "INT8":
                raise UserError(
                    f"the tensor '{inner.name}' ({op.name}) is {inner.type}: the model computes in float inside; "
                    f"{FULL_INT8}"
                )
    cur = g.inputs[0]
    for k, op in enumerate(g.ops):
        x = g.tensors[op.inputs[0]]
        if op.inputs[0] != cur or len(op.outputs) != 1:
            raise UserError(
                f"the model is not one chain of layers: op {k} ({op.name}) reads '{x.name}', not the previous "
                f"layer's output; {DENSE_ONLY}"
            )
        if op.name == "FULLY_CONNECTED":
            w, y = g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
            if w.data is None or len(w.shape) != 2:
                raise UserError(
                    f"FULLY_CONNECTED '{y.name}' has weights '{w.name}' that are not a constant [out, in] "
                    "matrix; export the model with its weights frozen"
                )
            if x.size != w.shape[1]:
                raise UserError(
                    f"FULLY_CONNECTED '{y.name}' applies its {w.shape[1]}-input weights to each row of "
                    f"'{x.name}' (shape {x.shape}); tinyae gives the model one flat vector per window: build "
                    "it on a flat input (keras.Input(shape=(N,)) or a Flatten layer first)"
                )
        cur = op.outputs[0]
    if g.ops and cur != g.outputs[0]:
        raise UserError(f"the model output '{g.tensors[g.outputs[0]].name}' is not its last layer's output")
    n_in, n_out = g.tensors[g.inputs[0]].size, g.tensors[g.outputs[0]].size
    if n_out != n_in:
        raise UserError(
            f"the model output '{g.tensors[g.outputs[0]].name}' has {n_out} values but its input "
            f"'{g.tensors[g.inputs[0]].name}' has {n_in}; tinyae scores a window by how far the output is from "
            "the input, so an autoencoder's output must be the size of its input"
        )
    try:  # what else the compiled engine refuses (weight zero points, a bias beyond int32, ...)
        lower(g, COMPILED_ENGINE)
    except UserError as exc:  # its advice (the TFLM engine) does not apply: a model directory needs both
        raise UserError(str(exc).replace(TFLM_HINT, "tinyae cannot import it")) from None
    return g


def check_sizes(g: Graph, feats: pipeline.Features, channel_names: list[str]) -> None:
    """The model's input size must be what the front-end gives per window."""
    spec = feats.spec
    t = g.tensors[g.inputs[0]]
    n, f = t.size, spec.feature_size
    if n == f:
        return
    if spec.raw_only:
        c = len(channel_names)
        have = f"a window of {spec.length} samples x {c} channels ({', '.join(channel_names)}) gives {f}"
        hint = f" (window.length = {n // c} would match)" if n % c == 0 else ""
        fix = f"set window.length or the data's channels (data.channels) so they match{hint}"
    else:
        have = f"the front-end ({' + '.join(spec.kinds)}) gives {f} features per window"
        fix = "set [frontend] and window.length so the features match"
    raise UserError(f"the model input '{t.name}' takes {n} values, but {have}; {fix}")


# ----------------------------------------------------------------------------------- normalization
def normalization_mode(value: str) -> tuple[str, Path | None]:
    """("fit" | "none" | "given", the JSON file of "given")."""
    if value in NORMALIZATIONS:
        return value, None
    path = Path(value)
    if not path.is_file():
        raise UserError(
            f"--normalization {value!r} is neither fit, none nor an existing JSON file; give one of them "
            '(a file holds {"offset": [...], "scale": [...]})'
        )
    return "given", path


def describe(how: str, path: Path | None, cfg: Config) -> str:
    if how == "fit":
        return f"{cfg.normalization.method} normalization (fitted)"
    if how == "none":
        return "no normalization (the model's input quantization alone)"
    return f"normalization from {path}"


def read_normalization(path: Path, names: list[str], per: str) -> tuple[np.ndarray, np.ndarray]:
    """offset, scale [P] from a JSON file {"offset": ..., "scale": ...}: P numbers or one for all."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(
            f'{path} is not readable JSON ({exc}); write {{"offset": [...], "scale": [...]}}'
        ) from None
    if not isinstance(doc, dict) or set(doc) != {"offset", "scale"}:
        keys = ", ".join(sorted(doc)) if isinstance(doc, dict) else type(doc).__name__
        raise UserError(f"{path} must hold exactly the keys offset and scale (it holds {keys or 'nothing'})")
    out = []
    for key in ("offset", "scale"):
        v = doc[key]
        values = v if isinstance(v, list) else [v]
        if not values or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in values):
            raise UserError(f"{path}: `{key}` must be a number or a list of numbers")
        arr = np.asarray(values, np.float64)
        if len(arr) not in (1, len(names)):
            raise UserError(
                f"{path}: `{key}` has {len(arr)} values, but the model's inputs need one per {per} "
                f"({len(names)}: {', '.join(names[:6])}{', ...' if len(names) > 6 else ''}) or one for all"
            )
        if key == "scale" and np.any(arr <= 0):
            raise UserError(f"{path}: `scale` must be positive (x = (value - offset) / scale)")
        for x in arr:  # the device stores each as a float32 (tinyae/f32.py: 1e-50 would be a scale of 0)
            wrong = f32.problem(float(x))
            if wrong:
                raise UserError(
                    f"{path}: `{key}` holds {float(x)!r}, which is not a finite float32 the device can use: it "
                    f"{wrong.split(';')[0]}"
                )
        out.append(np.broadcast_to(arr, (len(names),)).astype(np.float32))
    return out[0], out[1]


def normalize(
    cfg: Config, data: pipeline.DataStage, feats: pipeline.Features, how: str, path: Path | None
) -> pipeline.Normalized:
    if how == "fit":
        return pipeline.normalize(cfg, data, feats)
    raw = feats.spec.raw_only
    names = list(data.prep.channel_names) if raw else list(feats.names)
    if how == "none":
        return pipeline.normalized(feats, np.zeros(len(names)), np.ones(len(names)), "none")
    assert path is not None
    offset, scale = read_normalization(path, names, "channel" if raw else "feature")
    return pipeline.normalized(feats, offset, scale, "given")


def input_check(feats: pipeline.Features, norm: pipeline.Normalized, qi, min_levels: int) -> dict:  # type: ignore[no-untyped-def]
    """The normal training inputs against the model's int8 input range: the share outside it and the levels
    they span, with both ranges in the model's float input units."""
    gain = preprocess.input_gain(norm.scale, qi.input_scale)
    reps = feats.train.shape[1] // len(norm.offset)
    u = (feats.train - np.tile(norm.offset, reps)) * np.tile(gain, reps) + np.float32(qi.input_zero_point)
    outside = float(np.mean((u < -128.5) | (u >= 127.5))) if u.size else 0.0
    q = preprocess.quantize_features(feats.train, norm.offset, gain, qi.input_zero_point)
    span = int(q.max()) - int(q.min()) + 1 if q.size else 0
    lo = (-128 - qi.input_zero_point) * qi.input_scale
    hi = (127 - qi.input_zero_point) * qi.input_scale
    x = norm.x_train
    return {
        "windows": len(feats.train),
        "outside_fraction": round(outside, 6),
        "levels_spanned": span,
        "model_input_range": [float(lo), float(hi)],
        "data_range": [float(x.min()), float(x.max())] if x.size else [0.0, 0.0],
        "max_outside_fraction": MAX_OUTSIDE,
        "min_levels": min_levels,
    }


def refuse_mismatch(check: dict, how: str, path: Path | None, cfg: Config) -> None:
    """One sentence when the normal data do not fit the model's input range (module docstring)."""
    lo, hi = check["model_input_range"]
    dlo, dhi = check["data_range"]
    ranges = f"the model's int8 inputs cover [{lo:.4g}, {hi:.4g}], the data span [{dlo:.4g}, {dhi:.4g}]"
    advice = {
        "fit": (
            "set normalization.method to what your training script used, or give its offsets and scales "
            "(--normalization FILE.json), or --normalization none when the model takes the front-end's values "
            "as they are"
        ),
        "none": "the model expects normalized inputs: give their offsets and scales (--normalization FILE.json) "
        "or fit them (--normalization fit)",
        "given": f"check the offsets and scales in {path} against your training script",
    }[how]
    said = describe(how, path, cfg)
    if check["outside_fraction"] > MAX_OUTSIDE:
        raise UserError(
            f"with {said}, {100 * check['outside_fraction']:.3g} % of the normal training inputs fall outside "
            f"the model's input range ({ranges}), so the model was not trained on inputs made this way; {advice}"
        )
    if check["levels_spanned"] < check["min_levels"]:
        raise UserError(
            f"with {said}, the normal training inputs reach only {check['levels_spanned']} of the model's 256 "
            f"int8 input levels ({ranges}), so the model was not trained on inputs made this way; {advice}"
        )


def int8_model(
    cfg: Config,
    flatbuffer: bytes,
    source: Path,
    out_dir: Path,
    feats: pipeline.Features,
    norm: pipeline.Normalized,
    how: str,
    norm_file: Path | None,
) -> pipeline.Int8Model:
    """The imported model as stage 5's result: checked against the data, then written to model_int8.tflite."""
    from tinyae.train.boards import imported_weights
    from tinyae.train.tflite import inspect

    qi = inspect(flatbuffer)
    weights, warning = imported_weights(qi.per_channel_weights, cfg.quantize.weights, cfg.quantize.targets)
    check = input_check(feats, norm, qi, cfg.normalization.min_levels)
    refuse_mismatch(check, how, norm_file, cfg)
    path = out_dir / "model_int8.tflite"
    path.write_bytes(flatbuffer)
    shape = "-".join(str(n) for n in [qi.input_size, *(la["units"] for la in qi.layers)])
    pipeline.say(
        f"imported {source.name}: {shape} ({', '.join(la['activation'] for la in qi.layers)}), "
        f"{qi.macs} MACs, ops {', '.join(qi.ops)}, {weights.granularity.replace('_', '-')} weights for "
        f"{', '.join(weights.targets)}; normal training inputs: {100 * check['outside_fraction']:.2g} % outside "
        f"the model's input range, {check['levels_spanned']} of 256 levels; sha256 {qi.sha256[:12]}…"
    )
    if warning:
        warn(warning)
    imported = {
        "file": str(source),
        "normalization": how,
        "input_check": check,
        "normalization_file": str(norm_file) if norm_file is not None else None,
    }
    return pipeline.Int8Model(flatbuffer, path, qi, weights, imported)
