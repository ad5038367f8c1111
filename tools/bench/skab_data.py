"""Reading the Skoltech Anomaly Benchmark (SKAB v0.9) for the bench: stdlib csv + NumPy.

SKAB (github.com/waico/SKAB, GPL-3.0, data only; its copy lives in ../shared/datasets/skab, never in
this repository) is a pump testbed recorded at about 1 Hz. Each experiment is one `;`-separated CSV:
`datetime;Accelerometer1RMS;...;Volume Flow RateRMS;anomaly;changepoint`, `datetime` as
`YYYY-MM-DD hh:mm:ss`, `anomaly` and `changepoint` 0/1 per row. `anomaly-free/anomaly-free.csv` is a
normal recording without the two label columns. The 34 experiments are valve1/ (16 files), valve2/
(4) and other/ (14).

The bench reads the files itself (the pipeline's CSV loader serves users' recordings); every
problem with a file ends in a UserError naming it.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from tinyae.errors import UserError

CHANNELS = (
    "Accelerometer1RMS",
    "Accelerometer2RMS",
    "Current",
    "Pressure",
    "Temperature",
    "Thermocouple",
    "Voltage",
    "Volume Flow RateRMS",
)
GROUPS = ("valve1", "valve2", "other")
EXPERIMENTS = 34


@dataclass(frozen=True, eq=False)
class Recording:
    """One SKAB file: values float32 [T, 8] in CHANNELS order, labels int8 [T] (None for
    anomaly-free.csv), seconds since the first row [T]."""

    name: str  # e.g. "valve1/3"
    values: np.ndarray
    labels: np.ndarray | None
    seconds: np.ndarray

    def __len__(self) -> int:
        return len(self.values)

    @property
    def sample_rate_hz(self) -> float:
        span = float(self.seconds[-1] - self.seconds[0])
        return (len(self) - 1) / span if span > 0 else 0.0


@dataclass(frozen=True, eq=False)
class Experiment(Recording):
    """A labelled SKAB file: what experiments() returns (labels int8 [T], never None)."""

    labels: np.ndarray


def read(path: Path, name: str) -> Recording:
    """One SKAB CSV (see the module docstring)."""
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh, delimiter=";"))
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(
            f"cannot read the SKAB file {path} ({exc}); restore it from the SKAB repository"
        ) from None
    if not rows or rows[0][:1] != ["datetime"] or tuple(rows[0][1:9]) != CHANNELS:
        raise UserError(
            f"{path} does not start with the SKAB header datetime;{';'.join(CHANNELS)}; "
            "point the bench at SKAB v0.9's data folder"
        )
    labelled = rows[0][9:10] == ["anomaly"]
    width = 11 if labelled else 9
    body = [r for r in rows[1:] if r]
    try:
        stamps = [datetime.fromisoformat(r[0]) for r in body]
        table = np.array([[float(v) for v in r[1:width]] for r in body], np.float64)
    except (ValueError, IndexError) as exc:
        raise UserError(
            f"{path} has a malformed row ({exc}); restore the file from the SKAB repository"
        ) from None
    if table.shape != (len(body), width - 1) or not np.all(np.isfinite(table)):
        raise UserError(f"{path} has missing or non-finite values; restore the file from the SKAB repository")
    seconds = np.array([(t - stamps[0]).total_seconds() for t in stamps])
    if np.any(np.diff(seconds) < 0):
        raise UserError(
            f"{path} has datetimes that go back in time; restore the file from the SKAB repository"
        )
    labels = table[:, 8].astype(np.int8) if labelled else None
    return Recording(name, table[:, :8].astype(np.float32), labels, seconds)


def experiments(data_dir: Path, expect: int | None = EXPERIMENTS) -> list[Experiment]:
    """The labelled experiments, in the order valve1, valve2, other and by file number; SKAB v0.9
    has 34 (expect=None accepts any number, for test fixtures)."""
    if not data_dir.is_dir():
        raise UserError(
            f"no SKAB data folder at {data_dir}; pass the folder holding valve1/, valve2/ and other/"
        )
    out = []
    for group in GROUPS:
        files = sorted((data_dir / group).glob("*.csv"), key=lambda p: (len(p.stem), p.stem))
        out += [_labelled(read(p, f"{group}/{p.stem}")) for p in files]
    if not out or (expect is not None and len(out) != expect):
        raise UserError(
            f"{data_dir} holds {len(out)} labelled SKAB experiments, SKAB v0.9 has {EXPERIMENTS}; "
            "restore the data folder from the SKAB repository"
        )
    return out


def _labelled(rec: Recording) -> Experiment:
    if rec.labels is None:
        raise UserError(f"the SKAB experiment {rec.name} has no anomaly column; restore it from SKAB")
    return Experiment(rec.name, rec.values, rec.labels, rec.seconds)


def anomaly_free(data_dir: Path) -> Recording:
    path = data_dir / "anomaly-free" / "anomaly-free.csv"
    if not path.is_file():
        raise UserError(f"no {path}; restore SKAB's anomaly-free recording")
    return read(path, "anomaly-free")
