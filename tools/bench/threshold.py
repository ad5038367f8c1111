"""The threshold study: which label-free threshold method is right by default.

`tinyae bench threshold [--out bench/] [--no-cache]` (also part of `make bench`) computes, on every labelled
data set tinyae reads (STUDY_SETS), the int8 scores of a model trained with the data set's bench command,
then, for each label-free method of CANDIDATES (train/calibrate.py: percentile, mean_std, mad, upper_mad, pot,
target_fpr, each on the validation windows' scores or on the training and validation windows' together,
with several parameters), the threshold it sets and F1, FAR (normal test windows flagged) and MAR
(anomalous test windows missed) there. Each is compared with the **oracle**: the F1 of the best threshold
chosen on the test labels (for SKAB, 34 models, the best threshold of each file for the pooled F1, found
exactly by Dinkelbach's iteration), which no deployed detector can have; it is a yardstick, never a result.

The default is the candidate with the best worst-case ratio F1(method) / F1(oracle) over the data sets
(ties: the higher mean ratio). To see whether that choice generalizes rather than fits, each data set is
also scored by the candidate chosen on the *other* data sets (leave one data set out): that ratio is the
honest estimate for a data set nobody tuned on.

Scores are cached in build/bench/cache (tools/bench/cache.py), so the method study re-runs in seconds.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from tinyae.errors import UserError
from tinyae.tools.bench import cache, models
from tinyae.tools.bench.common import ROOT, TINYAE, command_text, rel
from tinyae.train.calibrate import calibrate
from tinyae.train.config import ThresholdConfig

TARGET_RATIO = 0.9  # the goal: F1 at the default within 10 % of the oracle's on every data set
# tinyae's former defaults: before the study (of the validation windows' scores), and the study's first choice
FORMER_DEFAULTS = ("percentile 99.5", "median + 7 MAD, training+validation")


# -- data sets ------------------------------------------------------------------------------------------
@dataclass
class StudyFile:
    """One model's scores: normal training and validation windows, and the test units (windows, or rows
    for SKAB) with the statistic an alarm compares with the threshold (alarm = stat > threshold)."""

    name: str
    train: np.ndarray
    val: np.ndarray
    stat: np.ndarray  # float32 [units]
    labels: np.ndarray  # bool [units]


@dataclass
class StudySet:
    name: str
    note: str
    command: str
    unit: str  # "window" or "row"
    files: list[StudyFile] = field(default_factory=list)

    @property
    def units(self) -> int:
        return sum(len(f.labels) for f in self.files)

    @property
    def anomalous(self) -> int:
        return int(sum(f.labels.sum() for f in self.files))


NAB_FILE = "realKnownCause/machine_temperature_system_failure.csv"
NAB_CSV = ROOT / "build" / "bench" / "data" / "nab-machine-temperature.csv"
NAB = models.ModelSpec(
    "nab-machine-temperature",
    (
        "data.source=csv",
        f'data.paths=["{rel(NAB_CSV)}"]',
        "data.timestamp=none",
        "data.sample_rate_hz=0.0033333333",
        "data.label=label",
        "window.length=36",
        "window.hop=6",
    ),
    "NAB machine_temperature_system_failure: one temperature every 5 minutes, 4 labelled anomaly windows "
    "(NAB's combined_windows.json); windows of 3 h every 30 min, cut by time into train | val | test",
)
PIPELINE_SETS = (models.DEFAULT, models.BASICMOTIONS, models.INTERNALBLEEDING, NAB)


def nab_csv(datasets: Path, out: Path = NAB_CSV) -> Path:
    """NAB's machine-temperature series with a label column (1 inside NAB's labelled anomaly windows),
    without timestamps: the file repeats one hour (2014-01-07 02:00-02:55, rows 10,151-10,162), which a
    strictly increasing time base refuses; the samples are every 5 minutes otherwise."""
    src = datasets / "nab" / NAB_FILE
    windows = datasets / "nab" / "labels" / "combined_windows.json"
    if not src.is_file() or not windows.is_file():
        raise UserError(f"no {rel(src)} or {rel(windows)}: left out NAB; pass --datasets DIR")
    spans = [
        (datetime.fromisoformat(a), datetime.fromisoformat(b))
        for a, b in json.loads(windows.read_text())[NAB_FILE]
    ]
    with src.open(newline="") as fh:
        rows = list(csv.reader(fh))[1:]
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["value", "label"])
        for stamp, value in rows:
            t = datetime.fromisoformat(stamp)
            w.writerow([value, int(any(a <= t <= b for a, b in spans))])
    return out


def pipeline_set(
    spec: models.ModelSpec, work: Path, *, trained: models.TrainedModel | None = None, use_cache: bool = True
) -> StudySet:
    """A data set the pipeline reads: the scores.npz of `tinyae model` with the spec's command."""
    argv = models.train_command(spec, work / spec.name)

    def compute() -> dict[str, np.ndarray]:
        m = trained or models.train(spec, work)
        with np.load(m.dir / "scores.npz") as z:
            if "train_scores" not in z.files:
                raise UserError(f"{m.dir}/scores.npz has no training scores; retrain it (make bench)")
            return {k: z[k] for k in ("train_scores", "val_scores", "test_scores", "test_labels")}

    if trained is not None:
        arrays = compute()
    else:
        what = {
            "command": command_text(argv),
            "pipeline": cache.file_digest(ROOT / "train" / "pipeline.py"),
            "data": cache.file_digest(NAB_CSV) if spec is NAB else None,
        }
        arrays, _ = cache.cached(ROOT / "build" / "bench" / "cache", spec.name, what, compute, use=use_cache)
    f = StudyFile(
        spec.name,
        arrays["train_scores"],
        arrays["val_scores"],
        arrays["test_scores"].astype(np.float32),
        arrays["test_labels"].astype(bool),
    )
    return StudySet(spec.name, spec.note, command_text(argv), "window", [f])


