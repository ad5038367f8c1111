"""The report: pictures a person would rather look at than read, each with a caption saying what it
shows, with counts and units, and one HTML page that shows them with the data summary.

The pictures that depend on the threshold (score distributions, the operating curve, float vs int8)
are drawn by `threshold_figures`, which `tinyae threshold` calls again after moving the
threshold; the others are drawn once by `write_report`. `report_figures.json` lists every picture
with its caption, so the page can be rebuilt from the model directory alone.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from tinyae.train.metrics import pr_curve, roc_curve

Figure = tuple[str, str]  # (PNG file name, caption)
FIGURES_FILE = "report_figures.json"
ORDER = ("loss", "scores", "operating", "roc_pr", "levels", "reconstructions", "float_vs_int8", "latent")


def _save(fig, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def score_units(manifest: dict) -> str:
    """What one score is, in words and units."""
    kind = manifest["score"]["kind"]
    unit = "normalized units" + ("²" if kind == "mse" else "")
    what = "mean squared" if kind == "mse" else "mean absolute"
    return f"{what} reconstruction error over the window's {manifest['input']['size']} inputs, {unit}"


def plot_loss(history, path: Path) -> str:
    fig, ax = plt.subplots(figsize=(6, 3.4))
    epochs = np.arange(1, len(history.loss) + 1)
    ax.plot(epochs, history.loss, label="train (incl. penalty)")
    ax.plot(epochs, history.val_loss, label="validation")
    ax.axvline(history.best_epoch + 1, color="grey", ls=":", label="best epoch (restored)")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (normalized units², log)")
    ax.set_title("Training")
    ax.legend()
    return _save(fig, path)


def _log_bins(*arrays: np.ndarray) -> np.ndarray:
    allv = np.concatenate([np.asarray(a, np.float64) for a in arrays if len(a)])
    pos = allv[allv > 0]
    lo = max(float(pos.min()) if len(pos) else 1e-6, 1e-9)
    return np.geomspace(lo, max(float(allv.max()), lo * 10), 60)


def plot_scores(val_scores, test_scores, labels, threshold, path: Path, units: str, ceiling=None) -> str:
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    bins = _log_bins(val_scores, test_scores)
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
    ax.set_xscale("log")
    ax.set_xlabel(f"int8 score on the device ({units.split(',')[-1].strip()}, log)")
    ax.set_ylabel("windows")
    ax.set_title("Score distributions")
    ax.legend(fontsize=8)
    return _save(fig, path)


def operating_curve(labels, scores, val_scores, thresholds) -> dict[str, np.ndarray]:
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


def plot_operating(labels, scores, val_scores, threshold, path: Path, units: str) -> str:
    grid = np.unique(np.r_[_log_bins(val_scores, scores), np.float32(threshold)])
    curves = operating_curve(labels, scores, val_scores, grid)
    at = operating_curve(labels, scores, val_scores, [threshold])
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
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
    ax.set_xscale("log")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(f"threshold ({units.split(',')[-1].strip()}, log)")
    ax.set_ylabel("rate")
    ax.set_title("Operating curve: what each threshold would give")
    ax.legend(fontsize=7)
    return _save(fig, path)


def plot_roc_pr(labels, float_scores, int8_scores, path: Path) -> str:
    """float_scores None: an imported model (int8 only)."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.8))
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
    a.legend()
    b.legend()
    return _save(fig, path)


def plot_levels(levels: dict[str, int], floor: int, path: Path) -> str:
    fig, ax = plt.subplots(figsize=(max(4.0, 0.6 * len(levels) + 2), 3.2))
    names = list(levels)
    vals = [levels[n] for n in names]
    ax.bar(names, vals, color=["C3" if v < floor else "C0" for v in vals])
    ax.axhline(floor, color="red", ls=":", label=f"warning floor {floor}")
    ax.set_ylim(0, 260)
    ax.set_ylabel("distinct int8 levels (of 256)")
    ax.set_title("int8 input levels used by normal data, per channel")
    ax.tick_params(axis="x", labelrotation=45 if len(names) > 6 else 0, labelsize=8)
    ax.legend(fontsize=8)
    return _save(fig, path)


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


