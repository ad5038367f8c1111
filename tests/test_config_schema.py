"""Every configuration key refuses every kind of bad value in one sentence, from the schema itself.

The bad values are generated from each key's type and bounds (tinyae.train.config.schema()): NaN, ±inf,
a number just outside each bound, a huge number, 0 and negatives where they are out of range, the wrong
type, an empty or repeated list, an unknown choice. A key added to the dataclasses is covered without a
change here; a key without bounds fails `test_every_number_has_bounds`.
"""

from __future__ import annotations

import argparse
import math
import typing
from pathlib import Path

import numpy as np
import pytest
from clirun import tinyae

from tinyae.errors import UserError
from tinyae.train import config
from tinyae.train.config import Key

ROOT = Path(__file__).resolve().parent.parent


def toml(v: object) -> str:
    """A value as the TOML text of an override (`--set key=TEXT`)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return '"' + v + '"'
    if isinstance(v, list):
        return "[" + ", ".join(toml(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f'"{k}" = {toml(x)}' for k, x in v.items()) + "}"
    return str(v)


def _next(b: config.Bounds, x: float, to: float) -> float:
    """The number next to the bound x towards `to`: the next float32 for a key the device stores as one (a
    double just above the bound rounds back to it, and the key is checked as that float32)."""
    if b.f32:
        return float(np.nextafter(np.float32(x), np.float32(to)))
    return math.nextafter(x, to)


def bad_numbers(k: Key, typ: type) -> list[object]:
    b = k.bounds
    out: list[object] = [float("nan"), float("inf"), float("-inf"), 1e300, -1e300]
    lo = b.ge if b.ge is not None else b.gt
    hi = b.le if b.le is not None else b.lt
    if b.gt is not None:
        out.append(typ(b.gt) if not b.zero or b.gt != 0 else -1)
    if b.ge is not None:
        below = _next(b, b.ge, -math.inf) if typ is float else int(b.ge) - 1
        if not (b.zero and below == 0):
            out.append(below)
    if b.lt is not None:
        out.append(typ(b.lt))
    if b.le is not None:
        out.append(_next(b, b.le, math.inf) if typ is float else int(b.le) + 1)
    if lo is not None and lo > 0:
        out += [-1, -1.5] if typ is float else [-1]
        if not b.zero:
            out.append(0)
    if b.zero and lo is not None and lo > 1:
        out.append(typ(lo / 2) if typ is float else 1)
    if b.pow2:
        out.append(int(lo or 2) + 1)
    if typ is int:
        out += [1.5, True]
    out += ["'text'", [1]]
    assert hi is not None, f"{k.path} has no maximum"
    return out


def bad_values(k: Key) -> list[object]:
    """Values `k` must refuse, derived from its type and bounds."""
    origin = typing.get_origin(k.type)
    b = k.bounds
    if origin is dict:
        return [3, 1.5, True, [1], "x"]
    if origin is list:
        item = typing.get_args(k.type)[0]
        out: list[object] = [{"a": 1}, True, [True], [[1]]]
        if b.nonempty:
            out.append([])
        if b.choices:
            out += [["no-such-choice"], [b.choices[0], "no-such-choice"]]
        if b.unique:
            first = b.choices[0] if b.choices else ("a" if item is str else 1)
            out.append([first, first])
        if item is int:
            out += [
                [x] for x in bad_numbers(k, int) if isinstance(x, int | float) and not isinstance(x, bool)
            ]
            out += [["'text'"], [1.5]]
        return out
    if k.type is bool:
        return ["maybe", 2, 1.5, [True]]
    if k.type is str:
        return (["no-such-choice", ""] if b.choices else []) + [5, 1.5, True, ["a"]]
    return bad_numbers(k, k.type)


def context(k: Key) -> list[str]:
    """Overrides that make `k` matter (a key read only with another setting is checked either way; this
    makes sure the refusal is about the value itself)."""
    if k.bounds.applies is None:
        return []
    other, allowed = k.bounds.applies
    return [f"{other}={toml([allowed[0]]) if other == 'frontend.kinds' else toml(allowed[0])}"]


KEYS = list(config.schema())


def test_every_number_has_bounds():
    for k in config.schema().values():
        origin = typing.get_origin(k.type)
        item = typing.get_args(k.type)[0] if origin is list else k.type
        b = k.bounds
        if item in (int, float):
            assert (b.ge is not None or b.gt is not None) and (b.le is not None or b.lt is not None), k.path
        assert b.applies is None or b.applies[0] in config.schema(), k.path
        if b.choices and origin is None:
            assert k.default in b.choices, k.path


def test_the_defaults_are_valid():
    cfg = config.Config()
    config.validate(cfg)
    assert config.warnings(cfg) == []
    for k in config.schema().values():
        assert config.problem(k, k.default) is None, k.path


@pytest.mark.parametrize("path", KEYS)
def test_every_bad_value_is_refused_in_one_sentence(path):
    k = config.schema()[path]
    values = bad_values(k)
    assert len(values) >= 4, path
    for value in values:
        with pytest.raises(UserError) as err:
            config.load(None, [*context(k), f"{path}={toml(value)}"])
        text = str(err.value)
        assert text.startswith(path), (value, text)
        assert "\n" not in text and len(text) < 400, (value, text)


def test_the_bounds_themselves_are_accepted():
    """Each inclusive bound and the special 0 pass the key's own check (rules between keys aside)."""
    for k in config.schema().values():
        item = typing.get_args(k.type)[0] if typing.get_origin(k.type) is list else k.type
        if item not in (int, float):
            continue
        b = k.bounds
        edges = [x for x in (b.ge, b.le) if x is not None] + ([0] if b.zero else [])
        for x in edges:
            v = item(x)
            if b.pow2 and v:
                v = 1 << (int(v).bit_length() - 1)
            assert config.problem(k, [v] if item is not k.type else v) is None, (k.path, v)


