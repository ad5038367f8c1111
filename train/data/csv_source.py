"""Generic CSV loader: one column per channel, optional timestamp and label columns, one series per file.

Format accepted
---------------
- UTF-8 text (a BOM is fine), delimiter `,` `;` or tab (detected from the first line; whitespace-separated
  columns also work). Empty rows (blank lines, `,,,`) before the header or the first data row and after the
  last one are skipped; between two data rows they are refused (samples are missing there). Read in chunks
  with progress (tinyae.train.data.table), so a file of hundreds of MB costs little more memory than its
  float32 values.
- A header row is detected when any field of the first row is not a number; without a header the columns
  are called `col0`, `col1`, ... and may also be selected by index.
- `timestamp`: a column of numbers (s, ms, us, ns) or date-times; it gives the sample rate and shows gaps
  (tinyae.train.data.timestamps). `label`: a column of 0/1 or named classes, or one label for a whole file
  (`file_label`); what it means is tinyae.train.data.labels' business. By default ("auto") a column called
  timestamp/time/t/datetime (with or without a unit such as `timestamp_ms`) is the timestamp and one
  called label/is_anomaly/anomaly/class is the label; None or "none" disables either.
- Channels: the columns named in `channels` (by name or index), or every other column except obvious
  index, counter and id columns, which are left out and named (tinyae.train.data.columns).
- Every file is its own series (a gap split with gaps="split" makes more): windows never span two.
  Files loaded together are matched by column name, whatever their column order. A folder stands for
  the data files in it (DATA_SUFFIXES, recursively).
- Edge Impulse data-acquisition files (JSON or CBOR, tinyae.train.data.edgeimpulse) among the files are
  recognised by their content and read as what they are: sensors as columns, interval_ms as the rate,
  their label as the file's label. Any other structured file (other JSON, Parquet, Excel, ...) is
  named for what it is (tinyae.train.data.formats) instead of being parsed as CSV.

Every problem with the input ends in `UserError` with one sentence saying where and what to do.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatch
from glob import glob
from pathlib import Path

import numpy as np

from tinyae.errors import UserError, printable, printable_list
from tinyae.train.data import edgeimpulse
from tinyae.train.data.columns import match_channels
from tinyae.train.data.formats import Sniffed, sniff
from tinyae.train.data.labels import LabelMeaning, label_meaning, labels_from_classes, to_labels
from tinyae.train.data.table import (
    F32_MAX,
    F32_OVERFLOW,
    CsvReader,
    Progress,
    detect_delimiter,
    is_number,
    read_text,
)
from tinyae.train.data.timestamps import (
    RATE_TOLERANCE,
    Rate,
    TimeColumn,
    fmt_hz,
    is_time_name,
    rate_from_timestamps,
)

__all__ = [
    "AUTO",
    "F32_MAX",
    "F32_OVERFLOW",
    "Series",
    "detect_delimiter",
    "expand_paths",
    "is_number",
    "labels_from_classes",
    "load_csv",
    "load_csv_file",
    "load_csv_groups",
    "read_text",
]

AUTO = "auto"
DATA_SUFFIXES = (".csv", ".tsv", ".txt", *edgeimpulse.SUFFIXES)  # the files a folder given as a path holds
LABEL_NAMES = ("label", "labels", "is_anomaly", "anomaly", "class", "target")
OFF = ("", "none")

ColumnSpec = str | int
ProgressFactory = Callable[[Path], Progress | None]


@dataclass(frozen=True, eq=False)
class Series:
    """One continuous recording.

    values: float32 [T, C]; labels: int8 [T] (0 normal, 1 anomaly) or None when unknown;
    classes: the original label of each sample when the source had named classes, else None;
    lines: the file line of each sample when read from a file (for messages), else None;
    meta: how the series was read (rate origin, channels left out, label meaning), for the summary.
    """

    values: np.ndarray
    labels: np.ndarray | None
    channel_names: tuple[str, ...]
    sample_rate_hz: float | None
    source: str
    classes: np.ndarray | None = None
    lines: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.values.ndim != 2 or self.values.shape[1] != len(self.channel_names):
            raise ValueError(f"values {self.values.shape} do not match channels {self.channel_names}")
        if self.labels is not None and self.labels.shape != (len(self.values),):
            raise ValueError(f"labels {self.labels.shape} do not match values {self.values.shape}")

    def __len__(self) -> int:
        return len(self.values)

    @property
    def n_channels(self) -> int:
        return len(self.channel_names)

    def where(self, i: int) -> str:
        """Where sample i came from, in words ("data.csv row 1502")."""
        if self.lines is not None:
            return f"{printable(self.meta.get('file', self.source), None)} row {int(self.lines[i])}"
        return f"{printable(self.source, None)} sample {i}"


# ---------------------------------------------------------------- columns
def resolve_column(spec: ColumnSpec, names: Sequence[str], path: Path, what: str) -> int:
    if isinstance(spec, int) and not isinstance(spec, bool):
        if not 0 <= spec < len(names):
            raise UserError(
                f"{what} column index {spec} is out of range: "
                f"{printable(path, None)} has {len(names)} columns; "
                f"use 0..{len(names) - 1}"
            )
        return spec
    if spec in names:
        return list(names).index(str(spec))
    raise UserError(
        f"{what} column '{printable(spec)}' is not in {printable(path, None)}; "
        f"its columns are: {printable_list(names, 20)}"
    )


def _pick(spec: ColumnSpec | None, names: Sequence[str], path: Path, what: str) -> int | None:
    if spec is None or (isinstance(spec, str) and spec.strip().lower() in OFF):
        return None
    if spec == AUTO:
        lower = [n.strip().lower() for n in names]
        if what == "timestamp":
            return next((i for i, n in enumerate(names) if is_time_name(n)), None)
        return next((lower.index(c) for c in LABEL_NAMES if c in lower), None)
    return resolve_column(spec, names, path, what)


# ---------------------------------------------------------------- one file
@dataclass
class _File:
    path: Path
    names: list[str]  # channel names, in the file's order of selection
    values: np.ndarray  # float32 [n, C]
    lines: np.ndarray
    rate: Rate | None
    label_codes: np.ndarray | None
    label_values: list[str]
    columns: dict  # how the channels were chosen (manifest / summary)
    file_label: str | None = None  # the label the file itself gives all its samples (Edge Impulse)


def _read(
    path: Path,
    *,
    channels: Sequence[ColumnSpec] | None,
    timestamp: ColumnSpec | None,
    label: ColumnSpec | None,
    sample_rate_hz: float | None,
    timestamp_unit: str,
    timestamp_format: str,
    gaps: str,
    delimiter: str | None,
    progress: Progress | None,
    model_hz: float | None = None,
) -> _File:
    found = sniff(path)
    if found is not None and found.kind == "edgeimpulse":
        return _read_edgeimpulse(path, found, channels=channels, sample_rate_hz=sample_rate_hz)
    reader = CsvReader(path, delimiter)
    names = reader.names
    ts = _pick(timestamp, names, path, "timestamp")
    lab = _pick(label, names, path, "label")
    if ts is not None and ts == lab:
        raise UserError(
            f"the timestamp and the label are the same column of {printable(path, None)}; "
            "name two different columns"
        )
    if channels:
        cols = [resolve_column(c, names, path, "channel") for c in channels]
        if ts in cols or lab in cols:
            raise UserError(
                f"a channel of {printable(path, None)} is also its timestamp or label column; pick other columns"
            )
        if len(set(cols)) != len(cols):
            raise UserError(
                f"data.channels names a column of {printable(path, None)} twice; list each channel once"
            )
    else:
        cols = [i for i in range(len(names)) if i not in (ts, lab)]
    if not cols:
        raise UserError(
            f"{printable(path, None)} has no channel column besides its timestamp/label; add the sensor columns"
        )
    parser = TimeColumn(names[ts], timestamp_format) if ts is not None else None
    data = reader.read(
        cols,
        timestamp=(ts, parser) if ts is not None and parser is not None else None,
        label=lab,
        progress=progress,
    )
    left_out: dict[str, str] = {}
    keep = list(range(len(cols)))
    if not channels:
        for j, c in enumerate(cols):
            why = data.stats[j].index_reason()
            if why:
                left_out[names[c]] = why
        keep = [j for j, c in enumerate(cols) if names[c] not in left_out]
        if not keep:
            raise UserError(
                f"every column of {printable(path, None)} besides its timestamp/label looks like an index or id "
                f"({'; '.join(f'{printable(k)}: {v}' for k, v in left_out.items())}); "
                "name the channels with data.channels"
            )
    values = data.numeric if len(keep) == len(cols) else np.ascontiguousarray(data.numeric[:, keep])
    rate = None
    if parser is not None and data.times is not None:
        rate = rate_from_timestamps(
            parser, data.times, data.lines, path, unit=timestamp_unit, declared=sample_rate_hz, gaps=gaps,
            model_hz=model_hz,
        )  # fmt: skip
    elif sample_rate_hz:
        rate = Rate(float(sample_rate_hz), "data.sample_rate_hz", [(0, len(values))], 0.0, "")
    return _File(
        path=path,
        names=[names[cols[j]] for j in keep],
        values=values,
        lines=data.lines,
        rate=rate,
        label_codes=data.label_codes,
        label_values=data.label_values,
        columns={
            "selected_by": "data.channels" if channels else "every numeric column",
            "left_out": left_out,
            "timestamp": names[ts] if ts is not None else None,
            "label": names[lab] if lab is not None else None,
            "header": reader.has_header,
        },
    )


def _read_edgeimpulse(
    path: Path, found: Sniffed, *, channels: Sequence[ColumnSpec] | None, sample_rate_hz: float | None
) -> _File:
    """An Edge Impulse data-acquisition file (tinyae.train.data.edgeimpulse) as one file of this loader:
    its sensors are the columns, interval_ms the sample rate, its label the file's label."""
    rec = edgeimpulse.label(edgeimpulse.read(path, found.obj, found.encoding))
    names = rec.names
    cols = (
        [resolve_column(c, names, path, "sensor") for c in channels] if channels else list(range(len(names)))
    )
    if len(set(cols)) != len(cols):
        raise UserError(f"data.channels names a sensor of {path} twice; list each channel once")
    hz = rec.hz
    origin = f"interval_ms = {rec.interval_ms:g} of the Edge Impulse file ({fmt_hz(hz)})"
    if sample_rate_hz:
        if abs(hz - sample_rate_hz) > RATE_TOLERANCE * sample_rate_hz:
            raise UserError(
                f"data.sample_rate_hz = {sample_rate_hz:g} but {path} says interval_ms = {rec.interval_ms:g} "
                f"({fmt_hz(hz)}); fix one of them"
            )
        hz, origin = (
            float(sample_rate_hz),
            f"data.sample_rate_hz (the Edge Impulse interval_ms agrees: {origin})",
        )
    n = len(rec.values)
    return _File(
        path=path,
        names=[names[c] for c in cols],
        values=np.ascontiguousarray(rec.values[:, cols]),
        lines=np.arange(1, n + 1, dtype=np.int64),
        rate=Rate(hz, origin, [(0, n)], 0.0, "interval_ms"),
        label_codes=rec.sample_labels,
        label_values=rec.sample_label_values,
        columns={
            "selected_by": "data.channels" if channels else "every sensor",
            "left_out": {},
            "timestamp": None,
            "label": None,
            "header": True,
            "format": found.what,
            "units": {names[c]: rec.units[c] for c in cols},
            "device_type": rec.device_type,
            "label_from": rec.label_origin or None,
        },
        file_label=rec.label,
    )


