"""What the training run says about its data, in sentences: the channels and why, the sample rate and
where it came from, what the labels mean, the split and what each part holds, and why a metric is
missing. The same sentences go to the terminal, the manifest and the report."""

from __future__ import annotations

import numpy as np

from tinyae.train.data.timestamps import fmt_hz


def channels_line(data: dict) -> str:
    names = ", ".join(data["channels"])
    line = f"channels: {names} ({data['channels_selected_by']}"
    left = data.get("left_out") or {}
    if left:
        line += "; left out: " + "; ".join(f"'{k}', {v}" for k, v in left.items())
    ts = (data.get("timestamp") or {}).get("column")
    lab = (data.get("label") or {}).get("column")
    if ts:
        line += f"; timestamp '{ts}'"
    if lab:
        line += f"; label '{lab}'"
    return line + ")"


def rate_line(data: dict) -> str:
    hz = data.get("sample_rate_hz") or 0.0
    if not hz:
        return f"sample rate: none ({data['sample_rate_origin']})"
    line = f"sample rate: {fmt_hz(hz)} from {data['sample_rate_origin']}"
    if data.get("jitter"):
        line += f", step jitter {100 * data['jitter']:.2g} %"
    return line


def labels_line(data: dict) -> str:
    label = data.get("label")
    if not label:
        return ""
    by_source = {
        "edgeimpulse": "the files' info.labels or names, or data.file_labels",
        "ucr": "the class of each case",
        "basicmotions": "the class of each case",
        "synthetic": "the generator",
    }
    if label.get("column"):
        where = f"column '{label['column']}'"
    elif data.get("file_labels"):
        where = "data.file_labels"
    else:
        where = by_source.get(str(data.get("source")), "the data set")
    return f"labels ({where}): {label['meaning']}"


def split_line(prep, labels: np.ndarray | None) -> str:  # type: ignore[no-untyped-def]
    d_train, d_val = prep.dropped
    train = f"train {len(prep.train)} windows (normal only"
    train += f"; {d_train} with anomalous samples left out)" if d_train else ")"
    val = f"validation {len(prep.val)}" + (f" ({d_val} anomalous left out)" if d_val else "")
    if labels is None:
        test = f"test {len(prep.test)} (unlabelled)"
    else:
        n_an = int(labels.sum())
        test = f"test {len(prep.test)} ({len(labels) - n_an} normal, {n_an} anomalous)"
    return f"split: {prep.description}: {train}, {val}, {test}"


def missing_metrics_reason(labels: np.ndarray | None, n_test: int) -> str:
    """Why the detection metrics (ROC/PR AUC, F1, precision, recall) cannot be computed ("" if they can)."""
    if n_test == 0:
        return "there is no test window; give test recordings (data.test) or a larger data.test_fraction"
    if labels is None:
        return "the test data have no labels; add a label column or data.file_labels"
    n_an = int(np.sum(labels))
    if n_an == 0:
        return (
            f"all {n_test} test windows are normal; the metrics need anomalous test windows too "
            "(faulty recordings in data.test, labelled)"
        )
    if n_an == len(labels):
        return (
            f"all {n_test} test windows are anomalous; the metrics need normal test windows too "
            "(with data.paths the test part is the end of each recording: give normal and faulty "
            "recordings in data.test instead)"
        )
    return ""
