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


def _fake_device(monkeypatch, tmp_path: Path, edit=lambda dev, fp, tflm: None) -> dict:  # type: ignore[no-untyped-def]
    """`tinyae bench device` with its measurements replaced by bench/results.json's own device, footprint
    and board-library TFLM sections (after `edit`), so the command's merging runs in milliseconds; the
    copy of results.json it updates is returned as it was."""
    import copy

    from tinyae.tools.bench import boardlibs, cli, models

    before = json.loads((ROOT / "bench" / "results.json").read_text())
    (tmp_path / "results.json").write_text(json.dumps(before))

    def measured(default, trained, quick, model_dir, img_dir):  # type: ignore[no-untyped-def]
        assert default.spec == models.DEFAULT and not quick and model_dir == tmp_path / "work" / "models"
        dev, fp = copy.deepcopy(before["device"]), copy.deepcopy(before["footprint"])
        dev.pop("run", None), fp.pop("run", None), dev.pop("models_check", None)
        edit(dev, fp, tflm)
        return dev, fp

    tflm = copy.deepcopy(before["board_libraries"]["tflm"])
    tflm.pop("run", None)

    class Trained:
        spec = models.DEFAULT

    monkeypatch.setattr(cli, "have", lambda *programs: None)
    monkeypatch.setattr(models, "train", lambda spec, model_dir: Trained())
    monkeypatch.setattr(cli, "_device", measured)
    monkeypatch.setattr(boardlibs, "tflm_on_the_emulator", lambda default, img_dir, say: tflm)
    return before


def _device_main(tmp_path: Path) -> int:
    return main(["bench", "device", "--out", str(tmp_path), "--work", str(tmp_path / "work")])


def test_device_section_is_merged_with_its_footprint_and_the_other_sections_kept(
    tmp_path, monkeypatch
) -> None:
    def edit(dev: dict, fp: dict, tflm: dict) -> None:
        dev["models"]["default"]["tflm"]["chirale"]["flash_added"] = 61_234
        fp["models"]["default"]["tflm"]["chirale"]["flash_added"] = 61_234
        tflm["libraries"]["upstream"]["flash_used"] = 74_321
        dev["models"]["sweep_h32"]["tflite_bytes"] += 8  # a model trained differently: named, not hidden

    before = _fake_device(monkeypatch, tmp_path, edit)
    assert _device_main(tmp_path) == 0
    after = json.loads((tmp_path / "results.json").read_text())
    for key in set(before) - {"device", "footprint", "board_libraries"}:
        assert after[key] == before[key], key
    assert after["board_libraries"]["granularity"] == before["board_libraries"]["granularity"]
    assert after["device"]["models"]["default"]["tflm"]["chirale"]["flash_added"] == 61_234
    assert after["board_libraries"]["tflm"]["libraries"]["upstream"]["flash_used"] == 74_321
    for sec in (after["device"], after["footprint"], after["board_libraries"]["tflm"]):
        assert sec["run"]["command"].endswith(f"bench device --work {tmp_path / 'work'} --out {tmp_path}")
        assert sec["run"]["commit"]
    assert after["device"]["models_check"]["differences"] == [
        f"sweep_h32: tflite_bytes {before['device']['models']['sweep_h32']['tflite_bytes']} before, "
        f"{before['device']['models']['sweep_h32']['tflite_bytes'] + 8} now"
    ]
    text = (tmp_path / "RESULTS.md").read_text()
    assert "| 61,234 B |" in text and "| 74,321 |" in text and text.count("This section: `") >= 3
    assert "Its models differ from those of results.json's device section" in text


def test_device_section_not_fully_measured_merges_nothing(tmp_path, monkeypatch, capsys) -> None:
    def edit(dev: dict, fp: dict, tflm: dict) -> None:
        dev["models"]["reference"]["tflm"]["upstream"] = {"status": "not measured", "reason": "no sources"}

    _fake_device(monkeypatch, tmp_path, edit)
    kept = (tmp_path / "results.json").read_bytes()
    assert _device_main(tmp_path) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(
        "error: the device section was not fully measured (reference with TFLM upstream: no"
    )
    assert "nothing was merged" in err and "device-partial.json" in err
    assert (tmp_path / "results.json").read_bytes() == kept and not (tmp_path / "RESULTS.md").exists()
    partial = json.loads((tmp_path / "work" / "device-partial.json").read_text())
    assert partial["device"]["models"]["reference"]["tflm"]["upstream"]["status"] == "not measured"


def test_device_section_without_the_emulator_is_one_sentence(tmp_path, monkeypatch, capsys) -> None:
    from tinyae.tools.bench import cli

    monkeypatch.setattr(
        cli, "have", lambda *programs: "qemu-system-arm is not installed (run `make toolchain`)"
    )
    assert _device_main(tmp_path) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "error: the device section runs on the emulated Cortex-M4F and qemu-system-arm is not installed "
        "(run `make toolchain`)"
    )
    assert not any(tmp_path.iterdir())


def test_device_models_compared_by_hash_where_recorded() -> None:
    from tinyae.tools.bench.device import model_differences

    old = {"models": {"default": {"shape": "8-4-8", "macs": 64}, "reference": {"shape": "8-4-8"}}}
    new = {"models": {"default": {"model_sha256": "b", "shape": "8-4-8", "macs": 64}}}
    # the default's hash from the time-per-window section stands in where the device rows lack it
    assert model_differences(old, new, "b") == ["reference: measured before, not now"]
    assert model_differences(old, new, "a") == [
        "default: model_sha256 a before, b now",
        "reference: measured before, not now",
    ]
