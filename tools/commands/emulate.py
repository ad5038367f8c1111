"""`tinyae emulate`: run the Cortex-M4 image in QEMU mps2-an386 and print its socket:// URL until Ctrl-C
(tinyae.tools.emulator.qemu runs QEMU)."""

from __future__ import annotations

import argparse
from pathlib import Path

from tinyae.args import non_negative_int, port_number
from tinyae.tools.emulator import qemu


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    ap = sub.add_parser("emulate", help="run the firmware in QEMU mps2-an386; prints the socket:// URL")
    ap.add_argument("--elf", type=Path, default=qemu.DEFAULT_ELF, help="firmware image")
    ap.add_argument(
        "--tcp-port", type=port_number, default=None, help="TCP port for the UART (default: a free one)"
    )
    ap.add_argument(
        "--icount-shift", type=non_negative_int, default=qemu.ICOUNT_SHIFT, help="QEMU -icount shift"
    )
    ap.add_argument(
        "--storage",
        type=Path,
        default=qemu.DEFAULT_STORAGE,
        help="the board's non-volatile storage directory (calibration record)",
    )
    ap.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return qemu.serve(args.elf, args.tcp_port, args.icount_shift, args.storage)
