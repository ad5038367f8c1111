"""`tinyae bench [--quick] [--out bench/]`: measure everything `make bench` reports.

Writes <out>/results.json (every figure, every run, the command behind each) and <out>/RESULTS.md
(tables). Models and bench images go to build/bench/. --quick is the smoke version: one model trained
for two epochs, no repeats of the training, no width sweep, no emulated link or verify run; it
checks that the bench code runs and writes what it should, and its figures mean nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from tinyae.args import command_parser, positive_int
from tinyae.errors import UserError, run_cli
from tinyae.steps import run_step as run
from tinyae.tools.bench import (
    boardlibs,
    calibration,
    device,
    frontend,
    hostref,
    ingest,
    models,
    quality,
    report,
    skab_bench,
    streaming,
    threshold,
)
from tinyae.tools.bench import timing as window_timing
from tinyae.tools.bench.common import DATASETS, ROOT, TINYAE, Timing, command_text, have, machine, rel, when

WORK = ROOT / "build" / "bench"
TRAIN_REPEATS = 3  # the default experiment is trained this many times (timings + reproducibility)


def _say(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def _guard(what: str, fn: Callable[[], dict]) -> dict:
    """Run one measurement; a UserError becomes a "not measured" entry with its reason."""
    try:
        return fn()
    except UserError as exc:
        _say(f"{what}: not measured ({exc})")
        return {"status": "not measured", "reason": str(exc)}


def measure(out: Path, *, quick: bool = False, work: Path = WORK, datasets_dir: Path = DATASETS) -> dict:
    t_start = time.perf_counter()
    model_dir = work / "models"
    img_dir = work / "images"
    argv = [TINYAE, "bench", *(["--quick"] if quick else []), "--out", rel(out)]
    res: dict = {"schema": 1, "command": command_text(argv), "quick": quick, "machine": machine()}

    # -- detection quality -------------------------------------------------------------------
    from tinyae.train.data import SPLIT_PROTOCOL

    specs = (models.quick(models.DEFAULT),) if quick else models.QUALITY
    trained: dict[str, models.TrainedModel] = {}
    datasets: dict[str, dict] = {}
    repeats: list[models.TrainedModel] = []
    if quick:
        # --quick's figures mean nothing: its independent models (the default, the front-end study's and the
        # VAE's) train side by side, one per core, and the sections below read them
        together = models.distinct(
            [*specs, *(s for _, _, s in frontend.quality_specs(quick)), *map(_vae_spec, specs)]
        )
        _say(f"training {', '.join(s.name for s in together)} side by side")
        models.train_together(together, model_dir, os.cpu_count() or 1)
    for spec in specs:
        _say(f"training {spec.name} ({' '.join(spec.overrides) or 'defaults'})")
        try:
            trained[spec.name] = models.train(spec, model_dir)
        except UserError as exc:
            datasets[spec.name] = {"status": "not measured", "reason": str(exc)}
            continue
        datasets[spec.name] = quality.figures(trained[spec.name])
    default = trained.get(specs[0].name)
    if default is None:
        raise UserError(f"the default model could not be trained: {datasets[specs[0].name]['reason']}")
    repeats.append(default)
    for i in range(2, (1 if quick else TRAIN_REPEATS) + 1):
        _say(f"training {specs[0].name} again (run {i} of {TRAIN_REPEATS}: timings and reproducibility)")
        repeats.append(models.train(specs[0], model_dir, suffix=f"-run{i}"))
    rep = quality.reproducibility([quality.figures(m) for m in repeats])
    res["quality"] = {
        "split_protocol": SPLIT_PROTOCOL,
        "config": models.CONFIG,
        "threshold_method": _threshold_text(default.manifest),
        "datasets": datasets,
        "reproducibility": rep,
        "by_fault": datasets[specs[0].name].get("int8_roc_auc_by_fault"),
    }

    # -- pipeline timings --------------------------------------------------------------------
    res["pipeline"] = _pipeline(repeats, quick, work)

    # -- device cost and footprint -------------------------------------------------------------
    missing = have("arm-none-eabi-gcc", "qemu-system-arm")
    if missing:
        res["device"] = {"status": "not measured", "reason": missing}
        res["footprint"] = {"status": "not measured", "reason": missing}
    else:
        res["device"], res["footprint"] = _device(default, trained, quick, model_dir, img_dir)

    # -- feature front-ends: quality per front-end, front-end device cost ---------------------------
    res["frontend"] = frontend.section(quick, model_dir, img_dir, not missing, _say)

    # -- board libraries: per-tensor vs per-channel weights, TFLM on the emulated board ----------------
    res["board_libraries"] = boardlibs.section(trained, default, quick, model_dir, img_dir, not missing, _say)

    # -- time per window on the Cortex-M4F boards: estimated from the exact instruction stream ---------
    res["timing"] = _guard(
        "time per window", lambda: window_timing.section(default, quick, model_dir, not missing, _say)
    )

    # -- the VAE variant against the plain autoencoder on the same data sets ------------------------
    res["vae"] = _vae(specs, datasets, quick, model_dir)

    # -- SKAB: both protocols beside the leaderboard, the SKAB model on the emulated board ----------
    res["skab"] = skab_bench.section(quick, datasets_dir, model_dir, img_dir, out, not missing, _say)

    # -- the threshold study: label-free methods against the oracle, the default's worst case ---------
    res["threshold"] = _guard(
        "threshold study",
        lambda: threshold.section(model_dir, datasets_dir, _say, trained=trained, quick=quick),
    )

    # -- on-site calibration: device cost, footprint, what it buys on SKAB ---------------------------
    res["calibration"] = _guard(
        "on-site calibration",
        lambda: calibration.section(quick, model_dir, img_dir, not missing, _say, default=default),
    )

    # -- streaming and host reference ----------------------------------------------------------
    res["streaming"] = _streaming(default, quick, img_dir)
    host = [hostref.figures(default, repeats=3 if quick else hostref.REPEATS)]
    ref = trained.get(models.REFERENCE.name)
    if ref is not None:
        host.append(hostref.figures(ref))
    res["host_reference"] = {"models": host}
    res["ingest"] = _guard("ingest", lambda: ingest.section(quick, work, _say))

    res["elapsed_s"] = round(time.perf_counter() - t_start, 1)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(res, indent=2, default=_json_default) + "\n")
    (out / "RESULTS.md").write_text(report.render(res))
    return res


def _vae(specs: tuple, datasets: dict, quick: bool, model_dir: Path) -> dict:
    """Each quality data set trained again with model.variant=vae; its figures beside the plain model's."""
    rows = []
    for spec in specs:
        if spec.name.startswith("daphnet") or "status" in datasets.get(spec.name, {"status": 1}):
            continue
        vae = _vae_spec(spec)
        _say(f"training {vae.name}")
        try:
            m = models.train(vae, model_dir)
        except UserError as exc:
            rows.append({"dataset": spec.name, "status": "not measured", "reason": str(exc)})
            continue
        fig = quality.figures(m)
        rows.append({
            "dataset": spec.name, "command": m.command, "shape": m.shape,
            "plain": {q: datasets[spec.name].get(q) for q in ("float", "int8")},
            "vae": {q: fig.get(q) for q in ("float", "int8")},
        })  # fmt: skip
    return {
        "method": (
            "the quality data sets' commands with --set model.variant=vae (model.kl_weight 1e-3): the same "
            "dense stack, trained through a sampled Gaussian latent with a KL term; the deployed network is "
            "the mean path + decoder. Test-split figures at each model's own calibrated threshold."
        ),
        "rows": rows,
    }