def skab_set(datasets: Path, say: Callable[[str], None], *, use_cache: bool = True) -> StudySet:
    """SKAB under its per-file protocol with configs/skab.toml: a model per file, its training windows
    (rows 0-319) and validation windows (rows 320-399); the test rows (400 on) alarm by the config's
    k-of-n rule, which is a threshold on each row's k-th highest score of its last n windows."""
    from tinyae.tools.bench import skab, skab_scores, skab_select
    from tinyae.tools.bench.skab_alarms import alarm_statistic
    from tinyae.train import config as configmod

    cfg = configmod.load(ROOT / skab.CONFIG)
    h = cfg.quantize.headroom
    rooms = tuple(sorted({*skab_select.HEADROOMS, h}))  # the selection's entry serves both when h is in it
    per_kind = skab_scores.scores(cfg, datasets / "skab" / "data", rooms, say, use_cache=use_cache)
    files = []
    for f in per_kind[f"int8_h{h:g}"]:
        stat = alarm_statistic(f.scores, cfg.decision.k, cfg.decision.n, len(f.labels), f.length)
        files.append(
            StudyFile(
                f.name, f.train_windows(), f.val_windows(), stat[skab.TRAIN_ROWS :],
                f.labels[skab.TRAIN_ROWS :].astype(bool),
            )
        )  # fmt: skip
    command = command_text([TINYAE, "bench", "skab", "--protocol", "per-file", "--config", skab.CONFIG])
    note = (
        f"SKAB per-file protocol, {skab.CONFIG} (a model per experiment file; test rows pooled over the 34 "
        f"files; alarm when {cfg.decision.k} of the last {cfg.decision.n} windows exceed the threshold)"
    )
    return StudySet("skab", note, command, "row", files)


