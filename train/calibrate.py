"""Threshold calibration on the int8 scores the device will compute.

Label-free methods (each computes one number from the scores of normal windows; `threshold.scores` says
which: the held-out validation windows, or the training windows too):

- percentile: the p-th percentile, times `factor`;
- mean_std: mean + k_std x standard deviation, times `factor`;
- mad: median + k_mad x 1.4826 x the median absolute deviation (a robust standard deviation), times
  `factor`;
- upper_mad: median + k_upper_mad x 1.4826 x the upper MAD, the median of the deviations above the
  median, times `factor`. Reconstruction scores are skewed to the right (bounded by 0 below, a long tail
  above), so the symmetric MAD, half of it measured on the compressed lower side, understates the spread
  the threshold has to clear; the upper MAD measures it on the side that matters ("double MAD");
- pot: peaks over threshold (extreme-value theory): a generalized Pareto distribution fitted (maximum
  likelihood, scipy.stats.genpareto) to the excesses over the `pot_quantile` quantile, and the threshold
  the score the fitted tail exceeds with probability `pot_risk`, times `factor`;
- target_fpr: the lowest threshold with at most that share of the normal windows above it.

best_f1 chooses the threshold with the best F1 on labelled test windows: an oracle, for studies, never a
figure of merit. The default is the method the threshold study chose (bench/RESULTS.md, "Threshold"):
DEFAULT_REASON says why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from tinyae import f32
from tinyae.errors import UserError
from tinyae.train.config import ThresholdConfig
from tinyae.train.metrics import f1_curve

MIN_TAIL_WINDOWS = 5  # normal windows beyond a percentile before it stops being "the maximum of a few"
MIN_MEAN_STD_WINDOWS = 30
MIN_POT_EXCESSES = 10  # excesses a generalized Pareto fit needs at the very least
MAD_TO_STD = 1.4826  # 1 / Phi^-1(3/4): the MAD of a normal distribution times this is its std

#: Why the default [threshold] is what it is (quoted in the manifest of a model trained with it).
DEFAULT_REASON = (
    "tinyae's default: the one-sided robust limit (median + 4 upper MADs of the validation windows' "
    "scores) that the threshold study found closest to the best threshold in the worst case over its "
    'labelled data sets, and when each data set is left out of the choice (bench/RESULTS.md, "Threshold")'
)


@dataclass
class Threshold:
    value: float
    method: str
    params: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    reason: str = ""

    def to_dict(self) -> dict:
        return {
            "value": self.value,
            "method": self.method,
            "params": self.params,
            "warnings": self.warnings,
            "reason": self.reason,
        }


def reason_for(cfg: ThresholdConfig) -> str:
    """Why this [threshold] ran: the default's reason, or the config's choice."""
    if cfg == ThresholdConfig():
        return DEFAULT_REASON
    return f"set in the experiment config ([threshold] method = {cfg.method!r}), not tinyae's default"


def small_set_warning(
    method: str, n: int, percentile: float = 99.5, k_std: float = 3.0, fpr: float = 0.0
) -> str:
    """A sentence when n normal windows are too few for the method (empty when enough)."""
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
    if method in ("mean_std", "mad", "upper_mad") and n < MIN_MEAN_STD_WINDOWS:
        what = {"mean_std": f"mean + {k_std:g} std", "mad": "median + k x MAD"}.get(
            method, "median + k x upper MAD"
        )
        return f"only {n} normal windows for {what}; the estimate is rough"
    return ""


def normal_scores(
    cfg: ThresholdConfig, val_scores: np.ndarray, train_scores: np.ndarray | None
) -> np.ndarray:
    """The normal scores `cfg.scores` names (float64): the validation windows', and with
    'training+validation' the training windows' before them. A caller without training windows passes
    train_scores=None and gets the validation scores alone (the threshold's params then say so);
    `tinyae model` always has them and `tinyae threshold` refuses a scores.npz without them."""
    val = np.asarray(val_scores, np.float64)
    if cfg.scores == "validation" or train_scores is None:
        return val
    return np.r_[np.asarray(train_scores, np.float64), val]


def median_spread(s: np.ndarray, *, upper: bool) -> tuple[float, float]:
    """(median, MAD) of s; with `upper`, the MAD of the deviations above the median only. A spread of 0
    (more than half the windows score the same, or none above the median) would put the threshold at the
    median, alarming on up to half the normal windows: refused."""
    med = float(np.median(s))
    dev = s[s > med] - med if upper else np.abs(s - med)
    mad = float(np.median(dev)) if len(dev) else 0.0
    if mad <= 0.0:
        same = int(np.sum(s == med))
        raise UserError(
            f"threshold.method = {'upper_mad' if upper else 'mad'}: {same} of the {len(s)} normal windows "
            f"score exactly the median {med:g}, so the {'upper ' if upper else ''}median absolute deviation is "
            "0 and the threshold would sit at the median; use method percentile or mean_std"
        )
    return med, mad


def pot_tail(s: np.ndarray, quantile: float, risk: float) -> tuple[float, dict]:
    """Peaks over threshold: (the score exceeded with probability `risk` under a generalized Pareto tail
    fitted to the excesses over the `quantile` quantile of s, the fit's figures)."""
    from scipy.stats import genpareto

    t = float(np.quantile(s, quantile))
    excess = s[s > t] - t
    n, nt = len(s), len(excess)
    if nt < MIN_POT_EXCESSES:
        raise UserError(
            f"threshold.method = pot: only {nt} of {n} normal windows score above their {quantile:g} "
            f"quantile (a tail fit needs {MIN_POT_EXCESSES}); lower threshold.pot_quantile, set "
            "threshold.scores = 'training+validation', or use method percentile"
        )
    if np.ptp(excess) == 0:
        shape, scale = 0.0, float(excess[0])
    else:
        shape, _, scale = (float(v) for v in genpareto.fit(excess, floc=0.0))
    r = risk * n / nt  # P(excess > z - t | excess > 0) that gives P(score > z) = risk
    if r >= 1:
        z = t
    elif abs(shape) < 1e-9:
        z = t - scale * math.log(r)
    else:
        z = t + scale / shape * (r ** (-shape) - 1.0)
    return float(z), {"tail_from": t, "excesses": nt, "shape": shape, "scale": scale}


def calibrate(
    cfg: ThresholdConfig,
    val_scores: np.ndarray,
    labelled_scores: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    *,
    train_scores: np.ndarray | None = None,
) -> Threshold:
    """The threshold of `cfg` (module docstring) from the normal validation windows' scores (and the
    training windows', with threshold.scores = 'training+validation'); best_f1 needs labelled windows."""
    if len(np.asarray(val_scores)) == 0:
        raise UserError(
            "no normal validation windows to calibrate the threshold on; provide more normal data"
        )
    s = normal_scores(cfg, val_scores, train_scores)
    base = {"scores": cfg.scores if train_scores is not None else "validation", "windows": len(s)}
    if cfg.method == "percentile":
        value = float(np.percentile(s, cfg.percentile)) * cfg.factor
        params = {"percentile": cfg.percentile, "factor": cfg.factor, **base}
    elif cfg.method == "mean_std":
        value = float(s.mean() + cfg.k_std * s.std()) * cfg.factor
        params = {
            "k_std": cfg.k_std, "factor": cfg.factor, "mean": float(s.mean()), "std": float(s.std()), **base,
        }  # fmt: skip
    elif cfg.method in ("mad", "upper_mad"):
        med, mad = median_spread(s, upper=cfg.method == "upper_mad")
        k = cfg.k_mad if cfg.method == "mad" else cfg.k_upper_mad
        value = (med + k * MAD_TO_STD * mad) * cfg.factor
        key = "k_mad" if cfg.method == "mad" else "k_upper_mad"
        params = {key: k, "factor": cfg.factor, "median": med, cfg.method: mad, **base}
    elif cfg.method == "pot":
        z, fit = pot_tail(s, cfg.pot_quantile, cfg.pot_risk)
        value = z * cfg.factor
        params = {
            "pot_risk": cfg.pot_risk, "pot_quantile": cfg.pot_quantile, "factor": cfg.factor, **fit, **base,
        }  # fmt: skip
    elif cfg.method == "target_fpr":
        # the lowest threshold with at most floor(fpr * n) normal windows above it
        allowed = math.floor(cfg.target_fpr * len(s))
        value = float(np.sort(s)[len(s) - 1 - min(allowed, len(s) - 1)])
        params = {"target_fpr": cfg.target_fpr, "windows_above": allowed, **base}
    else:
        if labels is None or labelled_scores is None or not np.any(labels) or np.all(labels):
            raise UserError(
                "threshold.method = best_f1 needs labelled normal and anomalous windows; "
                "give the data a label column or use method percentile"
            )
        value, f1 = best_f1(np.asarray(labels), np.asarray(labelled_scores))
        params = {"f1": f1, "windows": len(np.asarray(labelled_scores))}
    wrong = f32.problem(value, positive=True)  # as the float32 it becomes: a positive normal one
    if wrong:
        lower = f32.rounded(value) == math.inf or not math.isfinite(value)
        said = ", ".join(
            f"{k} {v:g}" if isinstance(v, int | float) else f"{k} {v}" for k, v in params.items()
        )
        raise UserError(
            f"the {cfg.method} threshold comes to {value:g}, which {wrong.split(';')[0]} ({said}); "
            + (
                "lower threshold.factor or threshold.k_std"
                if lower
                else "raise threshold.factor or use another method"
                if value > 0
                else "the normal scores give no threshold above 0: use another method or more varied normal data"
            )
        )
    warn = small_set_warning(cfg.method, len(s), cfg.percentile, cfg.k_std, cfg.target_fpr)
    return Threshold(
        value=float(np.float32(value)),
        method=cfg.method,
        params=params,
        warnings=[warn] if warn else [],
        reason=reason_for(cfg),
    )


def best_f1(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """(threshold, F1) of the best F1 over every decision `score > t` can make (metrics.f1_curve); the
    highest such threshold on ties. An oracle: it reads the labels."""
    thr, f1 = f1_curve(labels, scores)
    best = int(np.argmax(f1))
    return float(thr[best]), float(f1[best])
