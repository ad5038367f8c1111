"""What the chosen threshold does in operation, in the user's units, per recording and per fault.

Computed on the int8 scores the device computes (`scores.npz`), window by window in each recording's
order, with the device's alarm rule: a window is *anomalous* when its score exceeds the threshold,
and the device raises an *alarm* on a window when at least k of the last n windows of that recording
were anomalous (manifest `decision`, train/preprocess.decisions). From that:

- a **false alarm** is a run of consecutive alarmed windows that touches no anomalous (labelled) window;
  its rate per hour is the count over the normal data's duration, one window per hop
  (windows × hop / sample rate), with the exact 95 % Poisson interval of that rate (a few events in a
  few minutes say little about a day);
- a **fault episode** is a run of consecutive anomalous (labelled) windows of one recording, named by
  its most frequent fault; it is *detected* when an alarm falls on one of its windows;
- the **detection delay** of an episode is at most (j - i + 1) × hop / rate: the device decides at the
  end of each window, window i is the first that contains the fault (which began within its last hop
  of samples) and window j the first alarmed one;
- the **confusion matrix** counts test windows by label and alarm.

The result is the manifest's `metrics.operation` (recomputed by `tinyae threshold`); the report's
summary sentences and tables are written from it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from tinyae.train.metrics import roc_auc
from tinyae.train.preprocess import decisions


@dataclass
class Split:
    """One split's windows in stream order, with their origins (train/data/splits.Origins)."""

    name: str  # "validation" | "test"
    scores: np.ndarray  # float32 [n]
    labels: np.ndarray | None  # int8 [n]; None: unlabelled (validation windows are all normal)
    faults: np.ndarray | None  # str [n]: the fault of each window ("normal" when label 0)
    recording: np.ndarray  # int [n]
    position: np.ndarray  # int [n]
    names: list[str]  # recording names


