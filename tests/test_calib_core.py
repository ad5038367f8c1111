"""On-site calibration's core (tae_calib.c) built for the host and driven through ctypes, against
NumPy: the order statistic, mean + k std, the per-channel statistics and correction, every refusal,
the record's stored form and every verdict of its check, the fixed memory."""

from __future__ import annotations

import math
import struct
import zlib
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from tinyae.tools.simdevice import vectors as pv
from tinyae.train.calibration.mirror import SCORE_RTOL, STATS_RTOL
from tinyae.train.calibration.native import EV_CORRECTION, EV_DONE, EV_NONE, NativeCalib
from tinyae.train.calibration.record import OUTCOMES, VERDICTS, Record
from tinyae.train.calibration.spec import CalibSpec

CFG = pv.CONFIG
C = CFG["channels"]


QUANT = {k: CFG[k] for k in ("in_scale", "in_zero_point", "norm_offset", "norm_gain")}


def spec_with(**over) -> CalibSpec:
    """The protocol test configuration's calibration with some settings replaced (every derived constant
    and the CRC recomputed: CalibSpec.rederive)."""
    return pv.calib_spec().rederive(over, QUANT)


def build(tmp_path: Path, spec: CalibSpec, name: str = "cfg") -> NativeCalib:
    d = tmp_path / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "model_config.h").write_text(pv.model_config_h({**CFG, "threshold": spec.factory_threshold}, spec))
    return NativeCalib(d, C)


def scores_only(**over) -> CalibSpec:
    """Threshold only (no phase 1), bounds wide open and a factory threshold no score reaches, so any
    scores give a threshold."""
    return spec_with(offsets=False, scales=False, factory_threshold=1.0e6, max_threshold_ratio=1.0e30, **over)


def run_scores(cal: NativeCalib, scores: np.ndarray) -> tuple[str, Record]:
    cal.begin(len(scores))
    ev = EV_NONE
    for s in scores:
        assert ev == EV_NONE
        ev = cal.window(float(s))
    assert ev == EV_DONE
    return OUTCOMES[cal.status()[1]], Record.from_bytes(cal.candidate())


# ---------------------------------------------------------------- the threshold
@pytest.mark.parametrize("pct", [50.0, 90.0, 99.5, 99.9])
def test_percentile_is_the_exact_nearest_rank_order_statistic(tmp_path, pct):
    n_max = 600
    frac = Fraction(str(pct)) / 100
    spec = scores_only(windows=n_max, percentile=pct)
    cal = build(tmp_path, spec)
    rng = np.random.default_rng(int(pct * 10))
    least = spec.min_windows
    for n in sorted({n for n in [1, 2, 3, 7, 50, 199, 200, 201, least, least + 1, n_max] if n >= least}):
        rank = math.ceil(frac * n)
        assert cal.rank(n) == spec.rank(n) == max(1, min(rank, n))
        # ties and a heavy tail: the order statistic is a value of the set, bit for bit
        scores = np.round(rng.exponential(0.3, n), 2).astype(np.float32)
        outcome, rec = run_scores(cal, scores)
        assert outcome == "stored"
        assert rec.rank == cal.rank(n) and rec.windows == n
        assert np.float32(rec.threshold).tobytes() == np.sort(scores)[cal.rank(n) - 1].tobytes()
        # the heap never holds more than N - rank + 1 scores: the buffer of TAE_CALIB_HEAP floats
        assert spec.heap(n) <= spec.heap() == n_max - spec.rank(n_max) + 1


def test_order_statistic_buffer_is_small_for_a_high_percentile():
    spec = spec_with(windows=1000, percentile=99.5)
    assert spec.heap() == 6  # 4 bytes per score kept: 24 B for 1,000 windows (0.024 B per window)
    assert spec_with(windows=128, percentile=99.5).heap() == 1


def test_mean_plus_k_std_matches_numpy(tmp_path):
    spec = scores_only(method="mean_std", k_std=2.5, windows=300)
    cal = build(tmp_path, spec)
    rng = np.random.default_rng(3)
    for n in (spec.min_windows, 100, 300):
        s = rng.gamma(2.0, 0.05, n).astype(np.float32)
        outcome, rec = run_scores(cal, s)
        assert outcome == "stored" and rec.rank == 0
        want = s.astype(np.float64).mean() + 2.5 * s.astype(np.float64).std()
        assert abs(rec.threshold - want) <= SCORE_RTOL * want
        assert abs(rec.score_mean - s.astype(np.float64).mean()) <= SCORE_RTOL * want


