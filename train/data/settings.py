"""A model's data settings: written to the manifest by training, applied by every command that feeds
the model a CSV (`tinyae device stream --csv`, `verify --csv`).

The manifest's `data` section records what the model was trained on: the channels by name and how
they were chosen, the timestamp column and its unit or format, the label column and what its values
mean, the sample rate and where it came from, the split and the files. `load_for_model` reads a CSV
with those settings: the file's columns are matched to the model's channels **by name** (reordered
as needed; a missing or unknown column is refused listing both sides), labels are read with the
model's meaning, and a file whose timestamps give another sample rate is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tinyae.errors import UserError, printable, printable_list
from tinyae.train.data.columns import match_channels
from tinyae.train.data.csv_source import AUTO, OFF, ProgressFactory, Series, _pick, load_csv_groups
from tinyae.train.data.labels import LabelMeaning
from tinyae.train.data.table import CsvReader
from tinyae.train.data.timestamps import RATE_TOLERANCE, UNITS, fmt_hz


def data_section(cfg: Any, splits: Any, prep: Any, outliers: Any) -> dict:
    """The manifest's `data` section (cfg: DataConfig, splits: DatasetSplits, prep: Prepared)."""
    info = splits.info or {}
    columns = info.get("columns") or {}
    rate = info.get("rate") or {}
    labels = info.get("labels")
    ts = columns.get("timestamp")
    return {
        "source": cfg.source,
        "channels": list(prep.channel_names),
        "channels_selected_by": columns.get("selected_by", "the data set"),
        "left_out": columns.get("left_out", {}),
        "header": columns.get("header", True),
        "timestamp": None
        if not ts
        else {
            "column": ts,
            "unit": rate.get("unit") if rate.get("unit") in UNITS else "auto",
            "format": cfg.timestamp_format,
        },
        "label": None if labels is None else {"column": columns.get("label"), **labels},
        "sample_rate_hz": float(prep.sample_rate_hz or 0.0),
        "sample_rate_origin": splits.rate_origin or "unknown: the data set gives none",
        "jitter": rate.get("jitter"),
        "gaps": cfg.gaps,
        "split": {
            "description": prep.description,
            "val_fraction": cfg.val_fraction,
            "test_fraction": cfg.test_fraction,
            "windows": {"train": len(prep.train), "val": len(prep.val), "test": len(prep.test)},
            "left_out_anomalous": {"train": prep.dropped[0], "val": prep.dropped[1]},
        },
        "files": info.get("files"),
        "file_labels": dict(cfg.file_labels),
        "outliers": outliers.to_dict(),
    }


def _meaning(label: dict | None) -> LabelMeaning | None:
    if not label or not label.get("normal"):
        return None
    return LabelMeaning.from_dict(label)


