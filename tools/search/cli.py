"""`tinyae search`: budget-constrained model search (a thin argparse entry; see README).

    tinyae search --config configs/default.toml --budget flash=48k,ram=16k,instructions=200k \
        [--target nano33ble|nano33ble_compiled|esp32dev|esp32dev_compiled|mps2_an386] [--trials N] \
        [--workers N] [--address ray://HOST:10001] [--out build/search] [--resume] [--finalists K]

Writes to --out: results.csv / results.json (every trial), pareto.png, report.md / report.html,
best.toml (the best feasible configuration, ready for `tinyae model --config`), model/ (that
configuration trained and exported), finalists/ (each finalist's TOML, model and measurements).
Exit status: 0 with a feasible best, 1 when no trial fits the budget, 2 on a usage error (before
any trial runs), 130 / 143 when Ctrl-C / SIGTERM stopped it (the finished trials kept and written;
`--resume` continues).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from tinyae import atomic
from tinyae.args import non_negative_int, positive_int
from tinyae.errors import UserError, taken


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    s = sub.add_parser(
        "search", help="search the best detector that fits a device budget (Ray Tune + Optuna)"
    )
    s.add_argument(
        "--config", type=Path, default=None, help="experiment TOML, with an optional [search] section"
    )
    s.add_argument(
        "--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override a config value"
    )
    s.add_argument("--budget", required=True, help="limits, e.g. flash=48k,ram=16k,instructions=200k")
    s.add_argument("--target", default="nano33ble", help="board env or mps2_an386 (default nano33ble)")
    s.add_argument(
        "--trials", type=positive_int, default=None, help="trials to run (default: [search] trials, 30)"
    )
    s.add_argument(
        "--workers", type=positive_int, default=None, help="concurrent local trials (default: the CPU count)"
    )
    s.add_argument(
        "--address", default=None, help="an existing Ray cluster: ray://HOST:10001, HOST:PORT or auto"
    )
    s.add_argument(
        "--out", type=Path, default=Path("build/search"), help="output directory (default build/search)"
    )
    s.add_argument("--resume", action="store_true", help="continue the interrupted search in --out")
    s.add_argument(
        "--finalists",
        type=non_negative_int,
        default=None,
        help="best trials checked on the device (default 3, 0: none)",
    )
    s.add_argument("--quiet", action="store_true", help="no progress view")
    s.set_defaults(func=run)
    return s


def run(args: argparse.Namespace) -> int:
    command = args.command_line
    from tinyae.tools.search import runner

    p = runner.plan(
        args.config,
        args.set,
        args.budget,
        args.target,
        args.trials,
        args.workers,
        args.address,
        args.out,
        command,
    )
    if args.finalists is not None and args.finalists < 0:
        raise UserError(f"--finalists {args.finalists} must be 0 or more")
    _say(
        f"search: {p.trials} trials on "
        f"{'Ray at ' + p.address if p.address else f'{p.workers} local Ray worker(s)'}, "
        f"target {p.target.description}, budget {p.budget.text()}; selection: {p.selection}"
    )
    resume = f"the same command with --resume continues it in {p.out}"
    with runner.StopSignals() as stops:
        return _run(p, args, stops, resume)


def _run(p, args: argparse.Namespace, stops, resume: str) -> int:
    from tinyae.tools.search import runner

    try:
        outcome = runner.run(p, resume=args.resume, quiet=args.quiet, stops=stops)
        rows = outcome.rows
        if outcome.stopped is not None:
            return stopped(p, outcome)
        if len(rows) < p.trials:
            _say(
                f"the search ended after {len(rows)} of {p.trials} trials; the results "
                f"below cover those, and {resume}"
            )
        k = args.finalists if args.finalists is not None else p.spec.settings.finalists
        return finish(p, rows, outcome.default, outcome.wall, k)
    except runner.SearchStopped as exc:  # before the trials (Ray's start, the default) or among finalists
        taken(exc)
        print(f"tinyae: the search was stopped by {exc.name}; the finished trials are kept and {resume}",
              file=sys.stderr)  # fmt: skip
        return exc.exit_code


def stopped(p, outcome) -> int:
    """A search stopped by Ctrl-C or SIGTERM during its trials: the finished trials' table and report are
    written (no finalists), and the command exits 130 or 143."""
    from tinyae.tools.search import report

    rows, default = outcome.rows, dict(outcome.default)
    for r in rows:
        r["settings"] = trial_config(p, r)[1]
    default["settings"] = {}
    doc = _document(p, rows, default, outcome.wall)
    doc["stopped"] = outcome.stopped.name
    report.write_table([default, *rows], p.out)
    (p.out / "results.json").write_text(json.dumps(doc, indent=2, default=str) + "\n")
    md = report.markdown(doc)
    (p.out / "report.md").write_text(md)
    (p.out / "report.html").write_text(report.html_page(md))
    s = doc["summary"]
    print(
        f"tinyae: the search was stopped by {outcome.stopped.name}: {s['trials'] - s['interrupted']} trials "
        f"finished and kept, {s['interrupted']} interrupted (run again by --resume), "
        f"{p.trials - s['trials']} not started; results so far in {p.out / 'results.csv'}; "
        f"the same command with --resume continues it in {p.out}",
        file=sys.stderr,
    )
    return outcome.stopped.exit_code


def _say(msg: str) -> None:
    from rich.console import Console

    Console(stderr=True, highlight=False).print(f"[bold cyan]tinyae[/] {msg}")


def trial_config(p, row: dict[str, Any]):
    from tinyae.tools.search.space import apply_params

    choice = {d.path for d in p.spec.dimensions if d.kind == "choice"}
    values = {k: json.loads(v) if k in choice else v for k, v in row.get("values", {}).items()}
    return apply_params(p.cfg, {**p.spec.fixed, **values}), values


def finish(p, rows: list[dict], default: dict, wall: float, k: int) -> int:
    from tinyae.tools.search import finalists as fin
    from tinyae.tools.search import report
    from tinyae.train.manifest import Manifest
    from tinyae.train.pipeline import is_model_file

    out = p.out
    for r in rows:  # the values as config values (Ray holds the choices as their JSON text)
        r["settings"] = trial_config(p, r)[1]
    default["settings"] = {}
    ok = sorted((r for r in rows if r.get("status") == "ok"), key=lambda r: -r["objective"])
    checked: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    best_dir: Path | None = None
    for row in ok[: max(k, 1)]:
        cfg, _ = trial_config(p, row)
        fdir = out / "finalists" / row["trial_id"]
        toml = out / "finalists" / f"{row['trial_id']}.toml"
        toml.parent.mkdir(parents=True, exist_ok=True)
        cfg.save(toml)
        _say(
            f"finalist {row['trial_id']} ({p.spec.settings.metric} {row['objective']:.4f}): "
            f"training from {toml}"
        )
        entry: dict[str, Any] = {
            "trial_id": row["trial_id"],
            "toml": str(toml),
            "model_dir": str(fdir / "model"),
        }
        try:
            manifest = fin.train_finalist(
                cfg, fdir / "model", f"tinyae model --config {toml} --out {fdir / 'model'}", str(toml)
            )
        except UserError as exc:  # recorded; the next finalist is tried
            entry.update(reproduced=False, notes=[], verdict=f"failed to train from its TOML: {exc}")
            checked.append(entry)
            continue
        same = manifest["model"]["sha256"] == row.get("sha256")
        entry["reproduced"] = same
        notes = [] if same else [_differs(p, row, manifest)]
        if k > 0:
            _say(f"finalist {row['trial_id']}: checking the estimate on the emulated board")
            try:
                m = fin.measure(fdir / "model", manifest, p.target, fdir / "device")
            except UserError as exc:
                m = {"checks": [], "measured": {}, "estimate": {}, "notes": [f"not measured: {exc}"]}
            entry.update(checks=m["checks"], measured=m["measured"], estimate=m["estimate"])
            notes += m["notes"]
            broken = p.budget.check(m["measured"])
        else:
            broken = []
        entry["notes"] = notes
        disagree = [c["figure"] for c in entry.get("checks", []) if c["disagree"]]
        entry["verdict"] = (
            ("over budget when measured: " + "; ".join(broken))
            if broken
            else "within budget" + (" (measured)" if entry.get("measured") else " (estimate)")
        ) + (f"; estimate and measurement disagree on {', '.join(disagree)}" if disagree else "")
        checked.append(entry)
        if not broken and best is None:
            best, best_dir = row, fdir / "model"
            if k <= 1:
                break
    doc = _document(p, rows, default, wall)
    doc.update(best=best, finalists=checked)
    if best is not None and best_dir is not None:
        cfg, _ = trial_config(p, best)
        cfg.save(out / "best.toml")
        with atomic.replace_dir(out / "model", fresh=True, owned=is_model_file) as stage:
            shutil.copytree(best_dir, stage, dirs_exist_ok=True)
            # the copy is rebuilt from best.toml (the same config as the finalist's TOML)
            copied = Manifest.load(stage / "manifest.json")
            copied.built_from.config_file = str(out / "best.toml")
            copied.built_from.command = f"tinyae model --config {out / 'best.toml'} --out {out / 'model'}"
            copied.write(stage / "manifest.json")
        doc["best_toml"], doc["model_dir"] = str(out / "best.toml"), str(out / "model")
    report.write_table([default, *rows], out)
    atomic.write_text(out / "results.json", json.dumps(doc, indent=2, default=str) + "\n")
    report.plot(
        rows,
        default,
        best,
        p.budget.limits,
        p.spec.settings.metric,
        out / "pareto.png",
        f"{p.cfg.data.source} on {p.target.env}, budget {p.budget.text()}: {len(rows)} trials",
    )
    md = report.markdown(doc)
    atomic.write_text(out / "report.md", md)
    atomic.write_text(out / "report.html", report.html_page(md))
    s = doc["summary"]
    _say(
        f"{s['trials']} trials in {s['wall_s']:.0f} s ({s['trials_per_minute']:.2f}/min): "
        f"{s['ok']} feasible, {s['infeasible']} over budget, {s['stopped']} stopped early, "
        f"{s['failed']} failed; report {out / 'report.html'}"
    )
    if best is None:
        print(
            f"error: no trial fits the budget {p.budget.text()} on {p.target.env} "
            f"({s['ok']} feasible by the estimate, none within it when measured); see {out / 'report.md'}",
            file=sys.stderr,
        )
        return 1
    d = default.get("objective")
    _say(
        f"best feasible: {p.spec.settings.metric} {best['objective']:.4f} (default "
        f"{'n/a' if d is None else f'{d:.4f}'}), flash {best['flash']:,} B, RAM {best['ram']:,} B, "
        f"{best['instructions']:,} instructions/window -> {out / 'best.toml'}, model in {out / 'model'}"
    )
    return 0


def _differs(p, row: dict[str, Any], manifest: dict[str, Any]) -> str:
    """Why a finalist's model may differ from its trial's: the one sentence the report carries."""
    where = (
        f"the trial ran on Ray node {row.get('node', '?')} of {p.address}, whose CPU kind or TensorFlow build "
        "may round differently"
        if p.address
        else "both ran on this machine with the same TensorFlow, so this is a reproducibility fault to report"
    )
    return (
        f"the model trained from the TOML differs from the trial's (sha256 {manifest['model']['sha256'][:12]} vs "
        f"{str(row.get('sha256'))[:12]}), both with train.threads = {p.cfg.train.threads}; {where}"
    )


def _document(p, rows: list[dict], default: dict, wall: float) -> dict[str, Any]:
    """results.json's common part (finish adds the best and the finalists)."""
    from tinyae.tools.search.data import SELECTION_PROTOCOL

    return {
        "command": p.command,
        "config": str(p.cfg.data.source),
        "target": p.target.env,
        "budget": p.budget.text(),
        "metric": p.spec.settings.metric,
        "workers": p.workers,
        "address": p.address,
        "objective_text": _objective_text(p),
        "selection": p.selection,
        "protocol": SELECTION_PROTOCOL,
        "space": {d.path: d.describe() for d in p.spec.dimensions},
        "fixed": p.spec.fixed,
        "default": default,
        "rows": rows,
        "summary": _summary(rows, wall, p.trials_s),
        "best": None,
        "finalists": [],
    }


def _objective_text(p) -> str:
    m = p.spec.settings.metric
    if p.labelled:
        return f"int8 {m} on the labelled selection windows (host reference = TFLM)"
    return (
        f"PROXY (no labels): int8 {m} of held-out normal validation windows against synthetic corruptions "
        "of them (gain step, noise, spike, stuck channel) — not a measured detection quality"
    )


def _summary(rows: list[dict], wall: float, trials_s: float) -> dict[str, Any]:
    """Counts by status; wall_s = Ray start + the default + the trials; trials_s = the trials alone."""
    statuses = ("ok", "infeasible", "stopped", "failed", "interrupted")
    by = {s: sum(1 for r in rows if r.get("status") == s) for s in statuses}
    return {
        "trials": len(rows),
        **by,
        "wall_s": round(wall, 1),
        "trials_s": round(trials_s, 1),
        "trials_per_minute": len(rows) / (wall / 60.0),
        "trials_per_minute_trials_only": len(rows) / (trials_s / 60.0) if trials_s > 0 else None,
    }
