"""`record`: capture the device's raw sensor samples (sensor-mode telemetry) to a CSV the training
pipeline reads directly (`tinyae model --set data.source=csv --set data.paths=[FILE]`).

CSV: header `timestamp,<channel names>[,label]`; timestamp = device sample index / sample rate (s).
`tinyae.train.data.load_csv` does not skip comment lines, so `--note` and the capture's provenance (device,
model, rate, samples lost on the link, slots the device skipped, samples it read late) go to a sidecar
`FILE.json`. The timestamp is the sample's slot on the device's clock, so slots the device skipped show
as gaps. The CSV and the sidecar are written aside and moved into place together at the end: Ctrl-C
(exit 130), SIGTERM (143), a disconnect or a timeout keeps everything received, and a FILE that existed
is replaced only then.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

from tinyae import atomic
from tinyae.args import positive_float, positive_int
from tinyae.errors import Terminated, UserError, taken
from tinyae.tools.commands.common import (
    add_device_args,
    channel_names,
    load_artifacts,
    progress,
    session,
    stderr_console,
    synthetic_source_note,
)
from tinyae.tools.link import protocol as p
from tinyae.tools.link.device import SensorTracker

EXIT_PROBLEM = 1


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    ap = sub.add_parser("record", help="capture the device's sensor samples to a training-ready CSV")
    add_device_args(ap)
    ap.add_argument("--out", required=True, help="CSV file to write")
    ap.add_argument("--duration", type=positive_float, help="stop after S seconds")
    ap.add_argument("--samples", type=positive_int, help="stop after N samples")
    ap.add_argument("--label", help="value of a `label` column on every row (e.g. 0 normal, 1 anomaly)")
    ap.add_argument("--note", help="free text stored in the sidecar FILE.json")
    ap.add_argument("--no-timestamp", action="store_true", help="omit the timestamp column")
    ap.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.duration is None and args.samples is None:
        raise UserError("say when to stop: pass --duration S or --samples N (Ctrl-C also stops)")
    if args.samples is not None and args.samples < 1:
        raise UserError(f"--samples must be at least 1, got {args.samples}")
    out = Path(args.out)
    sidecar = out.with_suffix(out.suffix + ".json")
    for path in (out, sidecar):  # an unwritable folder is said now, not after the recording
        atomic.check_writable(path)
    art = load_artifacts(args.model_dir)
    err = stderr_console()
    interrupt: KeyboardInterrupt | None = None
    failure: Exception | None = None
    # The CSV and its sidecar are written aside and moved into place together at the end, also after
    # Ctrl-C or a cut link (what was received is kept); an existing FILE is replaced only then.
    with session(args) as dev, atomic.files() as g:
        info = dev.require_info()
        if not info.sample_rate_hz > 0:
            raise UserError(
                f"the device reports a sample rate of {info.sample_rate_hz:g} Hz, so no sample would ever be "
                "timed; flash firmware built from a model with a "
                "sample rate (data.sample_rate_hz or timestamps)"
            )
        names = channel_names(info, art)
        header = (
            ([] if args.no_timestamp else ["timestamp"]) + names + ([] if args.label is None else ["label"])
        )
        track = SensorTracker()
        written = 0
        t0 = time.monotonic()
        stopped_by = "limit"
        meta = {
            "note": args.note,
            "label": args.label,
            "port": dev.name,
            "firmware": info.firmware_version,
            "target": info.target,
            "model_sha256": info.model_sha256.hex(),
            "sample_rate_hz": info.sample_rate_hz,
            "channels": names,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        noted = False
        with g.path(out).open("w", newline="") as f, progress(args) as prog:
            w = csv.writer(f)
            w.writerow(header)
            task = prog.add_task("record", total=args.samples, status="")

            def done() -> bool:
                if args.samples is not None and written >= args.samples:
                    return True
                return args.duration is not None and time.monotonic() - t0 >= args.duration

            try:
                for msg in dev.sensor(stop=done):
                    if isinstance(msg, p.Result):
                        track.result(msg)
                        continue
                    if not isinstance(msg, p.Telemetry):
                        continue
                    track.telemetry(msg)
                    if track.synthetic and not noted:
                        err.print(f"[bold yellow]note:[/] {synthetic_source_note(dev.name, art.manifest)}")
                        noted = True
                    for i, sample in enumerate(msg.samples):
                        if args.samples is not None and written >= args.samples:
                            break
                        # the time of its slot: skipped slots leave a gap in the timestamps, which
                        # training refuses or splits at (data.gaps) instead of joining distant samples
                        slot = track.slot(msg, i)
                        row = [] if args.no_timestamp else [f"{slot / info.sample_rate_hz:.6f}"]
                        row += [repr(float(v)) for v in sample]
                        if args.label is not None:
                            row.append(args.label)
                        w.writerow(row)
                        written += 1
                    prog.update(task, completed=written, status=_status(track))
            except KeyboardInterrupt as exc:  # what was received is written, then the stop goes on
                taken(exc)
                stopped_by, interrupt = ("terminated" if isinstance(exc, Terminated) else "interrupted"), exc
            except UserError as exc:
                stopped_by, failure = "error", exc
        meta.update(
            {
                "samples": written,
                "seconds": round(time.monotonic() - t0, 3),
                "stopped_by": stopped_by,
                "lost_samples": [{"first": a, "count": n} for a, n in track.lost_samples],
                "lost_windows": track.lost_windows,
                "skipped_samples": [{"before": a, "count": n} for a, n in track.skipped_slots],
                "late_samples": track.late,
                "source": "synthetic" if track.synthetic else "sensor",
                "error": None if failure is None else str(failure),
            }
        )
        g.write_text(sidecar, json.dumps(meta, indent=2) + "\n")
    err.print(f"wrote {written} samples to {out} (metadata: {sidecar})")
    if interrupt is not None:
        raise interrupt
    if failure is not None:
        raise failure
    if written == 0:
        err.print(
            f"[bold red]error:[/] no sample arrived ({stopped_by} after {meta['seconds']} s; the device "
            f"samples at {info.sample_rate_hz:g} Hz); record for longer or check the sensor"
        )
        return EXIT_PROBLEM
    status = EXIT_PROBLEM if track.lost_samples or track.skipped else 0
    if track.lost_samples:
        err.print(
            f"[bold red]error:[/] {track.samples_lost} samples were lost on the link "
            f"(first at sample {track.lost_samples[0][0]}); the CSV has gaps"
        )
    clock = track.clock_sentence(info.sample_rate_hz)
    if track.skipped:
        err.print(
            f"[bold red]error:[/] {clock}; the CSV's timestamps show the gaps and {sidecar.name} lists them"
        )
    elif clock:
        err.print(f"[bold yellow]warning:[/] {clock}; {sidecar.name} counts them")
    return status


def _status(track: SensorTracker) -> str:
    parts = [f"{track.samples_lost} lost"]
    if track.skipped:
        parts.append(f"{track.skipped} skipped")
    if track.late_matters:
        parts.append(f"{track.late} late")
    return ", ".join(parts)