# -- methods --------------------------------------------------------------------------------------------
def candidates() -> list[ThresholdConfig]:
    """The label-free methods studied (every one selectable in [threshold] / `tinyae threshold`)."""
    out: list[ThresholdConfig] = []
    for scores in ("validation", "training+validation"):
        for p in (95.0, 98.0, 99.0, 99.5, 100.0):
            for f in (1.0, 1.1, 1.25, 1.5, 2.0):
                out.append(ThresholdConfig(method="percentile", percentile=p, factor=f, scores=scores))
        for k in (1.0, 2.0, 3.0, 4.0, 5.0, 6.0):
            out.append(ThresholdConfig(method="mean_std", k_std=k, scores=scores))
        for k in (2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 10.0, 12.0):
            out.append(ThresholdConfig(method="mad", k_mad=k, scores=scores))
        for k in (2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0):
            out.append(ThresholdConfig(method="upper_mad", k_upper_mad=k, scores=scores))
        for r in (1e-2, 1e-3, 1e-4):
            for q in (0.8, 0.9):
                out.append(ThresholdConfig(method="pot", pot_risk=r, pot_quantile=q, scores=scores))
        for fpr in (0.001, 0.005, 0.01, 0.05):
            out.append(ThresholdConfig(method="target_fpr", target_fpr=fpr, scores=scores))
    return out


def label(c: ThresholdConfig) -> str:
    """A method's short name, e.g. `percentile 99.5` or `mad k=7, training+validation`."""
    if c.method == "percentile":
        s = f"percentile {c.percentile:g}" + (f" x {c.factor:g}" if c.factor != 1 else "")
    elif c.method == "mean_std":
        s = f"mean + {c.k_std:g} std" + (f" x {c.factor:g}" if c.factor != 1 else "")
    elif c.method == "mad":
        s = f"median + {c.k_mad:g} MAD" + (f" x {c.factor:g}" if c.factor != 1 else "")
    elif c.method == "upper_mad":
        s = f"median + {c.k_upper_mad:g} upper MAD" + (f" x {c.factor:g}" if c.factor != 1 else "")
    elif c.method == "pot":
        s = f"pot risk {c.pot_risk:g} above q{c.pot_quantile:g}"
    elif c.method == "target_fpr":
        s = f"target_fpr {c.target_fpr:g}"
    else:
        s = c.method
    return s + (", training+validation" if c.scores != "validation" else "")


def settings(c: ThresholdConfig) -> dict:
    """The [threshold] keys that select the method (what a user writes in the config)."""
    keys = {
        "percentile": ("percentile", "factor"),
        "mean_std": ("k_std", "factor"),
        "mad": ("k_mad", "factor"),
        "upper_mad": ("k_upper_mad", "factor"),
        "pot": ("pot_risk", "pot_quantile", "factor"),
        "target_fpr": ("target_fpr",),
    }[c.method]
    return {"method": c.method, **{k: getattr(c, k) for k in keys}, "scores": c.scores}