def _vae_spec(spec: models.ModelSpec) -> models.ModelSpec:
    return models.ModelSpec(
        spec.name + "-vae", (*spec.overrides, "model.variant=vae"), spec.note, spec.config
    )


def _json_default(o: object) -> object:
    if hasattr(o, "item"):
        return o.item()  # numpy scalars
    raise TypeError(f"not JSON serialisable: {o!r}")


def _threshold_text(manifest: dict) -> str:
    """The method and its settings (not the figures it computed, such as the median or the fitted tail)."""
    t = manifest["threshold"]
    figures = {
        "windows",
        "median",
        "mad",
        "upper_mad",
        "mean",
        "std",
        "tail_from",
        "excesses",
        "shape",
        "scale",
    }
    params = ", ".join(f"{k}={v}" for k, v in t.get("params", {}).items() if k not in figures)
    return f"{t['method']} {params}".strip()


def _pipeline(repeats: list[models.TrainedModel], quick: bool, work: Path) -> dict:
    timings = [m.manifest.get("timings_s", {}) for m in repeats]
    out: dict = {
        "command": repeats[0].command,
        "runs": len(repeats),
        "data_s": Timing([t.get("data", 0.0) for t in timings]).to_dict(2),
        "training_s": Timing([t.get("training", 0.0) for t in timings]).to_dict(2),
        "conversion_s": Timing([t.get("conversion", 0.0) for t in timings]).to_dict(2),
        "train_model_wall_s": Timing([m.wall_s for m in repeats]).to_dict(2),
        "stages_s": timings,
        "note": (
            "training and conversion are the pipeline's own stage timings (manifest `timings_s`); the whole "
            "run includes TensorFlow's start-up, the host reference, the TFLM arena bisection, export and "
            "the HTML report."
        ),
    }
    if quick:
        out["demo"] = {"status": "skipped", "reason": "--quick"}
    else:
        out["demo"] = _guard("demo", lambda: _demo(work))
    return out


