"""A trial's device figures (flash, RAM, instructions per window) from the budget estimator.

The estimator (tools/budget/estimate.py) reads a manifest; a trial has no manifest yet, so it gets a
stand-in with the keys the estimator and tools/budget/cost.py read. flash and ram are tinyae's share:
the estimate's engine, model, arena/scratch, I/O-buffer and front-end terms (NOT_IN_SHARE names the
others: the board's framework, the serial protocol's frames, on-site calibration).
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
    est = estimate_from_manifest(manifest, target.budget_target, target.engine, b)
    instructions, instr_terms = estimate_instructions(manifest, target.kernels)
    share = [(fig, term, v) for fig, term, v, _ in est.terms if _in_share(term)]
    return {
        "flash": sum(v for fig, _, v in share if fig == "flash"),
        "ram": sum(v for fig, _, v in share if fig == "ram"),
        "instructions": instructions,
        "terms": share + [("instructions", term, v) for term, v in instr_terms],
    }


# Terms of the image estimate outside tinyae's share (README "Finding the model that fits"): the board's
# framework, and the application around the detector (serial protocol, on-site calibration), whose code
# every tinyae firmware holds whatever the model; the budget gate checks the whole image.
NOT_IN_SHARE = ("framework", "protocol frames", "on-site calibration", "stack reservation")


def _in_share(term: str) -> bool:
    return not any(word in term for word in NOT_IN_SHARE)


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
