"""The whole training job, in README's "How data flows" order; `run` calls one function per stage:

1. read_data            source -> screened series -> windows, split       -> DataStage
2. front_end            windows -> features (raw | spectral | stats)      -> Features
3. normalize            fitted on normal training windows only            -> Normalized
4. train_float          Keras dense autoencoder, float scores             -> FloatModel
5. quantize_model       full-int8 TFLite (model_int8.tflite)              -> Int8Model
6. score_and_threshold  host reference, int8 scores, threshold, levels,
                        on-site calibration constants                      -> Scored
7. measure_arena        TFLM arena measured on the host                   -> bytes
8. export_and_report    the typed Manifest (build_manifest), every artifact rendered from it, the
                        report, manifest.json                              -> Manifest

Stages 6-8 (`finish`) start from the int8 model alone; `tinyae import` (train/importer.py) runs stages
1-3 and 6-8 the same way, with an int8 model trained elsewhere in place of stages 4-5 (no float model).

`manifest.json` (train/manifest.py) is the single source of truth every generated header and the
firmware are rendered from.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tinyae import __version__, terminal
from tinyae.errors import UserError
from tinyae.train import manifest as mf
from tinyae.train import preprocess
from tinyae.train.calibrate import calibrate, normal_scores
from tinyae.train.config import Config
from tinyae.train.config import warnings as config_warnings
from tinyae.train.frontend import FrontendSpec, build_spec, extractor
from tinyae.train.frontend.fit import check_features, fit_log_floor
from tinyae.train.manifest import Manifest
from tinyae.train.metrics import summary
from tinyae.train.warned import collected, collecting, warn

STAGE_STYLE = "[bold cyan]"


def _say(msg: str) -> None:
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True, highlight=False).print(f"{STAGE_STYLE}tinyae[/] {escape(msg)}")


say = _say  # the stage lines of `tinyae import` (train/importer.py) look the same


def _require_rate(splits, source: str) -> None:  # type: ignore[no-untyped-def]
    """A file-based source must give a sample rate (timestamps or data.sample_rate_hz)."""
    if splits.sample_rate_hz and splits.sample_rate_hz > 0:
        return
    if source.strip().lower() in ("csv", "ucr", "edgeimpulse"):
        raise UserError(
            f"{splits.name} gives no sample rate (no timestamp column and data.sample_rate_hz unset); "
            "set data.sample_rate_hz (e.g. 100) or name the timestamp column with data.timestamp"
        )


@dataclass
class Timings:
    data: float = 0.0
    training: float = 0.0
    conversion: float = 0.0
    reference: float = 0.0
    arena: float = 0.0
    export: float = 0.0
    report: float = 0.0


def _normalize(features: np.ndarray, offset: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """(f - offset) / scale for features [n, F], element i using offset/scale[i % len(offset)]."""
    reps = features.shape[1] // len(offset)
    return ((features - np.tile(offset, reps)) / np.tile(scale, reps)).astype(np.float32)


def _float_scores(model, x: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray]:
    if len(x) == 0:
        return np.zeros(0, np.float32), x
    y = model.predict(x, batch_size=512, verbose=0)
    err = (y - x) ** 2 if kind == "mse" else np.abs(y - x)
    return err.mean(axis=1).astype(np.float32), y


@dataclass
class DataStage:
    """Stage 1: the data read, screened for outliers and cut into windows."""

    splits: Any  # DatasetSplits (tinyae.train.data.splits)
    outliers: Any  # OutlierReport (tinyae.train.data.outliers)
    prep: Any  # Prepared: train/val/test windows [n, L, C], labels, channel names, rate
    labels: np.ndarray | None  # [n_test] int8 window labels, None without labels
    section: dict  # the manifest's `data` section


@dataclass
class Features:
    """Stage 2: the front-end and its features of every split ([n, F] float32)."""

    spec: FrontendSpec
    featurize: Callable[[np.ndarray], np.ndarray]
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    names: list[str]  # F feature names
    constant: list[str]  # (nearly) constant on the training data


@dataclass
class Normalized:
    """Stage 3: normalization fitted on the normal training windows, and the network's float inputs."""

    offset: np.ndarray  # [P] float32
    scale: np.ndarray  # [P] float32
    x_train: np.ndarray  # [n, F] float32
    x_val: np.ndarray
    x_test: np.ndarray
    # the manifest's normalization.method when not the config's, fitted (an import's "given", "none")
    method: str = ""


@dataclass
class FloatModel:
    """Stage 4: the trained Keras autoencoder and its float scores."""

    model: Any  # keras.Model
    history: Any  # tinyae.train.fit.History
    train_scores: np.ndarray  # [n_train] float32 (the windows the model was fitted on)
    val_scores: np.ndarray  # [n_val] float32
    test_scores: np.ndarray  # [n_test] float32
    test_recon: np.ndarray  # [n_test, F] float reconstructions
    latent: np.ndarray | None  # [n_test, latent] codes


@dataclass
class Int8Model:
    """Stage 5: the full-int8 TFLite flatbuffer (written to model_int8.tflite), quantized here or imported."""

    flatbuffer: bytes
    path: Path
    info: Any  # tinyae.train.tflite.QuantInfo
    weights: Any  # tinyae.train.boards.WeightsChoice
    imported: dict | None = None  # the manifest's `imported` section (tinyae import), None when trained here