def _has_make_target(name: str) -> bool:
    import re

    pattern = re.compile(rf"^{re.escape(name)}\s*:", re.M)
    files = [ROOT / "Makefile", *sorted((ROOT / "mk").glob("*.mk"))]
    return any(pattern.search(f.read_text()) for f in files if f.is_file())


def _demo(work: Path) -> dict:
    """`make demo` once, cold (fresh model and image directories), after set-up."""
    import shutil

    mdir, fdir = work / "demo-model", work / "demo-firmware"
    for d in (mdir, fdir):
        shutil.rmtree(d, ignore_errors=True)
    vars_ = [f"MODEL_DIR={rel(mdir)}", f"EMU_OUT={rel(fdir)}"]
    if _has_make_target("demo"):
        argv = ["make", "--no-print-directory", "demo", *vars_]
        wall, _ = run(argv, timeout=900)
        return {"what": "`make demo`", "wall_s": round(wall, 1), "command": command_text(argv)}
    a1 = ["make", "--no-print-directory", "model", *vars_]
    a2 = ["make", "--no-print-directory", "firmware-emu", *vars_]
    w1, _ = run(a1, timeout=900)
    w2, _ = run(a2, timeout=900)
    return {
        "what": "`make model` + `make firmware-emu` (no `make demo` target yet)",
        "wall_s": round(w1 + w2, 1),
        "parts_s": {"model": round(w1, 1), "firmware-emu": round(w2, 1)},
        "command": f"{command_text(a1)} && {command_text(a2)}",
    }


