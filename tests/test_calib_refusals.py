"""What on-site calibration refuses, on the core's C (tae_calib.c through ctypes) with the protocol test
configuration: too few windows (the minimum's rules, checked against simulation), an anomalous stretch
among the scored windows (k of n above the factory threshold), and a per-channel refusal on every
channel and for every reason, with every channel's statistics in the record so the host can recompute
and name them. The same refusals through the commands and on the boards: tests/test_calib_cli.py and
tests/test_calib_emulator.py."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.test_calib_core import CFG, QUANT, build, pv_samples, spec_with, two_phases
from tinyae.errors import UserError
from tinyae.tools.simdevice import vectors as pv
from tinyae.train.calibration import minimum
from tinyae.train.calibration.native import EV_NONE
from tinyae.train.calibration.record import OUTCOMES, VERDICTS, Record
from tinyae.train.config import CalibrationConfig, ThresholdConfig

C = CFG["channels"]


# ---------------------------------------------------------------- the minimum number of windows
@pytest.mark.parametrize("pct", [50.0, 90.0, 95.0, 99.0, 99.5, 99.9])
def test_percentile_minimum_is_the_first_n_within_twice_the_aim(pct):
    rule = minimum.threshold_rule("percentile", pct, 3.0, 1000)
    aim = 1 - pct / 100

    def exceed(n: int) -> float:
        return (n + 1 - min(max(math.ceil(round(pct * n, 9) / 100), 1), n)) / (n + 1)

    least = rule.windows
    assert all(exceed(n) <= 2 * aim + 1e-12 for n in range(least, least + 2000))
    if least > 1:
        assert exceed(least - 1) > 2 * aim
    assert f"N >= {least}" in rule.why


def test_percentile_minimum_matches_the_simulated_false_alarm_rate():
    """The rule's expectation, (N + 1 - rank) / (N + 1), is what calibrations on random normal data leave
    above their threshold (any continuous distribution: a skewed one here). A calibration's share is the
    exact chance that a fresh score lies above its threshold, Gamma(2, 1)'s tail (1 + t) e^-t, rather than
    a count over sampled fresh scores: the same expectation without their sampling noise."""
    rng = np.random.default_rng(0)
    for pct, n in [(99.5, 99), (99.5, 98), (90.0, 4), (90.0, 12)]:
        rank = max(1, math.ceil(round(pct * n, 9) / 100))
        cal = rng.gamma(2.0, 1.0, (20000, n))
        thr = np.partition(cal, rank - 1, axis=1)[:, rank - 1]  # the rank-th smallest of each calibration
        share = float(np.mean((1.0 + thr) * np.exp(-thr)))
        assert share == pytest.approx((n + 1 - rank) / (n + 1), rel=0.05)
    assert minimum.threshold_rule("percentile", 99.5, 3.0, 1000).windows == 99  # 1/100 <= 2 x 0.5 %


@pytest.mark.parametrize("k", [1.0, 2.0, 3.0])
def test_mean_std_minimum_matches_simulated_normal_scores(k):
    from scipy import special

    rule = minimum.threshold_rule("mean_std", 0.0, k, 1000)
    rng = np.random.default_rng(int(k))
    aim = 0.5 * math.erfc(k / math.sqrt(2))
    for n in (rule.windows - 1, rule.windows):
        s = rng.normal(0, 1, (40000, n))
        thr = s.mean(axis=1) + k * s.std(axis=1)  # population std, as the device computes it
        share = float(np.mean(special.ndtr(-thr)))  # the exact chance a fresh normal score lies above
        assert share == pytest.approx(minimum.mean_std_exceedance(n, k), rel=0.08)
    assert (
        minimum.mean_std_exceedance(rule.windows, k)
        <= 2 * aim
        < minimum.mean_std_exceedance(rule.windows - 1, k)
    )


@pytest.mark.parametrize("k", [1.5, 2.0, 2.5, 3.0])
def test_the_measured_rule_is_the_normal_formula_on_normal_scores(k):
    """mad and pot's rule, measured on the factory's scores, is the exact mean + k std rule when those
    scores are normal (within the measuring grid's 10 % and the draws' noise)."""
    s = np.random.default_rng(1).standard_normal(200_000)
    measured = minimum.scores_rule(s, k, float(s.mean() + k * s.std()), "mad")
    exact = minimum.threshold_rule("mean_std", 0.0, k, 1000)
    assert measured.windows == pytest.approx(exact.windows, rel=0.15)
    assert f"N >= {measured.windows}" in measured.why and "mad on site is mean + " in measured.why


@pytest.mark.parametrize("k_mad", [3.0, 5.0])
def test_the_measured_rule_holds_on_fresh_skewed_scores_where_the_normal_formula_overshoots(k_mad):
    """Scores are skewed (squared errors): on gamma scores with a mad threshold, calibrations of the
    measured minimum leave about twice the factory threshold's share of fresh normal scores above them
    (half as many leave more), while the normal formula at that k asks for several times the windows."""
    from scipy.stats import gamma

    rng = np.random.default_rng(5)
    s = rng.gamma(2.0, 1.0, 50_000)
    med = np.median(s)
    t = med + k_mad * 1.4826 * np.median(np.abs(s - med))
    k = float((t - s.mean()) / s.std())
    rule = minimum.scores_rule(s, k, float(t), "mad")
    aim = gamma.sf(t, 2.0)

    def share(n: int) -> float:  # the true share above mean + k std of n fresh scores, in expectation
        c = rng.gamma(2.0, 1.0, (40_000, n))
        return float(gamma.sf(c.mean(axis=1) + k * c.std(axis=1), 2.0).mean())

    assert share(rule.windows) <= 2.3 * aim and share(rule.windows // 2) > 2 * aim
    assert minimum.threshold_rule("mean_std", 0.0, k, 1000).windows > 1.8 * rule.windows


def test_a_threshold_above_every_factory_score_says_so():
    s = np.random.default_rng(2).gamma(2.0, 1.0, 500)
    k = float((s.max() * 1.5 - s.mean()) / s.std())
    rule = minimum.scores_rule(s, k, float(s.max() * 1.5), "pot")
    assert "it is above all of them" in rule.why and "the factory's 500 normal scores" in rule.why


def test_the_maximum_aims_at_what_the_full_calibration_gives():
    assert minimum.threshold_rule("percentile", 100.0, 3.0, 190).windows == 95  # 1/(N+1) <= 2/(190+1)
    assert minimum.threshold_rule("none", 99.5, 3.0, 5).windows == 1


def test_statistics_rule_covers_a_slow_cycle_and_warns_about_drift():
    """The phase-1 mean holds 0.1 training std only once a stretch covers the signal's slow cycle; a
    signal that drifts at every length the training data show is named, not refused."""
    L, hop = 16, 8
    t = np.arange(200000)
    slow = np.sin(2 * np.pi * t / 2000)[:, None] * np.ones((1, 2))  # one cycle = 250 windows of hop 8
    x = slow + 0.05 * np.random.default_rng(1).normal(size=slow.shape)
    w = np.lib.stride_tricks.sliding_window_view(x, L, axis=0)[::hop].transpose(0, 2, 1)
    rule, warning = minimum.stats_rule(
        w, hop, offsets=True, scales=False, channel_names=["a", "b"], windows=2000
    )
    assert warning is None and 300 < rule.windows <= 2000 and f"N >= {rule.windows}" in rule.why
    fast = np.sin(2 * np.pi * t / 40)[:, None] * np.ones((1, 2))  # a cycle of 5 windows: a few cover it
    wf = np.lib.stride_tricks.sliding_window_view(fast, L, axis=0)[::hop].transpose(0, 2, 1)
    quick, _ = minimum.stats_rule(wf, hop, offsets=True, scales=True, channel_names=["a", "b"], windows=64)
    assert 1 < quick.windows <= 16 < rule.windows
    drift = np.cumsum(np.random.default_rng(2).normal(size=(200000, 2)), axis=0)
    wd = np.lib.stride_tricks.sliding_window_view(drift, L, axis=0)[::hop].transpose(0, 2, 1)
    rule, warning = minimum.stats_rule(
        wd, hop, offsets=True, scales=False, channel_names=["a", "b"], windows=64
    )
    assert rule.windows == 1 and warning is not None and "varies by" in warning
    assert "channel 'a'" in warning or "channel 'b'" in warning


def test_the_config_refuses_calibration_windows_below_the_threshold_rule():
    pct = ThresholdConfig(method="percentile", percentile=99.5)
    assert minimum.windows_problem(CalibrationConfig(windows=64), pct).startswith(
        "calibration.windows = 64 is below the 99 windows per phase"
    )
    assert minimum.windows_problem(CalibrationConfig(windows=99), pct) is None
    assert minimum.windows_problem(CalibrationConfig(windows=64, threshold="none"), pct) is None
    # mad and pot take their k from the trained model's scores: their rule is measured when it is built
    assert minimum.windows_problem(CalibrationConfig(windows=2), ThresholdConfig(method="mad")) is None
    from tinyae.train import config

    with pytest.raises(UserError, match=r"below the 99 windows"):
        config.load(None, ["threshold.method='percentile'", "calibration.windows=98"])
    config.load(
        None, ["threshold.method='percentile'", 'calibration.threshold="none"', "calibration.windows=98"]
    )
    with pytest.raises(UserError, match=r"max_over_stretch"):
        config.load(None, ["calibration.max_over_stretch=[9, 8]"])


def test_a_spec_below_its_minimum_cannot_be_made():
    with pytest.raises(UserError, match=r"calibration.windows = 3 is below the 4 windows"):
        spec_with(windows=3)
    with pytest.raises(UserError, match=r"below the 7 windows"):
        spec_with(windows=6, stats_windows=7, stats_why="a test")


# ---------------------------------------------------------------- per channel, every channel and reason
def site(spec, n):
    return pv_samples(spec, spec.stats_samples(n), seed=4)


BREAKS = {
    "shift": lambda x, k, spec: x[:, k] + np.float32(3.5 * spec.ref_std[k]),
    "scale": lambda x, k, spec: (x[:, k] - spec.ref_mean[k]) * np.float32(3.0) + spec.ref_mean[k],
    "dead": lambda x, k, spec: np.full(len(x), spec.ref_mean[k], np.float32),
    "not_finite": lambda x, k, spec: np.where(np.arange(len(x)) == 5, np.nan, x[:, k]).astype(np.float32),
}


@pytest.mark.parametrize("reason", list(BREAKS))
@pytest.mark.parametrize("k", range(C))
def test_a_channel_refusal_names_that_channel_whichever_it_is(tmp_path, reason, k):
    """Every channel's statistics are in the record (the host recomputes them all), the detail is the
    channel out of bounds, and tae_calib_channel_verdict names it the same way."""
    spec = spec_with(windows=8)
    cal = build(tmp_path, spec)
    n = 8
    x = site(spec, n)
    x[:, k] = BREAKS[reason](x, k, spec)
    outcome, rec = two_phases(cal, spec, x, n, np.full(n, 0.1, np.float32))
    want = "scale" if reason == "dead" else reason
    assert outcome == want and cal.status()[2] == k
    used = x[: spec.stats_samples(n)].astype(np.float64)
    others = [c for c in range(C) if c != k]
    assert np.allclose(np.asarray(rec.mean)[others], used.mean(0)[others], atol=1e-4 * max(spec.ref_std))
    assert np.allclose(np.asarray(rec.std)[others], used.std(0)[others], atol=1e-4 * max(spec.ref_std))
    assert rec.samples == len(used)
    verdicts = [cal.channel_verdict(c, rec.mean[c], rec.std[c]) for c in range(C)]
    assert [OUTCOMES[v] if v else "" for v in verdicts] == [want if c == k else "" for c in range(C)]


def test_two_channels_out_of_bounds_name_the_first_and_list_both(tmp_path):
    spec = spec_with(windows=8)
    cal = build(tmp_path, spec)
    x = site(spec, 8)
    x[:, 1] = BREAKS["scale"](x, 1, spec)
    x[:, 2] = BREAKS["shift"](x, 2, spec)
    outcome, rec = two_phases(cal, spec, x, 8, np.full(8, 0.1, np.float32))
    assert outcome == "scale" and cal.status()[2] == 1
    assert [cal.channel_verdict(c, rec.mean[c], rec.std[c]) for c in range(C)] == [0, 5, 4]


# ---------------------------------------------------------------- an anomalous stretch
def scored(tmp_path, above: list[int], n: int = 24):
    spec = spec_with(windows=n)
    cal = build(tmp_path, spec)
    t = np.float32(CFG["threshold"])
    s = np.full(n, t * np.float32(0.5), np.float32)
    s[above] = t * np.float32(1.1)
    outcome, rec = two_phases(cal, spec, site(spec, n), n, s)
    return spec, cal, outcome, rec


def test_k_of_n_consecutive_windows_above_the_factory_threshold_refuse(tmp_path):
    spec = spec_with(windows=24)
    k, n = spec.stretch_k, spec.stretch_n
    assert (k, n) == (5, 8)  # window 8, hop 4: m = 2, 2m + 1 of 4m
    # the last k windows above: refused, the detail is the count, the record says where it is densest
    spec, cal, outcome, rec = scored(tmp_path, list(range(24 - k, 24)))
    assert outcome == "anomalous_stretch" and cal.status()[2] == k and rec.cluster == k == rec.over
    assert cal.cluster_end() == 23
    # k of n with gaps: still one stretch
    _, cal, outcome, rec = scored(tmp_path, [10, 12, 13, 15, 17])
    assert outcome == "anomalous_stretch" and rec.cluster == 5 and cal.cluster_end() == 17
    # k - 1 close together, or k spread wider than n: normal noise, stored
    _, _, outcome, rec = scored(tmp_path, [20, 21, 22, 23])
    assert outcome == "stored" and rec.cluster == 4
    _, _, outcome, rec = scored(tmp_path, [0, 4, 9, 14, 19, 23])
    assert outcome == "stored" and rec.over == 6 and rec.cluster == 2
    assert VERDICTS[cal.verdict(rec.to_bytes())] == "valid"


def test_the_stretch_rule_can_be_set(tmp_path):
    spec = spec_with(windows=24, max_over_stretch_setting=(3, 4))
    assert (spec.stretch_k, spec.stretch_n) == (3, 4)
    with pytest.raises(UserError, match=r"max_over_stretch = \[5, 40\]"):
        spec_with(windows=24, max_over_stretch_setting=(5, 40))
    assert pv.calib_spec().rederive({}, QUANT) == pv.calib_spec()


def test_begin_refuses_below_the_minimum_and_starts_at_it(tmp_path):
    spec = spec_with(windows=8)
    cal = build(tmp_path, spec)
    with pytest.raises(UserError, match="outside"):
        cal.begin(spec.min_windows - 1)
    cal.begin(spec.min_windows)
    assert cal.window(0.0) == EV_NONE
    # a record made from fewer windows than the minimum is refused by the record check too
    rec = two_phases(cal, spec, site(spec, 8), 8, np.full(8, 0.1, np.float32))[1]
    from dataclasses import replace

    assert (
        VERDICTS[cal.verdict(replace(rec, windows=spec.min_windows - 1, rank=spec.rank(3)).to_bytes())]
        == "bounds"
    )
    assert isinstance(Record.from_bytes(rec.to_bytes()), Record)


def test_make_demo_runs_the_board_on_storage_of_its_own_emptied_first(tmp_path):
    """A calibration record an earlier run left on the emulated board (build/emulator/storage) never
    reaches the demo: it verifies on its own storage, removed first with a line that says so."""
    import subprocess

    from tests.conftest import ROOT

    out = subprocess.run(
        ["make", "-n", "--no-print-directory", "demo", f"MODEL_DIR={tmp_path / 'model'}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    clear = next(i for i, ln in enumerate(lines) if ln.startswith("rm -rf build/verify/storage"))
    verify = next(i for i, ln in enumerate(lines) if "device verify --emulator" in ln)
    assert clear < verify and "--emulator-storage build/verify/storage" in lines[verify]
    assert "starts with empty storage" in lines[clear]


def test_a_trained_model_that_needs_more_windows_raises_the_capacity_and_says_so():
    # mad's rule is measured on the trained model's scores: with few of them and a long tail it can need
    # more windows than calibration.windows; `tinyae model` then sizes the device for them (a refusal
    # here would throw the training run away) and names the change in one sentence
    from tinyae.train.calibration.spec import build as build_spec
    from tinyae.train.warned import collecting

    rng = np.random.default_rng(3)
    scores = rng.lognormal(size=144)
    train = rng.normal(size=(300, 32, 2))
    kw = dict(window_length=32, hop=16, channel_names=["a", "b"], factory_threshold=np.quantile(scores, 0.98),
              norm_offset=np.zeros(2), norm_gain=np.ones(2), in_scale=0.1, in_zero_point=0,
              normal_scores=scores)  # fmt: skip
    cfg = CalibrationConfig(windows=8, offsets=False, scales=False)
    with collecting() as said:
        spec = build_spec(cfg, ThresholdConfig(method="mad"), train, **kw)
    assert spec.windows == spec.min_windows > 8
    (sentence,) = [w for w in said if w.startswith("calibration.windows 8 -> ")]
    assert sentence.startswith(f"calibration.windows 8 -> {spec.windows}: ") and "\n" not in sentence
    # set at least that high, nothing is said and the capacity stays as set
    with collecting() as said:
        same = build_spec(CalibrationConfig(windows=spec.windows + 5, offsets=False, scales=False),
                          ThresholdConfig(method="mad"), train, **kw)  # fmt: skip
    assert same.windows == spec.windows + 5 and not [w for w in said if "calibration.windows" in w]