def test_overrides_are_checked_together_in_any_order(tmp_path):
    """`--set window.length=64 --set window.hop=32` on a config with hop 140 works in either order."""
    exp = tmp_path / "exp.toml"
    exp.write_text("[window]\nlength = 280\nhop = 140\n")
    for order in (["window.length=64", "window.hop=32"], ["window.hop=32", "window.length=64"]):
        cfg = config.load(exp, order)
        assert (cfg.window.length, cfg.window.hop) == (64, 32)
    with pytest.raises(UserError, match=r"window.hop = 140 must be between 1 and window.length \(64\)"):
        config.load(exp, ["window.length=64"])


def test_calibration_windows_and_their_minimum_in_any_order():
    """The minimum windows' rule (train/calibration/minimum.py) is checked once, after every override: a
    calibration that learns no threshold needs no threshold minimum, whichever override comes first."""
    for order in (
        ["calibration.windows=98", 'calibration.threshold="none"'],
        ['calibration.threshold="none"', "calibration.windows=98"],
    ):
        cfg = config.load(None, ["threshold.method='percentile'", *order])
        assert (cfg.calibration.windows, cfg.calibration.threshold) == (98, "none")
    with pytest.raises(UserError, match=r"^calibration.windows = 98 is below the 99 windows per phase"):
        config.load(None, ["calibration.windows=98", "threshold.method='percentile'"])
    # mad and pot (the default) take their k from the trained model's scores: checked when it is built
    assert config.load(None, ["calibration.windows=2"]).calibration.windows == 2


