"""Calibrate the instruction estimate (tools/budget/cost.py) on the emulated Cortex-M4F.

    .venv/bin/tinyae bench costmodel [--out build/costmodel] [--json bench/costmodel.json]

Measures exact instruction counts (QEMU mps2-an386, -icount, -Os, the harnesses of tools/bench/device.py
and tools/bench/frontend.py) for a spread of dense networks and feature front-ends, fits the forms
tools/budget/cost.py uses by least squares, and prints each point's measured and estimated figure.
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
    from tinyae.train.config import FrontendConfig
    from tinyae.train.frontend import build_spec

    rng = np.random.default_rng(0)
    points = []
    for length, channels, kinds, fft, bins, stats in FRONTENDS:
        cfg = FrontendConfig(kinds=list(kinds), fft_length=fft, bins=bins, stats=list(stats) or ["mean"])
        spec = build_spec(cfg, length, channels, 100.0)
        windows = rng.normal(size=(4, length, channels)).astype(np.float32)
        name = f"fe-{'-'.join(kinds)}-L{length}-C{channels}-n{fft}-b{bins}-s{len(stats)}"
        res = frontend.measure(spec, windows, work / "images" / name)
        sp = spec.spectral
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
                "ram_added": res["ram_added"],
            }
        )
        print(f"{name}: {res['instructions_max']} instructions", file=sys.stderr)
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
        [p["channels"] * p["length"], p["channels"] * p["length"] * len(p["stats"])] for p in stat_pts
    ]
    stats = _fit(stat_rows, [p["instructions"] for p in stat_pts])
    return {"network": net, "spectral": spectral, "stats": stats}


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
    constants = fit(networks, frontends)
    from tinyae.tools.budget.cost import frontend_instructions_terms, network_instructions

    print("point | measured | estimate (tools/budget/cost.py) | error")
    for pt in networks:
        est = network_instructions([tuple(la) for la in pt["layers"]])
        print(f"{pt['name']} | {pt['instructions']} | {est} | {est / pt['instructions'] - 1:+.1%}")
    for pt in frontends:
        est = sum(v for _, v in frontend_instructions_terms(pt))
        print(f"{pt['name']} | {pt['instructions']} | {est} | {est / pt['instructions'] - 1:+.1%}")
    print("least-squares fit:", json.dumps(constants))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        doc = {"command": f".venv/bin/tinyae bench costmodel --json {rel(args.json)}"}
        doc.update(networks=networks, frontends=frontends, fit=constants)
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
