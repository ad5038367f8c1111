"""The finalists: the best feasible trials trained again by `tinyae model` from their TOML,
then their estimated figures checked against linked images and exact QEMU instruction counts.

Compiled engine (the *_compiled envs and mps2_an386): the network's flash, RAM and instructions come
from the bench image of tools/bench/device.py (the engine and model linked into a harness, minus the
same harness without them; tae_engine_invoke counted with -icount), the front-end's from
tools/bench/frontend.py; the I/O buffers are the estimate's (the harnesses have none). The whole
emulated image (tinyae.tools.emulator.qemu.build_image) is also linked and checked against budgets.toml's
mps2_an386 gate. TFLM envs: the emulated image with the TFLM engine built from the env's library
(when its sources are at hand, mk/tflm.mk) gives model, engine and arena bytes; TFLM's instructions
are not measured (no harness) and say so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tinyae.errors import UserError
from tinyae.tools.search.budget import SearchTarget

DISAGREE = 0.10  # |estimate / measured - 1| above this is reported as a disagreement


def train_finalist(cfg, out_dir: Path, command: str, config_file: str | None = None) -> dict[str, Any]:
    """Train cfg into out_dir; the manifest in its JSON layout (what the estimators read)."""
    from tinyae.train.pipeline import run

    # run() replaces out_dir whole, all or nothing; the directory records that a search built it (make
    # never rebuilds it from another config: train/inputs.py)
    m = run(cfg, out_dir, command, show_progress=False, config_file=config_file, builder="tinyae search")
    return m.to_dict()


def _check(figure: str, estimate: int, measured: int, how: str) -> dict[str, Any]:
    diff = estimate / measured - 1.0 if measured else 0.0
    return {
        "figure": figure,
        "estimate": int(estimate),
        "measured": int(measured),
        "difference": diff,
        "disagree": abs(diff) > DISAGREE,
        "how": how,
    }


def measure(model_dir: Path, manifest: dict, target: SearchTarget, work: Path) -> dict[str, Any]:
    """{'checks': [...], 'measured': {figure: value}, 'notes': [...]} for one finalist."""
    from tinyae.tools.bench.common import have
    from tinyae.tools.search.figures import device_figures

    est = device_figures(manifest, target)
    terms = {(fig, term): v for fig, term, v in est["terms"]}
    out: dict[str, Any] = {
        "estimate": {k: est[k] for k in ("flash", "ram", "instructions")},
        "checks": [],
        "measured": {},
        "notes": [],
    }
    missing = have("arm-none-eabi-gcc", "qemu-system-arm")
    if missing:
        out["notes"].append(f"not measured on the emulated board: {missing}")
        return out
    io = next((v for (fig, term), v in terms.items() if term == "I/O buffers"), 0)
    if target.engine == "compiled":
        _measure_compiled(model_dir, manifest, work, est, io, out)
    else:
        _measure_tflm(model_dir, manifest, target, work, est, out)
    return out


def _measure_compiled(model_dir: Path, manifest: dict, work: Path, est: dict, io: int, out: dict) -> None:
    import numpy as np

    from tinyae.tools.bench import device, frontend
    from tinyae.tools.budget import check as budget_check
    from tinyae.tools.budget import load_budgets, measure_elf
    from tinyae.tools.budget.estimate import normalization_bytes
    from tinyae.tools.emulator.qemu import build_image
    from tinyae.train.frontend import FrontendSpec

    img = device.build(model_dir, work / "bench")
    base = device.build(model_dir, work / "bench-baseline", baseline=True)
    res = device.run_image(img.elf)
    if res["mismatches"]:
        raise UserError(
            f"the compiled engine of {model_dir} disagrees with the host reference on the emulated board"
        )
    flash = img.flash - base.flash
    ram = img.ram_static - base.ram_static
    instr = res["min"]
    fe_note = norm_note = ""
    if manifest["frontend"]["kinds"] != ["raw"]:
        spec = FrontendSpec.from_manifest(manifest)
        windows = np.load(model_dir / "test_vectors.npz")["windows"][:4]
        fe = frontend.measure(spec, windows, work / "frontend", config_dir=model_dir)
        norm = normalization_bytes(manifest)  # in model_config.h, which neither harness links
        flash += fe["flash_added"] + norm
        ram += fe["ram_added"]
        instr += fe["instructions_max"]
        fe_note = " + the front-end harness"
        norm_note = f" + {norm:,} B of per-feature normalization constants (model_config.h)"
    out["measured"] = {"flash": flash, "ram": ram + io, "instructions": instr}
    out["checks"] += [
        _check(
            "flash",
            est["flash"],
            flash,
            f"engine + model{fe_note} linked for the Cortex-M4F, minus the bare harness{norm_note}",
        ),
        _check(
            "ram",
            est["ram"],
            ram + io,
            f"static RAM the same way{fe_note}, + the estimate's I/O buffers ({io:,} B)",
        ),
        _check(
            "instructions",
            est["instructions"],
            instr,
            f"QEMU -icount: tae_engine_invoke{fe_note}, max over windows",
        ),
    ]
    emu = work / "image"
    build_image(emu, model_dir=model_dir)
    budgets = load_budgets()
    m = measure_elf(emu / "tinyae.elf", "mps2_an386", budgets)
    broken = budget_check(m, budgets.target("mps2_an386"))
    out["notes"].append(
        "whole emulated image (tinyae.tools.emulator.qemu.build_image): "
        f"flash {m.flash:,} B, static RAM {m.ram_static:,} B; "
        + (
            "budgets.toml mps2_an386 gate: " + "; ".join(v.message for v in broken)
            if broken
            else "within budgets.toml's mps2_an386 gate"
        )
    )


def _measure_tflm(
    model_dir: Path, manifest: dict, target: SearchTarget, work: Path, est: dict, out: dict
) -> None:
    from tinyae.tools.budget import load_budgets, measure_elf
    from tinyae.tools.emulator.qemu import build_image

    if target.env != "nano33ble":
        out["notes"].append(
            f"{target.env}'s TFLM library has no Cortex-M4 image here (its kernels are for another core); "
            "figures are the estimate's"
        )
        return
    emu = work / "image-tflm"
    proc = build_image(emu, model_dir=model_dir, engine="tflm", tflm_lib="chirale", check=False)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        out["notes"].append(f"TFLM image not linked ({tail}); figures are the estimate's")
        return
    m = measure_elf(emu / "tinyae.elf", "mps2_an386", load_budgets())
    terms = {term: v for fig, term, v in est["terms"]}
    model_engine = m.parts["model"] + m.parts["engine"]
    est_model_engine = terms.get("model", 0) + terms.get("tflm engine code", 0)
    out["checks"].append(
        _check(
            "flash (model + engine)",
            est_model_engine,
            model_engine,
            "TFLM image for the emulated Cortex-M4F from the nano33ble library (Chirale), "
            "model + engine groups of the budget gate",
        )
    )
    out["checks"].append(
        _check("ram (arena)", terms.get("arena/scratch", 0), m.parts["arena"], "arena symbol")
    )
    out["measured"] = {"flash": est["flash"] - est_model_engine + model_engine}
    out["notes"].append(
        "TFLM instructions per window are not measured (no TFLM harness); the estimate stands"
    )
