"""Issue 28: the label-free threshold methods (train/calibrate.py) and the threshold study's machinery
(tools/bench/threshold.py: the oracle, the choice of the default, leave one data set out), the SKAB
selection without peeking (tools/bench/skab_select.py) and the bench's score cache, on data made here."""

from __future__ import annotations

import argparse
import itertools
import re

import numpy as np
import pytest

from tinyae.args import positive_float32
from tinyae.errors import UserError
from tinyae.tools.bench import cache, skab, skab_select
from tinyae.tools.bench import threshold as study
from tinyae.tools.bench.skab_alarms import alarm_statistic
from tinyae.tools.bench.skab_scores import FileScores
from tinyae.train import recalibrate
from tinyae.train.calibrate import DEFAULT_REASON, MAD_TO_STD, best_f1, calibrate
from tinyae.train.config import ThresholdConfig, from_dict
from tinyae.train.metrics import at_threshold, f1_curve


def test_mad_is_a_robust_upper_limit() -> None:
    s = np.r_[np.linspace(1.0, 2.0, 99), 1e6]  # one wild normal score
    t = calibrate(ThresholdConfig(method="mad", k_mad=3.0), s)
    med = np.median(s)
    assert t.value == pytest.approx(med + 3 * MAD_TO_STD * np.median(np.abs(s - med)), rel=1e-6)
    assert t.value < 3.0  # the outlier moves it by one rank, not by a million
    assert calibrate(ThresholdConfig(method="mean_std", k_std=3.0), s).value > 1e5


def test_upper_mad_measures_the_spread_on_the_side_the_threshold_clears() -> None:
    # right-skewed scores, as reconstruction errors are: the symmetric MAD, half of it taken from the
    # compressed lower side, understates the upper tail; the upper MAD does not
    s = np.random.default_rng(5).lognormal(0.0, 0.8, 4000)
    med = np.median(s)
    t = calibrate(ThresholdConfig(method="upper_mad", k_upper_mad=4.0), s)
    assert t.value == pytest.approx(med + 4 * MAD_TO_STD * np.median(s[s > med] - med), rel=1e-6)
    assert t.params["k_upper_mad"] == 4.0 and t.params["upper_mad"] > np.median(np.abs(s - med))
    above = lambda thr: float(np.mean(s > thr))  # noqa: E731
    assert above(t.value) < above(calibrate(ThresholdConfig(method="mad", k_mad=4.0), s).value)
    assert t.params["scores"] == "validation"  # the default score set


@pytest.mark.parametrize("method", ["mad", "upper_mad"])
def test_a_median_absolute_deviation_of_zero_is_refused_not_a_threshold_at_the_median(method: str) -> None:
    s = np.r_[np.full(60, 0.25), np.linspace(0.3, 0.9, 39)]  # 60 of 99 windows score the median exactly
    if method == "upper_mad":
        s = np.r_[np.full(60, 0.25), np.linspace(0.0, 0.2, 39)]  # and none of them above it
    with pytest.raises(UserError, match=rf"threshold.method = {method}: 60 of the 99 normal windows score "
                       r"exactly the median 0.25, so the (upper )?median absolute deviation is 0"):  # fmt: skip
        calibrate(ThresholdConfig(method=method), s)


def test_pot_extrapolates_the_tail_of_exponential_scores() -> None:
    s = np.random.default_rng(0).exponential(1.0, 20000)
    t = calibrate(ThresholdConfig(method="pot", pot_risk=1e-4, pot_quantile=0.9), s)
    assert t.value == pytest.approx(-np.log(1e-4), rel=0.1)  # the exact 1 - 1e-4 quantile: 9.21
    assert t.params["excesses"] == 2000 and abs(t.params["shape"]) < 0.1


def test_pot_refuses_a_tail_of_a_few_windows() -> None:
    with pytest.raises(UserError, match=r"only \d+ of 40 normal windows score above their 0.9 quantile"):
        calibrate(ThresholdConfig(method="pot"), np.linspace(0, 1, 40))


