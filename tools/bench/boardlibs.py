"""Board libraries: what per-tensor weights cost in detection quality, and the TFLM engine of each pinned
library on the emulated Cortex-M4F next to the compiled engine.

- Weight granularity: every quality data set is trained once more with per-channel FULLY_CONNECTED
  weights (`quantize.weights=per_channel`, for the targets that compute them); int8 ROC AUC / PR AUC /
  F1 beside the per-tensor default, which the pinned board libraries need (train/boards.py).
- TFLM on the emulated board: `make firmware-emu ENGINE=tflm TFLM_LIB=<lib>` for the default model
  (Chirale_TensorFLowLite 2.0.0, as the nano33ble env pins it, CMSIS-NN kernels; upstream tflite-micro,
  reference kernels; both with the Nano 33 BLE's code generation), then `tinyae device verify
  --emulator`: windows bit-exact with tflite_micro, instructions per inference (exact, -icount), flash
  and RAM from the handshake. Needs the library sources (TAE_THIRD_PARTY, mk/tflm.mk); without them
  the section says in one line what it left out.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tinyae.errors import UserError
from tinyae.paths import THIRD_PARTY
from tinyae.steps import run_step as run
from tinyae.tools.bench.common import TINYAE, command_text
from tinyae.tools.bench.models import QUALITY, ModelSpec, TrainedModel, train

PER_CHANNEL = ("quantize.weights=per_channel", "quantize.targets=mps2_an386")
KEYS = ("roc_auc", "pr_auc", "f1")
LIBRARIES = {
    "chirale": "Chirale_TensorFLowLite 2.0.0 (nano33ble), CMSIS-NN kernels",
    "upstream": "upstream tflite-micro 90b983c, reference kernels",
}
SOURCES = {"chirale": "Chirale_TensorFLowLite-2.0.0", "upstream": "tflite-micro-90b983c"}


def per_channel(spec: ModelSpec) -> ModelSpec:
    return ModelSpec(
        spec.name + "-per-channel", (*spec.overrides, *PER_CHANNEL), spec.note + " (per-channel)"
    )


def granularity(trained: dict[str, TrainedModel], model_dir: Path, say: Callable[[str], None]) -> dict:
    """int8 quality of per-tensor (the trained default) vs per-channel weights, per data set."""
    rows: dict[str, dict] = {}
    for spec in QUALITY:
        base = trained.get(spec.name)
        if base is None or "int8" not in base.manifest["metrics"]:
            continue
        say(f"training {spec.name} with per-channel weights")
        try:
            other = train(per_channel(spec), model_dir)
        except UserError as exc:
            rows[spec.name] = {"status": "not measured", "reason": str(exc)}
            continue
        row: dict = {"command": other.command}
        for name, m in (("per_tensor", base), ("per_channel", other)):
            assert m.manifest["quantization"]["weights"] == name, m.dir
            row[name] = {k: m.manifest["metrics"]["int8"][k] for k in KEYS}
            row[name]["tflite_bytes"] = m.manifest["model"]["tflite_bytes"]
        row["roc_auc_cost"] = row["per_channel"]["roc_auc"] - row["per_tensor"]["roc_auc"]
        rows[spec.name] = row
    method = (
        "each quality data set trained once and converted with per-tensor FULLY_CONNECTED weights (the "
        "default: what the pinned board libraries compute) and, same seed, with per-channel weights "
        f"(`--set {' --set '.join(PER_CHANNEL)}`); int8 figures on the test split"
    )
    return {"method": method, "datasets": rows}


def tflm_on_the_emulator(default: TrainedModel, img_dir: Path, say: Callable[[str], None]) -> dict:
    """Each pinned TFLM library as the emulated board's engine, verified against the host reference."""
    absent = [SOURCES[lib] for lib in LIBRARIES if not (THIRD_PARTY / SOURCES[lib]).is_dir()]
    if absent:
        return {
            "status": "not measured",
            "reason": f"{THIRD_PARTY} lacks {', '.join(absent)} (set TAE_THIRD_PARTY; mk/tflm.mk)",
        }
    rows: dict[str, dict] = {}
    for lib, what in LIBRARIES.items():
        say(f"TFLM engine from {what} on the emulated board: build and verify")
        out = img_dir / f"tflm-{lib}"
        build = [
            "make", "--no-print-directory", "-s", "firmware-emu", "ENGINE=tflm", f"TFLM_LIB={lib}",
            f"MODEL_DIR={default.dir}", f"EMU_OUT={out}", "-o", f"{default.dir}/manifest.json",
        ]  # fmt: skip
        run(build, timeout=1800)
        report = out / "verify.json"
        verify = [
            TINYAE, "device", "verify", "--emulator", str(out / "tinyae.elf"), "--model-dir",
            str(default.dir), "--json", str(report), "--quiet",
        ]  # fmt: skip
        wall, _ = run(verify, timeout=1800)
        r = json.loads(report.read_text())
        rows[lib] = {
            "library": what,
            "commands": [command_text(build), command_text(verify)],
            "windows": f"{r['windows_compared'] - r['output_mismatches']} / {r['windows_expected']}",
            "bit_exact": bool(r["ok"]) and r["output_mismatches"] == 0,
            "instructions_median": r["cost"]["median"],
            "flash_used": r["device"]["flash_used"],
            "ram_static": r["device"]["ram_static"],
            "engine_ram": r["device"]["engine_ram"],
            "verify_s": round(wall, 1),
        }
    return {
        "model": default.spec.name,
        "weights": default.manifest["quantization"]["weights"],
        "libraries": rows,
    }


def section(
    trained: dict[str, TrainedModel],
    default: TrainedModel,
    quick: bool,
    model_dir: Path,
    img_dir: Path,
    device_ok: bool,
    say: Callable[[str], None],
) -> dict:
    out: dict = {}
    if quick:
        out["granularity"] = {"status": "not measured", "reason": "--quick"}
    else:
        out["granularity"] = granularity(trained, model_dir, say)
    if quick:
        out["tflm"] = {"status": "skipped", "reason": "--quick builds no TFLM library (make bench does)"}
    elif not device_ok:
        out["tflm"] = {"status": "not measured", "reason": "arm-none-eabi-gcc or qemu-system-arm is missing"}
    else:
        out["tflm"] = tflm_on_the_emulator(default, img_dir, say)
    return out
