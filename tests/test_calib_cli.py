"""On-site calibration through the command lines, with the default model: `tinyae calibrate`
(no device) and `tinyae device calibrate` / `info` / `verify` against the simulated device running
the model's compiled engine (sim://?model=DIR: the real tae_app.c, tae_calib.c and pipeline on the
host). The record made from a CSV without a device is the device's record, bit for bit; `verify` after
a calibration stays bit-exact; every refusal and user error ends in one sentence."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tinyae.cli import main as tinyae
from tinyae.train.calibration import CalibSpec
from tinyae.train.calibration.record import Record
from tinyae.train.manifest import Manifest

N = 16  # windows per phase


@pytest.fixture(scope="module")
def model(default_model_dir) -> tuple[Path, dict, CalibSpec]:
    m = json.loads((default_model_dir / "manifest.json").read_text())
    return default_model_dir, m, Manifest.from_dict(m).calib_spec()


@pytest.fixture
def sim(model):  # type: ignore[no-untyped-def]
    """sim://?model=DIR with empty storage before and after (the simulated device is process-wide)."""
    from tinyae.tools.simdevice.port import _sim_for

    dev = _sim_for(model[0])
    dev.store_fail(0)
    dev.store = None
    yield f"sim://?model={model[0]}", dev
    dev.store = None


def normal_stretch(model_dir: Path, n: int) -> np.ndarray:
    """n samples of normal operation from the model's test stream (no labelled anomaly)."""
    z = np.load(model_dir / "test_vectors.npz")
    x, lab = z["series"], z["series_labels"]
    bad = np.flatnonzero(lab != 0)
    starts = [0, *(bad + 1)]
    for s in starts:
        nxt = bad[bad >= s]
        end = int(nxt[0]) if len(nxt) else len(x)
        if end - s >= n:
            return x[s : s + n].astype(np.float32)
    raise AssertionError("no normal stretch long enough in the test stream")


def faulty(n: int, kind: str = "looseness") -> np.ndarray:
    """n samples of the default machine with an obvious fault throughout (train/data/synthetic.py)."""
    from tinyae.train.data.synthetic import FAULT_KINDS, SEVERITY, generate

    x, _ = generate(0, n, fault=np.full(n, FAULT_KINDS.index(kind)), severity=np.full(n, SEVERITY[kind][1]))
    return x.astype(np.float32)


def write_csv(path: Path, x: np.ndarray, names: list[str], labels: np.ndarray | None = None) -> Path:
    cols = [*names, *(["label"] if labels is not None else [])]
    data = x if labels is None else np.column_stack([x, labels])
    np.savetxt(path, data, delimiter=",", header=",".join(cols), comments="", fmt="%.9g")
    return path


SITE = np.float32([0.12, -0.08, 0.05])  # this machine's mounting offsets


