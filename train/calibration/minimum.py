"""How many windows per phase an on-site calibration needs, and how dense a stretch of anomalous windows
it tolerates: the rules behind `calibration.min_windows` and `calibration.bounds.max_over_stretch`
(manifest), TAE_CALIB_MIN_WINDOWS and TAE_CALIB_STRETCH_K / _N (model_config.h).

A calibration of N windows per phase estimates a threshold from N scores and per-channel means and
spreads from the samples of N windows. Below some N those estimates are noise: with N = 1 the threshold
is the one score seen, and half of all normal windows score above it. The minimum is the larger of:

- **the threshold rule** (from the settings alone for percentile and mean_std, so the config schema
  checks `calibration.windows` with `windows_problem`): a threshold from N normal scores must leave, in
  expectation, at most FALSE_ALARM_FACTOR times the share of normal windows above it that the method
  aims at.
  * percentile p, nearest rank r = ceil(p N / 100): for N independent scores of any continuous
    distribution the share of later normal scores above the r-th smallest is (N + 1 - r) / (N + 1) in
    expectation (F(X_(r)) is Beta(r, N - r + 1)); the aim is 1 - p / 100 (p = 100, the maximum: the
    share the maximum of the full `calibration.windows` gives, 1 / (windows + 1)).
  * mean + k std (population std, as the device computes it): for normal scores the share above it is
    P(T > k sqrt((N - 1) / (N + 1))) for Student's T with N - 1 degrees of freedom, exactly (the
    prediction interval of a normal sample); the aim is P(Z > k).
  * mad, upper_mad and pot (`threshold.method`, followed on site with `calibration.threshold = "model"`): the device
    computes mean + k std with the k that gives the factory threshold on the factory's normal scores
    (`device_method`). Those scores are not normal, and k is far in their tail (about 7 for the default
    mad), where the normal formula's aim P(Z > k) means nothing; so the rule is measured on the factory's
    normal scores themselves (`scores_rule`, when the model is built and when `tinyae threshold` moves
    the threshold): the share of them above mean + k std of N scores drawn from them, in expectation,
    against the share above the factory threshold.
- **the statistics rule** (from the training data, at `make model`): the per-channel mean a phase 1 of N
  windows measures must be within MEAN_TOLERANCE training standard deviations of the long-run mean
  (offsets), its spread within SPREAD_TOLERANCE of the long-run spread (scales), as the root mean square
  over every stretch of N consecutive training windows (the training data show the signal's own slow
  variation: a cycle longer than a window needs a phase that covers it).

The stretch rule: a normal site scores a window above the factory threshold now and then, and a short
event raises the m = ceil(L / hop) windows that contain it. 2m + 1 of any 4m consecutive scored windows
above it take more than two such events within four windows' reach: a stretch of abnormal operation (a
recording that ends in a fault), not noise (measured on the default machine, 99 windows per phase: with
the former default threshold, the 99.5th percentile, 31 normal calibrations held at most 4 of 8 and a
256-sample fault at the end of the data 5 to 8 of 8 wherever the model sees it; with the default mad
threshold, which sits higher, the normal ones hold 0 of 8, every obvious fault but spikes (3) 8 of 8,
and the subtle ones 0 to 4 of 8, as few as the model flags among their windows).
`calibration.max_over_stretch = [k, n]` sets another rule (n at most 32).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from tinyae.errors import UserError

FALSE_ALARM_FACTOR = 2  # a calibrated threshold may leave at most twice the method's aim above it
MEAN_TOLERANCE = 0.1  # training standard deviations: the site mean's error the offsets may carry
SPREAD_TOLERANCE = 0.1  # relative: the site spread's error the scales may carry
# u16 on the device, less one: at 65535 a u16 count can never exceed it, and the C core's range checks
# (`n > TAE_CALIB_WINDOWS`) stop compiling under -Wextra -Werror (always false: -Wtype-limits)
MAX_WINDOWS = 65534


@dataclass(frozen=True)
class Rule:
    """A minimum number of windows per phase and the sentence that says where it comes from."""

    windows: int
    why: str


# ----------------------------------------------------------------------------------- threshold rule
def _percentile_exceedance(n: np.ndarray, rank_num: int, rank_den: int) -> tuple[np.ndarray, np.ndarray]:
    """(N + 1 - rank, N + 1): the expected share of normal windows above the nearest-rank percentile."""
    r = np.clip((rank_num * n + rank_den - 1) // rank_den, 1, n)
    return n + 1 - r, n + 1


def _betacf(a: float, b: float, x: float) -> float:
    """The continued fraction of the regularized incomplete beta function (modified Lentz)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 10000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """I_x(a, b), the regularized incomplete beta function."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    ln = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(ln) * _betacf(a, b, x) / a
    return 1.0 - math.exp(ln) * _betacf(b, a, 1.0 - x) / b


def student_sf(t: float, df: int) -> float:
    """P(T > t) for Student's T with df degrees of freedom."""
    if t <= 0.0:
        return 1.0 - student_sf(-t, df) if t < 0.0 else 0.5
    return 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))


