import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyae.train import preprocess


def exact_round_half_away(v: float) -> float:
    """Reference on Python floats (doubles hold every float32 exactly)."""
    return math.copysign(math.floor(abs(v) + 0.5), v) if abs(v) < 2**52 else v


@settings(max_examples=300, deadline=None)
@given(st.floats(width=32, allow_nan=False, allow_infinity=False))
def test_round_half_away_is_exact(v):
    assert float(preprocess.round_half_away(np.float32(v))) == exact_round_half_away(float(np.float32(v)))


def test_round_half_away_trap_values():
    # 0.49999997f + 0.5f rounds up to 1.0 in float32; the trunc method must not.
    v = np.array([0.49999997, -0.49999997, 0.5, -0.5, 1.5, -2.5, 8388607.5], np.float32)
    assert preprocess.round_half_away(v).tolist() == [0.0, -0.0, 1.0, -1.0, 2.0, -3.0, 8388608.0]


def test_quantize_clamps_and_maps_nan_to_zero_point():
    windows = np.array([[[0.0], [1e30], [-1e30], [np.nan], [np.inf], [0.26]]], np.float32)
    q = preprocess.quantize_windows(windows, np.zeros(1, np.float32), np.array([10.0], np.float32), -5)
    assert q.tolist() == [[-5, 127, -128, -5, 127, -2]]


def test_scores_accumulate_sequentially_in_float32():
    rng = np.random.default_rng(1)
    a = rng.integers(-128, 128, (5, 96)).astype(np.int8)
    b = rng.integers(-128, 128, (5, 96)).astype(np.int8)
    got = preprocess.scores(a, b, 0.03, 3, 0.02, -7, "mse")
    for i in range(5):
        acc = np.float32(0)
        for j in range(96):
            d = np.float32(np.float32(int(b[i, j]) + 7) * np.float32(0.02)) - np.float32(
                np.float32(int(a[i, j]) - 3) * np.float32(0.03)
            )
            acc = np.float32(acc + np.float32(d * d))
        assert got[i] == np.float32(acc / np.float32(96))


def test_decisions_k_of_n():
    s = np.array([0, 2, 0, 2, 2, 0, 0], np.float32)
    anomaly, alarm = preprocess.decisions(s, 1.0, k=2, n=3)
    assert anomaly.tolist() == [False, True, False, True, True, False, False]
    assert alarm.tolist() == [False, False, False, True, True, True, False]
