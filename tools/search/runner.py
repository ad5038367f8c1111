"""The search on Ray Tune: checks before any trial, the Tuner (Optuna's sampler, ASHA early stopping,
one Ray actor per running trial, reused by the worker's next trial), resume, and the table of every trial.

Ray runs locally by default (a private instance that starts and stops with the command, `workers`
CPUs); with `address` the same trials run on an existing cluster (`ray://head:10001` through Ray
Client, or `host:port` / `auto` to join). No scheduling logic lives here: Ray Tune places the trials,
Optuna proposes them, ASHA stops the poor ones.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tinyae.errors import UserError
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
            base=with_absolute_paths(self.cfg).to_dict(),
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
            "config": with_absolute_paths(self.cfg).to_dict(),
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
    threads = spec.settings.cpus_per_trial
    if cfg.train.threads not in (0, threads):
        raise UserError(
            f"train.threads = {cfg.train.threads} but search.cpus_per_trial = {threads}: the search trains every "
            "trial with cpus_per_trial threads; set search.cpus_per_trial instead, or remove train.threads"
        )
    cfg.train.threads = threads  # best.toml carries it: the same count gives the same model bit for bit
    from tinyae.train.boards import choose_weights

    choose_weights(cfg.quantize.weights, cfg.quantize.targets)  # per_channel on a TFLM board: refused
    n_trials = trials if trials is not None else spec.settings.trials
    if n_trials < 1:
        raise UserError(f"--trials {n_trials} must be at least 1")
    if workers is not None and workers < 1:
        raise UserError(f"--workers {workers} must be at least 1")
    n_workers = workers or max(1, (os.cpu_count() or 1) // spec.settings.cpus_per_trial)
    # absolute: the finalists' builds and the Ray workers run in other directories
    p = Plan(cfg, spec, budget, target, n_trials, n_workers, address, out.resolve(), command)
    _check_data_and_budget(p)
    return p


PATH_KEYS = ("paths", "train", "test")  # data.* keys holding files, globs or folders (and file_labels' keys)


def with_absolute_paths(cfg: configmod.Config, cwd: Path | None = None) -> configmod.Config:
    """cfg with its relative data paths (files, globs, folders, file_labels patterns) made absolute against
    `cwd` (the current directory, where `tinyae model` reads them): the trials run in Ray workers whose
    working directory is another one, on this machine or on a cluster's nodes."""
    import copy

    base = cwd or Path.cwd()

    def absolute(item: str) -> str:
        path = Path(item).expanduser()
        return str(path if path.is_absolute() else base / path)

    out = copy.deepcopy(cfg)
    for key in PATH_KEYS:
        setattr(out.data, key, [absolute(str(v)) for v in getattr(out.data, key)])
    out.data.file_labels = {absolute(k): v for k, v in out.data.file_labels.items()}
    return out


def _check_data_and_budget(p: Plan) -> None:
    """Read the data once as the trials will (its errors are the user's, before any trial), then refuse a
    budget below every point."""
    from tinyae.tools.budget.config import load_budgets
    from tinyae.tools.search.data import select
    from tinyae.tools.search.figures import lower_bound
    from tinyae.train.frontend import build_spec
    from tinyae.train.pipeline import read_data

    cfg = with_absolute_paths(p.cfg)
    splits = read_data(cfg, show_progress=False).splits
    sel = select(splits, cfg.data.source, cfg.data.seed, p.longest_window)
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