def pick_windows(scores, labels) -> list[tuple[str, int]]:
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


def plot_reconstructions(x, recon_float, recon_int8, scores, labels, rows, path: Path) -> str:
    """Input vs float and int8 reconstructions (normalized units), row by feature block (recon_float None:
    an imported model, int8 only)."""
    picks = pick_windows(scores, labels)
    fig, axes = plt.subplots(
        len(rows), len(picks), figsize=(5 * len(picks), 1.8 * len(rows) + 0.6), squeeze=False
    )
    for col, (title, i) in enumerate(picks):
        for r, (label, idx) in enumerate(rows):
            ax = axes[r][col]
            ax.plot(x[i][idx], label="input", lw=1.5)
            if recon_float is not None:
                ax.plot(recon_float[i][idx], label="float", lw=1)
            ax.plot(recon_int8[i][idx], label="int8", lw=1, ls="--")
            ax.set_ylabel(f"{label}\n(normalized)", fontsize=8)
            if r == 0:
                ax.set_title(f"{title} #{i} (score {scores[i]:.3g})", fontsize=9)
        axes[-1][col].set_xlabel("sample in the window (raw) / feature index", fontsize=8)
        axes[0][col].legend(fontsize=7)
    return _save(fig, path)


def plot_latent(latent, labels, faults, path: Path) -> str:
    z = latent - latent.mean(axis=0)
    _, _, vt = np.linalg.svd(z, full_matrices=False)
    p = z @ vt[:2].T if vt.shape[0] >= 2 else np.c_[z[:, :1], np.zeros(len(z))]
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
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
    ax.legend(fontsize=7, markerscale=2)
    return _save(fig, path)


def plot_float_vs_int8(float_scores, int8_scores, threshold, path: Path, units: str) -> str:
    fig, ax = plt.subplots(figsize=(4.8, 4.2))
    ax.scatter(float_scores, int8_scores, s=5, alpha=0.5)
    lim = [min(float_scores.min(), int8_scores.min()), max(float_scores.max(), int8_scores.max())]
    ax.plot(lim, lim, color="grey", ls=":", label="y = x")
    ax.axhline(threshold, color="red", lw=0.8, label="int8 threshold")
    unit = units.split(",")[-1].strip()
    ax.set(
        xscale="log",
        yscale="log",
        xlabel=f"float score, Keras ({unit})",
        ylabel=f"int8 score, device ({unit})",
    )
    ax.set_title("Float vs int8 scores")
    ax.legend(fontsize=8)
    return _save(fig, path)


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


def threshold_figures(
    out_dir: Path, manifest: dict, val_scores, test_scores, test_float, labels
) -> list[Figure]:
    """The pictures that depend on the threshold, with their captions (redrawn when it moves)."""
    thr = float(manifest["threshold"]["value"])
    units = score_units(manifest)
    method = manifest["threshold"]["method"]
    sat = manifest["metrics"].get("int8_saturation") or {}
    ceiling = sat.get("score_ceiling")
    show_ceiling = ceiling if ceiling and sat.get("max_test_score", 0) > 0.5 * ceiling else None
    has_labels = labels is not None and 0 < labels.sum() < len(labels)
    val_fa = float(np.mean(np.asarray(val_scores, np.float32) > np.float32(thr))) if len(val_scores) else 0.0
    figs: list[Figure] = []
    cap = (
        f"Scores of {len(val_scores)} normal validation windows and {len(test_scores)} test windows"
        + (f" ({int(labels.sum())} anomalous)" if labels is not None else " (unlabelled)")
        + f"; score = {units}. Red: the threshold {thr:.4g} ({method}); a window above it is anomalous. "
        f"{100 * val_fa:.2g} % of validation windows lie above it." + saturation_text(manifest)
    )
    figs.append(
        (plot_scores(val_scores, test_scores, labels, thr, out_dir / "scores.png", units, show_ceiling), cap)
    )
    cap = "What each threshold would give: " + (
        "precision and recall on the labelled test windows, false-alarm rate on the normal test windows and "
        "on the validation windows; the dots mark the chosen threshold. "
        if has_labels
        else "false-alarm rate on the normal validation windows (the test windows carry no labels of both "
        "kinds, so precision and recall cannot be drawn); the dot marks the chosen threshold. "
    )
    cap += "Move it without retraining: `tinyae threshold --method ...`."
    figs.append((plot_operating(labels if has_labels else None, test_scores, val_scores, thr,
                                out_dir / "operating.png", units), cap))  # fmt: skip
    if len(test_scores) and test_float is not None and len(test_float):  # none for an imported model
        cap = (
            f"Each of the {len(test_scores)} test windows: the float model's score (Keras) against the int8 "
            "score the device computes; on the dotted line quantization changed nothing."
        )
        figs.append(
            (plot_float_vs_int8(test_float, test_scores, thr, out_dir / "float_vs_int8.png", units), cap)
        )
    return figs


