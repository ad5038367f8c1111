"""Reading a delimited text file as columns, streamed in chunks with bounded memory.

The file is decoded as UTF-8 (a BOM is fine) block by block, CR, LF and CRLF all end a line, and rows
go through Python's csv module in chunks of CHUNK_ROWS rows: only the selected columns are kept, as
float64 numbers (`numeric`), timestamps (a `TimeColumn` turns them into seconds) or label classes
(small integer codes and the list of distinct values). Peak memory is therefore the columns
themselves plus one chunk of text, whatever the file size; a `progress(bytes_done, bytes_total)`
callback is called after every chunk.

Every problem ends in `UserError` with the file, the row (its line number in the file) and the
column: an empty value, text where a number belongs, NaN or infinite values, a value beyond float32's
range, a row with another number of fields than the header, empty rows (a blank line, `,,,`) between two
data rows. Empty rows before the first data row and after the last one are skipped.
"""

from __future__ import annotations

import codecs
import csv
import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from tinyae.errors import UserError, printable
from tinyae.train.data.columns import ColumnStats
from tinyae.train.data.formats import UEA_TS, sniff

F32_MAX = float(np.finfo(np.float32).max)
# Smallest magnitude that rounds to infinity in float32 (max + half an ulp, ties to even): a decimal
# literal of float32's max such as 3.40282347e+38 is a little above F32_MAX but still float32's max.
F32_OVERFLOW = 2.0**128 - 2.0**103
CHUNK_ROWS = 16384
READ_BYTES = 1 << 22

Progress = Callable[[int, int], None]


class TimeParser(Protocol):
    """What the reader needs of a timestamp column (tinyae.train.data.timestamps.TimeColumn)."""

    def feed(self, values: Sequence[str], lines: np.ndarray, path: Path) -> np.ndarray: ...


def is_number(s: str) -> bool:
    if "_" in s:  # float("1_0") == 10.0, but no CSV writer means that
        return False
    try:
        float(s)
    except ValueError:
        return False
    return True


