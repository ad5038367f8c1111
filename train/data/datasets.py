"""Data sources by name, and `prepare()`: from a source configuration to train/val/test windows.

Named sources (`load_dataset(name)`):
- `synthetic`: the embedded default (tinyae.train.data.synthetic), 3 axes at 100 Hz, labelled faults.
- `basicmotions`: UEA BasicMotions, shipped in aeon's wheel (`pip install tinyae[datasets]`). A smartwatch's
  accelerometer and gyroscope (6 channels) at 10 Hz, 100 samples per case, four classes. Normal =
  Standing + Walking (selectable with normal=[...]); Running and Badminton are anomalies. Each case is its
  own series. Train/val = the normal cases of the TRAIN file (the last `val_fraction` of them validate),
  test = every case of the TEST file, labelled per case.
- `daphnet`: Daphnet freezing-of-gait excerpt S06R02E0 shipped in aeon: 3 accelerometers (ankle, thigh,
  trunk; 9 channels, milli-g) at 64 Hz, 7040 samples. The excerpt holds no freezing episode (all labels 0,
  as aeon 1.6 itself notes), so its test split measures false alarms only; split by time.
- `internalbleeding`: UCR anomaly archive series 135 (InternalBleeding16, one channel) shipped in aeon as
  KDD-TSAD_135: a normal TRAIN prefix (split by time into train/val) and a TEST series with a labelled
  anomaly (12 samples); the TEST samples that repeat the TRAIN prefix are skipped.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tinyae.errors import UserError
from tinyae.train.data.csv_source import Series, load_csv_file, load_csv_groups
from tinyae.train.data.csv_splits import csv_splits
from tinyae.train.data.splits import DatasetSplits, Prepared, prepare_splits, split_series
from tinyae.train.data.synthetic import (
    DEFAULT_HOP,
    DEFAULT_SAMPLE_RATE_HZ,
    DEFAULT_WINDOW,
    SyntheticData,
    make_synthetic,
)
from tinyae.train.data.ucr import load_ucr_files
from tinyae.train.data.windowing import check_window

SYNTHETIC_LABELS = {
    "normal": ["0.0"],
    "said": True,
    "meaning": "0 = normal, 1 = a fault (the generator's own labels)",
    "anomalous": ["1.0"],
}
BASICMOTIONS_CHANNELS = ("acc_x", "acc_y", "acc_z", "gyr_x", "gyr_y", "gyr_z")
BASICMOTIONS_NORMAL = ("Standing", "Walking")


def aeon_data_dir() -> Path:
    """aeon's shipped data directory, found without importing aeon (and without network)."""
    spec = importlib.util.find_spec("aeon")
    if spec is None or not spec.submodule_search_locations:
        raise UserError(
            "this data set ships with the optional package aeon; run: pip install tinyae[datasets]"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"
    if not path.is_dir():
        raise UserError(
            f"aeon is installed but has no {path}; reinstall it with: pip install tinyae[datasets]"
        )
    return path


@functools.lru_cache(maxsize=4)
def _synthetic_data(seed: int, sample_rate_hz: float, kw: tuple[tuple[str, Any], ...]) -> SyntheticData:
    return make_synthetic(seed, sample_rate_hz=sample_rate_hz, **dict(kw))


def _synthetic(
    *, seed: int = 0, sample_rate_hz: float | None = None, window_length: int | None = None, **kw: Any
) -> DatasetSplits:
    # The generator is deterministic for its arguments: a process that loads the same data set again (a
    # search's trials, the tests) gets a copy of the one it generated (~0.1 s each, 0.8 MB kept).
    key = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in kw.items()))
    try:
        hash(key)
    except TypeError:
        data = make_synthetic(seed, sample_rate_hz=sample_rate_hz or DEFAULT_SAMPLE_RATE_HZ, **kw)
    else:
        data = copy.deepcopy(_synthetic_data(int(seed), float(sample_rate_hz or DEFAULT_SAMPLE_RATE_HZ), key))
    return DatasetSplits(
        name=f"synthetic(seed={seed})",
        train=[data.train],
        val=[data.val],
        test=[data.test],
        channel_names=data.train.channel_names,
        sample_rate_hz=data.train.sample_rate_hz,
        description="embedded 3-axis vibration generator with labelled faults: separate train, "
        "validation and test parts, 10 s apart",
        rate_origin="the synthetic generator" + (" (data.sample_rate_hz)" if sample_rate_hz else ""),
        default_window=DEFAULT_WINDOW,
        default_hop=DEFAULT_HOP,
        info={"labels": SYNTHETIC_LABELS},
    )


def _split_cases(cases: list[Series], val_fraction: float) -> tuple[list[Series], list[Series]]:
    """(train, validation) of a file's cases: the last `val_fraction` of the normal cases validate; the
    anomalous cases go with train, where the split drops and counts them (and refuses a mostly anomalous
    training set under an assumed reading of the labels, as for every source)."""
    normal = [s for s in cases if s.labels is not None and not s.labels.any()]
    anomalous = [s for s in cases if s.labels is None or s.labels.any()]
    n_val = round(len(normal) * val_fraction)
    return normal[: len(normal) - n_val] + anomalous, normal[len(normal) - n_val :]