def mean_std_exceedance(n: int, k: float) -> float:
    """Expected share of normal scores above mean + k * std (population std) of n normal scores."""
    if n < 2:
        return 0.5 if k >= 0 else 1.0  # the one score itself
    return student_sf(k * math.sqrt((n - 1) / (n + 1)), n - 1)


def threshold_rule(method: str, percentile: float, k_std: float, windows: int) -> Rule:
    """The fewest windows per phase a threshold by `method` needs (see the module docstring); `windows`
    is calibration.windows (the percentile 100 aims at what the maximum over that many gives)."""
    factor = FALSE_ALARM_FACTOR
    if method == "percentile":
        frac = Fraction(str(percentile)) / 100
        num, den = frac.numerator, frac.denominator
        aim = 1 - frac if frac < 1 else Fraction(1, int(windows) + 1)
        n = np.arange(1, MAX_WINDOWS + 1, dtype=np.int64)
        above, total = _percentile_exceedance(n, num, den)
        bad = np.flatnonzero(above * aim.denominator > factor * aim.numerator * total)
        least = int(n[bad[-1]]) + 1 if len(bad) else 1
        aim_text = (
            f"{float(aim) * 100:.3g} %"
            if frac < 1
            else f"{float(aim) * 100:.3g} % (the maximum over calibration.windows = {windows})"
        )
        return Rule(
            least,
            f"a percentile-{percentile:g} threshold from N windows leaves (N + 1 - rank) / (N + 1) of normal "
            f"windows above it (rank = ceil({percentile:g} N / 100)); at most {factor} x {aim_text} needs "
            f"N >= {least}",
        )
    if method == "mean_std":
        tail = 0.5 * math.erfc(k_std / math.sqrt(2.0))
        lo, hi = 1, MAX_WINDOWS + 1
        if mean_std_exceedance(MAX_WINDOWS, k_std) > factor * tail:
            least = MAX_WINDOWS + 1
        else:
            while lo < hi:  # the exceedance falls with N: the first N within the bound
                mid = (lo + hi) // 2
                if mean_std_exceedance(mid, k_std) <= factor * tail:
                    hi = mid
                else:
                    lo = mid + 1
            least = lo
        return Rule(
            least,
            f"mean + {k_std:g} std from N normal windows leaves P(T(N-1) > {k_std:g} sqrt((N-1)/(N+1))) of "
            f"them above it; at most {factor} x P(Z > {k_std:g}) = {factor * tail:.3g} needs N >= {least}",
        )
    return Rule(1, "no threshold is learned")


SCORES_DRAWS = 4000  # N-score sets drawn per N by scores_rule (seeded: the rule is reproducible)


