"""SKAB (Skoltech Anomaly Benchmark) under its published outlier-detection protocol and under a
deployment-like protocol, float and int8, from the models a Nano 33 BLE runs.

`tinyae bench skab --protocol per-file|deployment [--config configs/skab.toml] [--set k=v]`
re-runs one row of bench/RESULTS.md's SKAB table; `make bench` runs them all (tools/bench/cli.py).

Protocols (PROTOCOLS below, quoted in the results):
- per-file (SKAB's published protocol, its "Proposed Leaderboard"): each of the 34 experiment files
  separately: its first 400 rows are the training part, whatever they hold (as the leaderboard's
  detectors use them; other/2's first rows contain labelled anomalies), the remaining rows the test
  part; one configuration for every file; F1, FAR and MAR over all test rows of the 34 files
  together. A model per file.
- deployment: one model trained once on normal data, then applied to every experiment, as one
  firmware is flashed to many machines: the training data are anomaly-free.csv and the first 400 rows
  of every experiment (windows holding a labelled anomaly are dropped); one normalization and one
  threshold for all; the test rows are those of the per-file protocol, so all are scored on the same
  rows.
- deployment-commissioned: the same idea with a commissioning step on each machine: every recording
  is expressed in units of its own first 400 rows (per channel: minus their mean, over their standard
  deviation) before anything else, and the alarm threshold is set from those rows' scores; the network
  is trained once, on the 34 experiments' first 400 rows so expressed. On a device this is the same
  network with per-machine normalization constants and threshold (the manifest's normalization folds
  the per-channel step in: both are affine per feature). anomaly-free.csv is left out: its first 400
  rows are the pump's warm-up, when the vibration RMS sits about 9 standard deviations away from its
  later level, so they cannot commission it.

Common to both: the training rows are cut by time into train (rows 0-319 of an experiment; the first
80 % of anomaly-free.csv) and validation (rows 320-399; the rest), windowed apart (no window spans
both), validation serving early stopping only; the normalization is fitted on the training windows;
the threshold is calibrated on the scores of every window of the training rows (config [threshold]:
an upper control limit, percentile x factor), separately for the float and the int8 model. Each test
row is scored by the window ending at it (windows advance by one row, so a row's window also holds
the rows before it, training rows included near the start of the test part) and a row is anomalous
when the device's alarm is raised there: at least k of the last n windows above the threshold
(config [decision]). int8 = the host reference, the device's preprocessing + tflite_micro, which the
device matches bit for bit.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tinyae.args import command_parser
from tinyae.errors import UserError, run_cli
from tinyae.tools.bench import skab_data
from tinyae.tools.bench.common import ROOT, SKAB_CONFIG, SKAB_DATA, TINYAE, command_text, rel

if TYPE_CHECKING:
    from tinyae.tools.bench.detector import Detector

CONFIG = SKAB_CONFIG
DATA_DIR = SKAB_DATA
TRAIN_ROWS = 400  # SKAB's protocol: the first 400 rows of each file train
VAL_ROWS = 80  # of those, the last 80 validate (early stopping)
FREE_VAL_FRACTION = 0.2
PROTOCOLS = {
    "per-file": (
        "SKAB's published outlier-detection protocol: per experiment file, rows 0-399 train and the rest "
        "test; one configuration for all 34 files (configs/skab.toml); a model per file; F1/FAR/MAR over "
        "all test rows of the 34 files together"
    ),
    "deployment": (
        "one model trained once on anomaly-free.csv plus rows 0-399 of every experiment (windows holding "
        "a labelled anomaly dropped), one normalization and one threshold for all experiments; scored on "
        "the per-file protocol's test rows"
    ),
    "deployment-commissioned": (
        "one network trained once on rows 0-399 of every experiment, each recording in units of its own "
        "first 400 rows; on each experiment that normalization and the threshold come from its rows "
        "0-399 (a commissioning step), the network is unchanged; scored on the per-file protocol's test rows"
    ),
}
# The leaderboard of SKAB's README (github.com/waico/SKAB, "Leaderboards", "2. Strict Leaderboard",
# outlier detection: test rows only, the per-file protocol): (method, F1, FAR %, MAR %).
LEADERBOARD = (
    ("Conv-AE", 0.78, 13.55, 28.02),
    ("MSET", 0.78, 39.73, 14.13),
    ("T-squared+Q (PCA)", 0.76, 26.62, 24.92),
    ("LSTM-AE", 0.74, 29.96, 25.92),
    ("T-squared", 0.66, 19.21, 42.6),
    ("LSTM-VAE", 0.56, 9.13, 55.03),
    ("Vanilla LSTM", 0.54, 12.54, 59.53),
    ("MSCRED", 0.40, 31.04, 69.05),
    ("Vanilla AE", 0.39, 2.59, 75.15),
    ("Isolation forest", 0.29, 2.56, 82.89),
)
TARGET = {"f1": 0.80, "far_pct": 13.5}


def confusion(pred: np.ndarray, labels: np.ndarray) -> dict:
    """F1, FAR (false alarms / normal rows, %), MAR (missed / anomalous rows, %) and the counts."""
    p, y = np.asarray(pred, bool), np.asarray(labels, bool)
    tp, fp = int(np.sum(p & y)), int(np.sum(p & ~y))
    fn, tn = int(np.sum(~p & y)), int(np.sum(~p & ~y))
    return {
        "f1": round(2 * tp / max(2 * tp + fp + fn, 1), 4),
        "far_pct": round(100 * fp / max(fp + tn, 1), 2),
        "mar_pct": round(100 * fn / max(fn + tp, 1), 2),
        "precision": round(tp / max(tp + fp, 1), 4),
        "recall": round(tp / max(tp + fn, 1), 4),
        "tp": tp, "fp": fp, "fn": fn, "tn": tn,
    }  # fmt: skip


def row_alarms(scores: np.ndarray, threshold: float, k: int, n: int, rows: int, length: int) -> np.ndarray:
    """bool [rows]: the device's alarm at each row, from the scores of the windows ending at rows
    length-1 .. rows-1 (hop 1); rows before the first full window have none."""
    from tinyae.train.preprocess import decisions

    _, alarm = decisions(scores, threshold, k, n)
    out = np.zeros(rows, bool)
    out[length - 1 :] = alarm
    return out


@dataclass
class Prepared:
    """One experiment in the configured channels: values [T, C] float32, labels [T]."""

    name: str
    values: np.ndarray
    labels: np.ndarray
    sample_rate_hz: float


def _channels(cfg, rec: skab_data.Recording) -> np.ndarray:
    names = list(cfg.data.channels) or list(skab_data.CHANNELS)
    unknown = [c for c in names if c not in skab_data.CHANNELS]
    if unknown:
        raise UserError(
            f"data.channels names {unknown[0]!r}, which SKAB does not record; choose from "
            f"{', '.join(skab_data.CHANNELS)}"
        )
    return rec.values[:, [skab_data.CHANNELS.index(c) for c in names]]


def _windows(values: np.ndarray, length: int, hop: int = 1) -> np.ndarray:
    from tinyae.train.data import make_windows

    return (
        make_windows(values, length, hop) if len(values) >= length else make_windows(values[:0], length, hop)
    )


def _normal_windows(values: np.ndarray, labels: np.ndarray | None, length: int, hop: int) -> np.ndarray:
    """Windows of `values` holding no labelled anomaly (all of them without labels)."""
    from tinyae.train.data import window_labels

    w = _windows(values, length, hop)
    if labels is None or len(w) == 0:
        return w
    return w[window_labels(labels, length, hop, "any") == 0]


@dataclass
class Scored:
    """One experiment's window scores (float and int8, windows ending at rows length-1..T-1) with the
    thresholds in force there."""

    name: str
    labels: np.ndarray  # [T]
    scores: dict[str, np.ndarray]
    thresholds: dict[str, float]


@dataclass
class Outcome:
    """Everything one protocol run scored; metrics() applies the device's decision rule."""

    length: int
    files: list[Scored] = field(default_factory=list)
    constant_features: set[str] = field(default_factory=set)  # named by any of the run's models

    def rows(self, kind: str, k: int, n: int, thresholds: dict[str, float] | None = None) -> list[np.ndarray]:
        """Per experiment, the alarm of each test row (rows from TRAIN_ROWS on)."""
        out = []
        for f in self.files:
            thr = f.thresholds[kind] if thresholds is None else thresholds[f.name]
            out.append(row_alarms(f.scores[kind], thr, k, n, len(f.labels), self.length)[TRAIN_ROWS:])
        return out

    def test_labels(self) -> list[np.ndarray]:
        return [f.labels[TRAIN_ROWS:] for f in self.files]

    def metrics(self, k: int, n: int) -> dict:
        from tinyae.train.metrics import roc_auc

        y = self.test_labels()
        out: dict = {}
        for kind in ("float", "int8"):
            out[kind] = confusion(np.concatenate(self.rows(kind, k, n)), np.concatenate(y))
            aucs = [
                roc_auc(lab, f.scores[kind][TRAIN_ROWS - self.length + 1 :])
                for f, lab in zip(self.files, y, strict=True)
                if 0 < lab.sum() < len(lab)
            ]
            out[kind]["roc_auc_mean"] = round(float(np.mean(aucs)), 4) if aucs else None
        out["per_file"] = [
            {"name": f.name, "rows": len(lab), "anomalous": int(lab.sum()), **_short(confusion(p, lab))}
            for f, lab, p in zip(self.files, y, self.rows("int8", k, n), strict=True)
        ]
        return out

    def sensitivity(
        self, percentiles=(99.0, 100.0), factors=(1.0, 1.25, 1.5, 2.0), rules=((1, 1), (5, 5), (10, 10))
    ):
        """int8 F1/FAR/MAR for other threshold rules on the same scores (no retraining): how much the
        figures depend on the rule chosen. Thresholds from each file's training-row window scores."""
        grid = []
        y = np.concatenate(self.test_labels())
        for pct in percentiles:
            for fac in factors:
                thr = {
                    f.name: float(np.percentile(f.scores["int8"][: TRAIN_ROWS - self.length + 1], pct) * fac)
                    for f in self.files
                }
                for k, n in rules:
                    c = confusion(np.concatenate(self.rows("int8", k, n, thr)), y)
                    grid.append({"percentile": pct, "factor": fac, "k": k, "n": n, **_short(c)})
        return grid


