"""`tinyae budget` (and `tinyae budget`): check an ELF or a manifest against budgets.toml.

    tinyae budget check build/firmware/mps2_an386/tinyae.elf --target mps2_an386
    tinyae budget check --env nano33ble [--baseline base.json] [--json out.json] [--top 15]
    tinyae budget check build/firmware/mps2_an386/tinyae.elf --target mps2_an386 --model-dir build/model
    tinyae budget estimate --manifest build/model/manifest.json --target nano33ble \
        --engine tflm [--strict] [--timing]
    tinyae budget sampling --env esp32dev [--flags "-D TAE_ESP32_MPU6050 -D TAE_SERIAL_BAUD=921600"]

`check` is the default command (`tinyae budget FILE.elf --target T`). With --model-dir, `check` also
estimates the time per window of that model (its code traced on the emulated Cortex-M4F, the TRM's
cycle timings; tools/budget/realtime.py) and checks it against the target's `window_time` budget.
`estimate` always shows a time per window from the manifest (instructions from the shape x traced cycles
per instruction); --timing traces the model's real code instead.
Exit status: 0 within budget, 1 a budget is broken (one `error:` line per broken budget), 2 usage error.
"""

from __future__ import annotations

import argparse
import configparser
import sys
from pathlib import Path

from tinyae.args import positive_int
from tinyae.errors import UserError

from .config import Budgets, Target, load_budgets
from .cost import FORMULA_METHOD, formula_timing
from .elf import read_elf
from .estimate import ENGINES, estimate_from_manifest, load_manifest
from .figures import Violation, check, measure
from .realtime import TimeCheck, not_estimated_reason, print_time, time_check
from .report import diff, load_baseline, make_console, print_report, to_json, write_json

# tools/emulator/timing.py's METHOD, repeated only where the emulator is not imported (it starts nothing)
TIMING_METHOD = (
    "ESTIMATE from the model's code traced on the emulated Cortex-M4F (QEMU, exact instruction stream, "
    "count checked against -icount), each instruction weighted by the Cortex-M4 TRM's cycle timings at zero "
    "wait states (nRF52840 cache hits); low/high bound the model's choices within the TRM's ranges, not "
    "wait states. Not a measurement (tools/emulator/timing.py)."
)

EXIT_OVER_BUDGET = 1
COMMANDS = ("check", "estimate", "sampling")
PIO_BUILD_DIR = Path(".pio") / "build"


def env_elf(env: str, project_dir: Path | None = None) -> Path:
    """The ELF `pio run -e ENV` leaves behind."""
    return (project_dir or Path.cwd()) / PIO_BUILD_DIR / env / "firmware.elf"


def target_for_env(env: str, budgets: Budgets, project_dir: Path | None = None) -> str:
    """The budgets.toml target of a PlatformIO env: its `board =` in platformio.ini, else its name prefix."""
    ini = (project_dir or Path.cwd()) / "platformio.ini"
    board = None
    if ini.is_file():
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        try:
            parser.read(ini, encoding="utf-8")
            board = parser.get(f"env:{env}", "board", fallback=None)
        except configparser.Error:
            board = None
    for name, t in budgets.targets.items():
        if board is not None and (board == name or board in t.pio_boards):
            return name
    for name in sorted(budgets.targets, key=len, reverse=True):
        if env == name or env.startswith((name + "_", name + "-")):
            return name
    raise UserError(
        f"cannot tell the target of env {env!r} (board {board!r} in platformio.ini); pass --target, one of "
        f"{', '.join(sorted(budgets.targets))}"
    )


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--budgets", metavar="FILE", help="budgets file (default: ./budgets.toml)")
    p.add_argument("--json", metavar="FILE", help="also write the figures as JSON (for CI)")
    p.add_argument(
        "--top", type=positive_int, default=10, metavar="N", help="symbols listed by size (default 10)"
    )


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="budget_command", metavar="{check,estimate,sampling}")
    sub.required = True
    c = sub.add_parser("check", help="measure a linked ELF and check it against budgets.toml")
    c.add_argument("elf", nargs="?", help="firmware ELF (or use --env)")
    c.add_argument("--env", help="PlatformIO env: reads .pio/build/ENV/firmware.elf")
    c.add_argument("--target", help="target in budgets.toml (default: from --env)")
    c.add_argument("--baseline", metavar="FILE", help="JSON from an earlier --json: show what changed")
    c.add_argument(
        "--model-dir",
        metavar="DIR",
        help="the model the ELF runs: also estimate its time per window (traced on the emulated Cortex-M4F) "
        "and check it against the target's window_time budget",
    )
    _common(c)
    c.set_defaults(budget_func=_check)
    e = sub.add_parser("estimate", help="estimate flash/RAM from manifest.json before building firmware")
    e.add_argument(
        "--manifest", default="build/model/manifest.json", help="default: build/model/manifest.json"
    )
    e.add_argument("--target", required=True, help="target in budgets.toml")
    e.add_argument(
        "--engine", choices=ENGINES, required=True, help="the engine the firmware will run (TFLM or compiled)"
    )
    e.add_argument("--strict", action="store_true", help="exit 1 when the estimate breaks a budget")
    e.add_argument(
        "--timing",
        action="store_true",
        help="estimate the time per window by tracing the model's code on the emulated Cortex-M4F (needs "
        "arm-none-eabi-gcc and QEMU) instead of from its shape",
    )
    _common(e)
    e.set_defaults(budget_func=_estimate)
    s = sub.add_parser(
        "sampling",
        help="can a board env keep the model's sample rate in sensor mode? (the board build asks the same)",
    )
    s.add_argument("--env", required=True, help="PlatformIO env (nano33ble, esp32dev, ..._compiled)")
    s.add_argument(
        "--flags",
        default="",
        help='build options as for `make build EXTRA_FLAGS=...` (e.g. "-D TAE_ESP32_MPU6050")',
    )
    s.add_argument(
        "--manifest", default="build/model/manifest.json", help="default: build/model/manifest.json"
    )
    s.set_defaults(budget_func=_sampling)