def detect_delimiter(first_line: str) -> str | None:
    """`,` `;` or tab, whichever occurs most in the first line; None means whitespace-separated."""
    counts = {d: first_line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    if counts[best] > 0:
        return best
    return None if len(first_line.split()) > 1 else ","


def check_file(path: Path) -> int:
    """The file's size in bytes, or a UserError saying why it cannot be read."""
    if not path.exists():
        raise UserError(f"file {printable(path, None)} does not exist; check the path")
    if path.is_dir():
        raise UserError(f"{printable(path, None)} is a directory, not a file; pass the CSV file itself")
    try:
        return path.stat().st_size
    except OSError as exc:
        raise UserError(
            f"cannot read {printable(path, None)} ({exc.strerror}); check its permissions"
        ) from None


def not_text(path: Path, reads: str = "CSV", accept: tuple[str, ...] = ()) -> None:
    """A UserError naming what `path` is when it is another structured format (JSON, Parquet, Excel,
    an Edge Impulse file, ...) rather than the delimited text this reader parses (`accept`: the
    formats, by their description, that this reader does read)."""
    found = sniff(path)
    if found is not None and found.what not in accept:
        raise UserError(found.refusal(path, reads))


def read_text(path: Path) -> str:
    """The whole file's text (for small row-per-case files), with the same checks as the reader."""
    check_file(path)
    not_text(path, "a UCR/UEA text file", accept=(UEA_TS,))
    text = "".join(_lines(path, lambda n: None))
    if not text.strip():
        raise UserError(f"file {printable(path, None)} is empty; pass a file with data rows")
    return text


def _lines(path: Path, on_bytes: Callable[[int], None]) -> Iterator[str]:
    """The file's lines with their end normalized to '\\n' (CR, LF, CRLF), decoded as UTF-8."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    offset = 0
    pending = ""
    try:
        f = path.open("rb")
    except OSError as exc:
        raise UserError(
            f"cannot read {printable(path, None)} ({exc.strerror}); check its permissions"
        ) from None
    with f:
        while True:
            try:
                block = f.read(READ_BYTES)
            except OSError as exc:
                raise UserError(
                    f"cannot read {printable(path, None)} ({exc.strerror}); check its permissions"
                ) from None
            if b"\0" in block:
                raise UserError(
                    f"{printable(path, None)} looks like a binary file, not a CSV (it contains NUL bytes); "
                    "pass a text CSV"
                )
            try:
                text = decoder.decode(block, final=not block)
            except UnicodeDecodeError as exc:
                raise UserError(
                    f"{printable(path, None)} is not UTF-8 text "
                    f"(undecodable byte at offset {offset + max(exc.start, 0)}); "
                    "save it as UTF-8 CSV"
                ) from None
            offset += len(block)
            on_bytes(offset)
            text = pending + text
            if block and text.endswith("\r"):  # a CRLF split across two blocks
                text, pending = text[:-1], "\r"
            else:
                pending = ""
            text = text.replace("\r\n", "\n").replace("\r", "\n")
            parts = text.split("\n")
            if not block:
                for line in parts[:-1]:
                    yield line + "\n"
                if parts[-1]:
                    yield parts[-1] + "\n"
                return
            pending = parts[-1] + pending
            for line in parts[:-1]:
                yield line + "\n"


class _Lines:
    """The file's lines, blank ones too, counting every line read (the reader's row numbers)."""

    def __init__(self, path: Path, on_bytes: Callable[[int], None]) -> None:
        self._gen = _lines(path, on_bytes)
        self.number = 0  # file line number of the last line handed out
        self.chars = 0  # characters handed out (for the row-count estimate)

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = next(self._gen)
        self.number += 1
        self.chars += len(line)
        return line


def _rows(src: _Lines, delimiter: str | None) -> Iterator[list[str]]:
    if delimiter is None:
        for line in src:
            yield line.split()
    else:
        yield from csv.reader(src, delimiter=delimiter)


def _empty_rows(path: Path, first: int, last: int, before: int, after: int) -> UserError:
    rows = f"row {first} is" if first == last else f"rows {first}..{last} ({last - first + 1}) are"
    return UserError(
        f"{printable(path, None)} {rows} empty (no value in any column) between data rows {before} and {after}: "
        "dropping them would splice the recording there; fill in the missing samples, or cut the file "
        "there into two recordings"
    )


def _batches(
    src: _Lines, path: Path, delimiter: str | None, size: int, after_data: bool = False
) -> Iterator[tuple[list[int], list[list[str]]]]:
    """(line numbers, fields) of up to `size` data rows at a time (fields not yet stripped).

    A row with no value in any column (a blank line, ",,,") holds no sample: empty rows before the first
    data row and after the last one (as spreadsheets write them) are skipped, a run of them between two data
    rows is refused (samples are missing there; dropping the rows would splice the recording).
    after_data: a data row came before the rows src yields (a file without a header, past its first row).
    """
    rows: list[list[str]] = []
    lines: list[int] = []
    last_data = 0 if after_data else -1  # line of the last data row (0: before src's first line), -1: none
    empty: tuple[int, int] | None = None  # first and last line of the current run of empty rows
    try:
        for fields in _rows(src, delimiter):
            if not any(f.strip() for f in fields):
                empty = (empty[0] if empty else src.number, src.number)
                continue
            if empty is not None and last_data >= 0:
                raise _empty_rows(path, *empty, last_data or empty[0] - 1, src.number)
            empty = None
            last_data = src.number
            rows.append(fields)
            lines.append(src.number)
            if len(rows) >= size:
                yield lines, rows
                rows, lines = [], []
    except csv.Error as exc:
        raise UserError(
            f"{printable(path, None)} is not a valid CSV ({exc}); check its quoting and delimiter"
        ) from None
    if rows:
        yield lines, rows


def _first_line(path: Path) -> str:
    for line in _lines(path, lambda n: None):
        if not line.isspace():
            return line
    return ""


def to_numbers(values: Sequence[str], lines: np.ndarray, path: Path, name: str) -> np.ndarray:
    """float64 numbers of one column, or a UserError naming the row and column of the first bad one."""
    try:
        if "_" in "".join(values):  # Python reads "1_0" as 10; a CSV value with "_" is not a number
            raise ValueError
        out = np.fromiter(map(float, values), np.float64, len(values))  # float() ignores outer spaces
    except ValueError:
        for i, raw in enumerate(values):
            s = raw.strip()
            if s == "":
                what = "an empty value"
            elif not is_number(s):
                what = f"{s[:40]!r}, not a number"
            else:
                continue
            raise UserError(
                f"{printable(path, None)} row {lines[i]}, column '{printable(name)}': {what}; fix or remove that value"
            ) from None
        raise  # unreachable: some value failed to parse
    bad = ~(np.abs(out) < F32_OVERFLOW)  # NaN, infinite, or rounds to infinity in float32
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        s = values[i].strip()
        if not math.isfinite(out[i]) and s.lower().lstrip("+-") in ("nan", "inf", "infinity"):
            raise UserError(
                f"{printable(path, None)} row {lines[i]}, column '{printable(name)}' is {s[:40]!r} (NaN or infinite); "
                "fill or remove the missing values"
            )
        raise UserError(
            f"{printable(path, None)} row {lines[i]}, column '{printable(name)}': "
            f"{s[:40]!r} is beyond float32's range; "
            "rescale that channel"
        )
    return out


class _Column:
    """A growing array: sized from an estimate of the row count, so the columns are not copied at the end."""

    def __init__(self, dtype: type, width: int | None = None) -> None:
        self.dtype, self.width = dtype, width
        self.data: np.ndarray | None = None
        self.n = 0

    def add(self, block: np.ndarray, expect_rows: int) -> None:
        need = self.n + len(block)
        if self.data is None or need > len(self.data):
            cap = max(need, expect_rows, int(1.25 * (0 if self.data is None else len(self.data))))
            shape = (cap,) if self.width is None else (cap, self.width)
            grown: np.ndarray = np.empty(shape, self.dtype)
            if self.data is not None:
                grown[: self.n] = self.data[: self.n]
            self.data = grown
        self.data[self.n : need] = block
        self.n = need

    def result(self) -> np.ndarray:
        assert self.data is not None
        return self.data[: self.n]


@dataclass
class Columns:
    """What `CsvReader.read` returns: the selected columns of every data row."""

    lines: np.ndarray  # int32 [n]: line number of each row in the file
    numeric: np.ndarray  # float32 [n, k]: the numeric columns, in the order asked
    stats: list[ColumnStats]  # per numeric column, from the exact (float64) values
    times: np.ndarray | None  # float64 [n] from the TimeColumn, or None
    label_codes: np.ndarray | None  # int32 [n]: index into label_values
    label_values: list[str] = field(default_factory=list)


class CsvReader:
    """A delimited text file: its header (or generated names) now, its columns on `read`."""

    def __init__(self, path: Path, delimiter: str | None = None) -> None:
        self.path = Path(path)
        self.size = check_file(self.path)
        not_text(self.path)
        first = _first_line(self.path)
        if not first:
            raise UserError(f"file {printable(self.path, None)} is empty; pass a file with data rows")
        self.delimiter = delimiter if delimiter is not None else detect_delimiter(first)
        self._done = 0
        self._src = _Lines(self.path, self._count)
        head = next(_batches(self._src, self.path, self.delimiter, 1), None)
        if head is None:
            raise UserError(f"file {printable(self.path, None)} is empty; pass a file with data rows")
        self.first_line, fields = head[0][0], [f.strip() for f in head[1][0]]
        self.has_header = not all(is_number(f) for f in fields)
        # the rows after the first: without a header the first is a data row, so empty rows after it are
        # between data rows; after a header they come before the first one
        self._batches = _batches(self._src, self.path, self.delimiter, CHUNK_ROWS, not self.has_header)
        if self.has_header:
            self.names = list(fields)
            if len(set(self.names)) != len(self.names):
                dup = next(n for n in self.names if self.names.count(n) > 1)
                raise UserError(
                    f"{printable(self.path, None)} has two columns named '{printable(dup)}'; "
                    "give every column a distinct name"
                )
            self._pending: list[tuple[list[int], list[list[str]]]] = []
        else:
            self.names = [f"col{i}" for i in range(len(fields))]
            self._pending = [head]

    def _count(self, n: int) -> None:
        self._done = n

    def read(
        self,
        numeric: Sequence[int],
        *,
        timestamp: tuple[int, TimeParser] | None = None,
        label: int | None = None,
        progress: Progress | None = None,
    ) -> Columns:
        width = len(self.names)
        ref = "the header" if self.has_header else f"row {self.first_line}"
        values = _Column(np.float32, len(numeric))
        line_col = _Column(np.int32)
        time_col = _Column(np.float64)
        code_col = _Column(np.int32)
        stats = [ColumnStats() for _ in numeric]
        classes: dict[str, int] = {}
        for line_list, rows in itertools.chain(self._pending, self._batches):
            widths = set(map(len, rows))
            if widths != {width}:
                i = next(i for i, r in enumerate(rows) if len(r) != width)
                raise UserError(
                    f"{printable(self.path, None)} row {line_list[i]} has {len(rows[i])} fields but {ref} has {width}; "
                    "make every row the same width"
                )
            lines = np.asarray(line_list, np.int32)
            cols = list(zip(*rows, strict=True))
            # rows the whole file holds, judged from the characters per row so far (+2 %)
            expect = int(1.02 * self.size * self._src.number / max(self._src.chars, 1)) + len(rows)
            block = np.empty((len(rows), len(numeric)), np.float32)
            for j, c in enumerate(numeric):
                exact = to_numbers(cols[c], lines, self.path, self.names[c])
                stats[j].feed(exact, cols[c])
                block[:, j] = exact
            values.add(block, expect)
            line_col.add(lines, expect)
            if timestamp is not None:
                col, parser = timestamp
                time_col.add(parser.feed([v.strip() for v in cols[col]], lines, self.path), expect)
            if label is not None:
                texts = [v.strip() for v in cols[label]]
                codes = np.fromiter(
                    (classes.setdefault(v, len(classes)) for v in texts), np.int32, len(texts)
                )
                if "" in classes:
                    i = int(np.flatnonzero(codes == classes[""])[0])
                    raise UserError(
                        f"{printable(self.path, None)} row {lines[i]} has no label in column "
                        f"'{printable(self.names[label])}'; fill it in"
                    )
                code_col.add(codes, expect)
            del cols, rows
            if progress is not None:
                progress(self._done, self.size)
        self._pending = []
        if values.n == 0:
            raise UserError(
                f"{printable(self.path, None)} has a header but no data rows; pass a file with data"
            )
        return Columns(
            lines=line_col.result(),
            numeric=values.result(),
            stats=stats,
            times=time_col.result() if timestamp is not None else None,
            label_codes=code_col.result() if label is not None else None,
            label_values=list(classes),
        )
