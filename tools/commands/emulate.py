"""`emulate`: run the Cortex-M4 image in QEMU and print its socket:// URL (wraps tools.emulator)."""

from __future__ import annotations

import argparse
from pathlib import Path

from tools import emulator


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    ap = sub.add_parser("emulate", help="run the firmware in QEMU mps2-an386; prints the socket:// URL")
    ap.add_argument("--elf", type=Path, default=emulator.DEFAULT_ELF, help="image (default: %(default)s)")
    ap.add_argument("--tcp-port", type=int, default=None, help="TCP port for the UART (default: a free one)")
    ap.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return emulator.serve(args.elf, args.tcp_port)