def run_args(args: argparse.Namespace) -> int:
    return int(args.budget_func(args))


def _report_violations(violations: list[Violation], prefix: str) -> None:
    for v in violations:
        print(f"{prefix}: {v.message}", file=sys.stderr)


def _check(args: argparse.Namespace) -> int:
    budgets = load_budgets(args.budgets)
    if args.elf and args.env:
        raise UserError("give either an ELF path or --env, not both")
    if args.env:
        elf = env_elf(args.env)
        target_name = args.target or target_for_env(args.env, budgets)
        if not elf.is_file():
            raise UserError(
                f"no firmware for env {args.env!r} at {elf}; "
                f"build it first with `make build BOARD={args.env}`"
            )
    elif args.elf:
        elf = Path(args.elf)
        if not args.target:
            raise UserError(
                f"which target is {elf} for? pass --target, one of {', '.join(sorted(budgets.targets))}"
            )
        target_name = args.target
    else:
        raise UserError("give the firmware ELF to check or --env NAME")
    target = budgets.target(target_name)
    figures = measure(read_elf(elf), target)
    violations = check(figures, target)
    doc = to_json(figures, target, violations, str(elf))
    delta = diff(doc, load_baseline(args.baseline), args.top) if args.baseline else None
    if delta is not None:
        doc["baseline"] = {"file": args.baseline, **delta}
    console = make_console()
    print_report(console, figures, doc, target, args.top, delta)
    time_error = None
    if args.model_dir:
        tc = _traced_time(Path(args.model_dir), target, engine_of(elf))
        print_time(console, tc, TIMING_METHOD)
        doc["time"] = tc.to_json()
        time_error = tc.violation()
    if args.json:
        write_json(doc, args.json)
    _report_violations(violations, "error")
    if time_error:
        print(f"error: {time_error}", file=sys.stderr)
    return EXIT_OVER_BUDGET if violations or time_error else 0


def _sampling(args: argparse.Namespace) -> int:
    from rich.table import Table

    from .sampling import estimate, refusal

    s = estimate(load_manifest(args.manifest), args.env, f"-D TAE_BOARD_SENSOR {args.flags}")
    t = Table(title=f"sensor mode on {args.env}: {s.sensor.name} at {s.rate_hz:g} Hz (estimated)")
    t.add_column("figure")
    t.add_column("value", justify="right")
    for name, value in s.terms.items():
        t.add_row(name, f"{value:,.0f}" + ("" if name.startswith("serial bytes") else " us"))
    make_console().print(t)
    print(f"sensor: {s.sensor.source}\nboard: {s.board.source}")
    for w in s.warnings:
        print(f"warning: {w}", file=sys.stderr)
    if not s.ok:
        print(f"error: {refusal(s)}", file=sys.stderr)
        return EXIT_OVER_BUDGET
    return 0


def _estimate(args: argparse.Namespace) -> int:
    budgets = load_budgets(args.budgets)
    target = budgets.target(args.target)
    figures = estimate_from_manifest(load_manifest(args.manifest), args.target, args.engine, budgets)
    violations = check(figures, target)
    doc = to_json(figures, target, violations, str(args.manifest))
    console = make_console()
    print_report(console, figures, doc, target, args.top)
    manifest = load_manifest(args.manifest)
    if args.timing:
        tc = _traced_time(Path(args.manifest).parent, target, _traced_engine(args.engine))
        method = TIMING_METHOD
    else:
        tc = time_check(target, manifest, formula_timing(manifest, args.engine), "formula")
        tc.model = Path(args.manifest).parent.name
        method = FORMULA_METHOD
    print_time(console, tc, method)
    doc["time"] = tc.to_json()
    if args.json:
        write_json(doc, args.json)
    _report_violations(violations, "error" if args.strict else "warning")
    time_error = tc.violation()
    if time_error:
        print(f"{'error' if args.strict else 'warning'}: {time_error}", file=sys.stderr)
    return EXIT_OVER_BUDGET if (violations or time_error) and args.strict else 0


def engine_of(elf: Path) -> str:
    """The engine a linked image runs: a TFLM library (by its kernels) or the compiled engine."""
    names = " ".join(s.name for s in read_elf(elf).symbols)
    if "MicroInterpreter" not in names:
        return "compiled"
    return "chirale" if "arm_fully_connected_s8" in names else "upstream"


def _traced_engine(engine: str) -> str:
    """The engine `budget estimate --timing` traces: TFLM on a Cortex-M4F board is the library the
    nano33ble env pins (Chirale_TensorFLowLite, CMSIS-NN kernels), as on the emulated board by default."""
    return "compiled" if engine == "compiled" else "chirale"


def _traced_time(model_dir: Path, target: Target, engine: str) -> TimeCheck:
    """The target's TimeCheck for `model_dir`, its code traced on the emulated Cortex-M4F (when the
    target's core is one)."""
    manifest = load_manifest(model_dir / "manifest.json")
    if not_estimated_reason(target) is not None:
        tc = time_check(target, manifest, None, "trace")
    else:
        from tinyae.tools.emulator import timing

        try:
            tc = time_check(target, manifest, timing.measure(model_dir, engine), "trace")
        except UserError as exc:
            tc = time_check(target, manifest, None, "trace")
            tc.reason = f"not estimated: {exc}"
    tc.model = model_dir.name
    return tc