@dataclass
class Built:
    """Stages 1-5 of one run, what `finish` turns into a model directory: the config and command, what the
    model is built from (train/inputs.py), the data, features, normalization, the int8 model and the float
    model it was quantized from (None for `tinyae import`: q.imported says where it came from)."""

    cfg: Config
    command: str
    inputs: dict
    data: DataStage
    feats: Features
    norm: Normalized
    q: Int8Model
    fm: FloatModel | None = None


@dataclass
class Scored:
    """Stage 6: host reference, int8 scores, threshold, input levels, on-site calibration constants."""

    ref: Any  # tinyae.train.reference.HostReference
    gain: np.ndarray  # [P] float32
    train: Any  # ReferenceResult of the training windows (a threshold method may use their scores)
    val: Any  # ReferenceResult of the validation windows
    test: Any  # ReferenceResult of the test windows
    threshold: Any  # tinyae.train.calibrate.Threshold on the int8 scores
    float_threshold: Any  # the same method on the float scores (None without a float model)
    levels: dict
    levels_warning: str
    r2: float  # the int8 reconstruction of the validation windows: 1 - SSE / (SS around their mean)
    r2_warning: str
    calibration: Any  # tinyae.train.calibration.CalibSpec
    reference: dict  # the manifest's `reference` section


def run(
    cfg: Config,
    out_dir: Path,
    command: str,
    *,
    show_progress: bool = True,
    config_file: str | None = None,
    callbacks: Sequence[Any] = (),
    overrides: Sequence[str] = (),
    builder: str = "tinyae model",
) -> Manifest:
    """Run every stage in README's order and return the manifest (also written to out_dir/manifest.json).

    out_dir is replaced whole, all or nothing, under a lock (tinyae/atomic.py).
    callbacks: Keras callbacks for the training (tinyae.train.fit.fit), e.g. keras.callbacks.CSVLogger.
    overrides: the `--set` values applied to the config file (recorded: `make` never rebuilds such a model
    from another config, train/inputs.py); builder: the command that built it ("tinyae model", "tinyae search").
    """
    from tinyae import atomic
    from tinyae.train.inputs import built_from

    # before anything runs: what this model is built from
    inputs = built_from(cfg, config_file, overrides=overrides, builder=builder, command=command)
    # Every file is written into a stage beside out_dir, which replaces out_dir whole at the end
    # (tinyae/atomic.py): an interrupted or failed run leaves the previous model as it was.
    with (
        collecting(),  # every warning of the run goes to the manifest (train/warned.py)
        atomic.replace_dir(out_dir, fresh=True, owned=is_model_file, what="another --out") as stage,
    ):
        for w in config_warnings(cfg):
            warn(w)
        t = Timings()
        tick = time.perf_counter()
        data = read_data(cfg, show_progress)
        feats = front_end(cfg, data)
        norm = normalize(cfg, data, feats)
        t.data = time.perf_counter() - tick
        describe_data(cfg, data, feats)
        tick = time.perf_counter()
        fm = train_float(cfg, norm, stage, show_progress, callbacks)
        t.training = time.perf_counter() - tick
        tick = time.perf_counter()
        q = quantize_model(cfg, fm, norm, stage)
        t.conversion = time.perf_counter() - tick
        try:
            manifest = finish(Built(cfg, command, inputs, data, feats, norm, q, fm), stage, t)
        except UserError as exc:
            # A refusal after training (a threshold its method cannot give on these scores, a constant the
            # device cannot hold) must not cost the training: the network is kept for `tinyae import`.
            raise UserError(keep_trained(stage, out_dir, exc, config_file, overrides)) from None
    print_summary(manifest, out_dir)
    return manifest


def keep_trained(
    stage: Path, out_dir: Path, exc: UserError, config_file: str | None, overrides: Sequence[str]
) -> str:
    """Copy the trained network out of the failed run's stage into <out_dir>.trained/ and return the
    refusal's sentence with how to finish from it: `tinyae import` of tinyae's own int8 model with its
    config gives the model directory the run would have given (tests/test_import.py), without training."""
    import shlex
    import shutil

    from tinyae import atomic

    kept = out_dir.with_name(out_dir.name + ".trained")
    names = ("model_int8.tflite", "model.keras")
    try:
        with atomic.replace_dir(kept, fresh=True, owned=lambda n: n in names, what="another --out") as dst:
            for name in names:
                if (stage / name).exists():
                    shutil.copy2(stage / name, dst / name)
    except UserError as why:  # a folder that cannot take it: the refusal is still what the user must read
        return f"{str(exc).rstrip('.')} (the trained network could not be kept: {why})"
    again = ["tinyae", "import", str(kept / "model_int8.tflite")]
    again += ["--config", config_file] if config_file else []
    for o in overrides:
        again += ["--set", o]
    again += ["--out", str(out_dir)]
    return (
        f"{str(exc).rstrip('.')}; the trained network is kept in {kept}, so after that change "
        f"`{shlex.join(again)}` (the change as one more --set) builds {out_dir} without training again"
    )


def finish(b: Built, out_dir: Path, t: Timings) -> Manifest:
    """Stages 6-8, from the int8 model on: the one path of `tinyae model` and `tinyae import`. out_dir is
    the directory being built (the caller's atomic stage)."""
    tick = time.perf_counter()
    sc = score_and_threshold(b)
    t.reference = time.perf_counter() - tick
    tick = time.perf_counter()
    arena_host = measure_arena(b.q)
    t.arena = time.perf_counter() - tick
    return export_and_report(b, out_dir, sc, arena_host, t)


