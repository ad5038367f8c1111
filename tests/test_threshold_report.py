"""Issue 15: the threshold is an operating point the user moves without retraining
(`tinyae threshold`), the report shows precision/recall/false alarms against the threshold
with the chosen point and explains itself (captions, counts, units, saturation, missing metrics),
and a validation set too small for the chosen percentile is warned about."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tinyae.cli import main as tinyae
from tinyae.train.metrics import summary


@pytest.fixture
def model_copy(default_model_dir, tmp_path):
    d = tmp_path / "model"
    shutil.copytree(default_model_dir, d)
    return d


def header_threshold(d) -> np.float32:
    line = next(
        ln
        for ln in (d / "model_config.h").read_text().splitlines()
        if ln.startswith("#define TAE_THRESHOLD ")
    )
    return np.float32(float(line.split()[-1].rstrip("f")))


def test_threshold_moves_without_retraining(model_copy):
    d = model_copy
    sha_before = hashlib.sha256((d / "model_int8.tflite").read_bytes()).hexdigest()
    old = json.loads((d / "manifest.json").read_text())
    assert (
        tinyae(["threshold", "--model-dir", str(d), "--method", "mean_std", "--k-std", "1", "--quiet"]) == 0
    )
    m = json.loads((d / "manifest.json").read_text())
    assert (
        hashlib.sha256((d / "model_int8.tflite").read_bytes()).hexdigest()
        == sha_before
        == m["model"]["sha256"]
    )
    assert m["threshold"]["method"] == "mean_std" and m["threshold"]["params"]["k_std"] == 1
    assert m["threshold"]["value"] != old["threshold"]["value"]
    assert header_threshold(d) == np.float32(m["threshold"]["value"])
    assert "Threshold: tinyae threshold" in (d / "model_config.h").read_text()[:700]
    with np.load(d / "scores.npz") as z:
        labels, scores, val = z["test_labels"], z["test_scores"], z["val_scores"]
    assert m["metrics"]["int8"] == summary(labels, scores, m["threshold"]["value"])
    assert m["metrics"]["val_false_alarm_rate_int8"] == pytest.approx(
        np.mean(val > np.float32(m["threshold"]["value"]))
    )
    with np.load(d / "test_vectors.npz") as v:
        assert np.array_equal(
            v["anomaly"], (v["scores"] > np.float32(m["threshold"]["value"])).astype(np.int8)
        )
        assert v["threshold"] == np.float32(m["threshold"]["value"])
    html = (d / "report.html").read_text()
    assert "mean_std" in html and "operating.png" in html
    assert json.loads((d / "metrics.json").read_text()) == m["metrics"]
    assert 'method = "mean_std"' in (d / "config.toml").read_text()


@pytest.mark.parametrize(
    ("args", "check"),
    [
        # the default normal set: the validation windows' scores
        (["--method", "target_fpr", "--target-fpr", "0.02"],
         lambda m, z: np.mean(z["val_scores"] > m["threshold"]["value"]) <= 0.02
         and m["threshold"]["params"]["scores"] == "validation"),
        (["--method", "target_fpr", "--target-fpr", "0.02", "--scores", "training+validation"],
         lambda m, z: np.mean(np.r_[z["train_scores"], z["val_scores"]] > m["threshold"]["value"]) <= 0.02),
        (["--method", "percentile", "--percentile", "90"],
         lambda m, z: m["threshold"]["params"]["percentile"] == 90),
        (["--method", "percentile", "--percentile", "100", "--scores", "validation"],
         lambda m, z: m["threshold"]["value"] == np.float32(z["val_scores"].max())),
        (["--method", "mad", "--k-mad", "5"],
         lambda m, z: m["threshold"]["params"]["k_mad"] == 5 and m["threshold"]["params"]["scores"] == "validation"),
        (["--method", "upper_mad", "--k-upper-mad", "3", "--scores", "training+validation"],
         lambda m, z: m["threshold"]["params"]["k_upper_mad"] == 3
         and m["threshold"]["params"]["scores"] == "training+validation"),
        (["--method", "pot", "--pot-risk", "0.01", "--factor", "1.1"],
         lambda m, z: m["threshold"]["params"]["excesses"] >= 10 and m["threshold"]["params"]["factor"] == 1.1),
        (["--method", "value", "--value", "0.25"],
         lambda m, z: m["threshold"]["value"] == np.float32(0.25)),
        # above float32's largest as a double, but the float32 it rounds to is that largest value
        (["--method", "value", "--value", "3.4028235e38"],
         lambda m, z: m["threshold"]["value"] == float(np.finfo(np.float32).max)),
        (["--method", "best_f1"],
         lambda m, z: m["metrics"]["int8"]["f1"] >= 0.9 and "oracle" in m["threshold"]["reason"]),
    ],
)  # fmt: skip
def test_threshold_methods(model_copy, args, check):
    assert tinyae(["threshold", "--model-dir", str(model_copy), *args, "--quiet"]) == 0
    m = json.loads((model_copy / "manifest.json").read_text())
    with np.load(model_copy / "scores.npz") as z:
        assert check(m, z)
    assert header_threshold(model_copy) == np.float32(m["threshold"]["value"])
    assert m["threshold"]["reason"].startswith("set by `tinyae threshold")


def test_the_default_threshold_says_which_method_ran_and_why(default_model_dir):
    from tinyae.train.calibrate import DEFAULT_REASON

    t = json.loads((default_model_dir / "manifest.json").read_text())["threshold"]
    assert (
        t["method"] == "upper_mad"
        and t["params"]["scores"] == "validation"
        and t["params"]["k_upper_mad"] == 4
    )
    assert t["reason"] == DEFAULT_REASON and "threshold study" in t["reason"]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--method", "percentile"], "--method percentile needs --percentile"),
        (["--method", "mean_std", "--k-std", "2", "--percentile", "99"], "--percentile does not apply"),
        (["--method", "magic"], "is not one of"),
        (["--method", "target_fpr", "--target-fpr", "5"], "above 0 and below 1"),
        (["--method", "mad"], "--method mad needs --k-mad"),
        (["--method", "upper_mad", "--k-mad", "4"], "--method upper_mad needs --k-upper-mad"),
        (["--method", "pot", "--pot-risk", "0.01", "--pot-quantile", "0.2"], "--pot-quantile"),
        (["--method", "target_fpr", "--target-fpr", "0.01", "--factor", "2"], "--factor does not apply"),
        # above 0 as a double, but a threshold of 0 (or a subnormal) as the float32 the device stores
        (["--method", "value", "--value", "1e-50"], "argument --value: 1e-50 becomes 0 as a float32"),
        (["--method", "value", "--value", "1e-45"], "argument --value: 1e-45 becomes the subnormal"),
        (["--method", "value", "--value", "3.5e38"], "argument --value: 3.5e38 does not fit a float32"),
    ],
)
def test_threshold_mistakes_are_one_sentence(model_copy, args, needle):
    proc = subprocess.run(
        [sys.executable, "-m", "tinyae", "threshold", "--model-dir", str(model_copy), *args],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.count("error:") == 1 and needle in proc.stderr


def test_with_a_k_of_n_rule_the_threshold_line_gives_the_alarms_too(model_copy, capsys):
    """Precision and recall are of the test windows, each on its own; a device that alarms on 2 of 3 windows
    raises other alarms, and the line says what they catch (the manifest's operating figures)."""
    d = model_copy
    m = json.loads((d / "manifest.json").read_text())
    m["decision"] = {**m["decision"], "k": 2, "n": 3}
    (d / "manifest.json").write_text(json.dumps(m))
    assert tinyae(["threshold", "--model-dir", str(d), "--method", "upper_mad", "--k-upper-mad", "4"]) == 0
    line = " ".join(capsys.readouterr().err.split())
    test = json.loads((d / "manifest.json").read_text())["metrics"]["operation"]["test"]
    assert "test windows precision " in line
    assert (
        f"alarms (2 of 3 windows): {test['caught_rate']:.3f} of the anomalous test windows caught, "
        f"{test['false_alarm_windows']} of {test['normal_windows']} normal ones alarmed" in line
    ), line


def test_threshold_needs_the_stored_scores(model_copy):
    (model_copy / "scores.npz").unlink()
    from tinyae.errors import UserError
    from tinyae.train.recalibrate import recalibrate

    with pytest.raises(UserError, match=r"scores\.npz is missing"):
        recalibrate(model_copy, "mean_std", k_std=1.0)


def test_a_model_without_training_scores_recalibrates_on_validation_only(model_copy):
    """A scores.npz written before the training windows' scores were kept: the pooled scores are refused
    in one sentence, --scores validation (the default) works."""
    with np.load(model_copy / "scores.npz") as z:
        old = {k: z[k] for k in z.files if not k.startswith("train_")}
    np.savez_compressed(model_copy / "scores.npz", **old)
    from tinyae.errors import UserError
    from tinyae.train.recalibrate import recalibrate

    with pytest.raises(UserError, match="pass --scores validation"):
        recalibrate(model_copy, "mad", k_mad=7.0, scores="training+validation")
    assert recalibrate(model_copy, "mad", k_mad=7.0, quiet=True).threshold.method == "mad"


def test_small_validation_set_is_warned():
    from tinyae.train.calibrate import calibrate, small_set_warning
    from tinyae.train.config import ThresholdConfig

    rng = np.random.default_rng(0)
    t = calibrate(ThresholdConfig(method="percentile", percentile=99.5), rng.random(36))
    assert t.warnings and "only 36 normal validation windows" in t.warnings[0]
    assert not calibrate(ThresholdConfig(method="percentile", percentile=95), rng.random(2000)).warnings
    assert "rough" in small_set_warning("mean_std", 12)
    assert small_set_warning("target_fpr", 100, fpr=0.001)


def test_report_explains_itself(default_model_dir, default_manifest):
    html = (default_model_dir / "report.html").read_text()
    assert html.count("<figcaption>") >= 7
    assert "operating.png" in html and "levels.png" in html and "normalized units" in html
    assert "sample rate: 100 Hz from the synthetic generator" in html
    figs = json.loads((default_model_dir / "report_figures.json").read_text())
    assert [f for f, _ in figs][:3] == [
        "scores.png",
        "operating.png",
        "timeline.png",
    ]  # what a deployer looks at first


def test_operating_curve_and_picks():
    from tinyae.train.report import operating_curve, pick_windows

    labels = np.array([0, 0, 0, 1, 1], np.int8)
    scores = np.array([0.1, 0.2, 0.6, 0.5, 0.9], np.float32)
    c = operating_curve(labels, scores, np.array([0.1, 0.15, 0.3], np.float32), [0.4])
    assert c["precision"][0] == pytest.approx(2 / 3) and c["recall"][0] == 1.0
    assert c["false_alarm"][0] == pytest.approx(1 / 3) and c["val_false_alarm"][0] == 0.0
    # the "typical normal" window is a normal one even when an anomalous window scores lower
    picks = pick_windows(np.array([0.05, 0.2, 0.3], np.float32), np.array([1, 0, 0], np.int8))
    assert picks[0] == ("most typical normal test window", 1)
    assert pick_windows(np.array([0.3, 0.2], np.float32), np.array([1, 1], np.int8))[0][0].startswith(
        "lowest"
    )


def test_missing_metrics_and_saturation_are_explained():
    from tinyae.train.report import saturation_text
    from tinyae.train.summary import missing_metrics_reason

    assert "all 4 test windows are anomalous" in missing_metrics_reason(np.ones(4, np.int8), 4)
    assert "all 4 test windows are normal" in missing_metrics_reason(np.zeros(4, np.int8), 4)
    assert "no labels" in missing_metrics_reason(None, 4)
    assert missing_metrics_reason(np.array([0, 1], np.int8), 2) == ""
    m = {
        "output": {"scale": 0.05},
        "metrics": {
            "int8_saturation": {
                "input_range": [-5.0, 6.0], "output_range": [-4.0, 4.0], "score_ceiling": 100.0,
                "test_windows": 10, "test_windows_input_clipped": 3, "test_windows_output_clipped": 1,
                "max_test_score": 80.0,
            }
        },
    }  # fmt: skip
    text = saturation_text(m)
    assert "3 of 10 test windows have int8 inputs at -128 or 127" in text and "output scale 0.05" in text
    m["metrics"]["int8_saturation"]["test_windows_input_clipped"] = 0
    m["metrics"]["int8_saturation"]["test_windows_output_clipped"] = 0
    assert saturation_text(m) == ""