def _short(c: dict) -> dict:
    return {k: c[k] for k in ("f1", "far_pct", "mar_pct")}


def _scored(det, cfg, name: str, values: np.ndarray, labels: np.ndarray) -> Scored:
    w = _windows(values, cfg.window.length)
    return Scored(
        name,
        labels,
        {"float": det.float_scores(w), "int8": det.int8_scores(w)},
        {"float": det.float_threshold.value, "int8": det.int8_threshold.value},
    )


def _check(cfg) -> None:
    if cfg.window.hop != 1:
        raise UserError(
            f"window.hop = {cfg.window.hop}: the SKAB protocols score every row by the window ending at it, "
            "so windows must advance by one row; set window.hop = 1"
        )
    if cfg.window.length > TRAIN_ROWS - VAL_ROWS - 1:
        raise UserError(
            f"window.length = {cfg.window.length} leaves no training window in SKAB's "
            f"{TRAIN_ROWS - VAL_ROWS} training rows; use a shorter window"
        )


def per_file(cfg, recs: list[skab_data.Experiment], say: Callable[[str], None]) -> tuple[Outcome, Detector]:
    """SKAB's published protocol: a model per experiment (module docstring)."""
    from tinyae.tools.bench.detector import fit_detector

    _check(cfg)
    names = list(cfg.data.channels) or list(skab_data.CHANNELS)
    out, last = Outcome(cfg.window.length), None
    if not recs:
        raise UserError("the per-file SKAB protocol was given no experiments; pass SKAB's data folder")
    length, hop = cfg.window.length, cfg.window.hop
    cut = TRAIN_ROWS - VAL_ROWS
    for i, rec in enumerate(recs, 1):
        x = _channels(cfg, rec)
        say(f"SKAB per-file: {rec.name} ({i}/{len(recs)})")
        det = fit_detector(
            cfg, _windows(x[:cut], length, hop), _windows(x[cut:TRAIN_ROWS], length, hop),
            rec.sample_rate_hz, names,
        )  # fmt: skip
        det.calibrate(_windows(x[:TRAIN_ROWS], length))
        out.files.append(_scored(det, cfg, rec.name, x, rec.labels))
        out.constant_features.update(det.constant_features)
        last = det
    assert last is not None  # recs is not empty
    return out, last


