"""`record`: capture the device's raw sensor samples (sensor-mode telemetry) to a CSV the training
pipeline reads directly (`tinyae model --set data.source=csv --set data.paths=[FILE]`).

CSV: header `timestamp,<channel names>[,label]`; timestamp = device sample index / sample rate (s).
`tinyae.train.data.load_csv` does not skip comment lines, so `--note` and the capture's provenance (device,
model, rate, lost samples) go to a sidecar `FILE.json`. Rows are flushed as they arrive: Ctrl-C, a
disconnect or a timeout keeps everything received.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

from tinyae.args import positive_float, positive_int
from tinyae.errors import UserError
from tinyae.tools.commands.common import (
    add_device_args,
    channel_names,
    load_artifacts,
    progress,
    session,
    stderr_console,
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
    art = load_artifacts(args.model_dir)
    err = stderr_console()
    with session(args) as dev:
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
        out.parent.mkdir(parents=True, exist_ok=True)
        track = SensorTracker()
        written = 0
        t0 = time.monotonic()
        stopped_by = "limit"
        failure: Exception | None = None
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
        with out.open("w", newline="") as f, progress(args) as prog:
            w = csv.writer(f)
            w.writerow(header)
            f.flush()
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
                    for i, sample in enumerate(msg.samples):
                        if args.samples is not None and written >= args.samples:
                            break
                        idx = msg.first_sample + i
                        row = [] if args.no_timestamp else [f"{idx / info.sample_rate_hz:.6f}"]
                        row += [repr(float(v)) for v in sample]
                        if args.label is not None:
                            row.append(args.label)
                        w.writerow(row)
                        written += 1
                    f.flush()
                    prog.update(task, completed=written, status=f"{track.samples_lost} lost")
            except KeyboardInterrupt:
                stopped_by = "interrupted"
            except UserError as exc:
                stopped_by, failure = "error", exc
        meta.update(
            {
                "samples": written,
                "seconds": round(time.monotonic() - t0, 3),
                "stopped_by": stopped_by,
                "lost_samples": [{"first": a, "count": n} for a, n in track.lost_samples],
                "lost_windows": track.lost_windows,
                "error": None if failure is None else str(failure),
            }
        )
        sidecar = out.with_suffix(out.suffix + ".json")
        sidecar.write_text(json.dumps(meta, indent=2) + "\n")
        err.print(f"wrote {written} samples to {out} (metadata: {sidecar})")
        if failure is not None:
            raise failure
        if written == 0:
            err.print(
                f"[bold red]error:[/] no sample arrived ({stopped_by} after {meta['seconds']} s; the device "
                f"samples at {info.sample_rate_hz:g} Hz); record for longer or check the sensor"
            )
            return EXIT_PROBLEM
        if track.lost_samples:
            err.print(
                f"[bold red]error:[/] {track.samples_lost} samples were lost on the link "
                f"(first at sample {track.lost_samples[0][0]}); the CSV has gaps"
            )
            return EXIT_PROBLEM
        return 0