def _device(
    default: models.TrainedModel,
    trained: dict[str, models.TrainedModel],
    quick: bool,
    model_dir: Path,
    img_dir: Path,
) -> tuple[dict, dict]:
    opts = ("-Os",) if quick else ("-Os", "-O2")
    # --quick builds no TFLM library (minutes of compiling); `make bench` measures both in every model's row
    libs: tuple[str, ...] = () if quick else tuple(device.TFLM_LIBS)
    results: dict[str, dict] = {}
    _say(
        f"device cost: {default.spec.name}" + (f" (compiled engine, TFLM {', '.join(libs)})" if libs else "")
    )
    results["default"] = _guard("device cost", lambda: device.measure(default, img_dir, opts, libs))
    sweep: list[dict] = []
    if not quick:
        wanted = [
            ("reference", models.REFERENCE),
            ("reference_logistic", models.REFERENCE_LOGISTIC),
            *((f"sweep_h{h}", models.reference_spec(h)) for h in models.SWEEP_HIDDEN if h != 64),
        ]
        for key, spec in wanted:
            _say(f"training {spec.name} and measuring its device cost")
            m = models.train(spec, model_dir)
            trained[spec.name] = m
            results[key] = _guard("device cost", partial(device.measure, m, img_dir, opts, libs))
        for h in models.SWEEP_HIDDEN:
            r = results["reference" if h == 64 else f"sweep_h{h}"]
            if "status" in r:
                continue
            sweep.append({
                "hidden": h, "shape": r["shape"], "macs": r["macs"],
                "instructions_Os": r["Os"]["instructions"], "per_mac_Os": r["Os"]["instructions_per_mac"],
                "instructions_O2": r["O2"]["instructions"], "per_mac_O2": r["O2"]["instructions_per_mac"],
                "flash_added_Os": r["Os"]["flash_added"], "ram_added_Os": r["Os"]["ram_added"],
            })  # fmt: skip
    dev: dict = {"method": _method_text(), "models": results, "sweep": sweep}
    if quick:
        dev["tflm_status"] = {
            "status": "skipped",
            "reason": "--quick builds no TFLM library (make bench does)",
        }
    dev["ratios"] = {k: device.engine_ratios(r) for k, r in results.items() if "status" not in r}
    lin, lg = results.get("reference", {}), results.get("reference_logistic", {})
    if "Os" in lin and "Os" in lg:
        dev["logistic_extra"] = _logistic_extra(lin, lg)
    fp = {
        "method": (
            "flash and static RAM that engine + model add to an image: the bench image minus the same "
            "harness built without engine and model (-Os, tinyae.tools.budget.measure_elf on both ELFs; the RAM "
            "is the engine's static scratch). Model constants: weights, biases, requantization "
            "parameters and tables as the generator counts them (manifest `compiled.const_bytes`); engine "
            "code = flash added - model constants (kernels, the generated call sequence, the engine glue). "
            "TFLM, each pinned library in the same harness (softfp, as the board builds it): flash added = "
            "the library's framework and kernels + the model's flatbuffer; static RAM added = the tensor "
            "arena (manifest `arena.bytes`: the host bisection plus the stated margin) + the interpreter's "
            "objects."
        ),
        "models": {
            k: {
                "shape": r["shape"],
                "flash_added": r["Os"]["flash_added"],
                "ram_added": r["Os"]["ram_added"],
                "scratch_bytes": r["scratch_bytes"],
                "model_const_bytes": r["const_bytes"],
                "engine_code_bytes": r["Os"]["flash_added"] - r["const_bytes"],
                "tflite_bytes": r["tflite_bytes"],
                "tflm_arena_host_bytes": r["tflm_arena_host_bytes"],
                "tflm_arena_bytes": r["tflm_arena_bytes"],
                "tflm": {
                    lib: (
                        {"status": t["status"]}
                        if "status" in t
                        else {"flash_added": t["flash_added"], "ram_added": t["ram_added"]}
                    )
                    for lib, t in r.get("tflm", {}).items()
                },
            }
            for k, r in results.items()
            if "status" not in r
        },
    }
    return dev, fp


def _logistic_extra(lin: dict, lg: dict) -> dict:
    """Instructions a final LOGISTIC adds, per engine: the sigmoid model minus the linear one (same shape)."""
    out = {
        tag: lg[tag]["instructions"] - lin[tag]["instructions"]
        for tag in ("Os", "O2")
        if tag in lin and tag in lg
    }
    for lib in device.TFLM_LIBS:
        a, b = lin.get("tflm", {}).get(lib, {}), lg.get("tflm", {}).get(lib, {})
        if "instructions" in a and "instructions" in b:
            out[f"tflm_{lib}"] = b["instructions"] - a["instructions"]
    return out


