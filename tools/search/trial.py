"""One search trial: config -> data -> device figures -> (if feasible) training -> int8 objective.

`evaluate()` runs in a Ray worker (or in-process for the hand-set default). Every outcome is a result
dict with a status — ok, infeasible (the estimate breaks the budget; not trained), failed (the reason
in one sentence) — and `score`, the number the sampler maximizes: the objective when ok, minus the
relative budget excess when infeasible (so the sampler learns where the budget lies), FAILED_SCORE
when failed. A trial runs `tinyae model`'s own stages (train/pipeline.py: read_data, front_end with its
fitted log floors, normalize, build_model, fit_model, int8_flatbuffer, host_reference), not a copy of
them, with train.threads = search.cpus_per_trial, so the best trial's TOML (which carries that thread
count) reproduces its int8 model byte for byte.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from tinyae.errors import UserError

FAILED_SCORE = -2.0
INFEASIBLE_FLOOR = -1.0


@dataclass
class Job:
    """Everything a worker needs besides the trial's values (JSON-able, sent to every worker)."""

    base: dict[str, Any]  # Config.to_dict() of the experiment, quantize.targets set from --target
    fixed: dict[str, Any]  # "section.key" -> value from [search.space]
    budget: dict[str, int]
    target: dict[str, str]  # SearchTarget fields
    metric: str
    report_every: int
    cpus: int
    longest_window: int
    always_train: bool = False  # the hand-set default: its quality is reported even when over budget

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def bound_threads(cpus: int) -> None:
    """Keep TensorFlow (and the BLAS under NumPy) to `cpus` threads in this process."""
    for var in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(cpus)
    os.environ["TF_NUM_INTEROP_THREADS"] = "1"
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(cpus)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass  # already initialized in this worker (an earlier trial set the same numbers)


_DATA_CACHE: dict[str, Any] = {}


def _data(cfg, job: Job):
    """(DataStage, Selection) of the trial's data and window, cached per worker process: the pipeline's
    own first stage (read, rate check, outlier screen, windows, split)."""
    from tinyae.tools.search.data import select
    from tinyae.train.pipeline import read_data

    n = cfg.normalization
    key = json.dumps(
        [vars(cfg.data), cfg.window.length, cfg.window.hop, n.outlier_iqr, n.outliers],
        sort_keys=True,
        default=str,
    )
    if key not in _DATA_CACHE:
        data = read_data(cfg, show_progress=False)
        sel = select(data.splits, cfg.data.source, cfg.data.seed, job.longest_window)
        _DATA_CACHE.clear()  # one window setting at a time: keeps a worker's memory flat
        _DATA_CACHE[key] = (data, sel)
    return _DATA_CACHE[key]


def _auc(metric: str, labels: np.ndarray, scores: np.ndarray) -> float:
    from tinyae.train.metrics import pr_auc, roc_auc

    return float(roc_auc(labels, scores) if metric == "roc_auc" else pr_auc(labels, scores))


def trial_config(job: Job, values: dict[str, Any]):
    """The experiment config of one trial: the base, the fixed values, the trial's values."""
    from tinyae.tools.search.space import apply_params
    from tinyae.train.config import from_dict

    return apply_params(from_dict(job.base, "the search's base config"), {**job.fixed, **values})


def evaluate(job_dict: dict[str, Any], values: dict[str, Any], report: Callable[[dict], None]) -> dict:
    """Run one trial; `report` receives intermediate results (phase "training") and returns normally
    unless the scheduler stops the trial. Returns the final result (phase "final")."""
    job = Job(**job_dict)
    t0 = time.perf_counter()
    result: dict[str, Any] = {"phase": "final", "values": json.dumps(values, sort_keys=True)}
    try:
        result.update(_evaluate(job, values, report))
    except UserError as exc:
        result.update(status="failed", reason=str(exc), score=FAILED_SCORE)
    except Exception as exc:  # a conversion or TFLM error, or a bug: recorded, the search goes on
        last = traceback.extract_tb(exc.__traceback__)[-1]
        where = f"{os.path.basename(last.filename)}:{last.lineno}"
        result.update(status="failed", reason=f"{type(exc).__name__} at {where}: {exc}", score=FAILED_SCORE)
    result["seconds"] = round(time.perf_counter() - t0, 2)
    return result


