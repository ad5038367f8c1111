"""Issue 15, fault 2 and its kind: one glitch sample must not wreck normalization and quantization.
It is found and named (channel, row, value), clipped by default, refused or kept on request; robust
normalization is available; the int8 levels each channel uses are reported and a low count warned."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tinyae.errors import UserError
from tinyae.train import config
from tinyae.train.data import fit_normalization
from tinyae.train.data.splits import DatasetSplits

ROWS = 3000
SPIKE_ROW = 500  # data row index; file line = SPIKE_ROW + 2 (header is line 1)


def recording(tmp_path: Path, spike: float | None = 1e5) -> Path:
    rng = np.random.default_rng(7)
    t = np.arange(ROWS) / 100.0
    ax = 0.7 * np.sin(2 * np.pi * 9.5 * t) + 0.4 * rng.normal(size=ROWS)
    ay = 0.5 * np.sin(2 * np.pi * 19 * t + 1) + 0.3 * rng.normal(size=ROWS)
    az = 1.0 + 0.2 * rng.normal(size=ROWS)
    if spike is not None:
        ax[SPIKE_ROW] = spike
    p = tmp_path / "vib.csv"
    p.write_text(
        "time,ax,ay,az\n"
        + "\n".join(f"{a:.2f},{b:.9g},{c:.9g},{d:.9g}" for a, b, c, d in zip(t, ax, ay, az, strict=True))
        + "\n"
    )
    return p


def train(tmp_path: Path, csv: Path, *overrides: str) -> dict:
    from tinyae.train.pipeline import run

    cfg = config.load(
        None,
        ["data.source=csv", f"data.paths=['{csv}']", "window.length=32", "window.hop=16", "train.epochs=3",
         *overrides],
    )  # fmt: skip
    return run(cfg, tmp_path / "model", "test", show_progress=False).to_dict()


@pytest.mark.training
def test_a_glitch_is_named_and_clipped_and_the_channel_keeps_its_levels(tmp_path):
    (tmp_path / "c").mkdir()
    clean = train(tmp_path / "clean", recording(tmp_path / "c", None))
    m = train(tmp_path / "spiky", recording(tmp_path, 1e5))
    out = m["data"]["outliers"]
    assert out["count"] == 1 and out["mode"] == "clip"
    first = out["channels"]["ax"]["first"][0]
    assert first["where"].endswith(f"vib.csv row {SPIKE_ROW + 2}") and first["value"] == 1e5
    assert any("beyond 10 IQR" in w and "'ax' 1" in w for w in m["warnings"])
    # the normalization is the clean one (within 1 %), not thousands of times wider
    assert m["normalization"]["scale"][0] == pytest.approx(clean["normalization"]["scale"][0], rel=0.01)
    levels = m["metrics"]["int8_input_levels"]
    assert levels["ax"] >= 0.8 * clean["metrics"]["int8_input_levels"]["ax"] and levels["ax"] > 50
    assert not any("int8 input levels" in w for w in m["warnings"])


@pytest.mark.training
def test_kept_glitch_collapses_the_channel_and_the_level_report_says_so(tmp_path):
    m = train(tmp_path, recording(tmp_path), "normalization.outliers=keep")
    levels = m["metrics"]["int8_input_levels"]
    assert levels["ax"] < 16
    warning = next(w for w in m["warnings"] if "int8 input levels" in w)
    assert "'ax'" in warning
    assert (tmp_path / "model" / "levels.png").stat().st_size > 0


def test_refuse_names_the_glitch(tmp_path):
    with pytest.raises(UserError) as exc:
        train(tmp_path, recording(tmp_path), "normalization.outliers=refuse")
    msg = str(exc.value)
    assert f"vib.csv row {SPIKE_ROW + 2}: channel 'ax' is 100000" in msg and "\n" not in msg


def test_robust_normalization_ignores_one_glitch():
    rng = np.random.default_rng(0)
    x = rng.normal(0.0, 2.0, size=(5000, 2))
    clean = fit_normalization(x, "robust")
    x[10, 0] = 1e6
    spiky = fit_normalization(x, "robust")
    assert spiky.scale[0] == pytest.approx(clean.scale[0], rel=1e-2)
    assert spiky.scale[0] == pytest.approx(2.0, rel=0.05)  # IQR / 1.349 is the std for Gaussian data
    assert fit_normalization(x, "zscore").scale[0] > 100  # what z-score makes of the same data
    const = np.c_[np.r_[np.zeros(4000), rng.normal(size=1000)], rng.normal(size=5000)]
    assert fit_normalization(const, "robust").scale[0] > 0  # IQR 0: falls back to the std


def test_screen_leaves_test_data_alone_and_skips_channels_without_spread():
    from tinyae.train.data import Series
    from tinyae.train.data.outliers import screen

    def series(v: np.ndarray, name: str) -> Series:
        return Series(v.astype(np.float32), None, ("a", "b"), 100.0, name)

    rng = np.random.default_rng(1)
    tr = rng.normal(size=(1000, 2))
    tr[:, 1] = 0.0
    tr[5, 1] = 3.0  # channel b is constant but for one value: IQR 0, not screened
    tr[7, 0] = 50.0
    te = rng.normal(size=(100, 2))
    te[3, 0] = 80.0
    splits = DatasetSplits(
        "x", [series(tr, "tr")], [series(tr[:200], "va")], [series(te, "te")], ("a", "b"), 100.0
    )
    out, rep = screen(splits, 10.0, "clip")
    assert rep.unscreened == ["b"] and rep.count == 2  # row 7 in train and in validation
    others = np.delete(tr[:, 0], 7)
    assert out.train[0].values[7, 0] == pytest.approx(others.max(), rel=1e-6)  # winsorized
    assert rep.channels["a"]["clipped_to"] == pytest.approx([others.min(), others.max()], rel=1e-6)
    assert out.test[0].values[3, 0] == 80.0 and out.train[0].values[5, 1] == 3.0
    same, rep0 = screen(splits, 0.0, "clip")
    assert same is splits and rep0.count == 0


def test_only_samples_of_the_windows_training_keeps_are_screened():
    """A glitch inside a labelled fault lies only in windows that training leaves out: it is neither
    counted nor fitted on (the issue's warning counted 6,354 such samples)."""
    from tinyae.train.data import Series
    from tinyae.train.data.outliers import screen

    rng = np.random.default_rng(2)
    v = rng.normal(size=(640, 1)).astype(np.float32)
    labels = np.zeros(640, np.int8)
    labels[300:360] = 1
    v[320:330, 0] = 500.0  # inside the fault
    v[100, 0] = 80.0  # a glitch in normal data
    s = Series(v, labels, ("a",), 100.0, "rec")
    splits = DatasetSplits("x", [s], [], [], ("a",), 100.0)
    _, every = screen(splits, 10.0, "keep")
    _, kept = screen(splits, 10.0, "keep", 64, 32)
    assert every.count == 11 and kept.count == 1
    assert kept.channels["a"]["first"][0]["value"] == 80.0


def test_per_fault_auc_lists_anomalous_classes_only():
    from tinyae.train.pipeline import _by_fault

    labels = np.array([0, 0, 0, 1, 1, 1, 0, 1])
    scores = np.array([0.1, 0.2, 0.1, 0.9, 0.8, 0.3, 0.2, 0.95])
    faults = np.array(
        ["idle", "idle", "Walking", "wobble", "wobble", "tilt", "Walking", "tilt"], dtype=object
    )
    out = _by_fault(labels, scores, faults)
    assert set(out) == {"wobble", "tilt"} and all(np.isfinite(list(out.values())))