def _method_text() -> str:
    return (
        "Instructions per inference: a dedicated bench image (tools/bench/bench_app.c on the "
        "mps2_an386 target) runs `tae_engine_invoke()` on up to 16 of the host reference's int8 test "
        "windows, 3 times each, reading SysTick around each call; QEMU runs with `-icount shift=6`, so the "
        "counts are exact instruction counts (the empty measurement is subtracted; the figure is the "
        "minimum over the windows and runs; TFLM's count varies with the data by up to a few hundred, "
        "results.json keeps each maximum as instructions_max). Every output is compared with tflite_micro's: "
        "a non-bit-exact engine is refused. -Os is mk/firmware-emu.mk's level; -O2 is TFLM's default. "
        "TFLM is measured in the same harness and run, not quoted: the engine glue "
        "(tae_engine_tflm.cpp, the model's C array and op resolver) linked against each pinned library "
        "as the board builds it (Chirale_TensorFLowLite 2.0.0 with CMSIS-NN kernels, upstream tflite-micro "
        "90b983c with reference kernels; the Nano 33 BLE's flags, -Os, softfp), its footprint against "
        "the same harness with softfp and no engine."
    )


def _streaming(
    default: models.TrainedModel, quick: bool, img_dir: Path, pairs: int = streaming.PAIRS
) -> dict:
    out: dict = {"codec": streaming.codec_figures(default, repeats=3 if quick else streaming.REPEATS)}
    if quick:
        skip = {"status": "skipped", "reason": "--quick"}
        out["link"], out["paired"] = skip, dict(skip)
        return out
    missing = have("arm-none-eabi-gcc", "qemu-system-arm")
    if missing:
        out["link"] = {"status": "not measured", "reason": missing}
        out["paired"] = {"status": "not measured", "reason": missing}
        return out
    _say("streaming: emulated UART byte rate, each direction alone")
    out["link"] = _guard("link", lambda: streaming.link_byte_rate(img_dir))
    _say("streaming: stream and verify over the emulated link, each beside its bound")
    out["paired"] = _guard("streaming", lambda: streaming.paired_figures(default, img_dir, _say, pairs=pairs))
    return out


def configure(ap: argparse.ArgumentParser) -> None:
    """`tinyae bench`'s options (tinyae/cli.py mounts it; the sections are `tinyae bench SECTION`)."""
    ap.add_argument(
        "--quick", action="store_true", help="tiny smoke run (seconds): checks the code, not figures"
    )
    ap.add_argument("--out", type=Path, default=Path("bench"), help="where results.json and RESULTS.md go")
    ap.add_argument("--work", type=Path, default=WORK, help="models and bench images")
    ap.add_argument("--datasets", type=Path, default=DATASETS, help="real benchmarks (SKAB)")
    ap.set_defaults(func=run_args)


def run_args(args: argparse.Namespace) -> int:
    res = measure(args.out, quick=args.quick, work=args.work, datasets_dir=args.datasets)
    _say(f"wrote {args.out / 'results.json'} and {args.out / 'RESULTS.md'} in {res['elapsed_s']:.0f} s")
    return 0


def merge_section(out: Path, path: tuple[str, ...], sec: dict, argv: list[str], **run: Any) -> Path | None:
    """Put `sec`, with how and where it was measured (`run`: command, date, commit), at results.json's
    `path` in `out` and render RESULTS.md again: one section measured again without the whole bench.
    None (nothing merged; `sec` has its `run`) when out has no results.json or no parent section at `path`."""
    return merge_sections(out, {path: sec}, argv, **run)


