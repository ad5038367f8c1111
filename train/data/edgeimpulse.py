"""Edge Impulse's data-acquisition format (JSON or CBOR): one recording per file, a first-class source.

The format (docs.edgeimpulse.com/reference/data-ingestion/data-acquisition-format) is one object:

    {"protected": {"ver": "v1", "alg": "HS256" | "none", "iat": 1564128599},
     "signature": "b0ee05...",
     "payload": {"device_name": "ac:87:a3:0a:2d:1b", "device_type": "DISCO-L475VG-IOT01A",
                 "interval_ms": 10,
                 "sensors": [{"name": "accX", "units": "m/s2"}, {"name": "accY", "units": "m/s2"}, ...],
                 "values": [[-9.81, 0.03, 1.21], [-9.83, 0.04, 1.27], ...]}}

encoded as JSON or as CBOR (the same keys; Edge Impulse's firmware writes CBOR). `interval_ms` is the
sample period (10 = 100 Hz; audio uses fractions such as 0.0625 = 16 kHz); `values` holds one row per
sample with one number per sensor (a single sensor may give plain numbers). The signature is not
checked: that needs the project's HMAC key, and the data are the user's own.

Labels, in this order: `data.file_labels` (tinyae's own); an `info.labels` file (Edge Impulse's exporter
format: `{"version": 1, "files": [{"path": ..., "category": "training" | "testing", "label": {"type":
"label", "label": "idle"} | {"type": "multi-label", "labels": [{"label": ..., "startIndex": ms,
"endIndex": ms}]} | {"type": "unlabeled"}}]}`) in the file's folder or one of the two above it; then
the file name as Edge Impulse's uploader reads it, the text before the first dot (`idle.01.json`,
`idle.json.2b7kv9pq.json` -> "idle"), when the name has a dot before its extension. What a label means
is data.normal's business, as for every source (tinyae.train.data.labels).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tinyae.errors import UserError

SUFFIXES = (".json", ".cbor")
LABELS_FILE = "info.labels"
F32_MAX = float(np.finfo(np.float32).max)


def is_acquisition(obj: Any) -> bool:
    """True for an object shaped like the data-acquisition format (a payload with sensors and values)."""
    payload = obj.get("payload") if isinstance(obj, dict) else None
    return isinstance(payload, dict) and "sensors" in payload and "values" in payload


def decode(path: Path, data: bytes) -> tuple[Any, str] | None:
    """(the decoded object, "JSON" | "CBOR") when `data` is JSON or CBOR, else None."""
    text = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text[:1] in (b"{", b"["):
        try:
            return json.loads(text.decode("utf-8")), "JSON"
        except (UnicodeDecodeError, ValueError):
            return None
    if data[:1] and 0xA0 <= data[0] <= 0xBF:  # a CBOR map (major type 5), as the format's files start
        import cbor2

        try:
            return cbor2.loads(data), "CBOR"
        except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError, RecursionError):
            return None
    return None


@dataclass
class Recording:
    """One data-acquisition file: float32 values [n, C], sensor names and units, the sample period."""

    path: Path
    encoding: str  # JSON | CBOR
    names: list[str]
    units: list[str]
    values: np.ndarray
    interval_ms: float
    device_type: str
    label: str | None = None  # the whole file's label (info.labels or the file name), None when unknown
    label_origin: str = ""
    # multi-label samples (info.labels): per-sample codes into sample_label_values
    sample_labels: np.ndarray | None = None
    sample_label_values: list[str] = field(default_factory=list)
    category: str = ""  # training | testing (info.labels), "" when not said

    @property
    def hz(self) -> float:
        return 1000.0 / self.interval_ms


def _fail(path: Path, what: str) -> UserError:
    return UserError(
        f"{path} is an Edge Impulse data-acquisition file but {what}; fix the file (spec: "
        "docs.edgeimpulse.com/reference/data-ingestion/data-acquisition-format)"
    )


def _values(path: Path, raw: Any, n_sensors: int) -> np.ndarray:
    if not isinstance(raw, list) or not raw:
        raise _fail(path, "its payload.values is empty")
    rows = [r if isinstance(r, list) else [r] for r in raw]
    bad = next((i for i, r in enumerate(rows) if len(r) != n_sensors), None)
    if bad is not None:
        raise _fail(path, f"values row {bad} has {len(rows[bad])} numbers for {n_sensors} sensors")
    try:
        arr = np.asarray(rows, np.float64)
    except (TypeError, ValueError):
        i = next(i for i, r in enumerate(rows) if not all(_is_num(v) for v in r))
        raise _fail(path, f"values row {i} holds {rows[i]!r:.60}, not numbers") from None
    finite = np.isfinite(arr) & (np.abs(arr) <= F32_MAX)
    if not finite.all():
        i, c = (int(x) for x in np.argwhere(~finite)[0])
        raise _fail(path, f"values row {i}, sensor {c} is {arr[i, c]!r} (NaN, infinite or beyond float32)")
    return arr.astype(np.float32)


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def read(path: Path, obj: Any, encoding: str) -> Recording:
    """A decoded data-acquisition object as a Recording (every field checked, one sentence per fault)."""
    payload = obj["payload"]
    prot = obj.get("protected")
    if prot is not None and isinstance(prot, dict) and prot.get("ver") not in (None, "v1"):
        raise _fail(path, f"protected.ver is {prot.get('ver')!r}; this reader knows v1")
    sensors = payload.get("sensors")
    if not isinstance(sensors, list) or not sensors:
        raise _fail(path, "its payload.sensors list is empty")
    names, units = [], []
    for i, s in enumerate(sensors):
        if not isinstance(s, dict) or not isinstance(s.get("name"), str) or not s["name"].strip():
            raise _fail(path, f"sensor {i} has no name")
        names.append(s["name"].strip())
        units.append(str(s.get("units", "")))
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup is not None:
        raise _fail(path, f"two sensors are named {dup!r}")
    interval = payload.get("interval_ms")
    if not _is_num(interval) or not math.isfinite(interval) or interval <= 0:
        raise _fail(path, f"payload.interval_ms is {interval!r}, not a positive number of milliseconds")
    values = _values(path, payload.get("values"), len(names))
    return Recording(
        path=path,
        encoding=encoding,
        names=names,
        units=units,
        values=values,
        interval_ms=float(interval),
        device_type=str(payload.get("device_type", "")),
    )


def _info_labels(path: Path) -> tuple[dict, Path] | None:
    """The info.labels entry for `path` (in its folder or the two above), with the folder it is in."""
    here = path.resolve()
    for folder in list(here.parents)[:3]:
        index = folder / LABELS_FILE
        if not index.is_file():
            continue
        try:
            doc = json.loads(index.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise UserError(f"{index} is not valid JSON ({exc}); fix or remove it") from None
        for entry in doc.get("files", []) if isinstance(doc, dict) else []:
            p = entry.get("path") if isinstance(entry, dict) else None
            if isinstance(p, str) and (folder / p).resolve() == here:
                return entry, index
    return None


def name_label(path: Path) -> str | None:
    """The label Edge Impulse's uploader reads from a file name: the text before the first dot, when
    the name has one before its extension (`idle.01.json` -> "idle"; `run1.json` -> None)."""
    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    head, dot, _ = stem.partition(".")
    return head.strip() if dot and head.strip() else None


def label(rec: Recording) -> Recording:
    """rec with its label from info.labels or its file name (see the module docstring)."""
    found = _info_labels(rec.path)
    if found is not None:
        entry, index = found
        rec.category = str(entry.get("category", ""))
        lab = entry.get("label") or {}
        kind = lab.get("type", "unlabeled") if isinstance(lab, dict) else "unlabeled"
        if kind == "label" and lab.get("label") is not None:
            rec.label, rec.label_origin = str(lab["label"]), str(index)
        elif kind == "multi-label":
            _multi(rec, lab.get("labels") or [], index)
        elif kind != "unlabeled":
            raise UserError(
                f"{index} gives {rec.path.name} a label of type {kind!r}; use label or multi-label"
            )
        return rec
    named = name_label(rec.path)
    if named is not None:
        rec.label, rec.label_origin = named, "the file name"
    return rec


def _multi(rec: Recording, spans: list, index: Path) -> None:
    """Per-sample labels from multi-label spans (startIndex/endIndex in ms from the first sample)."""
    n = len(rec.values)
    t = np.arange(n) * rec.interval_ms
    codes = np.full(n, -1, np.int32)
    values: list[str] = []
    for s in spans:
        try:
            a, b, name = float(s["startIndex"]), float(s["endIndex"]), str(s["label"])
        except (KeyError, TypeError, ValueError):
            raise UserError(
                f"{index}: a multi-label span of {rec.path.name} lacks label/startIndex/endIndex"
            ) from None
        if name not in values:
            values.append(name)
        codes[(t >= a) & (t < b)] = values.index(name)
    if (codes < 0).any():
        i = int(np.flatnonzero(codes < 0)[0])
        raise UserError(
            f"{index}: sample {i} of {rec.path.name} (at {t[i]:g} ms) lies in no multi-label span; label "
            "every sample or make it one label"
        )
    rec.sample_labels, rec.sample_label_values = codes, values


def expand(paths: list[Path]) -> list[Path]:
    """Files given as folders become their .json/.cbor files (recursively, sorted; info.labels aside)."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in SUFFIXES)
            if not found:
                raise UserError(f"{p} holds no .json or .cbor file; pass a folder of Edge Impulse files")
            out += found
        else:
            out.append(p)
    return out


def category(path: Path) -> str:
    """ "training" or "testing" as Edge Impulse files it (info.labels, else a folder of that name), or ""."""
    found = _info_labels(path) if path.suffix.lower() in SUFFIXES else None
    if found is not None and found[0].get("category") in ("training", "testing"):
        return str(found[0]["category"])
    parts = [x.lower() for x in path.parts[:-1]]
    return "testing" if "testing" in parts else "training" if "training" in parts else ""
