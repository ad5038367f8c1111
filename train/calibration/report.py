"""What a calibration changes, before and after: threshold, per-channel corrections, and the false
alarms on the calibration data itself. Shared by `tinyae calibrate` (the host mirror alone)
and `tinyae device calibrate` (a device, checked against the mirror)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rich.table import Table

from tinyae import terminal
from tinyae.train.calibration.mirror import MirrorResult, Scorer, over_factory
from tinyae.train.calibration.record import Record
from tinyae.train.calibration.spec import CalibSpec
from tinyae.train.data.windowing import make_windows

# A refusal in words: the outcome names of tae_calib.h, with the figure that decided it.
REFUSALS = {
    "shift": "the site mean of {ch} is {value:.6g}, more than {bound:.6g} from the training mean {ref:.6g} "
    "(calibration.max_shift_std training stds){others}: this is not the machine or the mounting the model "
    "was trained for; retrain on this machine's data",
    "scale": "the spread of {ch} on site is {value:.6g} x the training spread, outside [{lo:.6g}, {hi:.6g}] "
    "(calibration.max_scale_ratio){others}: a dead, saturated or other sensor; check it, or retrain",
    "not_finite": "the calibration data hold NaN or infinite samples, or values so far from the training "
    "mean (about 1e19 or more) that the device's float32 statistics overflow ({ch}){others}; clean the "
    "recording or check the sensor",
    "threshold_high": "the calibration windows score far above the trained distribution (the threshold "
    "would be {value:.6g}, above {bound:.6g} = calibration.max_threshold_ratio x the factory threshold; "
    "{where}): the data were not normal; calibrate on normal operation",
    "threshold_low": "the calibration windows score far below the trained distribution (the threshold would "
    "be {value:.6g}, below {bound:.6g}): a flat or disconnected signal; check the sensor",
    "not_normal": "{where} (at most {frac} of them may): the data were not normal operation; calibrate on "
    "normal operation",
    "anomalous_stretch": "{where}; {k} of {n} consecutive windows above it make a stretch the model calls "
    "anomalous (at most {k_max} of {n} may, calibration.max_over_stretch), e.g. a recording that ends in a "
    "fault: calibrate on normal operation only{cut}",
    "engine": "the inference engine failed on a calibration window; check the device (`tinyae device info`)",
    "store": "the device could not store the record; the record its storage holds stays in use",
    "aborted": "the calibration was aborted (by the host, or a switch of the sample source)",
}

CHANNEL_REASONS = {
    "shift": "mean out of bounds",
    "scale": "spread out of bounds",
    "not_finite": "NaN, infinite or overflowing samples",
}


def where_over(spec: CalibSpec, result: MirrorResult, source: str = "the data") -> str:
    """How many phase-2 windows score above the factory threshold and where (windows and samples)."""
    o = over_factory(spec, result)
    head = (
        f"{o['count']} of the {o['scored']} scored calibration windows score above the factory threshold "
        f"{spec.factory_threshold:.6g}"
    )
    dense = o["densest"]
    if dense is None:
        return head
    w0, w1 = dense["windows"]
    s0, s1 = dense["samples"]
    where = f"window {w0}" if w0 == w1 else f"{dense['above']} of them within windows {w0}-{w1}"
    rest = o["count"] - dense["above"]
    more = f", {rest} more elsewhere" if rest else ""
    return f"{head}: {where} (samples {s0}-{s1} of {source}){more}"


def refusal_sentence(
    outcome: str,
    detail: int,
    record: Record,
    spec: CalibSpec,
    names: list[str],
    result: MirrorResult | None = None,
    source: str = "the data",
) -> str:
    """One sentence saying why a calibration was refused and what to do. `result` (the host mirror of the
    same calibration) adds every channel out of bounds and where the anomalous windows are."""
    ch = names[detail] if detail < len(names) else "the scores"
    template = REFUSALS.get(outcome, f"the calibration ended with outcome {outcome}")
    values: dict = {"ch": ch, "others": ""}
    if result is not None and outcome in CHANNEL_REASONS and result.channel_verdicts:
        others = [
            f"{names[k]}: {CHANNEL_REASONS.get(v, v)}"
            for k, v in enumerate(result.channel_verdicts)
            if v and k != detail and k < len(names)
        ]
        if others:
            values["others"] = "; also " + ", ".join(others)
    where = (
        where_over(spec, result, source)
        if result is not None and len(result.phase2_scores)
        else (
            f"{record.over} of the {record.windows} scored calibration windows score above the factory "
            f"threshold {spec.factory_threshold:.6g}"
        )
    )
    values["where"] = where
    if outcome == "shift" and detail < spec.channels:
        values |= {
            "value": record.mean[detail],
            "bound": spec.max_shift[detail],
            "ref": spec.ref_mean[detail],
        }
    elif outcome == "scale" and detail < spec.channels:
        values |= {
            "value": record.std[detail] / spec.ref_std[detail], "lo": spec.scale_min, "hi": spec.scale_max,
        }  # fmt: skip
    elif outcome == "not_normal":
        values |= {"frac": f"{spec.over_num}/{spec.over_den}"}
    elif outcome == "anomalous_stretch":
        cut = ""
        if result is not None and len(result.phase2_scores):
            dense = over_factory(spec, result)["densest"]
            if dense is not None and dense["phase2_windows"][1] >= len(result.phase2_scores) - spec.stretch_n:
                cut = f" (the data end in it: keep only the first {dense['samples'][0]} samples of {source})"
        values |= {"k": record.cluster, "n": spec.stretch_n, "k_max": spec.stretch_k - 1, "cut": cut}
    elif outcome == "threshold_high":
        values |= {"value": record.threshold, "bound": spec.threshold_max}
    elif outcome == "threshold_low":
        values |= {"value": record.threshold, "bound": spec.threshold_min}
    return template.format(**values)


def scorer(reference) -> Scorer:  # type: ignore[no-untyped-def]
    """The device's scores of raw windows under a correction, from a host reference with set_correction."""

    def scores(windows: np.ndarray, correction) -> np.ndarray:  # type: ignore[no-untyped-def]
        if correction is None:
            reference.set_correction(None, None)
        else:
            reference.set_correction(*correction)
        try:
            return np.asarray(reference.evaluate(windows).scores, np.float32)
        finally:
            reference.set_correction(None, None)

    return scores


