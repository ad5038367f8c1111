"""The report: what a person deciding whether to deploy a model needs, on one HTML page.

From the top: the summary in sentences (train/findings.py: separation, false alarms per hour and per day,
detection per fault and its delay, the weakest recording and fault, what to do), the warnings (the
manifest's one list, train/warned.py), the tables at the chosen threshold (confusion matrix, per
recording, per fault; train/operating.py), the detection metrics, the pictures (each with one caption
saying what to look at), the model and the data; the manifest last, collapsed, with a link to the file.

A model imported with `tinyae import` has no float model: no loss curve, no float-vs-int8 picture, no
latent codes, "—" in the float column, and an "imported from" fact.

Every number on the page comes from the manifest and `scores.npz`; the pictures that depend on the
threshold (score distributions, operating curve, scores over time, float vs int8) are drawn by
`threshold_figures`, which `tinyae threshold` calls again after moving the threshold; the others are
drawn once by `write_report`. `report_figures.json` lists every picture with its caption, so the page
can be rebuilt from the model directory alone. Pictures are made and checked by train/figures.py.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from tinyae.train import findings as words
from tinyae.train.figures import figure, log_axis, save
from tinyae.train.metrics import pr_curve, roc_curve
from tinyae.train.operating import splits_from_scores

Figure = tuple[str, str]  # (PNG file name, caption)
FIGURES_FILE = "report_figures.json"
ORDER = (
    "scores", "operating", "timeline", "roc_pr", "loss", "levels", "reconstructions", "float_vs_int8", "latent",
)  # fmt: skip
MAX_TIMELINE_ROWS = 6


def score_units(manifest: dict) -> str:
    """What one score is, in words and units."""
    kind = manifest["score"]["kind"]
    unit = "normalized units" + ("²" if kind == "mse" else "")
    what = "mean squared" if kind == "mse" else "mean absolute"
    return f"{what} reconstruction error over the window's {manifest['input']['size']} inputs, {unit}"


def _unit(units: str) -> str:
    return units.split(",")[-1].strip()


def plot_loss(history, path: Path) -> str:  # type: ignore[no-untyped-def]
    fig, ax = figure(6.5, 3.4)
    epochs = np.arange(1, len(history.loss) + 1)
    ax.plot(epochs, history.loss, label="train (incl. penalty)")
    ax.plot(epochs, history.val_loss, label="validation")
    ax.axvline(history.best_epoch + 1, color="grey", ls=":", label="best epoch (kept)")
    log_axis(ax, "y")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (normalized units², log)")
    ax.set_title("Training")
    ax.legend(fontsize=8, loc="upper right")
    return save(fig, path)


def _log_bins(*arrays: np.ndarray) -> np.ndarray:
    allv = np.concatenate([np.asarray(a, np.float64) for a in arrays if len(a)])
    pos = allv[allv > 0]
    lo = max(float(pos.min()) if len(pos) else 1e-6, 1e-9)
    return np.geomspace(lo, max(float(allv.max()), lo * 10), 60)


def plot_scores(val_scores, test_scores, labels, threshold, path: Path, units: str, ceiling=None) -> str:  # type: ignore[no-untyped-def]
    fig, ax = figure(7.5, 3.6)
    bins = list(_log_bins(val_scores, test_scores))
    ax.hist(val_scores, bins=bins, alpha=0.5, label=f"validation, normal ({len(val_scores)})")
    if labels is not None:
        for lab, name in ((0, "test normal"), (1, "test anomalous")):
            sel = test_scores[labels == lab]
            ax.hist(sel, bins=bins, alpha=0.5, label=f"{name} ({len(sel)})")
    else:
        ax.hist(test_scores, bins=bins, alpha=0.5, label=f"test, unlabelled ({len(test_scores)})")
    ax.axvline(threshold, color="red", label=f"threshold {threshold:.4g}")
    if ceiling is not None:
        ax.axvline(ceiling, color="black", ls="--", lw=0.8, label=f"int8 score ceiling {ceiling:.4g}")
    log_axis(ax, "x")
    ax.set_xlabel(f"int8 score on the device ({_unit(units)}, log)")
    ax.set_ylabel("windows")
    ax.set_title("Score distributions")
    ax.legend(fontsize=8, loc="upper right")
    return save(fig, path)


def operating_curve(labels, scores, val_scores, thresholds) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
    """Precision, recall and false-alarm rates (test normal windows, validation windows) per threshold."""
    s = np.asarray(scores, np.float32)[None, :]
    t = np.asarray(thresholds, np.float32)[:, None]
    out: dict[str, np.ndarray] = {
        "val_false_alarm": (np.asarray(val_scores, np.float32)[None, :] > t).mean(axis=1)
        if len(val_scores)
        else np.zeros(len(thresholds))
    }
    if labels is not None and 0 < labels.sum() < len(labels):
        y = np.asarray(labels, bool)[None, :]
        pred = s > t
        tp = (pred & y).sum(axis=1)
        fp = (pred & ~y).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out["precision"] = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), np.nan)
        out["recall"] = tp / y.sum()
        out["false_alarm"] = fp / (~y).sum()
    return out


def plot_operating(labels, scores, val_scores, threshold, path: Path, units: str) -> str:  # type: ignore[no-untyped-def]
    grid = np.unique(np.r_[_log_bins(val_scores, scores), np.float32(threshold)])
    curves = operating_curve(labels, scores, val_scores, grid)
    at = operating_curve(labels, scores, val_scores, [threshold])
    fig, ax = figure(7.5, 4.2)
    styles = {
        "precision": ("precision (test)", "C0"),
        "recall": ("recall (test)", "C1"),
        "false_alarm": ("false-alarm rate (test normal windows)", "C3"),
        "val_false_alarm": ("false-alarm rate (validation)", "C7"),
    }
    for key, (name, color) in styles.items():
        if key in curves:
            ax.plot(grid, curves[key], color=color, label=name)
            ax.plot([threshold], at[key], "o", color=color)
    ax.axvline(threshold, color="red", lw=0.8, label=f"chosen threshold {threshold:.4g}")
    log_axis(ax, "x")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(f"threshold ({_unit(units)}, log)")
    ax.set_ylabel("rate")
    ax.set_title("Operating curve: what each threshold would give")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return save(fig, path)


def plot_timeline(scores: dict[str, np.ndarray], threshold: float, k: int, n: int, hop_s: float,
                  path: Path, units: str) -> tuple[str, int, int]:  # fmt: skip
    """Scores over time, one row per recording of the test split (validation when there is no test):
    faults shaded, alarms marked. Returns (file, rows drawn, recordings)."""
    from tinyae.train.operating import evaluate_split

    val, test = splits_from_scores(scores)
    split = test if len(test.scores) else val
    ev = evaluate_split(split, threshold, k, n, hop_s)
    recs = [int(r) for r in np.unique(split.recording)]
    if len(recs) > MAX_TIMELINE_ROWS:  # the recordings with the most wrong decisions first
        wrong = {r: int((ev["alarm"] != ev["anomalous"])[split.recording == r].sum()) for r in recs}
        recs = sorted(sorted(recs, key=lambda r: -wrong[r])[:MAX_TIMELINE_ROWS])
    names = words.short_names(split.names)
    fig, axes = figure(10, 1.35 * len(recs) + 1.0, nrows=len(recs), squeeze=False, sharey=True)
    lo = max(float(np.min(split.scores[split.scores > 0], initial=threshold)), 1e-9)
    hi = max(float(split.scores.max(initial=threshold)), threshold)
    for ax, r in zip(axes[:, 0], recs, strict=True):
        idx = np.flatnonzero(split.recording == r)
        idx = idx[np.argsort(split.position[idx], kind="stable")]
        t = split.position[idx] * (hop_s or 1.0)
        for a, b in _runs(ev["anomalous"][idx]):
            ax.axvspan(t[a], t[b - 1] + (hop_s or 1.0), color="C1", alpha=0.18, lw=0,
                       label="anomalous (label)" if "anomalous (label)" not in _labels(ax) else None)  # fmt: skip
        ax.plot(t, split.scores[idx], lw=0.8, color="C0", label="score")
        al = ev["alarm"][idx]
        ax.plot(t[al], split.scores[idx][al], "|", color="red", ms=8, label="alarm")
        ax.axhline(threshold, color="red", lw=0.8, ls="--", label="threshold")
        ax.set_ylim(lo / 1.5, hi * 1.5)
        log_axis(ax, "y")
        ax.set_title(f"{split.name} · {names[r]}", fontsize=9, loc="left")
        ax.tick_params(labelsize=8)
    axes[-1, 0].set_xlabel("time in the recording (s)" if hop_s else "window")
    fig.supylabel(f"int8 score ({_unit(units)})", fontsize=9)
    handles, labels = [], []
    for ax in axes[:, 0]:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels), fontsize=8, frameon=False)
    return save(fig, path), len(recs), len(np.unique(split.recording))


def _labels(ax) -> list[str]:  # type: ignore[no-untyped-def]
    return ax.get_legend_handles_labels()[1]


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    d = np.diff(np.r_[0, np.asarray(mask, np.int8), 0])
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1), strict=True))


def plot_roc_pr(labels, float_scores, int8_scores, path: Path) -> str:  # type: ignore[no-untyped-def]
    """float_scores None: an imported model (int8 only)."""
    fig, (a, b) = figure(9, 3.8, ncols=2)
    for name, s in (("float", float_scores), ("int8", int8_scores)):
        if s is None:
            continue
        fpr, tpr = roc_curve(labels, s)
        a.plot(fpr, tpr, label=name)
        rec, prec = pr_curve(labels, s)
        b.plot(rec, prec, label=name)
    a.plot([0, 1], [0, 1], color="grey", ls=":")
    a.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    b.set(xlabel="recall", ylabel="precision", title="Precision-recall")
    a.legend(fontsize=8, loc="lower right")
    b.legend(fontsize=8, loc="lower left")
    return save(fig, path)


def plot_levels(levels: dict[str, int], floor: int, path: Path) -> str:
    fig, ax = figure(min(10.0, max(6.0, 0.45 * len(levels) + 2)), 3.4)
    names = list(levels)
    vals = [levels[n] for n in names]
    ax.bar(names, vals, color=["C3" if v < floor else "C0" for v in vals])
    ax.axhline(floor, color="red", ls=":", label=f"warning floor {floor}")
    ax.set_ylim(0, 300)
    ax.set_ylabel("distinct int8 levels (of 256)")
    ax.set_title("int8 input levels per channel (normal training data)")
    ax.tick_params(axis="x", labelsize=8)
    ax.legend(fontsize=8, loc="upper right")
    return save(fig, path)


def feature_rows(frontend: dict, length: int, channel_names: list[str]) -> list[tuple[str, np.ndarray]]:
    """One plot row per (front-end kind, channel): its label and its indices in the feature vector."""
    channels = len(channel_names)
    rows: list[tuple[str, np.ndarray]] = []
    base = 0
    sizes = frontend["sizes"]
    for kind in frontend["kinds"]:
        per = sizes[kind] // channels
        for c, name in enumerate(channel_names):
            if kind == "raw":  # time-major: sample t of channel c is element t*C + c
                idx = base + np.arange(length) * channels + c
                rows.append((name, idx))
            else:  # channel-major blocks
                rows.append((f"{name} {kind}", base + c * per + np.arange(per)))
        base += sizes[kind]
    return rows


def pick_windows(scores, labels) -> list[tuple[str, int]]:  # type: ignore[no-untyped-def]
    """The windows the reconstruction figure shows: a typical normal one and the worst anomalous one."""
    if labels is not None and np.any(labels == 0):
        idx = np.flatnonzero(labels == 0)
        picks = [("most typical normal test window", int(idx[np.argmin(scores[idx])]))]
    else:
        picks = [("lowest-scoring test window (no normal test window)", int(np.argmin(scores)))]
    if labels is not None and np.any(labels == 1):
        idx = np.flatnonzero(labels == 1)
        picks.append(("highest-scoring anomalous window", int(idx[np.argmax(scores[idx])])))
    else:
        picks.append(("highest-scoring window", int(np.argmax(scores))))
    return picks


def plot_reconstructions(x, recon_float, recon_int8, scores, labels, rows, path: Path) -> str:  # type: ignore[no-untyped-def]
    """Input vs float and int8 reconstructions (normalized units), row by feature block (recon_float None:
    an imported model, int8 only)."""
    picks = pick_windows(scores, labels)
    fig, axes = figure(10, 1.5 * len(rows) + 1.0, nrows=len(rows), ncols=len(picks), squeeze=False)
    for col, (title, i) in enumerate(picks):
        for r, (label, idx) in enumerate(rows):
            ax = axes[r][col]
            ax.plot(x[i][idx], label="input", lw=1.5)
            if recon_float is not None:
                ax.plot(recon_float[i][idx], label="float", lw=1)
            ax.plot(recon_int8[i][idx], label="int8", lw=1, ls="--")
            ax.set_ylabel(label, fontsize=8)
            ax.tick_params(labelsize=8)
            if r == 0:
                ax.set_title(f"{title} #{i} (score {scores[i]:.3g})", fontsize=9)
        axes[-1][col].set_xlabel("sample in the window (raw) / feature index", fontsize=8)
    fig.supylabel("normalized units", fontsize=9)
    handles, labs = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labs, loc="outside lower center", ncols=len(labs), fontsize=8, frameon=False)
    return save(fig, path)


def plot_latent(latent, labels, faults, path: Path) -> str:  # type: ignore[no-untyped-def]
    z = latent - latent.mean(axis=0)
    _, _, vt = np.linalg.svd(z, full_matrices=False)
    p = z @ vt[:2].T if vt.shape[0] >= 2 else np.c_[z[:, :1], np.zeros(len(z))]
    fig, ax = figure(7.5, 4.4)
    if faults is not None:
        groups = np.asarray(faults, dtype=object)
    elif labels is not None:
        groups = np.where(labels == 1, "anomalous", "normal").astype(object)
    else:
        groups = np.full(len(p), "test", dtype=object)
    for g in sorted(set(groups)):
        sel = groups == g
        ax.scatter(p[sel, 0], p[sel, 1], s=6, alpha=0.6, label=f"{g} ({int(sel.sum())})")
    ax.set(title="Latent codes (first two principal components)", xlabel="PC1", ylabel="PC2")
    ax.legend(fontsize=8, markerscale=2, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return save(fig, path)


def plot_float_vs_int8(float_scores, int8_scores, threshold, path: Path, units: str) -> str:  # type: ignore[no-untyped-def]
    fig, ax = figure(6.0, 4.6)
    ax.scatter(float_scores, int8_scores, s=5, alpha=0.5)
    lim = [min(float_scores.min(), int8_scores.min()), max(float_scores.max(), int8_scores.max())]
    ax.plot(lim, lim, color="grey", ls=":", label="y = x")
    ax.axhline(threshold, color="red", lw=0.8, label="int8 threshold")
    log_axis(ax, "x")
    log_axis(ax, "y")
    unit = _unit(units)
    ax.set_xlabel(f"float score, Keras ({unit})")
    ax.set_ylabel(f"int8 score, device ({unit})")
    ax.set_title("Float vs int8 scores")
    ax.legend(fontsize=8, loc="upper left")
    return save(fig, path)


# ---------------------------------------------------------------------------- captions
def saturation_text(manifest: dict) -> str:
    sat = manifest["metrics"].get("int8_saturation")
    if not sat or not (sat["test_windows_input_clipped"] or sat["test_windows_output_clipped"]):
        return ""
    lo, hi = sat["input_range"]
    olo, ohi = sat["output_range"]
    return (
        f" {sat['test_windows_input_clipped']} of {sat['test_windows']} "
        "test windows have int8 inputs at -128 or "
        f"127 (beyond [{lo:.3g}, {hi:.3g}] normalized units) "
        f"and {sat['test_windows_output_clipped']} outputs "
        f"at the ends of the output range [{olo:.3g}, {ohi:.3g}] "
        f"(output scale {manifest['output']['scale']:.3g} "
        f"per level): such windows' scores stop growing, and no score can exceed {sat['score_ceiling']:.4g} "
        f"(highest seen: {sat['max_test_score']:.4g}), so "
        "anomalies far outside the training range all look alike."
    )


def _labels_of(scores: dict[str, np.ndarray]) -> np.ndarray | None:
    lab = scores.get("test_labels")
    return lab if lab is not None and len(lab) and len(lab) == len(scores["test_scores"]) else None


def _float_of(scores: dict[str, np.ndarray]) -> np.ndarray | None:
    """The float model's test scores, None without a float model (an imported model stores none)."""
    fl = scores.get("test_float_scores")
    return fl if fl is not None and len(fl) == len(scores["test_scores"]) and len(fl) else None