def splits_from_scores(scores: dict[str, np.ndarray]) -> list[Split]:
    """The validation and test splits as `scores.npz` stores them (older files: one recording each)."""
    out = []
    for key, name in (("val", "validation"), ("test", "test")):
        s = np.asarray(scores[f"{key}_scores"], np.float32)
        rec = scores.get(f"{key}_recording")
        if rec is None or len(rec) != len(s):
            rec, pos, names = np.zeros(len(s), np.int32), np.arange(len(s)), [f"{name} windows"]
        else:
            pos, names = scores[f"{key}_position"], [str(n) for n in scores[f"{key}_recordings"]]
        if key == "val":
            labels: np.ndarray | None = np.zeros(len(s), np.int8)
            faults = None
        else:
            lab = scores.get("test_labels")
            labels = lab if lab is not None and len(lab) == len(s) else None
            f = scores.get("test_faults")
            faults = f.astype(str) if f is not None and len(f) == len(s) else None
        out.append(Split(name, s, labels, faults, np.asarray(rec), np.asarray(pos), names))
    return out


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of each run of True in mask."""
    d = np.diff(np.r_[0, mask.astype(np.int8), 0])
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1), strict=True))


def _streams(split: Split) -> list[np.ndarray]:
    """Index arrays of consecutive windows (one recording, positions one apart), in stream order."""
    out = []
    for r in np.unique(split.recording):
        idx = np.flatnonzero(split.recording == r)
        idx = idx[np.argsort(split.position[idx], kind="stable")]
        breaks = np.flatnonzero(np.diff(split.position[idx]) != 1) + 1
        out += [part for part in np.split(idx, breaks) if len(part)]
    return out


def _poisson_cdf(k: int, lam: float) -> float:
    """P(X <= k) for X ~ Poisson(lam)."""
    term = total = math.exp(-lam)
    for i in range(1, k + 1):
        term *= lam / i
        total += term
    return total


def poisson_interval(k: int, alpha: float = 0.05) -> tuple[float, float]:
    """The exact (Garwood) 1 - alpha interval of a Poisson mean after observing k events."""

    def solve(f, lo: float, hi: float) -> float:  # type: ignore[no-untyped-def]
        """The root of f, which decreases in lam, by bisection to float precision."""
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if f(mid) > 0 else (lo, mid)
        return 0.5 * (lo + hi)

    top = 10.0 * (k + 10)
    upper = solve(lambda lam: _poisson_cdf(k, lam) - alpha / 2, 0.0, top)
    lower = 0.0 if k == 0 else solve(lambda lam: _poisson_cdf(k - 1, lam) - (1 - alpha / 2), 0.0, top)
    return lower, upper


def _per_hour(count: int, hours: float) -> float | None:
    return count / hours if hours > 0 else None


def _false_alarms(alarm: np.ndarray, anomalous: np.ndarray) -> int:
    """Runs of consecutive alarms that touch no anomalous window."""
    return sum(1 for a, b in _runs(alarm) if not anomalous[a:b].any())


def evaluate_split(split: Split, threshold: float, k: int, n: int, hop_s: float) -> dict[str, Any]:
    """Per-window decisions, false alarms and fault episodes of one split (see the module docstring)."""
    alarm = np.zeros(len(split.scores), bool)
    anomalous = np.zeros(len(split.scores), bool) if split.labels is None else split.labels.astype(bool)
    rows: dict[int, dict[str, Any]] = {}
    episodes: list[dict[str, Any]] = []
    for idx in _streams(split):
        _, al = decisions(split.scores[idx], threshold, k, n)
        alarm[idx] = al
        an = anomalous[idx]
        r = int(split.recording[idx[0]])
        row = rows.setdefault(r, {"windows": 0, "normal": 0, "anomalous": 0, "false_alarm_windows": 0,
                                  "false_alarms": 0, "caught_windows": 0, "episodes": 0, "detected": 0})  # fmt: skip
        row["windows"] += len(idx)
        row["normal"] += int((~an).sum())
        row["anomalous"] += int(an.sum())
        row["false_alarm_windows"] += int((al & ~an).sum())
        row["false_alarms"] += _false_alarms(al, an)
        row["caught_windows"] += int((al & an).sum())
        for a, b in _runs(an):
            hit = np.flatnonzero(al[a:b])
            names = split.faults[idx[a:b]] if split.faults is not None else np.array(["anomalous"])
            kinds, counts = np.unique(names[names != "normal"] if (names != "normal").any() else names,
                                      return_counts=True)  # fmt: skip
            episodes.append({
                "recording": r, "fault": str(kinds[np.argmax(counts)]), "windows": b - a,
                "delay_windows": int(hit[0] + 1) if len(hit) else None,
            })  # fmt: skip
            row["episodes"] += 1
            row["detected"] += int(len(hit) > 0)
    return {"alarm": alarm, "anomalous": anomalous, "rows": rows, "episodes": episodes}


def _rate(count: int, of: int) -> float | None:
    return count / of if of else None


def _hours(windows: int, hop_s: float) -> float:
    return windows * hop_s / 3600.0


def _normal_figures(normal_windows: int, fa_windows: int, fa_events: int, hop_s: float) -> dict[str, Any]:
    hours = _hours(normal_windows, hop_s)
    per_hour = _per_hour(fa_events, hours)
    return {
        "normal_windows": normal_windows,
        "hours": hours if hop_s > 0 else None,
        "false_alarm_windows": fa_windows,
        "false_alarm_rate": _rate(fa_windows, normal_windows),
        "false_alarms": fa_events,
        "false_alarms_per_hour": per_hour,
        "false_alarms_per_day": None if per_hour is None else 24 * per_hour,
        "per_hour_95": [v / hours for v in poisson_interval(fa_events)] if hours > 0 else None,
    }


def operation(
    scores: dict[str, np.ndarray],
    *,
    threshold: float,
    k: int,
    n: int,
    sample_rate_hz: float,
    hop: int,
    length: int,
) -> dict[str, Any]:
    """The manifest's `metrics.operation` (see the module docstring)."""
    hop_s = hop / sample_rate_hz if sample_rate_hz else 0.0
    out: dict[str, Any] = {
        "threshold": float(threshold),
        "alarm_rule": {"k": int(k), "n": int(n)},
        "sample_rate_hz": float(sample_rate_hz or 0.0),
        "hop_s": hop_s or None,
        "window_s": (length / sample_rate_hz) if sample_rate_hz else None,
        "decisions_per_hour": (3600.0 / hop_s) if hop_s else None,
        "recordings": [],
    }
    for split in splits_from_scores(scores):
        ev = evaluate_split(split, threshold, k, n, hop_s)
        an, al = ev["anomalous"], ev["alarm"]
        rows = ev["rows"]
        key = "validation" if split.name == "validation" else "test"
        fa_events = sum(r["false_alarms"] for r in rows.values())
        fig = _normal_figures(int((~an).sum()), int((al & ~an).sum()), fa_events, hop_s)
        fig["windows"] = len(split.scores)
        fig["labelled"] = split.labels is not None
        out[key] = fig
        for r, row in sorted(rows.items()):
            hours = _hours(row["normal"], hop_s)
            out["recordings"].append({
                "split": split.name, "recording": split.names[r], "labelled": split.labels is not None, **row,
                "false_alarm_rate": _rate(row["false_alarm_windows"], row["normal"]),
                "false_alarms_per_hour": _per_hour(row["false_alarms"], hours) if row["normal"] else None,
                "caught_rate": _rate(row["caught_windows"], row["anomalous"]),
            })  # fmt: skip
        if split.name == "test" and split.labels is not None and an.any() and (~an).any():
            out["confusion"] = {
                "tp": int((al & an).sum()), "fn": int((~al & an).sum()),
                "fp": int((al & ~an).sum()), "tn": int((~al & ~an).sum()),
            }  # fmt: skip
            out["faults"] = _by_fault(split, ev, hop_s)
            out["test"]["anomalous_windows"] = int(an.sum())
            out["test"]["caught_windows"] = int((al & an).sum())
            out["test"]["caught_rate"] = _rate(int((al & an).sum()), int(an.sum()))
            eps = ev["episodes"]
            out["test"]["episodes"] = len(eps)
            delays = [e["delay_windows"] for e in eps if e["delay_windows"] is not None]
            out["test"]["episodes_detected"] = len(delays)
            out["test"]["delay"] = _delays(delays, hop_s)
    return out


