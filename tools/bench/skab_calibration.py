"""What on-site calibration buys on SKAB (Skoltech Anomaly Benchmark, ../shared/datasets/skab): one
model trained once on the normal recording (anomaly-free.csv), then, for each of the 34 experiments,
calibrated on its first 400 rows as a device would be on site; against the same model without
calibration, and against the published protocol's per-file retraining (a model trained on each
experiment's first 400 rows). Every test row (row 400 on) is scored by the window that ends on it;
F1, FAR (false alarm rate) and MAR (missed alarm rate) over all test rows of all experiments together,
int8 throughout (the host reference: tflite_micro, which the device's engines match bit for bit), the
device checked equal to it on a few experiments on the emulated board.

The files are read by the bench's SKAB reader (tools/bench/skab_data.py), which names a missing or
malformed file in one sentence.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyae.errors import UserError
from tinyae.tools.bench import models, skab_data
from tinyae.tools.bench.common import ROOT, SKAB_DATA, md_table, rel
from tinyae.tools.bench.skab_data import Experiment
from tinyae.train.manifest import Manifest

SKAB_DIR = SKAB_DATA
TRAIN_ROWS = 400  # the published protocol: each file's first 400 rows are its training part
WINDOW = 20  # rows (SKAB is sampled at about 1 Hz); hop 1: one window ends on every row
WINDOWS_PER_PHASE = (TRAIN_ROWS - WINDOW + 1) // 2  # two phases inside the first 400 rows: 190
EMULATED_EXPERIMENTS = 3  # experiments replayed on the emulated board (device = host)


@dataclass
class SkabData:
    normal: np.ndarray  # [T, C] the anomaly-free recording
    channels: list[str]
    experiments: list[Experiment]
    source: str


def read_skab(root: Path) -> SkabData:
    """anomaly-free/anomaly-free.csv and the 34 labelled experiments (valve1, valve2, other)."""
    if not (root / "anomaly-free" / "anomaly-free.csv").is_file():
        raise UserError(
            f"SKAB is not at {root} (no anomaly-free/anomaly-free.csv): the SKAB section is left out"
        )
    normal = skab_data.anomaly_free(root)
    return SkabData(
        normal.values, list(skab_data.CHANNELS), skab_data.experiments(root), os.path.relpath(root, ROOT)
    )


def _csv(path: Path, x: np.ndarray, names: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savetxt(path, x, delimiter=",", header=",".join(names), comments="", fmt="%.9g")
    return path


def overrides(csv: Path) -> tuple[str, ...]:
    return (
        "data.source=csv", f"data.paths={rel(csv)}", "data.sample_rate_hz=1.0", "window.hop=1",
        f"window.length={WINDOW}", f"calibration.windows={WINDOWS_PER_PHASE}",
    )  # fmt: skip


# SKAB's experiments sit far from the anomaly-free recording (another day): site means 27-58 of its
# standard deviations away on the accelerometer, temperature and flow channels, spreads 0.01-32 x. The
# default bounds refuse such sites (the device keeps its factory values); "SKAB bounds" open them.
SKAB_BOUNDS = {
    "max_shift_std": 100.0,
    "max_scale_ratio": 100.0,
    "max_threshold_ratio": 1.0e4,
    "max_over_fraction": 1.0,
    "max_over_stretch": [32, 32],  # a site the factory model finds anomalous throughout is the point here
}
# The calibration settings compared: (calibration config changes, bounds)
VARIANTS = {
    "default bounds: offsets + threshold": ({}, None),
    "SKAB bounds: offsets + threshold": ({}, SKAB_BOUNDS),
    "SKAB bounds: offsets + scales + threshold": ({"scales": True}, SKAB_BOUNDS),
    "SKAB bounds: threshold only": ({"offsets": False}, SKAB_BOUNDS),
}


def variant_dir(model_dir: Path, out: Path, changes: dict, bounds: dict | None) -> Path:
    """A copy of the model directory whose calibration settings (and headers) are changed; `bounds`
    replaces calibration.max_shift_std / max_scale_ratio / max_threshold_ratio / max_over_fraction /
    max_over_stretch. Every derived constant is recomputed by CalibSpec.rederive (the statistics rule keeps
    the model's: SKAB's channels drift at every length its training data show, so it asks for 1)."""
    from fractions import Fraction

    from tinyae.train.calibration.spec import manifest_quant
    from tinyae.train.export import write_headers

    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(model_dir, out)
    manifest = Manifest.load(out / "manifest.json")
    spec = manifest.calib_spec()
    values = dict(changes)
    if bounds is not None:
        over = Fraction(str(bounds["max_over_fraction"])).limit_denominator(1000)
        values |= {
            "max_shift_std": bounds["max_shift_std"], "max_scale_ratio": bounds["max_scale_ratio"],
            "max_threshold_ratio": bounds["max_threshold_ratio"], "over_num": over.numerator,
            "over_den": over.denominator, "max_over_stretch_setting": tuple(bounds["max_over_stretch"]),
        }  # fmt: skip
    new = spec.rederive(values, manifest_quant(manifest.to_dict()))
    manifest.calibration = new.to_manifest()
    manifest.write(out / "manifest.json")
    write_headers(manifest, (out / "model_int8.tflite").read_bytes(), out)
    return out


def counts(pred: np.ndarray, labels: np.ndarray) -> np.ndarray:
    p, y = pred.astype(bool), labels.astype(bool)
    return np.array([np.sum(p & y), np.sum(p & ~y), np.sum(~p & y), np.sum(~p & ~y)], np.int64)


def figures(c: np.ndarray) -> dict:
    tp, fp, fn, tn = (int(v) for v in c)
    return {
        "tp": tp, "fp": fp, "fn": fn, "tn": tn,
        "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0,
        "far": fp / (fp + tn) if fp + tn else 0.0,
        "mar": fn / (fn + tp) if fn + tp else 0.0,
    }  # fmt: skip


def _rows(x: np.ndarray) -> np.ndarray:
    """Indices of the windows (hop 1) ending on each test row."""
    return np.arange(TRAIN_ROWS, len(x)) - (WINDOW - 1)


def section(model_dir: Path, img_dir: Path, device_ok: bool, say: Callable[[str], None]) -> dict:
    from tinyae.train.calibration import mirror
    from tinyae.train.calibration import report as rep
    from tinyae.train.data.windowing import make_windows
    from tinyae.train.reference import HostReference

    try:
        data = read_skab(SKAB_DIR)
    except UserError as exc:
        return {"status": "not measured", "reason": str(exc)}
    work = model_dir / "skab"
    say(f"SKAB: training the model once on {data.source}/anomaly-free/anomaly-free.csv")
    spec_model = models.ModelSpec(
        "skab-factory", overrides(_csv(work / "anomaly-free.csv", data.normal, data.channels))
    )
    factory = models.train(spec_model, model_dir)
    ref = HostReference.from_manifest((factory.dir / "model_int8.tflite").read_bytes(), factory.typed)
    scorer = rep.scorer(ref)
    t_factory = np.float32(factory.manifest["threshold"]["value"])
    variants = {name: variant_dir(factory.dir, work / "variants" / f"v{i}", *how)
                for i, (name, how) in enumerate(VARIANTS.items())}  # fmt: skip
    specs = {name: Manifest.load(d / "manifest.json").calib_spec() for name, d in variants.items()}
    names = ["no calibration", *(f"calibrated: {v}" for v in VARIANTS), "per-file retraining"]
    totals = {k: np.zeros(4, np.int64) for k in names}
    per_exp: list[dict[str, object]] = []
    refusals: dict[str, list[dict[str, object]]] = {v: [] for v in VARIANTS}
    test_rows = anomalous_test_rows = 0
    for i, e in enumerate(data.experiments):
        say(f"SKAB: {e.name} ({i + 1} of {len(data.experiments)})")
        w = make_windows(e.values, WINDOW, 1)
        idx, y = _rows(e.values), e.labels[TRAIN_ROWS:]
        s_f = scorer(w, None)
        row: dict[str, object] = {
            "experiment": e.name,
            "rows": len(e.values),
            "test_rows": len(y),
            "anomalous_test_rows": int(y.sum()),
        }
        test_rows += len(y)
        anomalous_test_rows += int(y.sum())
        c = counts(s_f[idx] > t_factory, y)
        totals["no calibration"] += c
        row["no calibration"] = figures(c)
        for vname, d in variants.items():
            res = mirror.run(specs[vname], d, e.values[:TRAIN_ROWS], WINDOWS_PER_PHASE, scorer)
            if res.accepted:
                rec = res.parsed
                s_c = scorer(w, rep.correction_of(rec))
                c = counts(s_c[idx] > np.float32(rec.threshold), y)
                row[f"calibrated: {vname}"] = figures(c) | {
                    "threshold": rec.threshold,
                    "crc": f"{rec.crc:08x}",
                }
            else:  # the device keeps the values it had: the factory ones
                refusals[vname].append({"experiment": e.name, "outcome": res.outcome, "detail": res.detail})
                c = counts(s_f[idx] > t_factory, y)
                row[f"calibrated: {vname}"] = figures(c) | {"refused": res.outcome}
            totals[f"calibrated: {vname}"] += c
        c = _retrained(e, data.channels, work / "per-file" / e.name.replace("/", "-"))
        totals["per-file retraining"] += c
        row["per-file retraining"] = figures(c)
        per_exp.append(row)
    out: dict[str, object] = {
        "source": data.source,
        "experiments": len(data.experiments),
        "test_rows": test_rows,
        "anomalous_test_rows": anomalous_test_rows,
        "window": WINDOW, "windows_per_phase": WINDOWS_PER_PHASE, "train_rows": TRAIN_ROWS,
        "factory_model": {"command": factory.command, "shape": factory.shape, "threshold": float(t_factory),
                          "sha256": factory.manifest["model"]["sha256"]},
        "settings": {k: figures(v) for k, v in totals.items()},
        "refusals": refusals,
        "per_experiment": per_exp,
        "retrain_command": "tinyae model --config configs/default.toml --set "
        + " --set ".join(overrides(Path("FIRST_400_ROWS.csv"))),
    }  # fmt: skip
    if device_ok:
        say("SKAB: device = host on the emulated board")
        try:
            name = "SKAB bounds: offsets + threshold"
            check = _device_check(variants[name], factory, data, specs[name], ref, img_dir)
            out["device_check"] = check | {"variant": name}
        except UserError as exc:
            out["device_check"] = {"status": "not measured", "reason": str(exc)}
    return out


def _retrained(e: Experiment, names: list[str], out: Path) -> np.ndarray:
    """The published protocol: a model trained on this experiment's first 400 rows alone (the pipeline's
    own split of them: train | gap | validation | gap | test), its threshold, the experiment's test rows."""
    from tinyae.train import config
    from tinyae.train.data.windowing import make_windows
    from tinyae.train.pipeline import run
    from tinyae.train.reference import HostReference

    csv = _csv(out.parent / f"{out.name}.csv", e.values[:TRAIN_ROWS], names)
    cfg = config.load(ROOT / models.CONFIG, list(overrides(csv)))
    manifest = run(cfg, out, "tinyae.tools.bench.skab_calibration per-file model", show_progress=False)
    ref = HostReference.from_manifest((out / "model_int8.tflite").read_bytes(), manifest)
    s = ref.evaluate(make_windows(e.values, WINDOW, 1)).scores
    return counts(s[_rows(e.values)] > np.float32(manifest.threshold.value), e.labels[TRAIN_ROWS:])


