"""The search on Ray Tune: checks before any trial, the Tuner (Optuna's sampler, ASHA early stopping,
one Ray worker per trial), resume, and the table of every trial.

Ray runs locally by default (a private instance that starts and stops with the command, `workers`
CPUs); with `address` the same trials run on an existing cluster (`ray://head:10001` through Ray
Client, or `host:port` / `auto` to join). No scheduling logic lives here: Ray Tune places the trials,
Optuna proposes them, ASHA stops the poor ones.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tinyae.errors import Terminated, UserError
from tinyae.paths import ROOT
from tinyae.tools.search.budget import Budget, SearchTarget, parse_budget, resolve_target
from tinyae.tools.search.space import SearchSpec, apply_params, parse_search
from tinyae.tools.search.trial import Job
from tinyae.train import config as configmod

RAY_DIR = "ray"
EXPERIMENT = "trials"


@dataclass
class Plan:
    """A checked search: everything decided before the first trial."""

    cfg: configmod.Config  # the hand-set default (quantize.targets = the target)
    spec: SearchSpec
    budget: Budget
    target: SearchTarget
    trials: int
    workers: int
    address: str | None
    out: Path
    command: str
    selection: str = ""
    labelled: bool = True
    lower: dict[str, int] = field(default_factory=dict)  # per figure, the smallest over the space
    trials_s: float = 0.0  # wall time of the trials alone (Tuner.fit), set by run()

    def job(self, *, baseline: bool = False) -> Job:
        return Job(
            base=self.cfg.to_dict(),
            fixed={} if baseline else dict(self.spec.fixed),
            budget=dict(self.budget.limits),
            target=dict(vars(self.target)),
            metric=self.spec.settings.metric,
            report_every=self.spec.settings.report_every,
            cpus=self.spec.settings.cpus_per_trial,
            longest_window=self.longest_window,
            always_train=baseline,
        )

    @property
    def longest_window(self) -> int:
        lengths = [self.cfg.window.length]
        for d in self.spec.dimensions:
            if d.path == "window.length":
                lengths += [int(v) for v in d.choices] if d.kind == "choice" else [int(d.high)]
        if "window.length" in self.spec.fixed:
            lengths.append(int(self.spec.fixed["window.length"]))
        return max(lengths)

    def identity(self) -> dict[str, Any]:
        """What must not change between a search and its resumption."""
        return {
            "config": self.cfg.to_dict(),
            "space": [vars(d) | {"choices": list(d.choices)} for d in self.spec.dimensions],
            "fixed": self.spec.fixed,
            "settings": vars(self.spec.settings),
            "budget": self.budget.limits,
            "target": self.target.env,
            "trials": self.trials,
        }


def plan(
    config_path: Path | None,
    overrides: list[str],
    budget_text: str,
    target_env: str,
    trials: int | None,
    workers: int | None,
    address: str | None,
    out: Path,
    command: str,
) -> Plan:
    """Read and check everything; a UserError here means no trial has run."""
    raw: dict[str, Any] = {}
    if config_path is not None and config_path.is_file():
        try:
            raw = tomllib.loads(config_path.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            raw = {}  # config.load below says what is wrong
    cfg = configmod.load(config_path, overrides)
    spec = parse_search(raw.get("search"), str(config_path or "the defaults"))
    budget = parse_budget(budget_text)
    target = resolve_target(target_env)
    cfg.quantize.targets = [target.env]
    from tinyae.train.boards import choose_weights

    choose_weights(cfg.quantize.weights, cfg.quantize.targets)  # per_channel on a TFLM board: refused
    n_trials = trials if trials is not None else spec.settings.trials
    if n_trials < 1:
        raise UserError(f"--trials {n_trials} must be at least 1")
    if workers is not None and workers < 1:
        raise UserError(f"--workers {workers} must be at least 1")
    n_workers = workers or max(1, (os.cpu_count() or 1) // spec.settings.cpus_per_trial)
    p = Plan(cfg, spec, budget, target, n_trials, n_workers, address, out, command)
    _check_data_and_budget(p)
    return p


def _check_data_and_budget(p: Plan) -> None:
    """Load the data once (its errors are the user's), then refuse a budget below every point."""
    from tinyae.tools.budget.config import load_budgets
    from tinyae.tools.search.data import select
    from tinyae.tools.search.figures import lower_bound
    from tinyae.train import data as datamod
    from tinyae.train.frontend import build_spec

    splits = datamod.load_source(p.cfg.data, p.cfg.window.length)
    sel = select(splits, p.cfg.data.source, p.cfg.data.seed, p.longest_window)
    p.selection, p.labelled = sel.how, sel.labelled
    channels = len(splits.channel_names)
    rate = float(splits.sample_rate_hz or 0.0)
    budgets = load_budgets()
    best: dict[str, int] = {}
    first_error = ""
    any_valid = False
    for point in p.spec.grid_lower():
        try:
            cfg = apply_params(p.cfg, {**p.spec.fixed, **point}, "the search space")
            fe = build_spec(cfg.frontend, cfg.window.length, channels, rate)
        except UserError as exc:
            first_error = first_error or str(exc)
            continue
        any_valid = True
        hidden = list(cfg.model.hidden)
        units = [*hidden, cfg.model.latent, *reversed(hidden), fe.feature_size]
        figs = lower_bound(
            input_size=fe.feature_size,
            units=units,
            frontend=fe.to_manifest(rate),
            length=cfg.window.length,
            channels=channels,
            target=p.target,
            budgets=budgets,
        )
        for k in ("flash", "ram", "instructions"):
            best[k] = min(best.get(k, figs[k]), figs[k])
        if not p.budget.check(figs):
            p.lower = best
            return
    if not any_valid:
        raise UserError(
            f"no combination of the search space is a valid config ({first_error}); fix [search.space]"
        )
    p.lower = best
    smallest = ", ".join(
        f"{k} {best[k]:,}{'' if k == 'instructions' else ' B'} (budget {p.budget.limits[k]:,})"
        for k in p.budget.limits
    )
    raise UserError(
        f"the budget {p.budget.text()} is below every configuration of the search space for {p.target.env} "
        f"(the smallest reach {smallest}); raise the budget or add smaller choices to [search.space]"
    )


class _StopSignals:
    """Ctrl-C and SIGTERM during the trials: the first stops Ray Tune gracefully (its own stop request,
    SIGUSR1, which Tune registers during `Tuner.fit`: the trials in flight are stopped and the experiment
    state saved, so `--resume` continues it), a second one stops at once. Ray Tune's own SIGINT handler is
    switched off (TUNE_DISABLE_SIGINT_HANDLER, docs.ray.io "Environment variables used by Ray Tune"): with
    it, Ctrl-C ended `fit` like a finished search and the command went on to train and measure
    finalists, exiting 0 or 1. After `fit`, the command ends with 130 (Ctrl-C) or 143 (SIGTERM)."""

    def __init__(self) -> None:
        self.caught: KeyboardInterrupt | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopSignals:
        for s in (signal.SIGINT, signal.SIGTERM):
            self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for s, h in self._previous.items():
            signal.signal(s, h)

    def _handle(self, signum: int, frame: Any) -> None:
        interrupt = Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()
        if self.caught is not None:
            raise interrupt  # the second signal: stop now
        self.caught = interrupt
        tune_stop = signal.getsignal(signal.SIGUSR1) if hasattr(signal, "SIGUSR1") else None
        if callable(tune_stop):
            tune_stop(signum, frame)  # Tune's graceful stop: fit() returns after saving the state
        else:
            raise interrupt


# -- Ray ---------------------------------------------------------------------------------------------
def _trainable(config: dict[str, Any], job: dict[str, Any], choice_paths: list[str]) -> None:
    from ray import tune

    from tinyae.tools.search.trial import evaluate

    values = {k: json.loads(v) if k in choice_paths else v for k, v in config.items()}
    result = evaluate(job, values, lambda r: tune.report(r))
    tune.report(result)


def _start_ray(p: Plan) -> None:
    import ray

    env = {
        "PYTHONPATH": str(ROOT),  # the workers import this checkout's train/ and tools/
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "OMP_NUM_THREADS": str(p.spec.settings.cpus_per_trial),
        "TF_NUM_INTRAOP_THREADS": str(p.spec.settings.cpus_per_trial),
        "TF_NUM_INTEROP_THREADS": "1",
    }
    kw: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": False,
        "logging_level": logging.ERROR,
        "configure_logging": True,
    }
    if p.address:
        # a cluster: the code travels with the job; its nodes need tinyae's pinned packages installed
        kw["runtime_env"] = {
            "working_dir": str(ROOT),
            "excludes": ["build/", ".venv/", ".git/", ".pio/", "bench/", "*.png"],
            "env_vars": {k: v for k, v in env.items() if k != "PYTHONPATH"},
        }
        ray.init(address=p.address, **kw)
    else:
        kw["runtime_env"] = {"env_vars": env}
        tmp = os.environ.get("TAE_RAY_TMPDIR")  # tests: a private directory to check for leftovers
        private: dict[str, Any] = {"_temp_dir": tmp} if tmp else {}
        ray.init(
            num_cpus=p.workers * p.spec.settings.cpus_per_trial,
            object_store_memory=256 * 1024 * 1024,
            **private,
            **kw,
        )


