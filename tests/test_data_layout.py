"""Issue 15: which columns become channels (fault 4: index and counter columns), labelled test sets
laid out as users keep them (train/test file lists, a label per file or glob, split fractions), label
polarity said or printed, and one set of defaults."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tinyae.errors import UserError
from tinyae.train import config
from tinyae.train.data import load_csv, prepare

ROOT = Path(__file__).resolve().parent.parent


def signal(n: int, seed: int, fault: bool = False) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 100.0
    x = np.c_[np.sin(2 * np.pi * 7 * t), np.cos(2 * np.pi * 11 * t), 0.3 * np.sin(2 * np.pi * 3 * t)]
    x = x + 0.1 * rng.normal(size=x.shape)
    if fault:
        x[:, 0] += 0.8 * np.sin(2 * np.pi * 31 * t)
    return x


def write_rec(path: Path, x: np.ndarray, extra: dict[str, list] | None = None, header: str = "x,y,z") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    extra = extra or {}
    cols = ["time", *extra, *header.split(",")]
    lines = [",".join(cols)]
    for i, row in enumerate(x):
        lines.append(
            ",".join([f"{i * 0.01:.2f}", *(str(v[i]) for v in extra.values()), *(f"{v:.6f}" for v in row)])
        )
    path.write_text("\n".join(lines) + "\n")
    return path


# ---------------------------------------------------------------------------- fault 4
def test_counter_and_id_columns_are_left_out_and_named(tmp_path):
    n = 400
    p = write_rec(tmp_path / "r.csv", signal(n, 0), {"sample": [7] * n, "idx": [i % 200 for i in range(n)]})
    (s,) = load_csv(p)
    assert s.channel_names == ("x", "y", "z") and s.values.shape == (n, 3)
    left = s.meta["columns"]["left_out"]
    assert left["sample"] == "the same whole number (7) on every row: a file or run id"
    assert left["idx"] == "a counter (0..199, step 1, 1 restart)"
    from tinyae.train.summary import channels_line

    line = channels_line(
        {"channels": list(s.channel_names), "channels_selected_by": "every numeric column", "left_out": left}
    )
    assert "left out: 'sample', the same whole number (7)" in line and "'idx', a counter (0..199" in line
    # named channels are taken as given, counters included
    (s2,) = load_csv(p, channels=["idx", "x"])
    assert s2.channel_names == ("idx", "x") and s2.meta["columns"]["left_out"] == {}


def test_integer_sensor_values_are_not_counters_but_a_time_column_under_another_name_is(tmp_path):
    rng = np.random.default_rng(2)
    n = 300
    adc = rng.integers(400, 600, n)  # a raw ADC reading: whole numbers, but no counter
    zeit = [f"{i * 0.01:.2f}" for i in range(n)]  # seconds since the start, in a column not called "time"
    p = write_rec(tmp_path / "adc.csv", signal(n, 1), {"adc": list(adc), "Zeit": zeit})
    (s,) = load_csv(p)
    assert s.channel_names == ("adc", "x", "y", "z")
    assert s.meta["columns"]["left_out"]["Zeit"].startswith("rises on every row by 0.01..0.01 (0..2.99)")
    (t,) = load_csv(p, timestamp="Zeit")  # named as the time, it gives the rate
    assert t.sample_rate_hz == 100.0 and "Zeit" not in t.channel_names


# ---------------------------------------------------------------------------- layouts
def layout(tmp_path: Path) -> dict:
    """recordings/normal/*.csv for training, recordings/normal-test + recordings/unbalanced for testing."""
    r = tmp_path / "recordings"
    for k in range(2):
        write_rec(r / "normal" / f"run{k}.csv", signal(1200, k))
    write_rec(r / "normal-test" / "run9.csv", signal(600, 9))
    write_rec(r / "unbalanced" / "u1.csv", signal(600, 11, fault=True))
    write_rec(r / "unbalanced" / "u2.csv", signal(600, 12, fault=True))
    return {
        "source": "csv",
        "train": [f"{r}/normal/*.csv"],
        "test": [f"{r}/normal-test/*.csv", f"{r}/unbalanced/*.csv"],
        "file_labels": {f"{r}/unbalanced/*.csv": "unbalanced", f"{r}/normal*/*.csv": "normal"},
    }


