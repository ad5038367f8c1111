"""`python -m train`: run the training pipeline and its stages."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from train.errors import run_cli


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m train", description="tinyae training pipeline")
    sub = p.add_subparsers(dest="command", required=True)
    m = sub.add_parser("model", help="data -> float model -> int8 -> threshold -> artifacts -> report")
    m.add_argument(
        "--config", type=Path, default=None, help="experiment TOML (default: the built-in defaults, which "
        "are configs/default.toml)"
    )  # fmt: skip
    m.add_argument(
        "--out", type=Path, default=Path("build/model"), help="model directory (default build/model)"
    )
    m.add_argument(
        "--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override a config value"
    )
    m.add_argument("--quiet", action="store_true", help="no progress bar")
    from train.search.cli import add_parser as add_search

    add_search(sub)
    e = sub.add_parser("export", help="re-render the C headers from an existing manifest.json")
    e.add_argument("--model-dir", type=Path, default=Path("build/model"))
    t = sub.add_parser(
        "threshold",
        help="move the anomaly threshold without retraining (recalibrates on the stored int8 scores)",
    )
    t.add_argument("--model-dir", type=Path, default=Path("build/model"))
    t.add_argument("--method", required=True, help="percentile | mean_std | target_fpr | best_f1 | value")
    t.add_argument("--percentile", type=float, help="percentile: of the normal validation scores (0-100)")
    t.add_argument("--k-std", type=float, help="mean_std: mean + K standard deviations")
    t.add_argument("--target-fpr", type=float, help="target_fpr: highest false-alarm rate on validation")
    t.add_argument("--value", type=float, help="value: this threshold, as is")
    t.add_argument("--quiet", action="store_true")
    i = sub.add_parser("inputs", help="for make: touch STAMP when the model must be rebuilt")
    i.add_argument("--config", type=Path, default=None)
    i.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    i.add_argument("--model-dir", type=Path, default=Path("build/model"))
    i.add_argument("--stamp", type=Path, required=True, help="file to touch when a rebuild is needed")
    c = sub.add_parser(
        "calibrate",
        help="the on-site calibration record a device would compute from a CSV recording (no device needed)",
    )
    c.add_argument(
        "--model-dir", type=Path, default=Path("build/model"), help="artifacts (default build/model)"
    )
    c.add_argument("--csv", required=True, help="a recording of the machine in normal operation")
    c.add_argument(
        "--windows",
        type=int,
        default=None,
        metavar="N",
        help="windows per phase (default: calibration.windows)",
    )
    c.add_argument(
        "--out", type=Path, default=None, help="record file (default MODEL_DIR/calibration-<csv>.bin)"
    )
    c.add_argument("--json", type=Path, default=None, help="also write the report as JSON")
    return p


def _command(argv: list[str] | None) -> str:
    return "python -m train " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))


@run_cli
def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "model":
        from train import config
        from train.pipeline import run

        cfg = config.load(args.config, args.set)
        run(
            cfg,
            args.out,
            _command(argv),
            show_progress=not args.quiet,
            config_file=str(args.config) if args.config else None,
        )
        return 0
    if args.command == "inputs":
        from train import config
        from train.inputs import check

        cfg = config.load(args.config, args.set)
        reason = check(cfg, str(args.config) if args.config else None, args.model_dir, args.stamp)
        if reason:
            print(f"tinyae: (re)building {args.model_dir}: {reason}")
        return 0
    if args.command == "threshold":
        from train.recalibrate import recalibrate

        recalibrate(
            args.model_dir,
            args.method,
            percentile=args.percentile,
            k_std=args.k_std,
            target_fpr=args.target_fpr,
            value=args.value,
            command=_command(argv),
            quiet=args.quiet,
        )
        return 0
    if args.command == "search":
        from train.search.cli import main as search_main

        return search_main(args, _command(argv))
    if args.command == "calibrate":
        from train.calibration.command import run as calibrate

        return calibrate(args.model_dir, args.csv, args.windows, args.out, args.json)
    if args.command == "export":
        from train.export import write_headers
        from train.manifest import Manifest
        from train.quantize import load_tflite

        manifest = Manifest.load(args.model_dir / "manifest.json")
        write_headers(manifest, load_tflite(args.model_dir / "model_int8.tflite"), args.model_dir)
        return 0
    return 1