def _basicmotions(
    *, normal: Sequence[str] | str | None = None, val_fraction: float = 0.2, **_: Any
) -> DatasetSplits:
    d = aeon_data_dir() / "BasicMotions"
    sel = list(BASICMOTIONS_NORMAL) if normal is None else normal
    kw: dict[str, Any] = {"normal": sel, "channel_names": BASICMOTIONS_CHANNELS, "sample_rate_hz": 10.0}
    tr, te = load_ucr_files([d / "BasicMotions_TRAIN.ts", d / "BasicMotions_TEST.ts"], **kw)
    train, val = _split_cases(tr.to_series(), val_fraction)
    meaning = dict(tr.meaning or {})
    meaning["said"] = True  # the data set's documented classes (or data.normal)
    return DatasetSplits(
        name="basicmotions",
        train=train,
        val=val,
        test=te.to_series(),
        channel_names=BASICMOTIONS_CHANNELS,
        sample_rate_hz=10.0,
        description=f"UEA BasicMotions (aeon), normal = {', '.join([sel] if isinstance(sel, str) else sel)}; "
        "normal TRAIN cases train and validate, every TEST case tests",
        rate_origin="the data set's documentation (10 Hz)",
        default_window=20,
        default_hop=5,
        info={"labels": meaning},
    )


def _daphnet(
    *,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    window_length: int | None = None,
    normal: Sequence[str] | str | None = None,
    **_: Any,
) -> DatasetSplits:
    path = aeon_data_dir() / "Daphnet_S06R02E0" / "S06R02E0.csv"
    (series,) = [load_csv_file(path, timestamp="timestamp", label="is_anomaly", normal=normal)]
    tr, va, te = split_series(series, val_fraction, test_fraction, window_length or 64)
    return DatasetSplits(
        name="daphnet",
        train=[tr],
        val=[va],
        test=[te],
        channel_names=series.channel_names,
        sample_rate_hz=series.sample_rate_hz,
        description="Daphnet S06R02E0 (aeon): no freezing episode in this excerpt; test = false alarms only; "
        "cut by time into train | gap | validation | gap | test",
        rate_origin=(series.meta.get("rate") or {}).get("origin", ""),
        default_window=64,
        default_hop=32,
        info={"labels": series.meta.get("labels")},
    )


def _internalbleeding(
    *,
    val_fraction: float = 0.2,
    window_length: int | None = None,
    normal: Sequence[str] | str | None = None,
    **_: Any,
) -> DatasetSplits:
    d = aeon_data_dir() / "KDD-TSAD_135"
    files = {
        "train": [d / "135_UCR_Anomaly_InternalBleeding16_TRAIN.csv"],
        "test": [d / "135_UCR_Anomaly_InternalBleeding16_TEST.csv"],
    }  # one reading of the labels for both files
    loaded = load_csv_groups(files, timestamp=None, label="is_anomaly", channels=["value"], normal=normal)
    (train,), (test,) = loaded["train"], loaded["test"]
    gap = window_length or 64
    tr, va = split_series(train, val_fraction, 0.0, gap)[:2]
    n = len(train)
    skip = n if np.array_equal(test.values[:n], train.values) else 0
    te = Series(
        values=test.values[skip + gap :],
        labels=None if test.labels is None else test.labels[skip + gap :],
        channel_names=test.channel_names,
        sample_rate_hz=None,
        source=f"{test.source}[{skip + gap}:]",
        classes=None if test.classes is None else test.classes[skip + gap :],
    )
    return DatasetSplits(
        name="internalbleeding",
        train=[tr],
        val=[va],
        test=[te],
        channel_names=("value",),
        sample_rate_hz=None,
        description="UCR anomaly archive 135 InternalBleeding16 (aeon KDD-TSAD_135): the TRAIN series cut "
        "into train | gap | validation, the TEST series' new part tests",
        rate_origin="",
        default_window=64,
        default_hop=16,
        info={"labels": train.meta.get("labels")},
    )


DATASETS: dict[str, Callable[..., DatasetSplits]] = {
    "synthetic": _synthetic,
    "basicmotions": _basicmotions,
    "daphnet": _daphnet,
    "internalbleeding": _internalbleeding,
}


def load_dataset(name: str, **opts: Any) -> DatasetSplits:
    """A named source, already split (see SPLIT_PROTOCOL); `opts` go to its loader (seed, normal, ...)."""
    key = name.strip().lower()
    if key not in DATASETS:
        raise UserError(f"unknown data set {name!r}; known data sets: {', '.join(DATASETS)}")
    return DATASETS[key](**opts)


