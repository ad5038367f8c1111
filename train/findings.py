"""The report's summary: what to conclude, in sentences written from the figures.

Each sentence is (topic, text) and names the data split its figures come from: how well the model
separates normal from anomalous windows, what the chosen threshold does in operation (false alarms
per hour and per day at the model's sample rate and hop, the share of each fault's windows caught,
the detection delay under the alarm rule), where it is weakest (the recording or fault it handles
worst) and what to do about it. The figures are the manifest's (`metrics`, `metrics.operation`,
train/operating.py), so the page, the manifest and `tinyae threshold` agree.
"""

from __future__ import annotations

import math
import re
from pathlib import PurePosixPath
from typing import Any

Finding = tuple[str, str]  # (topic, sentence)

FEW_VALIDATION_WINDOWS = 1000  # fewer: a percentile threshold rests on a handful of windows
MIN_RECORDING_WINDOWS = 10  # a recording with fewer normal windows says too little to single it out
TOLERABLE_PER_DAY = 1.0  # more false alarms a day than this is worth acting on
WEAK_FAULT = 0.8  # a fault with a smaller share of its windows caught is named as weak
ODD_RECORDING = 3.0  # a recording with this many times the validation false-alarm rate is named


# ------------------------------------------------------------------------------------- numbers
def pct(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    v = 100 * x
    if v == 0 or v == 100:
        return f"{v:.0f} %"
    return f"{v:.2g} %" if v < 10 else f"{v:.0f} %" if v < 99.5 else f"{v:.4g} %"


def count(x: float | None) -> str:
    """An estimated rate for reading, two significant digits: 1,500 / 60 / 2.5 / 0.031."""
    if x is None:
        return "n/a"
    if x >= 100:
        return f"{float(f'{x:.2g}'):,.0f}"
    if x >= 10:
        return f"{x:.0f}"
    if x >= 1:
        return f"{x:.1f}".rstrip("0").rstrip(".")
    return f"{x:.2g}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    if seconds < 120:
        return f"{seconds:.3g} s"
    if seconds < 7200:
        return f"{seconds / 60:.3g} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.3g} h"
    return f"{seconds / 86400:.3g} days"


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n:,} {word if n == 1 else (many or word + 's')}"


def short_names(names: list[str]) -> list[str]:
    """Recording names without the folders they share ('normal/run1.csv [val 480:600]')."""
    parts = []
    for name in names:
        m = re.match(r"^(.*?)(\[.*\])?$", name)
        path, tail = (m.group(1), m.group(2) or "") if m else (name, "")
        parts.append((path, tail))
    paths = [PurePosixPath(p) for p, _ in parts]
    if len(paths) > 1 and all(len(p.parts) > 1 for p in paths):
        common = 0
        for level in zip(*(p.parts[:-1] for p in paths), strict=False):
            if len(set(level)) != 1:
                break
            common += 1
        paths = [PurePosixPath(*p.parts[common:]) for p in paths]
    elif all(len(p.parts) > 1 for p in paths):
        paths = [PurePosixPath(p.name) for p in paths]
    return [f"{p} {tail}".strip() for p, (_, tail) in zip(paths, parts, strict=True)]


# ------------------------------------------------------------------------------------- sentences
def _rule(op: dict[str, Any]) -> str:
    r = op["alarm_rule"]
    if r["k"] == 1 and r["n"] == 1:
        return "an alarm on every window whose score exceeds the threshold (alarm rule 1 of 1)"
    return f"an alarm when {r['k']} of the last {r['n']} windows exceed the threshold (alarm rule {r['k']} of {r['n']})"


def _cadence(op: dict[str, Any], manifest: dict[str, Any]) -> str:
    w = manifest["window"]
    if not op.get("hop_s"):
        return f"one decision every {w['hop']} samples (the data have no sample rate)"
    return (
        f"at {op['sample_rate_hz']:g} Hz the device decides every {op['hop_s']:.3g} s "
        f"(a {w['length']}-sample window, hop {w['hop']}), {op['decisions_per_hour']:,.0f} decisions an hour"
    )


