"""`info`: the device's handshake as a table, and whether it runs the local model artifacts."""

from __future__ import annotations

import argparse
import json

from rich.markup import escape
from rich.table import Table

from tinyae import atomic, terminal
from tinyae.errors import printable, printable_list
from tinyae.tools.commands import constants
from tinyae.tools.commands.common import (
    Artifacts,
    add_device_args,
    channel_names,
    check_model,
    fmt_bytes,
    load_artifacts,
    model_matches,
    session,
    stderr_console,
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


EXIT_DIFFERS = 1  # the device runs the model but decides with other constants than the artifacts

BOOT_VERDICTS = {
    p.RecordVerdict.EMPTY: "no record stored",
    p.RecordVerdict.VALID: "a valid record",
    p.RecordVerdict.CORRUPT: "a damaged record (size or CRC-32), ignored",
    p.RecordVerdict.OTHER_MODEL: "a record of another model (sha256), ignored",
    p.RecordVerdict.OTHER_CONFIG: "a record made under other calibration constants, ignored",
    p.RecordVerdict.VERSION: "a record of an unknown layout version, ignored",
    p.RecordVerdict.BOUNDS: (
        "a record outside this firmware's bounds or not what its own statistics give (edited), ignored"
    ),
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


def compared(info: p.Info, art: Artifacts, status: p.CalibStatus | None) -> list[constants.Constant] | None:
    """The decision constants, device against the local artifacts (None without artifacts)."""
    from tinyae.tools.link.calibration import record_in_use

    if art.manifest is None:
        return None
    rec = record_in_use(status) if info.calib_state == p.CalibState.CALIBRATED else None
    verdict = "valid"
    if rec is not None and info.model_sha256.hex() == art.manifest.model.sha256:
        verdict = constants.record_verdict(art.model_dir, rec)
    return constants.compare(info, art.manifest, rec, verdict)


def info_dict(info: p.Info, art: Artifacts, status: p.CalibStatus | None = None) -> dict:
    from tinyae.tools.link.calibration import record_in_use

    rec = record_in_use(status)
    rows = compared(info, art, status)
    return {
        "firmware_version": info.firmware_version,
        "target": info.target,
        "protocol": info.proto_version,
        "engine": info.engine,
        "library": info.library,
        "mode": "sensor" if info.mode == p.Mode.SENSOR else "host-stream",
        "model_sha256": info.model_sha256.hex(),
        "local_model_sha256": art.sha256,
        "model_matches": model_matches(info, art),
        "decides_as_artifacts": None if rows is None else not constants.differences(rows),
        "constants": None if rows is None else [r.to_dict() for r in rows],
        "digests": {
            "frontend": f"{info.frontend_crc:08x}",
            "normalization": f"{info.norm_crc:08x}",
            "calibration_constants": f"{info.calib_config_crc:08x}",
        },
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
    checked = compared(info, art, status)
    bad = [] if checked is None else constants.differences(checked)
    if match is None:
        verdict = f"[yellow]no local artifacts in {art.model_dir}[/]"
    elif not match:
        verdict = f"[bold red]MISMATCH: {art.model_dir} holds {art.sha256[:12] if art.sha256 else '?'}[/]"
    elif not bad:
        assert checked is not None
        verdict = f"[green]matches {art.model_dir}: all {len(checked)} decision constants equal[/]"
    else:
        assert checked is not None
        verdict = (
            f"[bold red]DIFFERS from {art.model_dir}: {len(bad)} of {len(checked)} constants "
            f"({', '.join(r.name for r in bad)})[/]"
        )
    thr = f"{info.threshold:.6g}"
    if info.threshold != info.model_threshold:
        thr += f" (model's: {info.model_threshold:.6g})"
    t = terminal.table(title=f"tinyae device on {port}", title_justify="left", show_header=False)
    t.add_column("field", style="bold")
    t.add_column("value")
    rows = [
        ("firmware", f"{shown(info.firmware_version)} on {shown(info.target)}"),
        ("protocol", f"version {info.proto_version}"),
        ("engine", shown(info.engine) + (f" ({shown(info.library)})" if info.library else "")),
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
        ("constant digests", f"front-end {info.frontend_crc:08x}, normalization {info.norm_crc:08x}, "
         f"calibration {info.calib_config_crc:08x}"),
    ]  # fmt: skip
    rows += [(f"differs: {r.name}", f"[bold red]device {r.device}, artifacts {r.artifacts}[/]") for r in bad]
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
            atomic.write_text(args.json, json.dumps(info_dict(info, art, status), indent=2) + "\n")
        check_model(info, art)
        rows = compared(info, art, status)
        if rows is not None and constants.differences(rows):
            stderr_console().print(
                f"[bold red]error:[/] {escape(constants.sentence(rows, art.model_dir))}", soft_wrap=True
            )
            return EXIT_DIFFERS
    return 0
