"""The search's outputs: the table of every trial (CSV and JSON), the Pareto plots, the report.

Pareto plots: the objective against flash and against instructions per window, one point per trial
that has figures (feasible, infeasible, stopped early), the budget drawn as a line, the Pareto front
of the feasible trials joined, the hand-set default and the best marked.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from tinyae import atomic

COLUMNS = (
    "trial_id",
    "status",
    "objective",
    "objective_float",
    "holdout_roc_auc",
    "holdout_pr_auc",
    "flash",
    "ram",
    "instructions",
    "macs",
    "shape",
    "window",
    "hop",
    "weights",
    "epochs",
    "seconds",
    "reason",
)


def _settings(r: dict) -> dict:
    return r.get("settings", r.get("values", {}))


def _value_columns(rows: list[dict]) -> list[str]:
    return sorted({k for r in rows for k in _settings(r)})


def write_table(rows: list[dict], out: Path) -> None:
    """results.csv (one row per trial, values as columns) and results.json."""
    vcols = _value_columns(rows)
    with atomic.files() as g, g.path(out / "results.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow([*COLUMNS, *vcols])
        for r in rows:
            w.writerow([_cell(r.get(c)) for c in COLUMNS] + [_cell(_settings(r).get(v)) for v in vcols])


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, list | dict):
        return json.dumps(v)
    return str(v)


def pareto_front(rows: list[dict], figure: str) -> list[dict]:
    """Feasible trials no other feasible trial beats on both the objective and `figure`."""
    ok = sorted((r for r in rows if r.get("status") == "ok"), key=lambda r: (r[figure], -r["objective"]))
    front, best = [], -1.0
    for r in ok:
        if r["objective"] > best:
            front.append(r)
            best = r["objective"]
    return front


def plot(
    rows: list[dict],
    default: dict,
    best: dict | None,
    limits: dict[str, int],
    metric: str,
    path: Path,
    title: str,
) -> None:
    from tinyae.train.figures import figure, save

    fig, axes = figure(10, 4.8, ncols=2)
    styles = {
        "ok": ("o", "tab:blue", "feasible"),
        "infeasible": ("x", "tab:red", "over budget (not trained: drawn along the bottom)"),
        "stopped": ("v", "tab:gray", "stopped early (float objective at the stop)"),
    }
    found = [r.get("objective") or r.get("objective_float") for r in [*rows, default]]
    known = [float(v) for v in found if v is not None]
    floor = (min(known) - 0.02) if known else 0.0
    for ax, fig_key, unit in (
        (axes[0], "flash", "flash (B, tinyae's share)"),
        (axes[1], "instructions", "instructions per window"),
    ):
        for status, (marker, color, label) in styles.items():
            pts = [r for r in rows if r.get("status") == status and r.get(fig_key) is not None]
            if not pts:
                continue
            ys = [r.get("objective") if status == "ok" else (r.get("objective_float") or floor) for r in pts]
            ax.scatter([r[fig_key] for r in pts], ys, marker=marker, c=color, label=label, alpha=0.75)
        front = pareto_front(rows, fig_key)
        if front:
            ax.plot(
                [r[fig_key] for r in front],
                [r["objective"] for r in front],
                "-",
                c="tab:blue",
                lw=1,
                label="Pareto front (feasible)",
            )
        if default.get(fig_key) is not None and default.get("objective") is not None:
            ax.scatter(
                [default[fig_key]],
                [default["objective"]],
                marker="*",
                s=220,
                c="tab:orange",
                edgecolors="black",
                label="hand-set default",
                zorder=5,
            )
        if best is not None:
            ax.scatter(
                [best[fig_key]],
                [best["objective"]],
                marker="o",
                s=200,
                facecolors="none",
                edgecolors="tab:green",
                linewidths=2,
                label="best feasible",
                zorder=6,
            )
        if fig_key in limits:
            ax.axvline(limits[fig_key], c="tab:red", ls="--", lw=1.2, label=f"budget {limits[fig_key]:,}")
        ax.set_xlabel(unit)
        ax.set_ylabel(f"int8 {metric} (selection windows)")
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc="outside lower center", ncols=3, frameon=False)
    fig.suptitle(title, fontsize=10)
    with atomic.files() as g:
        save(fig, g.path(path))


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _interrupted(s: dict[str, Any]) -> str:
    return f", {s['interrupted']} interrupted" if s.get("interrupted") else ""


def _where(doc: dict[str, Any]) -> str:
    return (
        f"the Ray cluster at {doc['address']}" if doc.get("address") else f"{doc['workers']} local worker(s)"
    )


def markdown(doc: dict[str, Any]) -> str:
    """report.md: what was searched, the outcome, the best against the default, the finalists' check."""
    s = doc["summary"]
    metric = doc["metric"]
    lines = [
        f"# tinyae search: {doc['config']} for {doc['target']} within {doc['budget']}",
        "",
        f"Command: `{doc['command']}`",
        "",
        f"- objective: {doc['objective_text']}",
        f"- selection: {doc['selection']}",
        f"- trials: {s['trials']} ({s['ok']} feasible, {s['infeasible']} over budget, "
        f"{s['stopped']} stopped early, "
        f"{s['failed']} failed{_interrupted(s)}) in {s['wall_s']:.0f} s on {_where(doc)}: "
        f"{s['trials_per_minute']:.2f} trials/min",
        "",
        *(
            [
                f"**Stopped by {doc['stopped']}**: the trials above are those Ray Tune finished; the same "
                "command with `--resume` runs the interrupted and the remaining ones, then the finalists.",
                "",
            ]
            if doc.get("stopped")
            else []
        ),
        "## Best feasible against the hand-set default",
        "",
        f"| | {metric} (selection) | holdout ROC AUC | holdout PR AUC | flash B | RAM B | instructions "
        "| shape | window |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for name, r in (("hand-set default", doc["default"]), ("best feasible", doc.get("best"))):
        if not r:
            lines.append(f"| {name} | none | | | | | | | |")
            continue
        lines.append(
            f"| {name} ({r.get('status')}) | {_fmt(r.get('objective'))} | {_fmt(r.get('holdout_roc_auc'))} | "
            f"{_fmt(r.get('holdout_pr_auc'))} | {_fmt(r.get('flash'))} | {_fmt(r.get('ram'))} | "
            f"{_fmt(r.get('instructions'))} | {r.get('shape', '')} | {r.get('window', '')} |"
        )
    if doc["default"].get("reason"):
        lines += ["", f"The default: {doc['default']['reason']}"]
    if doc.get("best"):
        lines += ["", f"Best trial values: `{json.dumps(_settings(doc['best']), sort_keys=True)}`"]
        lines += [
            "",
            f"Ready config: `{doc.get('best_toml', '')}`; model directory: `{doc.get('model_dir', '')}`",
        ]
    lines += [
        "",
        "![Pareto plots](pareto.png)",
        "",
        "## Finalists: estimate against the linked image and QEMU",
        "",
    ]
    for f in doc.get("finalists", []):
        lines.append(f"- trial {f['trial_id']}: {f['verdict']}")
        for c in f.get("checks", []):
            lines.append(
                f"  - {c['figure']}: estimate {_fmt(c['estimate'])}, measured {_fmt(c['measured'])} "
                f"({c['difference']:+.1%}){' — disagreement' if c['disagree'] else ''}; {c['how']}"
            )
        for note in f.get("notes", []):
            lines.append(f"  - {note}")
    if not doc.get("finalists"):
        lines.append("none checked")
    lines += [
        "",
        "## Every trial",
        "",
        "| trial | status | objective | flash | RAM | instructions | shape | window | reason |",
        "|---|---|---:|---:|---:|---:|---|---:|---|",
    ]
    for r in sorted(
        doc["rows"], key=lambda r: -(r.get("objective") if r.get("objective") is not None else -9)
    ):
        lines.append(
            f"| {r['trial_id']} | {r.get('status')} | {_fmt(r.get('objective'))} | {_fmt(r.get('flash'))} | "
            f"{_fmt(r.get('ram'))} | {_fmt(r.get('instructions'))} | {r.get('shape', '')} | "
            f"{r.get('window', '')} | "
            f"{(r.get('reason') or '').replace('|', '/')} |"
        )
    lines += ["", "## Protocol", "", doc["protocol"], ""]
    return "\n".join(lines)


def html_page(md: str) -> str:
    """report.html: the Markdown report rendered as HTML (CommonMark with tables, markdown-it-py)."""
    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(md)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>tinyae search</title>'
        "<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:1.5em auto;padding:0 1em;"
        "line-height:1.45;color:#222} table{border-collapse:collapse;margin:0.8em 0 1.4em;font-size:0.92em}"
        "td,th{border:1px solid #ccc;padding:3px 8px;vertical-align:top;overflow-wrap:break-word} "
        "th{background:#f3f3f3} img{max-width:100%;height:auto} code{background:#f3f3f3;padding:0 0.2em;"
        "overflow-wrap:anywhere} h2{margin-top:1.6em;border-bottom:1px solid #ddd}</style></head><body>"
        + body
        + "</body></html>\n"
    )