def commissioned(values: np.ndarray) -> np.ndarray:
    """A recording in units of its first TRAIN_ROWS rows: per channel, minus their mean, over their
    standard deviation (1 where they do not vary)."""
    head = values[:TRAIN_ROWS].astype(np.float64)
    sd = head.std(axis=0)
    return ((values - head.mean(axis=0)) / np.where(sd > 0, sd, 1.0)).astype(np.float32)


def deployment(
    cfg,
    recs: list[skab_data.Experiment],
    free: skab_data.Recording,
    say: Callable[[str], None],
    *,
    commission: bool = False,
) -> tuple[Outcome, Detector]:
    """One model for every experiment (module docstring); commission=True: deployment-commissioned."""
    from tinyae.tools.bench.detector import fit_detector

    _check(cfg)
    names = list(cfg.data.channels) or list(skab_data.CHANNELS)
    length, hop = cfg.window.length, cfg.window.hop
    cut = TRAIN_ROWS - VAL_ROWS
    train, val, calib = [], [], []
    if not commission:
        xf = _channels(cfg, free)
        free_cut = round(len(xf) * (1 - FREE_VAL_FRACTION))
        train, val, calib = (
            [_windows(xf[:free_cut], length, hop)],
            [_windows(xf[free_cut:], length, hop)],
            [_windows(xf, length)],
        )
    prepared = []
    for rec in recs:
        x, lab = _channels(cfg, rec), rec.labels
        x = commissioned(x) if commission else x
        prepared.append(x)
        train.append(_normal_windows(x[:cut], lab[:cut], length, hop))
        val.append(_normal_windows(x[cut:TRAIN_ROWS], lab[cut:TRAIN_ROWS], length, hop))
        calib.append(_normal_windows(x[:TRAIN_ROWS], lab[:TRAIN_ROWS], length, 1))
    what = "deployment-commissioned" if commission else "deployment"
    say(f"SKAB {what}: one model on {sum(len(w) for w in train)} training windows")
    det = fit_detector(cfg, np.concatenate(train), np.concatenate(val), free.sample_rate_hz, names)
    if not commission:
        det.calibrate(np.concatenate(calib))
    out = Outcome(length)
    for rec, x, normal in zip(recs, prepared, calib[-len(recs) :], strict=True):
        if commission:  # the machine's own threshold, from its first rows' scores
            det.calibrate(normal)
        out.files.append(_scored(det, cfg, rec.name, x, rec.labels))
    return out, det