# What a model directory holds (written by `tinyae model`, `import`, `threshold`, `export`, `compile`,
# `calibrate`); `tinyae model` and `tinyae import` replace a directory whole only when it holds nothing else.
MODEL_FILES = frozenset(
    {
        "config.toml", "manifest.json", "metrics.json", "model.keras", "model_int8.tflite",
        "model_config.h", "model_data.h", "model_data.cc", "model_ops.h", "model_compiled.h",
        "model_compiled.c", "report.html", "report_figures.json", "scores.npz", "test_vectors.npz",
    }
)  # fmt: skip


def is_model_file(name: str) -> bool:
    """A file name a model directory holds (the build's files, its report's figures, calibration records)."""
    return name in MODEL_FILES or name.endswith(".png") or name.startswith("calibration-")


def read_data(cfg: Config, show_progress: bool) -> DataStage:
    """Read the configured source, require a sample rate, screen outliers, cut windows and split."""
    from tinyae.train import data as datamod
    from tinyae.train.data.outliers import screen
    from tinyae.train.data.settings import data_section
    from tinyae.train.data.splits import prepare_splits
    from tinyae.train.progress import file_progress

    with file_progress(show_progress) as reading:
        splits = datamod.load_source(cfg.data, cfg.window.length, progress=reading)
    _require_rate(splits, cfg.data.source)
    n = cfg.normalization
    splits, outliers = screen(splits, n.outlier_iqr, n.outliers, cfg.window.length, cfg.window.hop)
    prep = prepare_splits(splits, cfg.window.length, cfg.window.hop)
    if len(prep.train) < 2 or len(prep.val) < 1:
        raise UserError(
            f"only {len(prep.train)} training and {len(prep.val)} validation windows of "
            f"{cfg.window.length} samples; provide a longer normal recording or lower window.length"
        )
    labels = None if prep.test_labels is None else np.asarray(prep.test_labels, np.int8)
    return DataStage(splits, outliers, prep, labels, data_section(cfg.data, splits, prep, outliers))


def front_end(cfg: Config, data: DataStage) -> Features:
    """The feature front-end (its log floors fitted on the training windows) applied to every split."""
    prep = data.prep
    n_ch = prep.train.shape[2]
    spec = build_spec(cfg.frontend, cfg.window.length, n_ch, float(prep.sample_rate_hz or 0.0))
    spec = fit_log_floor(spec, prep.train)
    featurize = extractor(spec)
    names = spec.feature_names(list(prep.channel_names))
    f_train = featurize(prep.train)
    constant = (
        check_features(prep.train.reshape(-1, n_ch), prep.channel_names, spec.kinds, warn)
        if spec.raw_only
        else check_features(f_train, names, spec.kinds, warn)
    )
    return Features(spec, featurize, f_train, featurize(prep.val), featurize(prep.test), names, constant)


def normalize(cfg: Config, data: DataStage, feats: Features) -> Normalized:
    """Fit the normalization on the normal training windows (per channel for raw, else per feature)."""
    from tinyae.train import data as datamod

    prep = data.prep
    if feats.spec.raw_only:  # per channel, over every sample of the training windows
        fitted = datamod.fit_normalization(
            prep.train, cfg.normalization.method, channel_names=prep.channel_names
        )
    else:  # per feature
        fitted = datamod.fit_normalization(
            feats.train, cfg.normalization.method, channel_names=feats.names, constant_ok=True
        )
    return normalized(feats, fitted.offset, fitted.scale)


def normalized(feats: Features, offset: np.ndarray, scale: np.ndarray, method: str = "") -> Normalized:
    """The network's float inputs of every split for these normalization constants ([P] each: per channel
    for the raw front-end, per feature otherwise); method: how they were obtained, when not by fitting
    the config's normalization.method."""
    offset, scale = np.asarray(offset, np.float32), np.asarray(scale, np.float32)
    return Normalized(
        offset,
        scale,
        _normalize(feats.train, offset, scale),
        _normalize(feats.val, offset, scale),
        _normalize(feats.test, offset, scale),
        method,
    )


def describe_data(cfg: Config, data: DataStage, feats: Features, normalization: str | None = None) -> None:
    """Print what was read: channels, rate, labels, split, outliers, front-end, and the normalization
    (default: the config's method, fitted)."""
    from tinyae.train import summary as words

    prep, sec = data.prep, data.section
    for line in (words.channels_line(sec), words.rate_line(sec), words.labels_line(sec)):
        if line:
            _say(line)
    _say(words.split_line(prep, data.labels))
    if data.outliers.count:
        warn(data.outliers.sentence())
    if data.outliers.unscreened:
        _say(f"outlier screen skipped for {', '.join(data.outliers.unscreened)} (interquartile range 0)")
    _say(
        f"data: {len(prep.train)} train / {len(prep.val)} val / {len(prep.test)} test windows of "
        f"{cfg.window.length}x{prep.train.shape[2]} (hop {cfg.window.hop}), front-end "
        f"{'+'.join(feats.spec.kinds)} -> {feats.spec.feature_size} features, "
        f"{normalization or cfg.normalization.method + ' normalization'}, {words.rate_line(sec)}"
    )


