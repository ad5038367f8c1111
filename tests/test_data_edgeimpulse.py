"""Edge Impulse's data-acquisition format (JSON and CBOR) as a source, and other structured files named.

The files are written here as the spec describes them (docs.edgeimpulse.com/reference/data-ingestion/
data-acquisition-format): {"protected": {ver, alg, iat}, "signature", "payload": {device_name,
device_type, interval_ms, sensors: [{name, units}], values: [[...], ...]}}, encoded as JSON or CBOR;
labels from Edge Impulse's file naming (`idle.01.json` -> idle) or its exporter's info.labels.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import cbor2
import numpy as np
import pytest

from tinyae.errors import UserError
from tinyae.train import config
from tinyae.train.data import load_csv, prepare
from tinyae.train.data.formats import sniff

SENSORS = [
    {"name": "accX", "units": "m/s2"},
    {"name": "accY", "units": "m/s2"},
    {"name": "accZ", "units": "m/s2"},
]


def acquisition(values: np.ndarray, interval_ms: float = 10, sensors=SENSORS) -> dict:
    return {
        "protected": {"ver": "v1", "alg": "none", "iat": 1564128599},
        "signature": "0" * 64,
        "payload": {
            "device_name": "ac:87:a3:0a:2d:1b",
            "device_type": "DISCO-L475VG-IOT01A",
            "interval_ms": interval_ms,
            "sensors": [dict(s) for s in sensors],
            "values": values.tolist(),
        },
    }


def motion(n: int, seed: int, fault: bool = False) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 100.0
    x = np.stack([np.sin(2 * np.pi * 5 * t), np.cos(2 * np.pi * 5 * t), 9.81 + 0 * t], 1)
    x += 0.05 * rng.standard_normal(x.shape)
    if fault:
        x[:, 0] += 1.5 * np.sin(2 * np.pi * 17 * t)
    return x.round(5)


def write(path: Path, obj: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".cbor":
        path.write_bytes(cbor2.dumps(obj))
    else:
        path.write_text(json.dumps(obj))
    return path


def test_the_spec_example_reads_as_json_and_as_cbor(tmp_path):
    values = np.array([[-9.81, 0.03, 1.21], [-9.83, 0.04, 1.27], [-9.12, 0.03, 1.23], [-9.14, 0.01, 1.25]])
    for suffix in (".json", ".cbor"):
        p = write(tmp_path / f"sample{suffix}", acquisition(values))
        (s,) = load_csv(p)
        assert s.channel_names == ("accX", "accY", "accZ") and s.sample_rate_hz == 100.0
        assert np.array_equal(s.values, values.astype(np.float32)) and s.labels is None
        assert s.meta["columns"]["units"] == {"accX": "m/s2", "accY": "m/s2", "accZ": "m/s2"}
        assert s.meta["columns"]["format"] == f"an Edge Impulse data-acquisition file ({suffix[1:].upper()})"


def test_one_sensor_plain_values_and_fractional_intervals(tmp_path):
    p = write(
        tmp_path / "audio.json", acquisition(np.arange(32.0), 0.0625, [{"name": "audio", "units": "wav"}])
    )
    (s,) = load_csv(p)
    assert s.values.shape == (32, 1) and s.sample_rate_hz == 16000.0
    # data.channels picks sensors by name; a sample rate that disagrees with interval_ms is refused
    q = write(tmp_path / "m.json", acquisition(motion(50, 0)))
    (s2,) = load_csv(q, channels=["accZ", "accX"])
    assert s2.channel_names == ("accZ", "accX")
    with pytest.raises(UserError, match=r"data.sample_rate_hz = 50 but .* says interval_ms = 10"):
        load_csv(q, sample_rate_hz=50)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda o: o["payload"].update(interval_ms=0), "payload.interval_ms is 0"),
        (lambda o: o["payload"].update(interval_ms="fast"), "payload.interval_ms is 'fast'"),
        (lambda o: o["payload"].update(sensors=[]), "payload.sensors list is empty"),
        (lambda o: o["payload"].update(values=[]), "payload.values is empty"),
        (lambda o: o["payload"]["values"][3].pop(), "values row 3 has 2 numbers for 3 sensors"),
        (lambda o: o["payload"]["values"][2].__setitem__(1, "x"), "values row 2 holds"),
        (lambda o: o["payload"]["values"][1].__setitem__(0, 1e300), "values row 1, sensor 0 is"),
        (lambda o: o["payload"]["sensors"][1].update(name="accX"), "two sensors are named 'accX'"),
        (lambda o: o["protected"].update(ver="v9"), "protected.ver is 'v9'"),
    ],
)
def test_a_broken_file_is_one_sentence(tmp_path, mutate, message):
    for suffix in (".json", ".cbor"):
        obj = acquisition(motion(8, 0))
        mutate(obj)
        with pytest.raises(UserError, match=message) as err:
            load_csv(write(tmp_path / f"bad{suffix}", obj))
        assert str(err.value).count("\n") == 0 and "data-acquisition-format" in str(err.value)


def test_a_folder_named_by_class_trains_with_data_normal(tmp_path):
    """Edge Impulse's naming: the label is the file name before its first dot. The normal class is
    named with data.normal; files of other classes are tested whole."""
    d = tmp_path / "ei"
    for i in range(3):
        write(d / f"idle.{i}.json", acquisition(motion(1200, i)))
    write(d / "wobble.s1.cbor", acquisition(motion(600, 9, fault=True)))
    base = ["data.source='edgeimpulse'", f"data.paths=['{d}']"]
    with pytest.raises(UserError, match=r"has classes idle, wobble .*data\.normal"):
        prepare(config.load(None, base).data, 64, 32)
    cfg = config.load(None, [*base, "data.normal='idle'"])
    p = prepare(cfg.data, 64, 32)
    assert p.sample_rate_hz == 100.0 and p.channel_names == ("accX", "accY", "accZ")
    assert p.test_labels is not None and p.test_labels.sum() == 600 // 32 - 1  # the wobble file, whole
    assert set(p.test_faults[p.test_labels == 1]) == {"wobble"}
    assert "1 recording(s) labelled anomalous as a whole tested whole" in p.description


def test_the_export_layout_with_info_labels_splits_training_and_testing(tmp_path):
    root = tmp_path / "export"
    files = []
    for i in range(2):
        files.append(("training", write(root / "training" / f"a{i}.json", acquisition(motion(900, i)))))
    files.append(("testing", write(root / "testing" / "b0.cbor", acquisition(motion(400, 5)))))
    files.append(("testing", write(root / "testing" / "b1.json", acquisition(motion(400, 6, fault=True)))))
    labels = {"a0.json": "0", "a1.json": "0", "b0.cbor": "0", "b1.json": "1"}
    (root / "info.labels").write_text(
        json.dumps(
            {
                "version": 1,
                "files": [
                    {"path": str(p.relative_to(root)), "category": cat,
                     "label": {"type": "label", "label": labels[p.name]}}
                    for cat, p in files
                ],
            }
        )
    )  # fmt: skip
    cfg = config.load(None, ["data.source='edgeimpulse'", f"data.paths=['{root}']"])
    p = prepare(cfg.data, 64, 32)
    assert "2 training recording(s)" in p.description and "2 test recording(s) whole" in p.description
    assert p.test_labels is not None and 0 < p.test_labels.sum() < len(p.test_labels)


def test_multi_label_spans_label_each_sample(tmp_path):
    d = tmp_path / "ml"
    p = write(d / "run.json", acquisition(motion(300, 1)))
    spans = [
        {"label": "0", "startIndex": 0, "endIndex": 2000},
        {"label": "1", "startIndex": 2000, "endIndex": 3000},
    ]
    (d / "info.labels").write_text(
        json.dumps({"version": 1, "files": [{"path": "run.json", "category": "training",
                                             "label": {"type": "multi-label", "labels": spans}}]})
    )  # fmt: skip
    (s,) = load_csv(p)
    assert s.labels is not None and s.labels[:200].sum() == 0 and s.labels[200:].all()
    spans[1]["endIndex"] = 2500
    (d / "info.labels").write_text(
        json.dumps(
            {"version": 1, "files": [{"path": "run.json", "label": {"type": "multi-label", "labels": spans}}]}
        )
    )
    with pytest.raises(UserError, match=r"sample 250 of run.json \(at 2500 ms\) lies in no multi-label span"):
        load_csv(p)


def test_edge_impulse_files_in_the_csv_source_are_detected(tmp_path):
    """data.source = "csv" with Edge Impulse files among data.paths: read as what they are."""
    a = write(tmp_path / "a.cbor", acquisition(motion(1500, 3)))
    csv = tmp_path / "b.csv"
    x = motion(1500, 4)
    csv.write_text(
        "timestamp_ms,accX,accY,accZ\n" + "".join(f"{10 * i},{r[0]},{r[1]},{r[2]}\n" for i, r in enumerate(x))
    )
    cfg = config.load(None, ["data.source='csv'", f"data.paths=['{a}', '{csv}']"])
    p = prepare(cfg.data, 64, 32)
    assert p.sample_rate_hz == pytest.approx(100.0) and p.channel_names == ("accX", "accY", "accZ")


# ---------------------------------------------------------------------------- other formats, named
def _parquet_like(p: Path) -> None:
    p.write_bytes(b"PAR1" + b"\0" * 32 + b"PAR1")


def _xlsx(p: Path) -> None:
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("xl/workbook.xml", "<workbook/>")


def _npz(p: Path) -> None:
    np.savez(p, a=np.zeros(3))


@pytest.mark.parametrize(
    ("name", "make", "what"),
    [
        ("data.json", lambda p: p.write_text(json.dumps({"rows": [1, 2], "units": "m/s2"})),
         "a JSON file (an object with keys rows, units)"),
        ("list.json", lambda p: p.write_text("[1, 2, 3]"), "a JSON file (a list of 3 items)"),
        ("lines.jsonl", lambda p: p.write_text('{"a": 1}\n{"a": 2}\n'), "a JSON Lines file"),
        ("data.cbor", lambda p: p.write_bytes(cbor2.dumps({"x": [1, 2]})), "a CBOR file (an object with keys x)"),
        ("data.parquet", _parquet_like, "a Parquet file"),
        ("book.xlsx", _xlsx, "an Excel workbook (.xlsx)"),
        ("old.xls", lambda p: p.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 64), "an Excel 97-2003"),
        ("arr.npy", lambda p: np.save(p, np.zeros(3)), "a NumPy .npy array"),
        ("arr.npz", _npz, "a NumPy .npz archive"),
        ("d.h5", lambda p: p.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64), "an HDF5 file"),
        ("d.csv.gz", lambda p: p.write_bytes(b"\x1f\x8b\x08" + b"\0" * 20), "gzip-compressed"),
        ("d.xml", lambda p: p.write_text('<?xml version="1.0"?><a/>'), "an XML document"),
        ("d.ts", lambda p: p.write_text("@problemName X\n@data\n1,2:0\n"), "a UEA/sktime .ts file"),
    ],
)  # fmt: skip
def test_other_structured_files_are_named_for_what_they_are(tmp_path, name, make, what):
    p = tmp_path / name
    make(p)
    with pytest.raises(UserError) as err:
        load_csv(p)
    text = str(err.value)
    assert text.startswith(f"{p} is {what}") and ", not CSV; " in text and "\n" not in text


def test_the_reported_case_names_json(tmp_path):
    """An Edge Impulse file handed to a command that reads CSV only is named, not parsed as columns."""
    from tinyae.train.data.table import CsvReader

    p = write(tmp_path / "idle.1.json", acquisition(motion(10, 0)))
    with pytest.raises(UserError, match=r"is an Edge Impulse data-acquisition file \(JSON\), not CSV") as err:
        CsvReader(p)
    assert "two columns named" not in str(err.value)
    assert sniff(tmp_path / "missing.csv") is None
    plain = tmp_path / "plain.csv"
    plain.write_text("a,b\n1,2\n")
    assert sniff(plain) is None