def _device_check(
    model_dir: Path, factory: models.TrainedModel, data: SkabData, spec, ref, img_dir: Path
) -> dict:  # type: ignore[no-untyped-def]
    """A few experiments on the emulated board: calibrate on the first 400 rows (the record must be the
    host mirror's, bit for bit), then stream the whole file: every window's score bit-equal, every
    decision equal."""
    import tempfile

    from tinyae.tools.emulator.qemu import Emulator, build_image
    from tinyae.tools.link import calibration as cal
    from tinyae.tools.link import protocol as p
    from tinyae.tools.link.device import Device, open_port
    from tinyae.train.calibration import report as rep
    from tinyae.train.data.windowing import make_windows

    build_image(img_dir / "skab-core", model_dir=model_dir)
    elf = img_dir / "skab-core" / "tinyae.elf"
    rows = []
    groups: dict[str, Experiment] = {}
    for e in data.experiments:
        groups.setdefault(e.name.split("/")[0], e)
    for e in list(groups.values())[:EMULATED_EXPERIMENTS]:
        with tempfile.TemporaryDirectory() as flash, Emulator(elf, storage=flash) as emu:
            dev = Device(open_port(emu.url), timeout=20.0, name=emu.url)
            dev.handshake()
            run_ = cal.on_stream(dev, spec, e.values, WINDOWS_PER_PHASE, e.name)
            check = cal.against_mirror(run_, spec, model_dir, ref)
            got: dict[int, p.Result] = {}

            def keep(r: p.Result, got: dict[int, p.Result] = got) -> None:
                got[r.window_seq] = r

            summary = dev.stream(e.values, keep, retries=2)
            dev.close()
        # stored: the board uses its new record; any other outcome: it keeps the factory values
        rec = run_.candidate if run_.outcome == "stored" else None
        if run_.outcome == "stored" and rec is None:
            raise UserError(f"the emulated board stored a calibration of {e.name} but reported no record")
        w = make_windows(e.values, WINDOW, 1)
        want = rep.scorer(ref)(w, rep.correction_of(rec))
        thr = np.float32(rec.threshold if rec is not None else factory.manifest["threshold"]["value"])
        equal = sum(np.float32(got[k].score).tobytes() == want[k].tobytes() for k in got)
        same = sum(got[k].anomaly == bool(want[k] > thr) for k in got)
        rows.append({
            "experiment": e.name, "outcome": run_.outcome, "record_equal": check.record_equal,
            "calibration_scores_equal": f"{check.scores_equal}/{check.scores_compared}",
            "windows": len(w), "received": len(got), "lost": len(summary.lost_windows),
            "scores_bit_equal": int(equal), "decisions_equal": int(same),
        })  # fmt: skip
    return {"image": rel(elf), "rows": rows}