def _false_alarm_sentence(split: str, fig: dict[str, Any], op: dict[str, Any], where: str) -> str:
    n = fig["normal_windows"]
    hours = fig.get("hours")
    dur = f" = {duration(hours * 3600)}" if hours else ""
    head = f"{plural(n, 'normal window')}{dur} {where}"
    fa_w, events = fig["false_alarm_windows"], fig["false_alarms"]
    band = fig.get("per_hour_95")
    if events == 0:
        bound = (
            f"; from that much data, fewer than {count(band[1])} an hour or {count(24 * band[1])} a day (95 % bound)"
            if band
            else ""
        )
        return f"{split} split ({head}): no false alarm{bound}."
    if fig.get("false_alarms_per_hour") is None:
        return (
            f"{split} split ({head}): {plural(fa_w, 'window')} ({pct(fig['false_alarm_rate'])}) above the "
            f"threshold, {plural(events, 'false alarm')} (no sample rate, so no rate per hour)."
        )
    return (
        f"{split} split ({head}): {plural(fa_w, 'window')} ({pct(fig['false_alarm_rate'])}) above the threshold "
        f"gave {plural(events, 'false alarm')}, about {count(fig['false_alarms_per_hour'])} an hour or "
        f"{count(fig['false_alarms_per_day'])} a day in continuous operation"
        + (f" (95 % range {count(band[0])} to {count(band[1])} an hour)." if band else ".")
    )


def operating_line(manifest: dict[str, Any]) -> str:
    """The chosen threshold, the alarm rule and the decision cadence, in one sentence."""
    thr = manifest["threshold"]
    op = manifest["metrics"].get("operation")
    method = thr["method"].replace("_", " ")
    if not op:
        return f"Threshold {thr['value']:.4g} ({method})."
    return f"Threshold {thr['value']:.4g} ({method}) with {_rule(op)}; {_cadence(op, manifest)}."


def _sources(op: dict[str, Any], split: str) -> int:
    return len({r["recording"] for r in op["recordings"] if r["split"] == split})


def findings(manifest: dict[str, Any]) -> list[Finding]:
    """The summary sentences (see the module docstring)."""
    m = manifest["metrics"]
    op = m.get("operation")
    out: list[Finding] = []
    if m.get("int8"):
        auc = m["int8"]["roc_auc"]
        w = m["windows"]["test"]
        an = (op or {}).get("test", {}).get("anomalous_windows")
        how = "very well" if auc >= 0.98 else "well" if auc >= 0.9 else "partly" if auc >= 0.75 else "poorly"
        split = f"{w:,} windows" + (f", {an:,} anomalous" if an is not None else "")
        out.append((
            "Separation",
            f"Test split ({split}): the model separates normal from anomalous windows {how}; an anomalous "
            f"window scores above a normal one {pct(auc)} of the time (int8 ROC AUC {auc:.3f}; 1 is perfect, "
            "0.5 is chance).",
        ))  # fmt: skip
    else:
        out.append(
            (
                "Separation",
                f"Test split: not measured, because {m.get('missing_reason', 'labels are missing')}.",
            )
        )
    if not op:
        return out
    val = op["validation"]
    n_val = _sources(op, "validation")
    out.append((
        "False alarms",
        _false_alarm_sentence("Validation", val, op, f"from {plural(n_val, 'recording')}, unseen in training"),
    ))  # fmt: skip
    test = op.get("test") or {}
    if test.get("labelled") and test.get("normal_windows"):
        n_test = len({r["recording"] for r in op["recordings"] if r["split"] == "test" and r["normal"]})
        out.append((
            "False alarms",
            _false_alarm_sentence("Test", test, op, f"in {plural(n_test, 'recording')}"),
        ))  # fmt: skip
    faults = op.get("faults") or []
    if faults and test.get("anomalous_windows"):
        per = ", ".join(f"{f['fault']} {pct(f['caught_rate'])}" for f in faults)
        out.append((
            "Detection",
            f"Test split: the alarm catches {pct(test['caught_rate'])} of "
            f"{plural(test['anomalous_windows'], 'anomalous window')} "
            f"and {test['episodes_detected']} of {plural(test['episodes'], 'fault episode')}; windows caught per "
            f"fault: {per}.",
        ))  # fmt: skip
        out.append(("Detection delay", _delay_sentence(op, test, faults)))
    out += _weak(op, faults, val)
    out += [("What to do", s) for s in advice(manifest)]
    return out