def run_protocol(
    protocol: str,
    overrides: list[str],
    data_dir: Path,
    say: Callable[[str], None],
    config: str = CONFIG,
    *,
    expect: int | None = skab_data.EXPERIMENTS,
) -> dict:
    """One row of the SKAB table: the protocol's figures, the model's size and the command. The
    per-row alarms (for the figure) are under the "_rows" key, which is not JSON."""
    from tinyae.train import config as configmod

    if protocol not in PROTOCOLS:
        raise UserError(f"unknown SKAB protocol {protocol!r}; choose {' or '.join(PROTOCOLS)}")
    cfg = configmod.load(ROOT / config if not Path(config).is_absolute() else Path(config), overrides)
    t0 = time.perf_counter()
    recs = skab_data.experiments(data_dir, expect)
    if protocol == "per-file":
        outcome, det = per_file(cfg, recs, say)
    else:
        free = skab_data.anomaly_free(data_dir)
        outcome, det = deployment(cfg, recs, free, say, commission=protocol == "deployment-commissioned")
    res = outcome.metrics(cfg.decision.k, cfg.decision.n)
    argv = [TINYAE, "bench", "skab", "--protocol", protocol, "--config", config]
    for o in overrides:
        argv += ["--set", o]
    return {
        "protocol": protocol,
        "description": PROTOCOLS[protocol],
        "variant": cfg.model.variant,
        "overrides": list(overrides),
        "command": command_text(argv),
        **{q: res[q] for q in ("float", "int8")},
        "per_file": res["per_file"],
        "model": {
            "shape": det.shape,
            "macs": det.macs,
            "params": int(det.model.count_params()),
            "tflite_bytes": len(det.flatbuffer),
            "features": det.spec.feature_size,
        },
        "threshold_rule": _rule(cfg),
        "sensitivity": outcome.sensitivity() if protocol == "per-file" else None,
        "constant_features": sorted(outcome.constant_features | set(det.constant_features)),
        "models_trained": len(recs) if protocol == "per-file" else 1,
        "elapsed_s": round(time.perf_counter() - t0, 1),
        "_rows": {
            "names": [f.name for f in outcome.files],
            "rows": list(
                zip(outcome.test_labels(), outcome.rows("int8", cfg.decision.k, cfg.decision.n), strict=True)
            ),
        },
    }


def _rule(cfg) -> str:
    t, d = cfg.threshold, cfg.decision
    base = f"{t.percentile:g}th percentile" if t.percentile < 100 else "maximum"
    return (
        f"{base} of the training rows' window scores x {t.factor:g}; alarm when {d.k} of the last {d.n} "
        "windows exceed it"
    )


