"""Which columns of a file are channels, and matching a file's columns to a model's channels by name.

Left out of the channels when `data.channels` is not given (each named, with the reason):
- a counter: whole numbers written without a decimal point that go up by one constant step on every
  row (a row index, a sample counter), allowing restarts (0..199, 0..199, ...);
- an id: a whole number written without a decimal point that never changes within the file (a file,
  run or subject id beside the sensor columns);
- a time or index column under another name: values that rise on every row by a steady step (the
  largest step at most twice the smallest), such as seconds since the start in a column called
  "Zeit" or "elapsed".
A sensor never produces either pattern; a real channel that does can still be named in data.channels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tinyae.errors import UserError, printable, printable_list

MIN_ROWS = 16  # fewer rows say too little about a column to call it a counter


class ColumnStats:
    """What index/counter detection needs of a column, accumulated chunk by chunk from exact values."""

    def __init__(self) -> None:
        self.n = 0
        self.integer = True  # every value a whole number
        self.integer_text = True  # every value written without '.', 'e' or 'E'
        self.first: float | None = None
        self.last: float | None = None
        self.constant = True
        self.step: float | None = None  # the one positive step, while there is one
        self.steps_ok = True
        self.up = self.down = self.zero = 0
        self.lo, self.hi = np.inf, -np.inf
        self.step_lo, self.step_hi = np.inf, -np.inf  # smallest and largest rise between rows

    def feed(self, v: np.ndarray, texts: Sequence[str] | None = None) -> None:
        v = np.asarray(v, np.float64)
        if not len(v):
            return
        if texts is not None and self.integer_text:
            joined = "".join(texts)
            self.integer_text = not any(ch in joined for ch in ".eE")
        if self.integer:
            self.integer = bool(np.all(v == np.round(v)))
        if self.first is None:
            self.first = float(v[0])
        if self.constant:
            self.constant = bool(np.all(v == self.first))
        d = np.diff(v if self.last is None else np.r_[self.last, v])
        up = d[d > 0]
        if len(up):
            step = float(up[0]) if self.step is None else self.step
            self.steps_ok = self.steps_ok and bool(np.all(up == step))
            self.step = step
        if len(up):
            self.step_lo, self.step_hi = (
                min(self.step_lo, float(up.min())),
                max(self.step_hi, float(up.max())),
            )
        self.up += len(up)
        self.down += int(np.sum(d < 0))
        self.zero += int(np.sum(d == 0))
        self.last = float(v[-1])
        self.n += len(v)
        self.lo, self.hi = min(self.lo, float(v.min())), max(self.hi, float(v.max()))

    def index_reason(self) -> str | None:
        """Why the column looks like an index/counter/id rather than a sensor (None: it does not)."""
        if self.n < MIN_ROWS:
            return None
        if self.integer_text and self.integer:
            if self.constant:
                return f"the same whole number ({self.first:g}) on every row: a file or run id"
            if self.steps_ok and self.zero == 0 and self.up >= 0.9 * (self.n - 1):
                restarts = f", {self.down} restart{'s' if self.down > 1 else ''}" if self.down else ""
                return f"a counter ({self.lo:g}..{self.hi:g}, step {self.step:g}{restarts})"
        if self.up == self.n - 1 and self.step_hi <= 2 * self.step_lo:
            return (
                f"rises on every row by {self.step_lo:.6g}..{self.step_hi:.6g} "
                f"({self.lo:.6g}..{self.hi:.6g}): "
                "a time or index column (name it with data.timestamp if it is the time)"
            )
        return None


def index_reason(values: np.ndarray, integer_text: bool) -> str | None:
    """Why a column looks like an index/counter/id rather than a sensor (None: it does not)."""
    stats = ColumnStats()
    stats.integer_text = integer_text
    stats.feed(values)
    return stats.index_reason()


def match_channels(
    available: Sequence[str],
    wanted: Sequence[str],
    where: str,
    *,
    whose: str = "the model's channels",
    ignorable: Sequence[str] = (),
    extra_ok: bool = False,
) -> list[int]:
    """Indices into `available` of the columns named `wanted`, in `wanted`'s order.

    A wanted name that is missing is refused; so is an available column that is neither wanted nor
    ignorable (timestamp, label, index columns) unless `extra_ok` (the channels were chosen by name).
    Both refusals list both sides.
    """
    missing = [w for w in wanted if w not in available]
    extra = [a for a in available if a not in wanted and a not in ignorable]
    if missing or (extra and not extra_ok):
        what = f"has no column {printable_list([repr(m) for m in missing])}" if missing else ""
        if extra and not extra_ok:
            what += (
                (" and " if what else "")
                + f"has unknown column{'s' if len(extra) > 1 else ''} "
                + printable_list([repr(e) for e in extra], 10)
            )
        raise UserError(
            f"{printable(where, None)} {what}: {whose} are {printable_list(wanted)} "
            f"and its columns are {printable_list(available)}; "
            "rename the columns or select them (data.channels, or --channels for the host tool)"
        )
    return [list(available).index(w) for w in wanted]