def _delay_sentence(op: dict[str, Any], test: dict[str, Any], faults: list[dict[str, Any]]) -> str:
    d = test.get("delay")
    missed = [f"{f['episodes'] - f['episodes_detected']} {f['fault']}" for f in faults
              if f["episodes"] > f["episodes_detected"]]  # fmt: skip
    miss = f" Never alarmed: {', '.join(missed)} episode(s)." if missed else ""
    head = f"Test split: {test['episodes_detected']} of {plural(test['episodes'], 'fault episode')} alarmed"
    if not d:
        return f"{head}.{miss}"
    worst = max((f for f in faults if f.get("delay")), key=lambda f: f["delay"]["max_windows"])
    if "median_s" in d:
        return (
            f"{head}, a median of at most {d['median_s']:.3g} s after the fault began (worst {d['max_s']:.3g} s, "
            f"{worst['fault']}); {op['hop_s']:.3g} s is the earliest possible, as the device decides at the end "
            f"of each window.{miss}"
        )
    return (
        f"{head}, a median of {d['median_windows']:.3g} windows after the first window containing the fault "
        f"(worst {d['max_windows']}, {worst['fault']}).{miss}"
    )


def _weak(op: dict[str, Any], faults: list[dict[str, Any]], val: dict[str, Any]) -> list[Finding]:
    out: list[Finding] = []
    if faults:
        worst = min(faults, key=lambda f: f["caught_rate"] if f["caught_rate"] is not None else 1.0)
        auc = (
            f", ROC AUC {worst['roc_auc']:.3f} against the normal test windows"
            if worst.get("roc_auc")
            else ""
        )
        out.append((
            "Weakest fault",
            f"Test split: {worst['fault']}, with {pct(worst['caught_rate'])} of its "
            f"{plural(worst['windows'], 'window')} caught{auc}.",
        ))  # fmt: skip
    rows = [r for r in op["recordings"]
            if r.get("labelled", True) and r["normal"] >= MIN_RECORDING_WINDOWS
            and r["false_alarm_rate"] is not None]  # fmt: skip
    per_split = max((sum(r["split"] == s for r in rows) for s in ("validation", "test")), default=0)
    if per_split > 1:
        names = dict(
            zip(
                [r["recording"] for r in op["recordings"]],
                short_names([r["recording"] for r in op["recordings"]]),
                strict=True,
            )
        )
        worst_r = max(rows, key=lambda r: r["false_alarm_rate"])
        if worst_r["false_alarm_rate"] == 0:  # nothing to single out: say so rather than name one at 0 %
            splits = [s for s in ("validation", "test") if any(r["split"] == s for r in rows)]
            out.append((
                "Recordings",
                f"{' and '.join(splits).capitalize()} split{'s' if len(splits) > 1 else ''}: no false alarm in any "
                f"of the {plural(len(rows), 'recording')} with {MIN_RECORDING_WINDOWS} or more normal windows, so "
                "none stands out.",
            ))  # fmt: skip
            return out
        best_r = min(rows, key=lambda r: r["false_alarm_rate"])
        ph = worst_r.get("false_alarms_per_hour")
        rate = f" (about {count(ph)} false alarms an hour)" if ph else ""
        out.append((
            "Weakest recording",
            f"{worst_r['split'].capitalize()} split: {names[worst_r['recording']]} has the most false alarms, on "
            f"{pct(worst_r['false_alarm_rate'])} of its {plural(worst_r['normal'], 'normal window')}{rate}, "
            f"against {pct(val['false_alarm_rate'])} on the validation split as a whole and "
            f"{pct(best_r['false_alarm_rate'])} on {names[best_r['recording']]}.",
        ))  # fmt: skip
    return out


