"""Which columns of a file are channels, and matching a file's columns to a model's channels by name.

Left out of the channels when `data.channels` is not given (each named, with the reason):
- a counter: whole numbers written without a decimal point that go up by one constant step on every
  row (a row index, a sample counter), allowing restarts (0..199, 0..199, ...);
- an id: a whole number written without a decimal point that never changes within the file (a file,
  run or subject id beside the sensor columns).
A sensor never produces either pattern; a real channel that does can still be named in data.channels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from train.errors import UserError

MIN_ROWS = 16  # fewer rows say too little about a column to call it a counter


def index_reason(values: np.ndarray, integer_text: bool) -> str | None:
    """Why a column looks like an index/counter/id rather than a sensor (None: it does not)."""
    v = np.asarray(values, np.float64)
    if not integer_text or len(v) < MIN_ROWS or not np.all(v == np.round(v)):
        return None
    d = np.diff(v)
    if np.all(d == 0):
        return f"the same whole number ({v[0]:g}) on every row: a file or run id"
    up = d > 0
    if up.mean() >= 0.9 and np.all(d[up] == d[up][0]) and np.all(d[~up] < 0):
        restarts = int((~up).sum())
        step = f"step {d[up][0]:g}" + (
            f", {restarts} restart{'s' if restarts > 1 else ''}" if restarts else ""
        )
        return f"a counter ({v.min():g}..{v.max():g}, {step})"
    return None


def _show(names: Sequence[str], n: int = 20) -> str:
    return ", ".join(names[:n]) + (", ..." if len(names) > n else "")


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
        what = f"has no column {', '.join(repr(m) for m in missing)}" if missing else ""
        if extra and not extra_ok:
            what += (
                (" and " if what else "")
                + f"has unknown column{'s' if len(extra) > 1 else ''} "
                + ", ".join(repr(e) for e in extra[:10])
            )
        raise UserError(
            f"{where} {what}: {whose} are {_show(list(wanted))} and its columns are {_show(list(available))}; "
            "rename the columns or select them (data.channels, or --channels for the host tool)"
        )
    return [list(available).index(w) for w in wanted]
