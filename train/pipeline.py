"""The whole training job: data -> float model -> int8 -> host reference -> threshold -> artifacts.

Each stage writes its artifacts to the model directory; `manifest.json` is the single source of truth
every generated header and the firmware are rendered from.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from train import __version__, preprocess
from train.calibrate import calibrate
from train.config import Config
from train.errors import UserError
from train.frontend import build_spec, extractor
from train.frontend.fit import check_features, fit_log_floor
from train.metrics import summary

STAGE_STYLE = "[bold cyan]"


def _say(msg: str) -> None:
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True, highlight=False).print(f"{STAGE_STYLE}tinyae[/] {escape(msg)}")


def _warn(msg: str) -> None:
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True, highlight=False).print(f"[bold yellow]warning:[/] {escape(msg)}")


def _require_rate(splits, source: str) -> None:  # type: ignore[no-untyped-def]
    """A file-based source must give a sample rate (timestamps or data.sample_rate_hz)."""
    if splits.sample_rate_hz and splits.sample_rate_hz > 0:
        return
    if source.strip().lower() in ("csv", "ucr"):
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


def run(
    cfg: Config,
    out_dir: Path,
    command: str,
    *,
    show_progress: bool = True,
    config_file: str | None = None,
    callbacks: Sequence[Any] = (),
) -> dict:
    """Run every stage and return the manifest (also written to out_dir/manifest.json).

    callbacks: Keras callbacks for the training (train.fit.fit), e.g. keras.callbacks.CSVLogger.
    """
    from train import data as datamod
    from train.inputs import built_from

    inputs = built_from(cfg, config_file)  # before anything runs: what this model is built from
    out_dir.mkdir(parents=True, exist_ok=True)
    t = Timings()
    tick = time.perf_counter()

    # -- data ------------------------------------------------------------------------------
    from train.data.outliers import screen
    from train.data.settings import data_section
    from train.data.splits import prepare_splits
    from train.progress import file_progress

    with file_progress(show_progress) as reading:
        splits = datamod.load_source(cfg.data, cfg.window.length, progress=reading)
    _require_rate(splits, cfg.data.source)
    splits, outliers = screen(splits, cfg.normalization.outlier_iqr, cfg.normalization.outliers)
    prep = prepare_splits(splits, cfg.window.length, cfg.window.hop)
    if len(prep.train) < 2 or len(prep.val) < 1:
        raise UserError(
            f"only {len(prep.train)} training and {len(prep.val)} validation windows of "
            f"{cfg.window.length} samples; provide a longer normal recording or a shorter window"
        )
    n_ch = prep.train.shape[2]
    fe_spec = build_spec(cfg.frontend, cfg.window.length, n_ch, float(prep.sample_rate_hz or 0.0))
    fe_spec = fit_log_floor(fe_spec, prep.train)
    featurize = extractor(fe_spec)
    f_train, f_val, f_test = featurize(prep.train), featurize(prep.val), featurize(prep.test)
    feature_names = fe_spec.feature_names(list(prep.channel_names))
    constant = (
        check_features(prep.train.reshape(-1, n_ch), prep.channel_names, fe_spec.kinds, _say)
        if fe_spec.raw_only
        else check_features(f_train, feature_names, fe_spec.kinds, _say)
    )
    if fe_spec.raw_only:  # per channel, over every sample of the training windows
        norm = datamod.fit_normalization(
            prep.train, cfg.normalization.method, channel_names=prep.channel_names
        )
    else:  # per feature
        norm = datamod.fit_normalization(
            f_train, cfg.normalization.method, channel_names=feature_names, constant_ok=True
        )
    offset, scale = norm.offset.astype(np.float32), norm.scale.astype(np.float32)
    x_train = _normalize(f_train, offset, scale)
    x_val = _normalize(f_val, offset, scale)
    x_test = _normalize(f_test, offset, scale)
    labels = None if prep.test_labels is None else np.asarray(prep.test_labels, np.int8)
    t.data = time.perf_counter() - tick
    data = data_section(cfg.data, splits, prep, outliers)
    from train import summary as words

    for line in (words.channels_line(data), words.rate_line(data), words.labels_line(data)):
        if line:
            _say(line)
    _say(words.split_line(prep, labels))
    if outliers.count:
        _warn(outliers.sentence())
    if outliers.unscreened:
        _say(f"outlier screen skipped for {', '.join(outliers.unscreened)} (interquartile range 0)")
    _say(
        f"data: {len(prep.train)} train / {len(prep.val)} val / {len(prep.test)} test windows of "
        f"{cfg.window.length}x{n_ch} (hop {cfg.window.hop}), front-end {'+'.join(fe_spec.kinds)} -> "
        f"{fe_spec.feature_size} features, {cfg.normalization.method} normalization, "
        f"{words.rate_line(data)}"
    )

    # -- float model -----------------------------------------------------------------------
    from train.fit import fit
    from train.model import build_autoencoder, encoder, macs

    tick = time.perf_counter()
    model, latent_index = build_autoencoder(x_train.shape[1], cfg.model, seed=cfg.train.seed)
    history = fit(
        model,
        latent_index,
        x_train,
        x_val,
        cfg.model,
        cfg.train,
        show_progress=show_progress,
        callbacks=callbacks,
    )
    t.training = time.perf_counter() - tick
    model.save(out_dir / "model.keras")
    val_float, _ = _float_scores(model, x_val, cfg.train.loss)
    test_float, test_recon_float = _float_scores(model, x_test, cfg.train.loss)
    latent = encoder(model, latent_index).predict(x_test, verbose=0) if len(x_test) else None

    # -- int8 ------------------------------------------------------------------------------
    from train.boards import choose_weights
    from train.quantize import convert, inspect, representative_set

    tick = time.perf_counter()
    weights = choose_weights(cfg.quantize.weights, cfg.quantize.targets)
    rng = np.random.default_rng(cfg.train.seed)
    rep_idx = rng.permutation(len(x_train))[: cfg.quantize.representative_windows]
    flatbuffer = convert(
        model,
        representative_set(x_train[np.sort(rep_idx)], cfg.quantize.headroom),
        per_channel=weights.per_channel,
    )
    tflite_path = out_dir / "model_int8.tflite"
    tflite_path.write_bytes(flatbuffer)
    qi = inspect(flatbuffer)
    t.conversion = time.perf_counter() - tick
    _say(
        f"int8: {qi.size_bytes} B flatbuffer, ops {', '.join(qi.ops)}, "
        f"{weights.granularity.replace('_', '-')} weights ({weights.reason}), sha256 {qi.sha256[:12]}…"
    )

    # -- host reference and threshold ------------------------------------------------------
    from train.reference import HostReference

    tick = time.perf_counter()
    gain = preprocess.input_gain(scale, qi.input_scale)
    ref = HostReference(
        flatbuffer,
        offset=offset,
        gain=gain,
        input_scale=qi.input_scale,
        input_zero_point=qi.input_zero_point,
        output_scale=qi.output_scale,
        output_zero_point=qi.output_zero_point,
        score_kind=cfg.train.loss,
        frontend=featurize,
    )
    val_ref = ref.evaluate(prep.val)
    test_ref = ref.evaluate(prep.test)
    t.reference = time.perf_counter() - tick
    threshold = calibrate(cfg.threshold, val_ref.scores, test_ref.scores, labels)
    float_threshold = calibrate(cfg.threshold, val_float, test_float, labels)
    for w in threshold.warnings:
        _warn(w)
    from train.levels import input_levels, levels_warning

    levels = input_levels(
        preprocess.quantize_features(f_train, offset, gain, qi.input_zero_point), fe_spec, prep.channel_names
    )
    low = levels_warning(levels, cfg.normalization.min_levels)
    if low:
        _warn(low)
    from train import calibration

    calib = calibration.build(
        cfg.calibration,
        cfg.threshold,
        prep.train,
        window_length=cfg.window.length,
        hop=cfg.window.hop,
        channel_names=list(prep.channel_names),
        factory_threshold=threshold.value,
        norm_offset=offset,
        norm_gain=gain,
        in_scale=qi.input_scale,
        in_zero_point=qi.input_zero_point,
    )

    # -- arena -----------------------------------------------------------------------------
    from train.arena import measure_arena_bytes

    tick = time.perf_counter()
    arena_host = measure_arena_bytes(tflite_path)
    t.arena = time.perf_counter() - tick

    # -- manifest --------------------------------------------------------------------------
    metrics: dict = {"windows": {"train": len(prep.train), "val": len(prep.val), "test": len(prep.test)}}
    missing = words.missing_metrics_reason(labels, len(prep.test))
    if missing:
        metrics["missing_reason"] = missing
        _say(f"no detection metrics: {missing}")
    else:
        metrics["float"] = summary(labels, test_float, float_threshold.value)
        metrics["int8"] = summary(labels, test_ref.scores, threshold.value)
        metrics["float"]["threshold"] = float_threshold.value
        if prep.test_faults is not None:
            metrics["int8_by_fault"] = _by_fault(labels, test_ref.scores, prep.test_faults)
    metrics["val_false_alarm_rate_int8"] = float(np.mean(val_ref.scores > np.float32(threshold.value)))
    metrics["float_int8_score_corr"] = _corr(test_float, test_ref.scores)
    metrics["int8_input_levels"] = levels
    metrics["int8_saturation"] = _saturation(test_ref, qi, cfg.train.loss)
    manifest = {
        "schema": 1,
        "generator": {"tinyae": __version__, "command": command},
        "model": {
            "sha256": qi.sha256,
            "tflite_bytes": qi.size_bytes,
            "ops": qi.ops,
            "macs": macs(model),
            "params": int(model.count_params()),
            "layers": [
                {"units": int(layer.units), "activation": _activation_name(layer)} for layer in model.layers
            ],
        },
        "window": {
            "length": cfg.window.length,
            "hop": cfg.window.hop,
            "channels": n_ch,
            "channel_names": list(prep.channel_names),
            "sample_rate_hz": float(prep.sample_rate_hz or 0.0),
        },
        "data": data,
        "built_from": inputs,
        "frontend": {
            **fe_spec.to_manifest(float(prep.sample_rate_hz or 0.0)),
            "feature_names": feature_names,
            "constant_features": constant,
        },
        "normalization": {
            "method": cfg.normalization.method,
            "per": "channel" if fe_spec.raw_only else "feature",
            "offset": [float(v) for v in offset],
            "scale": [float(v) for v in scale],
        },
        "input": {
            "size": qi.input_size,
            "layout": "time_major" if fe_spec.raw_only else "features",
            "scale": qi.input_scale,
            "zero_point": qi.input_zero_point,
            "gain": [float(v) for v in gain],
        },
        "output": {"size": qi.output_size, "scale": qi.output_scale, "zero_point": qi.output_zero_point},
        "quantization": weights.to_manifest(),
        "score": {"kind": cfg.train.loss},
        "threshold": threshold.to_dict(),
        "calibration": calib.to_manifest(),
        "decision": {"k": cfg.decision.k, "n": cfg.decision.n},
        "arena": {
            "measured_bytes_host": arena_host,
            "margin_bytes": cfg.arena.margin_bytes,
            "bytes": _round_up(arena_host + cfg.arena.margin_bytes, 16),
        },
        "training": history.to_dict(),
        "metrics": metrics,
        "warnings": [w for w in (outliers.sentence(), low) if w],
    }

    # -- artifacts -------------------------------------------------------------------------
    from train.export import write_headers

    tick = time.perf_counter()
    manifest["compiled"] = _generate_compiled(tflite_path, out_dir, command)
    write_headers(manifest, flatbuffer, out_dir)
    stream = _test_stream(splits.test)
    _write_test_vectors(out_dir, ref, stream, prep.label_rule, threshold.value, cfg)
    cfg.save(out_dir / "config.toml")
    np.savez_compressed(
        out_dir / "scores.npz",
        val_scores=val_ref.scores,
        val_float_scores=val_float,
        test_scores=test_ref.scores,
        test_float_scores=test_float,
        test_labels=labels if labels is not None else np.zeros(0, np.int8),
    )
    t.export = time.perf_counter() - tick

    from train.report import write_report

    tick = time.perf_counter()
    write_report(
        out_dir,
        manifest=manifest,
        history=history,
        val_scores=val_ref.scores,
        test_scores=test_ref.scores,
        test_float_scores=test_float,
        labels=labels,
        x_test=x_test,
        recon_float=test_recon_float,
        recon_int8=preprocess.dequantize(test_ref.output_q, qi.output_scale, qi.output_zero_point),
        latent=latent,
        channel_names=list(prep.channel_names),
        faults=prep.test_faults,
        min_levels=cfg.normalization.min_levels,
    )
    t.report = time.perf_counter() - tick
    manifest["timings_s"] = {k: round(v, 2) for k, v in vars(t).items()}
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    _print_summary(manifest, out_dir)
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


def _activation_name(layer) -> str:
    act = getattr(layer, "activation", None)
    return getattr(act, "__name__", str(act))


def _round_up(n: int, k: int) -> int:
    return (n + k - 1) // k * k


def _by_fault(labels: np.ndarray, scores: np.ndarray, faults) -> dict:
    from train.metrics import roc_auc

    faults = np.asarray(faults, dtype=object)
    normal = labels == 0
    out = {}
    for name in sorted({f for f in faults if f and f != "normal"}):
        sel = normal | (faults == name)
        out[name] = round(roc_auc(labels[sel], scores[sel]), 4)
    return out


def _generate_compiled(tflite_path: Path, out_dir: Path, command: str) -> dict:
    """The compiled engine's C (model_compiled.h/.c) and its figures for the manifest."""
    from train import compiled

    info = compiled.generate(tflite_path, out_dir, banner_command=command)
    return {k: v for k, v in info.items() if isinstance(v, int | float | str | list)}