def advice(manifest: dict[str, Any]) -> list[str]:
    """What to do about what the figures show; each sentence names the split that shows it."""
    m = manifest["metrics"]
    op = m.get("operation") or {}
    thr = manifest["threshold"]
    out: list[str] = []
    val = op.get("validation") or {}
    test = op.get("test") or {}
    n_val = val.get("normal_windows", m["windows"]["val"])
    if n_val < FEW_VALIDATION_WINDOWS and thr["method"] in ("percentile", "target_fpr"):
        out.append(
            f"Validation split: the {thr['method'].replace('_', ' ')} threshold rests on only "
            f"{plural(n_val, 'normal window')}, so one or two of them set it: record more normal operation "
            "(data.train), or choose the threshold another way without retraining with `tinyae threshold "
            "--method mean_std --k-std 3` (or `--method target_fpr --target-fpr 0.001`)."
        )
    band, hours = val.get("per_hour_95"), val.get("hours")
    if val.get("false_alarms") == 0 and band and hours and 24 * band[1] > TOLERABLE_PER_DAY:
        # no false alarm in little data bounds the rate only loosely: say how much data would bound it usefully
        need = duration(24 * band[1] * hours * 3600)
        out.append(
            f"Validation split: no false alarm in {duration(hours * 3600)} of normal data shows only that the rate "
            f"is below {count(24 * band[1])} a day; record about {need} of normal operation (data.train) to "
            f"show fewer than {TOLERABLE_PER_DAY:g} a day."
        )
    per_day = [(s, f.get("false_alarms_per_day")) for s, f in (("Validation", val), ("Test", test))
               if f.get("labelled", True)]  # fmt: skip
    worst = max(((s, v) for s, v in per_day if v is not None), key=lambda sv: sv[1], default=None)
    if worst is not None and worst[1] > TOLERABLE_PER_DAY:
        rule = op.get("alarm_rule", {"k": 1, "n": 1})
        hop_s = op.get("hop_s")
        extra = f" (about {hop_s:.2g}-{2 * hop_s:.2g} s more delay)" if hop_s else ""
        nxt = "decision.k = 2, decision.n = 3" if rule["n"] < 3 else f"decision.k = {rule['k'] + 1}"
        out.append(
            f"{worst[0]} split: about {count(worst[1])} false alarms a day is likely too many to act on; raise "
            "the threshold with `tinyae threshold --method target_fpr --target-fpr 0.001` (the operating curve "
            f"shows the recall it costs), or require several anomalous windows in a row: {nxt}{extra}."
        )
    rows = [r for r in op.get("recordings", [])
            if r.get("labelled", True) and r["normal"] >= MIN_RECORDING_WINDOWS
            and r["false_alarm_rate"] is not None]  # fmt: skip
    base = val.get("false_alarm_rate") or 0.0
    odd = [r for r in rows if r["false_alarm_rate"] > max(ODD_RECORDING * base, 0.01)]
    if odd:
        names = dict(
            zip(
                [r["recording"] for r in op["recordings"]],
                short_names([r["recording"] for r in op["recordings"]]),
                strict=True,
            )
        )
        listed = ", ".join(f"{names[r['recording']]} ({pct(r['false_alarm_rate'])})" for r in odd[:3])
        split = odd[0]["split"]
        out.append(
            f"{split.capitalize()} split: normal data of {listed} look unlike the training data to the model "
            f"(validation as a whole: {pct(base)}); add recordings like these to data.train and retrain, so the "
            "model learns that operating condition."
        )
    faults = [
        f for f in op.get("faults") or [] if f["caught_rate"] is not None and f["caught_rate"] < WEAK_FAULT
    ]
    auc = (m.get("int8") or {}).get("roc_auc")
    kinds = manifest["frontend"]["kinds"]
    if faults or (auc is not None and auc < 0.9):
        what = (
            f"{', '.join(f['fault'] for f in faults)} {'is' if len(faults) == 1 else 'are'} caught least "
            f"({', '.join(pct(f['caught_rate']) for f in faults)} of windows)"
            if faults
            else f"separation is weak (ROC AUC {auc:.3f})"
        )
        spectral = (
            'try the spectral front-end (frontend.kinds = ["raw", "spectral"]) if the fault shows in the '
            "frequency content more than in the amplitude; "
            if "spectral" not in kinds
            else ""
        )
        out.append(
            f"Test split: {what}; {spectral}`tinyae search` tries window lengths, front-ends and model sizes "
            "within your board's budget and reports the best."
        )
    if not m.get("int8"):
        out.append(
            "Test split: no detection figures; add recordings of faults to data.test and name their labels "
            "(a label column or data.file_labels) to measure what the model catches."
        )
    if not out:
        out.append(
            "Validation and test splits: nothing stands out; check the model on the device with "
            "`tinyae device verify` and on new recordings with `tinyae device stream --csv`."
        )
    return out
