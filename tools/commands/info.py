"""`info`: the device's handshake as a table, and whether it runs the local model artifacts."""

from __future__ import annotations

import argparse
import json

from rich.markup import escape
from rich.table import Table

from tinyae.errors import printable, printable_list
from tinyae.tools.commands.common import (
    Artifacts,
    add_device_args,
    channel_names,
    check_model,
    fmt_bytes,
    load_artifacts,
    model_matches,
    session,
    stdout_console,
)
from tinyae.tools.link import protocol as p


def shown(text: str) -> str:
    """A string the device sent (or a name from the data) as table text: one line, no rich markup."""
    return escape(printable(text))


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    ap = sub.add_parser("info", help="show the device's handshake and check it runs the local model")
    add_device_args(ap)
    ap.add_argument("--json", metavar="FILE", help="also write the handshake as JSON")
    ap.set_defaults(func=run)


BOOT_VERDICTS = {
    p.RecordVerdict.EMPTY: "no record stored",
    p.RecordVerdict.VALID: "a valid record",
    p.RecordVerdict.CORRUPT: "a damaged record (size or CRC-32), ignored",
    p.RecordVerdict.OTHER_MODEL: "a record of another model (sha256), ignored",
    p.RecordVerdict.OTHER_CONFIG: "a record made under other calibration constants, ignored",
    p.RecordVerdict.VERSION: "a record of an unknown layout version, ignored",
    p.RecordVerdict.BOUNDS: "a record outside this firmware's bounds, ignored",
    p.RecordVerdict.STORE_ERROR: "its storage could not be read",
}


def calibration_text(info: p.Info, status: p.CalibStatus | None) -> list[tuple[str, str]]:
    """Rows about on-site calibration: the state, what the boot found, the record in use."""
    from tinyae.tools.link.calibration import record_in_use
    from tinyae.train.calibration.record import OUTCOMES

    state = p.CalibState(info.calib_state).name.lower() if info.calib_state in set(p.CalibState) else "?"
    if info.calib_state in (p.CalibState.STATS, p.CalibState.SCORES):
        done = f" ({status.done} windows done)" if status is not None else ""
        state = f"calibrating, phase {1 if info.calib_state == p.CalibState.STATS else 2}{done}"
    boot = BOOT_VERDICTS.get(p.RecordVerdict(info.calib_boot), "?") if info.calib_boot < 8 else "?"
    rows = [("calibration", f"{state}; at boot its storage held {boot}")]
    rec = record_in_use(status)
    if rec is not None:
        shifts = ", ".join(f"{v:.6g}" for v in rec.shift)
        gains = ", ".join(f"{v:.6g}" for v in rec.gain)
        rows.append(("calibration record", f"crc {rec.crc:08x}: {', '.join(rec.learned)} from {rec.windows} "
                     f"windows per phase; threshold {rec.threshold:.6g} ({rec.method_name})"))  # fmt: skip
        rows.append(("correction (shift; gain)", f"{shifts}; {gains}"))
    if status is not None and status.outcome not in (p.CalibOutcome.NONE,):
        rows.append(("last calibration since boot", OUTCOMES[status.outcome].replace("_", " ")))
    rows.append(("calibration capacity", f"{info.calib_max_windows} windows per phase"))
    return rows