def _evaluate(job: Job, values: dict[str, Any], report: Callable[[dict], None]) -> dict:
    """`tinyae model`'s stages (train/pipeline.py) up to the int8 model and its host reference, with the
    device figures estimated before training and the objective computed on the selection windows."""
    from tinyae.tools.search.budget import Budget, SearchTarget

    cfg = trial_config(job, values)
    bound_threads(job.cpus)
    import keras

    from tinyae.tools.search.data import corruptions, windows
    from tinyae.tools.search.figures import device_figures, stand_in
    from tinyae.train import pipeline
    from tinyae.train.compiled.generate import render
    from tinyae.train.model import macs
    from tinyae.train.quantize import inspect

    target = SearchTarget(**job.target)
    budget = Budget(job.budget)
    data, sel = _data(cfg, job)
    feats = pipeline.front_end(cfg, data)  # the spectral log floors fitted on the training windows
    norm = pipeline.normalize(cfg, data, feats)
    prep = data.prep
    n_ch = prep.train.shape[2]
    rate = float(prep.sample_rate_hz or 0.0)

    def features(w: np.ndarray) -> np.ndarray:
        return pipeline._normalize(feats.featurize(w), norm.offset, norm.scale)

    # what the objective is computed on
    if sel.labelled:
        w_sel, y_sel = windows(sel.selection, cfg.window.length, cfg.window.hop)
        w_hold, y_hold = windows(sel.holdout, cfg.window.length, cfg.window.hop)
        if y_sel is None or not (0 < y_sel.sum() < len(y_sel)):
            raise UserError(
                f"the selection windows of length {cfg.window.length} hold no anomaly or no normal window; "
                "this window is too long for the labelled data"
            )
    else:
        corrupt = corruptions(prep.val, cfg.train.seed)
        w_sel = np.concatenate([prep.val, corrupt])
        y_sel = np.concatenate([np.zeros(len(prep.val), np.int8), np.ones(len(corrupt), np.int8)])
        w_hold, y_hold = np.zeros((0, *prep.val.shape[1:]), np.float32), None
    x_sel = features(w_sel)

    # the model and its device figures, before any training (they depend on the shape only)
    model, latent_index = pipeline.build_model(cfg, norm)
    units = [int(layer.units) for layer in model.layers]
    fe_manifest = feats.spec.to_manifest(rate)

    def figures_of(flatbuffer: bytes, arena: int) -> dict[str, Any]:
        info = render(flatbuffer, "search trial")[2] if target.engine == "compiled" else {}
        scratch, const = info.get("scratch_bytes"), info.get("const_bytes")
        m = stand_in(
            input_size=norm.x_train.shape[1],
            units=units,
            frontend=fe_manifest,
            length=cfg.window.length,
            channels=n_ch,
            tflite_bytes=len(flatbuffer),
            arena_bytes=arena,
            scratch_bytes=scratch,
            const_bytes=const,
        )
        return device_figures(m, target)

    # Zero biases (the initializer's) are deduplicated by the converter and make a smaller flatbuffer than
    # the trained model's: convert with distinct biases, then put the initial weights back untouched.
    initial = model.get_weights()
    noise = np.random.default_rng(12345)
    distinct = [w if w.ndim > 1 else noise.normal(0.0, 0.01, w.shape).astype(w.dtype) for w in initial]
    model.set_weights(distinct)
    untrained, weights = pipeline.int8_flatbuffer(cfg, model, norm)
    model.set_weights(initial)
    arena = _arena(untrained, cfg.arena.margin_bytes) if target.engine == "tflm" else 0
    figs = figures_of(untrained, arena)
    out: dict[str, Any] = {
        "flash": figs["flash"],
        "ram": figs["ram"],
        "instructions": figs["instructions"],
        "macs": macs(model),
        "features": int(norm.x_train.shape[1]),
        "shape": "-".join(str(u) for u in [norm.x_train.shape[1], *units]),
        "weights": weights.granularity,
        "window": cfg.window.length,
        "hop": cfg.window.hop,
    }
    broken = budget.check(figs)
    if broken and not job.always_train:
        excess = budget.excess(figs)
        out.update(
            status="infeasible",
            reason="estimate over budget: " + "; ".join(broken),
            score=max(INFEASIBLE_FLOOR, -excess),
            objective=None,
        )
        return out

    # training, reporting the float objective on the selection windows to the scheduler
    def float_objective(m) -> float:
        y = m.predict(x_sel, batch_size=512, verbose=0)
        err = (y - x_sel) ** 2 if cfg.train.loss == "mse" else np.abs(y - x_sel)
        s = err.mean(axis=1)
        return _auc(job.metric, y_sel, s) if np.all(np.isfinite(s)) else float("nan")

    class ReportToScheduler(keras.callbacks.Callback):
        """Every report_every epochs, the float objective of the network so far (ASHA stops poor trials)."""

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            if self.model.stop_training:  # a NaN loss (refused below) or early stopping: no report
                return
            if (epoch + 1) % job.report_every == 0 and epoch + 1 < cfg.train.epochs:
                report({"phase": "training", "epoch": epoch + 1, "score": float_objective(model), **out})

    # a NaN/inf loss ends fit() in a UserError naming the epoch and the learning rate
    history = pipeline.fit_model(cfg, norm, model, latent_index, False, [ReportToScheduler()])
    float_obj = float_objective(model)
    flatbuffer, weights = pipeline.int8_flatbuffer(cfg, model, norm)
    qi = inspect(flatbuffer)
    figs = figures_of(flatbuffer, arena)
    out.update(flash=figs["flash"], ram=figs["ram"], instructions=figs["instructions"])
    ref, _, _ = pipeline.host_reference(cfg, feats, norm, flatbuffer, qi, weights.targets)
    s_sel = ref.evaluate(w_sel).scores
    if not np.all(np.isfinite(s_sel)):
        raise UserError("the int8 model gives non-finite scores on the selection windows")
    objective = _auc(job.metric, y_sel, s_sel)
    out.update(
        objective=objective,
        objective_float=float_obj,
        epochs=len(history.loss),
        sha256=qi.sha256,
        threads=cfg.train.threads,
    )
    if y_hold is not None and 0 < y_hold.sum() < len(y_hold):
        s_hold = ref.evaluate(w_hold).scores
        out.update(
            holdout_roc_auc=_auc("roc_auc", y_hold, s_hold), holdout_pr_auc=_auc("pr_auc", y_hold, s_hold)
        )
    broken = budget.check(figs)
    if broken:  # over budget (the default, trained anyway), or a flatbuffer larger than its shape's estimate
        out.update(
            status="infeasible", reason="estimate over budget: " + "; ".join(broken), score=INFEASIBLE_FLOOR
        )
        return out
    out.update(status="ok", reason="", score=objective)
    return out


def _arena(flatbuffer: bytes, margin: int) -> int:
    """The TFLM arena the pipeline would give this model (host measurement + margin, 16-aligned)."""
    import tempfile
    from pathlib import Path

    from tinyae.train.arena import measure_arena_bytes

    with tempfile.TemporaryDirectory(prefix="tae-arena-") as d:
        path = Path(d) / "model.tflite"
        path.write_bytes(flatbuffer)
        measured = measure_arena_bytes(path)
    return (measured + margin + 15) // 16 * 16
