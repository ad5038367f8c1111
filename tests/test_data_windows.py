"""Windowing, normalization, chronological splits, prepare() and the named data sets."""

from __future__ import annotations

import importlib.util
from types import SimpleNamespace

import numpy as np
import pytest

from tinyae.errors import UserError
from tinyae.train.data import (
    SPLIT_PROTOCOL,
    Series,
    fit_normalization,
    load_dataset,
    make_windows,
    prepare,
    require_labels,
    split_series,
    window_labels,
)

HAS_AEON = importlib.util.find_spec("aeon") is not None


def test_windows_are_time_major_with_hop():
    v = np.arange(20, dtype=np.float32).reshape(10, 2)  # sample t, channel c = 2t + c
    w = make_windows(v, 4, 3)
    assert w.shape == (3, 4, 2) and w.dtype == np.float32
    assert w[1, 0].tolist() == [6, 7] and w[2, 3].tolist() == [18, 19]
    assert make_windows(v, 11, 1).shape == (0, 11, 2)
    with pytest.raises(UserError, match="hop"):
        make_windows(v, 4, 0)
    with pytest.raises(UserError, match="window length"):
        make_windows(v, 0, 1)


def test_window_label_rules():
    lab = np.array([0, 0, 0, 1, 1, 1, 0, 0], np.int8)
    assert window_labels(lab, 4, 2, "any").tolist() == [1, 1, 1]
    assert window_labels(lab, 4, 2, "majority").tolist() == [0, 1, 0]
    with pytest.raises(UserError, match="rule"):
        window_labels(lab, 4, 2, "all")


