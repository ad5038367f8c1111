"""Inputs at the int8 rails: data far outside the range the model was trained on, named; and channels
that never move (a stuck sensor).

The device quantizes every network input to int8 with the model's input scale (the range of its normal
training windows, train/quantize.py); an input beyond that range lands on -128 or 127. Data in another
unit or scale than the training data (m/s^2 where the model learnt g: x9.8) put most inputs there, every
window then scores near the score's ceiling and alarms, and nothing says why: it looks like a fault.

`stream` (the host's own preprocessing of the windows it sends, with the device's calibration correction)
and `verify` (the device's int8 inputs) count the inputs at the rails, per channel, and warn in one
sentence when the share over the whole stream is above LIMIT: the share in the model's anomalous test
windows (test_vectors.npz `input_q` where `labels` is 1; every test window when there are no labels or no
anomalous one), or one input per window when those never reach a rail. Above it, the stream sits at the
rails more than the faults the model was tested on do, on average over their windows; a unit or scale
mistake does that in every window, a fault only in its episodes. Verifying the model's own test split does
not warn (its normal windows saturate less than its faulty ones), but a stretch cut from its worst fault may:
the default model's anomalous test windows hold 6.04 % of their inputs at the rails, its most saturated run
of 50 windows 16.7 %; the sentence says "most likely" for that reason. Counting costs one comparison per input
(stream also runs the front-end once per window, in chunks).

A channel that holds one value for the whole stream (a dead or stuck sensor, a disconnected input read as a
constant) can score as normal when that value sits near the training mean: the network sees a quiet
channel. Training refuses a channel that never varies, so `stream` and `verify` name such a channel in one
warning sentence (`flat_warning`), as on-site calibration refuses a spread far from the training spread.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from tinyae.errors import printable
from tinyae.train.manifest import Manifest

RAILS = (-128, 127)
CHUNK_WINDOWS = 4096


def at_rails(input_q: np.ndarray) -> np.ndarray:
    q = np.asarray(input_q)
    return (q == RAILS[0]) | (q == RAILS[1])


def limit(vectors: Path, n_inputs: int) -> tuple[float, str] | None:
    """(share, where it comes from) of the model's test split (module docstring); None without test vectors."""
    try:
        with np.load(vectors) as z:
            q = np.asarray(z["input_q"]) if "input_q" in z.files else None
            labels = np.asarray(z["labels"]) if "labels" in z.files else None
    except (OSError, ValueError):
        return None
    if q is None or q.ndim != 2 or q.shape[1] != n_inputs or not len(q):
        return None
    if labels is not None and labels.shape == (len(q),) and labels.any():
        q, which = q[labels != 0], "anomalous test windows"
    else:
        which = "test windows"
    share = float(at_rails(q).mean())
    floor = 1.0 / n_inputs
    if share >= floor:
        return share, f"the share in the model's {len(q)} {which}"
    return floor, f"one input per window: the model's {len(q)} {which} hardly reach a rail"


class Counter:
    """Inputs at the rails, per channel, over the windows fed to `add`."""

    def __init__(self, manifest: Manifest) -> None:
        from tinyae.train.levels import feature_channels

        self.names = list(manifest.window.channel_names)
        self.owner = feature_channels(manifest.frontend_spec())
        self.inputs = 0
        self.windows = 0
        self.at = np.zeros(len(self.names), np.int64)
        self.per_channel = np.bincount(self.owner, minlength=len(self.names)).astype(np.int64)

    def add(self, input_q: np.ndarray) -> None:
        r = at_rails(input_q)
        if r.ndim != 2 or r.shape[1] != len(self.owner) or not len(r):
            return
        self.windows += len(r)
        self.inputs += r.size
        self.at += np.bincount(self.owner, weights=r.sum(axis=0), minlength=len(self.names)).astype(np.int64)

    def report(self, model_dir: Path) -> dict:
        """The counts for verify's --json (and the warning's figures)."""
        lim = limit(model_dir / "test_vectors.npz", len(self.owner))
        total = int(self.at.sum())
        share = total / self.inputs if self.inputs else 0.0
        by_channel = {
            n: float(self.at[c] / (self.per_channel[c] * self.windows)) if self.windows else 0.0
            for c, n in enumerate(self.names)
        }
        return {
            "inputs": self.inputs,
            "at_rails": total,
            "share": share,
            "by_channel": by_channel,
            "limit": None if lim is None else lim[0],
            "limit_from": None if lim is None else lim[1],
            "large": lim is not None and share > lim[0],
        }


