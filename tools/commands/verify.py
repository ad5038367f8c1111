"""`verify`: stream the test split (or `--csv`) with verification on and compare the device with the
host reference on exactly the windows the device forms (`make_windows(series, L, hop)`).

Compared: int8 network inputs (the device's preprocessing) and outputs, bit for bit; the dequantized
outputs (max abs error, RMSE, MAE, relative L2, cosine); the scores; the decisions; lost windows.

Score tolerance: host and device compute the score with the same float32 operations in the same order
(docs/architecture.md), so scores should be bit-equal; the check allows SCORE_RTOL = 1e-6 relative
anyway and reports how many are exactly equal. Decisions are compared on every window whose score
lies outside that tolerance band around the threshold.

The reference is `tinyae.train.reference.HostReference` computed with the integer arithmetic of the
engine the device reports in its handshake (the compiled engine, or its TFLM library by name and
version: train/boards.py device_arithmetic; a library tinyae knows no reference for is refused); tests of
the link swap `make_reference` for the stand-in engine's (tools/testing/simstub.py).

The decision is checked whole: every constant that decides an alarm (tools/commands/constants.py: model,
window, front-end, normalization, quantization, score, threshold, alarm rule, calibration constants and
record, firmware version) is compared with the artifacts, and the host's decisions are computed at the
artifacts' threshold (or the calibration record's) and alarm rule, never at the ones the device reports, so a device
flashed with stale constants cannot PASS.
Exit 0 when everything agrees, 1 on any mismatch or lost window, 2 on a user/device error (a partial
report of what was compared is still written).

Link faults (docs/protocol.md, Robustness): a corrupted result is a lost window (listed by number);
with `--retries N` the tool streams the windows it lost again (and resumes after a device reboot),
listing them under `retried_windows`; only windows that arrived intact (CRC-32 checked) with their
verification data are compared, so a fault can cost windows, never produce a wrong "verified" one.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass, field

import numpy as np
from rich.console import Group
from rich.markup import escape
from rich.table import Table

from tinyae import atomic, terminal
from tinyae.args import positive_int
from tinyae.errors import UserError
from tinyae.tools.budget.realtime import device_estimate
from tinyae.tools.commands import constants, saturation
from tinyae.tools.commands.common import (
    Artifacts,
    Source,
    add_csv_args,
    add_device_args,
    add_retries_arg,
    check_model,
    load_artifacts,
    load_sources,
    progress,
    select_windows,
    session,
    stderr_console,
    stdout_console,
)
from tinyae.tools.link import protocol as p
from tinyae.tools.link.device import DEFAULT_INFLIGHT, DeviceError, windows_for
from tinyae.train import preprocess
from tinyae.train.data import make_windows, window_labels
from tinyae.train.manifest import Manifest
from tinyae.train.warned import warn

SCORE_RTOL = 1e-6
EXIT_MISMATCH = 1
FIRST_MISMATCHES = 10


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    ap = sub.add_parser("verify", help="compare the device with the host reference, window by window")
    add_device_args(ap)
    add_csv_args(ap, "verify on")
    ap.add_argument(
        "--max-windows", type=positive_int, metavar="N", help="compare at most N windows (the first ones)"
    )
    ap.add_argument(
        "--every",
        type=positive_int,
        default=1,
        metavar="K",
        help="compare every K-th window of each series, each sent on its own (default 1: all)",
    )
    ap.add_argument("--json", metavar="FILE", help="write the report as JSON")
    ap.add_argument("--markdown", metavar="FILE", help="write the report as Markdown")
    ap.add_argument("--inflight", type=positive_int, default=DEFAULT_INFLIGHT, help=argparse.SUPPRESS)
    add_retries_arg(ap)
    ap.set_defaults(func=run)


def make_reference(art: Artifacts, info: p.Info):  # type: ignore[no-untyped-def]
    """The host reference for these artifacts, computed as the device's engine computes (its handshake
    names the engine and the TFLM library); UserError for a library tinyae knows no reference for."""
    art.require()
    if not art.tflite.is_file():
        raise UserError(
            f"{art.tflite} is missing; run `make model` or point --model-dir at complete artifacts"
        )
    from tinyae.train.boards import device_arithmetic
    from tinyae.train.reference import HostReference

    arithmetic = device_arithmetic(info.engine, info.library)
    return HostReference.from_manifest(art.tflite.read_bytes(), art.require(), arithmetic)


def apply_calibration(dev, info: p.Info, reference):  # type: ignore[no-untyped-def]
    """Calibration is part of the reference: a device calibrated on site corrects its raw samples with
    its record and decides with its threshold; the host reference applies the same correction, and the
    record is compared with the artifacts (constants.compare). Returns (report dict, Record) or (None,
    None) for factory values. A device in the middle of a calibration is refused."""
    from tinyae.tools.link.calibration import record_in_use

    if info.calib_state in (p.CalibState.STATS, p.CalibState.SCORES):
        raise UserError(
            f"{dev.name} is calibrating; wait until it finishes (`tinyae device info` shows its state) or "
            "stop it with `tinyae device calibrate --abort`, then verify"
        )
    if info.calib_state != p.CalibState.CALIBRATED:
        return None, None  # factory values: the reference as built
    status = dev.calib_query()
    rec = record_in_use(status)
    if rec is None or rec.crc != info.calib_crc:
        raise UserError(f"{dev.name} reports a calibration record it does not send; rerun")
    if rec.has_correction:
        reference.set_correction(rec.shift, rec.gain)
    return {"record_crc": f"{rec.crc:08x}", **rec.to_dict()}, rec


# ---------------------------------------------------------------------------- collecting
@dataclass
class Collected:
    """The device's results for one series, indexed by window number."""

    n_expected: int
    input_q: dict[int, np.ndarray] = field(default_factory=dict)
    output_q: dict[int, np.ndarray] = field(default_factory=dict)
    score: dict[int, float] = field(default_factory=dict)
    anomaly: dict[int, bool] = field(default_factory=dict)
    alarm: dict[int, bool] = field(default_factory=dict)
    status: dict[int, int] = field(default_factory=dict)
    cost: dict[int, int] = field(default_factory=dict)
    lost: list[int] = field(default_factory=list)
    retried: list[int] = field(default_factory=list)  # recovered by a replay after a link fault
    no_data: list[int] = field(default_factory=list)  # results without verification data

    def add(self, r: p.Result) -> None:
        w = r.window_seq
        self.score[w], self.anomaly[w], self.alarm[w] = float(r.score), r.anomaly, r.alarm
        self.status[w], self.cost[w] = r.status, r.cost
        if r.input_q is None or r.output_q is None:
            self.no_data.append(w)
            return
        self.input_q[w] = np.asarray(r.input_q, np.int8)
        self.output_q[w] = np.asarray(r.output_q, np.int8)


