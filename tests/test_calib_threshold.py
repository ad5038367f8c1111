"""Every constant derived from the threshold moves with it: after `tinyae threshold` the manifest's
calibration section (factory threshold, threshold bounds, the on-site method when it follows the
model's, the minimum windows, the CRC a record carries) and model_config.h's TAE_CALIB_* constants are
what the new threshold gives, derived in one place (CalibSpec.rederive); a manifest whose calibration
still holds an older threshold is refused in one sentence, and a device whose factory threshold is not
the artifacts' is refused before it calibrates."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from tinyae.cli import main as tinyae
from tinyae.train.calibration.native import NativeCalib
from tinyae.train.calibration.spec import check_crc, manifest_quant
from tinyae.train.manifest import Manifest


@pytest.fixture
def model_copy(default_model_dir, tmp_path) -> Path:
    d = tmp_path / "model"
    shutil.copytree(default_model_dir, d)
    return d


def header(d: Path) -> dict[str, str]:
    out = {}
    for ln in (d / "model_config.h").read_text().splitlines():
        m = re.match(r"#define (TAE_THRESHOLD|TAE_CALIB_\w+) (.*)", ln)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def f32(text: str) -> np.float32:
    return np.float32(float(text.strip("()f")))


def normal_csv(d: Path, path: Path, n: int) -> Path:
    from tinyae.train.data.synthetic import generate

    names = json.loads((d / "manifest.json").read_text())["window"]["channel_names"]
    x = generate(0, n)[0]
    np.savetxt(path, x, delimiter=",", header=",".join(names), comments="", fmt="%.9g")
    return path


def test_an_upper_limit_beyond_float32_is_float32s_largest(model_copy):
    """A threshold near float32's largest value (`--value 3.4028235e38` rounds to it) times
    calibration.max_threshold_ratio is beyond float32: the on-site upper limit is float32's largest value,
    not inf (which stopped the header's rendering with a traceback)."""
    d = model_copy
    top = float(np.finfo(np.float32).max)
    assert (
        tinyae(
            ["threshold", "--model-dir", str(d), "--method", "value", "--value", "3.4028235e38", "--quiet"]
        )
        == 0
    )
    m = json.loads((d / "manifest.json").read_text())
    spec = Manifest.from_dict(m).calib_spec()
    assert m["threshold"]["value"] == spec.factory_threshold == spec.threshold_max == top
    assert spec.threshold_min == np.float32(top / spec.max_threshold_ratio)
    check_crc(spec, m)
    h = header(d)
    assert f32(h["TAE_THRESHOLD"]) == f32(h["TAE_CALIB_THRESHOLD_MAX"]) == np.float32(top)


def test_the_calibration_constants_follow_a_new_threshold(model_copy, tmp_path):
    d = model_copy
    before = Manifest.load(d / "manifest.json").calib_spec()
    record = tmp_path / "before.bin"
    csv = normal_csv(d, tmp_path / "n.csv", before.total_samples(before.windows))
    assert tinyae(["calibrate", "--model-dir", str(d), "--csv", str(csv), "--out", str(record)]) == 0
    assert (
        tinyae(
            ["threshold", "--model-dir", str(d), "--method", "percentile", "--percentile", "90", "--quiet"]
        )
        == 0
    )
    m = json.loads((d / "manifest.json").read_text())
    spec = Manifest.from_dict(m).calib_spec()
    t = np.float32(m["threshold"]["value"])
    assert t != np.float32(before.factory_threshold)
    assert np.float32(spec.factory_threshold) == t
    assert spec.threshold_min == np.float32(t / spec.max_threshold_ratio)
    assert spec.threshold_max == np.float32(t * spec.max_threshold_ratio)
    # calibration.threshold = "model": the site threshold is now the 90th percentile, needing 4 windows
    assert (spec.method, spec.percentile, spec.min_windows) == ("percentile", 90.0, 4)
    assert spec.config_crc != before.config_crc
    check_crc(spec, m)  # every derived constant is what its settings give
    assert spec.rederive({}, manifest_quant(m)) == spec
    h = header(d)
    assert f32(h["TAE_THRESHOLD"]) == t
    assert f32(h["TAE_CALIB_THRESHOLD_MIN"]) == np.float32(spec.threshold_min)
    assert f32(h["TAE_CALIB_THRESHOLD_MAX"]) == np.float32(spec.threshold_max)
    assert h["TAE_CALIB_CONFIG_CRC"] == f"0x{spec.config_crc:08x}u" and h["TAE_CALIB_MIN_WINDOWS"] == "4"
    assert (h["TAE_CALIB_RANK_NUM"], h["TAE_CALIB_RANK_DEN"]) == ("9u", "10u")
    # a record made under the old threshold means something else now: the firmware's own check refuses it
    assert NativeCalib(d, spec.channels).verdict(record.read_bytes()) == 4  # other_config
    # the report's "before (factory)" is the new factory threshold
    out = tmp_path / "after.json"
    assert tinyae(["calibrate", "--model-dir", str(d), "--csv", str(csv), "--json", str(out)]) == 0
    assert np.float32(json.loads(out.read_text())["false_alarms"]["before_threshold"]) == t


@pytest.mark.parametrize(
    "method", [["upper_mad", "--k-upper-mad", "3"], ["mad", "--k-mad", "5"], ["pot", "--pot-risk", "0.01"]]
)
def test_mad_and_pot_are_re_derived_on_the_scores_the_threshold_came_from(model_copy, method):
    """The default method (upper_mad), mad and pot have no on-device form: after `tinyae threshold` the site's mean +
    k std has the k that gives the new threshold on the normal scores it was set from, and its minimum
    windows are measured on those scores (minimum.scores_rule)."""
    from tinyae.train.calibrate import normal_scores
    from tinyae.train.calibration import minimum
    from tinyae.train.config import ThresholdConfig

    d = model_copy
    before = Manifest.load(d / "manifest.json").calib_spec()
    assert before.method == "mean_std" and "threshold.method = upper_mad" in before.method_source
    assert tinyae(["threshold", "--model-dir", str(d), "--method", *method, "--quiet"]) == 0
    m = json.loads((d / "manifest.json").read_text())
    spec = Manifest.from_dict(m).calib_spec()
    t = m["threshold"]["value"]
    with np.load(d / "scores.npz") as z:
        s = normal_scores(ThresholdConfig(), z["val_scores"], z["train_scores"])
    k = round(float((t - s.mean()) / s.std()), 4)
    assert spec.method == "mean_std" and spec.k_std == np.float32(k) and k != before.k_std
    assert f"threshold.method = {method[0]} has no on-device form" in spec.method_source
    rule = minimum.scores_rule(s, k, t, method[0])
    assert (spec.scores_windows, spec.scores_why) == (rule.windows, rule.why)
    assert spec.min_windows == max(rule.windows, spec.stats_windows)
    check_crc(spec, m)
    h = header(d)
    assert f32(h["TAE_CALIB_K_STD"]) == np.float32(k) and h["TAE_CALIB_MIN_WINDOWS"] == str(spec.min_windows)


def test_a_value_set_by_hand_moves_the_bounds_and_the_on_site_k_with_it(model_copy):
    """A hand-set threshold maps onto mean + k std with the k that gives it on the normal scores, as mad and
    pot do. Keeping the old method's k (as before) put a site's threshold back near the old value: the
    default model's 0.0655 set by hand to 0.05 calibrated to 0.0577 on normal data."""
    from tinyae.train.calibrate import normal_scores
    from tinyae.train.calibration import minimum
    from tinyae.train.config import ThresholdConfig

    d = model_copy
    before = Manifest.load(d / "manifest.json").calib_spec()
    assert (
        tinyae(["threshold", "--model-dir", str(d), "--method", "value", "--value", "0.05", "--quiet"]) == 0
    )
    m = json.loads((d / "manifest.json").read_text())
    spec = Manifest.from_dict(m).calib_spec()
    assert spec.factory_threshold == np.float32(0.05) and spec.threshold_max == np.float32(0.05 * 4)
    with np.load(d / "scores.npz") as z:
        s = normal_scores(ThresholdConfig(), z["val_scores"], z["train_scores"])
    k = round(float((0.05 - s.mean()) / s.std()), 4)
    assert spec.method == "mean_std" and spec.k_std == np.float32(k) and k != before.k_std
    assert "a threshold set by hand (tinyae threshold --method value)" in spec.method_source
    rule = minimum.scores_rule(s, k, 0.05, "a hand-set threshold")
    assert (spec.scores_windows, spec.scores_why) == (rule.windows, rule.why)
    assert spec.min_windows == max(rule.windows, spec.stats_windows)
    check_crc(spec, m)
    assert f32(header(d)["TAE_CALIB_K_STD"]) == np.float32(k)


def test_an_explicit_on_site_method_does_not_follow(model_copy):
    from tinyae.train.recalibrate import recalibrate

    d = model_copy
    man = Manifest.load(d / "manifest.json")
    fixed = man.calib_spec().rederive(
        {
            "setting": "percentile",
            "method": "percentile",
            "percentile": 99.0,
            "method_source": "calibration.threshold = percentile",
        },
        manifest_quant(man.to_dict()),
    )
    man.calibration = fixed.to_manifest()
    man.write(d / "manifest.json")
    recalibrate(d, "mean_std", k_std=1.0, quiet=True)
    spec = Manifest.load(d / "manifest.json").calib_spec()
    assert (spec.method, spec.percentile) == ("percentile", 99.0)
    assert spec.factory_threshold == np.float32(Manifest.load(d / "manifest.json").threshold.value)


def test_a_threshold_that_needs_more_windows_raises_the_capacity_and_says_so(model_copy, capsys):
    d = model_copy
    assert tinyae(["threshold", "--model-dir", str(d), "--method", "percentile", "--percentile", "99.9"]) == 0
    err = " ".join(capsys.readouterr().err.split())  # the console wraps long lines
    assert "note: calibration.windows 128 -> 499: the on-site threshold follows the new method" in err
    spec = Manifest.load(d / "manifest.json").calib_spec()
    assert spec.windows == spec.min_windows == 499 and header(d)["TAE_CALIB_WINDOWS"] == "499"
    assert "windows = 499" in (d / "config.toml").read_text()


def test_a_manifest_with_a_stale_factory_threshold_is_refused_and_threshold_repairs_it(
    model_copy, tmp_path, capsys
):
    """What an older `tinyae threshold` left: the threshold moved, the calibration section did not."""
    d = model_copy
    m = json.loads((d / "manifest.json").read_text())
    m["threshold"]["value"] = 0.0625
    (d / "manifest.json").write_text(json.dumps(m))
    csv = normal_csv(d, tmp_path / "n.csv", 9000)
    capsys.readouterr()
    assert tinyae(["calibrate", "--model-dir", str(d), "--csv", str(csv)]) == 2
    err = capsys.readouterr().err
    assert "the manifest's threshold is 0.0625 but its calibration constants were derived from" in err
    assert (
        tinyae(
            ["threshold", "--model-dir", str(d), "--method", "percentile", "--percentile", "99.5", "--quiet"]
        )
        == 0
    )
    assert (
        tinyae(["calibrate", "--model-dir", str(d), "--csv", str(csv), "--out", str(tmp_path / "r.bin")]) == 0
    )


def test_a_device_with_another_factory_threshold_is_refused_before_it_calibrates(
    default_model_dir, model_copy, tmp_path, capsys
):
    """`tinyae threshold` after flashing: the device (here the simulated one, built from the original
    artifacts) decides with the old threshold and derives its bounds from it; calibrating it against
    the new artifacts would disagree with the host mirror, so it is one sentence instead."""
    from tinyae.tools.simdevice.port import _sim_for

    dev = _sim_for(default_model_dir)
    dev.store = None
    d = model_copy
    assert (
        tinyae(
            ["threshold", "--model-dir", str(d), "--method", "percentile", "--percentile", "95", "--quiet"]
        )
        == 0
    )
    csv = normal_csv(d, tmp_path / "n.csv", 9000)
    capsys.readouterr()
    code = tinyae(["device", "calibrate", "--port", f"sim://?model={default_model_dir}", "--model-dir", str(d),
                   "--csv", str(csv), "--quiet"])  # fmt: skip
    err = capsys.readouterr().err
    flashed = Manifest.load(default_model_dir / "manifest.json").threshold.value
    assert (
        code == 2
        and f"factory threshold is {flashed:.6g} but" in err
        and "`tinyae threshold` was run after flashing" in err
    )
    assert dev.store is None