def threshold_figures(out_dir: Path, manifest: dict, scores: dict[str, np.ndarray]) -> list[Figure]:
    """The pictures that depend on the threshold, with their captions (redrawn when it moves)."""
    val_scores, test_scores = scores["val_scores"], scores["test_scores"]
    test_float, labels = _float_of(scores), _labels_of(scores)
    thr = float(manifest["threshold"]["value"])
    units = score_units(manifest)
    method = manifest["threshold"]["method"].replace("_", " ")
    sat = manifest["metrics"].get("int8_saturation") or {}
    ceiling = sat.get("score_ceiling")
    show_ceiling = ceiling if ceiling and sat.get("max_test_score", 0) > 0.5 * ceiling else None
    has_labels = labels is not None and 0 < labels.sum() < len(labels)
    val_fa = float(np.mean(np.asarray(val_scores, np.float32) > np.float32(thr))) if len(val_scores) else 0.0
    figs: list[Figure] = []
    cap = (
        "Look at the gap between the normal scores and the anomalous ones, and where the red threshold falls: "
        "normal windows to its right are false alarms, anomalous ones to its left are missed. "
        f"Validation split: {len(val_scores)} normal windows ({100 * val_fa:.2g} % above the threshold); "
        f"test split: {len(test_scores)} windows"
        + (f" ({int(labels.sum())} anomalous)" if labels is not None else " (unlabelled)")
        + f". Score = {units}; threshold {thr:.4g} ({method})."
        + saturation_text(manifest)
    )
    figs.append(
        (plot_scores(val_scores, test_scores, labels, thr, out_dir / "scores.png", units, show_ceiling), cap)
    )
    cap = (
        "Look at where the red line (the chosen threshold) crosses the curves: moving it right gives fewer "
        + (
            "false alarms but a lower recall. Precision and recall on the labelled test split, false-alarm rates on "
            "the normal test windows and the validation split; the dots mark the chosen threshold. "
            if has_labels
            else "false alarms on the validation split (the test split has no labels of both kinds, so precision "
            "and recall cannot be drawn); the dot marks the chosen threshold. "
        )
    )
    cap += "Move it without retraining: `tinyae threshold --method ...`."
    figs.append((plot_operating(labels if has_labels else None, test_scores, val_scores, thr,
                                out_dir / "operating.png", units), cap))  # fmt: skip
    op = manifest["metrics"].get("operation") or {}
    d = manifest["decision"]
    if len(test_scores) or len(val_scores):
        name, rows, total = plot_timeline(
            scores, thr, d["k"], d["n"], float(op.get("hop_s") or 0.0), out_dir / "timeline.png", units
        )
        split = "test" if len(test_scores) else "validation"
        shown = f"all {total}" if rows == total else f"the {rows} of {total} with the most wrong decisions"
        figs.append((
            name,
            "Look for red alarm ticks outside the shaded fault periods (false alarms) and shaded periods "
            f"without ticks (missed faults). Scores over time in {shown} recordings of the {split} split, "
            f"with the threshold (dashed) and alarm rule {d['k']} of {d['n']}.",
        ))  # fmt: skip
    if test_float is not None:  # none for an imported model
        cap = (
            "Look for points far from the dotted line: windows whose score quantization changed; points on the "
            f"other side of the red line than their float score changed decision. Test split: {len(test_scores)} "
            "windows, the float model's score (Keras) against the int8 score the device computes."
        )
        figs.append(
            (plot_float_vs_int8(test_float, test_scores, thr, out_dir / "float_vs_int8.png", units), cap)
        )
    return figs


