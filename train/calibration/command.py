"""`tinyae calibrate --model-dir DIR --csv FILE`: the calibration record a device running these
artifacts would compute from this recording, without a device (the host mirror), with the before/after
report. `tinyae device calibrate --record FILE` installs the record on a device."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.console import Console

from tinyae import atomic
from tinyae.errors import UserError
from tinyae.train.calibration import mirror
from tinyae.train.calibration import report as rep
from tinyae.train.calibration.record import Record
from tinyae.train.calibration.spec import CalibSpec, check_crc
from tinyae.train.manifest import Manifest, mixed_files


def load_model(model_dir: Path) -> tuple[Manifest, CalibSpec, bytes]:
    path = Path(model_dir) / "manifest.json"
    if not path.is_file():
        raise UserError(f"{path} does not exist; run `make model` or pass --model-dir with the artifacts")
    manifest = Manifest.load(path)
    mixed = mixed_files(Path(model_dir), manifest)
    if mixed:
        raise UserError(
            f"the files in {model_dir} are from two builds: {mixed}; build the model again "
            "(`make model` rebuilds it, or says which command built it)"
        )
    spec = manifest.calib_spec()
    check_crc(spec, manifest.to_dict())
    tfl = Path(model_dir) / "model_int8.tflite"
    if not tfl.is_file():
        raise UserError(f"{tfl} is missing; run `make model` or point --model-dir at complete artifacts")
    return manifest, spec, tfl.read_bytes()


@dataclass(frozen=True)
class Columns:
    """How a recording's columns map onto the model's (None: matched by name, the model's settings)."""

    channels: list[str] | None = None
    timestamp: str | None = None
    label: str | None = None
    normal: list[str] | None = None  # the file's normal label values (--normal), else the model's meaning


def recording(
    csv: str, manifest: Manifest, columns: Columns = Columns(), say: Callable[[str], None] | None = None
) -> tuple[np.ndarray, np.ndarray | None, str, np.ndarray | None]:
    """The recording's samples [T, C] in the model's channel order, its labels, its name and each sample's
    line in the file (for messages; None when unknown): read with
    the model's data settings, channels matched by name as `device stream` and `verify` do
    (train/data/settings.py); its first continuous stretch when it has gaps the settings split at."""
    from tinyae.train.data.settings import load_for_model

    series, notes = load_for_model(
        csv,
        manifest.to_dict(),
        channels=columns.channels,
        timestamp=columns.timestamp,
        label=columns.label,
        normal=columns.normal,
    )
    if not series:
        raise UserError(f"{csv} holds no samples; pass a recording of normal operation")
    if len(series) > 1:
        notes.append(
            f"{csv} splits into {len(series)} stretches at its gaps; the calibration reads the first "
            f"({len(series[0].values)} samples)"
        )
    for note in notes:
        if say is not None:
            say(f"note: {note}")
    s = series[0]
    return np.asarray(s.values, np.float32), s.labels, s.source, s.lines


def check_normal_labels(
    labels: np.ndarray | None, used: int, where: str, lines: np.ndarray | None = None
) -> None:
    """A recording whose labels mark anomalies inside the calibration samples is refused, naming the first
    by its row in the file (`lines`, numbered as the CSV reader names rows), else by its sample number."""
    if labels is None:
        return
    bad = np.flatnonzero(np.asarray(labels[:used]) != 0)
    if len(bad):
        first = int(bad[0])
        at = f"row {int(lines[first])}" if lines is not None and len(lines) > first else f"sample {first}"
        raise UserError(
            f"{where} labels {len(bad)} of the {used} calibration samples as anomalous (the first at {at}); "
            "calibrate on normal operation only (cut the recording or pass another one)"
        )


def run(
    model_dir: Path,
    csv: str,
    windows: int | None,
    out: Path | None,
    json_out: Path | None,
    columns: Columns = Columns(),
) -> int:
    from tinyae.train.reference import HostReference

    console = Console(stderr=True, highlight=False)
    manifest, spec, flatbuffer = load_model(model_dir)
    x, labels, name, lines = recording(csv, manifest, columns, console.print)
    target = out if out is not None else Path(model_dir) / f"calibration-{Path(name).stem}.bin"
    for path in (target, json_out):  # an unwritable folder is said now, not after the work
        if path is not None:
            atomic.check_writable(path)
    n = spec.check_windows(
        windows if windows is not None else mirror.default_windows(spec, len(x), name, console.print)
    )
    mirror.check_length(spec, n, len(x), name)
    check_normal_labels(labels, spec.total_samples(n), name, lines)
    ref = HostReference.from_manifest(flatbuffer, manifest)
    scores = rep.scorer(ref)
    result = mirror.run(spec, Path(model_dir), x, n, scores)
    check = mirror.cross_check(spec, x, result)
    record = result.parsed
    names = list(manifest.window.channel_names)
    comparison = rep.false_alarms(
        spec, x, n, scores, None, record if result.accepted else None, spec.factory_threshold
    )
    extra = [
        ("windows", "-", f"{n} per phase, {spec.phases} phase(s); {result.samples_used} samples of {name}"),
        ("NumPy cross-check", "-", "ok" if check["ok"] else f"FAILED: {check}"),
    ]
    console.print(
        rep.table(
            f"calibration of {model_dir} on {name}",
            spec,
            names,
            None,
            record,
            result.accepted,
            comparison,
            extra,
        )
    )
    refusal = None
    if not result.accepted:
        refusal = "the calibration was refused: " + rep.refusal_sentence(
            result.outcome, result.detail, record, spec, names, result, name
        )
    if json_out is not None:
        report = rep.result_dict(result, comparison, check, spec, refusal)
        atomic.write_text(json_out, json.dumps(report, indent=2) + "\n")
    if not check["ok"]:
        raise UserError(
            f"the NumPy cross-check disagrees with the core's C beyond its tolerance ({check}); report this"
        )
    if refusal is not None:
        raise UserError(refusal)
    Record.from_bytes(result.record, str(target))
    with atomic.locked(model_dir, "another --model-dir"):  # not while a rebuild replaces the directory
        atomic.write_bytes(target, result.record)
    console.print(
        f"wrote {target} ({len(result.record)} B, crc {record.crc:08x}); install it with "
        f"`tinyae device calibrate --port PORT --record {target}`"
    )
    return 0