@dataclass
class TestStream:
    series: np.ndarray  # [T, C] float32 raw samples, streamed to the device
    labels: np.ndarray | None  # [T] per-sample labels


def _test_stream(test_series: list) -> TestStream:
    """The test split as one sample stream (what `verify` sends) and its per-sample labels.

    Several test series are concatenated; windows that straddle a junction are still computed the
    same way on both sides, so they verify the device like any other window.
    """
    if not test_series:
        raise UserError("the data source produced no test series to stream; check the data config")
    values = np.concatenate([s.values for s in test_series]).astype(np.float32)
    labs = [s.labels for s in test_series]
    labels = None if any(lab is None for lab in labs) else np.concatenate(labs).astype(np.int8)
    return TestStream(values, labels)


def _write_test_vectors(
    out_dir: Path, ref, stream: TestStream, label_rule: str, threshold: float, cfg: Config
) -> None:
    """Host-reference results for the streamed test series, window for window, as the device sees it."""
    from train.data import make_windows, window_labels

    windows = make_windows(stream.series, cfg.window.length, cfg.window.hop)
    res = ref.evaluate(windows)
    an, alarm = preprocess.decisions(res.scores, threshold, cfg.decision.k, cfg.decision.n)
    win_labels = (
        window_labels(stream.labels, cfg.window.length, cfg.window.hop, label_rule)
        if stream.labels is not None
        else np.zeros(0, np.int8)
    )
    np.savez_compressed(
        out_dir / "test_vectors.npz",
        series=stream.series,
        series_labels=stream.labels if stream.labels is not None else np.zeros(0, np.int8),
        windows=windows.astype(np.float32),
        features=ref.features(windows),
        input_q=res.input_q,
        output_q=res.output_q,
        scores=res.scores,
        anomaly=an.astype(np.int8),
        alarm=alarm.astype(np.int8),
        labels=win_labels.astype(np.int8),
        threshold=np.float32(threshold),
    )