def write_report(
    out_dir: Path,
    *,
    manifest,
    history,
    val_scores,
    test_scores,
    test_float_scores,
    labels,
    x_test,
    recon_float,
    recon_int8,
    latent,
    channel_names,
    faults,
    min_levels: int = 16,
) -> Path:
    """history, test_float_scores, recon_float and latent are None for an imported model (no float model)."""
    figs: list[Figure] = []
    if history is not None:
        figs.append(
            (
                plot_loss(history, out_dir / "loss.png"),
                f"Loss per epoch ({len(history.loss)} epochs; the "
                f"best validation epoch, {history.best_epoch + 1}, "
                "is the model kept).",
            )
        )
    kinds = (
        "float and int8 scores" if test_float_scores is not None else "int8 scores (imported: no float model)"
    )
    figs += threshold_figures(out_dir, manifest, val_scores, test_scores, test_float_scores, labels)
    has_labels = labels is not None and 0 < labels.sum() < len(labels)
    if has_labels:
        figs.append(
            (
                plot_roc_pr(labels, test_float_scores, test_scores, out_dir / "roc_pr.png"),
                f"ROC and precision-recall curves over {len(labels)} labelled test windows "
                f"({int(labels.sum())} anomalous), {kinds}.",
            )
        )
    levels = manifest["metrics"].get("int8_input_levels")
    if levels:
        figs.append(
            (
                plot_levels(levels, min_levels, out_dir / "levels.png"),
                "How many of the 256 int8 input levels each channel's normal training data reach on the "
                f"device; below {min_levels} (red) the device barely sees the channel change.",
            )
        )
    if len(x_test):
        figs.append(
            (
                plot_reconstructions(
                    x_test,
                    recon_float,
                    recon_int8,
                    test_scores,
                    labels,
                    feature_rows(manifest["frontend"], manifest["window"]["length"], channel_names),
                    out_dir / "reconstructions.png",
                ),
                f"Input (normalized units) and its {'float and ' if recon_float is not None else ''}int8 "
                "reconstructions for two test windows: "
                + " and ".join(f"{t} (#{i})" for t, i in pick_windows(test_scores, labels))
                + ".",
            )
        )
    if latent is not None and len(latent) > 2:
        figs.append(
            (
                plot_latent(latent, labels if has_labels else None, faults, out_dir / "latent.png"),
                f"The encoder's codes of the {len(latent)} test "
                "windows, projected on their first two principal "
                "components, coloured by label or fault.",
            )
        )
    return _write(out_dir, manifest, figs)


def rewrite_threshold_parts(out_dir: Path, manifest: dict, scores: dict) -> Path:
    """Redraw the threshold-dependent pictures and the page (tinyae threshold)."""
    labels = scores["test_labels"] if len(scores["test_labels"]) else None
    new = dict(
        threshold_figures(
            out_dir,
            manifest,
            scores["val_scores"],
            scores["test_scores"],
            scores["test_float_scores"],
            labels,
        )
    )
    path = out_dir / FIGURES_FILE
    old = json.loads(path.read_text()) if path.is_file() else []
    figs = [(f, new.pop(f, c)) for f, c in old] + list(new.items())
    return _write(out_dir, manifest, figs)


