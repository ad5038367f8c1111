"""Detection metrics without extra dependencies: ROC AUC, PR AUC (average precision), F1 at a threshold."""

from __future__ import annotations

import numpy as np


def _ranked(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(labels by decreasing score, index of the last window of each distinct score, true positives there)."""
    order = np.argsort(-np.asarray(scores, np.float64), kind="mergesort")
    y = np.asarray(labels, bool)[order]
    s = np.asarray(scores, np.float64)[order]
    distinct = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]
    return y, distinct, np.cumsum(y)[distinct]


def roc_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    _, distinct, tps = _ranked(labels, scores)
    fps = (distinct + 1) - tps
    tpr = np.r_[0.0, tps / max(tps[-1], 1)]
    fpr = np.r_[0.0, fps / max(fps[-1], 1)]
    return fpr, tpr


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Probability that an anomalous window scores above a normal one (ties count half)."""
    y = np.asarray(labels, bool)
    s = np.asarray(scores, np.float64)
    pos, neg = s[y], s[~y]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    ranks = _average_ranks(np.r_[pos, neg])
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def _average_ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), np.float64)
    sx = x[order]
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and sx[j + 1] == sx[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def pr_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y, distinct, tps = _ranked(labels, scores)
    precision = tps / (distinct + 1)
    recall = tps / max(y.sum(), 1)
    return np.r_[recall], np.r_[precision]


def pr_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Average precision: sum over thresholds of (R_k - R_{k-1}) * P_k."""
    y = np.asarray(labels, bool)
    if y.sum() == 0:
        return float("nan")
    recall, precision = pr_curve(y, scores)
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def at_threshold(labels: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    y = np.asarray(labels, bool)
    p = np.asarray(predicted, bool)
    tp = int(np.sum(y & p))
    fp = int(np.sum(~y & p))
    fn = int(np.sum(y & ~p))
    tn = int(np.sum(~y & ~p))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "tp": tp, "fp": fp, "fn": fn, "tn": tn}


def f1_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(thresholds, F1 of `score > threshold`) for every threshold that gives another decision: each
    distinct score (the windows above it flagged) and one just below the lowest (every window flagged)."""
    s = np.asarray(scores, np.float32)
    y = np.asarray(labels, bool)
    if len(s) == 0:
        return np.zeros(0, np.float32), np.zeros(0)
    order = np.argsort(-s, kind="mergesort")
    ys, ss = y[order], s[order]
    last = np.r_[np.nonzero(np.diff(ss))[0], len(ss) - 1]  # last index of each distinct score
    tp = np.cumsum(ys)[last]  # windows scoring >= that score
    flagged = last + 1
    # `score > c` flags the windows above c: those of the higher distinct scores
    tp_above = np.r_[0, tp[:-1]]
    flagged_above = np.r_[0, flagged[:-1]]
    thresholds = np.r_[ss[last], np.nextafter(ss[-1], np.float32(-np.inf))].astype(np.float32)
    tp_all = np.r_[tp_above, tp[-1]]
    fl_all = np.r_[flagged_above, flagged[-1]]
    pos = y.sum()
    f1 = 2 * tp_all / np.maximum(fl_all + pos, 1)
    return thresholds, f1


def summary(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    s = np.asarray(scores, np.float32)
    out = {"roc_auc": roc_auc(labels, s), "pr_auc": pr_auc(labels, s)}
    out.update(at_threshold(labels, s > np.float32(threshold)))
    return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in out.items()}