# ---------------------------------------------------------------------------- comparing
def compare(
    collected: list[Collected],
    refs: list,  # ReferenceResult per series
    wlabels: list[np.ndarray | None],
    info: p.Info,
    manifest: Manifest,
    origin: list[tuple[int, int]] | None = None,
    threshold: float | None = None,
) -> dict:
    """The report (JSON-able) over every window the device returned with verification data.

    origin[i] = (series, first window) of piece i when the pieces are a subset (--every): windows are
    reported by their number in the series. threshold: what the host decides at (the artifacts'
    threshold in use, constants.active_threshold); the device decided at its own.
    """
    thr = np.float32(manifest.threshold.value if threshold is None else threshold)
    s_out, z_out = manifest.output.scale, manifest.output.zero_point
    # the artifacts' alarm rule, like their threshold: a device built with another rule differs (the constant
    # "alarm rule", tools/commands/constants.py), it does not redefine what the host computes
    k, n = manifest.decision.k, manifest.decision.n
    dev_in, ref_in, dev_out, ref_out = [], [], [], []
    dev_s, ref_s, dev_an, dev_al, ref_al_ok, labels, costs, ids = [], [], [], [], [], [], [], []
    ref_an_all, band_all = [], []
    lost: list[dict] = []
    statuses: list[dict] = []
    for piece, (col, ref) in enumerate(zip(collected, refs, strict=True)):
        si, w0 = origin[piece] if origin else (piece, 0)
        lost += [{"series": si, "window": w0 + w} for w in col.lost]
        lost += [{"series": si, "window": w0 + w, "reason": "no verification data"} for w in col.no_data]
        ref_an, ref_al = preprocess.decisions(ref.scores, float(thr), k, n)
        band = np.abs(ref.scores.astype(np.float64) - float(thr)) <= SCORE_RTOL * max(abs(float(thr)), 1e-30)
        for w in sorted(col.input_q):
            if w >= len(ref.scores):
                lost.append({"series": si, "window": w0 + w, "reason": "beyond the data"})
                continue
            ids.append((si, w0 + w))
            dev_in.append(col.input_q[w])
            ref_in.append(ref.input_q[w])
            dev_out.append(col.output_q[w])
            ref_out.append(ref.output_q[w])
            dev_s.append(col.score[w])
            ref_s.append(float(ref.scores[w]))
            dev_an.append(col.anomaly[w])
            dev_al.append(col.alarm[w])
            ref_an_all.append(bool(ref_an[w]))
            band_all.append(bool(band[w]))
            # an alarm depends on the last n decisions: ambiguous when any of them is in the band
            ref_al_ok.append((bool(ref_al[w]), bool(band[max(0, w - n + 1) : w + 1].any())))
            piece_labels = wlabels[piece]
            labels.append(None if piece_labels is None or w >= len(piece_labels) else int(piece_labels[w]))
            costs.append(col.cost[w])
            if col.status[w] != 0:
                statuses.append({"series": si, "window": w0 + w, "status": col.status[w]})
    m = len(ids)
    report: dict = {
        "windows_expected": int(sum(c.n_expected for c in collected)),
        "windows_compared": m,
        "lost_windows": lost,
        "retried_windows": [
            {
                "series": (origin[i] if origin else (i, 0))[0],
                "window": (origin[i] if origin else (i, 0))[1] + w,
            }
            for i, c in enumerate(collected)
            for w in c.retried
        ],
        "engine_errors": statuses,
        "score_rtol": SCORE_RTOL,
        "threshold": float(thr),
    }
    if m == 0:
        report["ok"] = False
        return report
    di, ri = np.stack(dev_in), np.stack(ref_in)
    do, ro = np.stack(dev_out), np.stack(ref_out)
    in_mis = np.argwhere(di != ri)
    out_mis = np.argwhere(do != ro)

    def positions(mis: np.ndarray, dev: np.ndarray, ref: np.ndarray) -> list[dict]:
        return [
            {
                "series": ids[r][0],
                "window": ids[r][1],
                "element": int(e),
                "device": int(dev[r, e]),
                "host": int(ref[r, e]),
            }
            for r, e in mis[:FIRST_MISMATCHES]
        ]  # fmt: skip

    dd = preprocess.dequantize(do, s_out, z_out).astype(np.float64)
    hd = preprocess.dequantize(ro, s_out, z_out).astype(np.float64)
    diff = dd - hd
    norm_h, norm_d = float(np.linalg.norm(hd)), float(np.linalg.norm(dd))
    ds, rs = np.asarray(dev_s, np.float32), np.asarray(ref_s, np.float32)
    sdiff = np.abs(ds.astype(np.float64) - rs.astype(np.float64))
    srel = sdiff / np.maximum(np.abs(rs.astype(np.float64)), 1e-30)
    bad_scores = np.flatnonzero(srel > SCORE_RTOL)
    band_arr = np.asarray(band_all)
    an_dev, an_ref = np.asarray(dev_an), np.asarray(ref_an_all)
    dec_cmp = ~band_arr
    dec_bad = np.flatnonzero(dec_cmp & (an_dev != an_ref))
    al_cmp = np.asarray([not amb for _, amb in ref_al_ok])
    al_ref = np.asarray([a for a, _ in ref_al_ok])
    al_bad = np.flatnonzero(al_cmp & (np.asarray(dev_al) != al_ref))
    cost = np.asarray(costs, np.int64)
    report.update(
        {
            "input_elements": int(di.size),
            "input_bit_exact_windows": int(np.sum(np.all(di == ri, axis=1))),
            "input_mismatches": len(in_mis),
            "first_input_mismatches": positions(in_mis, di, ri),
            "output_elements": int(do.size),
            "output_bit_exact_windows": int(np.sum(np.all(do == ro, axis=1))),
            "output_mismatches": len(out_mis),
            "first_output_mismatches": positions(out_mis, do, ro),
            "output_max_abs_lsb": int(np.max(np.abs(do.astype(np.int32) - ro.astype(np.int32)))),
            "max_abs_error": float(np.max(np.abs(diff))),
            "rmse": float(np.sqrt(np.mean(diff**2))),
            "mae": float(np.mean(np.abs(diff))),
            "l2_relative_error": float(np.linalg.norm(diff) / max(norm_h, 1e-30)),
            "cosine_similarity": float(np.sum(dd * hd) / (norm_d * norm_h)) if norm_d * norm_h > 0 else 1.0,
            "scores_exact_equal": int(np.sum(ds == rs)),
            "score_max_abs_diff": float(np.max(sdiff)),
            "score_max_rel_diff": float(np.max(srel)),
            "scores_out_of_tolerance": [
                {"series": ids[i][0], "window": ids[i][1], "device": float(ds[i]), "host": float(rs[i])}
                for i in bad_scores[:FIRST_MISMATCHES]
            ],
            "n_scores_out_of_tolerance": len(bad_scores),
            "decisions_compared": int(np.sum(dec_cmp)),
            "decisions_in_band": int(np.sum(band_arr)),
            "decision_mismatches": [
                {"series": ids[i][0], "window": ids[i][1]} for i in dec_bad[:FIRST_MISMATCHES]
            ],
            "n_decision_mismatches": len(dec_bad),
            "alarms_compared": int(np.sum(al_cmp)),
            "n_alarm_mismatches": len(al_bad),
            "device_anomalies": int(np.sum(an_dev)),
            "host_anomalies": int(np.sum(an_ref)),
            "cost": {
                "unit": info.cost_unit,
                "min": int(cost.min()),
                "median": float(np.median(cost)),
                "max": int(cost.max()),
            },
        }
    )  # fmt: skip
    labelled = [(lab, a) for lab, a in zip(labels, dev_al, strict=True) if lab is not None]
    if labelled:
        lab = np.asarray([x for x, _ in labelled], bool)
        pred = np.asarray([a for _, a in labelled], bool)
        tp, fp = int(np.sum(lab & pred)), int(np.sum(~lab & pred))
        fn, tn = int(np.sum(lab & ~pred)), int(np.sum(~lab & ~pred))
        report["confusion"] = {
            "predicted_by": "device alarm",
            "tp": tp,
            "fp": fp,
            "fn": fn,
            "tn": tn,
            "precision": tp / (tp + fp) if tp + fp else None,
            "recall": tp / (tp + fn) if tp + fn else None,
        }
    report["ok"] = bool(
        not lost
        and not statuses
        and report["windows_compared"] == report["windows_expected"]
        and report["input_mismatches"] == 0
        and report["output_mismatches"] == 0
        and report["n_scores_out_of_tolerance"] == 0
        and report["n_decision_mismatches"] == 0
        and report["n_alarm_mismatches"] == 0
    )
    return report


