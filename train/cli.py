"""The training commands of `tinyae` (tinyae/cli.py mounts them): model, import, threshold, export,
calibrate (offline) and inputs (for make). Each is `add_parser(sub)` plus a `run(args) -> int`."""

from __future__ import annotations

import argparse
from pathlib import Path

from tinyae.args import positive_float, positive_int

DEFAULT_MODEL_DIR = Path("build/model")


def _model_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR, help="model artifacts")


def _config(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config", type=Path, default=None,
        help="experiment TOML (default: the built-in defaults, which are configs/default.toml)",
    )  # fmt: skip
    p.add_argument(
        "--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override a config value"
    )


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    m = sub.add_parser("model", help="data -> float model -> int8 -> threshold -> artifacts -> report")
    _config(m)
    m.add_argument("--out", type=Path, default=DEFAULT_MODEL_DIR, help="model directory")
    m.add_argument("--quiet", action="store_true", help="no progress bar")
    m.set_defaults(func=_model)

    im = sub.add_parser(
        "import",
        help="an int8 .tflite trained elsewhere -> the same model directory (threshold on your data, artifacts)",
    )
    im.add_argument(
        "model", type=Path, help="full-int8 .tflite: a dense autoencoder with int8 input and output"
    )
    _config(im)
    im.add_argument("--out", type=Path, default=DEFAULT_MODEL_DIR, help="model directory")
    im.add_argument(
        "--normalization", default="fit", metavar="fit|none|FILE.json",
        help="how a window becomes the model's float inputs: fit normalization.method on the normal data "
        "(default), none (the front-end's values as they are), or a JSON file "
        '{"offset": [...], "scale": [...]} from your training script',
    )  # fmt: skip
    im.add_argument("--quiet", action="store_true", help="no progress bar")
    im.set_defaults(func=_import)

    t = sub.add_parser(
        "threshold",
        help="move the anomaly threshold without retraining (recalibrates on the stored int8 scores)",
    )
    _model_dir(t)
    t.add_argument("--method", required=True, help="percentile | mean_std | target_fpr | best_f1 | value")
    t.add_argument(
        "--percentile", type=positive_float, help="percentile: of the normal validation scores (0-100]"
    )
    t.add_argument("--k-std", type=float, help="mean_std: mean + K standard deviations")
    t.add_argument(
        "--target-fpr", type=positive_float, help="target_fpr: highest false-alarm rate on validation"
    )
    t.add_argument("--value", type=positive_float, help="value: this threshold, as is")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=_threshold)

    e = sub.add_parser("export", help="re-render the C headers from an existing manifest.json")
    _model_dir(e)
    e.set_defaults(func=_export)

    c = sub.add_parser(
        "calibrate",
        help="the on-site calibration record a device would compute from a CSV recording (no device needed)",
    )
    _model_dir(c)
    c.add_argument("--csv", required=True, help="a recording of the machine in normal operation")
    c.add_argument(
        "--windows", type=positive_int, default=None, metavar="N",
        help="windows per phase (default: the model's calibration.windows)",
    )  # fmt: skip
    c.add_argument(
        "--out", type=Path, default=None, help="record file (default MODEL_DIR/calibration-<csv>.bin)"
    )
    c.add_argument("--json", type=Path, default=None, help="also write the report as JSON")
    c.set_defaults(func=_calibrate)

    i = sub.add_parser("inputs", help="for make: touch STAMP when the model must be rebuilt")
    _config(i)
    _model_dir(i)
    i.add_argument("--stamp", type=Path, required=True, help="file to touch when a rebuild is needed")
    i.set_defaults(func=_inputs)


def _model(args: argparse.Namespace) -> int:
    from tinyae.train import config
    from tinyae.train.pipeline import run

    cfg = config.load(args.config, args.set)
    run(
        cfg,
        args.out,
        args.command_line,
        show_progress=not args.quiet,
        config_file=str(args.config) if args.config else None,
    )
    return 0


def _import(args: argparse.Namespace) -> int:
    from tinyae.train import config
    from tinyae.train.importer import run_import

    cfg = config.load(args.config, args.set)
    run_import(
        cfg,
        args.model,
        args.out,
        args.command_line,
        normalization=args.normalization,
        show_progress=not args.quiet,
        config_file=str(args.config) if args.config else None,
    )
    return 0


def _inputs(args: argparse.Namespace) -> int:
    from tinyae.train import config
    from tinyae.train.inputs import check

    cfg = config.load(args.config, args.set)
    reason = check(cfg, str(args.config) if args.config else None, args.model_dir, args.stamp)
    if reason:
        print(f"tinyae: (re)building {args.model_dir}: {reason}")
    return 0


def _threshold(args: argparse.Namespace) -> int:
    from tinyae.train.recalibrate import recalibrate

    recalibrate(
        args.model_dir,
        args.method,
        percentile=args.percentile,
        k_std=args.k_std,
        target_fpr=args.target_fpr,
        value=args.value,
        command=args.command_line,
        quiet=args.quiet,
    )
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    from tinyae.train.calibration.command import run as calibrate

    return calibrate(args.model_dir, args.csv, args.windows, args.out, args.json)


def _export(args: argparse.Namespace) -> int:
    from tinyae.train.export import write_headers
    from tinyae.train.manifest import Manifest
    from tinyae.train.tflite import load_tflite

    manifest = Manifest.load(args.model_dir / "manifest.json")
    write_headers(manifest, load_tflite(args.model_dir / "model_int8.tflite"), args.model_dir)
    return 0
