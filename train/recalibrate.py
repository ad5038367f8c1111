"""`tinyae threshold`: move the anomaly threshold of a trained model without retraining.

The operating point is the user's choice (a false-alarm rate they can live with, a recall they need);
it should not cost a retrain. Training stores the int8 scores the device computes for the normal
validation windows and the test windows (`scores.npz`, with the test labels and float scores); this
command recalibrates on them with another method or parameter, then re-renders what the threshold
appears in: `model_config.h` (TAE_THRESHOLD and the on-site calibration's constants derived from it:
its bounds, method and TAE_CALIB_CONFIG_CRC), the manifest (threshold, calibration, metrics, generator), the test
vectors' decisions, the saved config and the report's threshold pictures. The network is not touched:
`model_int8.tflite` and its sha256, hence the device's model identity, stay the same, so a device
flashed with the old header keeps verifying its network (its threshold is set with `monitor
--threshold` or a rebuild).

Methods (train/calibrate.py): percentile (`--percentile`), mean_std (`--k-std`), mad (`--k-mad`: median
+ k x MAD), pot (`--pot-risk`, `--pot-quantile`: a generalized Pareto tail), target_fpr (`--target-fpr`:
the lowest threshold with at most that share of normal windows above it), each on the normal validation
windows' scores or, with `--scores training+validation`, the training windows' too (`--factor` scales
percentile, mean_std, mad, upper_mad and pot); best_f1 (labelled test windows: an oracle); value (`--value`, as
given).
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import tomli_w

from tinyae import atomic, f32
from tinyae.errors import UserError
from tinyae.train import preprocess
from tinyae.train.calibrate import Threshold, calibrate, normal_scores
from tinyae.train.config import THRESHOLD_METHODS, ThresholdConfig, check_value
from tinyae.train.manifest import Manifest, ThresholdSection, section
from tinyae.train.metrics import summary
from tinyae.train.operating import operation
from tinyae.train.warned import replace

METHODS = (*THRESHOLD_METHODS, "value")


# per method: the option it needs (None: none), and the options it also takes
NEEDS = {
    "percentile": "percentile",
    "mean_std": "k_std",
    "mad": "k_mad",
    "upper_mad": "k_upper_mad",
    "pot": "pot_risk",
    "target_fpr": "target_fpr",
    "best_f1": None,
    "value": "value",
}
TAKES = {
    "percentile": ("factor", "scores"),
    "mean_std": ("factor", "scores"),
    "mad": ("factor", "scores"),
    "upper_mad": ("factor", "scores"),
    "pot": ("pot_quantile", "factor", "scores"),
    "target_fpr": ("scores",),
    "best_f1": (),
    "value": (),
}
EXAMPLES = {
    "percentile": "99", "k_std": "3", "k_mad": "7", "k_upper_mad": "4", "pot_risk": "0.001", "target_fpr": "0.01",
    "value": "0.5",
}  # fmt: skip


def _config(method: str, given: dict) -> ThresholdConfig:  # type: ignore[type-arg]
    """The ThresholdConfig of `tinyae threshold --method METHOD` and its options (None = not given)."""
    if method not in METHODS:
        raise UserError(f"--method {method!r} is not one of {', '.join(METHODS)}")
    need = NEEDS[method]
    if need and given.get(need) is None:
        flag = "--" + need.replace("_", "-")
        raise UserError(f"--method {method} needs {flag}; e.g. {flag} {EXAMPLES[need]}")
    extra = [k for k, v in given.items() if v is not None and k != need and k not in TAKES[method]]
    if extra:
        raise UserError(f"--{extra[0].replace('_', '-')} does not apply to --method {method}; leave it out")
    cfg = ThresholdConfig(method=method if method != "value" else "percentile")
    for key, v in given.items():  # the config keys' own bounds (tinyae.train.config), named as options
        if v is not None and key != "value":
            setattr(cfg, key, check_value(f"threshold.{key}", v, "--" + key.replace("_", "-")))
    value = given.get("value")
    if value is not None:
        wrong = f32.problem(float(value), positive=True)
        if wrong:
            raise UserError(f"--value {value!r} {wrong}; pass a score such as 0.5")
    return cfg


def recalibrate(
    model_dir: Path,
    method: str,
    *,
    command: str = "tinyae threshold",
    quiet: bool = False,
    **options: float | str | None,
) -> Manifest:
    """Recalibrate model_dir's threshold (see the module docstring); returns the new manifest.

    options: the method's settings by their [threshold] names (percentile, k_std, k_mad, k_upper_mad, pot_risk,
    pot_quantile, factor, target_fpr, scores) and `value` for method value; None = not given.

    Every file is rewritten in a copy of model_dir that replaces it at the end (tinyae/atomic.py): an
    interruption or a write error leaves the model as it was, never a new header with an old manifest."""
    mpath = model_dir / "manifest.json"
    if not mpath.is_file():
        raise UserError(f"{mpath} does not exist; train a model first (make model)")
    Manifest.load(mpath)  # a manifest it refuses is named by its own path, not the staging copy's
    with atomic.replace_dir(model_dir, what="another --model-dir") as stage:
        manifest, old, raised = _recalibrate(stage, method, command, options)
    if not quiet:
        _print(manifest, old, model_dir, raised)
    return manifest


def _recalibrate(
    model_dir: Path, method: str, command: str, options: dict[str, float | str | None]
) -> tuple[Manifest, float, str | None]:
    manifest = Manifest.load(model_dir / "manifest.json")
    spath = model_dir / "scores.npz"
    if not spath.is_file():
        raise UserError(
            f"{spath} is missing (the model was trained by an older tinyae); retrain it once with make model"
        )
    cfg = _config(method, options)
    value = options.get("value")
    with np.load(spath) as z:
        scores = {k: z[k] for k in z.files}
    labels = scores["test_labels"] if len(scores["test_labels"]) else None
    old = manifest.threshold.value
    if cfg.scores != "validation" and "train_scores" not in scores:
        raise UserError(
            f"{spath} has no training-window scores (the model was trained by an older tinyae); retrain it "
            "once with make model, or pass --scores validation"
        )
    why = f"set by `{command}`"
    old_warnings = list(manifest.threshold.warnings)
    has_float = len(scores["val_float_scores"]) > 0  # an imported model has no float scores
    float_thr: Threshold | None
    if method == "value":
        assert value is not None
        thr = Threshold(float(np.float32(float(value))), "value", {"windows": len(scores["val_scores"])})
        float_thr = thr
    else:
        thr = calibrate(
            cfg, scores["val_scores"], scores["test_scores"], labels, train_scores=scores.get("train_scores")
        )
        float_thr = (
            calibrate(
                cfg,
                scores["val_float_scores"],
                scores["test_float_scores"],
                labels,
                train_scores=scores.get("train_float_scores"),
            )
            if has_float
            else None
        )
    if method == "best_f1":
        why += ": the best F1 on the labelled test windows, an oracle (it read the test labels)"
    thr.reason = why
    manifest.calibration, raised = _calibration(
        manifest,
        thr.value,
        cfg if method != "value" else None,
        normal_scores(cfg, scores["val_scores"], scores.get("train_scores")),
    )
    manifest.threshold = section(ThresholdSection, {**thr.to_dict(), "command": command}, "threshold")
    manifest.warnings = replace(manifest.warnings, old_warnings, thr.warnings)  # one list (train/warned.py)
    manifest.generator.threshold_command = command
    # `make` no longer rebuilds it from a config alone (train/inputs.py); the last threshold is what counts
    done = manifest.built_from.changed_by
    manifest.built_from.changed_by = [c for c in done if not c.startswith("tinyae threshold")] + [command]
    metrics = manifest.metrics
    if metrics.int8 is not None and labels is not None:
        metrics.int8 = summary(labels, scores["test_scores"], thr.value)
        if has_float and float_thr is not None:
            metrics.float_ = {
                **summary(labels, scores["test_float_scores"], float_thr.value),
                "threshold": float_thr.value,
            }
    metrics.val_false_alarm_rate_int8 = float(np.mean(scores["val_scores"] > np.float32(thr.value)))
    w = manifest.window
    metrics.operation = operation(
        scores, threshold=thr.value, k=manifest.decision.k, n=manifest.decision.n,
        sample_rate_hz=w.sample_rate_hz, hop=w.hop, length=w.length,
    )  # fmt: skip
    _write_everything(model_dir, manifest, thr, cfg, method, value)
    if raised is not None:
        _raise_windows(model_dir, manifest.calibration["windows"])
    from tinyae.train.report import rewrite_threshold_parts

    rewrite_threshold_parts(model_dir, manifest.to_dict(), scores)
    return manifest, old, raised


def _calibration(
    manifest: Manifest, threshold: float, cfg: ThresholdConfig | None, normal: np.ndarray
) -> tuple[dict, str | None]:
    """The on-site calibration section under the new factory threshold: every bound derived from it
    (and the CRC a record carries) recomputed in one place (CalibSpec.rederive); with
    calibration.threshold = "model" the on-site method follows the new method too (cfg None: a value
    set by hand), a hand-set value, mad, upper_mad and pot as mean + k std with the k that gives the new
    threshold on the normal scores it was set from (`normal`), their threshold
    rule measured on those scores. When the new method needs more windows per phase than
    calibration.windows, the capacity rises to that minimum and the sentence that says so is returned
    (the firmware is rebuilt for the new threshold anyway)."""
    from tinyae.train.calibration.minimum import MAPPED, device_method, scores_rule, threshold_rule
    from tinyae.train.calibration.spec import manifest_quant

    spec = manifest.calib_spec()
    changes: dict = {"factory_threshold": threshold}
    raised = None
    hand_k = _hand_k(threshold, normal) if spec.setting == "model" and cfg is None else None
    if hand_k is not None:
        # a value set by hand has no on-site method of its own: mean + k std with the k that gives it on
        # the normal scores, as for mad and pot (keeping the old k would move a site's threshold back
        # towards the old value)
        k_std = hand_k
        changes |= {"method": "mean_std", "k_std": float(np.float32(k_std))}
        changes["method_source"] = (
            f"a threshold set by hand (tinyae threshold --method value): mean + {k_std:g} std of the site's "
            "scores, the k that gives it on the factory's normal scores"
        )
        rule = scores_rule(normal, k_std, threshold, "a hand-set threshold")
        changes |= {"scores_windows": rule.windows, "scores_why": rule.why}
    elif spec.setting == "model" and cfg is not None:
        method, percentile, k_std, source = device_method("model", cfg, threshold, normal)
        changes |= {"method": method, "percentile": percentile, "k_std": float(np.float32(k_std))}
        changes["method_source"] = source
        if cfg.method in MAPPED:
            rule = scores_rule(normal, k_std, threshold, cfg.method)
            changes |= {"scores_windows": rule.windows, "scores_why": rule.why}
        else:
            rule = threshold_rule(method, percentile, changes["k_std"], spec.windows)
    else:
        rule = None
    if rule is not None:
        least = max(rule.windows, spec.stats_windows)
        if least > spec.windows:
            changes["windows"] = least
            why = rule.why if rule.windows >= spec.stats_windows else spec.stats_why
            raised = (
                f"calibration.windows {spec.windows} -> {least}: the on-site threshold follows the new "
                f"method and needs at least {least} windows per phase ({why})"
            )
    return spec.rederive(changes, manifest_quant(manifest.to_dict())).to_manifest(), raised


def _hand_k(threshold: float, normal: np.ndarray) -> float | None:
    """The k with mean + k std = a hand-set threshold on the normal scores; None without their spread, or
    when k is beyond float32 (a value near float32's largest: the on-site method stays as it was)."""
    if len(normal) < 2 or not float(np.std(normal)) > 0:
        return None
    k = round(float((threshold - normal.mean()) / normal.std()), 4)
    with np.errstate(over="ignore"):
        return k if np.isfinite(np.float32(k)) else None


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
            section.update({k: v for k, v in vars(cfg).items()})
            section.pop("note", None)
        used.write_text(tomli_w.dumps(raw))
    (model_dir / "metrics.json").write_text(json.dumps(manifest.to_dict()["metrics"], indent=2) + "\n")
    manifest.write(model_dir / "manifest.json")


def _raise_windows(model_dir: Path, windows: int) -> None:
    """The saved config (config.toml) holds the calibration capacity the manifest now has."""
    used = model_dir / "config.toml"
    if used.is_file():
        raw = tomllib.loads(used.read_text())
        raw.setdefault("calibration", {})["windows"] = int(windows)
        used.write_text(tomli_w.dumps(raw))


def _print(manifest: Manifest, old: float, model_dir: Path, note: str | None = None) -> None:
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
        line += f"; test windows precision {i['precision']:.3f}, recall {i['recall']:.3f}, F1 {i['f1']:.3f}"
    rule, test = manifest.decision, (m.operation or {}).get("test") or {}
    if rule.k > 1 and test.get("caught_rate") is not None:
        # the device alarms on k of n windows: what it raises differs from the windows' own decisions
        line += (
            f"; alarms ({rule.k} of {rule.n} windows): {test['caught_rate']:.3f} of the anomalous test windows "
            f"caught, {test['false_alarm_windows']} of {test['normal_windows']} normal ones alarmed"
        )
    con.print(f"[bold cyan]tinyae[/] {line}")
    for w in thr.warnings:
        con.print(f"[bold yellow]warning:[/] {w}")
    if note is not None:
        con.print(f"[bold yellow]note:[/] {note}")
    con.print(
        f"[bold cyan]tinyae[/] rewrote {model_dir}/model_config.h, "
        "manifest.json, test_vectors.npz, report.html "
        f"(model sha256 unchanged: {manifest.model.sha256[:12]}…); rebuild the firmware to flash it"
    )