def write_report(
    out_dir: Path,
    *,
    manifest: dict,
    history,  # type: ignore[no-untyped-def]
    scores: dict[str, np.ndarray],
    x_test,  # type: ignore[no-untyped-def]
    recon_float,  # type: ignore[no-untyped-def]
    recon_int8,  # type: ignore[no-untyped-def]
    latent,  # type: ignore[no-untyped-def]
    channel_names: list[str],
    faults,  # type: ignore[no-untyped-def]
    min_levels: int = 16,
) -> Path:
    """Every picture and the page (see the module docstring); `scores` is what scores.npz holds. history,
    recon_float and latent are None for an imported model (no float model; its float scores are empty)."""
    test_scores, test_float = scores["test_scores"], _float_of(scores)
    labels = _labels_of(scores)
    figs: list[Figure] = []
    if history is not None:
        figs.append((
            plot_loss(history, out_dir / "loss.png"),
            "Look at the validation curve: it should flatten near the training curve; far above it, the "
            "validation data differ from the training data. Training and validation splits, "
            f"{len(history.loss)} epochs; the dotted line marks the best validation epoch "
            f"({history.best_epoch + 1}), the model kept.",
        ))  # fmt: skip
    figs += threshold_figures(out_dir, manifest, scores)
    has_labels = labels is not None and 0 < labels.sum() < len(labels)
    if labels is not None and has_labels:
        figs.append((
            plot_roc_pr(labels, test_float, test_scores, out_dir / "roc_pr.png"),
            "Look at how close the curves come to the top-left (ROC) and top-right (precision-recall) corners"
            + (
                ", and whether float and int8 coincide (a gap is accuracy lost to quantization). "
                if test_float is not None
                else " (int8 scores only: an imported model has no float model). "
            )
            + f"Test split: {len(labels)} labelled windows ({int(labels.sum())} anomalous).",
        ))  # fmt: skip
    levels = manifest["metrics"].get("int8_input_levels")
    if levels:
        figs.append((
            plot_levels(levels, min_levels, out_dir / "levels.png"),
            f"Look for red bars: a channel whose normal data use fewer than {min_levels} of the 256 int8 input "
            "levels barely registers on the device. Training split.",
        ))  # fmt: skip
    if len(x_test):
        figs.append((
            plot_reconstructions(
                x_test, recon_float, recon_int8, test_scores, labels,
                feature_rows(manifest["frontend"], manifest["window"]["length"], channel_names),
                out_dir / "reconstructions.png",
            ),
            f"Look at how closely the {'float and int8' if recon_float is not None else 'int8'} "
            "reconstructions follow the input in the normal window and how far they "
            "miss in the anomalous one: that difference is the score. Test split: "
            + " and ".join(f"{t} (#{i})" for t, i in pick_windows(test_scores, labels))
            + ", in normalized units.",
        ))  # fmt: skip
    if latent is not None and len(latent) > 2:
        figs.append((
            plot_latent(latent, labels if has_labels else None, faults, out_dir / "latent.png"),
            "Look for groups: a fault whose codes sit apart from the normal ones is easy to detect. Test split: "
            f"the encoder's codes of {len(latent)} windows on their first two principal components.",
        ))  # fmt: skip
    return _write(out_dir, manifest, figs)


