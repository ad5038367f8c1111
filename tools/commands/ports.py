"""`ports`: list serial ports and mark the ones that look like a supported board (by USB VID/PID)."""

from __future__ import annotations

import argparse

from serial.tools import list_ports

from tinyae import terminal
from tinyae.tools.commands.common import stdout_console

# (vid, pid or None for any) -> what it most likely is
KNOWN_BOARDS: dict[tuple[int, int | None], str] = {
    (0x2341, 0x805A): "Arduino Nano 33 BLE",
    (0x2341, 0x005A): "Arduino Nano 33 BLE (bootloader)",
    (0x10C4, 0xEA60): "ESP32 (CP210x USB-UART)",
    (0x1A86, 0x7523): "ESP32 (CH340 USB-UART)",
    (0x303A, None): "ESP32 (Espressif native USB)",
}


def board_guess(vid: int | None, pid: int | None) -> str | None:
    if vid is None:
        return None
    return KNOWN_BOARDS.get((vid, pid)) or KNOWN_BOARDS.get((vid, None))


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("ports", help="list serial ports, marking Nano 33 BLE / ESP32 boards")
    p.add_argument("--all", action="store_true", help="also list ports without a USB VID/PID")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    ports = sorted(list_ports.comports(), key=lambda i: i.device)
    table = terminal.table(title="serial ports", title_justify="left")
    for col in ("port", "board", "VID:PID", "description", "serial number"):
        table.add_column(col)
    shown = 0
    for info in ports:
        if info.vid is None and not args.all:
            continue
        guess = board_guess(info.vid, info.pid)
        vidpid = f"{info.vid:04x}:{info.pid:04x}" if info.vid is not None and info.pid is not None else "-"
        board = f"[bold green]{guess}[/]" if guess else "-"
        table.add_row(info.device, board, vidpid, info.description or "-", info.serial_number or "-")
        shown += 1
    console = stdout_console()
    if shown == 0:
        console.print(
            "no USB serial ports found; plug in the board (and check the cable carries data), or use the "
            "emulator: `make emulate` then --port socket://127.0.0.1:PORT"
            + ("" if args.all else " (--all lists non-USB ports too)")
        )
        return 0
    console.print(table)
    return 0