def merge_sections(out: Path, secs: dict[tuple[str, ...], dict], argv: list[str], **run: Any) -> Path | None:
    """merge_section of several sections measured by one command (the device section and the footprint
    table built from it), written in one go: all of them or, when one has no parent section, none."""
    stamp = {"command": command_text(argv), **when(), **run}
    for sec in secs.values():
        sec["run"] = dict(stamp)  # also in the sections written alone
    res_path = out / "results.json"
    if not res_path.is_file():
        return None
    res = json.loads(res_path.read_text())
    parents = []
    for path, sec in secs.items():
        parent = res
        for key in path[:-1]:
            parent = parent.get(key)
            if not isinstance(parent, dict):
                return None
        parents.append((parent, path[-1], sec))
    for parent, key, sec in parents:
        parent[key] = sec
    res_path.write_text(json.dumps(res, indent=2, default=_json_default) + "\n")
    (out / "RESULTS.md").write_text(report.render(res))
    return res_path


def store_section(
    out: Path, name: str, sec: dict, argv: list[str], say: Callable[[str], None], **run: Any
) -> None:
    """merge_section of a top-level section, or, when `out` has no results.json, the section alone in
    out/<name>.json; says which."""
    store_sections(out, {(name,): sec}, argv, say, **run)


def store_sections(
    out: Path, secs: dict[tuple[str, ...], dict], argv: list[str], say: Callable[[str], None], **run: Any
) -> None:
    """merge_sections, or, when `out` has no results.json (or lacks a parent section), each section alone
    in out/<its path joined by '-'>.json; says which."""
    out.mkdir(parents=True, exist_ok=True)
    merged = merge_sections(out, secs, argv, **run)
    names = [".".join(path) for path in secs]
    if merged is None:
        alone = [out / f"{'-'.join(path)}.json" for path in secs]
        for f, sec in zip(alone, secs.values(), strict=True):
            f.write_text(json.dumps(sec, indent=2, default=_json_default) + "\n")
        where = f"no {out / 'results.json'}"
        if (out / "results.json").is_file():
            where = f"{out / 'results.json'} has no section to put {', '.join(names)} in"
        say(f"{where}: wrote {', '.join(map(str, alone))} only")
    else:
        sections = f"{names[0]} section" if len(names) == 1 else f"{', '.join(names)} sections"
        say(f"merged the {sections} into {merged} and {out / 'RESULTS.md'}")


@run_cli
def ingest_main(argv: list[str] | None = None) -> int:
    """`tinyae bench ingest`: the large-CSV section alone, merged into --out's results.json and RESULTS.md."""
    ap = command_parser(
        "tinyae bench ingest", ingest.__doc__, "tinyae bench ingest --size-mb 50 --out build/bench-ingest"
    )
    ap.add_argument(
        "--size-mb", type=positive_int, default=ingest.SIZE_MB, help="size of the CSV written and read, in MB"
    )
    ap.add_argument("--out", type=Path, default=Path("bench"), help="results.json and RESULTS.md to update")
    args = ap.parse_args(argv)
    sec = ingest.section(False, WORK, size_mb=args.size_mb)
    print("\n".join(ingest.render(sec)))
    argv_text = [TINYAE, "bench", "ingest", "--size-mb", str(args.size_mb), "--out", rel(args.out)]
    merged = merge_section(args.out, ("ingest",), sec, argv_text)
    print(f"merged into {rel(merged)}" if merged else f"no {rel(args.out / 'results.json')}: nothing merged")
    return 0


@run_cli
def skab_device_main(argv: list[str] | None = None) -> int:
    """`tinyae bench skab-device`: the deployable SKAB model trained and measured on the emulated board
    (the SKAB section's device part), merged into --out's results.json and RESULTS.md."""
    ap = command_parser(
        "tinyae bench skab-device", skab_device_main.__doc__, "tinyae bench skab-device --out bench"
    )
    ap.add_argument("--out", type=Path, default=Path("bench"), help="results.json and RESULTS.md to update")
    args = ap.parse_args(argv)
    sec = skab_bench.device_section(WORK / "models", WORK / "images", _say)
    merged = merge_section(
        args.out, ("skab", "device"), sec, [TINYAE, "bench", "skab-device", "--out", rel(args.out)]
    )
    if merged is None:
        raise UserError(f"{rel(args.out / 'results.json')} has no SKAB section to add the device figures to; "
                        "run make bench first")  # fmt: skip
    _say(f"SKAB device figures ({sec.get('status', 'measured')}) merged into {rel(merged)}")
    return 0


