"""tae_quantize_features and tae_score (C, host build) equal tinyae.train.preprocess bit for bit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_core_support import Config, Pipeline

from tinyae.train import preprocess


def special_windows(cfg: Config, rng: np.random.Generator, n: int) -> np.ndarray:
    """Random raw windows [n, L, C] salted with NaN, +-inf, huge values, -0.0 and inputs that land
    exactly on (or one ulp beside) a .5 rounding boundary after normalization."""
    w = rng.normal(0.0, 3.0, (n, cfg.L, cfg.C)).astype(np.float32) * np.asarray(cfg.scale, np.float32)
    w += np.asarray(cfg.offset, np.float32)
    flat = w.reshape(-1)
    specials = np.array([np.nan, np.inf, -np.inf, 3e38, -3e38, 1e20, -1e20, -0.0, 0.0], np.float32)
    pick = rng.random(flat.shape) < 0.08
    flat[pick] = rng.choice(specials, pick.sum())
    return w


@pytest.fixture(scope="module")
def unit_gain(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    # gain = 1 / (scale * s_in) = 1 exactly: (x - offset) * 1 keeps x - offset, so exact .5 cases are easy.
    cfg = Config(C=2, L=16, offset=[0.0, -0.5], scale=[4.0, 4.0], in_scale=0.25, in_zp=7)
    assert cfg.gain.tolist() == [1.0, 1.0]
    return Pipeline(cfg, tmp_path_factory.mktemp("unit_gain"))


@pytest.fixture(scope="module")
def generic(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    cfg = Config(C=3, L=20, offset=[0.25, -1.5, 3.0], scale=[0.5, 2.0, 1.25], in_scale=0.05, in_zp=-3)
    return Pipeline(cfg, tmp_path_factory.mktemp("generic"))


def reference(p: Pipeline, windows: np.ndarray) -> np.ndarray:
    c = p.cfg
    with np.errstate(over="ignore", invalid="ignore"):  # inf - inf and overflow are part of the test
        return preprocess.quantize_windows(windows, np.asarray(c.offset, np.float32), c.gain, c.in_zp)


def test_half_cases_round_away_from_zero(unit_gain: Pipeline) -> None:
    half = np.arange(-140, 140, dtype=np.float32) + np.float32(0.5)
    below = np.nextafter(half, np.float32(0), dtype=np.float32)  # one ulp toward zero: must not round away
    vals = np.concatenate([half, -half, below, [0.49999997, -0.49999997, 0.5, -0.5, -0.0]]).astype(np.float32)
    n = -(-len(vals) // 32)
    w = np.zeros(n * 32, np.float32)
    w[: len(vals)] = vals
    windows = w.reshape(n, 16, 2)
    windows[..., 1] -= np.float32(0.5)  # channel 1 has offset -0.5: same normalized values
    got = unit_gain.quantize(windows)
    np.testing.assert_array_equal(got, reference(unit_gain, windows))
    # independent of the mirror: 2.5 -> 3 (+zp 7 = 10), -2.5 -> -3 (4), 2.4999998 -> 2 (9)
    probe = np.zeros((1, 16, 2), np.float32)
    probe[0, 0, 0], probe[0, 1, 0], probe[0, 2, 0] = 2.5, -2.5, np.nextafter(np.float32(2.5), np.float32(0))
    q = unit_gain.quantize(probe)[0]
    assert (q[0], q[2], q[4]) == (10, 4, 9)


def test_specials_nan_inf_huge(unit_gain: Pipeline) -> None:
    probe = np.zeros((1, 16, 2), np.float32)
    probe[0, :6, 0] = [np.nan, np.inf, -np.inf, 3e38, -3e38, -0.0]
    q = unit_gain.quantize(probe)[0][0:12:2]
    assert q.tolist() == [7, 127, -128, 127, -128, 7]  # NaN -> zero point, +-inf and huge clamp


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_windows_match_numpy(generic: Pipeline, unit_gain: Pipeline, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for p in (generic, unit_gain):
        windows = special_windows(p.cfg, rng, 200)
        got = p.quantize(windows)
        np.testing.assert_array_equal(got, reference(p, windows))
        assert len(np.unique(got)) > 50  # the test spans the int8 range, not just the clamps


@pytest.mark.parametrize("kind", ["mse", "mae"])
def test_scores_match_numpy_bit_for_bit(tmp_path: Path, kind: str) -> None:
    cfg = Config(kind=kind, L=32, C=3, in_scale=0.0371, in_zp=-7, out_scale=0.0213, out_zp=11)
    p = Pipeline(cfg, tmp_path)
    rng = np.random.default_rng(42)
    in_q = rng.integers(-128, 128, (300, cfg.size), dtype=np.int8)
    out_q = rng.integers(-128, 128, (300, cfg.size), dtype=np.int8)
    out_q[:20] = in_q[:20]  # perfect reconstruction (up to scales) too
    got = p.score(in_q, out_q)
    want = preprocess.scores(in_q, out_q, cfg.in_scale, cfg.in_zp, cfg.out_scale, cfg.out_zp, kind)
    np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))
    # sanity: the kinds differ, so the build really used TAE_SCORE_KIND
    other = preprocess.scores(
        in_q, out_q, cfg.in_scale, cfg.in_zp, cfg.out_scale, cfg.out_zp, "mae" if kind == "mse" else "mse"
    )
    assert not np.array_equal(got, other)


def test_a_sample_that_overflows_float32_saturates_without_a_warning():
    """A glitch of 1e37 times a normalization gain overflows to inf in float32, as on the device, and
    saturates the int8 input; the user sees no raw NumPy RuntimeWarning on stderr (`verify --csv`)."""
    import warnings

    from tinyae.train.preprocess import quantize_features

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        q = quantize_features(np.array([[1e37, -1e37, 1.0]], np.float32), np.zeros(3), np.full(3, 1e10), 0)
    assert q.tolist() == [[127, -128, 127]]