# ---------------------------------------------------------------------------- presenting
def _g(x: float) -> str:
    return f"{x:.6g}" if isinstance(x, float) and math.isfinite(x) else str(x)


def report_rows(r: dict) -> list[tuple[str, str, bool | None]]:
    """(figure, value, ok) rows; ok None for figures that are information only."""
    rows: list[tuple[str, str, bool | None]] = [
        ("windows compared", f"{r['windows_compared']} of {r['windows_expected']}",
         r["windows_compared"] == r["windows_expected"]),
        ("lost windows", "none" if not r["lost_windows"] else
         f"{len(r['lost_windows'])}: " + ", ".join(
             f"{x['series']}:{x['window']}" for x in r["lost_windows"][:10]),
         not r["lost_windows"]),
    ]  # fmt: skip
    if r.get("constants"):
        bad = [c for c in r["constants"] if not c["ok"]]
        shown = "; ".join(f"{c['name']}: device {c['device']}, artifacts {c['artifacts']}" for c in bad)
        rows.append(("decision constants",
                     f"{len(r['constants']) - len(bad)} / {len(r['constants'])} equal to the artifacts"
                     + (f"; differ: {shown}" if bad else ""), not bad))  # fmt: skip
    if r.get("subset"):
        sub = r["subset"]
        what = (f"every {sub['every']}th window" if sub["every"] > 1 else "the first windows") + (
            f", at most {sub['max_windows']}" if sub["max_windows"] else ""
        )
        rows.append(
            ("subset checked", f"{what}: {r['windows_expected']} of {sub['windows_in_data']} windows", None)
        )
    if r.get("retried_windows"):
        ws = ", ".join(f"{x['series']}:{x['window']}" for x in r["retried_windows"][:10])
        rows.append(("retried windows (lost, streamed again)", f"{len(r['retried_windows'])}: {ws}", None))
    if r.get("engine_errors"):
        rows.append(("engine errors", str(len(r["engine_errors"])), False))
    if "output_mismatches" not in r:
        return rows
    n = r["windows_compared"]

    def mis(key: str) -> str:
        first = r[f"first_{key}_mismatches"]
        s = ", ".join(f"w{x['window']}[{x['element']}] {x['device']} vs {x['host']}" for x in first[:3])
        return f"{r[f'{key}_mismatches']} elements" + (f" (first: {s})" if s else "")

    rows += [
        ("int8 inputs bit-exact", f"{r['input_bit_exact_windows']} / {n} windows; mismatches: {mis('input')}",
         r["input_mismatches"] == 0),
        ("int8 outputs bit-exact",
         f"{r['output_bit_exact_windows']} / {n} windows; mismatches: {mis('output')}",
         r["output_mismatches"] == 0),
        ("output max abs error", f"{_g(r['max_abs_error'])} ({r['output_max_abs_lsb']} LSB)", None),
        ("output RMSE / MAE", f"{_g(r['rmse'])} / {_g(r['mae'])}", None),
        ("output L2 relative error", _g(r["l2_relative_error"]), None),
        ("output cosine similarity", _g(r["cosine_similarity"]), None),
        ("scores exactly equal", f"{r['scores_exact_equal']} / {n}", None),
        ("score max abs / rel diff", f"{_g(r['score_max_abs_diff'])} / {_g(r['score_max_rel_diff'])} "
         f"(tolerance {r['score_rtol']:g} rel; {r['n_scores_out_of_tolerance']} outside)",
         r["n_scores_out_of_tolerance"] == 0),
        ("decisions agree",
         f"{r['decisions_compared'] - r['n_decision_mismatches']} / {r['decisions_compared']} "
         f"({r['decisions_in_band']} in the tolerance band excluded); "
         f"anomalies device {r['device_anomalies']}, "
         f"host {r['host_anomalies']}", r["n_decision_mismatches"] == 0),
        ("alarms agree", f"{r['alarms_compared'] - r['n_alarm_mismatches']} / {r['alarms_compared']}",
         r["n_alarm_mismatches"] == 0),
        ("inference cost", f"min {r['cost']['min']:,} / median {r['cost']['median']:,.0f} / max "
         f"{r['cost']['max']:,} {r['cost']['unit']}", None),
    ]  # fmt: skip
    if r.get("input_saturation", {}).get("inputs"):
        sat = r["input_saturation"]
        limit = "" if sat["limit"] is None else f"; limit {100 * sat['limit']:.3g} %, {sat['limit_from']}"
        rows.append(("int8 inputs at -128/127", f"{sat['at_rails']:,} of {sat['inputs']:,} "
                     f"({100 * sat['share']:.3g} %{limit})", None))  # fmt: skip
    if "confusion" in r:
        c = r["confusion"]
        prec = "-" if c["precision"] is None else f"{c['precision']:.3f}"
        rec = "-" if c["recall"] is None else f"{c['recall']:.3f}"
        rows.append(("confusion (labels x device alarm)",
                     f"TP {c['tp']}  FP {c['fp']}  FN {c['fn']}  TN {c['tn']}  "
                     f"precision {prec}  recall {rec}", None))  # fmt: skip
    if r.get("calibration"):
        c = r["calibration"]
        rows.append(("on-site calibration (in the reference)",
                     f"record {c['record_crc']}: {', '.join(c['learned'])} from {c['windows']} windows per "
                     f"phase, threshold {c['threshold']:.6g}", None))  # fmt: skip
    if "device" in r:
        d = r["device"]
        rows.append(("device memory", f"flash {d['flash_used']:,} B, static RAM {d['ram_static']:,} B, "
                     "engine RAM "
                     f"{d['engine_ram']:,} B, stack {d['stack_bytes']:,} B", None))  # fmt: skip
    if "seconds" in r:
        rows.append(("time", f"{r['seconds']:.2f} s ({r['windows_per_second']:.1f} windows/s)", None))
    t = r.get("time_estimate") or {}
    if t.get("estimated"):
        ms = t["ms"]
        rows.append(("time per window, ESTIMATE",
                     f"{ms['window']['nominal']:.3f} ms ({ms['window']['low']:.3f}-{ms['window']['high']:.3f}) on "
                     f"{t['target']} at {t['clock_hz'] / 1e6:g} MHz: front-end {ms['frontend']['nominal']:.3f}, "
                     f"engine {ms['engine']['nominal']:.3f}, score {ms['score']['nominal']:.3f} ms ({t['engine']}, "
                     f"{t['how']}; Cortex-M4 TRM cycles, zero wait states; not a measurement)",
                     None))  # fmt: skip
    elif t:
        rows.append(("time per window, estimate", t["reason"], None))
    return rows