def test_normalization_zscore_and_minmax():
    rng = np.random.default_rng(0)
    x = rng.normal([1.0, -5.0], [2.0, 0.5], size=(4000, 2)).astype(np.float32)
    n = fit_normalization(x.reshape(100, 40, 2), "zscore")
    assert n.offset.dtype == np.float32 and n.scale.dtype == np.float32
    np.testing.assert_allclose(n.offset, x.mean(0), rtol=1e-5)
    np.testing.assert_allclose(n.scale, x.std(0), rtol=1e-5)
    y = n.apply(x)
    np.testing.assert_allclose(y.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(y.std(0), 1, atol=1e-4)
    np.testing.assert_allclose(y, (x - n.offset) / n.scale, rtol=1e-6)
    m = fit_normalization(x, "minmax")
    ym = m.apply(x)
    assert ym.min() == pytest.approx(0, abs=1e-6) and ym.max() == pytest.approx(1, abs=1e-6)
    assert n.to_manifest()["method"] == "zscore" and len(n.to_manifest()["offset"]) == 2
    with pytest.raises(UserError, match="unknown normalization"):
        fit_normalization(x, "median")


def test_constant_channel_is_named():
    x = np.ones((50, 3), np.float32) * 7.0
    x[:, 0] = np.arange(50)
    x[:, 2] = np.linspace(0, 1, 50)
    with pytest.raises(UserError, match="channel 'gyr' is constant"):
        fit_normalization(x, "zscore", ["acc", "gyr", "mag"])
    with pytest.raises(UserError, match="channel 'gyr' is constant"):
        fit_normalization(x, "minmax", ["acc", "gyr", "mag"])


def _series(n: int, labels: np.ndarray | None = None) -> Series:
    v = np.stack([np.arange(n), np.sin(np.arange(n))], 1).astype(np.float32)
    return Series(v, labels, ("a", "b"), 10.0, "mem")


def test_chronological_split_has_gaps_and_no_overlap():
    s = _series(1000)
    tr, va, te = split_series(s, 0.2, 0.2, gap=32)
    idx = [p.values[:, 0].astype(int) for p in (tr, va, te)]
    assert idx[0][-1] + 32 < idx[1][0] and idx[1][-1] + 32 < idx[2][0]
    assert len(tr) + len(va) + len(te) == 1000 - 64
    assert all(np.all(np.diff(i) == 1) for i in idx)
    with pytest.raises(UserError, match="too short"):
        split_series(_series(50), 0.2, 0.2, gap=32)
    with pytest.raises(UserError, match="fractions"):
        split_series(s, 0.6, 0.5, gap=1)


def test_prepare_csv_keeps_anomalies_out_of_train_and_val(tmp_path):
    n = 3000
    lab = np.zeros(n, np.int8)
    lab[[100, 900, 1900, 2500, 2800]] = 1  # anomalies in every part
    t = np.arange(n)
    rows = ["t,x,y,label"] + [f"{i / 50},{i},{np.sin(i)},{lab[i]}" for i in t]
    p = tmp_path / "run.csv"
    p.write_text("\n".join(rows))
    cfg = SimpleNamespace(
        source="csv",
        paths=[str(p)],
        channels=["x", "y"],  # x is the sample index on purpose (a counter: never chosen by itself)
        timestamp="",
        label="",
        normal=[],
        sample_rate_hz=0.0,
        seed=0,
    )
    prep = prepare(cfg, 40, 20)
    assert prep.sample_rate_hz == pytest.approx(50.0)
    assert prep.channel_names == ("x", "y")
    for part in (prep.train, prep.val):
        sample_idx = part[:, :, 0].astype(int)
        assert not lab[sample_idx].any()  # no anomalous sample in a train/val window
    assert prep.dropped_anomalous > 0
    test_idx = prep.test[:, :, 0].astype(int)
    assert prep.test_labels is not None
    np.testing.assert_array_equal(prep.test_labels, lab[test_idx].any(1).astype(np.int8))
    # parts are separated by at least one window: no sample index in two parts
    tr, va, te = (set(a[:, :, 0].astype(int).ravel()) for a in (prep.train, prep.val, prep.test))
    assert min(va) - max(tr) > 40 and min(te) - max(va) > 40
    assert prep.protocol == SPLIT_PROTOCOL and "train | gap | validation | gap | test" in SPLIT_PROTOCOL
    with pytest.raises(UserError, match="shorter than one window"):
        prepare({"source": "csv", "paths": [str(p)]}, 5000, 10)


def test_prepare_synthetic_and_unknown_dataset():
    p = prepare("synthetic", 32, 16)
    assert p.train.shape[1:] == (32, 3) and p.train.dtype == np.float32
    assert p.sample_rate_hz == 100.0 and p.channel_names == ("acc_x", "acc_y", "acc_z")
    assert p.test_labels is not None and 0.2 < p.test_labels.mean() < 0.8
    assert p.test_faults is not None and set(p.test_faults[p.test_labels == 0]) == {"normal"}
    assert require_labels(p) is p.test_labels
    with pytest.raises(UserError, match="known data sets: synthetic, basicmotions"):
        load_dataset("mnist")
    with pytest.raises(UserError, match="unknown data option"):
        prepare({"source": "synthetic", "sede": 1}, 32, 16)


@pytest.mark.skipif(not HAS_AEON, reason="aeon (tinyae[datasets]) not installed")
def test_basicmotions_from_aeon():
    d = load_dataset("basicmotions")
    assert d.channel_names[0] == "acc_x" and len(d.channel_names) == 6 and d.sample_rate_hz == 10.0
    # the 20 Standing/Walking cases of TRAIN train and validate; its 20 Running/Badminton cases stay in
    # the train part, where the split leaves them out and counts them (5 windows of 20 per 100-sample case)
    assert len(d.train) + len(d.val) == 40 and len(d.test) == 40
    assert sum(not s.labels.any() for s in d.train + d.val) == 20 and all(not s.labels.any() for s in d.val)
    p = prepare("basicmotions", 20, 20)
    assert p.dropped == (20 * 5, 0)
    p = prepare("basicmotions", 20, 10)
    assert set(p.test_faults[p.test_labels == 1]) == {"Running", "Badminton"}
    assert set(p.test_faults[p.test_labels == 0]) == {"Standing", "Walking"}
    p2 = prepare({"source": "basicmotions", "normal": ["Standing"]}, 20, 10)
    assert set(p2.test_faults[p2.test_labels == 0]) == {"Standing"}


@pytest.mark.skipif(not HAS_AEON, reason="aeon (tinyae[datasets]) not installed")
def test_daphnet_and_internalbleeding_from_aeon():
    p = prepare("daphnet", 64, 32)
    assert p.train.shape[2] == 9 and p.sample_rate_hz == pytest.approx(64.0, rel=0.01)
    assert p.test_labels is not None and not p.test_labels.any()  # the excerpt has no freezing episode
    q = prepare("internalbleeding", 64, 16)
    assert q.train.shape[2] == 1 and q.test_labels is not None and q.test_labels.sum() > 0


def test_missing_aeon_is_a_user_error(monkeypatch):
    import tinyae.train.data.datasets as ds

    monkeypatch.setattr(ds.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(UserError, match=r"pip install tinyae\[datasets\]"):
        load_dataset("basicmotions")


def test_prepare_ucr_train_and_test_files(tmp_path):
    rng = np.random.default_rng(1)

    def rows(n: int, cls: str) -> list[str]:
        return [cls + "," + ",".join(f"{v:.4f}" for v in rng.normal(size=24)) for _ in range(n)]

    train = tmp_path / "S_TRAIN.csv"
    test = tmp_path / "S_TEST.csv"
    train.write_text("\n".join(rows(10, "ok") + rows(3, "bad")))
    test.write_text("\n".join(rows(4, "ok") + rows(4, "bad")))
    p = prepare({"source": "ucr", "paths": [str(train), str(test)], "normal": ["ok"]}, 12, 12)
    # 10 normal train cases, 2 windows each, the last 20 % of cases validate; anomalous cases never train
    assert p.train.shape == (16, 12, 1) and p.val.shape == (4, 12, 1)
    assert p.test.shape == (16, 12, 1) and p.test_labels.tolist() == [0] * 8 + [1] * 8
    assert list(p.test_faults) == ["ok"] * 8 + ["bad"] * 8
    with pytest.raises(UserError, match="shorter than one window"):
        prepare({"source": "ucr", "paths": [str(train), str(test)], "normal": ["ok"]}, 30, 10)
