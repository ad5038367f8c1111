"""Threshold calibration on the int8 scores the device will compute."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from train.config import ThresholdConfig
from train.errors import UserError
from train.metrics import at_threshold


@dataclass
class Threshold:
    value: float
    method: str
    params: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"value": self.value, "method": self.method, "params": self.params}


def calibrate(
    cfg: ThresholdConfig,
    normal_scores: np.ndarray,
    labelled_scores: np.ndarray | None = None,
    labels: np.ndarray | None = None,
) -> Threshold:
    """percentile / mean_std use normal validation scores, times cfg.factor (an upper control limit
    with a margin above the normal scores); best_f1 needs labelled windows."""
    s = np.asarray(normal_scores, np.float64)
    if len(s) == 0:
        raise UserError(
            "no normal validation windows to calibrate the threshold on; provide more normal data"
        )
    if cfg.method == "percentile":
        value = float(np.percentile(s, cfg.percentile)) * cfg.factor
        params = {"percentile": cfg.percentile, "factor": cfg.factor, "windows": len(s)}
    elif cfg.method == "mean_std":
        value = float(s.mean() + cfg.k_std * s.std()) * cfg.factor
        params = {
            "k_std": cfg.k_std, "factor": cfg.factor, "mean": float(s.mean()), "std": float(s.std()),
            "windows": len(s),
        }  # fmt: skip
    else:
        if labels is None or labelled_scores is None or not np.any(labels) or np.all(labels):
            raise UserError(
                "threshold.method = best_f1 needs labelled normal and anomalous windows; "
                "give the data a label column or use method percentile"
            )
        cand = np.unique(np.asarray(labelled_scores, np.float32))
        f1 = [at_threshold(labels, labelled_scores > c)["f1"] for c in cand]
        best = int(np.argmax(f1))
        value = float(cand[best])
        params = {"f1": float(f1[best]), "windows": len(cand)}
    return Threshold(value=float(np.float32(value)), method=cfg.method, params=params)
