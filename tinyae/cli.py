"""`tinyae`: the one command. Subcommands are grouped the way PlatformIO groups its CLI:

    tinyae model | import | threshold | search | export | calibrate | compile | inputs  (the model)
    tinyae device info | stream | monitor | record | verify | calibrate         (a device on a port)
    tinyae ports | emulate | budget check|estimate | bench [SECTION] | pio ...  (around the device)

Every level's --help shows the defaults, the exit codes and an example (EXAMPLES below; a test holds
every command to it). The commands themselves live where their job is: tinyae.train.cli (training),
tinyae.tools.commands (the device), tinyae.tools.budget, tinyae.tools.bench, tinyae.tools.boards.
"""

from __future__ import annotations

import argparse
import importlib
import shlex
import sys

from tinyae import __version__
from tinyae.args import HelpFormatter, Parser, epilog
from tinyae.errors import run_cli

EXAMPLES: dict[tuple[str, ...], str] = {
    (): "tinyae model && tinyae device verify --emulator",
    ("model",): "tinyae model --config configs/my-machine.toml --set train.epochs=40",
    (
        "import",
    ): "tinyae import my_autoencoder_int8.tflite --config configs/my-machine.toml --out build/model",
    ("threshold",): "tinyae threshold --method target_fpr --target-fpr 0.01",
    ("search",): "tinyae search --budget flash=48k,ram=16k,instructions=200k --target nano33ble --trials 30",
    ("export",): "tinyae export --model-dir build/model",
    ("calibrate",): "tinyae calibrate --csv site.csv --model-dir build/model",
    ("compile",): "tinyae compile build/model/model_int8.tflite build/model",
    ("inputs",): "tinyae inputs --config configs/default.toml --stamp build/model/.inputs",
    ("device",): "tinyae device info --port /dev/ttyACM0",
    ("device", "info"): "tinyae device info --port /dev/ttyACM0",
    ("device", "stream"): "tinyae device stream --port /dev/ttyACM0 --csv run.csv --out results.csv",
    ("device", "monitor"): "tinyae device monitor --port /dev/ttyACM0 --log alarms.jsonl",
    ("device", "record"): "tinyae device record --port /dev/ttyACM0 --duration 60 --out normal.csv",
    ("device", "verify"): "tinyae device verify --emulator --json build/verify.json",
    ("device", "calibrate"): "tinyae device calibrate --port /dev/ttyACM0 --windows 64",
    ("ports",): "tinyae ports",
    ("emulate",): "tinyae emulate --elf build/firmware/mps2_an386/tinyae.elf",
    ("budget",): "tinyae budget check build/firmware/mps2_an386/tinyae.elf --target mps2_an386",
    ("budget", "check"): "tinyae budget check --env nano33ble",
    ("budget", "estimate"): "tinyae budget estimate --target nano33ble",
    ("budget", "sampling"): "tinyae budget sampling --env esp32dev --flags '-D TAE_SERIAL_BAUD=921600'",
    ("bench",): "tinyae bench --quick --out build/bench-smoke",
    ("pio",): "tinyae pio run -e nano33ble -t upload --upload-port /dev/ttyACM0",
}

# Commands that parse their own arguments (module[:function], default main; their --help is their own).
PASSTHROUGH: dict[tuple[str, ...], tuple[str, str]] = {
    ("bench", "search"): ("tinyae.tools.bench.search", "measure the model search -> bench/SEARCH.md"),
    ("bench", "costmodel"): (
        "tinyae.tools.bench.costmodel",
        "fit the device cost model on the emulated board",
    ),
    ("bench", "ingest"): ("tinyae.tools.bench.cli:ingest_main", "time and memory of reading a large CSV"),
    ("bench", "skab"): ("tinyae.tools.bench.skab", "SKAB: one protocol beside the published leaderboard"),
    ("bench", "skab-device"): (
        "tinyae.tools.bench.cli:skab_device_main",
        "the deployable SKAB model measured on the emulated board",
    ),
    ("bench", "device"): (
        "tinyae.tools.bench.cli:device_main",
        "device cost (compiled engine beside each TFLM library) and footprint",
    ),
    ("bench", "streaming"): (
        "tinyae.tools.bench.cli:streaming_main",
        "stream and verify over the emulated link, each beside its bound",
    ),
    ("bench", "calibration"): (
        "tinyae.tools.bench.cli:calibration_main",
        "on-site calibration: cost and what it buys",
    ),
    ("bench", "threshold"): (
        "tinyae.tools.bench.cli:threshold_main",
        "the label-free threshold methods against the oracle on every labelled data set",
    ),
    ("pio",): (
        "tinyae.tools.boards.pio",
        "PlatformIO for the board envs, with tinyae's checks (make build/flash)",
    ),
}


