"""Calibrate the instruction estimate (tools/budget/cost.py) on the emulated Cortex-M4F.

    .venv/bin/tinyae bench costmodel [--out build/costmodel] [--json bench/costmodel.json]

Measures exact instruction counts (QEMU mps2-an386, -icount, -Os, the harnesses of tools/bench/device.py
and tools/bench/frontend.py) for a spread of dense networks and feature front-ends, fits the forms
tools/budget/cost.py uses by least squares, and prints each point's measured and estimated figure.
It also links the whole emulated image (compiled engine) of every model and fits the fixed flash and
static RAM of budgets.toml's mps2_an386 target (framework_flash, framework_ram): the mean of measured
image minus the estimate's model-dependent terms (tools/budget/estimate.py).
The constants in tools/budget/cost.py are the rounded fit of this command's output; `--json` keeps
every point. Networks are trained for one epoch: the compiled engine's cost depends on the shape,
not on what the weights learnt.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np

from tinyae.args import command_parser
from tinyae.errors import run_cli
from tinyae.tools.bench.common import ROOT, rel
from tinyae.train.manifest import Manifest

# (window length, hop, hidden, latent, weights): shapes from tiny to the default model's size and beyond.
NETWORKS: tuple[tuple[int, list[int], int, str], ...] = (
    (16, [8], 2, "per_tensor"),
    (16, [32], 4, "per_tensor"),
    (32, [16], 4, "per_tensor"),
    (32, [64, 16], 8, "per_tensor"),
    (64, [64], 8, "per_tensor"),
    (64, [128], 16, "per_tensor"),
    (64, [64], 8, "per_channel"),
    (128, [32], 8, "per_tensor"),
    (128, [96, 32], 8, "per_tensor"),
)
# (window length, channels, kinds, fft_length, bins, stats)
FRONTENDS: tuple[tuple[int, int, tuple[str, ...], int, int, tuple[str, ...]], ...] = (
    (32, 1, ("spectral",), 0, 0, ()),
    (64, 3, ("spectral",), 0, 0, ()),
    (64, 3, ("spectral",), 0, 8, ()),
    (128, 3, ("spectral",), 0, 16, ()),
    (128, 1, ("spectral",), 32, 0, ()),
    (64, 8, ("spectral",), 0, 8, ()),
    (32, 1, ("stats",), 0, 0, ("mean", "rms", "std", "p2p", "crest", "skew", "kurtosis", "zcr")),
    (64, 3, ("stats",), 0, 0, ("mean", "rms", "std", "p2p", "crest", "skew", "kurtosis", "zcr")),
    (64, 3, ("stats",), 0, 0, ("mean", "std")),
    (128, 8, ("stats",), 0, 0, ("rms", "p2p", "kurtosis")),
    (64, 3, ("spectral", "stats"), 0, 16, ("mean", "rms", "std", "p2p", "crest", "skew", "kurtosis", "zcr")),
)


def _network_points(work: Path) -> list[dict]:
    from tinyae.tools.bench import device
    from tinyae.train import config
    from tinyae.train.pipeline import run

    points = []
    for length, hidden, latent, weights in NETWORKS:
        name = f"net-L{length}-{'x'.join(map(str, hidden))}-{latent}-{weights}"
        out = work / "models" / name
        overrides = [
            f"window.hop={min(length, 32)}", f"window.length={length}", f"window.hop={length}",
            f"model.hidden={hidden}",
            f"model.latent={latent}", "train.epochs=1", f"quantize.weights={weights}",
            "quantize.targets=mps2_an386",
        ]  # fmt: skip
        if not (out / "manifest.json").is_file():
            run(
                config.load(ROOT / "configs" / "default.toml", overrides),
                out,
                "costmodel",
                show_progress=False,
            )
        manifest = Manifest.load(out / "manifest.json").to_dict()
        img = device.build(out, work / "images" / name)
        res = device.run_image(img.elf)
        layers = manifest["compiled"]["layers"]
        points.append(
            {
                "name": name,
                "layers": [[la["in"], la["out"]] for la in layers],
                "weights": manifest["quantization"]["weights"],
                "macs": manifest["model"]["macs"],
                "instructions": res["min"],
                "mismatches": res["mismatches"],
            }
        )
        print(f"{name}: {res['min']} instructions, {manifest['model']['macs']} MACs", file=sys.stderr)
    return points


def _frontend_points(work: Path) -> list[dict]:
    from tinyae.tools.bench import frontend
    from tinyae.tools.budget.estimate import frontend_tables
    from tinyae.train.config import FrontendConfig
    from tinyae.train.frontend import build_spec
    from tinyae.train.frontend.fit import fit_log_floor

    rng = np.random.default_rng(0)
    points = []
    for length, channels, kinds, fft, bins, stats in FRONTENDS:
        cfg = FrontendConfig(kinds=list(kinds), fft_length=fft, bins=bins, stats=list(stats) or ["mean"])
        windows = rng.normal(size=(4, length, channels)).astype(np.float32)
        spec = fit_log_floor(build_spec(cfg, length, channels, 100.0), windows)  # as training does
        name = f"fe-{'-'.join(kinds)}-L{length}-C{channels}-n{fft}-b{bins}-s{len(stats)}"
        res = frontend.measure(spec, windows, work / "images" / name)
        sp = spec.spectral
        tables = frontend_tables(spec.to_manifest(100.0), channels)
        points.append(
            {
                "name": name,
                "length": length,
                "channels": channels,
                "kinds": list(kinds),
                "fft_length": sp.fft_length if sp else 0,
                "frames": sp.frames if sp else 0,
                "bands": sp.bands if sp else 0,
                "log": sp.log if sp else False,
                "stats": list(spec.stats),
                "instructions": res["instructions_max"],
                "bit_equal_windows": res["bit_equal_windows"],
                "flash_added": res["flash_added"],
                "tables": tables,
                "ram_added": res["ram_added"],
            }
        )
        print(f"{name}: {res['instructions_max']} instructions", file=sys.stderr)
    return points


# Models with a feature front-end for the whole-image points (kinds, window length, extra overrides).
FRONTEND_MODELS: tuple[tuple[str, tuple[str, ...], int, tuple[str, ...]], ...] = (
    ("img-spectral-L32", ("spectral",), 32, ("model.hidden=[16]", "model.latent=4")),
    ("img-spectral-L64-b8", ("spectral",), 64, ("frontend.bins=8",)),
    ("img-spectral-L128-n64", ("spectral",), 128, ("frontend.fft_length=64",)),
    ("img-stats-L64", ("stats",), 64, ("model.hidden=[16]", "model.latent=4")),
    ("img-spectral-stats-L64-b16", ("spectral", "stats"), 64, ("frontend.bins=16", "model.hidden=[32]")),
)


def _image_points(work: Path) -> list[dict]:
    """The whole emulated image (tinyae.tools.emulator.qemu.build_image, compiled engine) of every network
    model and of models with front-ends: its linked flash and static RAM (tinyae budget's measurement)
    beside tools/budget/estimate.py's figures for mps2_an386 without the fixed part the fit sets."""
    from tinyae.tools.budget import load_budgets, measure_elf
    from tinyae.tools.budget.estimate import estimate_from_manifest
    from tinyae.tools.emulator.qemu import build_image
    from tinyae.train import config
    from tinyae.train.pipeline import run

    budgets = load_budgets()
    target = budgets.target("mps2_an386")
    dirs = sorted(d for d in (work / "models").iterdir() if (d / "manifest.json").is_file())
    for name, kinds, length, extra in FRONTEND_MODELS:
        out = work / "models" / name
        if not (out / "manifest.json").is_file():
            overrides = [f"window.length={length}", f"window.hop={length // 2}", f"frontend.kinds={list(kinds)}",
                         "train.epochs=1", "quantize.targets=mps2_an386", *extra]  # fmt: skip
            run(
                config.load(ROOT / "configs" / "default.toml", overrides),
                out,
                "costmodel",
                show_progress=False,
            )
        if out not in dirs:
            dirs.append(out)
    points = []
    for model_dir in dirs:
        manifest = Manifest.load(model_dir / "manifest.json").to_dict()
        image = work / "images-whole" / model_dir.name
        build_image(image, model_dir=model_dir)
        m = measure_elf(image / "tinyae.elf", "mps2_an386", budgets)
        est = estimate_from_manifest(manifest, "mps2_an386", "compiled", budgets)
        points.append(
            {
                "name": model_dir.name,
                "kinds": manifest["frontend"]["kinds"],
                "flash": m.flash,
                "ram": m.ram_static,
                "variable_flash": est.flash - target.framework_flash,
                "variable_ram": est.ram_static - target.framework_ram,
            }
        )
        print(f"{model_dir.name}: image flash {m.flash:,} B, static RAM {m.ram_static:,} B", file=sys.stderr)
    return points


def _fit(rows: list[list[float]], y: list[float]) -> list[float]:
    coef, *_ = np.linalg.lstsq(np.array(rows, float), np.array(y, float), rcond=None)
    return [float(c) for c in coef]


def fit(networks: list[dict], frontends: list[dict]) -> dict:
    """Least-squares constants for the forms of tools/budget/cost.py."""
    net_rows = [[sum(i * o for i, o in p["layers"]), sum(o for _, o in p["layers"]), 1.0] for p in networks]
    net = _fit(net_rows, [p["instructions"] for p in networks])
    spec_pts = [p for p in frontends if p["kinds"] == ["spectral"]]
    spec_rows = [
        [
            p["channels"] * p["frames"] * p["fft_length"] * math.log2(p["fft_length"]),
            p["channels"] * p["frames"] * p["fft_length"],
            p["channels"] * p["bands"],
        ]
        for p in spec_pts
    ]
    spectral = _fit(spec_rows, [p["instructions"] for p in spec_pts])
    stat_pts = [p for p in frontends if p["kinds"] == ["stats"]]
    stat_rows = [
        [
            p["channels"] * p["length"],
            p["channels"] * p["length"] * len(p["stats"]),
            p["channels"] * p["length"] * any(s in ("skew", "kurtosis") for s in p["stats"]),
        ]
        for p in stat_pts
    ]
    stats = _fit(stat_rows, [p["instructions"] for p in stat_pts])
    # tools/budget/estimate.py FRONTEND_CODE_FLASH: a kind's code = flash added minus its generated tables
    spec_code = [p["flash_added"] - p.get("tables", 0) for p in frontends if p["kinds"] == ["spectral"]]
    stat_code = [(len(p["stats"]), p["flash_added"]) for p in frontends if p["kinds"] == ["stats"]]
    base, per_stat = _fit([[1.0, float(k)] for k, _ in stat_code], [float(v) for _, v in stat_code])
    code = {"spectral": float(np.mean(spec_code)), "stats": base, "stats_per_stat": per_stat}
    return {"network": net, "spectral": spectral, "stats": stats, "frontend_code_flash": code}


def fit_image(images: list[dict]) -> dict:
    """budgets.toml's mps2_an386 framework_flash / framework_ram: the least-squares constant (the mean) of
    measured image minus the estimate's model-dependent terms, i.e. the fixed part every image holds
    (start-up, UART, protocol and application code, their static buffers)."""
    return {
        "framework_flash": float(np.mean([p["flash"] - p["variable_flash"] for p in images])),
        "framework_ram": float(np.mean([p["ram"] - p["variable_ram"] for p in images])),
    }


@run_cli
def main(argv: list[str] | None = None) -> int:
    p = command_parser(
        "tinyae bench costmodel", __doc__, "tinyae bench costmodel --json bench/costmodel.json"
    )
    p.add_argument("--out", type=Path, default=ROOT / "build" / "costmodel", help="models and bench images")
    p.add_argument("--json", type=Path, default=None, help="write every point and the fit here")
    args = p.parse_args(argv)
    networks = _network_points(args.out)
    frontends = _frontend_points(args.out)
    images = _image_points(args.out)
    constants = fit(networks, frontends)
    constants["image"] = fit_image(images)
    from tinyae.tools.budget.cost import frontend_instructions_terms, network_instructions

    print("point | measured | estimate (tools/budget/cost.py) | error")
    for pt in networks:
        est = network_instructions([tuple(la) for la in pt["layers"]])
        print(f"{pt['name']} | {pt['instructions']} | {est} | {est / pt['instructions'] - 1:+.1%}")
    for pt in frontends:
        est = sum(v for _, v in frontend_instructions_terms(pt))
        print(f"{pt['name']} | {pt['instructions']} | {est} | {est / pt['instructions'] - 1:+.1%}")
    from tinyae.tools.budget import load_budgets

    t = load_budgets().target("mps2_an386")
    print("whole image | measured flash | estimate | error | measured RAM | estimate | error")
    for pt in images:
        ef, er = pt["variable_flash"] + t.framework_flash, pt["variable_ram"] + t.framework_ram
        print(f"{pt['name']} | {pt['flash']} | {ef} | {ef / pt['flash'] - 1:+.1%} | {pt['ram']} | {er} | "
              f"{er / pt['ram'] - 1:+.1%}")  # fmt: skip
    print("least-squares fit:", json.dumps(constants))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        doc: dict[str, object] = {"command": f".venv/bin/tinyae bench costmodel --json {rel(args.json)}"}
        doc.update(networks=networks, frontends=frontends, images=images, fit=constants)
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