def build_model(cfg: Config, norm: Normalized) -> tuple[Any, int]:
    """The untrained Keras autoencoder (seeded) and its latent layer's index; TensorFlow's threads are set
    first (train.threads), before TensorFlow starts."""
    from tinyae.train.fit import use_threads
    from tinyae.train.model import build_autoencoder

    use_threads(cfg.train.threads)
    return build_autoencoder(norm.x_train.shape[1], cfg.model, seed=cfg.train.seed)


def fit_model(
    cfg: Config,
    norm: Normalized,
    model: Any,
    latent_index: int,
    show_progress: bool,
    callbacks: Sequence[Any] = (),
) -> Any:
    """Train build_model's autoencoder in place on the normalized windows; the History."""
    from tinyae.train.fit import fit

    return fit(
        model,
        latent_index,
        norm.x_train,
        norm.x_val,
        cfg.model,
        cfg.train,
        show_progress=show_progress,
        callbacks=callbacks,
    )


def train_float(
    cfg: Config, norm: Normalized, out_dir: Path, show_progress: bool, callbacks: Sequence[Any] = ()
) -> FloatModel:
    """Train the Keras autoencoder (saved as model.keras) and score validation/test in float."""
    from tinyae.train.model import encoder

    model, latent_index = build_model(cfg, norm)
    history = fit_model(cfg, norm, model, latent_index, show_progress, callbacks)
    model.save(out_dir / "model.keras")
    train_float_scores, _ = _float_scores(model, norm.x_train, cfg.train.loss)
    val_float, _ = _float_scores(model, norm.x_val, cfg.train.loss)
    test_float, test_recon = _float_scores(model, norm.x_test, cfg.train.loss)
    latent = encoder(model, latent_index).predict(norm.x_test, verbose=0) if len(norm.x_test) else None
    return FloatModel(model, history, train_float_scores, val_float, test_float, test_recon, latent)


def representative(cfg: Config, norm: Normalized) -> np.ndarray:
    """The converter's calibration windows: a seeded choice of normalized training windows, in their order,
    and (quantize.headroom > 1) the same windows scaled."""
    from tinyae.train.quantize import representative_set

    rng = np.random.default_rng(cfg.train.seed)
    rep_idx = rng.permutation(len(norm.x_train))[: cfg.quantize.representative_windows]
    return representative_set(norm.x_train[np.sort(rep_idx)], cfg.quantize.headroom)


def int8_flatbuffer(cfg: Config, model: Any, norm: Normalized) -> tuple[bytes, Any]:
    """The full-int8 TFLite flatbuffer of `model` and the weights choice (per-channel or per-tensor scales,
    from quantize.weights and the targets)."""
    from tinyae.train.boards import choose_weights
    from tinyae.train.quantize import convert

    weights = choose_weights(cfg.quantize.weights, cfg.quantize.targets)
    return convert(model, representative(cfg, norm), per_channel=weights.per_channel), weights


def quantize_model(cfg: Config, fm: FloatModel, norm: Normalized, out_dir: Path) -> Int8Model:
    """Full-int8 conversion on a representative set of training windows -> model_int8.tflite."""
    from tinyae.train.quantize import inspect

    flatbuffer, weights = int8_flatbuffer(cfg, fm.model, norm)
    path = out_dir / "model_int8.tflite"
    path.write_bytes(flatbuffer)
    qi = inspect(flatbuffer)
    _say(
        f"int8: {qi.size_bytes} B flatbuffer, ops {', '.join(qi.ops)}, "
        f"{weights.granularity.replace('_', '-')} weights ({weights.reason}), sha256 {qi.sha256[:12]}…"
    )
    return Int8Model(flatbuffer, path, qi, weights)


def host_reference(
    cfg: Config, feats: Features, norm: Normalized, flatbuffer: bytes, qi: Any, targets: Sequence[str]
) -> tuple[Any, Any, dict]:
    """(HostReference, input gain, each target's arithmetic): the device's preprocessing and scoring around
    the int8 network in the integer arithmetic the targets compute (train/int8, train/boards.py)."""
    from tinyae.train.boards import reference_arithmetic
    from tinyae.train.reference import HostReference

    gain = preprocess.input_gain(norm.scale, qi.input_scale)
    arithmetic, per_target = reference_arithmetic(list(targets))
    ref = HostReference(
        flatbuffer,
        offset=norm.offset,
        gain=gain,
        input_scale=qi.input_scale,
        input_zero_point=qi.input_zero_point,
        output_scale=qi.output_scale,
        output_zero_point=qi.output_zero_point,
        score_kind=cfg.train.loss,
        frontend=feats.featurize,
        arithmetic=arithmetic,
    )
    return ref, gain, per_target