def scores_rule(scores: np.ndarray, k: float, factory_threshold: float, method: str) -> Rule:
    """The fewest windows per phase for mean + k std (the device's form of `method`, mad, upper_mad or pot)
    measured on the factory's normal scores: drawing N of them (SCORES_DRAWS times, with replacement), the share
    of the scores above mean + k std of the N must be, in expectation, at most FALSE_ALARM_FACTOR times
    the share above the factory threshold. A share is (scores above + 1) / (n + 1), the expected share
    of normal windows above the r-th smallest of n (as for the percentile): a threshold above all n
    scores leaves 1 / (n + 1) as far as n scores can tell."""
    s = np.sort(np.asarray(scores, np.float64))
    n = len(s)

    def share(x: np.ndarray | float) -> np.ndarray:
        return (n - np.searchsorted(s, x, side="right") + 1) / (n + 1)

    aim = float(share(float(factory_threshold)))
    bound = FALSE_ALARM_FACTOR * aim
    rng = np.random.default_rng(0)
    least = MAX_WINDOWS + 1
    for m in _grid(MAX_WINDOWS):
        draws = max(64, min(SCORES_DRAWS, 4_000_000 // m))
        x = s[rng.integers(0, n, size=(draws, m))]
        if float(share(x.mean(axis=1) + k * x.std(axis=1)).mean()) <= bound:
            least = m
            break
    above = f"{aim * 100:.3g} %" + (" (it is above all of them)" if aim * (n + 1) < 1.5 else "")
    return Rule(
        least,
        f"{method} on site is mean + {k:g} std of N windows' scores; measured on the factory's {n} normal "
        f"scores, at most {FALSE_ALARM_FACTOR} x the {above} of them above the factory threshold needs "
        f"N >= {least}",
    )


# ---------------------------------------------------------------------------------- statistics rule
def _grid(most: int) -> list[int]:
    """1, 2, 3, ... then about 10 % apart, up to `most`."""
    out, n = [], 1
    while n <= most:
        out.append(n)
        n = max(n + 1, int(n * 1.1))
    return out


def stats_rule(
    train_windows: np.ndarray,
    hop: int,
    *,
    offsets: bool,
    scales: bool,
    channel_names: list[str],
    windows: int,
) -> tuple[Rule, str | None]:
    """The fewest windows per phase whose phase-1 statistics hold MEAN_TOLERANCE / SPREAD_TOLERANCE on
    the training data, and a warning when no length the training data can show does (their channels
    drift more slowly than that: an on-site correction is then as uncertain as the warning says).

    train_windows: the raw normal training windows [n, L, C] in time order (consecutive windows of one
    stretch overlap by L - hop samples; a stretch of N of them is what a phase 1 of N windows reads)."""
    if not (offsets or scales):
        return Rule(1, "no per-channel statistics are learned"), None
    x = np.asarray(train_windows, np.float64)
    n_win, length, c = x.shape
    flat = x.reshape(-1, c)
    ref_mean, ref_std = flat.mean(axis=0), flat.std(axis=0)
    ref_std = np.where(ref_std > 0, ref_std, 1.0)
    step = min(hop, length)
    # a stretch of windows i..i+N-1: the first `hop` samples of each but the last, then the last whole
    head1 = np.concatenate([np.zeros((1, c)), np.cumsum(x[:, :step].sum(axis=1), axis=0)])
    head2 = np.concatenate([np.zeros((1, c)), np.cumsum((x[:, :step] ** 2).sum(axis=1), axis=0)])
    full1, full2 = x.sum(axis=1), (x**2).sum(axis=1)
    most = min(int(windows), n_win // 4)  # at least 4 disjoint stretches to measure a spread
    worst: list[tuple[int, float, str, int]] = []  # (N, error, kind, channel) of every grid N
    for n in _grid(most):
        i = np.arange(0, n_win - n + 1)
        count = (n - 1) * step + length
        s1 = head1[i + n - 1] - head1[i] + full1[i + n - 1]
        s2 = head2[i + n - 1] - head2[i] + full2[i + n - 1]
        mean = s1 / count
        sd = np.sqrt(np.maximum(s2 / count - mean**2, 0.0))
        errs = []
        if offsets:
            e = np.sqrt(np.mean(((mean - ref_mean) / ref_std) ** 2, axis=0)) / MEAN_TOLERANCE
            errs.append((e, "mean"))
        if scales:
            e = np.sqrt(np.mean((sd / ref_std - 1.0) ** 2, axis=0)) / SPREAD_TOLERANCE
            errs.append((e, "spread"))
        e, kind = max(errs, key=lambda t: float(t[0].max()))
        ch = int(np.argmax(e))
        worst.append((n, float(e[ch]), kind, ch))
    if not worst:
        return Rule(1, "too little training data to measure how the channels' statistics vary"), None
    failing = [w for w in worst if w[1] > 1.0]
    if not failing:
        return Rule(1, _stats_text(1, offsets, scales)), None
    n_bad, err, kind, ch = failing[-1]
    if n_bad == worst[-1][0]:
        tol = MEAN_TOLERANCE if kind == "mean" else SPREAD_TOLERANCE
        unit = "training std" if kind == "mean" else "of the training spread"
        return Rule(1, "the training data drift too slowly to measure it"), (
            f"the {kind} of channel '{channel_names[ch]}' varies by {err * tol:.2g} {unit} between stretches "
            f"of {n_bad} training windows (the longest the training data can show): a calibration of "
            f"up to {windows} windows per phase learns its {'offset' if kind == 'mean' else 'scale'} only "
            "that closely"
        )
    least = next(w[0] for w in worst if w[0] > n_bad)
    return Rule(least, _stats_text(least, offsets, scales)), None


def _stats_text(least: int, offsets: bool, scales: bool) -> str:
    what = " and ".join(
        [*(["mean within 0.1 training std"] if offsets else []), *(["spread within 10 %"] if scales else [])]
    )
    return (
        f"every channel's {what} over stretches of N training windows needs N >= {least}"
        if least > 1
        else f"every channel's {what} holds from one window on in the training data"
    )


# ------------------------------------------------------------------------------------- stretch rule
STRETCH_MAX_N = 32  # the device keeps the last n windows' flags in a 32-bit word


def stretch(window_length: int, hop: int, configured: tuple[int, ...] | list[int] = ()) -> tuple[int, int]:
    """(k, n): k of any n consecutive phase-2 windows above the factory threshold refuse a calibration;
    `configured`, or (2m + 1, 4m) with m = ceil(L / hop), n capped at STRETCH_MAX_N (module docstring)."""
    if configured:
        k, n = (int(v) for v in configured)
        if not 1 <= k <= n <= STRETCH_MAX_N:
            raise UserError(
                f"calibration.max_over_stretch = [{k}, {n}] must be [k, n] with 1 <= k <= n <= "
                f"{STRETCH_MAX_N} (k of n consecutive scored windows above the factory threshold refuse)"
            )
        return k, n
    m = -(-int(window_length) // max(int(hop), 1))  # hop 0 is the config's error, not this one's
    n = min(4 * m, STRETCH_MAX_N)
    return min(2 * m + 1, n // 2 + 1), n


# ------------------------------------------------------------------------------------ config check
MAPPED = (
    "mad",
    "upper_mad",
    "pot",
)  # threshold methods the device has no form of: mean + k std with the factory's k


def factor_problem(cal_method: str, threshold_cfg) -> str | None:  # threshold_cfg: ThresholdConfig
    """A sentence when the model's threshold.factor would be silently lost on site, else None."""
    t = threshold_cfg
    if cal_method == "model" and t.factor != 1.0 and t.method in ("percentile", "mean_std"):
        return (
            f"threshold.factor = {t.factor} has no on-site equivalent (the device computes the plain "
            'percentile or mean + k*std); set calibration.threshold = "none" to keep the factory threshold '
            "on site, or threshold.factor = 1"
        )
    return None


def device_method(
    cal_method: str,
    threshold_cfg,  # ThresholdConfig
    factory_threshold: float | None = None,
    normal_scores: np.ndarray | None = None,
) -> tuple[str, float, float, str]:
    """The device's threshold method, its percentile and k, and how they were chosen (the config's words).

    The device knows two methods; a model's method maps onto them where it has an exact equivalent,
    or, for mad, upper_mad and pot (no on-device form), onto mean + k std with the k that reproduces the factory
    threshold on the factory's normal scores (the site threshold sits as many of the site's standard
    deviations above the site's mean as the factory threshold above the factory's); it is refused where it
    has none, so a site threshold never silently means something else."""
    t = threshold_cfg
    if cal_method != "model":
        return cal_method, t.percentile, t.k_std, f"calibration.threshold = {cal_method}"
    method = t.method
    if method in MAPPED:
        s = np.asarray(normal_scores if normal_scores is not None else [], np.float64)
        if factory_threshold is None or len(s) < 2 or s.std() == 0:
            raise UserError(
                f"threshold.method = {method} has no on-site form without the normal scores' spread; set "
                'calibration.threshold = "percentile" or "mean_std", or "none" to keep the factory threshold'
            )
        k = round(float((factory_threshold - s.mean()) / s.std()), 4)
        return (
            "mean_std",
            t.percentile,
            k,
            (
                f"threshold.method = {method} has no on-device form: mean + {k:g} std of the site's scores, "
                "the k that gives the factory threshold on the factory's normal scores"
            ),
        )
    problem = factor_problem(cal_method, t)
    if problem:
        raise UserError(problem)
    if method == "best_f1":
        return (
            "percentile",
            t.percentile,
            t.k_std,
            "threshold.method = best_f1 needs labels, which a site does not have: the percentile "
            "threshold.percentile instead",
        )
    if method == "target_fpr":
        # the lowest threshold with at most fpr*N windows above it is the nearest-rank (1 - fpr) quantile
        pct = round(100.0 * (1.0 - t.target_fpr), 6)
        return (
            "percentile",
            pct,
            t.k_std,
            f"threshold.method = target_fpr ({t.target_fpr}): the {pct}th percentile of the site's scores",
        )
    return method, t.percentile, t.k_std, f"threshold.method = {method}"


def windows_problem(
    cal, threshold_cfg
) -> str | None:  # cal: CalibrationConfig, threshold_cfg: ThresholdConfig
    """The config schema's check of calibration.windows against the threshold rule: a sentence when it is
    below, else None. mad, upper_mad and pot (their k comes from the trained model's scores) and the statistics
    rule (from the training data) are checked when the model is built (spec.from_values)."""
    if cal.threshold == "none" or (cal.threshold == "model" and threshold_cfg.method in MAPPED):
        return None
    if factor_problem(cal.threshold, threshold_cfg):
        return (
            None  # refused when the model is built (device_method): `tinyae bench skab` reads such a config
        )
    method, percentile, k_std, _ = device_method(cal.threshold, threshold_cfg)
    rule = threshold_rule(method, percentile, k_std, cal.windows)
    if cal.windows >= rule.windows:
        return None
    return (
        f"calibration.windows = {cal.windows} is below the {rule.windows} windows per phase an on-site "
        f"threshold needs ({rule.why}); set calibration.windows to at least {rule.windows}, or "
        'calibration.threshold = "none" to keep the factory threshold on site'
    )


def stretch_problem(configured: list[int]) -> str | None:
    """The config schema's check of calibration.max_over_stretch: [] or [k, n], 1 <= k <= n <= 32."""
    if not configured:
        return None
    if len(configured) == 2 and 1 <= configured[0] <= configured[1] <= STRETCH_MAX_N:
        return None
    return (
        f"calibration.max_over_stretch = {list(configured)} must be [k, n] with 1 <= k <= n <= {STRETCH_MAX_N} "
        "(k of n consecutive scored windows above the factory threshold refuse a calibration) or [] for "
        "the default"
    )
