"""On-site calibration in `make bench`: its device cost and footprint on the emulated Cortex-M4F, and
what it buys on SKAB (one model trained once on normal data, calibrated on each experiment's first 400
rows, against no calibration and against per-file retraining).

Device cost: calibration_app.c (beside this file) runs one whole calibration on the emulated board as
tae_app.c drives it, with exact instruction counts around every call. Footprint: the real core image
of the same model, its symbols attributed to their source files by the budget gate's ELF reader.
SKAB: bench/skab.py-style protocol, all on the host through the int8 reference (tflite_micro, which the
device's engines match bit for bit), with the device checked equal to it on a few experiments on the
emulated board (record bit for bit, every window's score and decision).

`tinyae bench calibration` runs this section alone and merges it into bench/results.json and
RESULTS.md (the other sections keep the run that measured them; this section says when it was run).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from tinyae.errors import UserError
from tinyae.tools.bench import models
from tinyae.tools.bench import skab_calibration as skab
from tinyae.tools.bench.common import command_text, have, rel, run_note
from tinyae.tools.bench.device import BUDGET_TARGET, read_harness
from tinyae.tools.emulator.harness import CORE_DIR, TARGET_DIR, TARGET_SRCS
from tinyae.tools.emulator.harness import link as link_harness
from tinyae.tools.emulator.harness import relative as relative_argv
from tinyae.train.manifest import Manifest

APP = Path(__file__).resolve().parent / "calibration_app.c"
CORE_SRCS = (
    "tae_calib.c", "tae_protocol.c", "tae_pipeline.c", "tae_frontend.c", "tae_synth.c",
    "tae_engine_compiled.c", "tae_kernels.c",
)  # fmt: skip
_LINE = re.compile(rb"CALBENCH ([^\r\n]*)")


# ---------------------------------------------------------------- device cost
def build_harness(model_dir: Path, out_dir: Path, n: int) -> tuple[Path, str]:
    out_dir.mkdir(parents=True, exist_ok=True)
    elf = out_dir / "calibration.elf"
    srcs = [str(TARGET_DIR / s) for s in TARGET_SRCS] + [str(APP)]
    srcs += [str(CORE_DIR / s) for s in CORE_SRCS] + [str(model_dir / "model_compiled.c")]
    argv = link_harness(elf, srcs, [model_dir], [f"-DTAE_CAL_BENCH_WINDOWS={n}"], "-Os")
    return elf, command_text(relative_argv(argv))


def run_harness(elf: Path) -> dict[str, int]:
    data = read_harness(elf, b"CALBENCH", timeout=300.0)
    m = _LINE.search(data)
    if m is None:
        raise UserError(f"the calibration bench image {elf} printed no CALBENCH line: {data[-200:]!r}")
    fields: dict[str, int] = {}
    for item in m.group(1).decode().split():
        key, _, value = item.partition("=")
        fields[key] = int(value, 16) if value.startswith("0x") else int(value)
    return fields


def device_cost(model: models.TrainedModel, img_dir: Path, windows: tuple[int, ...]) -> dict:
    """Instructions of one calibration of n windows per phase, per part and in total."""
    hop = int(model.manifest["window"]["hop"])
    rows = []
    for n in windows:
        elf, command = build_harness(model.dir, img_dir / f"calibration-n{n}", n)
        f = run_harness(elf)
        if f["outcome"] != 2 or f["verdict"] != 1:
            raise UserError(
                f"the calibration bench of {model.dir} ended with outcome {f['outcome']} (verdict "
                f"{f['verdict']}) instead of a stored, valid record; its cost is not reported"
            )
        phase1 = n if f["samples"] else 0  # windows of phase 1 (statistics), when the build has it
        per_sample = f["sample_sum"] / max(f["samples"], 1)
        w1_calls = max(phase1 - 1, 0)
        w2_calls = max(f["windows"] - phase1 - 1, 0)
        total = f["begin"] + f["sample_sum"] + f["w1_sum"] + f["end1"] + f["w2_sum"] + f["end2"] + f["pack"]
        rows.append({
            "windows_per_phase": n, "phases": f["phases"], "windows": f["windows"], "samples": f["samples"],
            "per_sample": round(per_sample, 1), "sample_min": f["sample_min"], "sample_max": f["sample_max"],
            "phase1_per_window": round(hop * per_sample + (f["w1_sum"] / w1_calls if w1_calls else 0), 1),
            "phase2_per_window": round(f["w2_sum"] / w2_calls, 1) if w2_calls else 0,
            "end_of_phase1": f["end1"], "end_of_phase2": f["end2"], "begin": f["begin"],
            "pack": f["pack"], "check_at_boot": f["unpack"], "total": total,
            "inference_per_window": f["infer1_min"], "inference_per_window_corrected": f["infer2_min"],
            "total_vs_inference": round(total / (f["windows"] * f["infer1_min"]), 4),
            "record_crc": f"{f['crc']:08x}", "build_command": command,
            "run": f"tinyae.tools.emulator.qemu.Emulator (QEMU mps2-an386 -icount shift=6) on {rel(elf)}",
        })  # fmt: skip
    return {
        "model": model.spec.name,
        "window": f"{model.manifest['window']['length']}x{model.manifest['window']['channels']}, hop {hop}",
        "method": (
            "tools/bench/calibration_app.c on QEMU mps2-an386 (-icount shift=6: exact instruction counts), "
            "-Os: one calibration of n windows per phase over the core's synthetic source (the default "
            "model's machine), driven as tae_app.c drives it; tae_port_cycles() around every call, the empty "
            "measurement subtracted. The storage write is not counted (the board's flash: semihosting here)."
        ),
        "rows": rows,
    }


CALIBRATION_FILES = ("tae_calib.c", "store.c")
APP_STATE = ("g_cal", "g_rec", "g_rec_packed", "g_cand", "g_io", "g_calibrated", "g_boot_verdict",
             "g_outcome", "g_detail")  # fmt: skip
APP_CALIB_CODE = re.compile(r"^tae_(app_(calib|.*record|.*correction|abort_calibration|use_record|on_window|"
                            r"default_threshold|push)|msg_encode_calib_state|semihost_(open|close|read|write$|"
                            r"flen|remove|rename|errno))")  # fmt: skip


def footprint(model: models.TrainedModel, img_dir: Path) -> dict:
    """Flash and static RAM of on-site calibration in the real core image of this model."""
    from tinyae.tools.budget import measure_elf
    from tinyae.tools.budget.elf import read_elf
    from tinyae.tools.emulator.qemu import build_image

    out = img_dir / "calibration-core"
    build_image(out, model_dir=model.dir)
    elf = out / "tinyae.elf"
    img = read_elf(elf)
    by_file: dict[str, int] = {}
    for s in img.symbols:
        name = Path(s.file).name if s.file else ""
        if name in CALIBRATION_FILES and s.size:
            by_file[name] = by_file.get(name, 0) + s.size
    app_code = {s.name: s.size for s in img.symbols if APP_CALIB_CODE.match(s.name) and s.kind == "func"}
    state = {s.name: s.size for s in img.symbols if s.name in APP_STATE}
    m = measure_elf(elf, BUDGET_TARGET)
    return {
        "model": model.spec.name,
        "image": rel(elf),
        "image_flash": m.flash,
        "image_ram_static": m.ram_static,
        "flash_files": by_file,
        "flash_app_functions": sum(app_code.values()),
        "flash_total_attributed": sum(by_file.values()) + sum(app_code.values()),
        "ram_state": sum(state.values()),
        "ram_symbols": state,
        "ram_manifest": model.manifest["calibration"]["ram_bytes"],
        "note": (
            "flash: tae_calib.c and the semihosting store by source file (DWARF ranges), plus the "
            "calibration functions of tae_app.c, the CALIB_STATE encoder and the semihosting file calls by "
            "name; code inlined into shared functions (the frame dispatcher, the handshake) is not counted. "
            "RAM: every static object of the calibration (no heap), equal to the manifest's ram_bytes."
        ),
        "command": f"tinyae.tools.emulator.qemu.build_image (make firmware-emu MODEL_DIR={rel(model.dir)})",
    }


# ---------------------------------------------------------------- the section
def section(
    quick: bool, model_dir: Path, img_dir: Path, device_ok: bool, say: Callable[[str], None], default=None
) -> dict:  # type: ignore[no-untyped-def]
    out: dict = {}
    if not device_ok:
        out["device"] = out["footprint"] = {
            "status": "not measured",
            "reason": have("arm-none-eabi-gcc", "qemu-system-arm"),
        }
    else:
        model = (
            default
            if default is not None
            else models.train(models.quick(models.DEFAULT) if quick else models.DEFAULT, model_dir)
        )
        say("on-site calibration: device cost on the emulated Cortex-M4F")
        try:
            spec = Manifest.from_dict(model.manifest).calib_spec()  # the fewest and the most windows
            sizes = (spec.min_windows,) if quick else tuple(sorted({spec.min_windows, spec.windows}))
            out["device"] = device_cost(model, img_dir, sizes)
        except UserError as exc:
            out["device"] = {"status": "not measured", "reason": str(exc)}
        if quick:
            out["footprint"] = {"status": "skipped", "reason": "--quick"}
        else:
            say("on-site calibration: footprint in the core image")
            out["footprint"] = footprint(model, img_dir)
    if quick:
        out["skab"] = {"status": "skipped", "reason": "--quick"}
    else:
        out["skab"] = skab.section(model_dir, img_dir, device_ok, say)
    return out


# ---------------------------------------------------------------- RESULTS.md
def render(c: dict | None) -> list[str]:
    if not c:
        return []
    out = ["## On-site calibration", ""]
    out += run_note(c)
    out += skab.render(c.get("skab", {}))
    dev = c.get("device", {})
    out += ["### Device cost (emulated Cortex-M4F, exact instruction counts)", ""]
    if dev.get("status"):
        out += [f"{dev['status']}: {dev.get('reason', '')}", ""]
    else:
        out += [dev["method"], "", f"Model `{dev['model']}`, window {dev['window']}.", ""]
        rows = []
        for r in dev["rows"]:
            rows.append([
                f"{r['windows_per_phase']} × {r['phases']}", f"{r['per_sample']:,.1f}",
                f"{r['phase1_per_window']:,.0f}", f"{r['phase2_per_window']:,.0f}",
                f"{r['end_of_phase1']:,} / {r['end_of_phase2']:,}", f"{r['pack']:,} / {r['check_at_boot']:,}",
                f"{r['total']:,}", f"{r['inference_per_window']:,} → {r['inference_per_window_corrected']:,}",
                f"{100 * r['total_vs_inference']:.2f} %",
            ])  # fmt: skip
        from tinyae.tools.bench.common import md_table

        out += md_table(
            ["windows per phase × phases", "per sample (statistics)", "per phase-1 window",
             "per phase-2 window (scores)", "end of phase 1 / 2", "record pack / check at boot",
             "total", "inference per window, without → with the correction",
             "total vs the inference of its windows"],
            rows,
        )  # fmt: skip
        out += ["", f"`{dev['rows'][0]['build_command']}`", ""]
    fp = c.get("footprint", {})
    out += ["### Footprint", ""]
    if fp.get("status"):
        out += [f"{fp['status']}: {fp.get('reason', '')}", ""]
    else:
        files = ", ".join(f"{k} {v:,} B" for k, v in fp["flash_files"].items())
        out += [
            f"In the core image of `{fp['model']}` ({fp['image_flash']:,} B flash, "
            f"{fp['image_ram_static']:,} B static RAM): flash {fp['flash_total_attributed']:,} B ({files}, "
            "tae_app.c's calibration functions "
            f"{fp['flash_app_functions']:,} B); static RAM {fp['ram_state']:,} B (manifest "
            f"`calibration.ram_bytes` {fp['ram_manifest']:,} B). {fp['note']}",
            "",
        ]
    return out