def _counts(pred: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return np.array(
        [np.sum(pred & labels), np.sum(pred & ~labels), np.sum(~pred & labels), np.sum(~pred & ~labels)]
    )


def figures(tp: int, fp: int, fn: int, tn: int) -> dict:
    return {
        "f1": 2 * tp / max(2 * tp + fp + fn, 1),
        "far_pct": 100 * fp / max(fp + tn, 1),
        "mar_pct": 100 * fn / max(fn + tp, 1),
        "tp": int(tp), "fp": int(fp), "fn": int(fn), "tn": int(tn),
    }  # fmt: skip


def evaluate(c: ThresholdConfig, s: StudySet) -> dict:
    """F1 / FAR / MAR of method c on data set s (each file's threshold from its own normal scores)."""
    total = np.zeros(4, np.int64)
    thresholds = []
    for f in s.files:
        try:
            thr = calibrate(c, f.val, train_scores=f.train).value
        except UserError as exc:
            return {"status": "refused", "reason": str(exc)}
        thresholds.append(thr)
        total += _counts(f.stat > np.float32(thr), f.labels)
    out = figures(*total)
    out["threshold"] = thresholds[0] if len(thresholds) == 1 else None
    return out


def oracle(s: StudySet) -> dict:
    """The best pooled F1 with one threshold per file, chosen on the test labels (an oracle).

    Pooled F1 = 2 TP / (TP + FP + P) is a ratio of sums over files; Dinkelbach's iteration (maximize
    2 TP - lambda (TP + FP) file by file, lambda <- the F1 reached) finds its exact maximum."""
    curves = []
    for f in s.files:
        st = np.asarray(f.stat, np.float32)
        cand = np.r_[np.unique(st), np.float32(-np.inf)]  # `stat > c`: none above the top, all above -inf
        order = np.argsort(-st, kind="mergesort")
        ys, ss = f.labels[order], st[order]
        # flagged by `stat > c` = the units with stat > c: count via searchsorted on the descending order
        n_above = np.searchsorted(-ss, -cand, side="left")
        tp = np.r_[0, np.cumsum(ys)][n_above]
        curves.append((cand, tp, n_above - tp))
    positives = s.anomalous
    lam, best = 0.0, None
    for _ in range(100):
        tp_sum = fp_sum = 0
        choice = []
        for cand, tp, fp in curves:
            i = int(np.argmax(2 * tp - lam * (tp + fp)))
            choice.append(float(cand[i]))
            tp_sum, fp_sum = tp_sum + int(tp[i]), fp_sum + int(fp[i])
        f1 = 2 * tp_sum / max(tp_sum + fp_sum + positives, 1)
        if best is not None and f1 <= best[0] + 1e-15:
            break
        best, lam = (f1, choice, tp_sum, fp_sum), f1
    assert best is not None
    f1, choice, tp, fp = best
    normal = s.units - positives
    out = figures(tp, fp, positives - tp, normal - fp)
    out["threshold"] = choice[0] if len(choice) == 1 else None
    return out


def choose(table: dict[str, dict[str, dict]], names: Sequence[str]) -> str | None:
    """The candidate with the best worst-case ratio over data sets `names` (ties: best mean ratio)."""
    best, key = None, None
    for cand, per_set in table.items():
        ratios = [per_set[n].get("ratio", -1.0) for n in names]
        k = (min(ratios), float(np.mean(ratios)))
        if key is None or k > key:
            best, key = cand, k
    return best


# -- the section -----------------------------------------------------------------------------------------
def study(sets: list[StudySet]) -> dict:
    """Every candidate on every data set, the oracle, the default chosen, and leave-one-out."""
    from tinyae.train.calibrate import DEFAULT_REASON

    cands = {label(c): c for c in candidates()}
    oracles = {s.name: oracle(s) for s in sets}
    table: dict[str, dict[str, dict]] = {}
    for name, c in cands.items():
        table[name] = {}
        for s in sets:
            r = evaluate(c, s)
            if "f1" in r:
                r["ratio"] = r["f1"] / oracles[s.name]["f1"] if oracles[s.name]["f1"] > 0 else float("nan")
            table[name][s.name] = r
    names = [s.name for s in sets]
    chosen = choose(table, names)
    loo = {}
    for s in sets if len(sets) > 1 else []:  # one data set leaves nothing to choose on
        others = [n for n in names if n != s.name]
        pick = choose(table, others)
        assert pick is not None
        loo[s.name] = {
            "chosen_on": others,
            "method": pick,
            "settings": settings(cands[pick]),
            **_round(table[pick][s.name]),
        }
    default = ThresholdConfig()
    default_label = label(default)
    assert chosen is not None
    return {
        "method": (
            "int8 scores of each data set's model (the host reference: the device's arithmetic). Each "
            "label-free method sets the threshold from the normal windows' scores only (validation, or "
            "training + validation); F1 / FAR / MAR on the test windows (SKAB: test rows, pooled over its 34 "
            "per-file models). ratio = F1 / F1 of the oracle, the best threshold chosen on the test labels "
            "(per file for SKAB, exact by Dinkelbach's iteration): an upper bound no label-free method can "
            "exceed, never a result. The default is the candidate with the best worst-case ratio over all "
            "data sets (ties: the best mean ratio); leave-one-out scores each data set with the candidate "
            "chosen on the others."
        ),
        "target_ratio": TARGET_RATIO,
        "datasets": [
            {
                "name": s.name,
                "note": s.note,
                "command": s.command,
                "unit": s.unit,
                "files": len(s.files),
                "test_units": s.units,
                "anomalous": s.anomalous,
                "normal_train": int(sum(len(f.train) for f in s.files)),
                "normal_val": int(sum(len(f.val) for f in s.files)),
            }
            for s in sets
        ],
        "oracle": {k: _round(v) for k, v in oracles.items()},
        "candidates": {
            n: {"settings": settings(cands[n]), "per_dataset": {k: _round(v) for k, v in r.items()}}
            for n, r in table.items()
        },
        "chosen": {"method": chosen, "settings": settings(cands[chosen])},
        "default": {
            "method": default_label,
            "settings": settings(default),
            "reason": DEFAULT_REASON,
            "is_chosen": default_label == chosen,
        },
        "leave_one_out": loo,
    }


def _round(r: dict) -> dict:
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()}