def rich_report(r: dict, title: str) -> Table:
    t = terminal.table(title=title, title_justify="left")
    t.add_column("check", style="bold")
    t.add_column("result")
    t.add_column("", justify="center")
    for name, value, ok in report_rows(r):
        mark = "" if ok is None else ("[green]ok[/]" if ok else "[bold red]FAIL[/]")
        t.add_row(name, value, mark)
    verdict = "[bold green]PASS[/]" if r["ok"] else "[bold red]FAIL[/]"
    if r.get("incomplete"):
        verdict += f" (incomplete: {r['incomplete']})"
    t.caption = f"verdict: {verdict}"
    return t


def markdown_report(r: dict, title: str) -> str:
    lines = [f"# {title}", "", f"**{'PASS' if r['ok'] else 'FAIL'}**", ""]
    if r.get("incomplete"):
        lines += [f"Incomplete: {r['incomplete']}", ""]
    lines += ["| check | result | ok |", "|---|---|:-:|"]
    for name, value, ok in report_rows(r):
        lines.append(
            f"| {name} | {value.replace('|', '/')} | {'' if ok is None else ('yes' if ok else '**no**')} |"
        )
    return "\n".join(lines) + "\n"


def write_reports(args: argparse.Namespace, report: dict, title: str) -> None:
    with atomic.files() as g:  # both reports or neither (tinyae/atomic.py)
        if args.json:
            g.write_text(args.json, json.dumps(report, indent=2) + "\n")
        if args.markdown:
            g.write_text(args.markdown, markdown_report(report, title))