def correction_of(record: Record | None) -> tuple[np.ndarray, np.ndarray] | None:
    if record is None or not record.has_correction:
        return None
    return np.asarray(record.shift, np.float32), np.asarray(record.gain, np.float32)


@dataclass
class Comparison:
    """False alarms on the calibration windows with the values before and after."""

    windows: int
    before_alarms: int
    after_alarms: int | None
    before_threshold: float
    after_threshold: float | None


def false_alarms(
    spec: CalibSpec,
    samples: np.ndarray,
    n: int,
    scores: Scorer,
    before: Record | None,
    after: Record | None,
    factory_threshold: float,
) -> Comparison:
    """Windows of the calibration data (all phases) whose score exceeds the threshold in use: with the
    record in use before (None: factory values) and with the new one (None: refused)."""
    w = make_windows(np.asarray(samples, np.float32), spec.window_length, spec.hop)[: spec.total_windows(n)]
    thr_b = np.float32(before.threshold if before is not None else factory_threshold)
    sb = scores(w, correction_of(before))
    out = Comparison(len(w), int(np.sum(sb > thr_b)), None, float(thr_b), None)
    if after is not None:
        thr_a = np.float32(after.threshold)
        sa = scores(w, correction_of(after))
        out.after_alarms, out.after_threshold = int(np.sum(sa > thr_a)), float(thr_a)
    return out


def table(
    title: str,
    spec: CalibSpec,
    names: list[str],
    before: Record | None,
    candidate: Record,
    accepted: bool,
    comparison: Comparison,
    extra: list[tuple[str, str, str]] = (),  # type: ignore[assignment]
) -> Table:
    """Before | after, per figure."""
    t = terminal.table(title=title, title_justify="left")
    t.add_column("figure", style="bold")
    t.add_column("before" + (" (factory)" if before is None else " (record in use)"))
    t.add_column("after" if accepted else "after (refused: nothing changed)")
    b_thr = before.threshold if before is not None else spec.factory_threshold
    how = f"{spec.method}"
    if spec.method == "percentile":
        how += f" {spec.percentile:g}: score {candidate.rank} of {candidate.windows}"
    elif spec.method == "mean_std":
        how += f": {candidate.score_mean:.6g} + {spec.k_std:g} x {candidate.score_std:.6g}"
    t.add_row("threshold", f"{b_thr:.6g}", f"{candidate.threshold:.6g} ({how})")
    if candidate.windows and spec.method != "none":
        t.add_row(
            "scored windows above the factory threshold",
            "-",
            f"{candidate.over} / {candidate.windows} (at most {spec.over_num}/{spec.over_den} may); "
            f"densest {spec.stretch_n} consecutive: {candidate.cluster} (fewer than {spec.stretch_k} may)",
        )
    for c, name in enumerate(names):
        ref = f"training {spec.ref_mean[c]:.6g} / {spec.ref_std[c]:.6g}"
        t.add_row(f"{name}: mean / std", ref, f"site {candidate.mean[c]:.6g} / {candidate.std[c]:.6g}")
        b = before if before is not None and before.has_correction else None
        t.add_row(
            f"{name}: correction (x - shift) * gain",
            f"shift {b.shift[c]:.6g}, gain {b.gain[c]:.6g}" if b is not None else "none",
            f"shift {candidate.shift[c]:.6g}, gain {candidate.gain[c]:.6g}"
            if candidate.has_correction
            else "none",
        )
    after_alarms = (
        f"{comparison.after_alarms} / {comparison.windows}" if comparison.after_alarms is not None else "-"
    )
    t.add_row(
        "false alarms on the calibration data",
        f"{comparison.before_alarms} / {comparison.windows}",
        after_alarms,
    )
    for name, was, now in extra:
        t.add_row(name, was, now)
    return t


def result_dict(
    result: MirrorResult,
    comparison: Comparison,
    check: dict,
    spec: CalibSpec | None = None,
    refusal: str | None = None,
) -> dict:
    rec = result.parsed
    out = {
        "windows": result.windows,
        "outcome": result.outcome,
        "detail": result.detail,
        "refusal": refusal,
        "record": rec.to_dict(),
        "record_hex": result.record.hex(),
        "samples_used": result.samples_used,
        "channel_verdicts": result.channel_verdicts,
        "false_alarms": {
            "windows": comparison.windows,
            "before": comparison.before_alarms,
            "after": comparison.after_alarms,
            "before_threshold": comparison.before_threshold,
            "after_threshold": comparison.after_threshold,
        },
        "numpy_cross_check": check,
    }
    if spec is not None and len(result.phase2_scores):
        out["over_factory_threshold"] = over_factory(spec, result)
    return out
