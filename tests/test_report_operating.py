"""Issue 26: what the chosen threshold does in operation (train/operating.py), counted by hand on small
streams, and the summary sentences written from it (train/findings.py)."""

from __future__ import annotations

import numpy as np
import pytest

from tinyae.train.findings import advice, count, findings, pct, short_names
from tinyae.train.operating import operation, poisson_interval


def scores_of(
    val: list[list[float]], test: list[list[float]], labels: list[list[int]], faults: list[list[str]]
):  # type: ignore[no-untyped-def]
    """scores.npz as training writes it, from per-recording lists."""
    out = {}
    for key, recs in (("val", val), ("test", test)):
        s = np.concatenate([np.asarray(r, np.float32) for r in recs]) if recs else np.zeros(0, np.float32)
        out[f"{key}_scores"] = s
        out[f"{key}_float_scores"] = s
        out[f"{key}_recording"] = np.concatenate([np.full(len(r), i, np.int32) for i, r in enumerate(recs)])
        out[f"{key}_position"] = np.concatenate([np.arange(len(r), dtype=np.int32) for r in recs])
        out[f"{key}_recordings"] = np.asarray([f"data/{key}/run{i}.csv" for i in range(len(recs))], str)
    out["test_labels"] = np.concatenate([np.asarray(r, np.int8) for r in labels])
    out["test_faults"] = np.concatenate([np.asarray(f, str) for f in faults])
    return out


LO, HI = 0.1, 2.0  # below and above the threshold 1.0


def test_false_alarms_are_runs_of_alarms_on_normal_windows_counted_per_hour_of_normal_data():
    val = [[LO, HI, HI, LO, LO, HI, LO, LO, LO, LO]]  # 3 windows above, 2 runs -> 2 false alarms
    test = [[LO, LO, HI, HI, HI, LO, HI, LO]]  # an episode (windows 2-4) and a false alarm (window 6)
    labels = [[0, 0, 1, 1, 1, 0, 0, 0]]
    faults = [["normal", "normal", "bearing", "bearing", "bearing", "normal", "normal", "normal"]]
    op = operation(scores_of(val, test, labels, faults), threshold=1.0, k=1, n=1, sample_rate_hz=100.0, hop=50,
                   length=100)  # fmt: skip
    assert op["hop_s"] == 0.5 and op["decisions_per_hour"] == 7200
    v = op["validation"]
    assert (v["false_alarm_windows"], v["false_alarms"], v["normal_windows"]) == (3, 2, 10)
    assert v["false_alarms_per_hour"] == pytest.approx(2 / (10 * 0.5 / 3600))
    assert v["false_alarms_per_day"] == pytest.approx(24 * v["false_alarms_per_hour"])
    lo, hi = v["per_hour_95"]
    assert lo < v["false_alarms_per_hour"] < hi
    t = op["test"]
    assert (t["false_alarm_windows"], t["false_alarms"], t["caught_windows"], t["anomalous_windows"]) == (
        1,
        1,
        3,
        3,
    )
    assert op["confusion"] == {"tp": 3, "fn": 0, "fp": 1, "tn": 4}
    (fault,) = op["faults"]
    assert fault["fault"] == "bearing" and fault["episodes"] == 1 and fault["episodes_detected"] == 1
    assert (
        fault["delay"]["max_windows"] == 1 and fault["delay"]["max_s"] == 0.5
    )  # alarmed on its first window