def test_training_and_validation_scores_pool_and_need_the_training_scores() -> None:
    val, train = np.linspace(0, 1, 11), np.linspace(5, 6, 11)
    cfg = ThresholdConfig(method="percentile", percentile=100.0, scores="training+validation")
    assert calibrate(cfg, val, train_scores=train).value == 6.0
    only_val = ThresholdConfig(method="percentile", percentile=100.0, scores="validation")
    assert calibrate(only_val, val, train_scores=train).value == 1.0
    alone = calibrate(cfg, val)  # no training windows given: the validation windows, and it says so
    assert alone.value == 1.0 and alone.params["scores"] == "validation"


def test_the_default_says_why_it_runs_and_a_config_choice_says_so() -> None:
    assert calibrate(
        ThresholdConfig(), np.linspace(0, 1, 300), train_scores=np.linspace(0, 1, 300)
    ).reason == (DEFAULT_REASON)
    assert "set in the experiment config" in calibrate(ThresholdConfig(method="mean_std"), np.ones(40)).reason


@pytest.mark.parametrize(
    "values, words",
    [
        ({"pot_risk": 1.5}, "threshold.pot_risk = 1.5 must be above 0 and below 1"),
        ({"pot_quantile": 0.2}, "threshold.pot_quantile = 0.2 must be at least 0.5 and below 1"),
        ({"k_mad": -1}, "threshold.k_mad = -1.0 must be between 0 and 100"),
        ({"k_upper_mad": 101}, "threshold.k_upper_mad = 101.0 must be between 0 and 100"),
        ({"scores": "test"}, "threshold.scores = 'test' is not one of validation, training+validation"),
    ],
)
def test_threshold_settings_out_of_range_are_refused(values: dict, words: str) -> None:
    with pytest.raises(UserError, match=re.escape(words)):
        from_dict({"threshold": values})


def test_f1_curve_and_best_f1_match_counting_every_threshold() -> None:
    rng = np.random.default_rng(1)
    for _ in range(100):
        n = int(rng.integers(1, 30))
        s, y = rng.integers(0, 6, n).astype(np.float32), rng.random(n) < 0.4
        thr, f1 = f1_curve(y, s)
        assert all(at_threshold(y, s > t)["f1"] == pytest.approx(f) for t, f in zip(thr, f1, strict=True))
        brute = max(at_threshold(y, s > t)["f1"] for t in np.r_[s, s.min() - 1])
        assert best_f1(y, s)[1] == pytest.approx(brute)


def _set(rng: np.random.Generator, files: int) -> study.StudySet:
    fs = []
    for i in range(files):
        n = int(rng.integers(4, 9))
        y = rng.random(n) < 0.5
        stat = np.where(y, rng.normal(2, 1, n), rng.normal(0, 1, n)).round(1).astype(np.float32)
        fs.append(study.StudyFile(f"f{i}", rng.normal(0, 1, 50), rng.normal(0, 1, 50), stat, y))
    return study.StudySet("toy", "", "", "row", fs)


def test_the_oracle_is_the_best_pooled_f1_over_per_file_thresholds() -> None:
    rng = np.random.default_rng(2)
    for _ in range(20):
        s = _set(rng, 3)
        options = [np.r_[np.unique(f.stat), -np.inf] for f in s.files]
        brute = 0.0
        for combo in itertools.product(*options):
            c = sum(
                study._counts(f.stat > np.float32(t), f.labels) for f, t in zip(s.files, combo, strict=True)
            )
            brute = max(brute, study.figures(*c)["f1"])
        assert study.oracle(s)["f1"] == pytest.approx(brute)


