"""Chronological train/validation/test splits without leakage, and the windows the pipeline uses.

SPLIT_PROTOCOL (quoted by the benchmark and the report) describes exactly what happens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from tinyae.errors import UserError, printable
from tinyae.train.data.csv_source import Series
from tinyae.train.data.labels import training_labels_refusal
from tinyae.train.data.ucr import WindowSet
from tinyae.train.data.windowing import make_windows, window_labels, window_names, window_starts

SPLIT_PROTOCOL = """\
Split protocol. Each series (one file, one recorded case, or one synthetic part) is first cut by
time, never shuffled: train | gap | validation | gap | test, in that order, each gap at least one
window long, so no window of one part shares a sample with a window of another and overlapping
windows cannot leak between parts. Sources that come already separated (the synthetic default's
train/val/test parts, 10 s apart; the TRAIN and TEST files of a UCR/UEA data set, whose cases are
separate recordings) keep their separation. Each part is then windowed on its own (length L, hop H,
time-major [n, L, C]; a tail shorter than L is dropped; windows never span two series). Only normal
windows train: every train or validation window containing any anomalous sample is removed (series
without labels count as normal), so anomalies never reach the model fit, the normalization fit, the
quantizer's representative set or the threshold calibration. The normalization is fitted on the
training windows only. Test windows keep all windows; a test window is anomalous when any of its
samples is (rule "any"; "majority" is available), and carries the fault or class name of its
anomalous samples when the source knows it."""


@dataclass(frozen=True, eq=False)
class DatasetSplits:
    """A source already cut into parts (lists of series; test series labelled when labels exist)."""

    name: str
    train: list[Series]
    val: list[Series]
    test: list[Series]
    channel_names: tuple[str, ...]
    sample_rate_hz: float | None
    description: str = ""
    default_window: int = 64
    default_hop: int = 32
    rate_origin: str = ""  # where sample_rate_hz came from, in words ("" when the source has none)
    info: dict = field(default_factory=dict)  # how files were read (columns, rate, labels), for the manifest


@dataclass(frozen=True, eq=False)
class Origins:
    """Where each window of a part comes from: its recording (an index into `names`) and its number
    in that recording's windows (0, 1, 2, ... at one hop apart; a gap where a window was left out).
    The report's per-recording tables, false alarms per hour and detection delays are computed on
    consecutive windows of one recording, as the device sees them."""

    recording: np.ndarray  # int32 [n]
    position: np.ndarray  # int32 [n]
    names: tuple[str, ...]  # the recordings (series sources), in order

    @staticmethod
    def of(series: Sequence[Series], length: int, hop: int, drop_anomalous: bool = False) -> Origins:
        """The origins of the windows `normal_windows` (drop_anomalous) or `test_windows` cut."""
        rec, pos = [], []
        for i, s in enumerate(series):
            n = len(window_starts(len(s), length, hop))
            keep = np.ones(n, bool)
            if drop_anomalous and s.labels is not None:
                keep = window_labels(s.labels, length, hop, "any") == 0
            idx = np.flatnonzero(keep)
            rec.append(np.full(len(idx), i, np.int32))
            pos.append(idx.astype(np.int32))
        cat = lambda parts: np.concatenate(parts) if parts else np.zeros(0, np.int32)  # noqa: E731
        return Origins(cat(rec), cat(pos), tuple(s.source for s in series))


@dataclass(frozen=True, eq=False)
class Prepared:
    """Raw (not normalized) float32 windows [n, L, C] for each part, with test labels and names."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    test_labels: np.ndarray | None  # int8 [n_test], None when the source has no labels
    test_faults: np.ndarray | None  # object [n_test]: fault/class name per window, when known
    channel_names: tuple[str, ...]
    sample_rate_hz: float | None
    window_length: int
    hop: int
    source: str
    label_rule: str = "any"
    dropped_anomalous: int = 0  # train/val windows removed because they contained anomalies
    dropped: tuple[int, int] = (0, 0)  # of which (train, validation)
    description: str = ""  # how the source was cut into parts, in words
    protocol: str = field(default=SPLIT_PROTOCOL, repr=False)
    val_origins: Origins | None = None  # recording and window number of each validation window
    test_origins: Origins | None = None  # ... of each test window

    @property
    def n_channels(self) -> int:
        return len(self.channel_names)


def split_series(
    series: Series, val_fraction: float, test_fraction: float, gap: int
) -> tuple[Series, Series, Series]:
    """Cut one series by time into train | gap | val | gap | test (see SPLIT_PROTOCOL)."""
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise UserError(
            f"validation ({val_fraction}) and test ({test_fraction}) fractions must be in [0, 1) and sum "
            "below 1; pass e.g. 0.2 and 0.2"
        )
    n = len(series)
    gaps = 2 if test_fraction > 0 else 1  # no test part: no second gap
    usable = n - gaps * gap
    if usable <= 0:
        raise UserError(
            f"{printable(series.source, None)} has {n} samples, too short to split with gaps of {gap} samples; "
            "lower window.length or use a longer recording"
        )
    n_test = round(usable * test_fraction)
    n_val = round(usable * val_fraction)
    n_train = usable - n_val - n_test
    a = n_train
    b = a + gap + n_val
    c = b + gap if test_fraction > 0 else n
    return _part(series, 0, a, "train"), _part(series, a + gap, b, "val"), _part(series, c, n, "test")


