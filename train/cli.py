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
    m.add_argument("--config", type=Path, default=None, help="experiment TOML (default: built-in defaults)")
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
    return p


@run_cli
def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "model":
        from train import config
        from train.pipeline import run

        cfg = config.load(args.config, args.set)
        cmd = "python -m train " + " ".join(
            shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
        )
        run(cfg, args.out, cmd, show_progress=not args.quiet)
        return 0
    if args.command == "search":
        from train.search.cli import main as search_main

        cmd = "python -m train " + " ".join(
            shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
        )
        return search_main(args, cmd)
    if args.command == "export":
        import json

        from train.errors import UserError
        from train.export import write_headers
        from train.quantize import load_tflite

        manifest_path = args.model_dir / "manifest.json"
        if not manifest_path.is_file():
            raise UserError(f"{manifest_path} does not exist; run `make model` first")
        manifest = json.loads(manifest_path.read_text())
        write_headers(manifest, load_tflite(args.model_dir / "model_int8.tflite"), args.model_dir)
        return 0
    return 1
