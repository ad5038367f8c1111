"""`python -m tools`: the host CLI for a tinyae device (ports, info, stream, monitor, record, verify,
calibrate, budget, emulate). Every device command takes --port (a path or any pyserial URL such as
socket://127.0.0.1:PORT; sim:// is the in-process simulated device) or --emulator.

Exit status: 0 success, 1 verification/stream found a problem (mismatch, lost windows),
2 a user or device error (one `error:` sentence on stderr), 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys

from train.errors import run_cli


def build_parser() -> argparse.ArgumentParser:
    from tools.budget.cli import add_parser as add_budget
    from tools.commands import calibrate, emulate, info, monitor, ports, record, stream, verify

    ap = argparse.ArgumentParser(prog="python -m tools", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for mod in (ports, info, stream, monitor, record, verify, calibrate, emulate):
        mod.add_parser(sub)
    add_budget(sub)
    return ap


@run_cli
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    return int(args.func(args))
