"""Sensor data for tinyae: loaders, the embedded synthetic default, named data sets, windows, splits."""

from tinyae.train.data.csv_source import Series, load_csv
from tinyae.train.data.datasets import DATASETS, load_dataset, load_source, prepare
from tinyae.train.data.normalize import Normalization, fit_normalization
from tinyae.train.data.splits import SPLIT_PROTOCOL, DatasetSplits, Prepared, require_labels, split_series
from tinyae.train.data.synthetic import (
    CHANNEL_NAMES,
    DEFAULT_HOP,
    DEFAULT_SAMPLE_RATE_HZ,
    DEFAULT_WINDOW,
    FAULT_KINDS,
    FaultSegment,
    SyntheticData,
    make_synthetic,
)
from tinyae.train.data.ucr import WindowSet, load_ucr
from tinyae.train.data.windowing import make_windows, window_labels

__all__ = [
    "CHANNEL_NAMES",
    "DATASETS",
    "DEFAULT_HOP",
    "DEFAULT_SAMPLE_RATE_HZ",
    "DEFAULT_WINDOW",
    "FAULT_KINDS",
    "SPLIT_PROTOCOL",
    "DatasetSplits",
    "FaultSegment",
    "Normalization",
    "Prepared",
    "Series",
    "SyntheticData",
    "WindowSet",
    "fit_normalization",
    "load_csv",
    "load_dataset",
    "load_source",
    "load_ucr",
    "make_synthetic",
    "make_windows",
    "prepare",
    "require_labels",
    "split_series",
    "window_labels",
]