def score_and_threshold(b: Built) -> Scored:
    """Host reference (device preprocessing + the int8 network in the arithmetic the model's targets compute,
    checked against tflite_micro) on train/val/test, the threshold on its int8 scores, the int8 input levels,
    and the on-site calibration constants (b.fm: the float model, whose scores get the same threshold method
    for comparison; None for an imported model)."""
    cfg, data, feats, norm, fm, q = b.cfg, b.data, b.feats, b.norm, b.fm, b.q
    from tinyae.train import calibration
    from tinyae.train.levels import input_levels, levels_warning

    qi, prep = q.info, data.prep
    ref, gain, per_target = host_reference(cfg, feats, norm, q.flatbuffer, qi, q.weights.targets)
    arithmetic = ref.arithmetic
    train_ref = ref.evaluate(prep.train)
    val_ref = ref.evaluate(prep.val)
    test_ref = ref.evaluate(prep.test)
    crosscheck = check_against_tflite_micro(
        q.flatbuffer, ref, np.concatenate([val_ref.input_q, test_ref.input_q])
    )
    reference = {
        "arithmetic": arithmetic.name,
        "description": arithmetic.description,
        "targets": per_target,
        "tflite_micro": crosscheck,
    }
    threshold = calibrate(
        cfg.threshold, val_ref.scores, test_ref.scores, data.labels, train_scores=train_ref.scores
    )
    float_threshold = (
        None
        if fm is None
        else calibrate(
            cfg.threshold, fm.val_scores, fm.test_scores, data.labels, train_scores=fm.train_scores
        )
    )
    for w in threshold.warnings:
        warn(w)
    r2 = reconstruction_r2(val_ref, qi)
    r2_warning = ""
    if r2 < 0:
        r2_warning = (
            f"the int8 network reconstructs the normal validation windows worse than their mean does "
            f"(R² = {r2:.3g}), so its scores say little: "
            + (
                "check that its inputs are made as in its training (front-end, window layout, normalization)"
                if fm is None
                else "train longer or change the model"
            )
        )
        warn(r2_warning)

    levels = input_levels(
        preprocess.quantize_features(feats.train, norm.offset, gain, qi.input_zero_point),
        feats.spec,
        prep.channel_names,
    )
    low = levels_warning(levels, cfg.normalization.min_levels)
    if low:
        warn(low)

    calib = calibration.build(
        cfg.calibration,
        cfg.threshold,
        prep.train,
        window_length=cfg.window.length,
        hop=cfg.window.hop,
        channel_names=list(prep.channel_names),
        factory_threshold=threshold.value,
        norm_offset=norm.offset,
        norm_gain=gain,
        in_scale=qi.input_scale,
        in_zero_point=qi.input_zero_point,
        normal_scores=normal_scores(cfg.threshold, val_ref.scores, train_ref.scores),
    )
    return Scored(
        ref,
        gain,
        train_ref,
        val_ref,
        test_ref,
        threshold,
        float_threshold,
        levels,
        low,
        r2,
        r2_warning,
        calib,
        reference,
    )


def reconstruction_r2(res, qi) -> float:  # type: ignore[no-untyped-def]
    """1 - SSE / SS of the int8 inputs around their per-feature mean, over the windows of `res` (dequantized,
    normalized units): 1 reconstructs perfectly, 0 is no better than the mean window, below 0 worse. NaN
    for fewer than two windows or inputs that do not vary."""
    if len(res.input_q) < 2:
        return float("nan")
    x = preprocess.dequantize(res.input_q, qi.input_scale, qi.input_zero_point).astype(np.float64)
    y = preprocess.dequantize(res.output_q, qi.output_scale, qi.output_zero_point).astype(np.float64)
    ss = float(((x - x.mean(axis=0)) ** 2).sum())
    return float("nan") if ss == 0 else 1.0 - float(((y - x) ** 2).sum()) / ss


def check_against_tflite_micro(flatbuffer: bytes, ref, input_q: np.ndarray) -> dict:  # type: ignore[no-untyped-def]
    """The host's NumPy network against TFLM's own kernels (the tflite_micro nightly) on the model's
    validation and test inputs: bit-exact when both form multipliers in double (else tinyae has a bug and
    says so), and how far the targets' arithmetic (`ref`'s) lands from the nightly's."""
    from tinyae.train.int8 import network
    from tinyae.train.int8.arithmetic import TFLITE_MICRO
    from tinyae.train.int8.lower import lower
    from tinyae.train.reference import HostReference
    from tinyae.train.tflite import read_tflite

    nightly = HostReference(
        flatbuffer, offset=ref.offset, gain=ref.gain, input_scale=ref.input_scale,
        input_zero_point=ref.input_zero_point, output_scale=ref.output_scale,
        output_zero_point=ref.output_zero_point, arithmetic=TFLITE_MICRO,
    )  # fmt: skip
    tflm = nightly.run_int8(input_q)
    mirror = network.run(lower(read_tflite(flatbuffer), TFLITE_MICRO), input_q)
    if not np.array_equal(tflm, mirror):
        w, e = (int(v) for v in np.argwhere(tflm != mirror)[0])
        raise RuntimeError(
            f"tinyae's int8 network disagrees with tflite_micro on window {w}, output {e} "
            f"({int(mirror[w, e])} vs {int(tflm[w, e])}) with the same multipliers: report this"
        )
    ours = ref.run_int8(input_q)
    diff = np.abs(ours.astype(np.int32) - tflm.astype(np.int32))
    return {
        "windows": len(input_q),
        "double_product_bit_exact": True,
        "windows_differing": int(np.sum(np.any(diff != 0, axis=1))),
        "elements_differing": int(np.sum(diff != 0)),
        "max_abs_lsb": int(diff.max(initial=0)),
    }


def measure_arena(q: Int8Model) -> int:
    """The TFLM tensor arena the model needs, measured on the host (bytes)."""
    from tinyae.train.arena import measure_arena_bytes

    return measure_arena_bytes(q.path)