def section(
    work: Path,
    datasets: Path,
    say: Callable[[str], None],
    *,
    trained: dict[str, models.TrainedModel] | None = None,
    use_cache: bool = True,
    quick: bool = False,
) -> dict:
    """The bench's threshold section (module docstring); data sets it cannot read are named, not fatal."""
    t0 = time.perf_counter()
    trained = trained or {}
    sets: list[StudySet] = []
    missing: dict[str, str] = {}
    specs = (models.quick(models.DEFAULT),) if quick else PIPELINE_SETS
    for spec in specs:
        try:
            if spec is NAB:
                nab_csv(datasets)
            say(f"threshold study: scores of {spec.name}")
            sets.append(pipeline_set(spec, work, trained=trained.get(spec.name), use_cache=use_cache))
        except UserError as exc:
            missing[spec.name] = str(exc)
    if not quick:
        try:
            sets.append(skab_set(datasets, say, use_cache=use_cache))
        except UserError as exc:
            missing["skab"] = str(exc)
    if not sets:
        return {"status": "not measured", "reason": "; ".join(missing.values())}
    out = study(sets)
    out["not_measured"] = missing
    out["unavailable"] = {
        "ecg (TensorFlow autoencoder tutorial)": (
            "the public ECG set the issue's figures came from is not available offline here (no copy in "
            "../shared/datasets or in an installed package), so it is not in the study"
        )
    }
    out["elapsed_s"] = round(time.perf_counter() - t0, 1)
    return out