def _write(out_dir: Path, manifest: dict, figs: list[Figure]) -> Path:
    figs.sort(key=lambda fc: ORDER.index(fc[0][:-4]) if fc[0][:-4] in ORDER else len(ORDER))
    (out_dir / FIGURES_FILE).write_text(json.dumps(figs, indent=1) + "\n")
    path = out_dir / "report.html"
    path.write_text(_html(manifest, figs))
    return path


def _data_lines(manifest: dict) -> list[str]:
    from tinyae.train import summary as words

    data = manifest.get("data")
    if not data:
        return []
    lines = [words.channels_line(data), words.rate_line(data), words.labels_line(data)]
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


def _html(manifest: dict, figs: list[Figure]) -> str:
    m = manifest["metrics"]
    rows = ""
    if "int8" in m:
        for key in ("roc_auc", "pr_auc", "f1", "precision", "recall"):
            fl = f"{m['float'][key]:.4f}" if "float" in m else "—"
            rows += f"<tr><td>{key}</td><td>{fl}</td><td>{m['int8'][key]:.4f}</td></tr>"
    missing = (
        f"<p><b>No detection metrics:</b> {html.escape(m['missing_reason'])}</p>"
        if m.get("missing_reason")
        else ""
    )
    thr = manifest["threshold"]
    facts = {
        "model sha256": manifest["model"]["sha256"],
        "ops": ", ".join(manifest["model"]["ops"]),
        "layers": " → ".join(str(layer["units"]) for layer in manifest["model"]["layers"]),
        "MACs": manifest["model"]["macs"],
        "flatbuffer": f"{manifest['model']['tflite_bytes']} B",
        "TFLM arena": f"{manifest['arena']['bytes']} B",
        "window": "{length} × {channels}, hop {hop}".format(**manifest["window"]),
        "front-end": "{} → {} features".format(
            " + ".join(manifest["frontend"]["kinds"]), manifest["frontend"]["feature_size"]
        ),
        "threshold": f"{thr['value']:.6g} ({thr['method']}"
        + "".join(f", {k} {v}" for k, v in thr.get("params", {}).items())
        + ")",
        "validation false-alarm rate": f"{m.get('val_false_alarm_rate_int8', float('nan')):.4g}",
    }
    imp = manifest.get("imported")
    if imp:
        facts["imported from"] = f"{imp['file']} (normalization: {imp['normalization']}; no float model)"
    fact_rows = "".join(f"<tr><td>{k}</td><td>{html.escape(str(v))}</td></tr>" for k, v in facts.items())
    warnings = "".join(
        f"<li>{html.escape(w)}</li>" for w in [*manifest.get("warnings", []), *thr.get("warnings", [])]
    )
    warn_block = f"<h2>Warnings</h2><ul>{warnings}</ul>" if warnings else ""
    data = "".join(f"<li>{html.escape(line)}</li>" for line in _data_lines(manifest))
    data_block = f"<h2>Data</h2><ul>{data}</ul>" if data else ""
    imgs = "".join(
        f'<figure><img src="{html.escape(p)}" '
        f'alt="{html.escape(p)}"><figcaption>{html.escape(c)}</figcaption>'
        "</figure>"
        for p, c in figs
    )
    by_fault = m.get("int8_by_fault")
    fault_rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{v:.4f}</td></tr>" for k, v in (by_fault or {}).items()
    )
    shown = {k: v for k, v in manifest.items() if k != "training"}
    fault_table = f"<h2>int8 ROC AUC by fault type</h2><table>{fault_rows}</table>" if by_fault else ""
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>tinyae report</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px}}img{{max-width:100%}}figure{{margin:1.5em 0}}
figcaption{{color:#333;font-size:0.9em;max-width:900px}}</style></head>
<body><h1>tinyae model report</h1>
<table>{fact_rows}</table>
{warn_block}
{data_block}
<h2>Detection on the test split</h2>
<table><tr><th>metric</th><th>float</th><th>int8 (device)</th></tr>{rows}</table>
{missing}
{fault_table}
{imgs}
<h2>Manifest</h2><pre>{html.escape(json.dumps(shown, indent=1))}</pre>
</body></html>
"""
