"""Threshold calibration on the int8 scores the device will compute."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from tinyae.errors import UserError
from tinyae.train.config import ThresholdConfig
from tinyae.train.metrics import at_threshold

MIN_TAIL_WINDOWS = 5  # normal windows beyond a percentile before it stops being "the maximum of a few"
MIN_MEAN_STD_WINDOWS = 30


@dataclass
class Threshold:
    value: float
    method: str
    params: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"value": self.value, "method": self.method, "params": self.params, "warnings": self.warnings}


def small_set_warning(
    method: str, n: int, percentile: float = 99.5, k_std: float = 3.0, fpr: float = 0.0
) -> str:
    """A sentence when n normal validation windows are too few for the method (empty when enough)."""
    if method in ("percentile", "target_fpr"):
        tail = n * (1 - percentile / 100) if method == "percentile" else n * fpr
        what = (
            f"the {percentile:g}th percentile" if method == "percentile" else f"a false-alarm rate of {fpr:g}"
        )
        if tail < MIN_TAIL_WINDOWS:
            share = 1 - percentile / 100 if method == "percentile" else fpr
            need = math.ceil(MIN_TAIL_WINDOWS / max(share, 1e-12))
            return (
                f"only {n} normal validation windows: {tail:.2g} of them lie beyond {what}, so the highest "
                f"one or two set the threshold (about {need} "
                f"windows would put {MIN_TAIL_WINDOWS} beyond it); "
                "use more normal data or method mean_std, or move the threshold later with "
                "`tinyae threshold`"
            )
    if method == "mean_std" and n < MIN_MEAN_STD_WINDOWS:
        return f"only {n} normal validation windows for mean + {k_std:g} std; the estimate is rough"
    return ""


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
    elif cfg.method == "target_fpr":
        # the lowest threshold with at most floor(fpr * n) normal windows above it
        allowed = math.floor(cfg.target_fpr * len(s))
        value = float(np.sort(s)[len(s) - 1 - min(allowed, len(s) - 1)])
        params = {"target_fpr": cfg.target_fpr, "windows": len(s), "windows_above": allowed}
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
    if not (math.isfinite(value) and abs(value) <= float(np.finfo(np.float32).max)):
        raise UserError(
            f"the {cfg.method} threshold comes to {value:g}, which the device's float32 cannot hold "
            f"({', '.join(f'{k} {v:g}' for k, v in params.items())}); lower threshold.factor or threshold.k_std"
        )
    warn = small_set_warning(cfg.method, len(s), cfg.percentile, cfg.k_std, cfg.target_fpr)
    return Threshold(
        value=float(np.float32(value)), method=cfg.method, params=params, warnings=[warn] if warn else []
    )
