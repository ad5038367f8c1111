"""Documented defaults are the code's defaults.

Read from the prose, as a reader meets them:
- command-line options: every "`--option ...` ... default X" in README.md and docs/*.md, and every
  "default X" written literally into an option's --help, against the argparse parsers of both command
  line (tinyae.cli.build_parser), subcommands included;
- configuration keys: README's "Configuration" section ("`key` = `value` (default", "`key` (default X)",
  "`key` (N)", "`key`: N (the default)") against tinyae.train.config's dataclass defaults.
Each reader also has to find the claims it is known to contain, so a rewording cannot silently turn
the check off.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from pathlib import Path

import pytest

from tinyae.cli import build_parser
from tinyae.tools.budget.config import DEFAULT_BUDGETS
from tinyae.tools.emulator import qemu
from tinyae.tools.search.space import Settings
from tinyae.train import config

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# Options whose argparse default is None and whose value is resolved where it is used: what that is.
RESOLVED_DEFAULTS = {
    "--emulator-storage": qemu.DEFAULT_STORAGE,
    "--budgets": Path(DEFAULT_BUDGETS),
    "--finalists": Settings().finalists,
}


# ------------------------------------------------------------------ the parsers' defaults
def _walk(parser: argparse.ArgumentParser, path: str):
    for action in parser._actions:  # argparse has no public accessor for its actions
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _walk(sub, f"{path} {name}")
        elif action.option_strings:
            yield path, action


def option_actions() -> dict[str, list[tuple[str, argparse.Action]]]:
    """option string -> [(command, action)] over the `tinyae` command and its subcommands."""
    table: dict[str, list[tuple[str, argparse.Action]]] = {}
    for prog, parser in (("tinyae", build_parser()),):
        for command, action in _walk(parser, prog):
            for opt in action.option_strings:
                table.setdefault(opt, []).append((command, action))
    return table


def _values(option: str, action: argparse.Action) -> list[object]:
    """What the option means when it is left out (or, for `--opt` without its optional value, const)."""
    out: list[object] = [action.default]
    if action.default is None and option in RESOLVED_DEFAULTS:
        out.append(RESOLVED_DEFAULTS[option])
    if action.nargs == "?":
        out.append(action.const)
    return out


def same(documented: str, value: object) -> bool:
    """A documented value (text) and a code value: numbers by value, paths relative to the repository."""
    text = documented.strip().strip("`").strip()
    if isinstance(value, bool) or value is None:
        return text.lower() == str(value).lower()
    if isinstance(value, (int, float)):
        number = re.match(r"-?\d+(?:\.\d+)?(?:e-?\d+)?", text)
        return number is not None and float(number.group()) == float(value)
    if isinstance(value, Path):
        path = value.relative_to(ROOT) if value.is_absolute() else value
        return text.removeprefix("./").rstrip("/") == str(path).rstrip("/")
    if isinstance(value, list):
        return [v.strip() for v in text.split(",")] == [str(v) for v in value]
    return text == str(value)


# ------------------------------------------------------------------ the documents' claims
OPTION = re.compile(r"`(--[a-z][a-z0-9-]*)(?: [^`]*)?`")
# a default is a literal: `quoted`, a number, or a path (lower case: MODEL_DIR/... is a description)
DEFAULT = re.compile(r"\bdefault:?\s+(`[^`]+`|-?\d[\w.]*|\.?/?[a-z][\w.-]*/[\w./-]*|\./[\w.-]+)")


def option_claims(text: str) -> list[tuple[str, str]]:
    """(option, documented default) for each "`--option ...` ... default X" in prose, the default read
    up to the next option, sentence end or semicolon."""
    flat = re.sub(r"\s+", " ", text)
    claims = []
    for m in OPTION.finditer(flat):
        rest = flat[m.end() :]
        stop = re.search(r"`--|; |\. [A-Z`(]|\.$|:\s*$", rest)
        window = rest[: stop.start()] if stop else rest
        found = DEFAULT.search(window)
        if found:
            claims.append((m.group(1), found.group(1)))
    return claims


def doc_option_claims() -> list[tuple[str, str, str]]:
    return [(doc.name, opt, val) for doc in DOCS for opt, val in option_claims(doc.read_text())]


def test_the_option_reader_reads_the_forms_the_docs_use() -> None:
    text = (
        "take `--retries N` (default 2, below). `--baud` (default 115200), `--model-dir` (default\n"
        "`build/model`), `--emulator-storage` (the board's storage, default `build/emulator/storage`) and "
        "`--quiet`; (`--target`, default `nano33ble`) and `--retries 2` recovers; `--config` (default: the "
        "built-in defaults)."
    )
    assert option_claims(text) == [
        ("--retries", "2"),
        ("--baud", "115200"),
        ("--model-dir", "`build/model`"),
        ("--emulator-storage", "`build/emulator/storage`"),
        ("--target", "`nano33ble`"),
    ]


def test_documented_option_defaults_are_the_parsers() -> None:
    actions = option_actions()
    claims = doc_option_claims()
    documented = {opt for _, opt, _ in claims}
    # the claims the docs are known to make, so that a rewording cannot switch this test off
    assert {"--retries", "--baud", "--timeout", "--model-dir", "--emulator-storage", "--target"} <= documented
    wrong = []
    for doc, opt, val in claims:
        assert opt in actions, f"{doc} documents {opt}, which no command has"
        if not any(same(val, v) for _, a in actions[opt] for v in _values(opt, a)):
            code = sorted({f"{cmd}: {_values(opt, a)[0]!r}" for cmd, a in actions[opt]})
            wrong.append(f"{doc}: {opt} default {val} but the code says {'; '.join(code)}")
    assert wrong == []


def test_help_texts_state_the_real_defaults() -> None:
    """An option's --help that writes its default out literally (not through %(default)s) is right."""
    wrong = []
    for opt, uses in option_actions().items():
        for command, action in uses:
            m = DEFAULT.search(action.help or "") if action.help != argparse.SUPPRESS else None
            literal = m and "%(default)" not in (action.help or "")
            if literal and not any(same(m.group(1), v) for v in _values(opt, action)):
                wrong.append(f"{command} {opt}: help says default {m.group(1)}, code {action.default!r}")
    assert wrong == []