@run_cli
def device_main(argv: list[str] | None = None) -> int:
    """`tinyae bench device`: the sections whose flash and RAM figures come from images that link a
    pinned TFLM library, measured again exactly as `make bench` measures them: the device-cost section
    (the default model, the reference network, its final-LOGISTIC twin and the hidden-size sweep; the
    compiled engine at -Os and -O2 and each TFLM library in the same harness, tools/bench/device.py), the
    footprint table built from it and the board-library section's TFLM engines on the emulated board
    (tools/bench/boardlibs.py), merged into --out's results.json and RESULTS.md (or written beside them
    when there is no results.json). Nothing is merged unless every model and library was measured."""
    ap = command_parser("tinyae bench device", device_main.__doc__, "tinyae bench device --out bench")
    ap.add_argument("--out", type=Path, default=Path("bench"), help="results.json and RESULTS.md to update")
    ap.add_argument("--work", type=Path, default=WORK, help="models (trained if absent) and bench images")
    args = ap.parse_args(argv)
    missing = have("arm-none-eabi-gcc", "qemu-system-arm")
    if missing:
        raise UserError(f"the device section runs on the emulated Cortex-M4F and {missing}")
    t0 = time.perf_counter()
    model_dir, img_dir = args.work / "models", args.work / "images"
    _say(f"training {models.DEFAULT.name}")
    default = models.train(models.DEFAULT, model_dir)
    dev, fp = _device(default, {}, False, model_dir, img_dir)
    tflm = _guard(
        "TFLM on the emulated board", lambda: boardlibs.tflm_on_the_emulator(default, img_dir, _say)
    )
    gaps = _not_measured(dev)
    if "status" in tflm:
        gaps.append(f"the TFLM engines on the emulated board: {tflm.get('reason', tflm['status'])}")
    if gaps:
        partial = args.work / "device-partial.json"
        partial.parent.mkdir(parents=True, exist_ok=True)
        both = {"device": dev, "footprint": fp, "board_libraries": {"tflm": tflm}}
        partial.write_text(json.dumps(both, indent=2, default=_json_default) + "\n")
        raise UserError(f"the device section was not fully measured ({'; '.join(gaps)}), so nothing was merged "
                        f"into {rel(args.out)}; what was measured is in {rel(partial)}")  # fmt: skip
    res_path = args.out / "results.json"
    if res_path.is_file():
        before = json.loads(res_path.read_text())
        dev["models_check"] = _models_check(before, dev)
        for line in dev["models_check"]["differences"] or ["its models are the ones results.json measured"]:
            _say(f"models: {line}")
    work = ["--work", rel(args.work)] if args.work.resolve() != WORK.resolve() else []
    argv_text = [TINYAE, "bench", "device", *work, "--out", rel(args.out)]
    secs = {("device",): dev, ("footprint",): fp, ("board_libraries", "tflm"): tflm}
    store_sections(args.out, secs, argv_text, _say, elapsed_s=round(time.perf_counter() - t0, 1))
    return 0


def _not_measured(dev: dict) -> list[str]:
    """Each model or TFLM library of a device section that has no figures, with its reason."""
    gaps = []
    for key, r in dev["models"].items():
        if "status" in r:
            gaps.append(f"{key}: {r.get('reason', r['status'])}")
            continue
        gaps += [f"{key} with TFLM {lib}: {t.get('reason', t['status'])}" for lib, t in r.get("tflm", {}).items()
                 if "status" in t]  # fmt: skip
    return gaps


def _models_check(before: dict, dev: dict) -> dict:
    """The device section's models beside those the rest of `before` (a results.json) measured."""
    rows = (before.get("timing") or {}).get("rows") or []
    sha = next((r["model_sha256"] for r in rows if "model_sha256" in r), None)
    # the device section's own run when it was measured alone before, else the whole bench's
    run = (before.get("device") or {}).get("run") or {
        "command": before.get("command", "?"),
        "commit": (before.get("machine") or {}).get("commit", "?"),
    }
    return {
        "compared_with": f"results.json's device section (`{run['command']}`, commit {run['commit']})",
        "differences": device.model_differences(before.get("device") or {}, dev, sha),
    }


