"""The typed manifest (train/manifest.py): round trip, every field validated on read with one sentence
naming it, old and newer schemas refused, and the commands that read a manifest ending in that sentence."""

from __future__ import annotations

import copy
import dataclasses
import json
import re
import typing
from pathlib import Path
from typing import Any

import pytest

from tinyae.errors import UserError
from tinyae.tools.simdevice.port import sim_manifest, sim_model_dir
from tinyae.train import config
from tinyae.train import manifest as mf
from tinyae.train.manifest import SCHEMA_VERSION, Manifest


def _fields(cls: type, prefix: str = "") -> list[tuple[str, Any, bool]]:
    """(dotted JSON path, type, required) of every field of a section dataclass, nested sections too."""
    out = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name == "extra":
            continue
        key = f.metadata.get("key", f.name)
        path = f"{prefix}{key}"
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        tp = hints[f.name]
        out.append((path, tp, required))
        if dataclasses.is_dataclass(tp):
            out += _fields(tp, path + ".")
    return out


FIELDS = [(p, tp, req) for p, tp, req in _fields(Manifest) if p != "schema_version"]
REQUIRED = [p for p, _, req in FIELDS if req]


def _wrong_value(tp: Any) -> Any:
    """A JSON value that is not of type tp."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, __import__("types").UnionType):
        tp = next(a for a in typing.get_args(tp) if a is not type(None))
        origin = typing.get_origin(tp)
    if tp is str:
        return 5
    if tp in (int, float, bool):
        return "five"
    return "not an object or list" if origin in (list, dict) or dataclasses.is_dataclass(tp) else 5


def _pop(doc: dict, path: str) -> None:
    *head, last = path.split(".")
    for k in head:
        doc = doc[k]
    del doc[last]


def _set(doc: dict, path: str, value: Any) -> None:
    *head, last = path.split(".")
    for k in head:
        doc = doc[k]
    doc[last] = value


@pytest.fixture(scope="module")
def doc() -> dict:
    return sim_manifest().to_dict()


def test_schema_round_trip(doc: dict) -> None:
    m = Manifest.from_dict(doc)
    assert m.to_dict() == doc
    assert json.loads(m.to_json()) == json.loads(json.dumps(doc))
    assert next(iter(doc)) == "schema_version" and doc["schema_version"] == SCHEMA_VERSION
    assert isinstance(m.window, mf.WindowSection) and m.window.channels == 3
    assert m.calib_spec().channels == 3 and m.frontend_spec().feature_size == m.input.size


def test_open_sections_keep_every_key(doc: dict) -> None:
    d = copy.deepcopy(doc)
    d["metrics"]["float"] = {"roc_auc": 0.9}
    d["data"]["timestamp"] = None
    d["compiled"]["lut_bytes"] = 12
    m = Manifest.from_dict(d)
    assert m.metrics.float_ == {"roc_auc": 0.9} and m.data.extra["timestamp"] is None
    assert m.compiled.extra == {"lut_bytes": 12}
    assert m.to_dict() == d


def test_the_trained_model_round_trips(default_model_dir: Path) -> None:
    text = (default_model_dir / "manifest.json").read_text()
    m = Manifest.load(default_model_dir / "manifest.json")
    assert m.to_json() == text  # byte for byte: nothing dropped, nothing reordered
    assert m.metrics.int8 is not None and m.model.layers[0].units > 0


@pytest.mark.parametrize("path", REQUIRED)
def test_every_required_field_missing_is_named(doc: dict, path: str) -> None:
    d = copy.deepcopy(doc)
    _pop(d, path)
    with pytest.raises(UserError) as e:
        Manifest.from_dict(d, "build/model/manifest.json")
    msg = str(e.value)
    assert msg == f"build/model/manifest.json: `{path}` is missing; {mf.REBUILD}"
    assert "\n" not in msg


@pytest.mark.parametrize(("path", "tp"), [(p, tp) for p, tp, _ in FIELDS if tp is not Any])
def test_every_field_of_the_wrong_type_is_named(doc: dict, path: str, tp: Any) -> None:
    d = copy.deepcopy(doc)
    bad = _wrong_value(tp)
    _set(d, path, bad)
    with pytest.raises(UserError, match=rf"^m\.json: `{path}` is {bad!r}, not ") as e:
        Manifest.from_dict(d, "m.json")
    assert "\n" not in str(e.value)


def test_list_items_and_numbers(doc: dict) -> None:
    d = copy.deepcopy(doc)
    d["normalization"]["offset"][1] = "x"
    with pytest.raises(UserError, match=r"`normalization.offset\[1\]` is 'x', not a number"):
        Manifest.from_dict(d)
    d = copy.deepcopy(doc)
    d["window"]["hop"] = True  # a JSON boolean is not a count
    with pytest.raises(UserError, match=r"`window.hop` is True, not an integer"):
        Manifest.from_dict(d)
    d = copy.deepcopy(doc)
    d["window"]["sample_rate_hz"] = 50  # an integer is a number
    assert Manifest.from_dict(d).window.sample_rate_hz == 50.0


def test_unknown_fields_and_broken_sections_are_refused(doc: dict) -> None:
    d = copy.deepcopy(doc)
    d["window"]["stride"] = 3
    with pytest.raises(UserError, match=r"`window.stride` is not a field this tinyae knows"):
        Manifest.from_dict(d)
    d = copy.deepcopy(doc)
    del d["calibration"]["bounds"]
    with pytest.raises(UserError, match=r"`calibration` section lacks 'bounds'"):
        Manifest.from_dict(d)


def test_old_and_newer_schemas_are_refused(doc: dict) -> None:
    old = {k: v for k, v in doc.items() if k != "schema_version"} | {"schema": 1}
    with pytest.raises(UserError) as e:
        Manifest.from_dict(old, "build/model/manifest.json")
    assert str(e.value) == (
        f"build/model/manifest.json has schema 1, this tinyae reads schema {SCHEMA_VERSION}; "
        "it was written by an older tinyae — run `make model` again"
    )
    with pytest.raises(UserError, match=r"has no schema version"):
        Manifest.from_dict({k: v for k, v in doc.items() if k != "schema_version"})
    with pytest.raises(UserError, match=r"schema_version 99, this tinyae reads .*newer tinyae"):
        Manifest.from_dict({**doc, "schema_version": 99})
    with pytest.raises(UserError, match=r"schema_version '2'.*older tinyae"):
        Manifest.from_dict({**doc, "schema_version": "2"})
    with pytest.raises(UserError, match=r"is not a JSON object"):
        Manifest.from_dict([doc])


@pytest.mark.parametrize(
    ("k", "n", "needle"),
    [(5, 3, "`decision.k` = 5 must be at most `decision.n` = 3"),
     (0, 3, "`decision.k` = 0 must be between 1 and 255"),
     (-1, 3, "`decision.k` = -1 must be between 1 and 255"),
     (1, 0, "`decision.n` = 0 must be between 1 and 255"),
     (2, 256, "`decision.n` = 256 must be between 1 and 255")],
)  # fmt: skip
def test_an_alarm_rule_a_configuration_could_not_give_is_refused(
    doc: dict, k: int, n: int, needle: str
) -> None:
    """A hand-edited decision section is held to the configuration's bounds where the manifest is read:
    k > n or k = 0 makes a device that never alarms, n = 0 no rule at all, n > 255 one the handshake
    cannot report."""
    d = copy.deepcopy(doc)
    d["decision"] = {"k": k, "n": n}
    with pytest.raises(UserError) as e:
        Manifest.from_dict(d, "m.json")
    text = str(e.value)
    assert text.startswith("m.json: " + needle) and "make model" in text and "\n" not in text, text
    d["decision"] = {"k": 255, "n": 255}
    assert Manifest.from_dict(d).decision == mf.Decision(255, 255)


@pytest.mark.parametrize(
    ("path", "value", "needle"),
    [("window.length", 70000, "`window.length` = 70000 must be between 2 and 65535"),
     ("window.hop", 0, "`window.hop` = 0 must be between 1 and 65535")],
)  # fmt: skip
def test_a_window_the_handshake_cannot_carry_is_refused(
    doc: dict, path: str, value: int, needle: str
) -> None:
    """Every manifest field a configuration key sets (mf.CONFIG_BOUNDED) is held to that key's bounds."""
    assert set(mf.CONFIG_BOUNDED) <= set(config.schema())
    d = copy.deepcopy(doc)
    _set(d, path, value)
    with pytest.raises(UserError) as e:
        Manifest.from_dict(d, "m.json")
    assert str(e.value).startswith("m.json: " + needle) and f"set {path} in the configuration" in str(e.value)