# ------------------------------------------------------------------ configuration
def readme_config_section() -> dict[str, str]:
    """README's Configuration bullets: section name -> its text (sub-bullets included, one line)."""
    text = (ROOT / "README.md").read_text()
    body = text.split("\n## Configuration\n", 1)[1].split("\n#", 1)[0]
    sections: dict[str, str] = {}
    for m in re.finditer(r"^- \*\*(\w+)\*\*(.*?)(?=^- \*\*|\Z)", body, re.M | re.S):
        sections[m.group(1)] = re.sub(r"\s+", " ", m.group(2))
    return sections


CONFIG_FORMS = [
    # `key` = `value` (default ...   /   `key` = any of `value` (default ...
    re.compile(r"`(\w+)` = (?:any of )?`([^`]+)` \(default\b"),
    # `key` (default X)   /   `k1`, `k2` (default X each)
    re.compile(r"((?:`\w+`, )*`\w+`) \(default:? `?([\w.+-]+)`?(?: each)?\)"),
    # `key` (N): a bound or setting whose default is the number in parentheses
    re.compile(r"`(\w+)` \((-?\d+(?:\.\d+)?)\)"),
    # `key`: N (the default)
    re.compile(r"`(\w+)`: `?(-?[\w.]+)`? \(the default\b"),
    # `key` says: `value` (default
    re.compile(r"`(\w+)` says: `(\w+)` \(default\b"),
]


def config_claims() -> list[tuple[str, str, str]]:
    """(section, key, documented default) from README's Configuration section."""
    claims = []
    for section, text in readme_config_section().items():
        for form in CONFIG_FORMS:
            for m in form.finditer(text):
                for key in re.findall(r"`(\w+)`", m.group(1)) or [m.group(1)]:
                    claims.append((section, key, m.group(2)))
    return claims


def test_the_config_reader_finds_the_documented_defaults() -> None:
    found = {(s, k) for s, k, _ in config_claims()}
    expected = {
        ("data", "source"), ("data", "val_fraction"), ("data", "test_fraction"),
        ("normalization", "outlier_iqr"), ("normalization", "outliers"), ("normalization", "min_levels"),
        ("frontend", "kinds"), ("frontend", "log_floor"), ("threshold", "method"),
        ("calibration", "offsets"), ("calibration", "scales"), ("calibration", "max_shift_std"),
        ("calibration", "max_scale_ratio"), ("calibration", "max_over_fraction"),
        ("calibration", "max_threshold_ratio"), ("quantize", "weights"),
    }  # fmt: skip
    assert expected <= found, expected - found


def test_readme_config_defaults_are_the_dataclasses() -> None:
    defaults = config.Config()
    wrong = []
    for section, key, val in config_claims():
        sect = getattr(defaults, section, None)
        assert sect is not None and dataclasses.is_dataclass(sect), f"README documents section [{section}]"
        assert hasattr(sect, key), f"README documents {section}.{key}, which the config does not have"
        value = getattr(sect, key)
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
        if not same(val, value):
            wrong.append(f"README: {section}.{key} default {val} but train/config.py says {value!r}")
    assert wrong == []


@pytest.mark.parametrize(
    ("text", "claim"),
    [
        ("- **threshold**: `method` = `percentile` (default, of x)", ("threshold", "method", "percentile")),
        ("- **calibration**: `offsets` (default true), `max_threshold_ratio` (4).",
         ("calibration", "max_threshold_ratio", "4")),
    ],
)  # fmt: skip
def test_a_wrong_config_default_is_caught(monkeypatch, text, claim) -> None:
    """The comparison fails on a README that says something else (the reader is not lenient)."""
    section, key, val = claim
    monkeypatch.setattr(
        "test_documented_defaults.readme_config_section",
        lambda: {section: text.split("**: ", 1)[1].replace(f"`{val}`", "`999`").replace(f"({val})", "(999)")},
    )
    claims = config_claims()
    assert (section, key, "999") in claims
    with pytest.raises(AssertionError, match=f"{section}.{key} default 999"):
        test_readme_config_defaults_are_the_dataclasses()
