"""SKAB without peeking: the configuration (channels, window, int8 headroom, threshold rule and alarm rule)
chosen without the test labels of the files it is scored on.

Protocol ("leave one group out", LOGO): SKAB's 34 experiment files come in three folders, valve1 (16),
valve2 (4) and other (14). For each folder, every configuration of GRID is scored under SKAB's per-file
protocol (a model per file, rows 0-399 train, the rest test) on the files of the *other two* folders, the
one with the best pooled int8 F1 there is chosen (ties: the lower FAR), and that configuration's alarms
on the held-out folder's files are kept. The 34 files' kept alarms are then pooled into one F1 / FAR / MAR:
every figure of a file comes from a configuration chosen without that file's labels.

Two row mappings are reported, each with its own selection:
- tinyae: every test row is scored by the device's alarm at that row (the window ending there);
- conv-ae: the rows SKAB's Conv-AE reference cannot flag are forced to normal. Its notebook
  (notebooks/Conv_AE.ipynb of github.com/waico/SKAB) slides 60-row sequences over the whole file and flags
  row i only for N_STEPS - 1 <= i <= rows - 2 N_STEPS + 1, so the first 59 rows and the last 118 rows of
  every file are always normal there; forcing them to normal in tinyae's alarms compares like with like.

The configuration applied to all three folders (`chosen_on_all`) is what configs/skab.toml holds: the
same procedure run on every file, for deployment. Its figures on SKAB are in-sample and are not the
result; the LOGO figures are.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyae.tools.bench import skab_data, skab_scores
from tinyae.tools.bench.common import SKAB_CONFIG
from tinyae.tools.bench.skab_alarms import alarm_statistic

SIX = ("Accelerometer1RMS", "Accelerometer2RMS", "Current", "Pressure", "Voltage", "Volume Flow RateRMS")
CHANNEL_SETS = {"6 (no temperatures)": SIX, "all 8": tuple(skab_data.CHANNELS)}
# (channel set, window length): one factor at a time around 6 channels and 10 rows (training a model per
# file for every combination would cost twice the time for the two corners left out)
MODELS = (("6 (no temperatures)", 10), ("all 8", 10), ("6 (no temperatures)", 5), ("6 (no temperatures)", 20))
HEADROOMS = (1.0, 4.0, 8.0)
PERCENTILES = (99.0, 100.0)
FACTORS = (1.0, 1.25, 1.5, 2.0)
ALARMS = ((1, 1), (5, 5), (10, 10))
N_STEPS = 60  # the Conv-AE notebook's sequence length
MAPPINGS = ("tinyae", "conv-ae")


@dataclass(frozen=True)
class Choice:
    channels: str  # a key of CHANNEL_SETS
    window: int
    headroom: float
    percentile: float
    factor: float
    k: int
    n: int

    def label(self) -> str:
        base = f"{self.percentile:g}th percentile" if self.percentile < 100 else "maximum"
        return (
            f"channels {self.channels}, window {self.window}, headroom {self.headroom:g}, threshold {base} of "
            f"the training rows' window scores x {self.factor:g}, alarm {self.k} of {self.n}"
        )

    def overrides(self) -> list[str]:
        names = ",".join(f'"{c}"' for c in CHANNEL_SETS[self.channels])
        return [
            f"data.channels=[{names}]",
            f"window.length={self.window}",
            f"quantize.headroom={self.headroom:g}",
            "threshold.method=percentile",
            f"threshold.percentile={self.percentile:g}",
            f"threshold.factor={self.factor:g}",
            f"decision.k={self.k}",
            f"decision.n={self.n}",
        ]


def convae_flaggable(rows: int, n_steps: int = N_STEPS) -> np.ndarray:
    """bool [rows]: the rows the Conv-AE notebook's alignment can flag (module docstring)."""
    i = np.arange(rows)
    return (i >= n_steps - 1) & (i <= rows - 2 * n_steps + 1)


def grid_scores(
    data_dir: Path, say: Callable[[str], None], *, use_cache: bool = True, config: str = SKAB_CONFIG
) -> dict[tuple[str, int], dict[str, list[skab_scores.FileScores]]]:
    """Per (channel set, window), the per-file int8 scores at every headroom (cached)."""
    from tinyae.tools.bench.common import ROOT
    from tinyae.train import config as configmod

    out = {}
    for ch, w in MODELS:
        names = ",".join(f'"{c}"' for c in CHANNEL_SETS[ch])
        cfg = configmod.load(ROOT / config, [f"data.channels=[{names}]", f"window.length={w}"])
        out[(ch, w)] = skab_scores.scores(cfg, data_dir, HEADROOMS, say, use_cache=use_cache)
    return out