def build_manifest(b: Built, sc: Scored, arena_host: int, compiled: dict) -> Manifest:
    """The typed manifest of a model trained here (b.fm) or imported (b.q.imported), docs/architecture.md,
    "Manifest"; the `model` section is read from the int8 graph either way."""
    cfg, command, inputs, data, feats, norm, fm, q = (
        b.cfg,
        b.command,
        b.inputs,
        b.data,
        b.feats,
        b.norm,
        b.fm,
        b.q,
    )
    prep, qi = data.prep, q.info
    rate = float(prep.sample_rate_hz or 0.0)
    fe = feats.spec.to_manifest(rate)
    return Manifest(
        generator=mf.Generator(tinyae=__version__, command=command),
        model=mf.ModelSection(
            sha256=qi.sha256,
            tflite_bytes=qi.size_bytes,
            ops=list(qi.ops),
            macs=qi.macs,
            params=qi.params,
            layers=[mf.Layer(int(la["units"]), str(la["activation"])) for la in qi.layers],
        ),
        window=mf.WindowSection(
            length=cfg.window.length,
            hop=cfg.window.hop,
            channels=prep.train.shape[2],
            channel_names=list(prep.channel_names),
            sample_rate_hz=rate,
        ),
        data=mf.section(mf.Data, data.section, "data"),
        built_from=mf.section(mf.BuiltFrom, inputs, "built_from"),
        frontend=mf.FrontendSection(
            kinds=fe["kinds"],
            feature_size=fe["feature_size"],
            sizes=fe["sizes"],
            feature_names=feats.names,
            constant_features=list(feats.constant),
            spectral=fe.get("spectral"),
            stats=fe.get("stats"),
        ),
        normalization=mf.Normalization(
            method=norm.method or cfg.normalization.method,
            per="channel" if feats.spec.raw_only else "feature",
            offset=[float(v) for v in norm.offset],
            scale=[float(v) for v in norm.scale],
        ),
        input=mf.InputSection(
            size=qi.input_size,
            layout="time_major" if feats.spec.raw_only else "features",
            scale=qi.input_scale,
            zero_point=qi.input_zero_point,
            gain=[float(v) for v in sc.gain],
        ),
        output=mf.OutputSection(size=qi.output_size, scale=qi.output_scale, zero_point=qi.output_zero_point),
        quantization=mf.section(mf.Quantization, q.weights.to_manifest(), "quantization"),
        reference=mf.section(mf.ReferenceSection, sc.reference, "reference"),
        score=mf.Score(kind=cfg.train.loss),
        threshold=mf.section(mf.ThresholdSection, sc.threshold.to_dict(), "threshold"),
        calibration=sc.calibration.to_manifest(),
        decision=mf.Decision(k=cfg.decision.k, n=cfg.decision.n),
        arena=mf.Arena(
            measured_bytes_host=arena_host,
            margin_bytes=cfg.arena.margin_bytes,
            bytes=_round_up(arena_host + cfg.arena.margin_bytes, 16),
        ),
        compiled=mf.section(mf.Compiled, compiled, "compiled"),
        metrics=mf.section(mf.Metrics, _metrics(cfg, data, fm, q, sc), "metrics"),
        training=None if fm is None else mf.section(mf.Training, fm.history.to_dict(), "training"),
        imported=None if q.imported is None else mf.section(mf.Imported, q.imported, "imported"),
        warnings=collected(),  # every warning the run printed, in order (train/warned.py)
    )


def _scores(data: DataStage, fm: FloatModel | None, sc: Scored) -> dict[str, np.ndarray]:
    """What `scores.npz` keeps for `tinyae threshold` and the report: the int8 and float scores of the
    training, validation and test windows (the float ones empty for an imported model, which has no float
    model), the test labels and faults, and each window's recording and number in it
    (train/data/splits.Origins), so the operating figures can be recomputed for any threshold."""
    prep = data.prep
    no_float = np.zeros(0, np.float32)
    out = {
        "train_scores": sc.train.scores,
        "train_float_scores": fm.train_scores if fm is not None else no_float,
        "val_scores": sc.val.scores,
        "val_float_scores": fm.val_scores if fm is not None else no_float,
        "test_scores": sc.test.scores,
        "test_float_scores": fm.test_scores if fm is not None else no_float,
        "test_labels": data.labels if data.labels is not None else np.zeros(0, np.int8),
        "test_faults": np.asarray(prep.test_faults, str)
        if prep.test_faults is not None
        else np.zeros(0, str),
    }
    for key, origins in (("val", prep.val_origins), ("test", prep.test_origins)):
        if origins is not None:
            out[f"{key}_recording"] = origins.recording
            out[f"{key}_position"] = origins.position
            out[f"{key}_recordings"] = np.asarray(origins.names, str)
    return out


def _operation(cfg: Config, data: DataStage, fm: FloatModel | None, sc: Scored) -> dict:
    from tinyae.train.operating import operation

    return operation(
        _scores(data, fm, sc),
        threshold=sc.threshold.value,
        k=cfg.decision.k,
        n=cfg.decision.n,
        sample_rate_hz=float(data.prep.sample_rate_hz or 0.0),
        hop=cfg.window.hop,
        length=cfg.window.length,
    )


