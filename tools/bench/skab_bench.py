"""The bench's SKAB section: the protocols' rows (tools/bench/skab.py) beside the leaderboard, the
figure, the accelerometer front-end rows, and the SKAB model on the emulated Cortex-M4F (front-end
and engine instructions per window, `verify` bit for bit, the Nano 33 BLE budget estimate).

SKAB is read from <datasets>/skab/data (default ../shared/datasets); without it the section says in
one line what it left out.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tinyae.errors import UserError
from tinyae.steps import run_step as run
from tinyae.tools.bench import models, skab
from tinyae.tools.bench.common import ROOT, TINYAE, command_text, rel

# (row key, protocol, overrides): every row uses configs/skab.toml
ROWS = (
    ("per-file", "per-file", ()),
    ("per-file-vae", "per-file", ("model.variant=vae",)),
    ("deployment", "deployment", ()),
    ("deployment-commissioned", "deployment-commissioned", ()),
    ("deployment-commissioned-vae", "deployment-commissioned", ("model.variant=vae",)),
)
# The SKAB front-end rows: its two accelerometers (vibration RMS) alone, 32-row windows, per-file protocol.
ACCELEROMETERS = ('data.channels=["Accelerometer1RMS","Accelerometer2RMS"]', "window.length=32")
FRONTEND_ROWS = (
    ("stats", ("frontend.kinds=stats",)),
    ("spectral", ("frontend.kinds=spectral",)),
    (
        "spectral, log_floor = 1e-3 (the former default)",
        ("frontend.kinds=spectral", "frontend.log_floor=0.001"),
    ),
)
# The deployable SKAB model: configs/skab.toml trained by the pipeline on SKAB's normal recording.
DEVICE = models.ModelSpec(
    "skab-device",
    ('data.paths=["../shared/datasets/skab/data/anomaly-free/anomaly-free.csv"]', 'data.label=""'),
    "configs/skab.toml trained by `tinyae model` on anomaly-free.csv (the deployable model)",
    skab.CONFIG,
)


def section(
    quick: bool,
    datasets: Path,
    model_dir: Path,
    img_dir: Path,
    out_dir: Path,
    device_ok: bool,
    say: Callable[[str], None],
) -> dict:
    data_dir = datasets / "skab" / "data"
    if quick:
        return {"status": "skipped", "reason": "--quick"}
    if not data_dir.is_dir():
        reason = (
            f"{rel(data_dir)} not found: left out the SKAB section (both protocols, the SKAB front-end rows "
            "and the SKAB model's device cost); pass --datasets DIR"
        )
        say(f"SKAB: {reason}")
        return {"status": "not measured", "reason": reason}
    rows: dict[str, dict] = {}
    for key, protocol, overrides in ROWS:
        try:
            rows[key] = skab.run_protocol(protocol, list(overrides), data_dir, say)
        except UserError as exc:
            rows[key] = {"status": "not measured", "reason": str(exc), "protocol": protocol}
    shown = {k: rows[k] for k in ("per-file", "deployment-commissioned") if "_rows" in rows.get(k, {})}
    picture = skab.figure(shown, out_dir / "skab.png") if shown else None
    frontends = []
    for name, extra in FRONTEND_ROWS:
        say(f"SKAB accelerometers, front-end {name}")
        try:
            r = skab.run_protocol("per-file", [*ACCELEROMETERS, *extra], data_dir, say)
            r.pop("_rows")
            frontends.append({"frontend": name, **r})
        except UserError as exc:
            frontends.append({"frontend": name, "status": "refused", "reason": str(exc)})
    say("SKAB without peeking: the configuration grid, leave one group out")
    try:
        from tinyae.tools.bench import skab_select

        no_peeking = skab_select.section(data_dir, say)
        no_peeking["command"] = command_text([TINYAE, "bench", "skab", "--protocol", "logo"])
    except UserError as exc:
        no_peeking = {"status": "not measured", "reason": str(exc)}
    out: dict = {
        "no_peeking": no_peeking,
        "protocols": skab.PROTOCOLS,
        "leaderboard": [
            {"method": m, "f1": f1, "far_pct": far, "mar_pct": mar} for m, f1, far, mar in skab.LEADERBOARD
        ],
        "target": skab.TARGET,
        "rows": {k: {kk: vv for kk, vv in r.items() if kk != "_rows"} for k, r in rows.items()},
        "figure": rel(picture) if picture else None,
        "accelerometer_frontends": frontends,
        "config": skab.CONFIG,
    }
    out["device"] = device_section(model_dir, img_dir, say) if device_ok else {"status": "not measured"}
    return out


def _frontend_what(manifest: dict) -> str:
    """E.g. "stats mean + std, 20 rows x 6 channels": what the device's front-end computes per window."""
    fe, w = manifest["frontend"], manifest["window"]
    kinds = ", ".join(f"{k} {' + '.join(fe.get(k, []))}".strip() for k in fe.get("kinds", ["raw"]))
    return f"{kinds}, {w['length']} rows x {w['channels']} channels"


