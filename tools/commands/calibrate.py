"""`calibrate`: on-site calibration. The device learns per-channel offsets (and scales) of its raw
samples and its threshold from its first normal windows, on its own sensor or on a recording streamed
to it (--csv); the host mirror computes the same record from the same samples and must agree bit for
bit. --record installs a record made by `tinyae calibrate`; --factory returns to the model's
values; --abort stops a running calibration. Exit 0 when the device stored the record and the mirror
agrees, 1 when they disagree, 2 when the calibration was refused (one sentence why) or on an error."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Group

from tinyae import atomic
from tinyae.errors import UserError
from tinyae.tools.commands.common import (
    add_device_args,
    check_model,
    load_artifacts,
    progress,
    session,
    stderr_console,
    stdout_console,
    synthetic_source_note,
)
from tinyae.tools.link import calibration as cal
from tinyae.tools.link import protocol as p
from tinyae.train.calibration import report as rep
from tinyae.train.calibration.native import NativeCalib
from tinyae.train.calibration.record import VERDICTS, Record
from tinyae.train.calibration.spec import CalibSpec, check_crc
from tinyae.train.cli import recording_args
from tinyae.train.config import option_type
from tinyae.train.manifest import Manifest

EXIT_MISMATCH = 1


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    ap = sub.add_parser("calibrate", help="on-site calibration of offsets and threshold from normal windows")
    add_device_args(ap)
    ap.add_argument(
        "--windows",
        type=option_type("calibration.windows"),
        metavar="N",
        help="windows per phase, from the model's calibration.min_windows to calibration.windows (default: "
        "the most, or as many as --csv holds)",
    )
    ap.add_argument("--csv", help="stream this normal recording to the device instead of using its sensor")
    what = ap.add_mutually_exclusive_group()
    what.add_argument("--record", type=Path, help="install a record made by `tinyae calibrate`")
    what.add_argument(
        "--factory", action="store_true", help="erase the stored record: the model's values again"
    )
    what.add_argument("--abort", action="store_true", help="stop a calibration the device is running")
    ap.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    recording_args(ap)
    ap.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.json:
        atomic.check_writable(args.json)  # refused now, not after the calibration
    art = load_artifacts(args.model_dir)
    manifest = art.require()
    spec = manifest.calib_spec()
    check_crc(spec, manifest.to_dict())
    names = list(manifest.window.channel_names)
    with session(args) as dev:
        info = dev.require_info()
        check_model(info, art)
        if args.factory or args.abort:
            action = p.CalibAction.FACTORY if args.factory else p.CalibAction.ABORT
            dev.calib_command(action)
            status = dev.calib_query()
            stdout_console().print(state_line(dev.name, status))
            return 0
        if args.record is not None:
            return install(dev, args, spec, names)
        return calibrate(dev, args, spec, names, art.model_dir, manifest)


def state_line(port: str, status: p.CalibStatus) -> str:
    rec = cal.record_in_use(status)
    if rec is None:
        return f"{port}: factory values in use (no calibration record)"
    return (
        f"{port}: calibrated ({', '.join(rec.learned)} from {rec.windows} windows per phase), threshold "
        f"{rec.threshold:.6g}, record crc {rec.crc:08x}"
    )


def install(dev, args: argparse.Namespace, spec: CalibSpec, names: list[str]) -> int:  # type: ignore[no-untyped-def]
    if not args.record.is_file():
        raise UserError(f"{args.record} does not exist; make one with `tinyae calibrate --csv ...`")
    data = args.record.read_bytes()
    record = Record.from_bytes(data, str(args.record))
    verdict = NativeCalib(args.model_dir, spec.channels).verdict(data)
    if verdict != 1:
        raise UserError(
            f"{args.record} cannot be used by this model's firmware ({VERDICTS[verdict].replace('_', ' ')}); "
            "make it with `tinyae calibrate --model-dir` pointing at the artifacts the device runs"
        )
    before = dev.calib_query()
    dev.calib_command(p.CalibAction.WRITE, record=data)
    after = dev.calib_query()
    if after.record != data:
        raise UserError(f"{dev.name} acknowledged the record but does not report it in use; rerun")
    stdout_console().print(state_line(dev.name, after))
    if args.json:
        atomic.write_text(
            args.json,
            json.dumps(
                {"before": _status_dict(before), "after": _status_dict(after), "record": record.to_dict()},
                indent=2,
            )
            + "\n",
        )
    return 0


def calibrate(dev, args, spec: CalibSpec, names: list[str], model_dir: Path, manifest: Manifest) -> int:  # type: ignore[no-untyped-def]
    from tinyae.train.calibration.command import Columns, check_normal_labels, recording
    from tinyae.train.reference import HostReference

    info = dev.require_info()
    n = args.windows if args.windows is not None else info.calib_max_windows
    cal.check_device(info, spec, dev.name)
    spec.check_windows(n, f"{dev.name}'s firmware")
    tfl = Path(model_dir) / "model_int8.tflite"
    if not tfl.is_file():
        raise UserError(f"{tfl} is missing; run `make model` or point --model-dir at complete artifacts")
    reference = HostReference.from_manifest(tfl.read_bytes(), manifest)
    x = None
    if args.csv:
        from tinyae.train.calibration.mirror import check_length, default_windows

        columns = Columns(args.channels, args.timestamp, args.label, args.normal)
        x, labels, name, lines = recording(args.csv, manifest, columns, stderr_console().print)
        if args.windows is None:
            n = spec.check_windows(default_windows(spec, len(x), name, stderr_console().print))
        check_length(spec, n, len(x), name)
        check_normal_labels(labels, spec.total_samples(n), name, lines)
    with progress(args) as prog:
        task = prog.add_task("calibrate", total=spec.total_windows(max(n, 1)), status="")

        def on_progress(done: int, total: int, text: str) -> None:
            prog.update(task, completed=done, total=total, status=text)

        if x is not None:
            run_ = cal.on_stream(dev, spec, x, n, name, on_progress)
        else:
            run_ = cal.on_sensor(dev, spec, n, on_progress)
        prog.update(task, completed=len(run_.results), status=run_.outcome)
    if not args.csv and run_.clock_source & p.Clock.SYNTHETIC:
        stderr_console().print(f"[bold yellow]note:[/] {synthetic_source_note(dev.name, manifest)}")
    check = cal.against_mirror(run_, spec, model_dir, reference)
    candidate = run_.candidate
    if candidate is None:
        raise UserError(f"{dev.name} ended the calibration without a record; rerun")
    before = cal.record_in_use(run_.before)
    accepted = run_.outcome == "stored"
    scores_row = f"{check.scores_equal} / {check.scores_compared} bit-equal to the host reference"
    if check.first_mismatch is not None:
        w, d, h = check.first_mismatch
        scores_row += f" (first mismatch: window {w}, device {d:.9g}, host {h:.9g})"
    extra = [
        ("source", "-", f"{run_.source}: {len(run_.samples)} samples, {n} windows per phase"),
        ("device record vs host mirror", "-", "bit-identical" if check.record_equal else "DIFFERENT"),
        ("calibration windows' scores", "-", scores_row),
        ("NumPy cross-check", "-", "ok" if check.cross_check.get("ok") else f"FAILED {check.cross_check}"),
        ("stored", "-", f"{len(candidate.to_bytes())} B, crc {candidate.crc:08x}" if accepted else "no"),
        ("time", "-", f"{run_.seconds:.1f} s"),
    ]
    if run_.lost_windows:
        extra.append(("windows lost on the link", "-", ", ".join(map(str, run_.lost_windows[:10]))))
    if run_.skipped_slots or (run_.late_samples and not run_.clock_source & p.Clock.CATCH_UP):
        extra.append(
            ("device sample clock", "-", f"{run_.skipped_slots} slots skipped, {run_.late_samples} read late")
        )
    table = rep.table(
        f"on-site calibration of {dev.name}",
        spec,
        names,
        before,
        candidate,
        accepted,
        check.comparison,
        extra,
    )
    stdout_console().print(Group(table))
    refusal = None
    if not accepted:
        final = run_.final
        detail = final.detail if final is not None else 0
        refusal = "the calibration was refused: " + rep.refusal_sentence(
            run_.outcome, detail, candidate, spec, names, check.mirror, run_.source
        )
    if args.json:
        out = {
            "device": dev.name,
            "source": run_.source,
            "windows": n,
            "outcome": run_.outcome,
            "device_record_hex": run_.final.record.hex() if run_.final else None,
            "mirror": rep.result_dict(check.mirror, check.comparison, check.cross_check, spec, refusal),
            "record_equal": check.record_equal,
            "scores_compared": check.scores_compared,
            "scores_equal": check.scores_equal,
            "lost_windows": run_.lost_windows,
            "seconds": run_.seconds,
            "ok": check.ok,
        }
        atomic.write_text(args.json, json.dumps(out, indent=2) + "\n")
    if not check.ok:
        stderr_console().print(
            f"[bold red]error:[/] the device and the host mirror disagree: {check.disagreement()}"
            + (f" (the device refused the calibration: {refusal})" if refusal else "")
        )
        return EXIT_MISMATCH
    if refusal is not None:
        raise UserError(refusal)
    return 0


def _status_dict(s: p.CalibStatus) -> dict:
    rec = cal.record_in_use(s)
    return {"state": p.CalibState(s.state).name.lower(), "record": rec.to_dict() if rec else None}
