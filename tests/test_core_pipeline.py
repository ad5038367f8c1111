"""The pipeline (host build, stub engine): windowing with hop, chronological time-major windows,
score, decisions and alarms, threshold override, cost, engine errors — against NumPy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_core_support import (
    CLOCK_READ_COST,
    STUB_ENGINE_COST,
    Config,
    Pipeline,
    Windows,
    concat,
    sliding_windows,
    stub_engine,
)

from tinyae.train import preprocess

ENGINE_ERR_INVOKE = -3


def stream(cfg: Config, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (n, cfg.C)).astype(np.float32) * np.asarray(cfg.scale, np.float32) * 3
    return x + np.asarray(cfg.offset, np.float32)


def expected(cfg: Config, samples: np.ndarray, threshold: float | None = None) -> dict[str, np.ndarray]:
    windows = sliding_windows(samples, cfg.L, cfg.H)
    in_q = preprocess.quantize_windows(windows, np.asarray(cfg.offset, np.float32), cfg.gain, cfg.in_zp)
    out_q = stub_engine(in_q)
    score = preprocess.scores(in_q, out_q, cfg.in_scale, cfg.in_zp, cfg.out_scale, cfg.out_zp, cfg.kind)
    thr = cfg.threshold if threshold is None else threshold
    anomaly, alarm = preprocess.decisions(score, thr, cfg.k, cfg.n)
    return {"inputs": in_q, "outputs": out_q, "score": score, "anomaly": anomaly, "alarm": alarm}


def check(got: Windows, want: dict[str, np.ndarray]) -> None:
    assert len(got.seq) == len(want["score"])
    np.testing.assert_array_equal(got.seq, np.arange(len(got.seq)))
    np.testing.assert_array_equal(got.inputs, want["inputs"])
    np.testing.assert_array_equal(got.outputs, want["outputs"])
    np.testing.assert_array_equal(got.score.view(np.uint32), want["score"].view(np.uint32))
    np.testing.assert_array_equal(got.anomaly.astype(bool), want["anomaly"])
    np.testing.assert_array_equal(got.alarm.astype(bool), want["alarm"])
    assert (got.status == 0).all()


def median_threshold(cfg: Config, samples: np.ndarray) -> float:
    """A threshold in the middle of the stub's scores, so both decisions occur."""
    return float(np.median(expected(cfg, samples)["score"]))


@pytest.mark.parametrize(
    ("L", "H"),
    [(8, 1), (8, 3), (8, 8), (8, 11), (1, 1), (5, 40)],
    ids=["hop1", "hop<L", "hop=L", "hop>L", "L1", "hop>>L"],
)
def test_windows_match_numpy_sliding_windows(tmp_path: Path, L: int, H: int) -> None:
    base = Config(L=L, H=H)
    samples = stream(base, 400, seed=L * 100 + H)
    cfg = Config(L=L, H=H, threshold=median_threshold(base, samples))
    p = Pipeline(cfg, tmp_path)
    got = p.run(samples)
    want = expected(cfg, samples)
    assert len(got.seq) == (len(samples) - L) // H + 1
    check(got, want)
    assert 0 < want["anomaly"].sum() < len(want["anomaly"])


def test_first_window_on_sample_L_then_every_hop(tmp_path: Path) -> None:
    cfg = Config(L=6, H=4)
    p = Pipeline(cfg, tmp_path)
    samples = stream(cfg, 30)
    completed = [i + 1 for i, s in enumerate(samples) if p.push_one(s) is not None]
    assert completed == [6, 10, 14, 18, 22, 26, 30]


def test_chunked_pushes_equal_single_pushes(tmp_path: Path) -> None:
    base = Config(L=10, H=3)
    samples = stream(base, 500, seed=7)
    cfg = Config(L=10, H=3, threshold=median_threshold(base, samples), k=2, n=4)
    p = Pipeline(cfg, tmp_path)
    whole = p.run(samples)
    rng = np.random.default_rng(3)
    for _ in range(3):
        p.reset()
        cuts = np.sort(rng.choice(np.arange(1, len(samples)), 25, replace=False))
        chunked = concat([p.run(chunk) for chunk in np.split(samples, cuts)])
        chunked.assert_equal(whole)
    # one sample at a time through tae_pipeline_push itself
    p.reset()
    results = [r for s in samples if (r := p.push_one(s)) is not None]
    assert [r.seq for r in results] == whole.seq.tolist()
    assert np.array([r.score for r in results], np.float32).tobytes() == whole.score.tobytes()
    assert [r.alarm for r in results] == whole.alarm.tolist()
    last = results[-1]
    assert bytes(last.input_q[i] & 0xFF for i in range(cfg.size)) == whole.inputs[-1].tobytes()
    check(whole, expected(cfg, samples))


