"""The report: pictures a person would rather look at than read, and one HTML page that shows them."""

from __future__ import annotations

import html
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from train.metrics import pr_curve, roc_curve


def _save(fig, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def plot_loss(history, path: Path) -> str:
    fig, ax = plt.subplots(figsize=(6, 3.4))
    epochs = np.arange(1, len(history.loss) + 1)
    ax.plot(epochs, history.loss, label="train (incl. penalty)")
    ax.plot(epochs, history.val_loss, label="validation")
    ax.axvline(history.best_epoch + 1, color="grey", ls=":", label="best epoch (restored)")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title("Training")
    ax.legend()
    return _save(fig, path)


def plot_scores(val_scores, test_scores, labels, threshold, path: Path) -> str:
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    allv = np.concatenate([val_scores, test_scores])
    lo = max(float(np.min(allv[allv > 0])) if np.any(allv > 0) else 1e-6, 1e-9)
    bins = np.geomspace(lo, max(float(allv.max()), lo * 10), 60)
    ax.hist(val_scores, bins=bins, alpha=0.5, label="validation (normal)", density=True)
    if labels is not None:
        ax.hist(test_scores[labels == 0], bins=bins, alpha=0.5, label="test normal", density=True)
        ax.hist(test_scores[labels == 1], bins=bins, alpha=0.5, label="test anomalous", density=True)
    else:
        ax.hist(test_scores, bins=bins, alpha=0.5, label="test", density=True)
    ax.axvline(threshold, color="red", label=f"threshold {threshold:.4g}")
    ax.set_xscale("log")
    ax.set_xlabel("int8 score (device)")
    ax.set_ylabel("density")
    ax.set_title("Score distributions")
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_roc_pr(labels, float_scores, int8_scores, path: Path) -> str:
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.8))
    for name, s in (("float", float_scores), ("int8", int8_scores)):
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


def plot_reconstructions(x, recon_float, recon_int8, scores, labels, rows, path: Path) -> str:
    """Input vs float and int8 reconstructions (normalized units), row by feature block."""
    picks = [("most typical normal window", int(np.argmin(scores)))]
    if labels is not None and np.any(labels == 1):
        idx = np.flatnonzero(labels == 1)
        picks.append(("highest-scoring anomalous window", int(idx[np.argmax(scores[idx])])))
    else:
        picks.append(("highest-scoring window", int(np.argmax(scores))))
    fig, axes = plt.subplots(
        len(rows), len(picks), figsize=(5 * len(picks), 1.8 * len(rows) + 0.6), squeeze=False
    )
    for col, (title, i) in enumerate(picks):
        for r, (label, idx) in enumerate(rows):
            ax = axes[r][col]
            ax.plot(x[i][idx], label="input", lw=1.5)
            ax.plot(recon_float[i][idx], label="float", lw=1)
            ax.plot(recon_int8[i][idx], label="int8", lw=1, ls="--")
            ax.set_ylabel(label, fontsize=8)
            if r == 0:
                ax.set_title(f"{title} (score {scores[i]:.3g})", fontsize=9)
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
        ax.scatter(p[sel, 0], p[sel, 1], s=6, alpha=0.6, label=str(g))
    ax.set(title="Latent codes (first two principal components)", xlabel="PC1", ylabel="PC2")
    ax.legend(fontsize=7, markerscale=2)
    return _save(fig, path)


def plot_float_vs_int8(float_scores, int8_scores, threshold, path: Path) -> str:
    fig, ax = plt.subplots(figsize=(4.8, 4.2))
    ax.scatter(float_scores, int8_scores, s=5, alpha=0.5)
    lim = [min(float_scores.min(), int8_scores.min()), max(float_scores.max(), int8_scores.max())]
    ax.plot(lim, lim, color="grey", ls=":", label="y = x")
    ax.axhline(threshold, color="red", lw=0.8, label="int8 threshold")
    ax.set(xscale="log", yscale="log", xlabel="float score (Keras)", ylabel="int8 score (device)")
    ax.set_title("Float vs int8 scores")
    ax.legend(fontsize=8)
    return _save(fig, path)


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
) -> Path:
    thr = manifest["threshold"]["value"]
    pictures = [plot_loss(history, out_dir / "loss.png")]
    pictures.append(plot_scores(val_scores, test_scores, labels, thr, out_dir / "scores.png"))
    has_labels = labels is not None and 0 < labels.sum() < len(labels)
    if has_labels:
        pictures.append(plot_roc_pr(labels, test_float_scores, test_scores, out_dir / "roc_pr.png"))
    if len(x_test):
        pictures.append(
            plot_reconstructions(
                x_test,
                recon_float,
                recon_int8,
                test_scores,
                labels,
                feature_rows(manifest["frontend"], manifest["window"]["length"], channel_names),
                out_dir / "reconstructions.png",
            )
        )
        pictures.append(
            plot_float_vs_int8(test_float_scores, test_scores, thr, out_dir / "float_vs_int8.png")
        )
    if latent is not None and len(latent) > 2:
        pictures.append(plot_latent(latent, labels if has_labels else None, faults, out_dir / "latent.png"))
    path = out_dir / "report.html"
    path.write_text(_html(manifest, pictures))
    return path


def _html(manifest: dict, pictures: list[str]) -> str:
    m = manifest["metrics"]
    rows = ""
    if "int8" in m:
        for key in ("roc_auc", "pr_auc", "f1", "precision", "recall"):
            rows += f"<tr><td>{key}</td><td>{m['float'][key]:.4f}</td><td>{m['int8'][key]:.4f}</td></tr>"
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
        "threshold": f"{manifest['threshold']['value']:.6g} ({manifest['threshold']['method']})",
    }
    fact_rows = "".join(f"<tr><td>{k}</td><td>{html.escape(str(v))}</td></tr>" for k, v in facts.items())
    imgs = "".join(f'<figure><img src="{p}" alt="{p}"></figure>' for p in pictures)
    by_fault = m.get("int8_by_fault")
    fault_rows = "".join(f"<tr><td>{k}</td><td>{v:.4f}</td></tr>" for k, v in (by_fault or {}).items())
    shown = {k: v for k, v in manifest.items() if k != "training"}
    fault_table = f"<h2>int8 ROC AUC by fault type</h2><table>{fault_rows}</table>" if by_fault else ""
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>tinyae report</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px}}img{{max-width:100%}}figure{{margin:1em 0}}</style></head>
<body><h1>tinyae model report</h1>
<table>{fact_rows}</table>
<h2>Detection on the test split</h2>
<table><tr><th>metric</th><th>float</th><th>int8 (device)</th></tr>{rows}</table>
{fault_table}
{imgs}
<h2>Manifest</h2><pre>{html.escape(json.dumps(shown, indent=1))}</pre>
</body></html>
"""
