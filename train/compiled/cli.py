"""`tinyae compile <model.tflite> <out_dir>`: write model_compiled.h/.c (the compiled engine) and print
its figures as JSON."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("compile", help="write the compiled engine (model_compiled.h/.c) for an int8 .tflite")
    p.add_argument("model", type=Path, help="int8 .tflite model")
    p.add_argument("out_dir", type=Path, help="directory for model_compiled.h/.c")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tinyae import atomic
    from tinyae.train.compiled.generate import generate

    # the lock keeps a `tinyae model` or `threshold` on the same directory from interleaving with it
    with atomic.locked(args.out_dir, "another directory"):
        info = generate(args.model, args.out_dir, banner_command=args.command_line)
    print(json.dumps({k: v for k, v in info.items() if k != "layers"}, indent=1))
    return 0
