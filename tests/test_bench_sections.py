"""Every `tinyae bench` section is wired and documented, so none can crash on its first line again
(`tinyae bench calibration` once pointed at a module without `main`): each section's entry point resolves
through the real dispatch of tinyae/cli.py, its --help shows a description, an example and the exit
codes, and every option says what it does. The sections' measurements themselves run in `make bench`
(and `--quick` in tests/test_bench_smoke.py); this file runs none of them.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import json
from pathlib import Path

import pytest

from tinyae.args import EXIT_CODES
from tinyae.cli import PASSTHROUGH, build_parser, main

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = sorted(path for path in PASSTHROUGH if path[0] == "bench")


def _entry(path: tuple[str, ...]):  # type: ignore[no-untyped-def]
    module, _, function = PASSTHROUGH[path][0].partition(":")
    return getattr(importlib.import_module(module), function or "main")


def test_every_bench_module_with_a_command_line_is_a_section() -> None:
    """A tools/bench module that parses its own arguments (a `main(argv)`) is reachable as a section."""
    wired = {PASSTHROUGH[p][0] for p in SECTIONS}
    for f in sorted((ROOT / "tools" / "bench").glob("*.py")):
        tree = ast.parse(f.read_text())
        mains = [n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.endswith("main")]
        for name in mains:
            target = f"tinyae.tools.bench.{f.stem}" + ("" if name == "main" else f":{name}")
            assert target in wired, (
                f"{f.name}:{name} is no `tinyae bench` section (tinyae/cli.py PASSTHROUGH)"
            )


@pytest.mark.parametrize("path", SECTIONS, ids=[" ".join(p) for p in SECTIONS])
def test_section_entry_point_resolves(path) -> None:
    assert callable(_entry(path))


@pytest.mark.parametrize("path", SECTIONS, ids=[" ".join(p) for p in SECTIONS])
def test_section_help_has_description_example_exit_codes_and_option_help(path, capsys, monkeypatch) -> None:
    seen: list[argparse.ArgumentParser] = []
    parse = argparse.ArgumentParser.parse_args

    def spy(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(self)
        return parse(self, *args, **kwargs)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", spy)
    with pytest.raises(SystemExit) as done:
        main([*path, "--help"])  # the real dispatch, as `tinyae bench SECTION --help`
    assert done.value.code == 0
    text = capsys.readouterr().out
    prog = "tinyae " + " ".join(path)
    assert text.startswith(f"usage: {prog}")
    assert f"example:\n  {prog}" in text and EXIT_CODES.split(";")[0] in text
    description = text.split("\n\n")[1]
    assert description.rstrip().endswith("."), f"the description is cut off: {description!r}"
    (parser,) = seen
    for action in parser._actions:  # argparse has no public accessor for its actions
        if action.option_strings and action.help != argparse.SUPPRESS:
            assert action.help, f"{prog} {action.option_strings[0]} has no help"


@pytest.mark.parametrize("path", SECTIONS, ids=[" ".join(p) for p in SECTIONS])
def test_section_usage_mistake_is_one_sentence(path, capsys) -> None:
    assert main([*path, "--no-such-option"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "--no-such-option" in err and len(err.splitlines()) == 1


def _parsers(parser: argparse.ArgumentParser, path: tuple[str, ...]):  # type: ignore[no-untyped-def]
    yield path, parser
    for action in parser._actions:  # argparse has no public accessor for its actions
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                if (*path, name) not in PASSTHROUGH:
                    yield from _parsers(sub, (*path, name))


def test_every_tinyae_command_help_has_an_example_and_the_exit_codes() -> None:
    for path, parser in _parsers(build_parser(), ()):
        assert parser.epilog and "example:\n  tinyae" in parser.epilog and EXIT_CODES in parser.epilog, path
        for action in parser._actions:
            if action.option_strings and action.help != argparse.SUPPRESS:
                assert action.help, f"tinyae {' '.join(path)} {action.option_strings[0]} has no help"


def test_every_model_the_bench_trains_passes_the_config_schema():
    """A bench model refused by the config's rules fails `make bench` after half an hour (the reference
    network's sigmoid output on z-score data did): every spec the bench names is checked here in
    milliseconds, overrides applied as `tinyae model` applies them."""
    from tinyae.tools.bench import models, skab_bench, threshold
    from tinyae.train import config

    specs = [*models.QUALITY, models.REFERENCE, models.REFERENCE_LOGISTIC, skab_bench.DEVICE, threshold.NAB]
    specs += [models.reference_spec(h) for h in models.SWEEP_HIDDEN]
    specs += [models.quick(s) for s in specs]
    for spec in specs:
        config.load(ROOT / spec.config, spec.overrides)  # raises UserError naming the key


def test_a_section_measured_again_is_merged_and_says_when_and_how(tmp_path: Path) -> None:
    import shutil

    from tinyae.tools.bench.cli import merge_section

    shutil.copy(ROOT / "bench" / "results.json", tmp_path / "results.json")
    sec = {"status": "not measured", "reason": "a test"}
    assert merge_section(
        tmp_path, ("skab", "device"), sec, [".venv/bin/tinyae", "bench", "skab", "--device", "x"]
    )
    doc = json.loads((tmp_path / "results.json").read_text())
    assert doc["skab"]["device"]["reason"] == "a test" and doc["skab"]["device"]["run"]["commit"]
    text = (tmp_path / "RESULTS.md").read_text()
    assert "The SKAB model on the emulated Cortex-M4F: not measured: a test" in text
    # no parent section, no results.json: nothing is written
    assert merge_section(tmp_path, ("nothing", "here"), {}, ["x"]) is None
    assert merge_section(tmp_path / "empty", ("ingest",), {}, ["x"]) is None


def test_a_section_run_alone_without_results_json_is_written_on_its_own(tmp_path: Path) -> None:
    from tinyae.tools.bench.cli import store_section

    said: list[str] = []
    store_section(
        tmp_path / "alone", "threshold", {"status": "x"}, ["tinyae", "bench", "threshold"], said.append
    )
    doc = json.loads((tmp_path / "alone" / "threshold.json").read_text())
    assert doc["status"] == "x" and doc["run"]["command"] == "tinyae bench threshold"
    assert said == [
        f"no {tmp_path / 'alone' / 'results.json'}: wrote {tmp_path / 'alone' / 'threshold.json'} only"
    ]
