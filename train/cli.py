"""The training commands of `tinyae` (tinyae/cli.py mounts them): model, import, threshold, export,
calibrate (offline) and inputs (for make). Each is `add_parser(sub)` plus a `run(args) -> int`."""

from __future__ import annotations

import argparse
from pathlib import Path

from tinyae.args import add_column_args, positive_float32
from tinyae.train.config import option_type

DEFAULT_MODEL_DIR = Path("build/model")


def _model_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR, help="model artifacts")


def recording_args(p: argparse.ArgumentParser) -> None:
    """--channels / --timestamp / --label: how a recording's columns map onto the model's (as `device
    stream` and `verify` take them; by default matched by name with the model's data settings)."""
    g = p.add_argument_group("recording columns (default: matched to the model's by name)")
    add_column_args(g)


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
    m.add_argument(
        "--from-make", action="store_true",
        help="for make's manifest rule: leave a model directory another command built as it is",
    )  # fmt: skip
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
    t.add_argument(
        "--method",
        required=True,
        help="percentile | mean_std | mad | upper_mad | pot | target_fpr | best_f1 | value",
    )
    t.add_argument(
        "--percentile", type=option_type("threshold.percentile"),
        help="percentile: of the normal windows' scores (0-100]",
    )  # fmt: skip
    t.add_argument(
        "--k-std", type=option_type("threshold.k_std"), help="mean_std: mean + K standard deviations"
    )
    t.add_argument(
        "--k-mad", type=option_type("threshold.k_mad"),
        help="mad: median + K x 1.4826 x the median absolute deviation",
    )  # fmt: skip
    t.add_argument(
        "--k-upper-mad", type=option_type("threshold.k_upper_mad"),
        help="upper_mad: median + K x 1.4826 x the median deviation above the median",
    )  # fmt: skip
    t.add_argument(
        "--pot-risk",
        type=option_type("threshold.pot_risk"),
        help="pot: chance a normal score exceeds it (0-1)",
    )
    t.add_argument(
        "--pot-quantile",
        type=option_type("threshold.pot_quantile"),
        help="pot: the fitted tail starts here (0.9)",
    )
    t.add_argument(
        "--factor",
        type=option_type("threshold.factor"),
        help="percentile/mean_std/mad/pot: times this margin",
    )
    t.add_argument(
        "--scores",
        choices=("validation", "training+validation"),
        help="the normal windows calibrated on (default training+validation)",
    )
    t.add_argument(
        "--target-fpr", type=option_type("threshold.target_fpr"),
        help="target_fpr: highest false-alarm rate on validation",
    )  # fmt: skip
    t.add_argument("--value", type=positive_float32, help="value: this threshold, as is")
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
        "--windows", type=option_type("calibration.windows"), default=None, metavar="N",
        help="windows per phase, from calibration.min_windows to calibration.windows (default: as many as "
        "the recording holds)",
    )  # fmt: skip
    c.add_argument(
        "--out", type=Path, default=None, help="record file (default MODEL_DIR/calibration-<csv>.bin)"
    )
    c.add_argument("--json", type=Path, default=None, help="also write the report as JSON")
    recording_args(c)
    c.set_defaults(func=_calibrate)

    i = sub.add_parser("inputs", help="for make: touch STAMP when the model must be rebuilt")
    _config(i)
    _model_dir(i)
    i.add_argument("--stamp", type=Path, required=True, help="file to touch when a rebuild is needed")
    i.add_argument(
        "--config-origin", default="command line", metavar="ORIGIN",
        help="make's $(origin CONFIG): 'file' when CONFIG is make's default, so a model another command "
        "built is used as it is rather than refused",
    )  # fmt: skip
    i.add_argument(
        "--no-note", action="store_true",
        help="do not repeat the note on a model make uses as it is (tinyae's own sub-makes: the top make said it)",
    )  # fmt: skip
    i.set_defaults(func=_inputs)


def _model(args: argparse.Namespace) -> int:
    from tinyae.train import config
    from tinyae.train.pipeline import run
    from tinyae.train.warned import collecting

    if args.from_make:
        from tinyae.train.inputs import may_replace

        why = may_replace(args.out)
        if why:
            print(f"tinyae: {why}")
            return 0
    with collecting():  # warnings about the config (warned.warn) reach the manifest with the run's own
        cfg = config.load(args.config, args.set)
        run(
            cfg,
            args.out,
            args.command_line,
            show_progress=not args.quiet,
            config_file=str(args.config) if args.config else None,
            overrides=args.set,
        )
    return 0


def _import(args: argparse.Namespace) -> int:
    from tinyae.train import config
    from tinyae.train.importer import run_import
    from tinyae.train.warned import collecting

    with collecting():  # warnings about the config (warned.warn) reach the manifest with the run's own
        cfg = config.load(args.config, args.set)
        run_import(
            cfg,
            args.model,
            args.out,
            args.command_line,
            normalization=args.normalization,
            show_progress=not args.quiet,
            config_file=str(args.config) if args.config else None,
            overrides=args.set,
        )
    return 0


def _inputs(args: argparse.Namespace) -> int:
    from tinyae.train import config
    from tinyae.train.inputs import check

    cfg = config.load(args.config, args.set)
    explicit = args.config_origin not in ("file", "default") or bool(args.set)
    reason = check(
        cfg, str(args.config) if args.config else None, args.model_dir, args.stamp, explicit=explicit,
        note=not args.no_note,
    )  # fmt: skip
    if reason:
        print(f"tinyae: (re)building {args.model_dir}: {reason}")
    return 0


def _threshold(args: argparse.Namespace) -> int:
    from tinyae.train.recalibrate import recalibrate

    recalibrate(
        args.model_dir,
        args.method,
        command=args.command_line,
        quiet=args.quiet,
        **{
            k: getattr(args, k)
            for k in (
                "percentile",
                "k_std",
                "k_mad",
                "k_upper_mad",
                "pot_risk",
                "pot_quantile",
                "factor",
                "scores",
            )
        },
        target_fpr=args.target_fpr,
        value=args.value,
    )
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    from tinyae.train.calibration.command import Columns
    from tinyae.train.calibration.command import run as calibrate

    return calibrate(
        args.model_dir,
        args.csv,
        args.windows,
        args.out,
        args.json,
        columns=Columns(args.channels, args.timestamp, args.label, args.normal),
    )


def _export(args: argparse.Namespace) -> int:
    from tinyae import atomic
    from tinyae.train.export import write_headers
    from tinyae.train.manifest import Manifest
    from tinyae.train.tflite import load_tflite

    manifest = Manifest.load(args.model_dir / "manifest.json")
    flatbuffer = load_tflite(args.model_dir / "model_int8.tflite")
    with atomic.replace_dir(args.model_dir, what="another --model-dir") as stage:
        write_headers(manifest, flatbuffer, stage)  # every header or none (tinyae/atomic.py)
    return 0