# One case per rule between keys: a rule added to config.RULES or config.ADVICE needs its case here.
RULE_CASES = {
    "_hop_within_window": (["window.length=8", "window.hop=9"], "window.hop = 9"),
    "_k_of_n": (["decision.k=3", "decision.n=2"], "decision.k = 3"),
    "_fractions": (["data.val_fraction=0.6", "data.source='csv'", "data.test_fraction=0.4"],
                   "must sum below 1"),
    "_calibration_learns": (["calibration.offsets=false", "calibration.threshold='none'"], "learns nothing"),
    "_output_reaches_the_data": (["model.output_activation='sigmoid'"],
                                 "normalization.method = 'zscore' maps normal data around 0"),
    "_over_stretch_k_of_n": (["calibration.max_over_stretch=[9, 8]"],
                             r"calibration.max_over_stretch = \[9, 8\] must be \[k, n\] with 1 <= k <= n <= 32"),
    "_calibration_windows": (["threshold.method='percentile'", "calibration.windows=98"],
                             "calibration.windows = 98 is below the 99 windows per phase"),
}  # fmt: skip
ADVICE_CASES = {
    "_kl_drowns_reconstruction": (["model.variant='vae'", "model.kl_weight=0.5"], "model.kl_weight = 0.5"),
    "_representative_set": (["quantize.representative_windows=8"], "fewer than one training batch"),
    "_screen_off": (["normalization.outlier_iqr=0", "normalization.outliers='refuse'"], "screen is off"),
}


def test_every_rule_has_a_case():
    assert {r.__name__ for r in config.RULES} == set(RULE_CASES)
    assert {r.__name__ for r in config.ADVICE} == set(ADVICE_CASES)


@pytest.mark.parametrize("name", sorted(RULE_CASES))
def test_a_combination_that_cannot_work_is_refused(name):
    overrides, message = RULE_CASES[name]
    with pytest.raises(UserError, match=message) as err:
        config.load(None, overrides)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name", sorted(ADVICE_CASES))
def test_a_combination_that_works_badly_is_warned_about(name):
    overrides, message = ADVICE_CASES[name]
    found = [w for w in config.warnings(config.load(None, overrides)) if message in w]
    assert len(found) == 1, config.warnings(config.load(None, overrides))


@pytest.mark.parametrize(
    ("overrides", "ok"),
    [
        (["model.output_activation='sigmoid'", "normalization.method='minmax'"], True),
        (["model.output_activation='tanh'", "normalization.method='minmax'"], True),
        (["model.output_activation='tanh'", "normalization.method='robust'"], False),
        (["model.output_activation='linear'", "normalization.method='robust'"], True),
    ],
)
def test_output_activation_against_normalization(overrides, ok):
    if ok:
        config.load(None, overrides)
    else:
        with pytest.raises(UserError, match="cannot reconstruct"):
            config.load(None, overrides)


def test_a_key_that_cannot_apply_is_refused_or_warned():
    # a file list with the synthetic source would train on the synthetic data: refused
    with pytest.raises(
        UserError, match=r"data.paths = \['x.csv'\] has no effect with data.source = 'synthetic'"
    ):
        config.load(None, ["data.paths=['x.csv']"])
    # a VAE weight on a plain model changes nothing: warned
    (w,) = config.warnings(config.load(None, ["model.kl_weight=0.005"]))
    assert "model.kl_weight = 0.005 has no effect with model.variant = 'plain'" in w
    assert config.warnings(config.load(None, ["model.kl_weight=0.005", "model.variant='vae'"])) == []


def test_every_numeric_option_of_the_cli_is_checked():
    """No command-line option takes a bare int/float: each refuses NaN, inf and out-of-range numbers."""
    from tinyae.cli import build_parser

    def walk(parser: argparse.ArgumentParser, path: str):
        for action in parser._actions:  # argparse has no public accessor for its actions
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from walk(sub, f"{path} {name}")
            elif action.option_strings:
                yield path, action

    bare = [f"{p} {a.option_strings[0]}" for p, a in walk(build_parser(), "tinyae") if a.type in (int, float)]
    assert bare == []


