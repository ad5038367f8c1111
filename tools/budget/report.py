"""Budget tables (rich), the JSON document for CI, and the change against a baseline JSON.

JSON document (schema 1), written by `--json FILE` and read back by `--baseline FILE`:
    schema: 1, tool: "tinyae-budget", source: "elf" | "estimate", target: str, engine: str | null,
    input: path of the ELF or manifest,
    capacity: {flash: int, ram: int},
    budgets: {flash|ram|model|engine|arena|stack_headroom: {used: int, budget: int | null,
              headroom: int | null, percent: float | null (used/budget; null for a min), kind: "max" | "min",
              region: "flash" | "ram", ok: bool}},
    ram: {static: int, stack_reserved: int, stack_source: str | null, heap_reserved: int, total: int},
    sizes: {text, data, bss}            (elf only; equal to arm-none-eabi-size's Berkeley figures)
    groups: {model|engine|tflm|framework|other|unattributed: {flash: int, ram: int}}   (elf only)
    other_regions: {name: bytes}        (elf only: IRAM, RTC, ... not budgeted)
    symbols: [{name, demangled, size, flash, ram, group, section, file}]  (elf only, all sized symbols)
    terms: [{figure, term, bytes, how}] (estimate only)
    violations: [{budget: str, message: str, excess: int}],
    ok: bool
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console

from tinyae import terminal
from tinyae.errors import UserError

from .config import BUDGET_KEYS, MINIMUM_BUDGETS, Target
from .figures import Estimate, Figures, Measurement, Violation

SCHEMA = 1
TOOL = "tinyae-budget"


def budget_rows(figures: Figures, target: Target) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for key, (region, _label) in BUDGET_KEYS.items():
        used = figures.value(key)
        if used is None:
            continue
        limit = target.budgets.get(key)
        minimum = key in MINIMUM_BUDGETS
        headroom = None if limit is None else (used - limit if minimum else limit - used)
        percent = None if not limit or minimum else round(100.0 * used / limit, 1)
        rows[key] = {
            "used": used,
            "budget": limit,
            "headroom": headroom,
            "percent": percent,
            "kind": "min" if minimum else "max",
            "region": region,
            "ok": headroom is None or headroom >= 0,
        }
    return rows


def to_json(figures: Figures, target: Target, violations: list[Violation], input_path: str) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "tool": TOOL,
        "source": figures.source,
        "target": figures.target,
        "engine": figures.engine,
        "input": input_path,
        "capacity": {"flash": figures.flash_capacity, "ram": figures.ram_capacity},
        "budgets": budget_rows(figures, target),
        "ram": {
            "static": figures.ram_static,
            "stack_reserved": figures.stack_reserved,
            "stack_source": figures.stack_source,
            "heap_reserved": figures.heap_reserved,
            "total": figures.ram,
        },
    }
    if isinstance(figures, Measurement):
        doc["sizes"] = dict(figures.berkeley)
        doc["groups"] = {k: dict(v) for k, v in figures.groups.items()}
        doc["other_regions"] = dict(figures.other_regions)
        doc["symbols"] = [
            {
                "name": r.name,
                "demangled": r.demangled,
                "size": r.size,
                "flash": r.flash,
                "ram": r.ram,
                "group": r.group,
                "section": r.section,
                "file": r.file,
            }
            for r in figures.symbols
        ]
    if isinstance(figures, Estimate):
        doc["terms"] = [{"figure": f, "term": t, "bytes": b, "how": h} for f, t, b, h in figures.terms]
    doc["violations"] = [{"budget": v.key, "message": v.message, "excess": v.excess} for v in violations]
    doc["ok"] = not violations
    return doc


def write_json(doc: dict[str, Any], path: str | Path) -> None:
    from tinyae import atomic

    atomic.write_text(path, json.dumps(doc, indent=2) + "\n")


def load_baseline(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise UserError(f"baseline {p} does not exist; write one with `--json {p}` on the base branch")
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserError(f"baseline {p} is not valid JSON ({exc}); regenerate it with --json") from exc
    if not isinstance(doc, dict) or doc.get("tool") != TOOL or doc.get("schema") != SCHEMA:
        raise UserError(f"baseline {p} is not a {TOOL} schema {SCHEMA} document; regenerate it with --json")
    return doc


def diff(doc: dict[str, Any], baseline: dict[str, Any], top: int) -> dict[str, Any]:
    """Changes of every budget figure, group and symbol against the baseline document."""
    budgets = {
        key: row["used"] - baseline["budgets"][key]["used"]
        for key, row in doc["budgets"].items()
        if key in baseline.get("budgets", {})
    }
    groups = {
        g: {r: v[r] - baseline.get("groups", {}).get(g, {}).get(r, 0) for r in ("flash", "ram")}
        for g, v in doc.get("groups", {}).items()
    }
    now = {s["name"]: s["size"] for s in doc.get("symbols", [])}
    before = {s["name"]: s["size"] for s in baseline.get("symbols", [])}
    changes = []
    for name in now.keys() | before.keys():
        delta = now.get(name, 0) - before.get(name, 0)
        if delta:
            status = "new" if name not in before else ("removed" if name not in now else "changed")
            changes.append(
                {
                    "name": name,
                    "before": before.get(name, 0),
                    "after": now.get(name, 0),
                    "delta": delta,
                    "status": status,
                }
            )
    changes.sort(key=lambda c: (-abs(c["delta"]), c["name"]))
    return {"budgets": budgets, "groups": groups, "symbols": changes[:top], "symbols_changed": len(changes)}


def _b(n: int | None) -> str:
    return "—" if n is None else f"{n:,}"


def _d(n: int) -> str:
    return f"{n:+,}" if n else "0"


def make_console() -> Console:
    """COLUMNS when set, else the terminal's width, else 120 columns when piped."""
    return terminal.console(piped_width=120, soft_wrap=False)


