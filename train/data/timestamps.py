"""Timestamps to a sample rate: units, date-time strings, jitter and gaps, or one sentence saying why not.

A timestamp column holds numbers or date-times:
- numbers are in seconds, milliseconds, microseconds or nanoseconds. The unit is `data.timestamp_unit`
  when given; otherwise a unit in the column name (`timestamp_ms`, `time [us]`, `millis`, `t(s)`), then
  the magnitude of Unix-epoch values (1e9.. s, 1e12.. ms, 1e15.. us, 1e18.. ns), then seconds when that
  gives more than 1 Hz. Anything else (e.g. whole numbers stepping by 10: 0.1 Hz in seconds or 100 Hz in
  milliseconds) is ambiguous and refused with both readings, unless `data.sample_rate_hz` picks one.
- date-times are ISO 8601 (`2024-05-01 12:00:00.010`, `...T...Z`, `+02:00`), year-first with slashes
  (`2024/05/01 12:00:00.010`), a time of day (`12:00:00.010`, wrapping at midnight), or any
  `data.timestamp_format` (Python strptime codes). Day-first/month-first dates are refused as ambiguous.
  Time zones count (a DST change in zone-aware stamps is no gap); mixing zone-aware and naive stamps
  is refused. In local-time stamps (no zone) a daylight-saving change shows as the clock going back an
  hour (a repeated hour) or jumping forward one: named as such, with what to do (UTC, an offset, %z).

The rate is 1 / (mean step) over the steps that are not gaps, so clock jitter averages out. A step
more than GAP_FACTOR times the median step is a gap (lost samples, a paused recording): refused with
its row, or with `data.gaps = "split"` the recording is cut there into separate series. A step under
1/GAP_FACTOR of the median, a step that does not increase, is refused as irregular sampling. A rate
given in `data.sample_rate_hz` must agree with the timestamps within RATE_TOLERANCE.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time
from pathlib import Path

import numpy as np

from tinyae.errors import UserError, printable
from tinyae.train.data.table import is_number, to_numbers

UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
UNIT_WORDS = {
    "s": "s", "sec": "s", "secs": "s", "second": "s", "seconds": "s",
    "ms": "ms", "msec": "ms", "millis": "ms", "millisecond": "ms", "milliseconds": "ms",
    "us": "us", "µs": "us", "usec": "us", "micros": "us", "microsecond": "us", "microseconds": "us",
    "ns": "ns", "nsec": "ns", "nanos": "ns", "nanosecond": "ns", "nanoseconds": "ns",
}  # fmt: skip
EPOCH_RANGES = (("s", 1e9, 1e10), ("ms", 1e12, 1e13), ("us", 1e15, 1e16), ("ns", 1e18, 1e19))
GAP_FACTOR = 1.5
TIME_WORDS = ("timestamp", "timestamps", "time", "t", "datetime", "date", "ts")
RATE_TOLERANCE = 0.02
GAP_MODES = ("refuse", "split")
_EPOCH = datetime(1970, 1, 1)
_YEAR_SLASH = re.compile(r"^\d{4}/\d{1,2}/\d{1,2}")
_DAY_MONTH = re.compile(r"^\d{1,2}[/.\-]\d{1,2}[/.\-]\d{2,4}\b")


def name_unit(name: str) -> str | None:
    """The time unit a column name states (`timestamp_ms`, `time [us]`, `millis`, `t(s)`), if any."""
    tokens = [w for w in re.split(r"[\s_\-\[\]()/.,]+", name.strip().lower()) if w]
    return UNIT_WORDS.get(tokens[-1]) if tokens else None


def is_time_name(name: str) -> bool:
    """A column name that says "timestamp": timestamp/time/t/datetime/date, alone or with a unit."""
    tokens = [w for w in re.split(r"[\s_\-\[\]()/.,]+", name.strip().lower()) if w]
    if not tokens:
        return False
    if tokens[0] in ("millis", "micros", "nanos") and len(tokens) == 1:
        return True
    if tokens[0] not in TIME_WORDS:
        return False
    return len(tokens) == 1 or (len(tokens) == 2 and tokens[1] in UNIT_WORDS)


def fmt_seconds(s: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if abs(s) >= scale:
            return f"{s / scale:.4g} {unit}"
    return f"{s / 1e-9:.4g} ns"


def fmt_hz(hz: float) -> str:
    return f"{hz:.6g} Hz"


class TimeColumn:
    """Parses a timestamp column chunk by chunk (numbers stay in their own unit; date-times -> s)."""

    def __init__(self, name: str, fmt: str = "") -> None:
        self.name = name
        self.fmt = fmt
        self.kind: str | None = None  # "number" | "datetime" | "time"
        self.integer_text = True
        self._aware: bool | None = None
        self._first_line = 0

    def feed(self, values: Sequence[str], lines: np.ndarray, path: Path) -> np.ndarray:
        if self.kind is None:
            numeric = not self.fmt and all(is_number(v) for v in values)
            self.kind = "number" if numeric else "datetime"
        if self.kind == "number":
            if self.integer_text:
                joined = "".join(values)
                self.integer_text = not any(ch in joined for ch in ".eE")
            return to_numbers(values, lines, path, self.name)
        out = np.empty(len(values), np.float64)
        for i, v in enumerate(values):
            out[i] = self._seconds(v, int(lines[i]), path)
        return out

    def _seconds(self, v: str, line: int, path: Path) -> float:
        # where(): the message's place, made only when a row is refused (not for each of a file's rows)
        def where() -> str:
            return f"{printable(path, None)} row {line}, timestamp column '{printable(self.name)}'"

        if self.fmt:
            try:
                dt = datetime.strptime(v, self.fmt)
            except ValueError:
                raise UserError(
                    f"{where()}: {v[:40]!r} does not match data.timestamp_format {self.fmt!r}; fix the "
                    "format (Python strptime codes) or the value"
                ) from None
            return self._dt(dt, where)
        text = v.replace("/", "-", 2) if _YEAR_SLASH.match(v) else v
        try:
            return self._dt(datetime.fromisoformat(text), where)
        except ValueError:
            pass
        try:
            t = time.fromisoformat(v)
        except ValueError:
            t = None
        if t is not None and t.tzinfo is None:
            if self._aware:
                raise UserError(f"{where()}: {v[:40]!r} has no date while earlier rows do; use one format")
            self.kind, self._aware = "time", False
            return t.hour * 3600.0 + t.minute * 60.0 + t.second + t.microsecond * 1e-6
        if _DAY_MONTH.match(v):
            raise UserError(
                f"{where()}: {v[:40]!r} could be day/month or month/day; set data.timestamp_format, "
                'e.g. "%d/%m/%Y %H:%M:%S.%f" or "%m/%d/%Y %H:%M:%S.%f"'
            )
        raise UserError(
            f"{where()}: {v[:40]!r} is neither a number nor an ISO 8601 date/time; fix it, set "
            'data.timestamp_format (strptime codes, e.g. "%Y%m%d %H%M%S"), or set data.timestamp = "none" '
            "and data.sample_rate_hz"
        )

    @property
    def aware(self) -> bool:
        """True when the stamps carry a time zone (then a daylight-saving change is no jump)."""
        return bool(self._aware)

    def _dt(self, dt: datetime, where: Callable[[], str]) -> float:
        aware = dt.tzinfo is not None
        if self._aware is None:
            self._aware = aware
        elif aware != self._aware or self.kind == "time":
            raise UserError(
                f"{where()}: {dt.isoformat()} {'has' if aware else 'lacks'} a time zone while earlier rows "
                f"{'do not' if aware else 'do'}; write every timestamp the same way"
            )
        return dt.timestamp() if aware else (dt - _EPOCH).total_seconds()


@dataclass
class Rate:
    """What the timestamps (or the config) say about sampling."""

    hz: float
    origin: str  # where the rate came from, in words (printed and written to the manifest)
    segments: list[tuple[int, int]] = field(default_factory=list)  # [a, b) rows without a gap
    jitter: float = 0.0  # std / mean of the steps, gaps excluded
    unit: str = ""  # s | ms | us | ns | date-time

    def to_dict(self) -> dict:
        return {"hz": self.hz, "origin": self.origin, "jitter": round(self.jitter, 6), "unit": self.unit}


def _median_step(raw: np.ndarray) -> float:
    d = np.diff(raw)
    d = d[d > 0]
    return float(np.median(d)) if len(d) else 0.0


DST_SHIFTS = (3600.0, 1800.0)  # daylight-saving changes: one hour (Lord Howe Island: half an hour)


def _dst_shift(step: float, period: float) -> float:
    """The daylight-saving shift (s) a backwards step of local time is, or 0: a step of minus one hour
    plus about one sample period (the clock repeats the hour after the sample that ends it)."""
    for shift in DST_SHIFTS:
        if abs(step + shift - period) <= max(2 * abs(period), 1.0):
            return shift
    return 0.0


def _unit(
    col: TimeColumn,
    raw: np.ndarray,
    unit: str,
    declared: float | None,
    where: str,
    model_hz: float | None = None,
) -> tuple[float, str, str]:
    """(scale to seconds, unit, how it was decided) for a numeric timestamp column. `model_hz`: the rate of
    the model a file is streamed to, which decides only what the column's name and values leave open (a
    file in no unit that gives the model's rate is refused, with its rate in each unit)."""
    if unit != "auto":
        return UNITS[unit], unit, f"in {unit} (data.timestamp_unit)"
    named = name_unit(col.name)
    if named:
        return UNITS[named], named, f"in {named} (the column name)"
    mid = float(np.median(np.abs(raw)))
    for u, lo, hi in EPOCH_RANGES:
        if lo <= mid < hi:
            return UNITS[u], u, f"Unix time in {u} (the values' magnitude)"
    step = _median_step(raw)
    if step <= 0:
        return 1.0, "s", "in s"  # too few rows to tell; the caller refuses what follows
    readings = {u: 1.0 / (step * s) for u, s in UNITS.items()}
    known = model_hz or declared  # a rate the unit must give: the model's, or data.sample_rate_hz
    if known:
        agree = [u for u, hz in readings.items() if abs(hz - known) <= RATE_TOLERANCE * known]
        if agree:
            by = "gives the model's sample rate" if model_hz else "agrees with data.sample_rate_hz"
            return UNITS[agree[0]], agree[0], f"in {agree[0]} (the only unit that {by})"
        if model_hz:
            raise UserError(
                f"{where} steps by {step:g}: that is {fmt_hz(readings['s'])} in seconds, "
                f"{fmt_hz(readings['ms'])} in milliseconds or {fmt_hz(readings['us'])} in microseconds, none "
                f"of them the model's {fmt_hz(model_hz)}; resample the file to {fmt_hz(model_hz)} or use a "
                "model trained at its rate"
            )
        raise UserError(
            f"{where} steps by {step:g}, which is {fmt_hz(readings['s'])} in seconds or "
            f"{fmt_hz(readings['ms'])} in milliseconds, not "
            f"data.sample_rate_hz = {declared:g}; fix one of them"
        )
    if readings["s"] > 1.0:
        return 1.0, "s", "in s (assumed: no unit in the column name; set data.timestamp_unit otherwise)"
    raise UserError(
        f"{where} steps by {step:g}: that is {fmt_hz(readings['s'])} in seconds, {fmt_hz(readings['ms'])} in "
        f"milliseconds or {fmt_hz(readings['us'])} in "
        "microseconds; set data.timestamp_unit to s, ms, us or ns "
        "(or data.sample_rate_hz)"
    )