@run_cli
def streaming_main(argv: list[str] | None = None) -> int:
    """`tinyae bench streaming`: the streaming section alone (tools/bench/streaming.py), merged into
    results.json and RESULTS.md (or written to streaming.json beside them when there is no results.json)."""
    ap = command_parser("tinyae bench streaming", streaming.__doc__, "tinyae bench streaming --out bench")
    ap.add_argument("--out", type=Path, default=Path("bench"), help="results.json and RESULTS.md to update")
    ap.add_argument("--work", type=Path, default=WORK, help="the default model and the bench images")
    ap.add_argument(
        "--pairs",
        type=positive_int,
        default=streaming.PAIRS,
        help="runs of stream and of verify beside their bound",
    )
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    _say("streaming: training the default model")
    default = models.train(models.DEFAULT, args.work / "models")
    sec = _streaming(default, False, args.work / "images", pairs=args.pairs)
    argv_text = [TINYAE, "bench", "streaming", *(["--pairs", str(args.pairs)] if args.pairs != streaming.PAIRS else []),
                 "--out", rel(args.out)]  # fmt: skip
    store_section(args.out, "streaming", sec, argv_text, _say, elapsed_s=round(time.perf_counter() - t0, 1))
    print("\n".join(report.render_streaming(sec)))
    return 0


@run_cli
def calibration_main(argv: list[str] | None = None) -> int:
    """`tinyae bench calibration`: the on-site calibration section alone, merged into results.json and
    RESULTS.md."""
    ap = command_parser(
        "tinyae bench calibration",
        calibration.__doc__,
        "tinyae bench calibration --quick --out build/bench-cal",
    )
    ap.add_argument("--out", type=Path, default=Path("bench"), help="results.json and RESULTS.md to update")
    ap.add_argument("--work", type=Path, default=ROOT / "build" / "bench", help="models and images")
    ap.add_argument("--quick", action="store_true", help="smoke run: no SKAB, one small device measurement")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    missing = have("arm-none-eabi-gcc", "qemu-system-arm")

    def say(msg: str) -> None:
        print(f"bench: {msg}", file=sys.stderr, flush=True)

    sec = calibration.section(args.quick, args.work / "models", args.work / "images", not missing, say)
    argv_text = [TINYAE, "bench", "calibration", *(["--quick"] if args.quick else []),
                 "--out", rel(args.out)]  # fmt: skip
    store_section(args.out, "calibration", sec, argv_text, say, elapsed_s=round(time.perf_counter() - t0, 1))
    return 0


@run_cli
def threshold_main(argv: list[str] | None = None) -> int:
    """`tinyae bench threshold`: the threshold study alone (tools/bench/threshold.py), merged into
    results.json and RESULTS.md (or written to threshold.json beside them when there is no results.json)."""
    ap = command_parser(
        "tinyae bench threshold", threshold.__doc__, "tinyae bench threshold --out build/bench-threshold"
    )
    ap.add_argument("--out", type=Path, default=Path("bench"), help="results.json and RESULTS.md to update")
    ap.add_argument("--work", type=Path, default=WORK / "models", help="models trained")
    ap.add_argument("--datasets", type=Path, default=DATASETS, help="SKAB and NAB (../shared/datasets)")
    ap.add_argument("--no-cache", action="store_true", help="retrain every model instead of reusing scores")
    args = ap.parse_args(argv)
    sec = threshold.section(args.work, args.datasets, _say, use_cache=not args.no_cache)
    store_section(args.out, "threshold", sec, [TINYAE, "bench", "threshold", "--out", rel(args.out)], _say)
    print("\n".join(threshold.render(sec)))
    return 0
