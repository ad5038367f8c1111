"""`tinyae threshold`: move the anomaly threshold of a trained model without retraining.

The operating point is the user's choice (a false-alarm rate they can live with, a recall they need);
it should not cost a retrain. Training stores the int8 scores the device computes for the normal
validation windows and the test windows (`scores.npz`, with the test labels and float scores); this
command recalibrates on them with another method or parameter, then re-renders what the threshold
appears in: `model_config.h` (TAE_THRESHOLD), the manifest (threshold, metrics, generator), the test
vectors' decisions, the saved config and the report's threshold pictures. The network is not touched:
`model_int8.tflite` and its sha256, hence the device's model identity, stay the same, so a device
flashed with the old header keeps verifying its network (its threshold is set with `monitor
--threshold` or a rebuild).

Methods: percentile (`--percentile`, of the normal validation scores), mean_std (`--k-std`),
target_fpr (`--target-fpr`: the lowest threshold with at most that share of validation windows
above it), best_f1 (labelled test windows), value (`--value`, as given).
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import tomli_w

from tinyae.errors import UserError
from tinyae.train import preprocess
from tinyae.train.calibrate import Threshold, calibrate
from tinyae.train.config import THRESHOLD_METHODS, ThresholdConfig
from tinyae.train.manifest import Manifest, ThresholdSection, section
from tinyae.train.metrics import summary

METHODS = (*THRESHOLD_METHODS, "value")


def _config(method: str, percentile, k_std, target_fpr, value) -> ThresholdConfig:  # type: ignore[no-untyped-def]
    if method not in METHODS:
        raise UserError(f"--method {method!r} is not one of {', '.join(METHODS)}")
    needs = {"percentile": "percentile", "mean_std": "k_std", "target_fpr": "target_fpr", "value": "value"}
    given = {"percentile": percentile, "k_std": k_std, "target_fpr": target_fpr, "value": value}
    need = needs.get(method)
    if need and given[need] is None:
        flag = "--" + need.replace("_", "-")
        example = {"percentile": "99", "k_std": "1", "target_fpr": "0.01", "value": "0.5"}[need]
        raise UserError(f"--method {method} needs {flag}; e.g. {flag} {example}")
    extra = [k for k, v in given.items() if v is not None and k != need]
    if extra:
        raise UserError(f"--{extra[0].replace('_', '-')} does not apply to --method {method}; leave it out")
    cfg = ThresholdConfig(method=method if method != "value" else "percentile")
    if percentile is not None:
        if not 0 < percentile < 100:
            raise UserError(f"--percentile {percentile} must be between 0 and 100")
        cfg.percentile = percentile
    if k_std is not None:
        cfg.k_std = k_std
    if target_fpr is not None:
        if not 0 < target_fpr < 1:
            raise UserError(f"--target-fpr {target_fpr} must be between 0 and 1 (e.g. 0.01 for 1 %)")
        cfg.target_fpr = target_fpr
    if value is not None and not np.isfinite(np.float32(value)):
        raise UserError(f"--value {value} is not a finite float32; pass a score such as 0.5")
    return cfg


def recalibrate(
    model_dir: Path,
    method: str,
    *,
    percentile: float | None = None,
    k_std: float | None = None,
    target_fpr: float | None = None,
    value: float | None = None,
    command: str = "tinyae threshold",
    quiet: bool = False,
) -> Manifest:
    """Recalibrate model_dir's threshold (see the module docstring); returns the new manifest."""
    mpath = model_dir / "manifest.json"
    if not mpath.is_file():
        raise UserError(f"{mpath} does not exist; train a model first (make model)")
    manifest = Manifest.load(mpath)
    spath = model_dir / "scores.npz"
    if not spath.is_file():
        raise UserError(
            f"{spath} is missing (the model was trained by an older tinyae); retrain it once with make model"
        )
    cfg = _config(method, percentile, k_std, target_fpr, value)
    with np.load(spath) as z:
        scores = {k: z[k] for k in z.files}
    labels = scores["test_labels"] if len(scores["test_labels"]) else None
    old = manifest.threshold.value
    has_float = len(scores["val_float_scores"]) > 0  # an imported model has no float scores
    if method == "value":
        assert value is not None
        thr = Threshold(float(np.float32(value)), "value", {"windows": len(scores["val_scores"])})
        float_thr = thr
    else:
        thr = calibrate(cfg, scores["val_scores"], scores["test_scores"], labels)
        float_thr = (
            calibrate(cfg, scores["val_float_scores"], scores["test_float_scores"], labels)
            if has_float
            else None
        )
    manifest.threshold = section(ThresholdSection, {**thr.to_dict(), "command": command}, "threshold")
    manifest.generator.threshold_command = command
    metrics = manifest.metrics
    if metrics.int8 is not None and labels is not None:
        metrics.int8 = summary(labels, scores["test_scores"], thr.value)
        if has_float and float_thr is not None:
            metrics.float_ = {
                **summary(labels, scores["test_float_scores"], float_thr.value),
                "threshold": float_thr.value,
            }
    metrics.val_false_alarm_rate_int8 = float(np.mean(scores["val_scores"] > np.float32(thr.value)))
    _write_everything(model_dir, manifest, thr, cfg, method, value)
    from tinyae.train.report import rewrite_threshold_parts

    rewrite_threshold_parts(model_dir, manifest.to_dict(), scores)
    if not quiet:
        _print(manifest, old, model_dir)
    return manifest