def _part(s: Series, a: int, b: int, name: str) -> Series:
    return Series(
        values=s.values[a:b],
        labels=None if s.labels is None else s.labels[a:b],
        channel_names=s.channel_names,
        sample_rate_hz=s.sample_rate_hz,
        source=f"{s.source}[{name} {a}:{b}]",
        classes=None if s.classes is None else s.classes[a:b],
        lines=None if s.lines is None else s.lines[a:b],
        meta=s.meta,
    )


def check_lengths(series: Sequence[Series], length: int) -> None:
    for s in series:
        if len(s) < length:
            raise UserError(
                f"{printable(s.source, None)} has {len(s)} samples, shorter than one window ({length}); "
                "lower window.length or use a longer recording"
            )


def normal_windows(series: Sequence[Series], length: int, hop: int) -> tuple[np.ndarray, int, int]:
    """Windows of every series that contain no anomalous sample, how many were dropped, and how many of
    those are anomalous throughout (the normal windows under the opposite 0/1 reading)."""
    parts, dropped, throughout = [], 0, 0
    c = series[0].n_channels if series else 1
    for s in series:
        w = make_windows(s.values, length, hop)
        if s.labels is not None:
            keep = window_labels(s.labels, length, hop, "any") == 0
            dropped += int((~keep).sum())
            throughout += int((window_labels(s.labels == 0, length, hop, "any") == 0).sum())
            w = w[keep]
        parts.append(w)
    return (np.concatenate(parts) if parts else np.zeros((0, length, c), np.float32)), dropped, throughout


def test_windows(
    series: Sequence[Series], length: int, hop: int, rule: str
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    c = series[0].n_channels if series else 1
    ws, labs, names = [], [], []
    has_labels = all(s.labels is not None for s in series)
    has_names = all(s.classes is not None for s in series)
    for s in series:
        ws.append(make_windows(s.values, length, hop))
        if has_labels and s.labels is not None:
            labs.append(window_labels(s.labels, length, hop, rule))
        if has_names and s.classes is not None:
            lab = s.labels if s.labels is not None else np.zeros(len(s), np.int8)
            names.append(window_names(s.classes, lab, length, hop))
    w = np.concatenate(ws) if ws else np.zeros((0, length, c), np.float32)
    lab_out = np.concatenate(labs).astype(np.int8) if has_labels and labs else None
    name_out = np.concatenate(names) if has_names and names else None
    return w, lab_out, name_out


def prepare_splits(splits: DatasetSplits, length: int, hop: int, label_rule: str = "any") -> Prepared:
    """Window a DatasetSplits following SPLIT_PROTOCOL."""
    window_starts(length, length, hop)  # validates length and hop
    check_lengths(splits.train + splits.test, length)
    train, d1, flipped = normal_windows(splits.train, length, hop)
    val_series = [s for s in splits.val if len(s) >= length]
    val, d2, _ = normal_windows(val_series, length, hop)
    test, labels, names = test_windows(splits.test, length, hop, label_rule)
    meaning = (splits.info.get("labels") or {}) if splits.info else {}
    refusal = training_labels_refusal(meaning, d1, len(train), flipped, splits.name)
    if refusal:
        raise UserError(refusal)
    if len(train) == 0 and d1 and meaning:
        raise UserError(
            f"no training window of {printable(splits.name, None)} is normal under "
            f'"{meaning.get("meaning", "")}": all {d1} '
            "contain samples of another class; check data.normal"
        )
    if len(train) == 0:
        raise UserError(
            f"{printable(splits.name, None)} gives no normal training window of length {length}; "
            "lower window.length or give more normal data"
        )
    return Prepared(
        train=train,
        val=val,
        test=test,
        test_labels=labels,
        test_faults=names,
        channel_names=splits.channel_names,
        sample_rate_hz=splits.sample_rate_hz,
        window_length=int(length),
        hop=int(hop),
        source=splits.name,
        label_rule=label_rule,
        dropped_anomalous=d1 + d2,
        dropped=(d1, d2),
        description=splits.description,
        val_origins=Origins.of(val_series, length, hop, drop_anomalous=True),
        test_origins=Origins.of(splits.test, length, hop),
    )


def require_labels(
    data: Prepared | Series | WindowSet | Sequence[Series], purpose: str = "evaluation"
) -> np.ndarray:
    """The labels `purpose` needs, or a UserError saying how to provide them."""
    if isinstance(data, Prepared):
        labels, where = data.test_labels, f"the test split of {printable(data.source, None)}"
    elif isinstance(data, Series | WindowSet):
        labels, where = data.labels, data.source
    else:
        series = list(data)
        missing = [s.source for s in series if s.labels is None]
        labels = None if missing or not series else np.concatenate([s.labels for s in series])
        where = missing[0] if missing else "the given series"
    if labels is None:
        raise UserError(
            f"{purpose} needs labels but {where} has none; add a label column (0 normal / 1 anomaly) "
            "and pass label=<column>"
        )
    return labels