def print_report(
    console: Console,
    figures: Figures,
    doc: dict[str, Any],
    target: Target,
    top: int,
    delta: dict[str, Any] | None = None,
) -> None:
    kind = "estimate" if figures.source == "estimate" else "image"
    console.print(
        f"[bold]{target.name}[/] {kind}, engine {figures.engine or 'unknown'}: flash capacity "
        f"{figures.flash_capacity:,} B, RAM capacity {figures.ram_capacity:,} B"
    )
    table = terminal.table()
    table.add_column("budget")
    for col in ("used B", "budget B", "headroom B", "% of budget"):
        table.add_column(col, justify="right")
    if delta is not None:
        table.add_column("Δ B", justify="right")  # short: 80 columns hold the table without folding
    table.add_column("")
    for key, row in doc["budgets"].items():
        label = BUDGET_KEYS[key][1] + (" (min)" if row["kind"] == "min" else "")
        cells = [
            label,
            _b(row["used"]),
            _b(row["budget"]),
            _b(row["headroom"]),
            "—" if row["percent"] is None else f"{row['percent']:.1f}%",
        ]
        if delta is not None:
            cells.append(_d(delta["budgets"].get(key, 0)))
        cells.append("[green]ok[/]" if row["ok"] else "[bold red]OVER[/]")
        table.add_row(*cells)
    console.print(table)
    if delta is not None:
        console.print("Δ B: bytes more (+) or fewer (-) than the baseline (--baseline).", highlight=False)
    ram = doc["ram"]
    console.print(
        f"RAM = static {ram['static']:,} + stack {ram['stack_reserved']:,} ({ram['stack_source']})"
        f" + heap {ram['heap_reserved']:,} B"
        + (
            f"; arm-none-eabi-size: text {doc['sizes']['text']:,} data {doc['sizes']['data']:,}"
            f" bss {doc['sizes']['bss']:,}"
            if "sizes" in doc
            else ""
        )
    )
    if isinstance(figures, Estimate):
        terms = terminal.table(title="estimate terms", title_justify="left")
        for col in ("figure", "term"):
            terms.add_column(col)
        terms.add_column("bytes", justify="right")
        terms.add_column("from")
        for f, t, b, h in figures.terms:
            terms.add_row(f, t, f"{b:,}", h)
        console.print(terms)
    if isinstance(figures, Measurement):
        groups = terminal.table(title="by group", title_justify="left")
        groups.add_column("group")
        groups.add_column("flash B", justify="right")
        groups.add_column("RAM B", justify="right")
        if delta is not None:
            groups.add_column("Δ flash", justify="right")
            groups.add_column("Δ RAM", justify="right")
        for g, v in doc["groups"].items():
            cells = [g, f"{v['flash']:,}", f"{v['ram']:,}"]
            if delta is not None:
                dg = delta["groups"].get(g, {"flash": 0, "ram": 0})
                cells += [_d(dg["flash"]), _d(dg["ram"])]
            groups.add_row(*cells)
        console.print(groups)
        if figures.other_regions:
            console.print(
                "other regions (not budgeted): "
                + ", ".join(f"{k} {v:,} B" for k, v in sorted(figures.other_regions.items()))
            )
        syms = terminal.table(title=f"top {top} symbols by size", title_justify="left")
        syms.add_column("symbol", overflow="fold")
        syms.add_column("bytes", justify="right")
        syms.add_column("group")
        syms.add_column("section")
        for r in figures.symbols[:top]:
            syms.add_row(r.demangled, f"{r.size:,}", r.group, r.section)
        console.print(syms)
    if delta is not None and delta["symbols"]:
        ch = terminal.table(
            title=f"largest symbol changes vs baseline ({delta['symbols_changed']} changed)",
            title_justify="left",
        )
        ch.add_column("symbol", overflow="fold")
        for col in ("before", "after", "Δ"):
            ch.add_column(col, justify="right")
        ch.add_column("")
        for c in delta["symbols"]:
            ch.add_row(c["name"], f"{c['before']:,}", f"{c['after']:,}", _d(c["delta"]), c["status"])
        console.print(ch)