@pytest.mark.parametrize(
    "text", ["inf", "1e300"]
)  # the cases; the rest: test_option_type_uses_the_schema
def test_threshold_k_std_is_bounded_like_the_config_key(text, tmp_path):
    proc = tinyae(
        "threshold", "--model-dir", str(tmp_path), "--method", "mean_std", "--k-std", text, cwd=ROOT
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: argument --k-std: ") and "must be between 0 and 100" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1


def test_option_type_uses_the_schema():
    parse = config.option_type("threshold.k_std")
    assert parse("2.5") == 2.5
    with pytest.raises(argparse.ArgumentTypeError, match="inf is not a finite number"):
        parse("inf")
    with pytest.raises(argparse.ArgumentTypeError, match="is not a number"):
        parse("three")
    assert config.option_type("calibration.windows")("8") == 8
    with pytest.raises(argparse.ArgumentTypeError, match="must be between 1 and 65534"):
        config.option_type("calibration.windows")("0")
    with pytest.raises(UserError, match="--k-std inf is not a finite number"):
        config.check_value("threshold.k_std", float("inf"), "--k-std")


def test_the_source_names_are_the_data_modules():
    from tinyae.train.data.datasets import DATASETS

    assert set(config.DATASET_SOURCES) == set(DATASETS)
    assert set(config.SOURCES) == set(DATASETS) | set(config.FILE_SOURCES)


def test_the_search_settings_use_the_same_mechanism():
    """[search] (tinyae search) declares its keys the same way; every generated bad value is refused."""
    from tinyae.tools.search.space import Settings, parse_search

    for path, k in config.section_keys(Settings, "search").items():
        for value in bad_values(k):
            with pytest.raises(UserError) as err:
                parse_search({k.name: value}, "test.toml")
            assert str(err.value).startswith(path) and "\n" not in str(err.value), (value, str(err.value))


def test_a_value_the_device_stores_as_float32_is_checked_as_that_float32():
    """A key with Bounds.f32 is checked after rounding to float32: 1e-50 Hz passed `above 0` as a double and
    became 0 on the device; a ratio just above 1 became 1; a double that rounds onto a bound is that bound."""
    on = {k.path for k in config.schema().values() if k.bounds.f32}
    assert {"data.sample_rate_hz", "frontend.log_floor", "threshold.k_std", "calibration.max_shift_std",
            "calibration.max_scale_ratio", "calibration.max_threshold_ratio"} <= on  # fmt: skip
    cases = [
        ("data.sample_rate_hz=1e-50", "data.sample_rate_hz = 1e-50 becomes 0 as a float32"),
        ("threshold.k_std=1e-40", "threshold.k_std = 1e-40 becomes the subnormal"),
        (
            "calibration.max_scale_ratio=1.00000001",
            "calibration.max_scale_ratio = 1.00000001 is 1.0 as a float32",
        ),
    ]
    for setting, words in cases:
        with pytest.raises(UserError) as err:
            config.load(None, [setting])
        assert str(err.value).startswith(words) and "must be" in str(err.value), str(err.value)
    assert (
        config.load(None, ["data.sample_rate_hz=10000000.5"]).data.sample_rate_hz == 10000000.5
    )  # 1e7 on the device
    assert config.load(None, ["threshold.k_std=0"]).threshold.k_std == 0


def test_the_alarm_rule_is_bounded_by_what_the_handshake_carries():
    """decision.k and decision.n take their maximum from DECISION_MAX_N, the one source the manifest's check,
    model_config.h's TAE_DECISION_MAX_N and the handshake's byte follow (tests/test_decision_constants.py)."""
    top = config.DECISION_MAX_N
    assert top == 255 and {config.schema()[f"decision.{x}"].bounds.le for x in "kn"} == {top}
    cfg = config.load(None, [f"decision.k={top}", f"decision.n={top}"])
    assert (cfg.decision.k, cfg.decision.n) == (top, top)
    with pytest.raises(UserError, match=rf"^decision.n = {top + 1} must be between 1 and {top}"):
        config.load(None, [f"decision.n={top + 1}"])