def render(s: dict) -> list[str]:
    from tinyae.tools.bench.common import fmt as _f

    out = ["### SKAB: one model, calibrated on site per experiment", ""]
    if s.get("status"):
        return [*out, f"{s['status']}: {s.get('reason', '')}", ""]
    out += [
        f"{s['experiments']} experiments of {s['source']}; the first {s['train_rows']} rows of each are its "
        f"normal part, the {s['test_rows']:,} rows after them ({s['anomalous_test_rows']:,} anomalous) are "
        f"scored, each by the window of {s['window']} rows ending on it (hop 1); F1 / FAR / MAR over all "
        "of them together, int8 (the host reference, which the device matches bit for bit).",
        "- **no calibration**: the model trained once on anomaly-free.csv "
        f"(`{s['factory_model']['command']}`, {s['factory_model']['shape']}), its threshold "
        f"{s['factory_model']['threshold']:.6g} everywhere.",
        "- **calibrated**: the same model, calibrated on each experiment's first 400 rows as a device does "
        f"on site ({s['windows_per_phase']} windows per phase; the host mirror, bit-identical to the "
        "device); a refused calibration leaves the factory values in use, as on the device.",
        f"- **per-file retraining** (SKAB's published protocol): a model trained on each experiment's first "
        f"400 rows (`{s['retrain_command']}`).",
        "",
    ]
    rows = []
    for name, f in s["settings"].items():
        ref = ""
        if name.startswith("calibrated: "):
            r = s["refusals"][name.removeprefix("calibrated: ")]
            ref = f"{len(r)} refused" + (f" ({', '.join(sorted({x['outcome'] for x in r}))})" if r else "")
        rows.append([name, _f(f["f1"], 3), f"{100 * f['far']:.2f} %", f"{100 * f['mar']:.2f} %",
                     f"{f['tp']:,} / {f['fp']:,} / {f['fn']:,} / {f['tn']:,}", ref])  # fmt: skip
    out += md_table(["setting", "F1", "FAR", "MAR", "TP / FP / FN / TN", "calibrations refused"], rows)
    dc = s.get("device_check")
    if dc and not dc.get("status"):
        out += ["", "Device = host on the emulated board (the core image of the model with the "
                f"calibration settings `{dc.get('variant', '')}`, calibrated on the first 400 rows streamed "
                "to it, then the whole file streamed):", ""]  # fmt: skip
        out += md_table(
            ["experiment", "outcome", "record = host mirror", "calibration windows' scores", "windows",
             "scores bit-equal", "decisions equal"],
            [[r["experiment"], r["outcome"], "yes" if r["record_equal"] else "**no**",
              r["calibration_scores_equal"], f"{r['received']:,} of {r['windows']:,}",
              f"{r['scores_bit_equal']:,}", f"{r['decisions_equal']:,}"] for r in dc["rows"]],
        )  # fmt: skip
    elif dc:
        out += ["", f"Device check {dc['status']}: {dc.get('reason', '')}"]
    out.append("")
    return out