def test_train_and_test_file_lists_with_a_label_per_glob(tmp_path):
    d = layout(tmp_path)
    p = prepare(d, 64, 32)
    n_test = 3 * ((600 - 64) // 32 + 1)
    assert len(p.test) == n_test and p.test_labels is not None
    assert p.test_labels.sum() == 2 * ((600 - 64) // 32 + 1)  # both unbalanced files, every window
    assert set(p.test_faults[p.test_labels == 1]) == {"unbalanced"}
    assert set(p.test_faults[p.test_labels == 0]) == {"normal"}
    # training files are cut into train | gap | validation only (80/20 by default)
    # (1200 - 64 gap) samples: 909 train -> 27 windows, 227 validation -> 6 windows, per file
    assert (len(p.train), len(p.val)) == (2 * 27, 2 * 6)
    assert "2 training recording(s) cut by time into train | gap | validation" in p.description


def test_layout_through_the_config_and_split_fractions(tmp_path):
    d = layout(tmp_path)
    inline = "{" + ", ".join(f'"{k}" = "{v}"' for k, v in d["file_labels"].items()) + "}"
    cfg = config.load(
        None,
        ["data.source=csv", f"data.train={d['train']!r}".replace("'", '"'),
         f"data.test={d['test']!r}".replace("'", '"'), f"data.file_labels={inline}", "data.val_fraction=0.4"],
    )  # fmt: skip
    assert cfg.data.file_labels == d["file_labels"] and cfg.data.val_fraction == 0.4
    p40 = prepare(cfg.data, 64, 32)
    p20 = prepare({**d, "val_fraction": 0.2}, 64, 32)
    assert len(p40.val) > len(p20.val) and len(p40.train) < len(p20.train)
    # data.paths with a test fraction: each file cut in three
    one = config.load(None, ["data.test_fraction=0.4"])
    assert one.data.test_fraction == 0.4


def test_bad_layouts_are_one_sentence(tmp_path):
    d = layout(tmp_path)
    with pytest.raises(UserError, match=r"data.paths and data.train/data.test are two layouts"):
        prepare({**d, "paths": d["train"]}, 64, 32)
    with pytest.raises(UserError, match=r"data.test needs data.train"):
        prepare({"source": "csv", "test": d["test"]}, 64, 32)
    bad = dict(d)
    bad["train"] = [*d["train"], d["test"][1]]  # an anomalous file among the training files
    with pytest.raises(
        UserError, match=r"u1.csv is labelled 'unbalanced', an anomaly, but it is a training file"
    ):
        prepare(bad, 64, 32)
    r = tmp_path / "recordings"
    unl = {**d, "file_labels": {f"{r}/unbalanced/*.csv": "unbalanced", f"{r}/normal/*.csv": "normal"}}
    with pytest.raises(UserError, match=r"run9.csv has no label while .*u1.csv has"):
        prepare(unl, 64, 32)
    clash = {**d, "file_labels": {**d["file_labels"], f"{tmp_path}/recordings/*/u1.csv": "normal"}}
    with pytest.raises(UserError, match=r"matches data.file_labels entries with different labels"):
        prepare(clash, 64, 32)
    with pytest.raises(UserError, match="should be a table of path = label"):
        config.load(None, ["data.file_labels=3"])
    with pytest.raises(UserError, match=r"data.val_fraction"):
        config.load(None, ["data.val_fraction=0.7", "data.test_fraction=0.4"])


# ---------------------------------------------------------------------------- label polarity
def test_label_meaning_is_said_or_printed():
    from tinyae.train.data.labels import label_meaning

    m = label_meaning(["0", "1", "1"], None, "x")
    assert not m.said and m.text.startswith("0 = normal, 1 = anomaly (assumed; set data.normal = 1")
    m1 = label_meaning(["0", "1.0"], ["1"], "x")
    assert m1.said and m1.is_normal("1.0") and not m1.is_normal("0")
    named = label_meaning(["Normal", "broken"], None, "x")
    assert named.is_normal("Normal") and "assumed from the class name" in named.text
    with pytest.raises(UserError, match=r"pass normal=.* naming the normal"):
        label_meaning(["ok", "broken"], None, "x")
    with pytest.raises(UserError, match=r"normal class 'fine' \(data.normal\) does not occur"):
        label_meaning(["ok", "broken"], ["fine"], "x")


def ecg_like(tmp_path: Path) -> Path:
    """TensorFlow's ECG tutorial convention: 1 = normal (most rows), 0 = anomalous."""
    n = 3000
    x = signal(n, 4)
    lab = np.ones(n, int)
    lab[2500:2700] = 0
    x[2500:2700, 0] += 2.0
    return _with_label(tmp_path / "ecg.csv", x, lab)


def _with_label(path: Path, x: np.ndarray, lab: np.ndarray) -> Path:
    rows = ["time,x,y,z,label"] + [
        f"{i * 0.01:.2f},{a:.6f},{b:.6f},{c:.6f},{lab[i]}" for i, (a, b, c) in enumerate(x)
    ]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_inverted_numeric_labels_are_caught_and_a_scalar_normal_fixes_them(tmp_path):
    p = ecg_like(tmp_path)
    with pytest.raises(UserError) as exc:
        prepare({"source": "csv", "paths": [str(p)]}, 64, 32)
    msg = str(exc.value)
    assert 'labelled anomalous under "0 = normal, 1 = anomaly (assumed' in msg and "set data.normal" in msg
    cfg = config.load(None, ["data.source=csv", f"data.paths=['{p}']", "data.normal=1"])
    assert cfg.data.normal == ["1"]
    prep = prepare(cfg.data, 64, 32)
    assert prep.dropped == (0, 0) and prep.test_labels is not None and prep.test_labels.sum() > 0


# ---------------------------------------------------------------------------- defaults
def test_one_set_of_defaults():
    assert config.load(None) == config.load(ROOT / "configs" / "default.toml")
    assert (config.load(None).window.length, config.load(None).window.hop) == (64, 32)


def test_a_file_holding_only_the_fault_class_is_fine_when_another_holds_the_normal_one(tmp_path):
    """The normal class must occur somewhere in the data, not in every file."""
    x = signal(100, 3)
    ok = tmp_path / "ok.csv"
    bad = tmp_path / "bad.csv"
    for p, cls in ((ok, "ok"), (bad, "fault")):
        rows = ["time,x,y,z,state"] + [
            f"{i * 0.01:.2f},{a:.5f},{b:.5f},{c:.5f},{cls}" for i, (a, b, c) in enumerate(x)
        ]
        p.write_text("\n".join(rows) + "\n")
    s_ok, s_bad = load_csv([ok, bad], label="state", normal="ok")
    assert not s_ok.labels.any() and s_bad.labels.all() and set(s_bad.classes) == {"fault"}
    with pytest.raises(UserError, match=r"normal class 'fine' \(data.normal\) does not occur"):
        load_csv([ok, bad], label="state", normal="fine")