def load_for_model(
    path: str,
    manifest: dict[str, Any],
    *,
    channels: Sequence[str] | None = None,
    timestamp: str | None = None,
    label: str | None = None,
    normal: Sequence[str] | None = None,
    progress: ProgressFactory | None = None,
) -> tuple[list[Series], list[str]]:
    """The series of a CSV read with the model's data settings, and notes for the user.

    manifest: the model's manifest in its JSON layout (Manifest.to_dict()): `window` and `data` are read.

    channels: the file's columns for the model's channels, in the model's order (when the file names
    them differently); timestamp / label: the file's timestamp and label columns ("none" for none);
    normal: the file's own normal label value(s) (`--normal`; every other value anomalous) instead of the
    model's meaning, under which a value the model does not know is refused (LabelMeaning.refuse_unknown).
    """
    want = list(manifest["window"]["channel_names"])
    d = manifest["data"]
    reader = CsvReader(Path(path))  # the header only
    names = reader.names
    ts_cfg = d.get("timestamp") or {}
    lab_cfg = d.get("label") or {}
    ts_spec = timestamp if timestamp is not None else (ts_cfg.get("column") or AUTO)
    if ts_spec not in names and ts_spec != AUTO and ts_spec.lower() not in OFF and timestamp is None:
        ts_spec = AUTO  # the model's timestamp column is not in this file: look for one by name
    lab_spec = label if label is not None else (lab_cfg.get("column") or AUTO)
    if lab_spec not in names and lab_spec != AUTO and lab_spec.lower() not in OFF and label is None:
        lab_spec = AUTO
    ts = _pick(ts_spec, names, reader.path, "timestamp")
    lab = _pick(lab_spec, names, reader.path, "label")
    notes: list[str] = []
    if channels:
        if len(channels) != len(want):
            raise UserError(
                f"--channels names {len(channels)} columns but the model has {len(want)} channels "
                f"({printable_list(want, len(want))}); name one column per channel, in that order"
            )
        cols = list(channels)
        for c in cols:
            if c not in names:
                raise UserError(
                    f"--channels column '{printable(c)}' is not in {printable(path, None)}; "
                    f"its columns are {printable_list(names)}"
                )
        if cols != want:
            notes.append(
                f"columns {printable_list(cols, len(cols))} of {printable(path, None)} "
                f"feed channels {printable_list(want, len(want))}"
            )
    elif not reader.has_header or not d.get("header", True):
        candidates = [n for i, n in enumerate(names) if i not in (ts, lab)]
        if len(candidates) != len(want):
            raise UserError(
                f"{printable(path, None)} has {len(candidates)} channel columns "
                f"({printable_list(candidates)}) but the model expects "
                f"{len(want)} ({printable_list(want, len(want))}); without a header columns go by position: "
                "give the file the model's columns in order, or a header naming them"
            )
        cols = candidates
        notes.append(
            f"{printable(path, None)} has no header (or the model's data had none): columns taken by position"
        )
    else:
        candidates = [n for i, n in enumerate(names) if i not in (ts, lab)]
        idx = match_channels(
            candidates,
            want,
            str(path),
            ignorable=list(d.get("left_out", {})),
            extra_ok=d.get("channels_selected_by") == "data.channels",
        )
        cols = [candidates[i] for i in idx]
        if cols != [n for n in candidates if n in want]:
            notes.append(
                f"the columns of {printable(path, None)} were reordered to the model's channel order "
                f"({printable_list(want, len(want))})"
            )
    model_hz = manifest["window"]["sample_rate_hz"]
    (series,) = load_csv_groups(
        {"csv": [path]},
        channels=cols,
        timestamp=names[ts] if ts is not None else "none",
        label=names[lab] if lab is not None else "none",
        # the file's own unit (its column's name, epoch values), else the one that gives the model's rate
        # (not the model's unit: a file's column can be in another; one at another rate is refused)
        timestamp_unit="auto",
        model_hz=float(model_hz) if ts is not None and model_hz else None,
        timestamp_format=ts_cfg.get("format", "") if ts is not None else "",
        gaps=d.get("gaps", "refuse"),
        file_labels=d.get("file_labels") if lab is None else None,  # a recording of the training layout
        meaning=None if normal else _meaning(lab_cfg),
        normal=list(normal) if normal else None,
        normal_from="--normal",
        progress=progress,
    ).values()
    file_hz = series[0].sample_rate_hz if series else None
    if file_hz and model_hz and abs(file_hz - model_hz) > RATE_TOLERANCE * model_hz:
        column = f" (timestamp column '{printable(names[ts])}')" if ts is not None else ""
        raise UserError(
            f"{printable(path, None)} is sampled at {fmt_hz(file_hz)}{column} but the model at "
            f"{fmt_hz(model_hz)}; resample the file to {fmt_hz(model_hz)} or use a model trained at its rate"
        )
    if ts is None and model_hz:
        notes.append(
            f"{printable(path, None)} has no timestamp column: its sample rate is taken to be the model's "
            f"({fmt_hz(model_hz)})"
        )
    return [s for s in series], notes