# ---------------------------------------------------------------- several files, several groups
def expand_paths(paths: str | Path | Sequence[str | Path]) -> list[Path]:
    items = [paths] if isinstance(paths, str | Path) else list(paths)
    if not items:
        raise UserError("no CSV file was given; pass at least one path")
    out: list[Path] = []
    for item in items:
        s = str(item)
        if any(ch in s for ch in "*?["):
            matched = sorted(glob(s, recursive=True))
            if not matched:
                raise UserError(f"no file matches {printable(s, None)}; check the pattern")
            out.extend(Path(f) for f in matched)
        elif Path(item).is_dir():
            found = sorted(
                f for f in Path(item).rglob("*") if f.is_file() and f.suffix.lower() in DATA_SUFFIXES
            )
            if not found:
                raise UserError(
                    f"{item} is a folder without {', '.join(DATA_SUFFIXES)} files; pass the data files or a "
                    "folder holding them"
                )
            out.extend(found)
        else:
            out.append(Path(item))
    return out


def file_label_for(path: Path, file_labels: Mapping[str, str]) -> str | None:
    """The label a `data.file_labels` entry (a path or glob) gives this file, or None."""
    hits = {
        str(v).strip()
        for k, v in file_labels.items()
        if fnmatch(path.as_posix(), k)
        or fnmatch(str(path.resolve()), k)
        or Path(k).resolve() == path.resolve()
    }
    if len(hits) > 1:
        raise UserError(
            f"{printable(path, None)} matches data.file_labels entries with different labels "
            f"({printable_list(sorted(hits))}); "
            "make the patterns exclusive"
        )
    return next(iter(hits), None)