def _write_everything(model_dir: Path, manifest: Manifest, thr: Threshold, cfg, method: str, value) -> None:  # type: ignore[no-untyped-def]
    from tinyae.train.export import write_headers
    from tinyae.train.tflite import load_tflite

    write_headers(manifest, load_tflite(model_dir / "model_int8.tflite"), model_dir)
    vec = model_dir / "test_vectors.npz"
    if vec.is_file():
        with np.load(vec) as z:
            data = {k: z[k] for k in z.files}
        d = manifest.decision
        an, alarm = preprocess.decisions_by_piece(
            data["scores"], data.get("window_series"), thr.value, d.k, d.n
        )
        data.update(anomaly=an.astype(np.int8), alarm=alarm.astype(np.int8), threshold=np.float32(thr.value))
        np.savez_compressed(vec, **data)
    used = model_dir / "config.toml"
    if used.is_file():
        raw = tomllib.loads(used.read_text())
        section = raw.setdefault("threshold", {})
        if method == "value":
            section["method"] = "percentile"
            section["note"] = f"set by hand to {value!r} with tinyae threshold"
        else:
            section.update(
                method=cfg.method, percentile=cfg.percentile, k_std=cfg.k_std, target_fpr=cfg.target_fpr
            )
            section.pop("note", None)
        used.write_text(tomli_w.dumps(raw))
    (model_dir / "metrics.json").write_text(json.dumps(manifest.to_dict()["metrics"], indent=2) + "\n")
    manifest.write(model_dir / "manifest.json")


def _print(manifest: Manifest, old: float, model_dir: Path) -> None:
    from rich.console import Console

    con = Console(stderr=True, highlight=False)
    thr = manifest.threshold
    m = manifest.metrics
    line = (
        f"threshold {old:.6g} -> {thr.value:.6g} ({thr.method}); validation false-alarm rate "
        f"{m.val_false_alarm_rate_int8:.4g}"
    )
    if m.int8 is not None:
        i = m.int8
        line += f"; test precision {i['precision']:.3f}, recall {i['recall']:.3f}, F1 {i['f1']:.3f}"
    con.print(f"[bold cyan]tinyae[/] {line}")
    for w in thr.warnings:
        con.print(f"[bold yellow]warning:[/] {w}")
    con.print(
        f"[bold cyan]tinyae[/] rewrote {model_dir}/model_config.h, "
        "manifest.json, test_vectors.npz, report.html "
        f"(model sha256 unchanged: {manifest.model.sha256[:12]}…); rebuild the firmware to flash it"
    )