class SearchStopped(KeyboardInterrupt):
    """Ctrl-C (SIGINT) or SIGTERM stopped the search; the command exits with 128 + the signal's number
    (130, 143), as a shell reports a process killed by it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    @property
    def name(self) -> str:
        return "Ctrl-C" if self.signum == signal.SIGINT else signal.Signals(self.signum).name


class StopSignals:
    """Ctrl-C and SIGTERM while the search runs.

    During Tuner.fit the first one asks Ray Tune to stop the way Tune documents (SIGUSR1 to the driver,
    "Stopping and resuming a Tune run"): Tune ends its loop, saves the experiment state with the trials
    in flight still unfinished, and returns; `--resume` (Tuner.restore) runs those again. Tune's own
    SIGINT handler is off (TUNE_DISABLE_SIGINT_HANDLER) so Ctrl-C and SIGTERM take the same path. One
    that lands after Tuner.fit returned, while the finished trials' rows are made and Ray shut down, is
    held until then, so those rows are written as for a stop during the trials. A second signal, or one
    at any other time, raises SearchStopped at once (Ray is still shut down by the caller's `finally`)."""

    def __init__(self) -> None:
        self.caught: SearchStopped | None = None
        self.in_fit = False
        self.holding = False  # the trials are over and their rows being made: a first signal waits for them
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        self._depth = getattr(self, "_depth", 0) + 1
        if self._depth == 1:
            for s in (signal.SIGINT, signal.SIGTERM):
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def reinstall(self) -> None:
        """Take the signals back after ray.init, whose driver installs a C++ SIGTERM handler that ends the
        process at once (logging.cc: "SIGTERM received")."""
        for s in (signal.SIGINT, signal.SIGTERM):
            signal.signal(s, self._handle)

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        if self._depth == 0:
            for s, h in self._previous.items():
                signal.signal(s, h)

    def _handle(self, signum: int, frame: Any) -> None:
        stopped = SearchStopped(signum)
        if self.caught is None and self.holding:  # stop once the finished trials' rows are written
            self.caught = stopped
            return
        if self.caught is not None or not self.in_fit or not hasattr(signal, "SIGUSR1"):
            self.caught = self.caught or stopped
            raise stopped
        self.caught = stopped
        os.kill(os.getpid(), signal.SIGUSR1)  # Tune's graceful stop


# -- Ray ---------------------------------------------------------------------------------------------
def _trainable(config: dict[str, Any], job: dict[str, Any], choice_paths: list[str]) -> None:
    import ray
    from ray import tune

    from tinyae.tools.search.trial import evaluate

    values = {k: json.loads(v) if k in choice_paths else v for k, v in config.items()}
    # which Ray node ran it (a cluster's), in every report: a trial ASHA stops early keeps its last one
    node = ray.get_runtime_context().get_node_id()[:12]
    result = evaluate(job, values, lambda r: tune.report({**r, "node": node}))
    tune.report({**result, "node": node})


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
        tmp = os.environ.get("TAE_RAY_TMPDIR")  # tests: a private directory to check for leftovers
        private: dict[str, Any] = {"_temp_dir": tmp} if tmp else {}
        # A local Ray's workers inherit the environment its raylet starts with, so the variables are set
        # there for the start and not as a job runtime_env: with one, Ray cannot hand the trials the
        # workers it prestarts at ray.init, and each trial waits for a new process set up through the
        # runtime-env agent (an actor ready in 1.8-3.2 s instead of 0.3-1.0 s, measured here).
        with _environment(env):
            ray.init(
                num_cpus=p.workers * p.spec.settings.cpus_per_trial,
                object_store_memory=256 * 1024 * 1024,
                **private,
                **kw,
            )


@contextlib.contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    """os.environ with `env` set inside the block (what processes started there inherit), as before after."""
    before = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


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


@dataclass
class Outcome:
    """What run() hands back: every trial's row, the default's row, the wall time, and the signal that
    stopped the trials (None when they all ran)."""

    rows: list[dict[str, Any]]
    default: dict[str, Any]
    wall: float
    stopped: SearchStopped | None = None


def run(p: Plan, *, resume: bool, quiet: bool, stops: StopSignals | None = None) -> Outcome:
    """Run (or resume) the trials. A Ctrl-C or SIGTERM during the trials ends them the way Ray Tune stops
    an experiment (StopSignals): the finished trials are kept in Tune's experiment state, the unfinished
    ones are run again by `--resume`."""
    import ray
    from ray import tune
    from ray.tune.schedulers import AsyncHyperBandScheduler
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"  # StopSignals handles Ctrl-C like SIGTERM
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
    view = None
    stops = stops or StopSignals()
    with stops:
        try:
            _start_ray(p)
            stops.reinstall()
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
                # Ray Tune's own resumption: finished trials are kept; unfinished ones (running when the
                # search stopped) are resumed, and errored ones (a worker killed, e.g. by a terminal's
                # Ctrl-C, which reaches every process of its group) restarted from scratch.
                tuner = tune.Tuner.restore(
                    str(storage / EXPERIMENT),
                    trainable=trainable,
                    resume_unfinished=True,
                    resume_errored=False,
                    restart_errored=True,
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
                        search_alg=searcher,
                        scheduler=scheduler,
                        num_samples=p.trials,
                        metric="score",
                        mode="max",
                        # a worker's next trial runs in the same process (TensorFlow imported and warmed
                        # up, the data read): 5-8 s a trial instead of ~20 s on the synthetic data
                        reuse_actors=True,
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
                assert tuner._local_tuner is not None  # set by Tuner.restore on the driver
                tuner._local_tuner.get_run_config().callbacks = callbacks
            t_trials = time.perf_counter()
            stops.in_fit = True
            try:
                grid = tuner.fit()
            finally:
                stops.in_fit = False
                stops.holding = True
            p.trials_s = time.perf_counter() - t_trials
            status = _statuses(storage / EXPERIMENT)
            rows = [
                _row(r, p, status.get(str(r.path)), stops.caught) for r in (grid[i] for i in range(len(grid)))
            ]
        finally:
            if view:
                view.stop()
            ray.shutdown()
            stops.holding = False
    return Outcome(rows, default, time.perf_counter() - t0, stops.caught)


def _statuses(experiment: Path) -> dict[str, str]:
    """Each trial's status as Ray Tune saved it in the experiment state (trial path -> PENDING, RUNNING,
    PAUSED, TERMINATED or ERROR). Tune saves the state before it stops the trials still running when the
    search is interrupted, so those read RUNNING here (the result grid shows them TERMINATED)."""
    from ray.tune import ExperimentAnalysis

    try:
        analysis = ExperimentAnalysis(str(experiment))
    except (OSError, ValueError, RuntimeError):
        return {}
    return {str(t.path): str(t.status) for t in analysis.trials}


UNFINISHED = ("PENDING", "RUNNING", "PAUSED")


def _row(result: Any, p: Plan, status: str | None, stopped: SearchStopped | None) -> dict[str, Any]:
    """One trial's row: its values, outcome and figures (the last result it reported). `status` is Tune's
    saved status of the trial, `stopped` the signal that ended this run of the search (if one did)."""
    metrics = dict(result.metrics or {})
    values = {k: v for k, v in (result.config or {}).items()}
    row: dict[str, Any] = {
        "trial_id": metrics.get("trial_id") or Path(str(result.path)).name,
        "values": values,
    }
    final = metrics.get("phase") == "final"
    if not final and (status in UNFINISHED or (stopped is not None and result.error is not None)):
        why = stopped.name if stopped is not None else "the search's stop"
        row.update(
            status="interrupted",
            reason=f"interrupted by {why} before it finished; `--resume` runs it again",
        )
        return row
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
        "threads",
        "seconds",
        "score",
        "node",
    )
    row.update({k: metrics[k] for k in keep if k in metrics})
    if not final:
        row.update(
            status="stopped",
            reason=f"stopped early by ASHA after epoch {metrics.get('epoch')} "
            f"(float {p.spec.settings.metric} "
            f"{metrics.get('score', float('nan')):.4f} on the selection windows)",
            objective_float=metrics.get("score"),
        )
    return row
