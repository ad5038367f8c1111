"""The `csv` source: recordings from a config, cut into train / validation / test as the user laid them out.

Two layouts:
- `data.paths`: every file is cut by time into train | gap | validation | gap | test
  (`data.val_fraction`, `data.test_fraction` of its samples).
- `data.train` + `data.test`: training files are cut by time into train | gap | validation
  (`data.val_fraction`); test files are evaluated whole. This is how recordings usually come: normal
  runs for training, and other runs, normal and faulty, for testing.
Labels come from a label column or from `data.file_labels` (a path or glob -> the label of every sample
of the files it matches: `{"recordings/unbalanced/*.csv" = "unbalanced", "recordings/normal*/*.csv" =
"normal"}`), with one meaning for all files (tinyae.train.data.labels). A training file labelled anomalous as a
whole is refused (training uses normal data only).
"""

from __future__ import annotations

from typing import Any

from tinyae.errors import UserError, printable
from tinyae.train.data.csv_source import Series, expand_paths, load_csv_groups
from tinyae.train.data.edgeimpulse import category
from tinyae.train.data.labels import training_labels_refusal
from tinyae.train.data.splits import DatasetSplits, check_lengths, split_series


def _listed(v: Any) -> list[str]:
    if v is None:
        return []
    return [v] if isinstance(v, str) else [str(x) for x in v]


def csv_splits(cfg: dict[str, Any], window_length: int, *, progress=None) -> DatasetSplits:  # type: ignore[no-untyped-def]
    paths, train, test = _listed(cfg.get("paths")), _listed(cfg.get("train")), _listed(cfg.get("test"))
    edge = cfg.get("source") == "edgeimpulse"
    if edge and paths and not (train or test):
        # Edge Impulse's own split: info.labels' category, or training/ and testing/ folders (its export)
        files = expand_paths(paths)
        kinds = {f: category(f) for f in files}
        if "testing" in kinds.values():
            train = [str(f) for f in files if kinds[f] != "testing"]
            test = [str(f) for f in files if kinds[f] == "testing"]
            paths = []
    if paths and (train or test):
        raise UserError(
            "data.paths and data.train/data.test are two layouts; use data.paths (each file cut by time) "
            "or data.train with data.test (test files whole), not both"
        )
    if test and not train:
        raise UserError("data.test needs data.train: name the normal recordings to train on")
    if not (paths or train):
        raise UserError("the csv source needs files; set data.paths, or data.train and data.test")
    val_f = float(v) if (v := cfg.get("val_fraction")) is not None else 0.2
    test_f = float(t) if (t := cfg.get("test_fraction")) is not None else 0.2
    groups = {"train": train or paths}
    if test:
        groups["test"] = test
    loaded = load_csv_groups(
        groups,
        channels=cfg.get("channels"),
        timestamp="auto" if cfg.get("timestamp") is None else cfg["timestamp"],
        label="auto" if cfg.get("label") is None else cfg["label"],
        normal=cfg.get("normal"),
        sample_rate_hz=cfg.get("sample_rate_hz"),
        timestamp_unit=cfg.get("timestamp_unit") or "auto",
        timestamp_format=cfg.get("timestamp_format") or "",
        gaps=cfg.get("gaps") or "refuse",
        file_labels=cfg.get("file_labels") or {},
        progress=progress,
    )
    fit_series = loaded["train"]
    whole: list[Series] = []
    if edge and not test:  # a folder of class-named files: the anomalous ones test whole
        whole = [
            s
            for s in fit_series
            if s.meta.get("file_label") is not None and s.labels is not None and s.labels.all()
        ]
        fit_series = [s for s in fit_series if s not in whole]
        moved = sum(len(s) for s in whole)
        meaning = (whole or fit_series)[0].meta.get("labels") or {}
        refusal = training_labels_refusal(
            meaning, moved, sum(len(s) for s in fit_series), moved, ", ".join(paths[:3]), "samples"
        )
        if refusal:
            raise UserError(refusal)
        if not fit_series:
            raise UserError(
                f"every file of {', '.join(paths[:3])} is labelled anomalous; name the normal class(es) with "
                "data.normal"
            )
    for s in fit_series:
        if s.meta.get("file_label") is not None and s.labels is not None and s.labels.all():
            raise UserError(
                f"{printable(s.source, None)} is labelled {printable(repr(s.meta['file_label']))}, an anomaly, "
                "but it is a training file; "
                "training uses normal recordings only: move it to data.test"
            )
    check_lengths(fit_series + loaded.get("test", []) + whole, window_length)
    if test:
        test_series = loaded["test"]
        _same_labelling(test_series, "data.test")
        parts = [split_series(s, val_f, 0.0, window_length) for s in fit_series]
        how = (
            f"{len(fit_series)} training recording(s) cut by time into train | gap | validation "
            f"({100 * (1 - val_f):.0f}/{100 * val_f:.0f} %, gap {window_length} samples); "
            f"{len(test_series)} test recording(s) whole"
        )
        test_parts = test_series
    else:
        _same_labelling(fit_series, "data.paths")
        parts = [split_series(s, val_f, test_f, window_length) for s in fit_series]
        how = (
            f"{len(fit_series)} recording(s), each cut by time into train | gap | validation | gap | test "
            f"({100 * (1 - val_f - test_f):.0f}/{100 * val_f:.0f}/{100 * test_f:.0f} %, gaps of "
            f"{window_length} samples)"
        )
        test_parts = [p[2] for p in parts] + whole
        if whole:
            how += f"; {len(whole)} recording(s) labelled anomalous as a whole tested whole"
    first = fit_series[0]
    return DatasetSplits(
        name=", ".join(s.source for s in fit_series[:3]) + (", ..." if len(fit_series) > 3 else ""),
        train=[p[0] for p in parts],
        val=[p[1] for p in parts],
        test=test_parts,
        channel_names=first.channel_names,
        sample_rate_hz=first.sample_rate_hz,
        description=how,
        rate_origin=(first.meta.get("rate") or {}).get("origin", ""),
        info=_info(fit_series, loaded.get("test", []) + whole),
    )


def _same_labelling(series: list[Series], where: str) -> None:
    have = [s for s in series if s.labels is not None]
    if have and len(have) != len(series):
        lacking = next(s for s in series if s.labels is None)
        raise UserError(
            f"{printable(lacking.source, None)} has no label while {printable(have[0].source, None)} has; "
            f"in {where} label every file "
            "(a label column or data.file_labels) or none"
        )


def _info(train: list[Series], test: list[Series]) -> dict:
    """What the manifest records about how the files were read (one entry per distinct file)."""
    first = train[0].meta

    def files(series: list[Series]) -> list[dict]:
        seen: dict[str, dict] = {}
        for s in series:
            f = s.meta.get("file", s.source)
            entry = seen.setdefault(f, {"path": f, "samples": 0, "series": 0})
            entry["samples"] += len(s)
            entry["series"] += 1
            if s.meta.get("file_label") is not None:
                entry["label"] = s.meta["file_label"]
        return list(seen.values())

    return {
        "columns": first.get("columns", {}),
        "rate": first.get("rate"),
        "labels": first.get("labels"),
        "files": {"train": files(train), "test": files(test)},
    }
