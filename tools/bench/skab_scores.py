"""SKAB's per-file protocol as cached window scores: for one configuration, a model per experiment file
(rows 0-319 train, 320-399 validate), converted to int8 at one or more quantization headrooms, and the
scores of every window of the file (hop 1, window ending at each row from length-1 on) from the float
model and from each int8 model (the host reference: the device's preprocessing + tflite_micro).

The scores do not depend on the threshold or the alarm rule, so every rule, every threshold method and
every selection over them (tools/bench/skab_select.py, tools/bench/threshold.py) reuses them; they are
kept in build/ by tools/bench/cache.py.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyae.tools.bench import cache, skab_data
from tinyae.tools.bench.common import ROOT

TRAIN_ROWS = 400  # SKAB's protocol: the first 400 rows of each file train
VAL_ROWS = 80  # of those, the last 80 validate (early stopping)


@dataclass
class FileScores:
    """One experiment: its row labels, and the scores of the windows ending at rows length-1..T-1."""

    name: str
    group: str
    labels: np.ndarray  # int8 [T]
    scores: np.ndarray  # float32 [T - length + 1]
    length: int

    def train_windows(self) -> np.ndarray:
        """Scores of the windows inside rows 0-319 (the training windows)."""
        return self.scores[: TRAIN_ROWS - VAL_ROWS - self.length + 1]

    def val_windows(self) -> np.ndarray:
        """Scores of the windows inside rows 320-399 (the validation windows)."""
        return self.scores[TRAIN_ROWS - VAL_ROWS : TRAIN_ROWS - self.length + 1]

    def training_rows_windows(self) -> np.ndarray:
        """Scores of every window ending in rows 0-399 (what SKAB's protocol calibrates on)."""
        return self.scores[: TRAIN_ROWS - self.length + 1]


def channels_of(names: Sequence[str]) -> list[int]:
    return [skab_data.CHANNELS.index(c) for c in names]


def compute(
    cfg, recs: list[skab_data.Experiment], headrooms: Sequence[float], say: Callable[[str], None]
) -> dict[str, np.ndarray]:
    """Train a model per file and score every window (module docstring); arrays for the cache."""
    from tinyae.tools.bench.detector import fit_float, quantize
    from tinyae.train.data import make_windows

    names = list(cfg.data.channels) or list(skab_data.CHANNELS)
    idx = channels_of(names)
    length = cfg.window.length
    cut = TRAIN_ROWS - VAL_ROWS
    out: dict[str, list] = {"float": [], **{_key(h): [] for h in headrooms}, "labels": [], "rows": []}
    for i, rec in enumerate(recs, 1):
        say(f"SKAB per-file scores (window {length}, {len(names)} channels): {rec.name} ({i}/{len(recs)})")
        x = rec.values[:, idx]
        ff = fit_float(
            cfg, make_windows(x[:cut], length, 1), make_windows(x[cut:TRAIN_ROWS], length, 1),
            rec.sample_rate_hz, names,
        )  # fmt: skip
        w = make_windows(x, length, 1)
        det = None
        for h in headrooms:
            det = quantize(ff, h)
            out[_key(h)].append(det.int8_scores(w))
        assert det is not None
        out["float"].append(det.float_scores(w))
        out["labels"].append(rec.labels)
        out["rows"].append(len(rec.labels))
    arrays = {k: np.concatenate(v) if k != "rows" else np.array(v) for k, v in out.items()}
    arrays["names"] = np.array([r.name for r in recs])
    return arrays


def _key(headroom: float) -> str:
    return f"int8_h{headroom:g}"


def scores(
    cfg,
    data_dir: Path,
    headrooms: Sequence[float],
    say: Callable[[str], None],
    *,
    use_cache: bool = True,
    expect: int | None = skab_data.EXPERIMENTS,
) -> dict[str, list[FileScores]]:
    """Per kind ("float", "int8_h8", ...), the 34 files' scores under `cfg`, from the cache when it holds
    them (tools/bench/cache.py)."""
    recs = skab_data.experiments(data_dir, expect)
    d = cfg.to_dict()
    what = {
        "protocol": "skab per-file scores",
        # the threshold, the alarm rule and the headroom (given apart) do not change the models trained
        "config": d | {"quantize": d["quantize"] | {"headroom": None}, "threshold": None, "decision": None},
        "headrooms": list(headrooms),
        "data": [(r.name, len(r)) for r in recs],
    }
    arrays, _ = cache.cached(
        ROOT / "build" / "bench" / "cache", "skab", what, lambda: compute(cfg, recs, headrooms, say),
        use=use_cache,
    )  # fmt: skip
    return split(arrays, cfg.window.length, [_key(h) for h in headrooms] + ["float"])


def split(arrays: dict[str, np.ndarray], length: int, kinds: Sequence[str]) -> dict[str, list[FileScores]]:
    names = [str(n) for n in arrays["names"]]
    rows = [int(r) for r in arrays["rows"]]
    out: dict[str, list[FileScores]] = {k: [] for k in kinds}
    r0 = w0 = 0
    for name, t in zip(names, rows, strict=True):
        lab = arrays["labels"][r0 : r0 + t].astype(np.int8)
        nw = t - length + 1
        for k in kinds:
            out[k].append(FileScores(name, name.split("/")[0], lab, arrays[k][w0 : w0 + nw], length))
        r0, w0 = r0 + t, w0 + nw
    return out
