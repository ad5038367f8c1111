"""`monitor`: sensor mode with a live terminal view: the score of every window against the threshold,
the latest samples, alarms highlighted, and the device's sample clock (slots it skipped, samples it read
late). `--log FILE.csv|.jsonl` keeps every result; `--duration S` stops by itself (exit 0); Ctrl-C (130)
or SIGTERM (143) ends it the same clean way: the device goes back to host-stream mode, the log is closed
and the summary printed.
"""

from __future__ import annotations

import argparse
import time
from collections import deque
from contextlib import suppress

from rich.console import Group
from rich.live import Live
from rich.text import Text

from tinyae import terminal
from tinyae.args import positive_float, positive_float32
from tinyae.errors import UserError, taken
from tinyae.tools.commands import constants
from tinyae.tools.commands.common import (
    add_device_args,
    channel_names,
    load_artifacts,
    session,
    stderr_console,
    stdout_console,
    synthetic_source_note,
)
from tinyae.tools.commands.results import RowWriter
from tinyae.tools.link import protocol as p
from tinyae.tools.link.device import SensorTracker

EXIT_PROBLEM = 1
HISTORY = 12
BAR = 30


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    ap = sub.add_parser("monitor", help="sensor mode: live scores against the threshold, alarms highlighted")
    add_device_args(ap)
    ap.add_argument("--log", help="log every window's result to FILE.csv or FILE.jsonl")
    ap.add_argument("--duration", type=positive_float, help="stop after S seconds (default: until Ctrl-C)")
    ap.add_argument(
        "--threshold", type=positive_float32, help="use this threshold on the device for the session"
    )
    ap.set_defaults(func=run)


class View:
    def __init__(self, info: p.Info, names: list[str], port: str) -> None:
        self.info, self.names, self.port = info, names, port
        self.results: deque[p.Result] = deque(maxlen=HISTORY)
        self.latest: tuple[float, ...] = ()
        self.samples = 0
        self.windows = self.anomalies = self.alarms = 0
        self.track = SensorTracker()

    def add(self, msg: p.Message) -> None:
        if isinstance(msg, p.Telemetry):
            self.track.telemetry(msg)
            self.samples += len(msg.samples)
            if msg.samples:
                self.latest = msg.samples[-1]
        elif isinstance(msg, p.Result):
            self.track.result(msg)
            self.results.append(msg)
            self.windows += 1
            self.anomalies += int(msg.anomaly)
            self.alarms += int(msg.alarm)

    def render(self) -> Group:
        thr = self.info.threshold
        head = Text.assemble(
            (f"tinyae monitor {self.port}  ", "bold"),
            f"threshold {thr:.5g}  samples {self.samples}  windows {self.windows}  ",
            (f"anomalies {self.anomalies}  ", "yellow" if self.anomalies else ""),
            (f"alarms {self.alarms}", "bold red" if self.alarms else ""),
            (f"  lost samples {self.track.samples_lost}", "bold red") if self.track.samples_lost else "",
            (f"  skipped samples {self.track.skipped}", "bold red") if self.track.skipped else "",
            (f"  late samples {self.track.late}", "yellow") if self.track.late_matters else "",
        )
        t = terminal.table(show_edge=False, pad_edge=False)
        t.add_column("window", justify="right")
        t.add_column("score", justify="right")
        t.add_column("vs threshold")
        t.add_column("")
        for r in self.results:
            frac = min(r.score / (2 * thr), 1.0) if thr > 0 else 0.0
            n = round(frac * BAR)
            mark = BAR // 2
            bar = "".join("█" if i < n else ("│" if i == mark else "·") for i in range(BAR))
            style = "bold red" if r.alarm else ("yellow" if r.anomaly else "green")
            state = "ALARM" if r.alarm else ("anomaly" if r.anomaly else "")
            t.add_row(str(r.window_seq), f"{r.score:.5g}", Text(bar, style=style), Text(state, style=style))
        latest = "  ".join(f"{n}={v:+.4f}" for n, v in zip(self.names, self.latest, strict=False))
        return Group(head, t, Text(f"latest sample: {latest}", style="dim"))


