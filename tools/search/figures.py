"""A trial's device figures (flash, RAM, instructions per window) from the budget estimator.

The estimator (tools/budget/estimate.py) reads a manifest; a trial has no manifest yet, so it gets a
stand-in with the keys the estimator and tools/budget/cost.py read. flash and ram are tinyae's share:
the estimate minus the target's framework figures of budgets.toml (tools/search/budget.py).
"""

from __future__ import annotations

from typing import Any

from tinyae.tools.search.budget import SearchTarget


def stand_in(
    *,
    input_size: int,
    units: list[int],
    frontend: dict[str, Any],
    length: int,
    channels: int,
    tflite_bytes: int,
    arena_bytes: int,
    scratch_bytes: int | None,
    const_bytes: int | None = None,
) -> dict[str, Any]:
    """The manifest keys the estimators read. units: every Dense layer's width, input to output."""
    m: dict[str, Any] = {
        "model": {"tflite_bytes": int(tflite_bytes), "layers": [{"units": int(u)} for u in units]},
        "input": {"size": int(input_size)},
        "output": {"size": int(units[-1])},
        "arena": {"bytes": int(arena_bytes)},
        "window": {"length": int(length), "channels": int(channels)},
        "frontend": frontend,
    }
    if scratch_bytes is not None:
        m["compiled"] = {"scratch_bytes": int(scratch_bytes)}
        if const_bytes is not None:
            m["compiled"]["const_bytes"] = int(const_bytes)
    return m


def device_figures(manifest: dict[str, Any], target: SearchTarget, budgets=None) -> dict[str, Any]:
    """{"flash", "ram", "instructions"} (tinyae's share, bytes / instructions per window) and the
    estimate's terms, for `target`'s budgets.toml entry and engine."""
    from tinyae.tools.budget.config import load_budgets
    from tinyae.tools.budget.cost import estimate_instructions
    from tinyae.tools.budget.estimate import estimate_from_manifest

    b = budgets if budgets is not None else load_budgets()
    t = b.target(target.budget_target)
    est = estimate_from_manifest(manifest, target.budget_target, target.engine, b)
    instructions, instr_terms = estimate_instructions(manifest, target.kernels)
    return {
        "flash": est.flash - t.framework_flash,
        "ram": est.ram_static - t.framework_ram,
        "instructions": instructions,
        "terms": [(fig, term, v) for fig, term, v, _ in est.terms if "framework" not in term]
        + [("instructions", term, v) for term, v in instr_terms],
    }


def lower_bound(
    *,
    input_size: int,
    units: list[int],
    frontend: dict,
    length: int,
    channels: int,
    target: SearchTarget,
    budgets,
) -> dict[str, Any]:
    """Figures no trained model of this shape can go below: the flatbuffer counted as its weights and
    int32 biases only, no arena or scratch."""
    weights = biases = 0
    fan_in = input_size
    for u in units:
        weights += fan_in * u
        biases += u
        fan_in = u
    m = stand_in(
        input_size=input_size,
        units=units,
        frontend=frontend,
        length=length,
        channels=channels,
        tflite_bytes=weights + 4 * biases,
        arena_bytes=0,
        scratch_bytes=0,
        const_bytes=weights + 4 * biases,
    )
    return device_figures(m, target, budgets)
