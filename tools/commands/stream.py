"""`stream`: send a CSV (or the model's test split) to the device and collect its per-window results.

As fast as the link allows (flow-controlled by the device's acknowledgements) or `--realtime` at the
model's sample rate; live progress on stderr; `--out results.csv|.jsonl` is flushed row by row, so a
failure mid-stream keeps every result already received.
"""

from __future__ import annotations

import argparse
from functools import partial

from rich.progress import Progress, TaskID
from rich.table import Table

from tinyae import terminal
from tinyae.args import positive_int
from tinyae.errors import UserError
from tinyae.tools.commands import constants, saturation
from tinyae.tools.commands.common import (
    add_csv_args,
    add_device_args,
    add_retries_arg,
    check_model,
    load_artifacts,
    load_sources,
    progress,
    session,
    stderr_console,
    stdout_console,
)
from tinyae.tools.commands.results import RowWriter
from tinyae.tools.link import protocol as p
from tinyae.tools.link.device import DEFAULT_INFLIGHT, StreamSummary
from tinyae.train.data import window_labels
from tinyae.train.warned import warn

EXIT_PROBLEM = 1


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    ap = sub.add_parser("stream", help="stream a CSV (or the test split) to the device, collect its results")
    add_device_args(ap)
    add_csv_args(ap, "send")
    ap.add_argument("--out", help="write per-window results to FILE.csv or FILE.jsonl (flushed as they come)")
    ap.add_argument("--realtime", action="store_true", help="pace the samples at the model's sample rate")
    ap.add_argument(
        "--inflight",
        type=positive_int,
        default=DEFAULT_INFLIGHT,
        metavar="N",
        help=f"batches sent ahead of their ack (default: as many as fit the protocol's {p.HOST_WINDOW} B "
        "receive window)",
    )
    add_retries_arg(ap)
    ap.set_defaults(func=run)


def summary_table(summaries: list[StreamSummary], anomalies: int, alarms: int, port: str) -> Table:
    windows = sum(s.windows_received for s in summaries)
    secs = sum(s.seconds for s in summaries)
    tx, rx = sum(s.bytes_tx for s in summaries), sum(s.bytes_rx for s in summaries)
    lost = [w for s in summaries for w in s.lost_windows]
    t = terminal.table(title=f"stream to {port}", title_justify="left", show_header=False)
    t.add_column("figure", style="bold")
    t.add_column("value")
    t.add_row(
        "samples sent",
        f"{sum(s.samples for s in summaries):,} in {sum(s.batches for s in summaries)} batches",
    )
    t.add_row("windows", f"{windows} of {sum(s.windows_expected for s in summaries)} expected")
    t.add_row("lost windows", "[green]none[/]" if not lost else f"[bold red]{len(lost)}: {_list(lost)}[/]")
    retried = [w for s in summaries for w in s.retried_windows]
    if retried:
        t.add_row("retried windows", f"{len(retried)}: {_list(retried)} (lost on the link, streamed again)")
    resets = sum(s.resets for s in summaries)
    if resets:
        t.add_row("device resets survived", str(resets))
    t.add_row("anomalies / alarms", f"{anomalies} / {alarms}")
    t.add_row("engine errors", str(sum(s.engine_errors for s in summaries)))
    if secs > 0:
        t.add_row("time", f"{secs:.2f} s, {windows / secs:.1f} windows/s")
        t.add_row("link", f"{tx:,} B sent, {rx:,} B received ({(tx + rx) / secs / 1024:.1f} KiB/s both ways)")
    return t


def _list(xs: list[int], n: int = 10) -> str:
    return ", ".join(map(str, xs[:n])) + (f", ... ({len(xs) - n} more)" if len(xs) > n else "")