def _delays(windows: list[int], hop_s: float) -> dict[str, Any] | None:
    """Detection delays (at most, see the module docstring) in windows and, with a sample rate, seconds."""
    if not windows:
        return None
    w = np.asarray(windows, np.float64)
    out: dict[str, Any] = {"median_windows": float(np.median(w)), "max_windows": int(w.max())}
    if hop_s:
        out.update(median_s=float(np.median(w)) * hop_s, max_s=float(w.max()) * hop_s)
    return out


def _by_fault(split: Split, ev: dict[str, Any], hop_s: float) -> list[dict[str, Any]]:
    """Per fault: windows caught, episodes detected, delays, ROC AUC against every normal test window."""
    an, al = ev["anomalous"], ev["alarm"]
    faults = split.faults if split.faults is not None else np.where(an, "anomalous", "normal")
    out = []
    for name in sorted({str(f) for f in faults[an]}):
        sel = an & (faults == name)
        eps = [e for e in ev["episodes"] if e["fault"] == name]
        delays = [e["delay_windows"] for e in eps if e["delay_windows"] is not None]
        auc_sel = ~an | sel
        out.append({
            "fault": name, "windows": int(sel.sum()), "caught_windows": int((al & sel).sum()),
            "caught_rate": _rate(int((al & sel).sum()), int(sel.sum())),
            "episodes": len(eps), "episodes_detected": len(delays), "delay": _delays(delays, hop_s),
            "roc_auc": round(roc_auc(an[auc_sel], split.scores[auc_sel]), 4) if (~an).any() else None,
        })  # fmt: skip
    return out
