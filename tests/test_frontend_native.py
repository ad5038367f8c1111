"""The front-end's C (host build, ctypes) against closed forms and against its NumPy mirror, bit for
bit: pure tones land in their bin with their amplitude, statistics of constant, sine and impulse
windows match their formulas, the log matches libm closely, and hostile inputs (NaN, inf, huge,
denormal) give the same bits on both sides."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyae.train.config import FrontendConfig
from tinyae.train.frontend import build_spec, mirror
from tinyae.train.frontend.native import NativeFrontend

STAT_NAMES = ["mean", "rms", "std", "p2p", "crest", "skew", "kurtosis", "zcr"]


def fe(length: int = 64, channels: int = 1, rate: float = 64.0, **kw) -> NativeFrontend:
    kw.setdefault("log_floor", 1e-3)  # a fixed floor: these tests compare arithmetic, not data fits
    return NativeFrontend(build_spec(FrontendConfig(**kw), length, channels, rate))


def bits(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, np.float32).view(np.uint32)


@pytest.mark.parametrize("window_fn", ["rect", "hann", "hamming"])
@pytest.mark.parametrize("k", [3, 10, 31])
def test_a_bin_centred_tone_reads_its_amplitude_in_its_bin(window_fn: str, k: int) -> None:
    n, amp = 64, 2.5
    f = fe(kinds=["spectral"], window_fn=window_fn, spectrum="magnitude", log=False)
    t = np.arange(n)
    x = (amp * np.sin(2 * np.pi * k * t / n) + 7.0).astype(np.float32)  # the offset must not matter
    mag = f(x.reshape(1, n, 1))[0]  # band b = bin b + 1
    assert mag[k - 1] == pytest.approx(amp, rel=2e-5)
    others = np.delete(mag, [k - 2, k - 1, k]) if window_fn != "rect" else np.delete(mag, k - 1)
    assert np.all(others < 1e-4 * amp)
    power = fe(kinds=["spectral"], window_fn=window_fn, log=False)(x.reshape(1, n, 1))[0]
    assert power[k - 1] == pytest.approx(amp * amp, rel=4e-5)
    logged = fe(kinds=["spectral"], window_fn=window_fn)
    log_power = logged(x.reshape(1, n, 1))[0]
    assert log_power[k - 1] == pytest.approx(math.log(amp * amp), abs=2e-5)
    floor = logged.spec.spectral.log_floor[0]  # 1e-3 in every band
    quiet = np.flatnonzero(power < floor)
    assert len(quiet) > 0 and np.all(log_power[quiet] == mirror.logf(np.float32(floor)))


def test_frames_average_and_bands_average() -> None:
    # two frames of 16 samples with different tone amplitudes: the bin holds the mean power
    a = np.sin(2 * np.pi * 4 * np.arange(16) / 16)
    x = np.concatenate([1.0 * a, 3.0 * a]).astype(np.float32).reshape(1, 32, 1)
    p = fe(length=32, kinds=["spectral"], fft_length=16, window_fn="rect", log=False)(x)[0]
    assert p[3] == pytest.approx((1.0 + 9.0) / 2, rel=1e-5)
    # 8 bins into 2 bands: band 0 = bins 1..4 (tone at 4), band 1 = bins 5..8
    b = fe(length=32, kinds=["spectral"], fft_length=16, window_fn="rect", log=False, bins=2)(x)[0]
    assert b[0] == pytest.approx(5.0 / 4, rel=1e-5) and b[1] < 1e-9


def stats_of(x: np.ndarray) -> dict[str, float]:
    f = fe(length=len(x), kinds=["stats"])
    return dict(zip(STAT_NAMES, f(np.asarray(x, np.float32).reshape(1, -1, 1))[0].tolist(), strict=True))


def test_stats_of_a_constant() -> None:
    s = stats_of(np.full(40, -2.5))
    assert s == {
        "mean": -2.5,
        "rms": 2.5,
        "std": 0.0,
        "p2p": 0.0,
        "crest": 1.0,
        "skew": 0.0,
        "kurtosis": 0.0,
        "zcr": 0.0,
    }


def test_stats_of_a_sine() -> None:
    n, amp, periods = 200, 3.0, 5
    x = amp * np.sin(2 * np.pi * periods * (np.arange(n) + 0.5) / n)
    s = stats_of(x)
    assert s["mean"] == pytest.approx(0.0, abs=1e-5)
    assert s["rms"] == pytest.approx(amp / math.sqrt(2), rel=1e-5)
    assert s["std"] == pytest.approx(amp / math.sqrt(2), rel=1e-5)
    peak = amp * abs(math.sin(math.pi * periods * (2 * round(n / (4 * periods) - 0.5) + 1) / n))
    assert s["p2p"] == pytest.approx(2 * peak, rel=1e-6)  # the sampled peaks, symmetric
    assert s["crest"] == pytest.approx(peak / (amp / math.sqrt(2)), rel=1e-5)
    assert s["skew"] == pytest.approx(0.0, abs=1e-4)
    assert s["kurtosis"] == pytest.approx(1.5, rel=1e-4)
    assert s["zcr"] == pytest.approx((2 * periods - 1) / (n - 1))


def test_stats_of_an_impulse() -> None:
    n, h = 50, 4.0
    x = np.zeros(n)
    x[17] = h
    s = stats_of(x)
    assert s["mean"] == pytest.approx(h / n, rel=1e-6)
    assert s["rms"] == pytest.approx(h / math.sqrt(n), rel=1e-6)
    assert s["std"] == pytest.approx(h * math.sqrt(n - 1) / n, rel=1e-6)
    assert s["p2p"] == h
    assert s["crest"] == pytest.approx(math.sqrt(n), rel=1e-6)
    assert s["skew"] == pytest.approx((n - 2) / math.sqrt(n - 1), rel=1e-5)
    assert s["kurtosis"] == pytest.approx(((n - 1) ** 3 + 1) / (n * (n - 1)), rel=1e-5)
    assert s["zcr"] == pytest.approx(2 / (n - 1))


def test_log_is_close_to_libm_and_equal_to_the_mirror() -> None:
    f = fe(kinds=["spectral"])
    rng = np.random.default_rng(1)
    x = np.concatenate(
        [np.float32(2.0) ** rng.uniform(-126, 127, 3000), rng.uniform(0.5, 2.0, 3000), [1.0, 2.0, 0.5, 1e-6]]
    ).astype(np.float32)
    ours = np.array([f.logf(v) for v in x], np.float32)
    assert np.array_equal(bits(ours), bits(mirror.logf(x)))
    ref = np.log(x.astype(np.float64))
    err = np.abs(ours - ref) / np.maximum(np.abs(ref), 1.0)
    assert err.max() < 3e-7
    assert f.logf(1.0) == 0.0
    assert math.isnan(f.logf(float("nan"))) and f.logf(float("inf")) == float("inf")


SPECS = [
    {"kinds": ["spectral"]},
    {
        "kinds": ["spectral"],
        "spectrum": "magnitude",
        "log": False,
        "window_fn": "hamming",
        "fft_length": 16,
        "bins": 5,
    },
    {"kinds": ["stats"]},
    {"kinds": ["raw", "spectral", "stats"], "fft_length": 8, "stats": ["crest", "zcr", "kurtosis"]},
]


@pytest.mark.parametrize("kw", SPECS, ids=["spectral", "magnitude-frames", "stats", "all"])
def test_c_and_mirror_agree_bit_for_bit_on_hostile_windows(kw: dict) -> None:
    f = fe(length=48, channels=3, **kw)
    rng = np.random.default_rng(7)
    w = rng.normal(0, 1, (60, 48, 3)).astype(np.float32)
    w[1] *= np.float32(1e18)  # squares overflow to inf
    w[2] *= np.float32(1e-30)  # denormal products
    w[3, 5, 0] = np.nan
    w[4, :, 1] = np.inf
    w[5, 9, 2] = -np.inf
    w[6] = 0.0
    w[7, :, 0] = 3.0  # one constant channel
    native, mirrored = f(w), mirror.features(w, f.spec)
    assert np.array_equal(bits(native), bits(mirrored))
    assert np.all(np.isfinite(native[0])) and np.any(np.isnan(native[3]))


@settings(max_examples=40, deadline=None)
@given(
    length=st.sampled_from([8, 20, 64]),
    channels=st.integers(1, 3),
    seed=st.integers(0, 2**31),
    scale=st.sampled_from([1e-3, 1.0, 1e4]),
)
def test_c_and_mirror_agree_on_random_windows(length: int, channels: int, seed: int, scale: float) -> None:
    f = fe(length=length, channels=channels, kinds=["raw", "spectral", "stats"], fft_length=8)
    w = (np.random.default_rng(seed).standard_cauchy((5, length, channels)) * scale).astype(np.float32)
    assert np.array_equal(bits(f(w)), bits(mirror.features(w, f.spec)))


@pytest.mark.parametrize(("length", "fft_length"), [(32, 16), (40, 16), (12, 4), (24, 8), (7, 4)])
def test_the_ring_is_read_from_its_oldest_slot(length: int, fft_length: int) -> None:
    # every slot: the ring's end falls inside a frame, between frames, mid-pair, after the frames
    f = fe(length=length, channels=2, kinds=["raw", "spectral", "stats"], fft_length=fft_length)
    w = np.random.default_rng(3).normal(0, 1, (length, 2)).astype(np.float32)
    plain = f(w[None])[0]
    assert np.array_equal(bits(plain), bits(mirror.features(w[None], f.spec)[0]))
    for oldest in range(length):
        ring = np.roll(w, oldest, axis=0)
        assert np.array_equal(bits(f.from_ring(ring.reshape(-1), oldest)), bits(plain)), oldest