# ---------------------------------------------------------------- statistics and correction
def two_phases(
    cal: NativeCalib, spec: CalibSpec, x: np.ndarray, n: int, scores: np.ndarray
) -> tuple[str, Record]:
    cal.begin(n)
    cal.samples(x[: spec.stats_samples(n)])
    ev = EV_NONE
    for _ in range(n):
        assert ev == EV_NONE
        ev = cal.window(0.0)
    if ev == EV_CORRECTION:
        for s in scores:
            ev = cal.window(float(s))
    assert ev == EV_DONE
    return OUTCOMES[cal.status()[1]], Record.from_bytes(cal.candidate())


@pytest.mark.parametrize(("offsets", "scales"), [(True, False), (True, True), (False, True)])
def test_statistics_and_correction(tmp_path, offsets, scales):
    spec = spec_with(offsets=offsets, scales=scales, windows=20)
    cal = build(tmp_path, spec)
    rng = np.random.default_rng(7)
    site_mean = np.asarray(spec.ref_mean) + np.asarray([0.7, -1.1, 2.5])
    site_std = np.asarray(spec.ref_std) * np.asarray([1.3, 0.8, 1.6])
    x = (rng.normal(0, 1, (spec.stats_samples(20) + 40, C)) * site_std + site_mean).astype(np.float32)
    outcome, rec = two_phases(cal, spec, x, 20, np.full(20, 0.5, np.float32))
    assert outcome == "stored", outcome
    used = x[: spec.stats_samples(20)].astype(np.float64)
    assert rec.samples == len(used) == 19 * spec.hop + spec.window_length
    ref_std = np.asarray(spec.ref_std)
    assert np.all(np.abs(used.mean(0) - rec.mean) <= STATS_RTOL * ref_std)
    assert np.all(np.abs(used.std(0) - rec.std) <= STATS_RTOL * ref_std)
    # the correction, float32 operations in tae_calib.c's order
    mean, std = np.float32(rec.mean), np.float32(rec.std)
    gain = (np.float32(spec.ref_std) / std).astype(np.float32) if scales else np.ones(C, np.float32)
    target = np.float32(spec.ref_mean) if offsets else mean
    shift = (mean - (target / gain).astype(np.float32)).astype(np.float32)
    assert np.array_equal(np.float32(rec.gain).view(np.uint32), gain.view(np.uint32))
    assert np.array_equal(np.float32(rec.shift).view(np.uint32), shift.view(np.uint32))
    corrected = (used.astype(np.float32) - shift) * gain
    want_mean = np.asarray(spec.ref_mean) if offsets else used.mean(0)
    want_std = np.asarray(spec.ref_std) if scales else used.std(0)
    assert np.allclose(corrected.mean(0), want_mean, atol=1e-3 * ref_std.max())
    assert np.allclose(corrected.std(0), want_std, rtol=1e-3)
    assert rec.learned == [n for n, on in (("offsets", offsets), ("scales", scales)) if on] + ["threshold"]


def test_a_channel_far_from_zero_next_to_its_spread_keeps_its_site_mean(tmp_path):
    """Air pressure in Pa (mean 101325, std 1.5) beside two small channels, over 2,000 samples: the site
    mean is NumPy's to within one float32 step of 101325 (0.0078 Pa; the statistics gather around the
    training mean). Gathered around zero, each of the running mean's updates rounded at 101325 and the
    site mean came out ~0.15 Pa, a tenth of a std, off (the cross-check then blamed the tool)."""
    spec = spec_with(ref_mean=(101325.0, 0.0, -1.0), ref_std=(1.5, 2.0, 4.0), windows=500)
    cal = build(tmp_path, spec)
    rng = np.random.default_rng(3)
    n = spec.stats_samples(500)
    site = np.asarray(spec.ref_mean) + np.asarray([0.4, 0.1, -0.2])
    x = (rng.normal(0, 1, (n, C)) * np.asarray(spec.ref_std) + site).astype(np.float32)
    outcome, rec = two_phases(cal, spec, x, 500, np.full(500, 0.5, np.float32))
    assert outcome == "stored", outcome
    used = x.astype(np.float64)
    step = np.spacing(np.float32(101325.0))
    assert abs(used[:, 0].mean() - rec.mean[0]) <= step + STATS_RTOL * spec.ref_std[0]
    assert abs(used[:, 0].std() - rec.std[0]) <= STATS_RTOL * spec.ref_std[0]
    assert np.all(np.abs(used[:, 1:].mean(0) - rec.mean[1:]) <= STATS_RTOL * np.asarray(spec.ref_std[1:]))