@pytest.mark.parametrize(("k", "n"), [(1, 1), (2, 3), (3, 3), (3, 5), (4, 8)])
@pytest.mark.parametrize("kind", ["mse", "mae"])
def test_decisions_and_alarms_match_numpy(tmp_path: Path, k: int, n: int, kind: str) -> None:
    base = Config(L=6, H=2, kind=kind)
    samples = stream(base, 600, seed=k * 10 + n)
    cfg = Config(L=6, H=2, kind=kind, k=k, n=n, threshold=median_threshold(base, samples))
    p = Pipeline(cfg, tmp_path)
    got = p.run(samples)
    want = expected(cfg, samples)
    check(got, want)
    assert want["alarm"].any() and not want["alarm"].all()


def test_runtime_threshold_override_and_reset(tmp_path: Path) -> None:
    base = Config(L=8, H=4)
    samples = stream(base, 300, seed=5)
    scores = expected(base, samples)["score"]
    lo, hi = (float(q) for q in np.quantile(scores, [0.25, 0.75]))
    cfg = Config(L=8, H=4, threshold=hi)
    p = Pipeline(cfg, tmp_path)
    check(p.run(samples), expected(cfg, samples))
    p.reset()
    p.set_threshold(lo)
    got = p.run(samples)
    check(got, expected(cfg, samples, threshold=lo))
    assert got.anomaly.sum() > expected(cfg, samples)["anomaly"].sum()
    p.reset()  # init restores TAE_THRESHOLD
    check(p.run(samples), expected(cfg, samples))


def test_cost_spans_preprocessing_engine_and_score(tmp_path: Path) -> None:
    cfg = Config()
    p = Pipeline(cfg, tmp_path)
    got = p.run(stream(cfg, 50))
    # the stub clock advances by STUB_ENGINE_COST in the engine and by one per read: the cost covers
    # exactly one engine call between two clock reads
    assert got.cost.tolist() == [STUB_ENGINE_COST + CLOCK_READ_COST] * len(got.cost)


def test_engine_error_is_reported_and_counts_as_normal(tmp_path: Path) -> None:
    base = Config(L=4, H=2, k=1, n=2)
    samples = stream(base, 120, seed=9)
    thr = float(np.quantile(expected(base, samples)["score"], 0.1))  # nearly every window anomalous
    cfg = Config(L=4, H=2, k=1, n=2, threshold=thr)
    p = Pipeline(cfg, tmp_path)
    p.reset(fail_every=3)
    got = p.run(samples)
    failed = (np.arange(len(got.seq)) % 3) == 2
    assert (got.status[failed] == ENGINE_ERR_INVOKE).all() and (got.status[~failed] == 0).all()
    assert (got.score[failed] == 0).all() and (got.anomaly[failed] == 0).all()
    want = expected(cfg, samples)
    anomaly = want["anomaly"] & ~failed
    np.testing.assert_array_equal(got.anomaly.astype(bool), anomaly)
    _, alarm = preprocess.decisions(np.where(anomaly, 1.0, 0.0), 0.5, cfg.k, cfg.n)
    np.testing.assert_array_equal(got.alarm.astype(bool), alarm)
    np.testing.assert_array_equal(got.seq, np.arange(len(got.seq)))


def test_calibration_correction_of_the_raw_samples(tmp_path: Path) -> None:
    """(x - shift[c]) * gain[c] on every sample the front-end reads, float32 as the host reference does;
    the ring keeps the raw samples, so the correction applies from the next window on; NULL removes it."""
    cfg = Config(L=8, H=3)
    samples = stream(cfg, 200, seed=11)
    shift = np.asarray([0.3, -1.25, 2.0], np.float32)
    gain = np.asarray([1.0, 0.75, 1.5], np.float32)
    p = Pipeline(cfg, tmp_path)
    p.set_correction(shift, gain)
    got = p.run(samples)
    corrected = ((samples - shift) * gain).astype(np.float32)
    check(got, expected(cfg, corrected))
    p.reset()
    got = p.run(samples)  # init removed the correction
    check(got, expected(cfg, samples))
    # switched between two windows: earlier windows raw, later ones corrected (ring samples too)
    p.reset()

    def inputs(rows: np.ndarray) -> list[np.ndarray]:
        out = []
        for s in rows:
            r = p.push_one(s)
            if r is not None:  # the int8 inputs are valid until the next push: copy them now
                out.append(np.ctypeslib.as_array(r.input_q, (cfg.size,)).copy())
        return out

    first = inputs(samples[:50])
    p.set_correction(shift, gain)
    later = inputs(samples[50:])
    n_before = len(first)
    want_raw, want_corr = expected(cfg, samples), expected(cfg, corrected)
    got_before, got_after = np.stack(first), np.stack(later)
    np.testing.assert_array_equal(got_before, want_raw["inputs"][:n_before])
    np.testing.assert_array_equal(got_after, want_corr["inputs"][n_before:])