def figure(runs: dict[str, dict], out: Path) -> Path:
    """bench/skab.png: per experiment, its test rows as labelled (upper strip) and as the int8 alarm
    said (lower strip), one panel per run_protocol() result."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    # 0 normal, 1 false alarm, 2 anomaly with alarm, 3 anomaly missed, 4 labelled anomaly (label strip)
    cmap = ListedColormap(["#f2f2f2", "#d62728", "#1f77b4", "#ff7f0e", "#555555"])
    fig, axes = plt.subplots(1, len(runs), figsize=(6.5 * len(runs), 9), squeeze=False)
    for ax, (title, run) in zip(axes[0], runs.items(), strict=True):
        files, names, m = run["_rows"]["rows"], run["_rows"]["names"], run["int8"]
        width = max(len(lab) for lab, _ in files)
        img = np.full((2 * len(files), width), np.nan)
        for i, (lab, pred) in enumerate(files):
            lab, pred = np.asarray(lab, bool), np.asarray(pred, bool)
            img[2 * i, : len(lab)] = np.where(lab, 4, 0)
            img[2 * i + 1, : len(lab)] = np.where(lab & pred, 2, np.where(lab, 3, np.where(pred, 1, 0)))
        ax.imshow(img, aspect="auto", interpolation="nearest", cmap=cmap, vmin=0, vmax=4)
        ax.set_yticks(np.arange(len(files)) * 2 + 0.5, names, fontsize=6)
        ax.set_xlabel("test row (rows after row 400, about 1 s each)")
        ax.set_title(
            f"{title}\nF1 {m['f1']:.3f}  FAR {m['far_pct']:.1f} %  MAR {m['mar_pct']:.1f} %", fontsize=9
        )
    handles = [plt.Rectangle((0, 0), 1, 1, color=cmap(i)) for i in (4, 2, 3, 1, 0)]
    fig.legend(
        handles,
        ["labelled anomaly", "anomaly, alarm", "anomaly missed", "false alarm", "normal"],
        loc="lower center",
        ncol=5,
    )
    fig.suptitle("SKAB, int8 model: each experiment's labels (upper strip) and alarms (lower strip)")
    fig.tight_layout(rect=(0, 0.04, 1, 0.97))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


@run_cli
def main(argv: list[str] | None = None) -> int:
    ap = command_parser(
        "tinyae bench skab",
        __doc__,
        "tinyae bench skab --protocol deployment --json build/skab-deployment.json",
    )
    ap.add_argument(
        "--protocol",
        default="per-file",
        choices=[*PROTOCOLS, "logo"],
        help="per-file: SKAB's leaderboard protocol, a model per file; deployment: one model trained on "
        "normal data for every file; deployment-commissioned: that, with each machine's own normalization "
        "and threshold from its first rows; logo: the configuration chosen without the test labels "
        "(leave one folder out)",
    )
    ap.add_argument("--config", default=CONFIG, help="the one configuration for every file")
    ap.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one configuration key (repeatable)",
    )
    ap.add_argument(
        "--data", type=Path, default=DATA_DIR, help="SKAB's data folder (valve1/, valve2/, other/)"
    )
    ap.add_argument("--json", type=Path, help="write the row's figures here")
    ap.add_argument("--no-cache", action="store_true", help="logo: retrain instead of reusing cached scores")
    args = ap.parse_args(argv)
    if args.protocol == "logo":
        return _logo(args)
    r = run_protocol(
        args.protocol, args.overrides, args.data, lambda m: print(m, file=sys.stderr, flush=True), args.config
    )
    for q in ("float", "int8"):
        m = r[q]
        print(f"{q:5}  F1 {m['f1']:.3f}  FAR {m['far_pct']:.2f} %  MAR {m['mar_pct']:.2f} %")
    print(
        f"model {r['model']['shape']}, {r['model']['macs']} MACs, {r['model']['tflite_bytes']} B; "
        f"{r['elapsed_s']} s"
    )
    if args.json:
        args.json.write_text(json.dumps({k: v for k, v in r.items() if k != "_rows"}, indent=2) + "\n")
        print(f"wrote {rel(args.json)}")
    return 0


def _logo(args: argparse.Namespace) -> int:
    """`--protocol logo`: the configuration chosen without the scored files' labels (skab_select)."""
    from tinyae.tools.bench import skab_select

    if args.config != CONFIG or args.overrides:
        raise UserError(
            "--protocol logo searches its own grid around configs/skab.toml; leave out --config/--set"
        )
    sec = skab_select.section(
        args.data, lambda m: print(m, file=sys.stderr, flush=True), use_cache=not args.no_cache
    )
    for mapping, r in sec["logo"].items():
        m = r["int8"]
        print(f"int8, {mapping} rows: F1 {m['f1']:.3f}  FAR {m['far_pct']:.2f} %  MAR {m['mar_pct']:.2f} %")
        for f in r["folds"]:
            h = f["held_out_figures"]
            print(f"  {f['held_out']:7} F1 {h['f1']:.3f} with {f['choice']}")
    if args.json:
        args.json.write_text(json.dumps(sec, indent=2) + "\n")
        print(f"wrote {rel(args.json)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
