"""argparse types that refuse nonsensical numbers in one sentence (`--timeout -1`, `--retries -3`,
`--inflight 0`), so a typo never turns into a silently odd run."""

from __future__ import annotations

import argparse
import math


def _number(text: str, kind: type) -> float | int:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a{'n integer' if kind is int else ' number'}"
        ) from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1 (counts: windows, trials, batches in flight, baud)."""
    v = int(_number(text, int))
    if v < 1:
        raise argparse.ArgumentTypeError(f"{v} must be at least 1")
    return v


def non_negative_int(text: str) -> int:
    """An integer >= 0 (retries, shifts: 0 means none)."""
    v = int(_number(text, int))
    if v < 0:
        raise argparse.ArgumentTypeError(f"{v} must be 0 or more")
    return v


def positive_float(text: str) -> float:
    """A finite number > 0 (seconds, rates)."""
    v = float(_number(text, float))
    if v <= 0:
        raise argparse.ArgumentTypeError(f"{v:g} must be above 0")
    return v


F32_MAX = 3.4028234663852886e38


def positive_float32(text: str) -> float:
    """A number > 0 that float32 holds (a constant the device stores: a threshold)."""
    v = positive_float(text)
    if v > F32_MAX:
        raise argparse.ArgumentTypeError(f"{v:g} does not fit a float32 (at most {F32_MAX:.4g})")
    return v


def port_number(text: str) -> int:
    """A TCP port, 1..65535."""
    v = int(_number(text, int))
    if not 1 <= v <= 65535:
        raise argparse.ArgumentTypeError(f"{v} is not a TCP port (1-65535)")
    return v