def run(args: argparse.Namespace) -> int:
    art = load_artifacts(args.model_dir)
    with session(args) as dev:
        info = dev.require_info()
        if art.manifest is not None or not args.csv:
            check_model(info, art)
        for note in constants.notes(dev, info, art.manifest, art.model_dir):
            stderr_console().print(f"note: {note}", soft_wrap=True, markup=False)
        sources = load_sources(args, info, art)
        if art.manifest is not None:  # data far outside the training range, named before they stream
            counted = saturation.count_stream(
                art.manifest,
                saturation.device_correction(dev, info),
                (s.values for s in sources),
                info.window_len,
                info.hop,
            )
            warn(saturation.warning(counted.report(art.model_dir)))
        names = list(art.manifest.window.channel_names) if art.manifest is not None else []
        if len(names) == info.channels:
            warn(
                saturation.flat_warning(
                    saturation.flat_channels((s.values for s in sources), names), len(names)
                )
            )
        if args.realtime and not info.sample_rate_hz > 0:
            raise UserError(
                "--realtime needs the model's sample rate but "
                f"the device reports {info.sample_rate_hz:g} Hz; "
                "retrain with data.sample_rate_hz (or timestamps) set"
            )
        writer = RowWriter(args.out) if args.out else None
        rate = info.sample_rate_hz if args.realtime else None
        summaries: list[StreamSummary] = []
        counts = {"windows": 0, "anomalies": 0, "alarms": 0}
        err = stderr_console()
        try:
            with progress(args) as prog:
                for si, src in enumerate(sources):
                    task = prog.add_task(f"stream {si}", total=len(src.values), status="")
                    wlabels = (
                        window_labels(src.labels, info.window_len, info.hop)
                        if src.labels is not None
                        else None
                    )

                    def on_result(r: p.Result, si: int = si, wlabels=wlabels, task=task) -> None:  # type: ignore[no-untyped-def]
                        counts["windows"] += 1
                        counts["anomalies"] += int(r.anomaly)
                        counts["alarms"] += int(r.alarm)
                        if writer is not None:
                            row = {
                                "series": sources[si].series,
                                "window": r.window_seq,
                                "first_sample": r.window_seq * info.hop,
                                "score": float(r.score),
                                "threshold": float(info.threshold),
                                "anomaly": r.anomaly,
                                "alarm": r.alarm,
                                "status": r.status,
                                "cost": r.cost,
                            }
                            if wlabels is not None and r.window_seq < len(wlabels):
                                row["label"] = int(wlabels[r.window_seq])
                            writer.write(row)
                        mark = (
                            "[bold red]ALARM[/]" if r.alarm else ("[yellow]anomaly[/]" if r.anomaly else "")
                        )
                        prog.update(
                            task,
                            status=f"w{r.window_seq} score {r.score:.4g} / {info.threshold:.4g} {mark} "
                            f"({counts['anomalies']} anomalies)",
                        )

                    summaries.append(
                        dev.stream(
                            src.values,
                            on_result,
                            realtime_hz=rate,
                            inflight=args.inflight,
                            retries=args.retries,
                            on_progress=partial(_advance, prog, task),
                        )
                    )
        except BaseException:
            if writer is not None:
                err.print(f"kept {writer.rows} results received before the failure in {writer.path}")
            raise
        finally:
            if writer is not None:
                writer.close()
        stdout_console().print(summary_table(summaries, counts["anomalies"], counts["alarms"], dev.name))
        if writer is not None:
            err.print(f"wrote {writer.rows} results to {writer.path}")
        if counts["windows"] == 0:
            err.print("[bold red]error:[/] the device returned no window; nothing was computed")
            return EXIT_PROBLEM
        bad = [s for s in summaries if not s.complete or s.engine_errors]
        if bad:
            err.print(
                "[bold red]error:[/] windows were lost or failed on the device (see the table); "
                "check the link and rerun"
            )
            return EXIT_PROBLEM
        return 0


def _advance(prog: Progress, task: TaskID, n: int) -> None:
    prog.update(task, completed=n)