@pytest.mark.parametrize(
    ("value", "needle"),
    [(1e-50, "becomes 0 as a float32"), (1e-45, "becomes the subnormal"), (3.5e38, "does not fit a float32"),
     (-0.5, "must be above 0"), (0.0, "must be above 0")],
)  # fmt: skip
def test_a_threshold_the_device_cannot_hold_is_refused(doc: dict, value: float, needle: str) -> None:
    d = copy.deepcopy(doc)
    d["threshold"]["value"] = value
    with pytest.raises(UserError, match="^" + re.escape(f"m.json: `threshold.value` = {value!r} {needle}")):
        Manifest.from_dict(d, "m.json")


def test_load_names_a_missing_or_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"manifest.json does not exist; run `make model` first"):
        Manifest.load(tmp_path / "manifest.json")
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(UserError, match=r"is not readable JSON"):
        Manifest.load(tmp_path / "manifest.json")


# --------------------------------------------------------------------- the commands that read it
def _broken_dir(tmp_path: Path, break_it) -> Path:  # type: ignore[no-untyped-def]
    d = sim_model_dir(tmp_path / "model")
    doc = json.loads((d / "manifest.json").read_text())
    break_it(doc)
    (d / "manifest.json").write_text(json.dumps(doc))
    return d


def _no_threshold(doc: dict) -> None:
    del doc["threshold"]["value"]