def load_scores(out_dir: Path) -> dict[str, np.ndarray]:
    with np.load(out_dir / "scores.npz") as z:
        return {k: z[k] for k in z.files}


def rewrite_threshold_parts(out_dir: Path, manifest: dict, scores: dict) -> Path:
    """Redraw the threshold-dependent pictures and the page (tinyae threshold)."""
    new = dict(threshold_figures(out_dir, manifest, scores))
    path = out_dir / FIGURES_FILE
    old = json.loads(path.read_text()) if path.is_file() else []
    figs = [(f, new.pop(f, c)) for f, c in old] + list(new.items())
    return _write(out_dir, manifest, figs)


def _write(out_dir: Path, manifest: dict, figs: list[Figure]) -> Path:
    figs.sort(key=lambda fc: ORDER.index(fc[0][:-4]) if fc[0][:-4] in ORDER else len(ORDER))
    (out_dir / FIGURES_FILE).write_text(json.dumps(figs, indent=1) + "\n")
    path = out_dir / "report.html"
    path.write_text(page(manifest, figs))
    return path


# ---------------------------------------------------------------------------- the page
def _e(v: Any) -> str:
    return html.escape(str(v))


def _data_lines(manifest: dict) -> list[str]:
    from tinyae.train import summary as data_words

    data = manifest.get("data")
    if not data:
        return []
    lines = [data_words.channels_line(data), data_words.rate_line(data), data_words.labels_line(data)]
    split = data.get("split") or {}
    w = split.get("windows") or {}
    if split:
        lines.append(
            f"split: {split.get('description', '')}: train "
            f"{w.get('train')} windows, validation {w.get('val')}, "
            f"test {w.get('test')}"
        )
    out = data.get("outliers") or {}
    if out.get("count"):
        lines.append(
            f"outliers: {out['count']} training/validation "
            f"sample(s) beyond {out['limit_iqr']:g} IQR of their "
            f"channel's median ({out['mode']}): "
            + "; ".join(
                f"'{k}': " + ", ".join(f"{o['where']} = {o['value']:.6g}" for o in v["first"])
                for k, v in out["channels"].items()
            )
        )
    return [ln for ln in lines if ln]