def _metrics(cfg: Config, data: DataStage, fm: FloatModel | None, q: Int8Model, sc: Scored) -> dict:
    from tinyae.train import summary as words

    prep, labels = data.prep, data.labels
    metrics: dict = {"windows": {"train": len(prep.train), "val": len(prep.val), "test": len(prep.test)}}
    missing = words.missing_metrics_reason(labels, len(prep.test))
    if missing:
        metrics["missing_reason"] = missing
        _say(f"no detection metrics: {missing}")
    elif labels is not None:  # no reason given means the test split is labelled
        metrics["int8"] = summary(labels, sc.test.scores, sc.threshold.value)
        if fm is not None:
            metrics["float"] = summary(labels, fm.test_scores, sc.float_threshold.value)
            metrics["float"]["threshold"] = sc.float_threshold.value
        if prep.test_faults is not None:
            metrics["int8_by_fault"] = _by_fault(labels, sc.test.scores, prep.test_faults)
    metrics["val_false_alarm_rate_int8"] = float(np.mean(sc.val.scores > np.float32(sc.threshold.value)))
    if fm is not None:
        metrics["float_int8_score_corr"] = _corr(fm.test_scores, sc.test.scores)
    metrics["val_reconstruction_r2"] = sc.r2
    metrics["int8_input_levels"] = sc.levels
    metrics["int8_saturation"] = _saturation(sc.test, q.info, cfg.train.loss)
    metrics["operation"] = _operation(cfg, data, fm, sc)
    return metrics


def export_and_report(b: Built, out_dir: Path, sc: Scored, arena_host: int, t: Timings) -> Manifest:
    """The manifest, every artifact rendered from it (C headers, compiled engine, test vectors,
    scores), the report; writes manifest.json last."""
    cfg, command, data, norm, fm, q = b.cfg, b.command, b.data, b.norm, b.fm, b.q
    from tinyae.train.export import write_headers
    from tinyae.train.report import write_report

    tick = time.perf_counter()
    compiled = _generate_compiled(q.path, out_dir, command)
    manifest = build_manifest(b, sc, arena_host, compiled)
    write_headers(manifest, q.flatbuffer, out_dir)
    stream = _test_stream(data.splits.test)
    _write_test_vectors(out_dir, sc.ref, stream, data.prep.label_rule, sc.threshold.value, cfg)
    cfg.save(out_dir / "config.toml")
    scores = _scores(data, fm, sc)
    np.savez_compressed(out_dir / "scores.npz", allow_pickle=False, **scores)
    t.export = time.perf_counter() - tick

    tick = time.perf_counter()
    qi = q.info
    write_report(
        out_dir,
        manifest=manifest.to_dict(),
        history=fm.history if fm is not None else None,
        scores=scores,
        x_test=norm.x_test,
        recon_float=fm.test_recon if fm is not None else None,
        recon_int8=preprocess.dequantize(sc.test.output_q, qi.output_scale, qi.output_zero_point),
        latent=fm.latent if fm is not None else None,
        channel_names=list(data.prep.channel_names),
        faults=data.prep.test_faults,
        min_levels=cfg.normalization.min_levels,
    )
    t.report = time.perf_counter() - tick
    manifest.timings_s = {k: round(v, 2) for k, v in vars(t).items()}
    doc = manifest.to_dict()
    (out_dir / "metrics.json").write_text(json.dumps(doc["metrics"], indent=2) + "\n")
    manifest.write(out_dir / "manifest.json")
    return manifest


def _saturation(res, qi, kind: str) -> dict:  # type: ignore[no-untyped-def]
    """How often the int8 inputs/outputs of the test windows hit -128/127, and the score's ceiling.

    Inputs span (q - z_in) * s_in for q in -128..127 (normalized units), outputs likewise with the
    output scale; no window can score above the largest squared (mse) or absolute (mae) difference of
    the two ranges, so anomalies far outside the training range all score near that ceiling.
    """
    lo_in, hi_in = (-128 - qi.input_zero_point) * qi.input_scale, (127 - qi.input_zero_point) * qi.input_scale
    lo_out, hi_out = (
        (-128 - qi.output_zero_point) * qi.output_scale,
        (127 - qi.output_zero_point) * qi.output_scale,
    )
    d = max(abs(hi_out - lo_in), abs(hi_in - lo_out))
    clip = lambda q: ((q == -128) | (q == 127)).any(axis=1) if len(q) else np.zeros(0, bool)  # noqa: E731
    return {
        "input_range": [float(lo_in), float(hi_in)],
        "output_range": [float(lo_out), float(hi_out)],
        "score_ceiling": float(d * d if kind == "mse" else d),
        "test_windows": len(res.scores),
        "test_windows_input_clipped": int(clip(res.input_q).sum()),
        "test_windows_output_clipped": int(clip(res.output_q).sum()),
        "max_test_score": float(res.scores.max()) if len(res.scores) else 0.0,
    }


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation, NaN (without a NumPy warning) when either side does not vary."""
    if len(a) < 2 or np.std(a) == 0 or np.std(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def _round_up(n: int, k: int) -> int:
    return (n + k - 1) // k * k


def _by_fault(labels: np.ndarray, scores: np.ndarray, faults) -> dict:
    from tinyae.train.metrics import roc_auc

    faults = np.asarray(faults, dtype=object)
    normal = labels == 0
    out = {}
    for name in sorted({f for f, lab in zip(faults, labels, strict=True) if f and lab}):  # anomalous classes
        sel = normal | (faults == name)
        out[name] = round(roc_auc(labels[sel], scores[sel]), 4)
    return out


def _generate_compiled(tflite_path: Path, out_dir: Path, command: str) -> dict:
    """The compiled engine's C (model_compiled.h/.c) and its figures for the manifest."""
    from tinyae.train import compiled

    info = compiled.generate(tflite_path, out_dir, banner_command=command)
    return {k: v for k, v in info.items() if isinstance(v, int | float | str | list)}