class Table:
    """Per configuration and file, the test rows' alarm counts (TP, FP, FN, TN) under each mapping."""

    def __init__(self, grid: dict[tuple[str, int], dict[str, list[skab_scores.FileScores]]]):
        self.choices: list[Choice] = []
        counts: dict[str, list[np.ndarray]] = {m: [] for m in MAPPINGS}
        first = next(iter(grid.values()))
        files = first[f"int8_h{HEADROOMS[0]:g}"]
        self.names = [f.name for f in files]
        self.groups = np.array([f.group for f in files])
        masks = [convae_flaggable(len(f.labels))[skab_scores.TRAIN_ROWS :] for f in files]
        labels = [f.labels[skab_scores.TRAIN_ROWS :].astype(bool) for f in files]
        for (ch, w), kinds in grid.items():
            for h in HEADROOMS:
                fs = kinds[f"int8_h{h:g}"]
                for k, n in ALARMS:
                    stats = [
                        alarm_statistic(f.scores, k, n, len(f.labels), w)[skab_scores.TRAIN_ROWS :]
                        for f in fs
                    ]
                    calib = [f.training_rows_windows().astype(np.float64) for f in fs]
                    for pct, fac in itertools.product(PERCENTILES, FACTORS):
                        self.choices.append(Choice(ch, w, h, pct, fac, k, n))
                        thr = [np.float32(np.percentile(c, pct) * fac) for c in calib]
                        for m in MAPPINGS:
                            rows = []
                            for st, t, y, mask in zip(stats, thr, labels, masks, strict=True):
                                p = st > t
                                if m == "conv-ae":
                                    p = p & mask
                                rows.append([np.sum(p & y), np.sum(p & ~y), np.sum(~p & y), np.sum(~p & ~y)])
                            counts[m].append(np.array(rows, np.int64))
        # [configurations, files, 4]
        self.counts = {m: np.stack(v) for m, v in counts.items()}

    def pooled(self, mapping: str, files: np.ndarray) -> np.ndarray:
        """[configurations, 4]: counts pooled over the files selected by the bool mask."""
        return self.counts[mapping][:, files, :].sum(axis=1)

    def best(self, mapping: str, files: np.ndarray) -> int:
        """The configuration with the best pooled F1 on `files` (ties: lower FAR, then grid order)."""
        c = self.pooled(mapping, files)
        tp, fp, fn, tn = c.T
        f1 = 2 * tp / np.maximum(2 * tp + fp + fn, 1)
        far = fp / np.maximum(fp + tn, 1)
        order = np.lexsort((np.arange(len(f1)), far, -np.round(f1, 12)))
        return int(order[0])


def _figures(c: np.ndarray) -> dict:
    tp, fp, fn, tn = (int(v) for v in c)
    return {
        "f1": round(2 * tp / max(2 * tp + fp + fn, 1), 4),
        "far_pct": round(100 * fp / max(fp + tn, 1), 2),
        "mar_pct": round(100 * fn / max(fn + tp, 1), 2),
        "tp": tp, "fp": fp, "fn": fn, "tn": tn,
    }  # fmt: skip


def logo(table: Table, mapping: str) -> dict:
    """Leave one group out (module docstring) under one row mapping."""
    folds = []
    total = np.zeros(4, np.int64)
    for g in skab_data.GROUPS:
        held = table.groups == g
        i = table.best(mapping, ~held)
        c = table.counts[mapping][i][held].sum(axis=0)
        total += c
        folds.append({
            "held_out": g, "files": int(held.sum()), "chosen_on": [x for x in skab_data.GROUPS if x != g],
            "choice": table.choices[i].label(), "overrides": table.choices[i].overrides(),
            "on_chosen_groups": _figures(table.pooled(mapping, ~held)[i]),
            "held_out_figures": _figures(c),
        })  # fmt: skip
    everything = np.ones(len(table.groups), bool)
    i_all = table.best(mapping, everything)
    return {
        "mapping": mapping,
        "int8": _figures(total),
        "folds": folds,
        "chosen_on_all": {
            "choice": table.choices[i_all].label(),
            "overrides": table.choices[i_all].overrides(),
            "in_sample": _figures(table.pooled(mapping, everything)[i_all]),
        },
    }


def configuration_of(table: Table, choice: Sequence[str]) -> dict:
    """The figures of one configuration (given by its overrides) over all files, both mappings."""
    for i, c in enumerate(table.choices):
        if c.overrides() == list(choice):
            return {m: _figures(table.pooled(m, np.ones(len(table.groups), bool))[i]) for m in MAPPINGS}
    return {}


def section(data_dir: Path, say: Callable[[str], None], *, use_cache: bool = True) -> dict:
    """The bench's SKAB-without-peeking rows (module docstring)."""
    grid = grid_scores(data_dir, say, use_cache=use_cache)
    table = Table(grid)
    return {
        "protocol": (
            "leave one group out over SKAB's folders (valve1, valve2, other): per held-out folder, the "
            "configuration (channels, window, int8 headroom, threshold rule, alarm rule) with the best pooled "
            "int8 F1 on the other two folders' files, scored on the held-out folder's; the 34 files' alarms "
            "pooled. SKAB's per-file protocol otherwise (a model per file, rows 0-399 train)."
        ),
        "grid": {
            "channels": {k: list(v) for k, v in CHANNEL_SETS.items()},
            "models": [{"channels": ch, "window": w} for ch, w in MODELS],
            "headrooms": list(HEADROOMS),
            "percentiles": list(PERCENTILES),
            "factors": list(FACTORS),
            "alarms": [f"{k} of {n}" for k, n in ALARMS],
            "configurations": len(table.choices),
        },
        "convae_rows": (
            f"rows i with i < {N_STEPS - 1} or i > rows - {2 * N_STEPS - 1} of each file forced to normal (the "
            "Conv-AE notebook's 60-row sequences over the whole file can flag no other rows)"
        ),
        "logo": {m: logo(table, m) for m in MAPPINGS},
    }