def info_dict(info: p.Info, art: Artifacts, status: p.CalibStatus | None = None) -> dict:
    from tinyae.tools.link.calibration import record_in_use

    rec = record_in_use(status)
    return {
        "firmware_version": info.firmware_version,
        "target": info.target,
        "protocol": info.proto_version,
        "engine": info.engine,
        "mode": "sensor" if info.mode == p.Mode.SENSOR else "host-stream",
        "model_sha256": info.model_sha256.hex(),
        "local_model_sha256": art.sha256,
        "model_matches": model_matches(info, art),
        "window_len": info.window_len,
        "hop": info.hop,
        "channels": info.channels,
        "channel_names": channel_names(info, art),
        "input_size": info.input_size,
        "output_size": info.output_size,
        "sample_rate_hz": info.sample_rate_hz,
        "score": info.score_name,
        "threshold": info.threshold,
        "model_threshold": info.model_threshold,
        "decision_k": info.decision_k,
        "decision_n": info.decision_n,
        "input_quant": {"scale": info.in_scale, "zero_point": info.in_zero_point},
        "output_quant": {"scale": info.out_scale, "zero_point": info.out_zero_point},
        "max_batch": info.max_batch,
        "max_frame": info.max_frame,
        "flash_used": info.flash_used,
        "ram_static": info.ram_static,
        "engine_ram": info.engine_ram,
        "stack_bytes": info.stack_bytes,
        "tx_dropped": info.tx_dropped,
        "cost_unit": info.cost_unit,
        "calibration": {
            "state": p.CalibState(info.calib_state).name.lower()
            if info.calib_state < 4
            else info.calib_state,
            "boot": p.RecordVerdict(info.calib_boot).name.lower() if info.calib_boot < 8 else info.calib_boot,
            "max_windows": info.calib_max_windows,
            "record": rec.to_dict() if rec is not None else None,
        },
    }


def info_table(info: p.Info, art: Artifacts, port: str, status: p.CalibStatus | None = None) -> Table:
    match = model_matches(info, art)
    sha = info.model_sha256.hex()
    if match is None:
        verdict = f"[yellow]no local artifacts in {art.model_dir}[/]"
    elif match:
        verdict = f"[green]matches {art.model_dir}[/]"
    else:
        verdict = f"[bold red]MISMATCH: {art.model_dir} holds {art.sha256[:12] if art.sha256 else '?'}[/]"
    thr = f"{info.threshold:.6g}"
    if info.threshold != info.model_threshold:
        thr += f" (model's: {info.model_threshold:.6g})"
    t = Table(title=f"tinyae device on {port}", title_justify="left", show_header=False)
    t.add_column("field", style="bold")
    t.add_column("value")
    rows = [
        ("firmware", f"{shown(info.firmware_version)} on {shown(info.target)}"),
        ("protocol", f"version {info.proto_version}"),
        ("engine", shown(info.engine)),
        ("mode", "sensor" if info.mode == p.Mode.SENSOR else "host-stream"),
        ("model sha256", sha),
        ("local artifacts", verdict),
        ("window", f"{info.window_len} samples, hop {info.hop}"),
        ("channels", f"{info.channels} ({escape(printable_list(channel_names(info, art)))})"),
        ("sample rate", f"{info.sample_rate_hz:g} Hz"),
        ("input / output", f"{info.input_size} / {info.output_size} int8"),
        ("quantization", f"in {info.in_scale:.6g} zp {info.in_zero_point}, out {info.out_scale:.6g} zp "
         f"{info.out_zero_point}"),
        ("score", shown(info.score_name)),
        ("threshold", thr),
        ("alarm", f"{info.decision_k} of the last {info.decision_n} windows"),
        ("flash used", fmt_bytes(info.flash_used)),
        ("static RAM", fmt_bytes(info.ram_static)),
        ("engine RAM", fmt_bytes(info.engine_ram)),
        ("stack", fmt_bytes(info.stack_bytes)),
        ("batch / frame", f"{info.max_batch} samples / {info.max_frame} B"),
        ("frames dropped", f"{info.tx_dropped:,} since boot (the port was not open to take them)"
         if info.tx_dropped else "none since boot"),
        ("cost unit", info.cost_unit),
        *calibration_text(info, status),
    ]  # fmt: skip
    for k, v in rows:
        t.add_row(k, v)
    return t


def run(args: argparse.Namespace) -> int:
    art = load_artifacts(args.model_dir)
    with session(args) as dev:
        info = dev.require_info()
        status = dev.calib_query()
        stdout_console().print(info_table(info, art, dev.name, status))
        if args.json:
            with open(args.json, "w") as f:
                json.dump(info_dict(info, art, status), f, indent=2)
        check_model(info, art)
    return 0