# -- Markdown ----------------------------------------------------------------------------------------------
def render(sec: dict | None) -> list[str]:
    from tinyae.tools.bench.common import fmt, md_table

    out = ["## Threshold: the label-free default", ""]
    if not sec or sec.get("status") in ("not measured", "skipped"):
        return [*out, f"not measured: {(sec or {}).get('reason', 'not run')}", ""]
    out += [sec["method"], ""]
    chosen, default = sec["chosen"]["method"], sec["default"]["method"]
    names = [d["name"] for d in sec["datasets"]]
    shown = [default] + ([chosen] if chosen != default else [])
    shown += [n for n in _family_best(sec) if n not in shown]
    shown += [n for n in FORMER_DEFAULTS if n not in shown and n in sec["candidates"]]
    rows = []
    for name in names:
        o = sec["oracle"][name]
        for m in shown:
            r = sec["candidates"][m]["per_dataset"][name]
            tags = {
                **{f: " (a former default)" for f in FORMER_DEFAULTS},
                chosen: " (chosen)",
                default: " (default)",
            }
            tag = tags.get(m, "")
            if "f1" not in r:
                rows.append([name, m + tag, "refused", "", "", "", ""])
                continue
            rows.append([name, m + tag, fmt(r["f1"], 3), fmt(r["far_pct"], 2), fmt(r["mar_pct"], 2),
                         fmt(r["ratio"], 3), fmt(r.get("threshold"), 6)])  # fmt: skip
        rows.append([name, "*oracle: best threshold on the test labels*", fmt(o["f1"], 3), fmt(o["far_pct"], 2),
                     fmt(o["mar_pct"], 2), "1", fmt(o.get("threshold"), 6)])  # fmt: skip
    out += md_table(["data set", "method", "F1", "FAR %", "MAR %", "ratio", "threshold"], rows)

    def worst(m: str) -> float:
        return min(sec["candidates"][m]["per_dataset"][n].get("ratio", 0) for n in names)

    out += ["", f"The default ({default}) reaches {fmt(worst(default), 3)} of the oracle's F1 on its worst data set "
            f"(goal: {sec['target_ratio']:g})."]  # fmt: skip
    family = [
        n for n, c in sec["candidates"].items() if _same_family(c["settings"], sec["default"]["settings"])
    ]
    if len(family) > 1:  # how sharp the choice is: its family's other parameters, worst case each
        out[-1] += (
            " Worst case of its family's other settings: "
            + ", ".join(f"{n} {fmt(worst(n), 3)}" for n in family if n != default)
            + "."
        )
    if chosen != default:
        out[-1] += (
            f" **The study now chooses {chosen} ({fmt(worst(chosen), 3)} in the worst case): the default "
            "(ThresholdConfig in train/config.py) is out of date with its own study.**"
        )
    if sec["leave_one_out"]:
        out += [
            "",
            "Leave one data set out (the method chosen on the other data sets, scored on the one left out):",
            "",
        ]
    lrows = [
        [n, r["method"], fmt(r.get("f1"), 3), fmt(r.get("far_pct"), 2), fmt(r.get("mar_pct"), 2),
         fmt(r.get("ratio"), 3)]
        for n, r in sec["leave_one_out"].items()
    ]  # fmt: skip
    if lrows:
        out += md_table(
            ["data set left out", "method chosen on the others", "F1", "FAR %", "MAR %", "ratio"], lrows
        )
    out += ["", "Data sets (test units: windows, SKAB rows) and the commands behind their scores:", ""]
    for d in sec["datasets"]:
        out.append(
            f"- {d['name']}: {d['note']}; {d['test_units']:,} test {d['unit']}s, {d['anomalous']:,} anomalous; "
            f"{d['normal_train']:,} training / {d['normal_val']:,} validation windows; `{d['command']}`"
        )
    for name, why in {**sec.get("not_measured", {}), **sec.get("unavailable", {})}.items():
        out.append(f"- {name}: not in the study: {why}")
    out += [
        "",
        f"Every candidate ({len(sec['candidates'])}: percentile x factor, mean + k std, median + k MAD, median "
        "+ k upper MAD, peaks "
        "over threshold, target_fpr, each on the validation or the training + validation scores) with its "
        "figures on every data set is in results.json (`threshold.candidates`). Re-run the study alone: "
        f"`{TINYAE} bench threshold` (scores cached in build/bench/cache).",
        "",
    ]
    return out


def _same_family(a: dict, b: dict) -> bool:
    """Same method, score set and factor (only the method's own parameter differs)."""
    return all(a.get(k) == b.get(k) for k in ("method", "scores", "factor"))


def _family_best(sec: dict) -> list[str]:
    """Per method family (and score set), the candidate with the best worst-case ratio."""
    names = [d["name"] for d in sec["datasets"]]
    best: dict[tuple, tuple] = {}
    for n, c in sec["candidates"].items():
        fam = (c["settings"]["method"], c["settings"]["scores"])
        ratios = [c["per_dataset"][d].get("ratio", -1.0) for d in names]
        k = (min(ratios), float(np.mean(ratios)))
        if fam not in best or k > best[fam][0]:
            best[fam] = (k, n)
    return [v[1] for _, v in sorted(best.items(), key=lambda kv: -kv[1][0][0])][:4]