def test_train_calibrate_makes_the_devices_record_and_verify_stays_bit_exact(model, sim, tmp_path, capsys):
    model_dir, m, spec = model
    port, dev = sim
    names = m["window"]["channel_names"]
    x = normal_stretch(model_dir, spec.total_samples(N)) + SITE
    csv = write_csv(tmp_path / "site.csv", x, names)
    rec_file, report = tmp_path / "site.bin", tmp_path / "offline.json"
    args = ["calibrate", "--model-dir", str(model_dir), "--csv", str(csv), "--windows", str(N)]
    assert tinyae([*args, "--out", str(rec_file), "--json", str(report)]) == 0
    offline = json.loads(report.read_text())
    assert offline["outcome"] == "stored" and offline["numpy_cross_check"]["ok"]
    assert offline["false_alarms"]["after"] <= offline["false_alarms"]["before"]
    # the same recording streamed to the device: its record is the offline one, bit for bit
    out = tmp_path / "device.json"
    code = tinyae(["device", "calibrate", "--port", port, "--model-dir", str(model_dir), "--csv", str(csv),
                       "--windows", str(N), "--json", str(out), "--quiet"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    r = json.loads(out.read_text())
    assert r["ok"] and r["record_equal"] and r["scores_equal"] == r["scores_compared"] == 2 * N
    assert bytes.fromhex(r["device_record_hex"]) == rec_file.read_bytes() == dev.store
    rec = Record.from_bytes(rec_file.read_bytes())
    assert np.allclose(rec.shift, SITE, atol=0.03) and rec.learned == ["offsets", "threshold"]
    # verify on data from the same site: the reference applies the record, every window bit-exact
    y = np.load(model_dir / "test_vectors.npz")["series"][:4000] + SITE  # normal and faulty windows
    code = tinyae(["device", "verify", "--port", port, "--model-dir", str(model_dir), "--csv",
                       str(write_csv(tmp_path / "later.csv", y, names)), "--json", str(tmp_path / "v.json"),
                       "--quiet"])  # fmt: skip
    v = json.loads((tmp_path / "v.json").read_text())
    assert code == 0 and v["ok"] and v["output_mismatches"] == 0 and v["input_mismatches"] == 0
    assert v["calibration"]["crc"] == f"{rec.crc:08x}" and v["threshold"] == pytest.approx(rec.threshold)
    # info shows the record
    assert (
        tinyae(
            [
                "device",
                "info",
                "--port",
                port,
                "--model-dir",
                str(model_dir),
                "--json",
                str(tmp_path / "i.json"),
            ]
        )
        == 0
    )
    info = json.loads((tmp_path / "i.json").read_text())["calibration"]
    assert info["state"] == "calibrated" and info["record"]["crc"] == f"{rec.crc:08x}"
    # factory values again
    assert tinyae(["device", "calibrate", "--port", port, "--model-dir", str(model_dir), "--factory"]) == 0
    assert dev.store is None


def test_a_record_made_offline_is_installed(model, sim, tmp_path):
    model_dir, m, spec = model
    port, dev = sim
    x = normal_stretch(model_dir, spec.total_samples(N)) - SITE
    csv = write_csv(tmp_path / "site.csv", x, m["window"]["channel_names"])
    rec_file = tmp_path / "site.bin"
    assert tinyae(["calibrate", "--model-dir", str(model_dir), "--csv", str(csv), "--windows", str(N),
                       "--out", str(rec_file)]) == 0  # fmt: skip
    assert (
        tinyae(
            ["device", "calibrate", "--port", port, "--model-dir", str(model_dir), "--record", str(rec_file)]
        )
        == 0
    )
    assert dev.store == rec_file.read_bytes()


def one_sentence(capsys) -> str:  # type: ignore[no-untyped-def]
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


def test_data_that_are_not_normal_are_refused_on_the_device_and_offline(model, sim, tmp_path, capsys):
    model_dir, m, spec = model
    port, dev = sim
    names = m["window"]["channel_names"]
    bad = faulty(spec.total_samples(N))
    csv = write_csv(tmp_path / "faulty.csv", bad, names)
    assert tinyae(["calibrate", "--model-dir", str(model_dir), "--csv", str(csv), "--windows", str(N)]) == 2
    msg = one_sentence(capsys)
    assert "the calibration was refused" in msg and "the data were not normal" in msg
    code = tinyae(["device", "calibrate", "--port", port, "--model-dir", str(model_dir), "--csv", str(csv),
                       "--windows", str(N), "--quiet"])  # fmt: skip
    assert code == 2 and "the data were not normal" in one_sentence(capsys)
    assert dev.store is None  # nothing stored, the factory values stay in use


@pytest.mark.parametrize("case", ["shifted", "short", "labelled", "channels", "windows", "missing"])
def test_offline_calibration_user_errors(model, tmp_path, capsys, case):
    model_dir, m, spec = model
    names = m["window"]["channel_names"]
    x = normal_stretch(model_dir, spec.total_samples(N))
    csv = tmp_path / "in.csv"
    windows, expect = N, ""
    if case == "shifted":
        x = x + np.float32([0, 0, 10 * spec.ref_std[2]])
        expect = f"the site mean of {names[2]}"
    elif case == "short":
        x = x[:500]
        expect = "pass --windows 7 or less"
    elif case == "labelled":
        labels = np.zeros(len(x))
        labels[300] = 1
        write_csv(csv, x, names, labels)
        expect = "labels 1 of the 1056 calibration samples as anomalous (first at row 300)"
    elif case == "channels":
        x = x[:, :2]
        names = names[:2]
        expect = "the model reads acc_x, acc_y, acc_z"
    elif case == "windows":
        windows = spec.windows + 1
        expect = f"(1 to {spec.windows}, calibration.windows)"
    if case == "missing":
        csv = tmp_path / "none.csv"
        expect = "none.csv"
    elif case != "labelled":
        write_csv(csv, x, names)
    code = tinyae(["calibrate", "--model-dir", str(model_dir), "--csv", str(csv), "--windows", str(windows)])
    assert code == 2
    assert expect in one_sentence(capsys)


def test_device_side_user_errors(model, sim, tmp_path, capsys):
    model_dir, m, spec = model
    port, dev = sim
    base = ["device", "calibrate", "--port", port, "--model-dir", str(model_dir)]
    assert tinyae([*base, "--record", str(tmp_path / "none.bin")]) == 2
    assert "does not exist" in one_sentence(capsys)
    (tmp_path / "junk.bin").write_bytes(b"not a record")
    assert tinyae([*base, "--record", str(tmp_path / "junk.bin")]) == 2
    assert "is not a tinyae calibration record" in one_sentence(capsys)
    # a record of another model: refused before it reaches the device
    x = normal_stretch(model_dir, spec.total_samples(N))
    csv = write_csv(tmp_path / "s.csv", x, m["window"]["channel_names"])
    assert tinyae(["calibrate", "--model-dir", str(model_dir), "--csv", str(csv), "--windows", str(N),
                       "--out", str(tmp_path / "r.bin")]) == 0  # fmt: skip
    rec = Record.from_bytes((tmp_path / "r.bin").read_bytes())
    other = Record(**{**rec.__dict__, "model_sha256": bytes(32)}).to_bytes()
    (tmp_path / "other.bin").write_bytes(other)
    capsys.readouterr()
    assert tinyae([*base, "--record", str(tmp_path / "other.bin")]) == 2
    assert "cannot be used by this model's firmware (other model)" in one_sentence(capsys)
    assert tinyae([*base, "--windows", str(spec.windows + 1), "--csv", str(tmp_path / "s.csv")]) == 2
    assert "outside what" in one_sentence(capsys)
    assert dev.store is None