def _schema_1(doc: dict) -> None:
    del doc["schema_version"]
    doc["schema"] = 1


def _k_above_n(doc: dict) -> None:
    doc["decision"] = {"k": 5, "n": 3}


def _no_window_of_history(doc: dict) -> None:
    doc["decision"] = {"k": 1, "n": 0}


def _threshold_zero_in_float32(doc: dict) -> None:
    doc["threshold"]["value"] = 1e-50


@pytest.mark.parametrize(
    ("break_it", "needle"),
    [(_no_threshold, "`threshold.value` is missing; it was written by an older tinyae — run `make model`"),
     (_schema_1, f"has schema 1, this tinyae reads schema {SCHEMA_VERSION}"),
     (_k_above_n, "`decision.k` = 5 must be at most `decision.n` = 3"),
     (_no_window_of_history, "`decision.n` = 0 must be between 1 and 255"),
     (_threshold_zero_in_float32, "`threshold.value` = 1e-50 becomes 0 as a float32")],
)  # fmt: skip
@pytest.mark.parametrize(
    "command", ["train export", "device info", "device verify", "budget estimate", "threshold"]
)
def test_cli_on_a_broken_manifest_says_one_sentence(tmp_path, capsys, break_it, needle, command) -> None:  # type: ignore[no-untyped-def]
    d = _broken_dir(tmp_path, break_it)
    from tinyae.cli import main as tinyae

    if command == "train export":
        rc = tinyae(["export", "--model-dir", str(d)])
    elif command == "threshold":  # it re-renders model_config.h from the manifest
        rc = tinyae(["threshold", "--model-dir", str(d), "--method", "value", "--value", "0.5", "--quiet"])
    elif command == "budget estimate":
        rc = tinyae(
            [
                "budget",
                "estimate",
                "--manifest",
                str(d / "manifest.json"),
                "--target",
                "nano33ble",
                "--engine",
                "tflm",
            ]
        )
    else:
        rc = tinyae(["device", command.split()[1], "--port", "sim://", "--model-dir", str(d)])
    assert rc == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err
    assert ".new-" not in err  # the model directory's own manifest is named, not a staging copy's
    assert err.count("\n") == 1, err


def test_make_rebuilds_a_model_with_an_old_manifest(tmp_path: Path) -> None:
    from tinyae.train import config
    from tinyae.train.inputs import check

    d = _broken_dir(tmp_path, _schema_1)
    reason = check(config.load(None), None, d, tmp_path / "stamp")
    assert reason.startswith("its manifest is not usable (") and "schema 1" in reason