def rate_from_timestamps(
    col: TimeColumn,
    raw: np.ndarray,
    lines: np.ndarray,
    path: Path,
    *,
    unit: str = "auto",
    declared: float | None = None,
    gaps: str = "refuse",
    model_hz: float | None = None,
) -> Rate:
    """The sample rate of one file from its timestamp column (see the module docstring)."""
    where = f"timestamp column '{printable(col.name)}' of {printable(path, None)}"
    n = len(raw)
    if col.kind == "number":
        scale, unit_name, how = _unit(col, raw, unit, declared, where, model_hz)
    else:
        if unit != "auto":
            raise UserError(
                f"{where} holds date-times, which carry their own unit; remove data.timestamp_unit"
            )
        scale, unit_name, how = 1.0, "date-time", "date-times"
    if n < 2:
        if declared:
            return Rate(declared, "data.sample_rate_hz", [(0, n)], 0.0, unit_name)
        raise UserError(
            f"{printable(path, None)} has a single row, too short to measure a sample rate; add more rows"
        )
    steps = np.diff(raw)
    if col.kind == "time":  # a time of day wraps at midnight
        steps[steps < -43200.0] += 86400.0
    if scale != 1.0:
        steps *= scale
    bad = np.flatnonzero(steps <= 0)
    local = col.kind in ("datetime", "time") and not col.aware  # wall-clock time: DST moves it
    positive = steps[steps > 0]
    typical = float(np.median(positive)) if len(positive) else 0.0
    if len(bad) and local:
        i = int(bad[0]) + 1
        shift = _dst_shift(float(steps[i - 1]), typical)
        if shift:
            raise UserError(
                f"{path} row {lines[i]}: timestamp column '{col.name}' goes back "
                f"{'one hour' if shift == 3600 else 'half an hour'} after row "
                f"{lines[i - 1]}: a daylight-saving change (the clock set back) in local-time timestamps, "
                "which repeat that hour; write the timestamps in UTC or with their UTC offset (e.g. "
                "2024-10-27T02:30:00+01:00), or parse the offset with data.timestamp_format and %z"
            )
    if len(bad):
        i = int(bad[0]) + 1
        raise UserError(
            f"{printable(path, None)} row {lines[i]}: timestamp column '{printable(col.name)}' does not increase "
            f"({fmt_seconds(float(steps[i - 1]))} after row "
            f"{lines[i - 1]}); sort the rows by time, or if the "
            'clock is coarser than the sample period set data.timestamp = "none" and data.sample_rate_hz'
        )
    med = float(np.median(steps))
    fast = np.flatnonzero(steps < med / GAP_FACTOR)
    if len(fast):
        i = int(fast[0]) + 1
        raise UserError(
            f"{printable(path, None)} row {lines[i]} comes {fmt_seconds(float(steps[i - 1]))} "
            f"after row {lines[i - 1]} while "
            f"the typical step of '{printable(col.name)}' is {fmt_seconds(med)}: the sampling is irregular; resample "
            "the recording to a fixed rate"
        )
    gap = steps > med * GAP_FACTOR
    cuts = [int(i) + 1 for i in np.flatnonzero(gap)]
    if cuts and gaps != "split":
        i = cuts[0]
        if local and _dst_shift(-float(steps[i - 1]), -med):
            raise UserError(
                f"{path} row {lines[i]}: the timestamps jump by {fmt_seconds(float(steps[i - 1]))} after row "
                f"{lines[i - 1]}: a daylight-saving change (the clock set forward) in local-time timestamps, "
                "not lost samples; write the timestamps in UTC or with their UTC offset (e.g. "
                "2024-03-31T03:00:00+02:00), or parse the offset with data.timestamp_format and %z"
            )
        raise UserError(
            f"{printable(path, None)} row {lines[i]}: the timestamps jump by "
            f"{fmt_seconds(float(steps[i - 1]))} after row "
            f"{lines[i - 1]} ({steps[i - 1] / med:.1f} sample "
            f"periods of {fmt_seconds(med)}; {len(cuts)} such gap"
            f"{'s' if len(cuts) > 1 else ''} in the file); fill "
            'or cut the gap, or set data.gaps = "split" to '
            "make separate series there"
        )
    bounds = [0, *cuts, n]
    segments = list(itertools.pairwise(bounds))
    good = steps[~gap] if cuts else steps
    mean = float(good.mean())
    hz = 1.0 / mean
    jitter = float(good.std() / mean)
    origin = f"timestamp column '{printable(col.name)}' {how}"
    if cuts:
        origin += f", {len(cuts)} gap{'s' if len(cuts) > 1 else ''} split"
    if declared:
        if abs(hz - declared) > RATE_TOLERANCE * declared:
            raise UserError(
                f"data.sample_rate_hz = {declared:g} but {where} says {fmt_hz(hz)}; fix one of them"
            )
        return Rate(declared, f"data.sample_rate_hz (the {origin} agrees: {fmt_hz(hz)})", segments, jitter,
                    unit_name)  # fmt: skip
    return Rate(hz, origin, segments, jitter, unit_name)
