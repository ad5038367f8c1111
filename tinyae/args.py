"""argparse helpers: types that refuse nonsensical numbers in one sentence (`--timeout -1`,
`--retries -3`, `--inflight 0`), so a typo never turns into a silently odd run; and the help layout every
`tinyae` command shares (defaults, an example, the exit codes), which tinyae/cli.py applies to its own
parsers and `command_parser()` gives the commands that parse their own arguments (`tinyae bench SECTION`)."""

from __future__ import annotations

import argparse
import math
import textwrap

from tinyae import f32
from tinyae.errors import UserError

EXIT_CODES = (
    "exit codes: 0 success; 1 a check failed (a mismatch, a lost window, a budget exceeded); "
    "2 a user or device error (one `error:` sentence on stderr); 130 interrupted (Ctrl-C), 143 stopped by "
    "SIGTERM, after keeping what was received and leaving earlier files as they were"
)


def _number(text: str, kind: type) -> float | int:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a{'n integer' if kind is int else ' number'}"
        ) from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1 (counts: windows, trials, batches in flight, baud)."""
    v = int(_number(text, int))
    if v < 1:
        raise argparse.ArgumentTypeError(f"{v} must be at least 1")
    return v


def non_negative_int(text: str) -> int:
    """An integer >= 0 (retries, shifts: 0 means none)."""
    v = int(_number(text, int))
    if v < 0:
        raise argparse.ArgumentTypeError(f"{v} must be 0 or more")
    return v


def positive_float(text: str) -> float:
    """A finite number > 0 (seconds, rates)."""
    v = float(_number(text, float))
    if v <= 0:
        raise argparse.ArgumentTypeError(f"{v:g} must be above 0")
    return v


def positive_float32(text: str) -> float:
    """A number > 0 that the device stores as a float32 (a threshold): checked as the float32 it becomes, which
    must be a normal one (tinyae/f32.py: 1e-50 would be 0, 1e-45 a subnormal; 3.4028235e38 rounds to float32's
    largest). Returns that float32's value."""
    v = float(_number(text, float))
    p = f32.problem(v, positive=True)
    if p:
        raise argparse.ArgumentTypeError(f"{text} {p}")
    return f32.rounded(v)


def port_number(text: str) -> int:
    """A TCP port, 1..65535."""
    v = int(_number(text, int))
    if not 1 <= v <= 65535:
        raise argparse.ArgumentTypeError(f"{v} is not a TCP port (1-65535)")
    return v


# ------------------------------------------------------------------ the help layout of every command
class Parser(argparse.ArgumentParser):
    """A usage mistake is one `error:` sentence (exit 2, via run_cli) like every other user error."""

    def error(self, message: str):  # type: ignore[no-untyped-def]
        raise UserError(f"{message}; see `{self.prog} --help`")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the epilog's lines (wrapping those wider than the terminal: prose at spaces, an example command
    with shell continuations) and adds "(default: X)" to every option that has a default."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        out: list[str] = []
        for line in text.splitlines():
            lead = indent + line[: len(line) - len(line.lstrip())]
            if len(indent + line) <= width:
                out.append(indent + line)
            elif line.lstrip().startswith("tinyae "):  # an example: still pastes into a shell
                rows = textwrap.wrap(line.strip(), width - len(lead) - 2, break_long_words=False,
                                     break_on_hyphens=False)  # fmt: skip
                out += [lead + r + " \\" for r in rows[:-1]] + [lead + "  " * (len(rows) > 1) + rows[-1]]
            else:
                out += textwrap.wrap(line.strip(), width, initial_indent=lead, subsequent_indent=lead + "  ",
                                     break_long_words=False, break_on_hyphens=False)  # fmt: skip
        return "\n".join(out)

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if (
            action.default not in (None, False, argparse.SUPPRESS, [])
            and "default" not in text
            and action.option_strings
        ):
            text += " (default: %(default)s)"
        return text


def epilog(example: str) -> str:
    """The end of every --help: one example command line and the exit codes."""
    return f"example:\n  {example}\n\n{EXIT_CODES}"


def first_paragraph(doc: str | None) -> str:
    """A module docstring's first paragraph, re-wrapped (a command's description)."""
    return textwrap.fill(" ".join((doc or "").strip().split("\n\n")[0].split()), 100)


def command_parser(prog: str, doc: str | None, example: str) -> Parser:
    """The parser of a command that parses its own arguments: its docstring's first paragraph as the
    description, defaults shown, an example and the exit codes at the end, usage mistakes as one
    sentence."""
    return Parser(
        prog=prog, description=first_paragraph(doc), epilog=epilog(example), formatter_class=HelpFormatter
    )


def add_column_args(group: argparse._ArgumentGroup) -> None:
    """--channels / --timestamp / --label / --normal: which of a recording's columns are the model's channels,
    its timestamp and its label, and which label values mean normal, for every command that reads a user's
    recording (by default matched by name, labels read with the model's meaning)."""
    group.add_argument(
        "--channels",
        type=lambda s: [c.strip() for c in s.split(",") if c.strip()],
        metavar="COL,COL,...",
        help="the CSV's columns for the model's channels, in the model's order (when its names differ)",
    )
    group.add_argument("--timestamp", metavar="COL", help="the CSV's timestamp column ('none': it has none)")
    group.add_argument("--label", metavar="COL", help="the CSV's label column ('none': it has none)")
    group.add_argument(
        "--normal",
        type=lambda s: [c.strip() for c in s.split(",") if c.strip()],
        metavar="VALUE,...",
        help="the label values of the CSV that mean normal, every other value anomalous (when its labels are "
        "not the model's classes, e.g. --normal 1 for 1 = normal, -1 = fault)",
    )