def test_the_default_is_the_best_worst_case_and_leave_one_out_never_sees_the_set() -> None:
    table = {
        "a": {"x": {"ratio": 0.99}, "y": {"ratio": 0.50}, "z": {"ratio": 0.95}},
        "b": {"x": {"ratio": 0.90}, "y": {"ratio": 0.91}, "z": {"ratio": 0.92}},
        "c": {"x": {"ratio": 0.95}, "y": {"ratio": 0.40}, "z": {"ratio": 0.97}},
    }
    assert study.choose(table, ["x", "y", "z"]) == "b"
    assert study.choose(table, ["x", "z"]) == "a"  # without y, a's weak spot is invisible


def test_the_study_scores_every_candidate_against_its_oracle() -> None:
    rng = np.random.default_rng(3)
    sets = [_set(rng, 2), _set(rng, 1)]
    sets[1].name = "other"
    sec = study.study(sets)
    assert len(sec["candidates"]) == len(study.candidates())
    for name in ("toy", "other"):
        o = sec["oracle"][name]["f1"]
        for c in sec["candidates"].values():
            r = c["per_dataset"][name]
            assert "f1" not in r or r["f1"] <= o + 1e-9
    assert set(sec["leave_one_out"]) == {"toy", "other"}
    assert "## Threshold" in "\n".join(study.render(sec))


def test_a_k_of_n_alarm_is_a_threshold_on_the_alarm_statistic() -> None:
    rng = np.random.default_rng(4)
    for _ in range(200):
        length, n = int(rng.integers(1, 6)), int(rng.integers(1, 6))
        rows, k = int(rng.integers(length, 40)), int(rng.integers(1, n + 1))
        s = rng.integers(0, 5, rows - length + 1).astype(np.float32)
        thr = float(rng.integers(0, 5)) - 0.5
        stat = alarm_statistic(s, k, n, rows, length)
        assert np.array_equal(skab.row_alarms(s, thr, k, n, rows, length), stat > np.float32(thr))


def test_convae_rows_are_those_its_notebook_can_flag() -> None:
    m = skab_select.convae_flaggable(1000)
    assert not m[:59].any() and m[59] and m[881] and not m[882:].any()  # 59 first, 118 last rows never
    # the notebook: data_idx in range(N - 1, len(X) - N + 1) with len(X) = rows - N + 1
    x = 1000 - 60 + 1
    assert np.flatnonzero(m).tolist() == list(range(59, x - 60 + 1))


def _grid(rng: np.random.Generator) -> dict:
    out = {}
    for ch, w in skab_select.MODELS:
        kinds: dict[str, list[FileScores]] = {}
        for h in skab_select.HEADROOMS:
            files = []
            for g, i in (("valve1", 0), ("valve1", 1), ("valve2", 0), ("other", 0)):
                rows = 700
                lab = np.zeros(rows, np.int8)
                lab[500:620] = 1
                sc = rng.normal(1, 0.1, rows - w + 1).astype(np.float32)
                sc[500 - w + 1 : 620] += 0.05 * h  # a larger headroom separates better here
                files.append(FileScores(f"{g}/{i}", g, lab, sc, w))
            kinds[f"int8_h{h:g}"] = files
        out[(ch, w)] = kinds
    return out


def test_leave_one_group_out_scores_each_group_with_a_choice_made_without_it() -> None:
    table = skab_select.Table(_grid(np.random.default_rng(5)))
    for mapping in skab_select.MAPPINGS:
        r = skab_select.logo(table, mapping)
        assert [f["held_out"] for f in r["folds"]] == ["valve1", "valve2", "other"]
        for f in r["folds"]:
            assert f["held_out"] not in f["chosen_on"]
        total = sum(f["held_out_figures"]["tp"] + f["held_out_figures"]["fp"] for f in r["folds"])
        assert total == r["int8"]["tp"] + r["int8"]["fp"]
        assert "headroom 1," not in r["chosen_on_all"]["choice"]
    tiny, conv = (skab_select.logo(table, m)["chosen_on_all"]["in_sample"] for m in skab_select.MAPPINGS)
    assert conv["fp"] + conv["tp"] <= tiny["fp"] + tiny["tp"]  # forcing rows to normal never adds alarms