def check_report_paths(args: argparse.Namespace) -> None:
    """An unwritable --json/--markdown is refused before the session, not after it."""
    for path in (args.json, args.markdown):
        if path:
            atomic.check_writable(path)


# ---------------------------------------------------------------------------- the command
def run(args: argparse.Namespace) -> int:
    check_report_paths(args)
    art = load_artifacts(args.model_dir)
    manifest = art.require()
    err = stderr_console()
    with session(args) as dev:
        info = dev.require_info()
        check_model(info, art)
        reference = make_reference(art, info)
        calibration, record = apply_calibration(dev, info, reference)
        verdict = constants.record_verdict(art.model_dir, record) if record is not None else "valid"
        checked = constants.compare(info, manifest, record, verdict)
        if record is not None:
            err.print(
                f"note: {dev.name} decides with on-site calibration record {record.crc:08x} "
                f"({', '.join(record.learned)} from {record.windows} windows per phase, threshold "
                f"{record.threshold:.6g}); the reference applies it (`tinyae device calibrate --factory` "
                "returns to the model's values)",
                soft_wrap=True,
                markup=False,
            )
        L, hop = info.window_len, info.hop
        all_sources = load_sources(args, info, art)
        sources: list[Source] = select_windows(all_sources, L, hop, args.every, args.max_windows)
        subset = len(sources) != len(all_sources) or sum(len(s.values) for s in sources) != sum(
            len(s.values) for s in all_sources
        )
        if args.every > 1 and manifest.decision.k > 1:
            # each window is its own piece: no alarm history, so a k-of-n alarm (k > 1) can never fire
            err.print(
                f"note: with --every {args.every} each window is sent on its own, so the alarm rule "
                f"({manifest.decision.k} of {manifest.decision.n} windows) cannot fire on either side: alarms "
                "and the confusion below are not the device's in operation; verify without --every for them",
                soft_wrap=True,
                markup=False,
            )
        origin = [(s.series, s.first_window) for s in sources]
        collected: list[Collected] = []
        wlabels = [window_labels(s.labels, L, hop) if s.labels is not None else None for s in sources]
        failure: DeviceError | None = None
        seconds = 0.0
        ref_name = getattr(reference, "name", "tflm")
        engine = info.engine + (f", {info.library}" if info.library else "")
        title = f"verify {dev.name} ({engine}) against the host reference ({ref_name} arithmetic)"
        try:
            dev.set(p.Param.VERIFY, 1)
            with progress(args) as prog:
                n_all = sum(windows_for(len(s.values), L, hop) for s in sources)
                task = prog.add_task("verify", total=n_all, status="")
                for src in sources:
                    col = Collected(windows_for(len(src.values), L, hop))
                    collected.append(col)

                    def on_result(r: p.Result, col: Collected = col) -> None:
                        col.add(r)
                        prog.update(task, advance=1, status=f"score {r.score:.4g}")

                    summary = dev.stream(src.values, on_result, inflight=args.inflight, retries=args.retries)
                    col.lost = list(summary.lost_windows)
                    col.retried = list(summary.retried_windows)
                    seconds += summary.seconds
            dev.set(p.Param.VERIFY, 0)
        except DeviceError as exc:
            failure = exc
        # Compare what arrived (all of it, or everything before a failure).
        refs = []
        for src in sources[: len(collected)]:
            refs.append(reference.evaluate(make_windows(src.values, L, hop)))
        if failure is not None:
            # windows never received because of the failure count as lost
            for col in collected:
                got = set(col.score) | set(col.lost)
                col.lost = sorted(set(col.lost) | (set(range(col.n_expected)) - got))
        report = compare(
            collected, refs, wlabels[: len(collected)], info, manifest, origin[: len(collected)],
            threshold=constants.active_threshold(manifest, record),
        )  # fmt: skip
        report["constants"] = [c.to_dict() for c in checked]
        counter = saturation.Counter(manifest)  # the device's int8 inputs at -128/127 (data out of range)
        for col in collected:
            if col.input_q:
                counter.add(np.stack(list(col.input_q.values())))
        report["input_saturation"] = counter.report(art.model_dir)
        names = list(manifest.window.channel_names)  # a channel that never moved (a stuck sensor)
        flat = saturation.flat_channels((s.values for s in sources), names)
        report["flat_channels"] = {k: {"value": v, "samples": n} for k, (v, n) in flat.items()}
        if constants.differences(checked):
            report["ok"] = False
            report["constants_sentence"] = constants.sentence(checked, art.model_dir)
        if subset:
            total = sum(windows_for(len(s.values), L, hop) for s in all_sources)
            report["subset"] = {
                "every": args.every,
                "max_windows": args.max_windows,
                "windows_in_data": total,
                "note": "windows sent on their own (--every) start the device's alarm history afresh",
            }
        if failure is not None:
            report["ok"] = False
            report["incomplete"] = str(failure)
        report["device"] = {
            "port": dev.name,
            "firmware": info.firmware_version,
            "target": info.target,
            "engine": info.engine,
            "library": info.library,
            "model_sha256": info.model_sha256.hex(),
            "flash_used": info.flash_used,
            "ram_static": info.ram_static,
            "engine_ram": info.engine_ram,
            "stack_bytes": info.stack_bytes,
            "tx_dropped": info.tx_dropped,
        }
        report["reference"] = ref_name
        arith = getattr(reference, "arithmetic", None)
        if arith is not None:
            report["reference_arithmetic"] = arith.description
        report["calibration"] = calibration
        report["link"] = {
            "lost_frames": dev.stats.lost_frames,
            "decode_errors": dev.stats.decode_errors,
            "retransmits": dev.stats.retransmits,
            "device_resets": dev.stats.resets,
            "replays": dev.stats.replays,
            "bytes_tx": dev.stats.bytes_tx,
            "bytes_rx": dev.stats.bytes_rx,
        }
        if seconds > 0:
            report["seconds"] = seconds
            report["windows_per_second"] = report["windows_compared"] / seconds
        report["time_estimate"] = device_estimate(args.model_dir, info.target, info.engine, info.library)
        write_reports(args, report, title)
        stdout_console().print(Group(rich_report(report, title)))
        warn(saturation.warning(report["input_saturation"]))
        warn(saturation.flat_warning(flat, len(names)))
        if failure is not None:
            err.print(f"partial report written ({report['windows_compared']} windows compared)")
            raise failure
        if not report["ok"]:
            err.print(f"[bold red]error:[/] {escape(verdict_sentence(report))}", soft_wrap=True)
            return EXIT_MISMATCH
        return 0


def verdict_sentence(r: dict) -> str:
    """What went wrong, in one sentence: a device that decides with other constants first; windows lost
    on the link are not a disagreement."""
    if r.get("constants_sentence"):
        return r["constants_sentence"]
    lost = r.get("lost_windows") or []
    if r["windows_compared"] == 0:
        return (
            f"no window was compared ({len(lost)} of {r['windows_expected']} lost on the link); check the "
            "link and rerun"
        )
    agree = (
        r.get("input_mismatches") == 0
        and r.get("output_mismatches") == 0
        and r.get("n_scores_out_of_tolerance") == 0
        and r.get("n_decision_mismatches") == 0
        and r.get("n_alarm_mismatches") == 0
        and not r.get("engine_errors")
    )
    if agree and lost:
        shown = ", ".join(f"{x['series']}:{x['window']}" for x in lost[:10])
        return (
            f"{len(lost)} window(s) were lost on the link and not compared ({shown}); the "
            f"{r['windows_compared']} that arrived agree with the host reference bit for bit; rerun "
            "(--retries N streams lost windows again)"
        )
    if r.get("engine_errors") and agree:
        return f"the device's engine failed on {len(r['engine_errors'])} window(s) (see the report)"
    return "the device and the host reference disagree (see the report)"
