"""Detection quality: ROC AUC, PR AUC, F1/precision/recall at the calibrated threshold, float and int8.

The figures are the pipeline's own (manifest `metrics`, computed on the test split by tinyae.train.metrics);
the bench collects them per data set, checks that repeated runs give the same digits and adds the
false-alarm rate of data sets without anomalies (the share of streamed test windows the int8 model
flags, from the host reference's decisions in test_vectors.npz).
"""

from __future__ import annotations

import math

import numpy as np

from tinyae.tools.bench.models import TrainedModel

KEYS = ("roc_auc", "pr_auc", "f1", "precision", "recall")
REPORT_DIGITS = 4  # digits in RESULTS.md when repeated runs agree on them


def figures(m: TrainedModel) -> dict:
    man = m.manifest
    metrics = man["metrics"]
    out: dict = {
        "command": m.command,
        "note": m.spec.note,
        "config_overrides": list(m.spec.overrides),
        "windows": metrics["windows"],
        "shape": m.shape,
        "threshold": {
            "value": man["threshold"]["value"],
            "method": man["threshold"]["method"],
            "params": man["threshold"].get("params", {}),
        },
        "val_false_alarm_rate_int8": metrics.get("val_false_alarm_rate_int8"),
    }
    for kind in ("float", "int8"):
        if kind in metrics:
            out[kind] = {k: metrics[kind][k] for k in (*KEYS, "tp", "fp", "fn", "tn")}
    vec = np.load(m.dir / "test_vectors.npz")
    labels = vec["labels"]
    anomaly = vec["anomaly"].astype(bool)
    if len(labels) == 0 or not labels.any():
        out["test_false_alarm_rate_int8"] = float(anomaly.mean()) if len(anomaly) else float("nan")
        out["test_windows_streamed"] = len(anomaly)
    if "int8_by_fault" in metrics:
        out["int8_roc_auc_by_fault"] = metrics["int8_by_fault"]
    return out


def agreeing_digits(values: list[float]) -> int:
    """How many decimal places every value agrees on (6, the pipeline's rounding, when all equal)."""
    finite = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if len(finite) < 2:
        return 6
    for d in range(6, -1, -1):
        if len({round(v, d) for v in finite}) == 1:
            return d
    return 0


def reproducibility(runs: list[dict]) -> dict:
    """Compare the quality figures of repeated identical runs: identical, or to how many digits."""
    per_key: dict[str, int] = {}
    for kind in ("float", "int8"):
        if kind not in runs[0]:
            continue
        for key in KEYS:
            per_key[f"{kind}.{key}"] = agreeing_digits([r[kind][key] for r in runs])
    per_key["threshold"] = agreeing_digits([r["threshold"]["value"] * 1e3 for r in runs])  # in 1e-3 units
    identical = all(
        {k: r.get(k) for k in ("float", "int8", "threshold")}
        == {k: runs[0].get(k) for k in ("float", "int8", "threshold")}
        for r in runs
    )
    digits = min(per_key.values()) if per_key else 6
    return {
        "runs": len(runs),
        "identical": identical,
        "agreeing_digits": per_key,
        "report_digits": min(REPORT_DIGITS, digits),
    }