# The top-level commands in --help order: the help line and the group that defines the arguments.
# `tinyae X` imports X's group only (the command modules load numpy, jinja2, TFLM's schema: about a
# second of CPU together) and `tinyae --help` none, so these lines are a copy of the ones the groups
# register; tests/test_documented_defaults.py holds the two equal.
COMMANDS: dict[str, tuple[str, str]] = {
    "model": ("train", "data -> float model -> int8 -> threshold -> artifacts -> report"),
    "import": (
        "train",
        "an int8 .tflite trained elsewhere -> the same model directory (threshold on your data, artifacts)",
    ),
    "threshold": (
        "train",
        "move the anomaly threshold without retraining (recalibrates on the stored int8 scores)",
    ),
    "export": ("train", "re-render the C headers from an existing manifest.json"),
    "calibrate": (
        "train",
        "the on-site calibration record a device would compute from a CSV recording (no device needed)",
    ),
    "inputs": ("train", "for make: touch STAMP when the model must be rebuilt"),
    "search": ("search", "search the best detector that fits a device budget (Ray Tune + Optuna)"),
    "compile": ("compile", "write the compiled engine (model_compiled.h/.c) for an int8 .tflite"),
    "device": ("device", "talk to a device on a serial port, a socket:// URL or the emulator"),
    "ports": ("ports", "list serial ports, marking Nano 33 BLE / ESP32 boards"),
    "emulate": ("emulate", "run the firmware in QEMU mps2-an386; prints the socket:// URL"),
    "budget": ("budget", "the flash/SRAM gate: check a firmware ELF, or estimate from the manifest"),
    "bench": ("bench", "measure quality, device cost, footprint, throughput -> bench/"),
}


def _group(name: str, sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register every command of one group with its arguments."""
    if name == "train":
        from tinyae.train import cli as train

        train.add_parsers(sub)
    elif name == "search":
        from tinyae.tools.search import cli as search

        search.add_parser(sub)
    elif name == "compile":
        from tinyae.train.compiled import cli as compiled

        compiled.add_parser(sub)
    elif name == "device":
        from tinyae.tools.commands import calibrate, info, monitor, record, stream, verify

        dev = sub.add_parser("device", help=COMMANDS["device"][1])
        dsub = dev.add_subparsers(dest="device_command", metavar="COMMAND", required=True)
        for mod in (info, stream, monitor, record, verify, calibrate):
            mod.add_parser(dsub)
    elif name == "ports":
        from tinyae.tools.commands import ports

        ports.add_parser(sub)
    elif name == "emulate":
        from tinyae.tools.commands import emulate

        emulate.add_parser(sub)
    elif name == "budget":
        from tinyae.tools.budget import cli as budget

        b = sub.add_parser("budget", help=COMMANDS["budget"][1])
        budget.configure(b)
        b.set_defaults(func=budget.run_args)
    elif name == "bench":
        from tinyae.tools.bench import cli as bench

        bench_p = sub.add_parser("bench", help=COMMANDS["bench"][1])
        bench.configure(bench_p)
        bsub = bench_p.add_subparsers(dest="bench_section", metavar="SECTION")
        for path, (_, text) in PASSTHROUGH.items():
            if path[0] == "bench":
                bsub.add_parser(path[-1], help=text, add_help=False)


def build_parser(command: str | None = None, *, every: bool = True) -> argparse.ArgumentParser:
    """The whole command tree (every=True), or only `command`'s group in full and the other commands
    as their help lines (what `tinyae ...` parses with: it imports one group)."""
    top = Parser(prog="tinyae", description=__doc__.split("\n\n")[0])
    top.add_argument("--version", action="version", version=f"tinyae {__version__}")
    sub = top.add_subparsers(dest="command", metavar="COMMAND", required=True)
    full = {group for group, _ in COMMANDS.values()} if every else set()
    if command in COMMANDS:
        full.add(COMMANDS[command][0])
    for name, (group, text) in COMMANDS.items():
        if group in full:
            if name not in sub.choices:
                _group(group, sub)
        else:
            sub.add_parser(name, help=text, add_help=False)
    for path, (_, text) in PASSTHROUGH.items():
        if path[0] != "bench":
            sub.add_parser(path[-1], help=text, add_help=False)
    _finish(top, ())
    return top


def _command(argv: list[str]) -> str | None:
    """The top-level command in argv (its first word that is not an option; the top level's options
    take no value)."""
    return next((a for a in argv if not a.startswith("-")), None)


def _finish(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
    """Every parser gets the formatter, a description and the epilog (example + exit codes)."""
    parser.formatter_class = HelpFormatter
    if path in EXAMPLES:
        parser.epilog = epilog(EXAMPLES[path])
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, child in action.choices.items():
                child.description = child.description or helps.get(name)
                child.prog = f"{parser.prog} {name}"
                _finish(child, (*path, name))


def _passthrough(argv: list[str]) -> tuple[str, list[str]] | None:
    for path, (module, _) in PASSTHROUGH.items():
        if tuple(argv[: len(path)]) == path:
            return module, argv[len(path) :]
    return None


@run_cli
def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    through = _passthrough(argv)
    if through is not None:
        target, rest = through
        module, _, function = target.partition(":")
        return int(getattr(importlib.import_module(module), function or "main")(rest))
    args = build_parser(_command(argv), every=False).parse_args(argv)
    args.command_line = "tinyae " + shlex.join(argv)
    return int(args.func(args))