def run(args: argparse.Namespace) -> int:
    if args.duration is not None and args.duration <= 0:
        raise UserError(f"--duration must be positive, got {args.duration}")
    art = load_artifacts(args.model_dir)
    err = stderr_console()
    with session(args) as dev:
        info = dev.require_info()
        for note in constants.notes(dev, info, art.manifest, art.model_dir):
            err.print(f"note: {note}", soft_wrap=True, markup=False)
        if args.threshold is not None:
            dev.set(p.Param.THRESHOLD, float(args.threshold))
            info = dev.info = p.Info(**{**info.__dict__, "threshold": p.float32(args.threshold)})
        view = View(info, channel_names(info, art), dev.name)
        log = RowWriter(args.log) if args.log else None
        t0 = time.monotonic()

        def stop() -> bool:
            return args.duration is not None and time.monotonic() - t0 >= args.duration

        failure: Exception | None = None
        interrupt: KeyboardInterrupt | None = None
        noted = False
        live = Live(view.render(), console=stderr_console(), refresh_per_second=8, transient=False)
        try:
            with live if not args.quiet else _NoLive():
                for msg in dev.sensor(stop=stop):
                    view.add(msg)
                    if view.track.synthetic and not noted:
                        note = synthetic_source_note(dev.name, art.manifest)
                        (live.console if not args.quiet else err).print(f"[bold yellow]note:[/] {note}")
                        noted = True
                    if isinstance(msg, p.Result) and log is not None:
                        log.write(
                            {
                                "series": 0,
                                "window": msg.window_seq,
                                "first_sample": msg.window_seq * info.hop,
                                "score": float(msg.score),
                                "threshold": float(info.threshold),
                                "anomaly": msg.anomaly,
                                "alarm": msg.alarm,
                                "status": msg.status,
                                "cost": msg.cost,
                            }
                        )
                    if not args.quiet:
                        live.update(view.render())
        except KeyboardInterrupt as exc:  # the log and the summary first, then the stop goes on
            taken(exc)
            interrupt = exc
        except UserError as exc:
            failure = exc
        finally:
            if log is not None:
                log.close()
            if args.threshold is not None:
                with suppress(UserError):
                    dev.set(p.Param.THRESHOLD, float("nan"))
        secs = time.monotonic() - t0
        stdout_console().print(
            f"monitor: {view.samples} samples, {view.windows} windows, {view.anomalies} anomalies, "
            f"{view.alarms} alarms in {secs:.1f} s"
            + (f"; {view.track.samples_lost} samples and {len(view.track.lost_windows)} windows lost" if
               view.track.samples_lost or view.track.lost_windows else "")
            + (f"; {view.track.skipped} sample slots skipped by the device" if view.track.skipped else "")
            + (f"; {view.track.late} samples read late" if view.track.late_matters else "")
        )  # fmt: skip
        if log is not None:
            err.print(f"logged {log.rows} results to {log.path}")
        clock = view.track.clock_sentence(info.sample_rate_hz)
        if clock:
            err.print(f"[bold {'red' if view.track.skipped else 'yellow'}]"
                      f"{'error' if view.track.skipped else 'warning'}:[/] {clock}")  # fmt: skip
        if interrupt is not None:
            raise interrupt
        if failure is not None:
            raise failure
        if view.samples == 0:
            err.print(
                f"[bold red]error:[/] no sample arrived in {secs:.1f} s (the device samples at "
                f"{info.sample_rate_hz:g} Hz); monitor for longer or check the sensor"
            )
            return EXIT_PROBLEM
        lost = view.track.samples_lost or view.track.lost_windows or view.track.skipped
        return EXIT_PROBLEM if lost else 0


class _NoLive:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