def test_the_alarm_rule_k_of_n_delays_detection_and_merges_alarms():
    test = [[LO, LO, HI, HI, HI, HI, LO, LO, HI, LO]]
    labels = [[0, 0, 1, 1, 1, 1, 0, 0, 0, 0]]
    faults = [["normal"] * 2 + ["drift"] * 4 + ["normal"] * 4]
    s = scores_of([[LO] * 5], test, labels, faults)
    op = operation(s, threshold=1.0, k=2, n=3, sample_rate_hz=10.0, hop=5, length=10)
    # alarms (2 of the last 3 above): windows 3, 4, 5, 6 (6: windows 4 and 5 still in the history), 9 no
    assert op["confusion"] == {"tp": 3, "fn": 1, "fp": 1, "tn": 5}
    # the alarm on window 6 continues the fault's alarm: not a false alarm; window 8 alone gives no alarm
    assert op["test"]["false_alarms"] == 0 and op["test"]["false_alarm_windows"] == 1
    (d,) = op["faults"]
    assert d["delay"]["max_windows"] == 2 and d["delay"]["max_s"] == pytest.approx(1.0)  # window 3 of 2..5


def test_recordings_restart_the_alarm_history_and_are_tabled_one_by_one():
    test = [[HI, LO, LO] * 4, [LO] * 12, [HI] * 12]
    labels = [[0] * 12, [0] * 12, [1] * 12]
    faults = [["normal"] * 12, ["normal"] * 12, ["unbalanced"] * 12]
    op = operation(scores_of([[LO] * 12, [HI, LO, LO, LO] * 3], test, labels, faults), threshold=1.0, k=1, n=1,
                   sample_rate_hz=100.0, hop=32, length=64)  # fmt: skip
    rows = {(r["split"], r["recording"]): r for r in op["recordings"]}
    assert len(rows) == 5
    assert rows["test", "data/test/run0.csv"]["false_alarms"] == 4  # each run starts a new history
    assert rows["test", "data/test/run1.csv"]["false_alarms"] == 0
    assert rows["test", "data/test/run2.csv"]["caught_rate"] == 1.0
    assert rows["validation", "data/val/run1.csv"]["false_alarm_rate"] == 0.25
    # 2 of 2: the last window of one recording and the first of the next are no pair
    two = operation(scores_of([[LO] * 2], [[LO, HI], [HI, LO]], [[0, 0], [0, 0]], [["normal"] * 2] * 2),
                    threshold=1.0, k=2, n=2, sample_rate_hz=100.0, hop=32, length=64)  # fmt: skip
    assert two["test"]["false_alarm_windows"] == 0
    sentences = findings(_manifest(op))
    weakest = dict(sentences)["Weakest recording"]
    assert "test/run0.csv" in weakest and "33 %" in weakest  # the recording with the most false alarms


def _manifest(op: dict) -> dict:
    return {
        "threshold": {"value": 1.0, "method": "percentile", "params": {}},
        "window": {"length": 64, "hop": 32, "channels": 3},
        "frontend": {"kinds": ["raw"]},
        "metrics": {
            "windows": {"train": 100, "val": 8, "test": 9},
            "operation": op,
            "int8": {"roc_auc": 0.97},
        },
    }


def test_every_summary_sentence_names_its_split_and_advice_follows_the_figures():
    test = [[HI, LO, LO, LO] * 10, [HI, HI, LO, HI] * 10]
    labels = [[0] * 40, [1] * 40]
    faults = [["normal"] * 40, ["bearing"] * 40]
    op = operation(scores_of([[LO] * 40], test, labels, faults), threshold=1.0, k=1, n=1, sample_rate_hz=100.0,
                   hop=32, length=64)  # fmt: skip
    found = findings(_manifest(op))
    for topic, text in found:
        assert "validation split" in text.lower() or "test split" in text.lower(), (topic, text)
    topics = [t for t, _ in found]
    assert topics[0] == "Separation" and "False alarms" in topics and "Detection delay" in topics
    tips = " ".join(advice(_manifest(op)))
    assert "tinyae threshold" in tips  # few validation windows, many false alarms a day
    assert "data.train" in tips  # the held-out normal recording alarms on 25 % of its windows
    assert "spectral" in tips and "tinyae search" in tips  # bearing caught on 75 % of its windows