@dataclass
class TestStream:
    """The test split as the device receives it from `verify`: one piece per recording (windows never span
    two), each with its per-sample labels."""

    series: list[np.ndarray]  # [T_i, C] float32 raw samples of recording i
    labels: list[np.ndarray] | None  # [T_i] per-sample labels, None without labels
    names: list[str]  # where each recording came from


def _test_stream(test_series: list) -> TestStream:
    if not test_series:
        raise UserError("the data source produced no test series to stream; check the data config")
    labs = [s.labels for s in test_series]
    return TestStream(
        [np.asarray(s.values, np.float32) for s in test_series],
        None if any(lab is None for lab in labs) else [np.asarray(lab, np.int8) for lab in labs],
        [str(getattr(s, "source", "") or f"test series {i}") for i, s in enumerate(test_series)],
    )


def _write_test_vectors(
    out_dir: Path, ref, stream: TestStream, label_rule: str, threshold: float, cfg: Config
) -> None:
    """Host-reference results for the test recordings, window for window as the device forms them: each
    recording streamed on its own (`verify` sends one piece per recording and the device's window state and
    alarm history start afresh with each), so the windows are the report's test windows."""
    from tinyae.train.data import make_windows, window_labels

    L, hop = cfg.window.length, cfg.window.hop
    parts = [make_windows(x, L, hop) for x in stream.series]
    windows = np.concatenate(parts).astype(np.float32)
    res = ref.evaluate(windows)
    piece = np.repeat(np.arange(len(parts)), [len(w) for w in parts]).astype(np.int32)
    an, alarm = preprocess.decisions_by_piece(res.scores, piece, threshold, cfg.decision.k, cfg.decision.n)
    win_labels = []
    if stream.labels is not None:
        win_labels = [window_labels(lab, L, hop, label_rule) for lab in stream.labels]
    np.savez_compressed(
        out_dir / "test_vectors.npz",
        series=np.concatenate(stream.series).astype(np.float32),
        series_lengths=np.asarray([len(x) for x in stream.series], np.int64),
        series_names=np.asarray(stream.names),
        series_labels=(
            np.concatenate(stream.labels).astype(np.int8)
            if stream.labels is not None
            else np.zeros(0, np.int8)
        ),
        windows=windows,
        window_series=piece,
        features=ref.features(windows),
        input_q=res.input_q,
        output_q=res.output_q,
        scores=res.scores,
        anomaly=an.astype(np.int8),
        alarm=alarm.astype(np.int8),
        labels=np.concatenate(win_labels).astype(np.int8) if win_labels else np.zeros(0, np.int8),
        threshold=np.float32(threshold),
        arithmetic=np.asarray(ref.arithmetic.name),
    )


def _operation_rows(op: dict) -> list[tuple[str, str]]:
    """The summary's operating figures (train/operating.py; report.html says them in sentences)."""
    from tinyae.train.findings import count, pct

    rows = []
    for key, name in (("validation", "false alarms (val)"), ("test", "false alarms (test)")):
        f = op.get(key) or {}
        if f.get("normal_windows") and f.get("false_alarms_per_day") is not None:
            band = f.get("per_hour_95")
            # none seen in a few minutes of data is a bound, not a promise of none
            rate = (f"< {count(24 * band[1])} a day" if f["false_alarms"] == 0 and band
                    else f"{count(f['false_alarms_per_day'])} a day")  # fmt: skip
            rows.append((name, f"{rate} ({f['false_alarms']} in {f['normal_windows']} normal windows)"))
    faults = op.get("faults") or []
    if faults:
        worst = min(faults, key=lambda f: f["caught_rate"] if f["caught_rate"] is not None else 1.0)
        rows.append(
            ("weakest fault (test)", f"{worst['fault']}: {pct(worst['caught_rate'])} of windows caught")
        )
    return rows


def print_summary(manifest: Manifest, out_dir: Path) -> None:
    from rich.console import Console

    m = manifest.metrics
    how = "tinyae import" if manifest.imported is not None else "tinyae model"
    table = terminal.table(title=f"{how} -> {out_dir}", show_header=True)
    table.add_column("figure")
    table.add_column("float", justify="right")
    table.add_column("int8", justify="right")
    if m.int8 is not None:
        for key in ("roc_auc", "pr_auc", "f1", "precision", "recall"):
            fl = f"{m.float_[key]:.4f}" if m.float_ is not None else "—"
            table.add_row(key, fl, f"{m.int8[key]:.4f}")
    elif m.missing_reason:
        table.add_row("detection metrics", "", f"none: {m.missing_reason}")
    rate = manifest.window.sample_rate_hz
    table.add_row(
        "sample rate", "", f"{rate:.6g} Hz ({manifest.data.sample_rate_origin})" if rate else "none"
    )
    table.add_row("threshold", "", f"{manifest.threshold.value:.6g} ({manifest.threshold.method})")
    for name, text in _operation_rows(m.operation or {}):
        table.add_row(name, "", text)
    table.add_row("model", "", f"{manifest.model.tflite_bytes} B, {manifest.model.macs} MACs")
    table.add_row("TFLM arena", "", f"{manifest.arena.bytes} B (host {manifest.arena.measured_bytes_host})")
    table.add_row("compiled scratch", "", f"{manifest.compiled.scratch_bytes} B")
    Console(stderr=True).print(table)