def test_phase_one_ignores_samples_past_its_windows(tmp_path):
    spec = spec_with(windows=4)
    cal = build(tmp_path, spec)
    x = pv_samples(spec, spec.stats_samples(4))
    extra = np.vstack([x, np.full((50, C), 1.0e6, np.float32)])
    a = two_phases(cal, spec, x, 4, np.full(4, 0.5, np.float32))[1]
    b = two_phases(cal, spec, extra, 4, np.full(4, 0.5, np.float32))[1]
    assert a.to_bytes() == b.to_bytes()


def pv_samples(spec: CalibSpec, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(0, 1, (n, C)) * np.asarray(spec.ref_std) + np.asarray(spec.ref_mean)).astype(
        np.float32
    )


# ---------------------------------------------------------------- refusals
def test_every_refusal_names_its_cause(tmp_path):
    spec = spec_with(windows=8)
    cal = build(tmp_path, spec)
    n, ok_scores = 8, np.full(8, 0.5, np.float32)
    x = pv_samples(spec, spec.stats_samples(n))

    shifted = x.copy()
    shifted[:, 1] += 3.5 * spec.ref_std[1]  # beyond max_shift_std = 3
    assert two_phases(cal, spec, shifted, n, ok_scores)[0] == "shift" and cal.status()[2] == 1

    flat = x.copy()
    flat[:, 2] = spec.ref_mean[2]  # a dead sensor: no spread at all
    assert two_phases(cal, spec, flat, n, ok_scores)[0] == "scale" and cal.status()[2] == 2

    noisy = x.copy()
    noisy[:, 0] = (noisy[:, 0] - spec.ref_mean[0]) * 3 + spec.ref_mean[0]
    assert two_phases(cal, spec, noisy, n, ok_scores)[0] == "scale" and cal.status()[2] == 0

    nan = x.copy()
    nan[5, 2] = np.nan
    assert two_phases(cal, spec, nan, n, ok_scores)[0] == "not_finite" and cal.status()[2] == 2

    high = np.full(n, spec.threshold_max * 2, np.float32)  # scores far above the trained distribution
    outcome, rec = two_phases(cal, spec, x, n, high)
    assert outcome == "threshold_high" and cal.status()[2] == 255
    assert rec.threshold == np.float32(spec.threshold_max * 2) and not rec.flags & 0x04

    # most windows above the factory threshold (the trained distribution's upper percentile), although
    # the threshold they give is inside its bounds: not normal operation
    t = np.float32(CFG["threshold"])
    over = np.full(n, t * 1.2, np.float32)
    over[: n // 2 - 1] = t * 0.5
    outcome, rec = two_phases(cal, spec, x, n, over)
    assert outcome == "not_normal" and rec.over == n // 2 + 1 and rec.threshold == np.float32(t * 1.2)
    assert rec.threshold <= spec.threshold_max
    half = over.copy()
    half[n // 2 - 1] = t * 0.5  # exactly half above: at most max_over_fraction = 1/2 may be
    outcome, rec = two_phases(cal, spec, x, n, half)
    assert outcome == "stored" and rec.over == n // 2

    low = np.full(n, spec.threshold_min / 2, np.float32)
    assert two_phases(cal, spec, x, n, low)[0] == "threshold_low"

    bad = ok_scores.copy()
    bad[3] = np.inf
    assert two_phases(cal, spec, x, n, bad)[0] == "not_finite"

    # an engine error on a scored window
    cal.begin(n)
    cal.samples(x)
    for _ in range(n):
        cal.window(0.0)
    assert cal.window(0.5, 0) == EV_NONE
    assert cal.window(0.0, -3) == EV_DONE and OUTCOMES[cal.status()[1]] == "engine"


def test_the_largest_window_count_the_configuration_takes_builds(tmp_path, monkeypatch):
    """calibration.windows at its bound (MAX_WINDOWS, model_config.h's TAE_CALIB_MAX_WINDOWS) compiles with
    -Wextra -Werror; a bound of 65535, where the u16 range checks are always false and the build failed for a
    value the configuration accepted, is refused by tae_calib.c's own check."""
    from tinyae.train import export
    from tinyae.train.calibration.minimum import MAX_WINDOWS

    cal = build(tmp_path, spec_with(windows=MAX_WINDOWS))
    cal.begin(MAX_WINDOWS)
    monkeypatch.setattr(export, "MAX_WINDOWS", 65535)
    with pytest.raises(Exception, match="tae_check_calib_max_windows"):
        build(tmp_path, spec_with(windows=6), name="wide")


def test_begin_refuses_a_window_count_outside_the_build(tmp_path):
    spec = spec_with(windows=6)
    assert spec.min_windows == 4  # the 90th percentile: (N + 1 - rank) / (N + 1) <= 2 x 10 % from N = 4 on
    cal = build(tmp_path, spec)
    for n in (0, 1, 3, 7, 65535):
        with pytest.raises(Exception, match="outside"):
            cal.begin(n)
    cal.begin(4)
    cal.begin(6)


# ---------------------------------------------------------------- the record and its check
def valid_record(tmp_path: Path, spec: CalibSpec, cal: NativeCalib) -> bytes:
    outcome, rec = two_phases(
        cal, spec, pv_samples(spec, spec.stats_samples(6)), 6, np.full(6, 0.5, np.float32)
    )
    assert outcome == "stored"
    return rec.to_bytes()


def reseal(b: bytes) -> bytes:
    return b[:-4] + struct.pack("<I", zlib.crc32(b[:-4]) & 0xFFFFFFFF)


def test_record_round_trip_and_every_verdict(tmp_path):
    spec = spec_with(windows=6)
    cal = build(tmp_path, spec)
    good = valid_record(tmp_path, spec, cal)
    assert len(good) == 72 + 16 * C == spec.record_bytes
    assert Record.from_bytes(good).to_bytes() == good
    verdict = lambda b: VERDICTS[cal.verdict(b)]  # noqa: E731
    assert verdict(good) == "valid"
    assert verdict(cal.factory()) == "bounds"  # learns nothing: a factory record is never stored
    flipped = bytearray(good)
    flipped[70] ^= 0x10
    assert verdict(bytes(flipped)) == "corrupt"
    assert verdict(good[:-1]) == "corrupt"
    assert verdict(b"XXXX" + good[4:]) == "corrupt"
    other_model = bytearray(good)
    other_model[8] ^= 0xFF
    assert verdict(reseal(bytes(other_model))) == "other_model"
    other_version = bytearray(good)
    other_version[4] = 2
    assert verdict(reseal(bytes(other_version))) == "version"
    # the same model under other constants: another bound changes the config CRC
    other = build(
        tmp_path,
        spec_with(windows=6, max_shift_std=2.0),
        "other",
    )
    assert VERDICTS[other.verdict(good)] == "other_config"
    # tampered values with a correct CRC: the correction is recomputed from the statistics
    rec = Record.from_bytes(good)
    for field, value in [("shift", (rec.shift[0] + 0.001, *rec.shift[1:])),
                         ("gain", (rec.gain[0] * 1.5, *rec.gain[1:])),
                         ("threshold", spec.threshold_max * 2),
                         ("mean", (rec.mean[0] + 10 * spec.ref_std[0], *rec.mean[1:])),
                         ("rank", rec.rank + 1),
                         ("over", rec.windows),
                         ("windows", spec.min_windows - 1),
                         ("cluster", spec.stretch_k),
                         ("flags", rec.flags & ~0x04)]:  # fmt: skip
        assert verdict(replace(rec, **{field: value}).to_bytes()) == "bounds", field


# ---------------------------------------------------------------- a record's values follow from what it carries
def forged(cal: NativeCalib, rec: Record, **values) -> str:
    """The verdict on rec with some values replaced and the CRC recomputed (what an edited record is)."""
    return VERDICTS[cal.verdict(replace(rec, **values).to_bytes())]


def test_a_mean_std_threshold_is_recomputed_from_the_records_score_statistics(tmp_path):
    """A threshold edited in a record (CRC recomputed) decided alarms on a device that reported it valid
    (0.25 for 0.0577: recall halved; 0.017: every normal window alarmed): mean + k std is recomputed from the
    record's own score mean and std, bit for bit, at install and at boot (the same tae_calib_unpack)."""
    spec = scores_only(method="mean_std", k_std=2.5, windows=300)
    cal = build(tmp_path, spec)
    rng = np.random.default_rng(5)
    for n in (spec.min_windows, 37, 300):
        for s in (rng.gamma(2.0, 0.05, n), rng.exponential(3.0, n) + 100.0, np.full(n, 0.03)):
            outcome, rec = run_scores(cal, s.astype(np.float32))
            assert outcome == "stored" and VERDICTS[cal.verdict(rec.to_bytes())] == "valid"
            t = np.float32(rec.threshold)
            for other in (np.nextafter(t, np.float32(np.inf)), np.nextafter(t, np.float32(0)), t * 4, t / 3):
                assert forged(cal, rec, threshold=float(other)) == "bounds", (n, other)
            # the statistics edited without the threshold: no longer what they give either
            assert forged(cal, rec, score_mean=rec.score_mean * 1.5) == "bounds"
            assert forged(cal, rec, score_std=rec.score_std * 2 + 0.01) == "bounds"


def percentile_band(rec: Record) -> tuple[float, float]:
    """Where the rank-th smallest of N scores of mean m and population std s can lie (Cantelli)."""
    n, r, m, s = rec.windows, rec.rank, rec.score_mean, rec.score_std
    return m - s * math.sqrt((n - r) / r), m + s * math.sqrt((r - 1) / (n - r + 1))


@pytest.mark.parametrize("pct", [50.0, 90.0, 99.5])
def test_every_genuine_percentile_record_is_valid_even_on_the_edge_of_its_conditions(tmp_path, pct):
    """The percentile's order statistic is a function of scores the record does not keep: the check holds
    it to the conditions it must meet (the side of the factory threshold `over` gives, the band the
    score mean and std give). Two-point score sets put it exactly on the band's edges; every genuine
    record, ties and heavy tails included, must stay valid."""
    spec = scores_only(windows=2000, percentile=pct)
    cal = build(tmp_path, spec)
    rng = np.random.default_rng(int(pct))
    for n in sorted(
        {n for n in (spec.min_windows, spec.min_windows + 1, 10, 199, 2000) if n >= spec.min_windows}
    ):
        r = cal.rank(n)
        sets = [
            np.round(rng.exponential(0.3, n), 2) + 0.01,
            rng.gamma(2.0, 0.05, n) + 1000.0,
            np.full(n, 0.125),
            np.r_[np.full(r, 0.25), np.full(n - r, 0.75)],  # on the lower edge: t = m - s sqrt((N-r)/r)
            np.r_[np.full(r - 1, 0.25), np.full(n - r + 1, 0.75)],  # on the upper edge
            rng.permutation(np.r_[np.full(r - 1, 1e-3), np.full(n - r + 1, 7.0)]),
        ]
        for scores in sets:
            outcome, rec = run_scores(cal, scores.astype(np.float32))
            assert outcome == "stored", (n, scores[:3])
            assert VERDICTS[cal.verdict(rec.to_bytes())] == "valid", (n, rec)


def test_the_percentile_bands_float_slack_holds_at_the_most_windows(tmp_path):
    """The band is widened by 2^-6 (|m| + s) for the float32 Welford of up to 65535 scores: a two-point
    score set on the lower edge, in the order that errs most (the high scores first), at the largest N a
    build accepts, stays valid and uses under a quarter of that slack (measured: 6.4e-4)."""
    spec = scores_only(windows=65534, percentile=99.9)
    cal = build(tmp_path, spec)
    n = 65534
    r = cal.rank(n)
    scores = np.r_[np.full(n - r, 0.75), np.full(r, 0.25)].astype(np.float32)
    outcome, rec = run_scores(cal, scores)
    assert outcome == "stored" and VERDICTS[cal.verdict(rec.to_bytes())] == "valid"
    low, high = percentile_band(rec)
    excess = max(low - rec.threshold, rec.threshold - high) / (abs(rec.score_mean) + rec.score_std)
    assert excess <= 2.0**-8


def test_a_percentile_threshold_must_meet_what_the_records_scores_allow(tmp_path):
    """A percentile threshold moved across the factory threshold (its count above it says on which side
    the order statistic lies) or outside what the score mean and std allow is refused."""
    spec = spec_with(offsets=False, scales=False, percentile=90.0, windows=20, factory_threshold=1.0)
    cal = build(tmp_path, spec)
    scores = np.r_[np.full(17, 0.5), 0.9, 0.95, 1.5].astype(np.float32)
    outcome, rec = run_scores(cal, np.random.default_rng(0).permutation(scores))
    assert outcome == "stored" and rec.rank == 18 and rec.over == 1 and rec.threshold == np.float32(0.9)
    assert VERDICTS[cal.verdict(rec.to_bytes())] == "valid"
    low, high = percentile_band(rec)
    assert low < 0.6 and high > 1.1  # the forgeries below fall where only the named condition refuses them
    # above the factory threshold while only 1 score (<= N - rank = 2) is: the order statistic cannot be
    assert forged(cal, rec, threshold=1.05) == "bounds"
    assert forged(cal, rec, threshold=1.05, over=3, cluster=3) == "valid"  # ... unless 3 were
    # below what the mean and std allow the 18th of 20 scores to be
    assert forged(cal, rec, threshold=float(low) * 0.9) == "bounds"
    # above what they allow (the factory side and count made to agree)
    assert forged(cal, rec, threshold=float(high) * 1.1, over=3, cluster=3) == "bounds"


def test_every_other_value_that_follows_from_the_record_is_checked(tmp_path):
    """Beyond the correction and the threshold: the phase-1 sample count follows from N, the densest
    stretch from the count above the factory threshold, and a phase the build does not run leaves its
    values as the factory's (training reference, zero score statistics)."""
    spec = spec_with(windows=6)
    cal = build(tmp_path, spec)
    rec = Record.from_bytes(valid_record(tmp_path, spec, cal))
    assert rec.samples == spec.stats_samples(6)
    assert forged(cal, rec, samples=rec.samples + 1) == "bounds"
    assert forged(cal, rec, samples=0) == "bounds"

    means = scores_only(method="mean_std", k_std=2.5, windows=40)
    cal = build(tmp_path, means, "means")
    outcome, rec = run_scores(cal, np.random.default_rng(1).gamma(2.0, 0.05, 40).astype(np.float32))
    assert outcome == "stored" and rec.samples == 0 and VERDICTS[cal.verdict(rec.to_bytes())] == "valid"
    assert rec.mean == tuple(np.float32(means.ref_mean)) and rec.std == tuple(np.float32(means.ref_std))
    assert forged(cal, rec, mean=(rec.mean[0] + 0.5, *rec.mean[1:])) == "bounds"
    assert forged(cal, rec, std=(*rec.std[:2], rec.std[2] * 1.5)) == "bounds"
    assert forged(cal, rec, samples=means.stats_samples(40) or 100) == "bounds"
    # 2 windows above the factory threshold with none in the densest stretch of stretch_n: impossible
    assert forged(cal, rec, over=2, cluster=0) == "bounds"
    assert forged(cal, rec, over=2, cluster=1) == "valid"  # 40 windows: 5 stretches of 8 hold 2 apart

    stats = spec_with(method="none", windows=5)
    cal = build(tmp_path, stats, "stats")
    cal.begin(5)
    cal.samples(pv_samples(stats, stats.stats_samples(5)))
    assert [cal.window(0.0) for _ in range(5)][-1] == EV_DONE
    rec = Record.from_bytes(cal.candidate())
    assert VERDICTS[cal.verdict(rec.to_bytes())] == "valid" and rec.score_mean == rec.score_std == 0.0
    assert forged(cal, rec, score_mean=0.25) == "bounds"
    assert forged(cal, rec, score_std=0.25) == "bounds"


def test_the_record_header_is_the_documented_layout(tmp_path):
    spec = spec_with(windows=6)
    good = valid_record(tmp_path, spec, build(tmp_path, spec))
    assert good[:4] == b"TAEC" and good[4] == 1 and good[5] == C
    assert good[8:40] == bytes.fromhex(CFG["model_sha256"])
    assert struct.unpack_from("<I", good, 40)[0] == spec.config_crc
    rec = Record.from_bytes(good)
    assert struct.unpack_from("<HHHH", good, 44) == (6, spec.rank(6), rec.over, rec.cluster)


def test_statistics_only_keeps_the_factory_threshold(tmp_path):
    spec = spec_with(method="none", windows=5)
    assert spec.phases == 1 and spec.heap() == 0
    cal = build(tmp_path, spec)
    cal.begin(5)
    cal.samples(pv_samples(spec, spec.stats_samples(5)))
    events = [cal.window(0.0) for _ in range(5)]
    assert events == [EV_NONE] * 4 + [EV_DONE]
    rec = Record.from_bytes(cal.candidate())
    assert OUTCOMES[cal.status()[1]] == "stored" and rec.learned == ["offsets", "scales"]
    assert rec.threshold == np.float32(CFG["threshold"]) and VERDICTS[cal.verdict(rec.to_bytes())] == "valid"


def test_the_models_threshold_method_maps_onto_the_devices_or_is_refused():
    """target_fpr is the nearest-rank (1 - fpr) order statistic, the same window the host picks;
    a threshold.factor has no device equivalent, so a site threshold would silently lose it: refused."""
    from tinyae.errors import UserError
    from tinyae.train.calibrate import calibrate
    from tinyae.train.calibration.minimum import device_method as _method
    from tinyae.train.config import ThresholdConfig

    scores = np.random.default_rng(3).gamma(2.0, 1.0, 1000)
    for fpr in (0.005, 0.01, 0.1, 0.37):
        method, pct, _, source = _method(
            "model", ThresholdConfig(method="target_fpr", target_fpr=fpr), 0.0, scores
        )
        assert method == "percentile" and "target_fpr" in source
        n = len(scores)
        rank = math.ceil(Fraction(str(pct)) / 100 * n)  # the device's nearest rank
        host = calibrate(ThresholdConfig(method="target_fpr", target_fpr=fpr), scores).value
        assert np.float32(np.sort(scores)[rank - 1]) == np.float32(host)
    with pytest.raises(UserError, match=r"threshold.factor = 1.5 has no on-site equivalent"):
        _method("model", ThresholdConfig(method="percentile", factor=1.5), 0.0, scores)
    assert _method("none", ThresholdConfig(method="percentile", factor=1.5), 0.0, scores)[0] == "none"


@pytest.mark.parametrize("cfg", [{"method": "mad", "k_mad": 7.0}, {"method": "pot", "factor": 1.2}])
def test_mad_and_pot_map_onto_mean_std_with_the_k_of_the_factory_threshold(cfg):
    """The device computes no median or tail fit: the site threshold is mean + k std of its scores with the
    k that gives the factory threshold on the factory's normal scores, so a site whose scores are the
    factory's scaled and shifted gets the factory threshold scaled and shifted."""
    from tinyae.train.calibrate import calibrate
    from tinyae.train.calibration.minimum import device_method as _method
    from tinyae.train.config import ThresholdConfig

    scores = np.random.default_rng(4).gamma(2.0, 1.0, 1000)
    t = ThresholdConfig(**cfg)
    factory = calibrate(t, scores).value
    method, _, k, source = _method("model", t, factory, scores)
    assert method == "mean_std" and cfg["method"] in source and "no on-device form" in source
    assert scores.mean() + k * scores.std() == pytest.approx(factory, rel=1e-4)
    site = 3.0 * scores + 0.5
    assert site.mean() + k * site.std() == pytest.approx(3.0 * factory + 0.5, rel=1e-4)