def test_numbers_read_as_a_person_writes_them():
    assert [pct(v) for v in (0.0054, 0.15, 1.0, 0.9996)] == ["0.54 %", "15 %", "100 %", "99.96 %"]
    assert [count(v) for v in (1452.0, 60.48, 2.5, 0.031)] == ["1,500", "60", "2.5", "0.031"]
    assert short_names(["/a/rec/normal/run1.csv[val 1:2]", "/a/rec/test/run4.csv"]) == [
        "normal/run1.csv [val 1:2]",
        "test/run4.csv",
    ]
    assert short_names(["synthetic(seed=0):val"]) == ["synthetic(seed=0):val"]


def test_poisson_interval_is_the_exact_one():
    assert poisson_interval(0)[1] == pytest.approx(3.6889, abs=1e-4)
    assert poisson_interval(1) == pytest.approx((0.0253, 5.5716), abs=1e-4)
    assert poisson_interval(5) == pytest.approx((1.6235, 11.6683), abs=1e-4)


def test_unlabelled_test_recordings_count_alarms_not_false_alarms():
    s = {
        "val_scores": np.array([LO, LO, LO, HI], np.float32),
        "test_scores": np.array([LO, HI, HI, LO], np.float32),
        "test_labels": np.zeros(0, np.int8),  # no labels, as scores.npz stores it
    }
    op = operation(s, threshold=1.0, k=1, n=1, sample_rate_hz=100.0, hop=32, length=64)
    assert [r["labelled"] for r in op["recordings"]] == [True, False] and "confusion" not in op
    m = _manifest(op)
    m["metrics"].pop("int8")
    m["metrics"]["missing_reason"] = "the test data have no labels; add a label column or data.file_labels"
    text = " ".join(s for _, s in findings(m))
    assert "Test split (" not in text  # no false-alarm sentence from windows nobody labelled
    assert "not measured" in text and "data.test" in text
    from tinyae.train.report import _recordings

    assert "unlabelled" in _recordings(op) and "2 alarmed" in _recordings(op)


def test_no_false_alarm_anywhere_is_said_with_its_bound_and_no_recording_is_singled_out():
    test = [[LO] * 12, [LO] * 12, [HI] * 12]
    labels = [[0] * 12, [0] * 12, [1] * 12]
    faults = [["normal"] * 12, ["normal"] * 12, ["unbalanced"] * 12]
    op = operation(scores_of([[LO] * 12, [LO] * 12], test, labels, faults), threshold=1.0, k=1, n=1,
                   sample_rate_hz=100.0, hop=32, length=64)  # fmt: skip
    said = dict(findings(_manifest(op)))
    assert "Weakest recording" not in said  # none at 0 % is named as the one with the most false alarms
    assert said["Recordings"].startswith(
        "Validation and test splits: no false alarm in any of the 4 recordings"
    )
    # zero false alarms in seconds of data is a bound, per hour and per day, not a promise of none
    assert (
        "no false alarm; from that much data, fewer than" in said["False alarms"]
        and " a day" in said["False alarms"]
    )
    tips = " ".join(advice(_manifest(op)))
    assert "Validation split: no false alarm in" in tips and "of normal operation (data.train)" in tips


def test_the_terminal_summary_gives_a_bound_when_no_false_alarm_was_seen():
    from tinyae.train.pipeline import _operation_rows

    rows = dict(_operation_rows({
        "validation": {"normal_windows": 51, "false_alarms_per_day": 0.0, "false_alarms": 0,
                       "per_hour_95": [0.0, 810.0]},
        "test": {"normal_windows": 45, "false_alarms_per_day": 48.0, "false_alarms": 2, "per_hour_95": [1.0, 9.0]},
    }))  # fmt: skip
    assert rows["false alarms (val)"] == "< 19,000 a day (0 in 51 normal windows)"  # not "0 a day"
    assert rows["false alarms (test)"] == "48 a day (2 in 45 normal windows)"