def _print_summary(manifest: dict, out_dir: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    m = manifest["metrics"]
    table = Table(title=f"tinyae model -> {out_dir}", show_header=True)
    table.add_column("figure")
    table.add_column("float", justify="right")
    table.add_column("int8", justify="right")
    if "int8" in m:
        for key in ("roc_auc", "pr_auc", "f1", "precision", "recall"):
            table.add_row(key, f"{m['float'][key]:.4f}", f"{m['int8'][key]:.4f}")
    elif m.get("missing_reason"):
        table.add_row("detection metrics", "", f"none: {m['missing_reason']}")
    rate = manifest["window"]["sample_rate_hz"]
    table.add_row(
        "sample rate", "", f"{rate:.6g} Hz ({manifest['data']['sample_rate_origin']})" if rate else "none"
    )
    table.add_row(
        "threshold", "", f"{manifest['threshold']['value']:.6g} ({manifest['threshold']['method']})"
    )
    table.add_row("model", "", f"{manifest['model']['tflite_bytes']} B, {manifest['model']['macs']} MACs")
    table.add_row(
        "TFLM arena", "", f"{manifest['arena']['bytes']} B (host {manifest['arena']['measured_bytes_host']})"
    )
    if manifest.get("compiled"):
        table.add_row("compiled scratch", "", f"{manifest['compiled'].get('scratch_bytes', '?')} B")
    Console(stderr=True).print(table)