def device_section(model_dir: Path, img_dir: Path, say: Callable[[str], None]) -> dict:
    """The SKAB model on the emulated board: instructions per window, bit-exactness, budget."""
    from tinyae.tools.bench import device, frontend, streaming
    from tinyae.train.frontend import FrontendSpec

    say("SKAB model: training the deployable model and measuring it on the emulated Cortex-M4F")
    try:
        m = models.train(DEVICE, model_dir)
    except UserError as exc:
        return {"status": "not measured", "reason": str(exc)}
    spec = FrontendSpec.from_manifest(m.manifest)
    windows = np.load(m.dir / "test_vectors.npz")["windows"][:16]
    fe = frontend.measure(spec, windows, img_dir / "frontend-skab", config_dir=m.dir)
    eng = device.measure(m, img_dir, ("-Os",))
    ver = streaming.verify_figures(m, img_dir, repeats=1)
    budgets = {engine: _budget(m.dir, engine, img_dir) for engine in ("tflm", "compiled")}
    elf = img_dir / f"core-{m.spec.name}" / "tinyae.elf"  # the image verify_figures built and ran
    linked = _budget_check(elf, img_dir) if elf.is_file() else {"fits": None, "reason": "no image"}
    return {
        "model_command": m.command,
        "shape": m.shape,
        "macs": m.manifest["model"]["macs"],
        "tflite_bytes": m.manifest["model"]["tflite_bytes"],
        "frontend_what": _frontend_what(m.manifest),
        "frontend_instructions": fe["instructions_max"],
        "frontend_bit_equal": f"{fe['bit_equal_values']}/{fe['windows'] * fe['features']}",
        "engine_instructions": eng["Os"]["instructions"],
        "engine_bit_exact": f"{eng['Os']['bit_exact_windows']}/{eng['Os']['windows']}",
        "verify": {
            k: ver.get(k) for k in ("ok", "windows", "command", "image", "device_cost_per_window", "status")
        },
        "verify_mismatches": (ver.get("cli_report") or {}).get("output_mismatches"),
        "budget_nano33ble": budgets,
        "budget_linked_image": linked,
    }


def _budget(model: Path, engine: str, work: Path) -> dict:
    out = work / f"skab-budget-{engine}.json"
    argv = [TINYAE, "budget", "estimate", "--manifest", rel(model / "manifest.json"),
            "--target", "nano33ble", "--engine", engine, "--strict", "--json", rel(out)]  # fmt: skip
    try:
        run(argv, timeout=300)
        ok = True
    except UserError:
        ok = False
    data = json.loads((ROOT / out).read_text()) if (ROOT / out).is_file() else {}
    return {"fits": ok, "command": command_text(argv), "figures": _budget_figures(data)}


def _budget_check(elf: Path, work: Path) -> dict:
    """The gate on the linked emulator image (mps2_an386: the Nano 33 BLE's flash and RAM)."""
    out = work / "skab-budget-image.json"
    argv = [TINYAE, "budget", "check", rel(elf), "--target", "mps2_an386", "--json", rel(out)]
    try:
        run(argv, timeout=300)
        ok = True
    except UserError:
        ok = False
    data = json.loads((ROOT / out).read_text()) if (ROOT / out).is_file() else {}
    return {"fits": ok, "command": command_text(argv), "figures": _budget_figures(data)}


def _budget_figures(data: dict) -> dict:
    """flash / RAM used and budgeted, from `tinyae.tools.budget estimate --json`."""
    b = data.get("budgets") or {}
    return {
        "ok": data.get("ok"),
        "flash_used": (b.get("flash") or {}).get("used"),
        "flash_budget": (b.get("flash") or {}).get("budget"),
        "ram_used": (b.get("ram") or {}).get("used"),
        "ram_budget": (b.get("ram") or {}).get("budget"),
        "violations": data.get("violations"),
    }