def baseline(p: Plan) -> dict[str, Any]:
    """The hand-set default (the config as written) evaluated like a trial, in a Ray worker."""
    import ray

    from tinyae.tools.search.trial import evaluate

    path = p.out / "baseline.json"
    if path.is_file():
        return json.loads(path.read_text())
    task = ray.remote(num_cpus=p.spec.settings.cpus_per_trial)(evaluate)
    res = ray.get(task.remote(p.job(baseline=True).to_dict(), {}, lambda r: None))
    res["trial_id"] = "default"
    res["values"] = {}  # the config as written
    path.write_text(json.dumps(res, indent=2) + "\n")
    return res


def run(p: Plan, *, resume: bool, quiet: bool) -> tuple[list[dict[str, Any]], dict[str, Any], float]:
    """Run (or resume) the trials; every trial's row, the default's row, and the wall time in s."""
    import ray
    from ray import tune
    from ray.tune.schedulers import AsyncHyperBandScheduler
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"  # _StopSignals handles Ctrl-C
    storage = (p.out / RAY_DIR).resolve()
    ident_path = p.out / "search.json"
    exists = (storage / EXPERIMENT).exists()
    if exists and not resume:
        raise UserError(
            f"{p.out} already holds a search; pass --resume to continue it, or choose another --out"
        )
    if resume and not exists:
        raise UserError(f"{p.out} holds no search to resume; run the search without --resume first")
    if exists:
        old = json.loads(ident_path.read_text()) if ident_path.is_file() else None
        if old != json.loads(json.dumps(p.identity())):
            raise UserError(
                f"the search in {p.out} was started with another config, space, budget, target or trial "
                "count; resume it with the same arguments, or choose another --out"
            )
    p.out.mkdir(parents=True, exist_ok=True)
    ident_path.write_text(json.dumps(p.identity(), indent=2) + "\n")

    t0 = time.perf_counter()
    _start_ray(p)
    view = None
    stops = _StopSignals()
    try:
        default = baseline(p)
        settings = p.spec.settings
        choice_paths = [d.path for d in p.spec.dimensions if d.kind == "choice"]
        trainable = tune.with_resources(
            tune.with_parameters(_trainable, job=p.job().to_dict(), choice_paths=choice_paths),
            {"cpu": settings.cpus_per_trial},
        )
        if not quiet:
            from tinyae.tools.search.progress import ProgressView

            view = ProgressView(p.trials, settings.metric)
            view.start()
        callbacks: list[tune.Callback] = [view] if view else []
        if exists:
            tuner = tune.Tuner.restore(
                str(storage / EXPERIMENT), trainable=trainable, resume_unfinished=True, resume_errored=False
            )
        else:
            import optuna

            sampler = (
                optuna.samplers.TPESampler(seed=settings.seed)
                if settings.sampler == "tpe"
                else optuna.samplers.RandomSampler(seed=settings.seed)
            )
            optuna.logging.set_verbosity(optuna.logging.WARNING)
            searcher = ConcurrencyLimiter(
                OptunaSearch(metric="score", mode="max", sampler=sampler, seed=settings.seed),
                max_concurrent=p.workers,
            )
            reports = max(1, p.cfg.train.epochs // settings.report_every)
            scheduler = AsyncHyperBandScheduler(
                time_attr="training_iteration",
                grace_period=settings.grace,
                max_t=reports + 1,
                reduction_factor=3,
            )
            tuner = tune.Tuner(
                trainable,
                param_space=p.spec.to_tune(),
                tune_config=tune.TuneConfig(
                    search_alg=searcher, scheduler=scheduler, num_samples=p.trials, metric="score", mode="max"
                ),
                run_config=tune.RunConfig(
                    storage_path=str(storage),
                    name=EXPERIMENT,
                    verbose=0,
                    callbacks=callbacks,
                    failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
                ),
            )
        if exists and view:
            # Tuner.restore takes no RunConfig; the restored run's callbacks are set on its config
            local = tuner._local_tuner
            assert local is not None  # a Tuner run in this process
            local.get_run_config().callbacks = callbacks
        t_trials = time.perf_counter()
        with stops:
            grid = tuner.fit()
        p.trials_s = time.perf_counter() - t_trials
        rows = [_row(grid[i], p) for i in range(len(grid))]
    finally:
        if view:
            view.stop()
        ray.shutdown()
    if stops.caught is not None:
        print(
            f"tinyae: the search was stopped ({len(rows)} of {p.trials} trials started, the state saved); "
            f"the same command with --resume continues it in {p.out}",
            file=sys.stderr,
        )
        raise stops.caught
    return rows, default, time.perf_counter() - t0


def _row(result: Any, p: Plan) -> dict[str, Any]:
    """One trial's row: its values, outcome and figures (the last result it reported)."""
    metrics = dict(result.metrics or {})
    values = {k: v for k, v in (result.config or {}).items()}
    row: dict[str, Any] = {
        "trial_id": metrics.get("trial_id") or Path(str(result.path)).name,
        "values": values,
    }
    if result.error is not None:
        text = str(result.error).strip().splitlines()
        row.update(status="failed", reason=(text[-1] if text else type(result.error).__name__)[:300])
        return row
    keep = (
        "status",
        "reason",
        "objective",
        "objective_float",
        "holdout_roc_auc",
        "holdout_pr_auc",
        "flash",
        "ram",
        "instructions",
        "macs",
        "features",
        "shape",
        "weights",
        "window",
        "hop",
        "epochs",
        "sha256",
        "seconds",
        "score",
    )
    row.update({k: metrics[k] for k in keep if k in metrics})
    if metrics.get("phase") != "final":
        row.update(
            status="stopped",
            reason=f"stopped early by ASHA after epoch {metrics.get('epoch')} "
            f"(float {p.spec.settings.metric} "
            f"{metrics.get('score', float('nan')):.4f} on the selection windows)",
            objective_float=metrics.get("score"),
        )
    return row