# ---------------------------------------------------------------- prepare
_CFG_KEYS = (
    "source", "paths", "train", "test", "file_labels", "channels", "timestamp", "timestamp_unit",
    "timestamp_format", "label", "normal", "sample_rate_hz", "gaps", "val_fraction", "test_fraction", "seed",
)  # fmt: skip


def _config(source_config: Any) -> dict[str, Any]:
    """A dict from a name, a mapping or an object with DataConfig's attributes; empty values -> None."""
    if isinstance(source_config, str):
        raw: dict[str, Any] = {"source": source_config}
    elif isinstance(source_config, Mapping):
        raw = dict(source_config)
        unknown = sorted(set(raw) - set(_CFG_KEYS))
        if unknown:
            raise UserError(f"unknown data option {unknown[0]!r}; the options are {', '.join(_CFG_KEYS)}")
    else:
        raw = {k: getattr(source_config, k) for k in _CFG_KEYS if hasattr(source_config, k)}
    out = {k: raw.get(k) for k in _CFG_KEYS}
    for k, v in out.items():
        if (v is None or v in ("", 0, 0.0, [], (), {})) and k not in (
            "seed",
            "val_fraction",
            "test_fraction",
        ):
            out[k] = None
    out["source"] = (out["source"] or "synthetic").strip().lower()
    out["seed"] = int(out["seed"] or 0)
    return out


def load_source(
    source_config: Any,
    window_length: int,
    *,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    progress=None,  # type: ignore[no-untyped-def]  # Path -> bytes callback, for large CSV files
) -> DatasetSplits:
    """The DatasetSplits a source configuration names (csv, ucr or a data set name).

    The fractions given here are overridden by data.val_fraction / data.test_fraction when set.
    """
    cfg = _config(source_config)
    src = cfg["source"]
    if cfg["val_fraction"] is not None:
        val_fraction = float(cfg["val_fraction"])
    if cfg["test_fraction"] is not None:
        test_fraction = float(cfg["test_fraction"])
    if src in ("csv", "edgeimpulse"):  # Edge Impulse files are also read where CSV files are expected
        return csv_splits(cfg, window_length, progress=progress)
    if src == "ucr":
        paths = cfg["paths"] or []
        paths = [paths] if isinstance(paths, str | Path) else list(paths)
        if not paths:
            raise UserError("the ucr source needs paths; set data.paths to the TRAIN (and TEST) files")
        sets = load_ucr_files(paths, normal=cfg["normal"], sample_rate_hz=cfg["sample_rate_hz"])
        test_sets = [w for p, w in zip(paths, sets, strict=True) if "test" in Path(p).name.lower()]
        pool = [w for p, w in zip(paths, sets, strict=True) if "test" not in Path(p).name.lower()]
        train, val, test = [], [], []
        for w in pool:
            cases = w.to_series()
            if not test_sets:
                n_te = round(len(cases) * test_fraction)
                cases, test_part = cases[: len(cases) - n_te], cases[len(cases) - n_te :]
                test += test_part
            tr, va = _split_cases(cases, val_fraction)
            train += tr
            val += va
        for w in test_sets:
            test += w.to_series()
        return DatasetSplits(
            name=", ".join(map(str, paths)),
            train=train,
            val=val,
            test=test,
            channel_names=sets[0].channel_names,
            sample_rate_hz=sets[0].sample_rate_hz,
            description="row-per-window cases, each its own series"
            + ("; TEST file(s) test, the others train and validate" if test_sets else ""),
            rate_origin="data.sample_rate_hz" if sets[0].sample_rate_hz else "",
            info={"labels": sets[0].meaning},
        )
    opts: dict[str, Any] = {}
    if src == "synthetic":
        opts = {"seed": cfg["seed"], "sample_rate_hz": cfg["sample_rate_hz"]}
    elif src in ("basicmotions", "daphnet", "internalbleeding") and cfg["normal"]:
        opts = {"normal": cfg["normal"]}
    if src in ("daphnet", "internalbleeding"):
        opts["window_length"] = window_length
    if src in ("daphnet", "basicmotions", "internalbleeding"):
        opts["val_fraction"] = val_fraction
    if src == "daphnet":
        opts["test_fraction"] = test_fraction
    return load_dataset(src, **opts)


def prepare(
    source_config: Any,
    window_length: int,
    hop: int,
    *,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    label_rule: str = "any",
) -> Prepared:
    """Source configuration -> raw float32 train/val/test windows, following SPLIT_PROTOCOL.

    `source_config`: a data set name ("synthetic", "basicmotions", ...), a mapping or an object with the
    keys of tinyae.train.config.DataConfig (source = synthetic | csv | ucr | a data set name, paths, channels,
    timestamp, label, normal, sample_rate_hz, seed; empty values mean "not set").
    """
    check_window(window_length, hop)
    splits = load_source(source_config, window_length, val_fraction=val_fraction, test_fraction=test_fraction)
    return prepare_splits(splits, window_length, hop, label_rule)