def _pct(x: float) -> str:
    return f"{100 * x:.3g} %"


def warning(r: dict) -> str:
    """One sentence when a large share of the inputs sits at the rails (empty otherwise)."""
    if not r.get("large"):
        return ""
    ranked = sorted(r["by_channel"].items(), key=lambda kv: -kv[1])
    worst = [(n, s) for n, s in ranked if s > r["limit"]] or ranked[:1]
    shown = ", ".join(f"'{printable(n)}' {_pct(s)}" for n, s in worst[:4]) + (
        ", ..." if len(worst) > 4 else ""
    )
    return (
        f"{_pct(r['share'])} of the int8 inputs ({r['at_rails']:,} of {r['inputs']:,}) sit at the rails "
        f"-128/127, against {_pct(r['limit'])} ({r['limit_from']}), most on channel(s) {shown}: the data lie "
        "far outside the training range, most likely in other units, scale or offset than the training data "
        "(m/s^2 for g, raw counts for physical units), and their windows score as anomalies for that alone"
    )


def count_stream(
    manifest: Manifest, correction: tuple | None, series: Iterable[np.ndarray], length: int, hop: int
) -> Counter:
    """The inputs the device will compute for these series (the model's preprocessing, with the device's
    calibration correction: (shift, gain) or None), counted CHUNK_WINDOWS windows at a time."""
    from tinyae.train.data.windowing import window_starts
    from tinyae.train.reference import Preprocessing

    pre = Preprocessing.of_manifest(manifest)
    if correction is not None:
        pre.set_correction(*correction)
    counter = Counter(manifest)
    span = np.arange(length)
    for values in series:
        v = np.asarray(values, np.float32)
        starts = window_starts(len(v), length, hop)
        for a in range(0, len(starts), CHUNK_WINDOWS):
            counter.add(pre.quantize(v[starts[a : a + CHUNK_WINDOWS, None] + span]))
    return counter


def device_correction(dev, info) -> tuple | None:  # type: ignore[no-untyped-def]
    """The (shift, gain) correction of a device calibrated on site, as verify applies it; None otherwise."""
    from tinyae.tools.link import protocol as p
    from tinyae.tools.link.calibration import record_in_use

    if info.calib_state != p.CalibState.CALIBRATED:
        return None
    rec = record_in_use(dev.calib_query())
    return (rec.shift, rec.gain) if rec is not None and rec.has_correction else None


def flat_channels(series: Iterable[np.ndarray], names: list[str]) -> dict[str, tuple[float, int]]:
    """Per channel that holds one value in every sample of every series: (that value, samples)."""
    lo = hi = None
    n = 0
    for values in series:
        v = np.asarray(values, np.float32)
        if not len(v):
            continue
        lo = v.min(axis=0) if lo is None else np.minimum(lo, v.min(axis=0))
        hi = v.max(axis=0) if hi is None else np.maximum(hi, v.max(axis=0))
        n += len(v)
    if lo is None or hi is None or n < 2:
        return {}
    return {name: (float(lo[c]), n) for c, name in enumerate(names) if lo[c] == hi[c]}


def flat_warning(flat: dict[str, tuple[float, int]], total: int) -> str:
    """One sentence naming the channels that never moved (empty when none)."""
    if not flat:
        return ""
    shown = ", ".join(f"'{printable(k)}' ({v:.6g})" for k, (v, _) in flat.items())
    n = next(iter(flat.values()))[1]
    rest = " (the other channels still count)" if len(flat) < total else ""
    if len(flat) == 1:
        return (
            f"channel {shown} holds one value in all {n:,} samples sent, 0 x the training spread: a dead, stuck "
            "or disconnected sensor, whose windows can score as normal when the value sits near the training "
            f"mean; check it{rest}"
        )
    return (
        f"channels {shown} each hold one value in all {n:,} samples sent, 0 x the training spread: dead, stuck "
        "or disconnected sensors, whose windows can score as normal when the values sit near the training "
        f"mean; check them{rest}"
    )