def load_csv_groups(
    groups: Mapping[str, str | Path | Sequence[str | Path]],
    *,
    channels: Sequence[ColumnSpec] | None = None,
    timestamp: ColumnSpec | None = AUTO,
    label: ColumnSpec | None = AUTO,
    normal: str | Sequence[str] | None = None,
    sample_rate_hz: float | None = None,
    timestamp_unit: str = "auto",
    timestamp_format: str = "",
    gaps: str = "refuse",
    file_labels: Mapping[str, str] | None = None,
    delimiter: str | None = None,
    progress: ProgressFactory | None = None,
    meaning: LabelMeaning | None = None,
    model_hz: float | None = None,
    normal_from: str = "data.normal",
) -> dict[str, list[Series]]:
    """Load named groups of files (e.g. train and test) with one channel order, rate and label meaning.
    `model_hz`: the sample rate of the model a file is streamed to, for a timestamp column whose unit
    neither its name nor its values say (tinyae.train.data.timestamps._unit).

    The first file fixes the channel names; every other file must have the same channels (matched by
    name, reordered as needed). One label meaning holds for all files (tinyae.train.data.labels); one sample
    rate too (files within 2 % of each other share their mean rate).

    meaning: a fixed meaning (a model's, `load_for_model`), under which every value must be one of its
    classes; normal_from: the setting `normal` came from, for the messages.
    """
    if sample_rate_hz is not None and not sample_rate_hz > 0:
        raise UserError(f"sample_rate_hz must be positive, got {sample_rate_hz}; pass e.g. 100")
    chan = list(channels) if channels else None
    files: dict[str, list[_File]] = {}
    fixed: dict[Path, str | None] = {}
    for group, paths in groups.items():
        files[group] = []
        for p in expand_paths(paths):
            f = _read(
                p,
                channels=chan,
                timestamp=timestamp,
                label=label,
                sample_rate_hz=sample_rate_hz,
                timestamp_unit=timestamp_unit,
                timestamp_format=timestamp_format,
                gaps=gaps,
                delimiter=delimiter,
                progress=progress(p) if progress else None,
                model_hz=model_hz,
            )
            fixed[p] = file_label_for(p, file_labels) if file_labels else None
            if fixed[p] is not None and f.label_codes is not None:
                raise UserError(
                    f"{printable(p, None)} has a label column "
                    f"('{printable(f.columns['label'] or 'info.labels multi-label')}') "
                    "and a data.file_labels entry; "
                    "use one of them"
                )
            if fixed[p] is None:
                fixed[p] = f.file_label  # an Edge Impulse file's own label (info.labels, its name)
            files[group].append(f)
    every = [f for fs in files.values() for f in fs]
    first = every[0]
    for f in every[1:]:
        if f.names != first.names:
            idx = match_channels(
                f.names, first.names, str(f.path), whose=f"the channels of {printable(first.path, None)}"
            )
            f.values = f.values[:, idx]
            f.names = list(first.names)
    # -- one label meaning for every file
    values: list[str] = []
    for f in every:
        mine = list(f.label_values) if f.label_codes is not None else []
        mine += [x for x in [fixed[f.path]] if x is not None]
        if meaning is not None:
            column = f.columns.get("label")
            where = f"{f.path} (label column '{column}')" if column else f"the label of {f.path}"
            meaning.refuse_unknown(mine, where)
        values += mine
    if values and meaning is None:
        meaning = label_meaning(
            values,
            normal,
            "the labels of " + printable_list([f.path for f in every[:3]], 3, limit=None),
            normal_from,
        )
    # -- one sample rate
    rates = [(f.rate.hz, len(f.values)) for f in every if f.rate is not None]
    if rates and len(rates) < len(every):
        f = next(f for f in every if f.rate is None)
        raise UserError(
            f"{printable(f.path, None)} has no timestamp column while {printable(every[0].path, None)} has one; "
            "give every file the same "
            "columns or set data.sample_rate_hz"
        )
    rate = None
    origin = ""
    if rates:
        lo, hi = min(r for r, _ in rates), max(r for r, _ in rates)
        if hi - lo > RATE_TOLERANCE * lo:
            shown = ", ".join(f"{printable(f.path.name)}: {fmt_hz(f.rate.hz)}" for f in every if f.rate)  # type: ignore[union-attr]
            raise UserError(f"the files have different sample rates ({shown}); resample them to one rate")
        rate = float(sample_rate_hz or sum(r * n for r, n in rates) / sum(n for _, n in rates))
        origin = first.rate.origin if first.rate else ""
        if len(rates) > 1:
            spread = 100 * (hi - lo) / lo
            origin += f"; {len(rates)} files" + (f", rates within {spread:.2g} %" if spread >= 0.005 else "")
    out: dict[str, list[Series]] = {}
    for group, fs in files.items():
        out[group] = []
        for f in fs:
            labels = classes = None
            if f.label_codes is not None and meaning is not None:
                labels, classes = to_labels(f.label_codes, f.label_values, meaning)
            elif (cls := fixed[f.path]) is not None and meaning is not None:
                labels = np.full(len(f.values), 0 if meaning.is_normal(cls) else 1, np.int8)
                classes = np.full(len(f.values), cls, dtype=object)
            meta = {
                "file": str(f.path),
                "columns": f.columns,
                "rate": None if f.rate is None else {**f.rate.to_dict(), "hz": rate, "origin": origin},
                "labels": None if meaning is None else meaning.to_dict(),
                "file_label": fixed[f.path],
            }
            segments = f.rate.segments if f.rate is not None else [(0, len(f.values))]
            for k, (a, b) in enumerate(segments):
                name = (
                    str(f.path)
                    if len(segments) == 1
                    else f"{f.path}[{k}: rows {f.lines[a]}..{f.lines[b - 1]}]"
                )
                out[group].append(
                    Series(
                        values=f.values[a:b],
                        labels=None if labels is None else labels[a:b],
                        channel_names=tuple(f.names),
                        sample_rate_hz=rate,
                        source=name,
                        classes=None if classes is None else classes[a:b],
                        lines=f.lines[a:b],
                        meta=meta,
                    )
                )
    return out


def load_csv(
    paths: str | Path | Sequence[str | Path],
    *,
    channels: Sequence[ColumnSpec] | None = None,
    timestamp: ColumnSpec | None = AUTO,
    label: ColumnSpec | None = AUTO,
    normal: str | Sequence[str] | None = None,
    sample_rate_hz: float | None = None,
    delimiter: str | None = None,
    **opts,  # timestamp_unit, timestamp_format, gaps, file_labels, progress (see load_csv_groups)
) -> list[Series]:
    """Load one Series per file (glob patterns allowed); files are matched by channel name."""
    if channels is not None and len(channels) == 0:
        raise UserError("the channel list is empty; name at least one column or pass channels=None")
    return load_csv_groups(
        {"files": paths},
        channels=channels,
        timestamp=timestamp,
        label=label,
        normal=normal,
        sample_rate_hz=sample_rate_hz,
        delimiter=delimiter,
        **opts,
    )["files"]


def load_csv_file(path: Path, **opts) -> Series:
    """One file as one Series (see load_csv for the options; a gap split is refused here)."""
    out = load_csv([path], **opts)
    if len(out) != 1:
        raise UserError(
            f"{printable(path, None)} splits into {len(out)} series at its gaps; load it with load_csv"
        )
    return out[0]
