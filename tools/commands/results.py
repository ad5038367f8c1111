"""Per-window result files (`--out results.csv|.jsonl`, `--log`), flushed row by row."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import IO

from tinyae.errors import UserError

RESULT_FIELDS = (
    "series",
    "window",
    "first_sample",
    "score",
    "threshold",
    "anomaly",
    "alarm",
    "status",
    "cost",
    "label",
)


class RowWriter:
    """CSV or JSON Lines by the file's suffix; every row is flushed as soon as it is written."""

    def __init__(self, path: str | Path, fields: tuple[str, ...] = RESULT_FIELDS) -> None:
        self.path = Path(path)
        self.fields = fields
        suffix = self.path.suffix.lower()
        if suffix not in (".csv", ".jsonl", ".ndjson"):
            raise UserError(f"cannot tell the format of {self.path}; name it .csv or .jsonl")
        self.jsonl = suffix != ".csv"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._f: IO[str] = self.path.open("w", newline="")
        except OSError as exc:
            raise UserError(f"cannot write {self.path} ({exc.strerror}); check the directory") from None
        self._csv = None if self.jsonl else csv.writer(self._f)
        if self._csv is not None:
            self._csv.writerow(fields)
            self._f.flush()
        self.rows = 0

    def write(self, row: dict) -> None:
        if self._csv is not None:
            self._csv.writerow([_cell(row.get(k)) for k in self.fields])
        else:
            self._f.write(json.dumps({k: row.get(k) for k in self.fields}) + "\n")
        self._f.flush()
        self.rows += 1

    def close(self) -> None:
        self._f.close()


def _cell(v: object) -> object:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, float):
        return repr(v)
    return "" if v is None else v
