"""Generic CSV loader: one column per channel, optional timestamp and label columns, one series per file.

Format accepted
---------------
- UTF-8 text (a BOM is fine), delimiter `,` `;` or tab (detected from the first line; whitespace-separated
  columns also work), blank lines ignored.
- A header row is detected when any field of the first row is not a number; without a header the columns
  are called `col0`, `col1`, ... and may also be selected by index.
- `timestamp`: a column of seconds (numbers) or ISO dates; it only serves to measure the sample rate
  ((n - 1) / duration) and must increase. `label`: 0 (normal) / 1 (anomaly), or named classes together with
  `normal=` naming the normal class(es). By default ("auto") a column called timestamp/time/t/datetime is
  the timestamp and one called label/is_anomaly/anomaly/class is the label; pass None to disable.
- Every file is its own series: windows never span two files.

Every problem with the input ends in `UserError` with one sentence saying where and what to do.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from glob import glob
from pathlib import Path

import numpy as np

from train.errors import UserError

F32_MAX = float(np.finfo(np.float32).max)
# Smallest magnitude that rounds to infinity in float32 (max + half an ulp, ties to even): a decimal
# literal of float32's max such as 3.40282347e+38 is a little above F32_MAX but still float32's max.
F32_OVERFLOW = 2.0**128 - 2.0**103
AUTO = "auto"
TIMESTAMP_NAMES = ("timestamp", "time", "t", "time_s", "datetime", "date")
LABEL_NAMES = ("label", "labels", "is_anomaly", "anomaly", "class", "target")

ColumnSpec = str | int


@dataclass(frozen=True, eq=False)
class Series:
    """One continuous recording.

    values: float32 [T, C]; labels: int8 [T] (0 normal, 1 anomaly) or None when unknown;
    classes: the original label of each sample when the source had named classes, else None.
    """

    values: np.ndarray
    labels: np.ndarray | None
    channel_names: tuple[str, ...]
    sample_rate_hz: float | None
    source: str
    classes: np.ndarray | None = None

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


# ---------------------------------------------------------------- reading text
def read_text(path: Path) -> str:
    """The file's text, or a UserError saying why it cannot be read as a text file."""
    if not path.exists():
        raise UserError(f"file {path} does not exist; check the path")
    if path.is_dir():
        raise UserError(f"{path} is a directory, not a file; pass the CSV file itself")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read {path} ({exc.strerror}); check its permissions") from None
    if not data.strip():
        raise UserError(f"file {path} is empty; pass a file with data rows")
    if b"\0" in data:
        raise UserError(
            f"{path} looks like a binary file, not a CSV (it contains NUL bytes); pass a text CSV"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError(
            f"{path} is not UTF-8 text (undecodable byte at offset {exc.start}); save it as UTF-8 CSV"
        ) from None


def detect_delimiter(first_line: str) -> str | None:
    """`,` `;` or tab, whichever occurs most in the first line; None means whitespace-separated."""
    counts = {d: first_line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    if counts[best] > 0:
        return best
    return None if len(first_line.split()) > 1 else ","


def split_rows(text: str, path: Path, delimiter: str | None = None) -> list[tuple[int, list[str]]]:
    """(line number, stripped fields) of every non-blank row."""
    lines = text.splitlines()
    first = next((ln for ln in lines if ln.strip()), "")
    delim = delimiter if delimiter is not None else detect_delimiter(first)
    rows: list[tuple[int, list[str]]] = []
    if delim is None:
        for i, line in enumerate(lines, 1):
            if line.strip():
                rows.append((i, line.split()))
        return rows
    try:
        # newline=None: universal newlines, so old Mac files (CR only) read like LF/CRLF ones
        reader = csv.reader(io.StringIO(text, newline=None), delimiter=delim)
        for fields in reader:
            if any(f.strip() for f in fields):
                rows.append((reader.line_num, [f.strip() for f in fields]))
    except csv.Error as exc:
        raise UserError(f"{path} is not a valid CSV ({exc}); check its quoting and delimiter") from None
    return rows


def is_number(s: str) -> bool:
    if "_" in s:  # float("1_0") == 10.0, but no CSV writer means that
        return False
    try:
        float(s)
    except ValueError:
        return False
    return True


def parse_numbers(
    rows: list[tuple[int, list[str]]], cols: Sequence[int], names: Sequence[str], path: Path
) -> np.ndarray:
    """float64 [n_rows, len(cols)] from the selected columns; UserError names the row and column."""
    out = np.empty((len(rows), len(cols)), np.float64)
    for r, (line, fields) in enumerate(rows):
        for j, c in enumerate(cols):
            s = fields[c]
            try:
                if "_" in s:  # Python's float() reads "1_0" as 10; a CSV value with "_" is not a number
                    raise ValueError(s)
                v = float(s)
            except ValueError:
                what = "an empty value" if s == "" else f"{s[:40]!r}, not a number"
                raise UserError(
                    f"{path} row {line}, column '{names[c]}': {what}; fix or remove that value"
                ) from None
            if not math.isfinite(v) and s.lower().lstrip("+-") in ("nan", "inf", "infinity"):
                raise UserError(
                    f"{path} row {line}, column '{names[c]}' is {s[:40]!r} (NaN or infinite); "
                    "fill or remove the missing values"
                )
            if not abs(v) < F32_OVERFLOW:  # also a literal too long for float64 (float() gives inf)
                raise UserError(
                    f"{path} row {line}, column '{names[c]}': {s[:40]!r} is beyond float32's range; "
                    "rescale that channel"
                )
            out[r, j] = v
    return out


def parse_times(rows: list[tuple[int, list[str]]], col: int, name: str, path: Path) -> np.ndarray:
    """Timestamps in seconds (float64): numbers as given, ISO dates relative to the first."""
    vals = [fields[col] for _, fields in rows]
    if all(is_number(v) for v in vals):
        t = parse_numbers(rows, [col], [name] * (col + 1), path)[:, 0]
    else:
        try:
            dt = [datetime.fromisoformat(v) for v in vals]
        except ValueError:
            bad = next(i for i, v in enumerate(vals) if not _is_iso(v))
            raise UserError(
                f"{path} row {rows[bad][0]}, timestamp column '{name}': {vals[bad][:40]!r} is neither "
                "seconds nor an ISO date; fix it or pass timestamp=None"
            ) from None
        t = np.array([(d - dt[0]).total_seconds() for d in dt], np.float64)
    steps = np.diff(t)
    if len(steps) and np.any(steps <= 0):
        i = int(np.flatnonzero(steps <= 0)[0]) + 1
        raise UserError(
            f"{path} row {rows[i][0]}: timestamp column '{name}' does not increase; "
            "sort the rows by time or pass timestamp=None"
        )
    return t


def _is_iso(v: str) -> bool:
    try:
        datetime.fromisoformat(v)
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------- columns and labels
def resolve_column(spec: ColumnSpec, names: Sequence[str], path: Path, what: str) -> int:
    if isinstance(spec, int) and not isinstance(spec, bool):
        if not 0 <= spec < len(names):
            raise UserError(
                f"{what} column index {spec} is out of range: {path} has {len(names)} columns; "
                f"use 0..{len(names) - 1}"
            )
        return spec
    if spec in names:
        return names.index(spec)
    shown = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
    raise UserError(f"{what} column '{spec}' is not in {path}; its columns are: {shown}")


def _auto_column(names: Sequence[str], candidates: Sequence[str]) -> int | None:
    lower = [n.lower() for n in names]
    for cand in candidates:
        if cand in lower:
            return lower.index(cand)
    return None


def labels_from_classes(
    classes: Sequence[str], normal: str | Sequence[str] | None, where: str
) -> tuple[np.ndarray, np.ndarray | None]:
    """(int8 labels, class array or None): 0/1 as given, or named classes mapped with `normal`."""
    raw = [c.strip() for c in classes]
    if normal is None and all(v in ("0", "1", "0.0", "1.0") for v in raw):
        return np.array([int(float(v)) for v in raw], np.int8), None
    present = sorted(set(raw))
    if normal is None:
        raise UserError(
            f"{where} has classes {', '.join(present[:12])} (not 0/1); "
            "pass normal=[...] naming the normal class(es)"
        )
    wanted = [normal] if isinstance(normal, str) else [str(n) for n in normal]
    canon = {_canon(c) for c in present}
    missing = [w for w in wanted if _canon(w) not in canon]
    if missing:
        raise UserError(
            f"normal class {missing[0]!r} does not occur in {where}; "
            f"its classes are {', '.join(present[:12])}"
        )
    keep = {_canon(w) for w in wanted}
    arr = np.array(raw, dtype=object)
    labels = np.array([0 if _canon(c) in keep else 1 for c in raw], np.int8)
    return labels, arr


def _canon(c: str) -> str:
    """Class names compare as text, numbers as numbers ("1" == "1.0")."""
    try:
        return repr(float(c))
    except ValueError:
        return c


# ---------------------------------------------------------------- the loader
def expand_paths(paths: str | Path | Sequence[str | Path]) -> list[Path]:
    items = [paths] if isinstance(paths, str | Path) else list(paths)
    if not items:
        raise UserError("no CSV file was given; pass at least one path")
    out: list[Path] = []
    for item in items:
        s = str(item)
        if any(ch in s for ch in "*?["):
            found = sorted(glob(s))
            if not found:
                raise UserError(f"no file matches {s}; check the pattern")
            out.extend(Path(f) for f in found)
        else:
            out.append(Path(item))
    return out


def load_csv_file(
    path: Path,
    *,
    channels: Sequence[ColumnSpec] | None = None,
    timestamp: ColumnSpec | None = AUTO,
    label: ColumnSpec | None = AUTO,
    normal: str | Sequence[str] | None = None,
    sample_rate_hz: float | None = None,
    delimiter: str | None = None,
) -> Series:
    text = read_text(path)
    rows = split_rows(text, path, delimiter)
    if not rows:
        raise UserError(f"file {path} is empty; pass a file with data rows")
    first_line, first = rows[0]
    has_header = not all(is_number(f) for f in first)
    if has_header:
        names = list(first)
        if len(set(names)) != len(names):
            dup = next(n for n in names if names.count(n) > 1)
            raise UserError(f"{path} has two columns named '{dup}'; give every column a distinct name")
        data = rows[1:]
    else:
        names = [f"col{i}" for i in range(len(first))]
        data = rows
    if not data:
        raise UserError(f"{path} has a header but no data rows; pass a file with data")
    width = len(names)
    for line, fields in data:
        if len(fields) != width:
            ref = "the header" if has_header else f"row {first_line}"
            raise UserError(
                f"{path} row {line} has {len(fields)} fields but {ref} has {width}; "
                "make every row the same width"
            )

    ts = _pick(timestamp, names, path, "timestamp", TIMESTAMP_NAMES)
    lab = _pick(label, names, path, "label", LABEL_NAMES)
    if ts is not None and ts == lab:
        raise UserError(
            f"the timestamp and the label are the same column of {path}; name two different columns"
        )
    if channels is None:
        cols = [i for i in range(width) if i not in (ts, lab)]
    else:
        if len(channels) == 0:
            raise UserError("the channel list is empty; name at least one column or pass channels=None")
        cols = [resolve_column(c, names, path, "channel") for c in channels]
        if ts in cols or lab in cols:
            raise UserError(f"a channel of {path} is also its timestamp or label column; pick other columns")
    if not cols:
        raise UserError(f"{path} has no channel column besides its timestamp/label; add the sensor columns")

    values = parse_numbers(data, cols, names, path).astype(np.float32)
    rate = sample_rate_hz
    if ts is not None:
        t = parse_times(data, ts, names[ts], path)
        if rate is None and len(t) > 1:
            rate = float((len(t) - 1) / (t[-1] - t[0]))  # mean rate: robust to jittery clocks
    labels = classes = None
    if lab is not None:
        raw = [fields[lab] for _, fields in data]
        empty = next((i for i, v in enumerate(raw) if v == ""), None)
        if empty is not None:
            raise UserError(f"{path} row {data[empty][0]} has no label in column '{names[lab]}'; fill it in")
        labels, classes = labels_from_classes(raw, normal, f"label column '{names[lab]}' of {path}")
    return Series(
        values=values,
        labels=labels,
        channel_names=tuple(names[c] for c in cols),
        sample_rate_hz=rate,
        source=str(path),
        classes=classes,
    )


def _pick(
    spec: ColumnSpec | None, names: Sequence[str], path: Path, what: str, auto: Sequence[str]
) -> int | None:
    if spec is None or spec == "":
        return None
    if spec == AUTO:
        return _auto_column(names, auto)
    return resolve_column(spec, names, path, what)


def load_csv(
    paths: str | Path | Sequence[str | Path],
    *,
    channels: Sequence[ColumnSpec] | None = None,
    timestamp: ColumnSpec | None = AUTO,
    label: ColumnSpec | None = AUTO,
    normal: str | Sequence[str] | None = None,
    sample_rate_hz: float | None = None,
    delimiter: str | None = None,
) -> list[Series]:
    """Load one Series per file (glob patterns allowed); all files must have the same channels."""
    if sample_rate_hz is not None and not sample_rate_hz > 0:
        raise UserError(f"sample_rate_hz must be positive, got {sample_rate_hz}; pass e.g. 100")
    out = [
        load_csv_file(
            p,
            channels=channels,
            timestamp=timestamp,
            label=label,
            normal=normal,
            sample_rate_hz=sample_rate_hz,
            delimiter=delimiter,
        )
        for p in expand_paths(paths)
    ]
    for s in out[1:]:
        if s.channel_names != out[0].channel_names:
            raise UserError(
                f"{s.source} has channels {', '.join(s.channel_names)} but {out[0].source} has "
                f"{', '.join(out[0].channel_names)}; select the same channels in every file"
            )
        if (s.labels is None) != (out[0].labels is None):
            raise UserError(
                f"{s.source} and {out[0].source} differ in having a label column; label all or none"
            )
    rates = {round(s.sample_rate_hz, 3) for s in out if s.sample_rate_hz is not None}
    if len(rates) > 1:
        raise UserError(
            f"the files have different sample rates ({', '.join(map(str, sorted(rates)))} Hz); resample them "
            "to one rate or pass sample_rate_hz="
        )
    return out