def _table(table_id: str, caption: str, head: list[str], rows: list[list[Any]], numeric_from: int = 1) -> str:
    """A table with a short title ("title: explanation" -> the title as its caption, the explanation below)."""
    title, _, note = caption.partition(": ")

    def cls(i: int) -> str:
        return " class=n" if i >= numeric_from else ""

    th = "".join(f"<th{cls(i)}>{_e(h)}</th>" for i, h in enumerate(head))
    body = "".join(
        "<tr>" + "".join(f"<td{cls(i)}>{_e(c)}</td>" for i, c in enumerate(r)) + "</tr>" for r in rows
    )
    note_html = f'<p class="note">{_code(note[:1].upper() + note[1:])}</p>' if note else ""
    return (
        f'<table id="{table_id}"><caption>{_e(title)}</caption><thead><tr>{th}</tr></thead>'
        f"<tbody>{body}</tbody></table>{note_html}"
    )


def _code(text: str) -> str:
    """Escaped text with `command` spans as <code>."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", _e(text))


def _confusion(op: dict) -> str:
    c = op.get("confusion")
    if not c:
        return ""
    n_norm, n_an = c["tn"] + c["fp"], c["tp"] + c["fn"]

    def cell(k: str, of: int) -> str:
        return f"{c[k]:,} ({words.pct(c[k] / of)})"

    rows = [
        ["normal (label)", cell("tn", n_norm), cell("fp", n_norm), f"{n_norm:,}"],
        ["anomalous (label)", cell("fn", n_an), cell("tp", n_an), f"{n_an:,}"],
    ]
    r = op["alarm_rule"]
    return _table(
        "confusion",
        f"Confusion matrix, test split: windows by label and by the device's alarm (alarm rule {r['k']} of "
        f"{r['n']}) at the threshold {op['threshold']:.4g}; a false alarm is a normal window with an alarm, "
        "a miss an anomalous window without one.",
        ["", "no alarm", "alarm", "windows"],
        rows,
    )


def _per_hour_cell(r: dict) -> str:
    if not r["normal"]:
        return "—"
    v = r.get("false_alarms_per_hour")
    return "n/a" if v is None else words.count(v) if v else "0"


def _recordings(op: dict) -> str:
    recs = op.get("recordings") or []
    if not recs:
        return ""
    names = words.short_names([r["recording"] for r in recs])
    hop_s = op.get("hop_s")
    rows = []
    for name, r in zip(names, recs, strict=True):
        if not r.get("labelled", True):  # no labels: alarms, not false alarms
            rows.append([
                r["split"], name, f"{r['windows']:,}", words.duration(r["windows"] * hop_s) if hop_s else "n/a",
                "unlabelled", "unlabelled", f"{r['false_alarm_windows']:,} alarmed", "—", "—", "—", "—",
            ])  # fmt: skip
            continue
        rows.append([
            r["split"], name, f"{r['windows']:,}",
            words.duration(r["windows"] * hop_s) if hop_s else "n/a",
            f"{r['normal']:,}", f"{r['anomalous']:,}",
            f"{r['false_alarm_windows']:,} ({words.pct(r['false_alarm_rate'])})" if r["normal"] else "—",
            f"{r['false_alarms']:,}" if r["normal"] else "—", _per_hour_cell(r),
            f"{r['caught_windows']:,} ({words.pct(r['caught_rate'])})" if r["anomalous"] else "—",
            f"{r['detected']} of {r['episodes']}" if r["episodes"] else "—",
        ])  # fmt: skip
    return _table(
        "recordings",
        "Per recording: windows, false alarms on the normal windows (windows above the threshold and alarms, "
        "counted as runs of consecutive alarmed windows, per hour of normal data) and anomalous windows caught, "
        "fault episodes alarmed. Validation recordings are the parts of the training recordings held out "
        "from training.",
        [
            "split",
            "recording",
            "windows",
            "duration",
            "normal",
            "anomalous",
            "false-alarm windows",
            "false alarms",
            "per hour",
            "anomalous caught",
            "episodes alarmed",
        ],
        rows,
        numeric_from=2,
    )


def _delay_cell(d: dict | None) -> str:
    if not d:
        return "—"
    if "median_s" in d:
        return f"≤ {d['median_s']:.3g} s / ≤ {d['max_s']:.3g} s"
    return f"{d['median_windows']:.3g} / {d['max_windows']} windows"


def _faults(op: dict) -> str:
    faults = op.get("faults") or []
    if not faults:
        return ""
    rows = [
        [
            f["fault"],
            f"{f['windows']:,}",
            f"{f['caught_windows']:,} ({words.pct(f['caught_rate'])})",
            f"{f['episodes_detected']} of {f['episodes']}",
            _delay_cell(f.get("delay")),
            "n/a" if f.get("roc_auc") is None else f"{f['roc_auc']:.3f}",
        ]
        for f in faults
    ]
    return _table(
        "faults",
        "Per fault, test split: anomalous windows caught by the alarm, fault episodes (runs of consecutive "
        "anomalous windows) alarmed, the delay from the fault's start to the alarm (median / worst, an upper "
        "bound: the fault began within the last hop of its first window) and the int8 ROC AUC of the fault's "
        "windows against every normal test window.",
        ["fault", "windows", "caught", "episodes alarmed", "delay median / worst", "ROC AUC"],
        rows,
    )


def _threshold_items(thr: dict) -> str:
    """What the manifest says about the threshold, every key it has (methods add their own)."""
    items = [f"<li>threshold {thr['value']:.6g}, method {_e(thr['method'])}"
             + "".join(f", {_e(k)} {_e(v)}" for k, v in (thr.get("params") or {}).items()) + "</li>"]  # fmt: skip
    for k, v in thr.items():
        if k in ("value", "method", "params", "warnings"):
            continue
        shown = json.dumps(v) if isinstance(v, dict | list) else str(v)
        items.append(f"<li>{_e(k.replace('_', ' '))}: {_e(shown)}</li>")
    return "<ul>" + "".join(items) + "</ul>"


def _metrics_table(m: dict) -> str:
    if "int8" not in m:
        return ""
    fl = m.get("float")  # none for an imported model
    rows = [[k.replace("_", " "), f"{fl[k]:.4f}" if fl else "—", f"{m['int8'][k]:.4f}"]
            for k in ("roc_auc", "pr_auc", "f1", "precision", "recall")]  # fmt: skip
    float_words = "the float model at its own threshold" if fl else "no float model (imported)"
    return _table(
        "metrics",
        "Detection metrics, test split: per window (score above the threshold, no alarm rule); "
        f"{float_words}, the int8 model as the device runs it.",
        ["metric", "float", "int8 (device)"],
        rows,
    )


def _facts(manifest: dict) -> str:
    m = manifest["metrics"]
    facts = {
        "model sha256": manifest["model"]["sha256"],
        "ops": ", ".join(manifest["model"]["ops"]),
        "layers": " → ".join(str(layer["units"]) for layer in manifest["model"]["layers"]),
        "MACs per window": f"{manifest['model']['macs']:,}",
        "flatbuffer": f"{manifest['model']['tflite_bytes']:,} B",
        "TFLM arena": f"{manifest['arena']['bytes']:,} B",
        "window": "{length} × {channels}, hop {hop}".format(**manifest["window"]),
        "front-end": "{} → {} features".format(
            " + ".join(manifest["frontend"]["kinds"]), manifest["frontend"]["feature_size"]
        ),
        "validation false-alarm rate (windows)": words.pct(m.get("val_false_alarm_rate_int8")),
    }
    imp = manifest.get("imported")
    if imp:
        facts["imported by"] = manifest["generator"]["command"]
        facts["imported from"] = f"{imp['file']} (normalization: {imp['normalization']}; no float model)"
    else:
        facts["trained by"] = manifest["generator"]["command"]
    if manifest["generator"].get("threshold_command"):
        facts["threshold moved by"] = manifest["generator"]["threshold_command"]
    return _table("model", "The model", ["", ""], [[k, v] for k, v in facts.items()], numeric_from=9)


def page(manifest: dict, figs: list[Figure]) -> str:
    """The HTML page (see the module docstring)."""
    m = manifest["metrics"]
    op = m.get("operation") or {}
    found = words.findings(manifest)
    summary = "".join(f"<li><b>{_e(t)}.</b> {_code(s)}</li>" for t, s in found)
    warnings = manifest.get("warnings") or []
    warn_block = (
        '<section id="warnings"><h2>Warnings</h2><ul>' + "".join(f"<li>{_code(w)}</li>" for w in warnings)
        + "</ul></section>"
        if warnings
        else ""
    )  # fmt: skip
    missing = (
        f"<p><b>No detection metrics:</b> {_e(m['missing_reason'])}</p>" if m.get("missing_reason") else ""
    )
    data = "".join(f"<li>{_e(line)}</li>" for line in _data_lines(manifest))
    imgs = "".join(
        f'<figure id="fig-{_e(p[:-4])}"><img src="{_e(p)}" alt="{_e(c.split(". ")[0])}">'
        f"<figcaption>{_code(c)}</figcaption></figure>"
        for p, c in figs
    )
    shown = {k: v for k, v in manifest.items() if k != "training"}
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>tinyae model report</title>
<style>
body{{font-family:system-ui,sans-serif;max-width:1100px;margin:1.5em auto;padding:0 1em;line-height:1.45;color:#222}}
h1{{margin-bottom:0.2em}} h2{{margin-top:1.6em;border-bottom:1px solid #ddd}}
.sub{{color:#555;margin-top:0}} section#summary li{{margin:0.35em 0}}
section#warnings{{background:#fff7e0;border-left:4px solid #e0a800;padding:0.2em 1em}}
table{{border-collapse:collapse;margin:0.8em 0 1.4em;font-size:0.92em}}
caption{{caption-side:top;text-align:left;font-weight:bold;padding-bottom:0.3em}}
p.note{{color:#444;font-size:0.9em;max-width:1000px;margin-top:-0.8em}}
td,th{{border:1px solid #ccc;padding:3px 8px;vertical-align:top}} th{{background:#f3f3f3}}
td.n{{text-align:right;white-space:nowrap}} th.n{{text-align:right}} td{{overflow-wrap:break-word}}
img{{max-width:100%;height:auto}} figure{{margin:1.8em 0}}
figcaption{{color:#333;font-size:0.92em;max-width:1000px}}
details pre{{white-space:pre-wrap;word-break:break-all;font-size:0.8em;background:#f7f7f7;padding:0.6em}}
code{{background:#f3f3f3;padding:0 0.2em}}
</style></head>
<body>
<h1>tinyae model report</h1>
<p class="sub">model {_e(manifest["model"]["sha256"][:12])}…, {_e(manifest["data"].get("source", ""))} data,
window {manifest["window"]["length"]} × {manifest["window"]["channels"]}</p>
<section id="summary"><h2>Summary</h2>
<p>{_e(words.operating_line(manifest))}</p>
<ul>{summary}</ul></section>
{warn_block}
<section id="operation"><h2>At the chosen threshold</h2>
{_threshold_items(manifest["threshold"])}
{_confusion(op)}
{_recordings(op)}
{_faults(op)}
{_metrics_table(m)}
{missing}
</section>
<section id="pictures"><h2>Pictures</h2>
{imgs}
</section>
<section id="about"><h2>Model and data</h2>
{_facts(manifest)}
<ul>{data}</ul>
</section>
<section id="manifest-section"><h2>Manifest</h2>
<p>Every figure above comes from <a href="manifest.json">manifest.json</a> (and scores.npz) in this folder.</p>
<details id="manifest"><summary>manifest.json without the loss history (click to open)</summary>
<pre>{_e(json.dumps(shown, indent=1))}</pre></details>
</section>
</body></html>
"""