def test_the_cache_serves_an_entry_until_what_it_depends_on_changes(tmp_path, monkeypatch) -> None:
    calls = []

    def compute() -> dict:
        calls.append(1)
        return {"a": np.arange(3)}

    a, hit = cache.cached(tmp_path, "t", {"x": 1}, compute)
    b, hit2 = cache.cached(tmp_path, "t", {"x": 1}, compute)
    assert not hit and hit2 and np.array_equal(a["a"], b["a"]) and len(calls) == 1
    cache.cached(tmp_path, "t", {"x": 2}, compute)
    assert len(calls) == 2
    monkeypatch.setattr(cache, "_fingerprint", lambda: "other code")
    cache.cached(tmp_path, "t", {"x": 1}, compute)
    assert len(calls) == 3
    cache.cached(tmp_path, "t", {"x": 1}, compute, use=False)
    assert len(calls) == 4


def test_one_data_set_leaves_nothing_out() -> None:
    sec = study.study([_set(np.random.default_rng(6), 1)])
    assert sec["leave_one_out"] == {} and "data set left out" not in "\n".join(study.render(sec))


# ----------------------------------------------------------- a threshold is checked as the float32 it becomes
@pytest.mark.parametrize(
    ("text", "words"),
    [("1e-50", "1e-50 becomes 0 as a float32"), ("1e-45", "1e-45 becomes the subnormal 1.401e-45 as a float32"),
     ("0", "0 must be above 0"), ("-1", "-1 must be above 0"), ("3.5e38", "3.5e38 does not fit a float32"),
     ("nan", "'nan' is not a finite number")],
)  # fmt: skip
def test_a_threshold_option_that_is_not_a_positive_normal_float32_is_refused(text: str, words: str) -> None:
    """`tinyae threshold --value`, `device monitor --threshold`: the float32 the device stores is what is
    checked (1e-50 is above 0 as a double, and a threshold of 0 as a float32)."""
    with pytest.raises(argparse.ArgumentTypeError, match="^" + re.escape(words)):
        positive_float32(text)


def test_a_threshold_option_that_rounds_to_a_normal_float32_is_that_float32() -> None:
    f32_max = float(np.finfo(np.float32).max)
    assert positive_float32("3.4028235e38") == f32_max  # above float32's max as a double, but rounds to it
    assert positive_float32("1.2e-38") == float(np.float32(1.2e-38))
    assert positive_float32("0.1") == float(np.float32(0.1))


@pytest.mark.parametrize("value", [1e-50, 1e-45, 3.5e38])
def test_the_threshold_value_of_the_python_api_is_checked_as_a_float32(value: float) -> None:
    with pytest.raises(UserError, match=r"^--value .* (as a|fit a) float32"):
        recalibrate._config("value", {"value": value})
    recalibrate._config("value", {"value": 3.4028235e38})


def test_a_computed_threshold_that_is_not_a_normal_float32_is_refused() -> None:
    """The methods compute in float64: a factor can take the threshold below float32's normal range."""
    scores = np.full(50, 1e-30, np.float32)
    with pytest.raises(
        UserError, match=r"threshold comes to 1e-40, which becomes the subnormal .* as a float32"
    ):
        calibrate(ThresholdConfig(method="mean_std", k_std=0.0, factor=1e-10), scores)
    assert calibrate(ThresholdConfig(method="mean_std", k_std=0.0), scores).value == float(np.float32(1e-30))
    with pytest.raises(
        UserError, match=r"threshold comes to 0, which must be above 0 .*no threshold above 0"
    ):
        calibrate(ThresholdConfig(method="percentile", percentile=99.0), np.zeros(200, np.float32))
