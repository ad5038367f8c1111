"""`tinyae search`: budgets, search space, refusals before any trial, one trial's outcomes,
and the spectral parameters of the space; the searches on Ray are in tests/test_search_ray.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from searchconfigs import BUDGET, TINY

from tinyae.cli import main as tinyae
from tinyae.errors import UserError
from tinyae.tools.search.budget import parse_budget
from tinyae.tools.search.space import DEFAULT_SPACE, apply_params, parse_search

ROOT = Path(__file__).resolve().parent.parent


def _write(tmp_path: Path, text: str, name: str = "exp.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def _run_cli(args: list[str], capsys) -> tuple[int, str]:
    rc = tinyae(["search", *args])
    return rc, capsys.readouterr().err


# -- budget ------------------------------------------------------------------------------------------
def test_budget_units():
    b = parse_budget("flash=48k,ram=16KiB,instructions=200k")
    assert b.limits == {"flash": 48 * 1024, "ram": 16 * 1024, "instructions": 200_000}
    assert parse_budget("flash=1M").limits["flash"] == 1 << 20
    assert parse_budget("instructions=1.5M").limits["instructions"] == 1_500_000
    assert b.check({"flash": 48 * 1024 + 1, "ram": 1, "instructions": 1}) == ["flash 49,153 B > 49,152 B"]
    assert b.excess({"flash": 2 * 48 * 1024}) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "text, words",
    [
        ("flash=48k,bogus=1", "unknown budget key 'bogus'"),
        ("flash=48q", "is not a number"),
        ("flash", "must look like key=value"),
        ("ram=0", "more than zero"),
        ("flash=1k,flash=2k", "given twice"),
        ("instructions=2KiB", "is not a number"),
        (",", "names no limit"),
    ],
)
def test_bad_budget_is_one_sentence(text, words):
    with pytest.raises(UserError, match=words):
        parse_budget(text)


# -- space -------------------------------------------------------------------------------------------
def test_default_space_and_trial_config():
    spec = parse_search(None, "test")
    assert {d.path for d in spec.dimensions} == {
        f"{s}.{k}" for s, keys in DEFAULT_SPACE.items() for k in keys
    }
    lr = next(d for d in spec.dimensions if d.path == "train.learning_rate")
    assert (lr.kind, lr.log) == ("float", True)
    from tinyae.train.config import Config

    cfg = apply_params(Config(), {"window.length": 128, "window.hop_ratio": 0.25, "model.hidden": [64, 32]})
    assert (cfg.window.length, cfg.window.hop, cfg.model.hidden) == (128, 32, [64, 32])


def test_space_entries_replace_defaults_and_fix_values():
    spec = parse_search({"space": {"model": {"variant": "plain", "latent": {"min": 2, "max": 6}}}}, "t")
    paths = {d.path: d for d in spec.dimensions}
    assert "model.variant" not in paths and spec.fixed["model.variant"] == "plain"
    assert paths["model.latent"].kind == "int" and paths["model.latent"].low == 2


@pytest.mark.parametrize(
    "space, words",
    [
        ({"model": {"latent": []}}, "empty list"),
        ({"model": {"hidden": []}}, "empty list"),
        ({"train": {"learning_rate": {"min": 1e-2, "max": 1e-3}}}, "empty range"),
        ({"train": {"learning_rate": {"min": 0.0, "max": 1e-3, "log": True}}}, "must start above 0"),
        ({"model": {"latnet": [4]}}, "unknown key 'model.latnet'"),
        ({"modle": {"latent": [4]}}, "unknown section 'modle'"),
        ({"data": {"source": ["csv"]}}, "cannot search data"),
        ({"model": {"variant": ["plain", "fancy"]}}, "is not one of"),
        ({"window": {"hop_ratio": [0.5, 2.0]}}, "must be in"),
        ({"model": {"latent": {"min": 2.5, "max": 6}}}, "integer min and max"),
    ],
)
def test_bad_space_is_one_sentence(space, words):
    with pytest.raises(UserError, match=words):
        parse_search({"space": space}, "t")


def test_search_section_is_ignored_by_train_model(tmp_path):
    from tinyae.train import config

    cfg = config.load(_write(tmp_path, TINY))
    assert cfg.window.length == 32 and not hasattr(cfg, "search")


# -- refusals before any trial ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "extra, words",
    [
        (["--budget", "flash=48k,speed=3"], "unknown budget key 'speed'"),
        (["--budget", "flash=2k"], "is below every configuration of the search space"),
        (["--budget", "instructions=500"], "is below every configuration of the search space"),
        (["--budget", BUDGET, "--target", "nano99"], "unknown --target 'nano99'"),
        (["--budget", BUDGET, "--trials", "0"], "argument --trials: 0 must be at least 1"),
        (["--budget", BUDGET, "--set", "quantize.weights=per_channel"], "cannot run on nano33ble"),
    ],
)
def test_bad_inputs_refused_before_any_trial(tmp_path, capsys, extra, words):
    import ray

    cfg = _write(tmp_path, TINY)
    out = tmp_path / "out"
    args = ["--config", str(cfg), "--out", str(out), *extra]
    if "--target" not in extra:
        args += ["--target", "nano33ble"]
    rc, err = _run_cli(args, capsys)
    assert rc == 2
    assert err.count("\n") == 1 and err.startswith("error: ") and words in err, err
    assert not out.exists() and not ray.is_initialized()


def test_empty_range_in_config_refused(tmp_path, capsys):
    cfg = _write(tmp_path, TINY + "train.learning_rate = { min = 0.01, max = 0.001 }\n")
    rc, err = _run_cli(["--config", str(cfg), "--budget", BUDGET, "--out", str(tmp_path / "o")], capsys)
    assert rc == 2 and "empty range" in err and err.count("\n") == 1


# -- one trial, in-process ---------------------------------------------------------------------------------
def _job(budget: str = "flash=64k,ram=16k,instructions=100k", target: str = "nano33ble_compiled"):
    from tinyae.tools.search.budget import resolve_target
    from tinyae.tools.search.trial import Job
    from tinyae.train import config

    cfg = config.load(None, ["window.length=32", "window.hop=16", "model.hidden=[16]", "model.latent=4",
                             "train.epochs=3"])  # fmt: skip
    t = resolve_target(target)
    cfg.quantize.targets = [t.env]
    return Job(
        cfg.to_dict(), {}, dict(parse_budget(budget).limits), dict(vars(t)), "roc_auc", 1, 1, 32
    ).to_dict()


@pytest.mark.training
def test_trial_reports_to_the_scheduler_and_scores_int8():
    from tinyae.tools.search.trial import evaluate

    reports: list[dict] = []
    res = evaluate(_job(), {}, reports.append)
    assert res["status"] == "ok" and 0.5 < res["objective"] <= 1.0 and res["score"] == res["objective"]
    assert [r["epoch"] for r in reports] == [1, 2] and all(r["phase"] == "training" for r in reports)
    assert res["flash"] <= 64 * 1024 and res["instructions"] <= 100_000 and res["holdout_roc_auc"] > 0.5


@pytest.mark.training
def test_diverging_trial_is_recorded_as_failed(monkeypatch):
    import dataclasses

    from tinyae.tools.search.trial import FAILED_SCORE, evaluate
    from tinyae.train import config

    # the schema caps train.learning_rate at 1, where Adam does not reliably diverge: lift the cap here
    key = config.schema()["train.learning_rate"]
    wide = dataclasses.replace(key, bounds=dataclasses.replace(key.bounds, le=1e13))
    monkeypatch.setitem(config.schema(), "train.learning_rate", wide)
    res = evaluate(_job(), {"train.learning_rate": 1e12}, lambda r: None)
    assert res["status"] == "failed" and res["score"] == FAILED_SCORE
    assert "diverged" in res["reason"] and "\n" not in res["reason"]


@pytest.mark.slow  # the trial builds and converts its Keras model: TensorFlow's import (~3 s), the converter
def test_over_budget_trial_is_not_trained():
    from tinyae.tools.search.trial import evaluate

    res = evaluate(_job("flash=64k,instructions=3k"), {}, lambda r: pytest.fail("a report means training"))
    assert res["status"] == "infeasible" and "instructions" in res["reason"] and "epochs" not in res
    assert -1.0 <= res["score"] < 0


def test_instruction_estimate_against_the_emulated_board():
    """tools/budget/cost.py against the exact counts tinyae.tools.bench.costmodel measured (bench/costmodel.json)."""
    from tinyae.tools.budget.cost import frontend_instructions_terms, network_instructions

    doc = json.loads((ROOT / "bench" / "costmodel.json").read_text())
    for p in doc["networks"]:
        assert network_instructions([tuple(x) for x in p["layers"]]) == pytest.approx(
            p["instructions"], rel=0.06
        )
    for p in doc["frontends"]:
        est = sum(v for _, v in frontend_instructions_terms(p))
        assert est == pytest.approx(p["instructions"], rel=0.05), p["name"]


# -- the space's spectral parameters, paths, threads --------------------------------------------------------
def test_default_space_searches_the_spectral_front_end():
    from tinyae.train.config import Config

    spec = parse_search(None, "the defaults")
    paths = {d.path for d in spec.dimensions}
    assert {"frontend.fft_frames", "frontend.bins", "frontend.log_floor_db"} <= paths
    cfg = apply_params(Config(), {"window.length": 128, "frontend.kinds": ["spectral"], "frontend.fft_frames": 2,
                                  "frontend.bins": 16, "frontend.log_floor_db": 10.0})  # fmt: skip
    assert (cfg.frontend.fft_length, cfg.frontend.bins, cfg.frontend.log_floor_db) == (64, 16, 10.0)
    # more bands than the FFT has bins: one band per bin; a spectral value in a raw trial is left alone
    small = apply_params(Config(), {"window.length": 32, "frontend.kinds": ["spectral", "stats"],
                                    "frontend.fft_frames": 4, "frontend.bins": 16})  # fmt: skip
    assert (small.frontend.fft_length, small.frontend.bins) == (8, 0)
    raw = apply_params(Config(), {"frontend.kinds": ["raw"], "frontend.fft_frames": 4, "frontend.bins": 16,
                                  "frontend.log_floor_db": 30.0})  # fmt: skip
    assert raw.frontend == Config().frontend.__class__(kinds=["raw"])
    with pytest.raises(UserError, match=r"sets both frontend\.fft_length and frontend\.fft_frames"):
        parse_search({"space": {"frontend": {"fft_length": [16], "fft_frames": [1, 2]}}}, "x.toml")
    with pytest.raises(UserError, match=r"cannot search train\.threads"):
        parse_search({"space": {"train": {"threads": [1, 2]}}}, "x.toml")


def test_relative_data_paths_are_resolved_for_the_workers(tmp_path):
    from tinyae.tools.search.runner import with_absolute_paths
    from tinyae.train import config

    cfg = config.from_dict({"data": {"source": "csv", "train": ["recordings/normal/*.csv"],
                                     "test": ["/abs/t.csv"], "file_labels": {"recordings/f/*.csv": "f"}}})  # fmt: skip
    out = with_absolute_paths(cfg, tmp_path)
    assert out.data.train == [f"{tmp_path}/recordings/normal/*.csv"] and out.data.test == ["/abs/t.csv"]
    assert out.data.file_labels == {f"{tmp_path}/recordings/f/*.csv": "f"}
    assert cfg.data.train == ["recordings/normal/*.csv"]  # best.toml keeps the user's own form


def test_a_local_ray_starts_with_the_trial_environment_and_leaves_the_callers_as_it_was(
    tmp_path, monkeypatch
):
    """Locally the trials' variables reach the workers through the environment the raylet starts with
    (not a job runtime_env, which keeps Ray from using its prestarted workers); the caller's environment is
    the same afterwards, a variable it had and one it had not."""
    import os
    import sys
    import types

    from tinyae.tools.search.runner import plan

    seen: dict = {}

    def init(**kw):
        seen.update(
            kw=kw,
            env={k: os.environ.get(k) for k in ("PYTHONPATH", "OMP_NUM_THREADS", "TF_CPP_MIN_LOG_LEVEL")},
        )

    monkeypatch.setitem(sys.modules, "ray", types.SimpleNamespace(init=init))
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    from tinyae.tools.search import runner

    p = plan(_write(tmp_path, TINY), [], BUDGET, "nano33ble_compiled", None, 2, None, tmp_path / "o", "test")
    runner._start_ray(p)
    assert "runtime_env" not in seen["kw"] and seen["kw"]["num_cpus"] == 2
    assert seen["env"] == {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    assert os.environ["OMP_NUM_THREADS"] == "7" and "TF_CPP_MIN_LOG_LEVEL" not in os.environ


def test_search_sets_the_training_threads(tmp_path, capsys):
    from tinyae.tools.search.runner import plan

    cfg = _write(tmp_path, TINY)
    p = plan(cfg, [], BUDGET, "nano33ble_compiled", None, None, None, tmp_path / "o", "test")
    assert p.cfg.train.threads == 1 and p.job().base["train"]["threads"] == 1 and p.out.is_absolute()
    rc, err = _run_cli(["--config", str(cfg), "--set", "train.threads=3", "--budget", BUDGET, "--out",
                        str(tmp_path / "o")], capsys)  # fmt: skip
    assert rc == 2 and "search.cpus_per_trial" in err


@pytest.mark.training
def test_spectral_trial_fits_its_log_floors():
    """The trial runs the pipeline's front-end stage, which fits the automatic log floors (the fault was a
    "log floor is not fitted yet" ValueError in every spectral trial)."""
    from tinyae.tools.search.trial import evaluate

    res = evaluate(_job(), {"frontend.kinds": ["spectral"], "frontend.fft_frames": 2}, lambda r: None)
    assert res["status"] == "ok", res.get("reason")
    assert res["features"] == 3 * 8  # 3 channels x the 8 bins of a 16-point FFT (32-sample window / 2)


def test_a_signal_after_the_trials_waits_for_their_rows_and_a_second_one_stops_at_once() -> None:
    import os
    import signal

    from tinyae.tools.search.runner import SearchStopped, StopSignals

    with StopSignals() as stops:
        stops.holding = True  # Tuner.fit returned: the finished trials' rows are being made
        os.kill(os.getpid(), signal.SIGINT)  # held: no exception here
        assert stops.caught is not None and stops.caught.exit_code == 130
        with pytest.raises(SearchStopped):  # a second Ctrl-C is not held
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is not stops._handle  # the previous handler is back
