"""Row-per-window files: the UCR archive format (label first, then the values) and UEA/sktime `.ts`.

- UCR (`.tsv`, `.csv`, `.txt`): one case per row, the class label first, then the L values of one
  channel; tab, comma or whitespace separated.
- `.ts` (UEA multivariate): `#` comments and `@` header lines, then `@data`; one case per line, the
  channels separated by `:` (each a comma-separated list of values) and the class label last
  (`@classLabel true ...`). Timestamped `.ts` files and missing values (`?`) are refused.

Classes are mapped to labels with `normal=` (the class or classes that are normal; every other class is
an anomaly); 0/1 classes need no selector.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyae.errors import UserError, printable
from tinyae.train.data.csv_source import (
    F32_OVERFLOW,
    Series,
    detect_delimiter,
    read_text,
)
from tinyae.train.data.labels import label_meaning


@dataclass(frozen=True, eq=False)
class WindowSet:
    """Fixed-length cases: windows float32 [n, L, C], labels int8 [n] (0 normal), classes [n] (as read)."""

    windows: np.ndarray
    labels: np.ndarray
    classes: np.ndarray
    channel_names: tuple[str, ...]
    sample_rate_hz: float | None
    source: str
    meaning: dict | None = None  # LabelMeaning.to_dict(): which classes are normal, said or assumed

    def __len__(self) -> int:
        return len(self.windows)

    def to_series(self) -> list[Series]:
        """Each case as its own series (a case is a separate recording: windows never span two)."""
        return [
            Series(
                values=self.windows[i],
                labels=np.full(self.windows.shape[1], self.labels[i], np.int8),
                channel_names=self.channel_names,
                sample_rate_hz=self.sample_rate_hz,
                source=f"{printable(self.source, None)}#{i}",
                classes=np.full(self.windows.shape[1], self.classes[i], dtype=object),
            )
            for i in range(len(self.windows))
        ]


def _number(s: str, path: Path, line: int, where: str) -> float:
    try:
        v = float(s)
    except ValueError:
        what = "a missing value '?'" if s.strip() == "?" else f"{s.strip()[:40]!r}, not a number"
        raise UserError(
            f"{printable(path, None)} line {line}, {where}: {what}; fix that case or remove it"
        ) from None
    if not abs(v) < F32_OVERFLOW:  # NaN, inf, or beyond float32 (rounds to inf)
        raise UserError(
            f"{printable(path, None)} line {line}, {where} is {s.strip()!r} (NaN, infinite or too large); fix that case"
        )
    return v


def _parse_ts(path: Path, text: str) -> tuple[list[list[list[float]]], list[str]]:
    cases: list[list[list[float]]] = []
    classes: list[str] = []
    has_label = True
    in_data = False
    for line_no, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            low = line.lower()
            if low.startswith("@timestamps") and low.split()[-1] == "true":
                raise UserError(
                    f"{printable(path, None)} uses timestamped .ts data, which is not supported; "
                    "export it without timestamps"
                )
            if low.startswith("@classlabel"):
                has_label = len(low.split()) > 1 and low.split()[1] == "true"
            if low.startswith("@data"):
                in_data = True
            elif not low.startswith("@"):
                raise UserError(
                    f"{printable(path, None)} line {line_no} comes before '@data'; is this a .ts file?"
                )
            continue
        parts = line.split(":")
        if has_label:
            if len(parts) < 2:
                raise UserError(
                    f"{printable(path, None)} line {line_no} has no class label after the values; add it"
                )
            classes.append(parts[-1].strip())
            parts = parts[:-1]
        else:
            classes.append("0")
        dims = [
            [_number(v, path, line_no, f"channel {c}") for v in part.split(",")]
            for c, part in enumerate(parts)
        ]
        cases.append(dims)
    if not in_data:
        raise UserError(f"{printable(path, None)} has no '@data' line; it is not a .ts file")
    return cases, classes


def _parse_ucr(path: Path, text: str) -> tuple[list[list[list[float]]], list[str]]:
    lines = [(i, ln) for i, ln in enumerate(text.splitlines(), 1) if ln.strip()]
    delim = detect_delimiter(lines[0][1]) if lines else ","
    cases: list[list[list[float]]] = []
    classes: list[str] = []
    for line_no, line in lines:
        fields = line.split() if delim is None else line.split(delim)
        if len(fields) < 2:
            raise UserError(
                f"{printable(path, None)} line {line_no} has no values after the label; one case per row: label, values"
            )
        classes.append(fields[0].strip())
        cases.append([[_number(v, path, line_no, f"value {j + 1}") for j, v in enumerate(fields[1:])]])
    return cases, classes


def _read_cases(
    path: Path, channel_names: Sequence[str] | None
) -> tuple[np.ndarray, list[str], tuple[str, ...]]:
    """(windows float32 [n, L, C], the class of each case, channel names) of one UCR or `.ts` file."""
    p = Path(path)
    text = read_text(p)
    cases, classes = _parse_ts(p, text) if p.suffix.lower() == ".ts" else _parse_ucr(p, text)
    if not cases:
        raise UserError(f"{printable(p, None)} has no cases; pass a file with at least one row of data")
    n_ch, length = len(cases[0]), len(cases[0][0])
    for i, case in enumerate(cases):
        if len(case) != n_ch:
            raise UserError(
                f"{printable(p, None)} case {i + 1} has {len(case)} channels but case 1 has {n_ch}; fix the file"
            )
        for c, dim in enumerate(case):
            if len(dim) != length:
                raise UserError(
                    f"{printable(p, None)} case {i + 1}, channel {c} has {len(dim)} values but case 1 has {length}; "
                    "all cases must have the same length"
                )
    names = tuple(channel_names) if channel_names is not None else tuple(f"dim{c}" for c in range(n_ch))
    if len(names) != n_ch:
        raise UserError(
            f"{len(names)} channel names given but {printable(p, None)} has {n_ch} channels; pass {n_ch} names"
        )
    windows = np.asarray(cases, np.float64).transpose(0, 2, 1).astype(np.float32)
    return windows, classes, names


def load_ucr_files(
    paths: Sequence[str | Path],
    *,
    normal: str | Sequence[str] | None = None,
    channel_names: Sequence[str] | None = None,
    sample_rate_hz: float | None = None,
) -> list[WindowSet]:
    """Load UCR (`label, values...`) or UEA `.ts` files, one WindowSet each, with one meaning of the
    classes for all of them (tinyae.train.data.labels: data.normal, or 0/1 read as 0 = normal, assumed)."""
    read = [(Path(p), *_read_cases(Path(p), channel_names)) for p in paths]
    every = [c for _, _, classes, _ in read for c in classes]
    where = "the classes of " + ", ".join(printable(p, None) for p, *_ in read[:3])
    meaning = label_meaning(every, normal, where)
    out = []
    for p, windows, classes, names in read:
        labels = np.array([0 if meaning.is_normal(c) else 1 for c in classes], np.int8)
        out.append(
            WindowSet(
                windows=windows,
                labels=labels,
                classes=np.array([c.strip() for c in classes], dtype=object),
                channel_names=names,
                sample_rate_hz=sample_rate_hz,
                source=str(p),
                meaning=meaning.to_dict(),
            )
        )
    return out


def load_ucr(
    path: str | Path,
    *,
    normal: str | Sequence[str] | None = None,
    channel_names: Sequence[str] | None = None,
    sample_rate_hz: float | None = None,
) -> WindowSet:
    """Load a UCR (`label, values...`) or UEA `.ts` file as a WindowSet."""
    (ws,) = load_ucr_files([path], normal=normal, channel_names=channel_names, sample_rate_hz=sample_rate_hz)
    return ws
