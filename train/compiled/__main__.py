"""python -m train.compiled <model.tflite> <out_dir>: write model_compiled.h/.c and print the figures."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from train.compiled.generate import generate
from train.errors import run_cli


@run_cli
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m train.compiled", description=__doc__)
    parser.add_argument("model", type=Path, help="int8 .tflite model")
    parser.add_argument("out_dir", type=Path, help="directory for model_compiled.h/.c")
    args = parser.parse_args(argv)
    command = "python -m train.compiled " + shlex.join(sys.argv[1:] if argv is None else argv)
    info = generate(args.model, args.out_dir, banner_command=command)
    summary = {k: v for k, v in info.items() if k != "layers"}
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
