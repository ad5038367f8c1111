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

N = 99  # windows per phase these tests calibrate with: between the default model's minimum and its 128


@pytest.fixture(scope="module")
def model(default_model_dir) -> tuple[Path, dict, CalibSpec]:
    m = json.loads((default_model_dir / "manifest.json").read_text())
    spec = Manifest.from_dict(m).calib_spec()
    # the default threshold (mad) is mean + k std on site, its minimum measured on the factory's scores
    assert spec.method == "mean_std" and spec.scores_windows == spec.min_windows
    assert 2 <= spec.min_windows < N < spec.windows
    return default_model_dir, m, spec


@pytest.fixture
def sim(model):  # type: ignore[no-untyped-def]
    """sim://?model=DIR with empty storage before and after (the simulated device is process-wide)."""
    from tinyae.tools.simdevice.port import _sim_for

    dev = _sim_for(model[0])
    dev.store_fail(0)
    dev.store = None
    yield f"sim://?model={model[0]}", dev
    dev.store = None


def normal_stretch(model_dir: Path, n: int, start: int = 0) -> np.ndarray:
    """n samples of the default machine in normal operation (train/data/synthetic.py), from `start`."""
    from tinyae.train.data.synthetic import generate

    return generate(0, start + n)[0][start:].astype(np.float32)


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


@pytest.mark.parametrize(
    "case",
    [
        "shifted",
        "short",
        "short of N",
        "shorter",
        "few",
        "labelled",
        "channels",
        "renamed",
        "windows",
        "missing",
    ],
)
def test_offline_calibration_user_errors(model, tmp_path, capsys, case):
    model_dir, m, spec = model
    names = m["window"]["channel_names"]
    x = normal_stretch(model_dir, spec.total_samples(N))
    csv = tmp_path / "in.csv"
    windows, expect = N, ""
    if case == "shifted":
        x = x + np.float32([0, 0, 10 * spec.ref_std[2]])
        expect = f"the site mean of {names[2]}"
    elif case == "short":  # shorter than the minimum
        windows = spec.min_windows
        x = x[: spec.total_samples(windows) - 1]
        expect = (
            f"needs {spec.total_samples(windows)} (2 phase(s) of {windows} windows of 64 samples, hop 32); "
            "record a longer stretch of normal "
        )
    elif case == "short of N":
        x = x[: spec.total_samples(N) - 1]
        expect = f"needs {spec.total_samples(N)} (2 phase(s) of {N} windows of 64 samples, hop 32); pass --windows 98"
    elif case == "shorter":
        windows = 110
        expect = "pass --windows 99 or less"
    elif case == "few":
        windows = spec.min_windows - 1
        expect = f"--windows {windows} is too few: a calibration needs at least {spec.min_windows} windows per phase"
    elif case == "labelled":
        labels = np.zeros(len(x))
        labels[300] = 1
        write_csv(csv, x, names, labels)
        expect = (
            f"labels 1 of the {spec.total_samples(N)} calibration samples as anomalous (the first at row 302)"
        )
    elif case == "channels":
        x = x[:, :2]
        names = names[:2]
        expect = "has no column 'acc_z'"
    elif case == "renamed":  # by name, as `device stream` and `verify` read it; never by position
        names = ["temperature", "humidity", "pressure"]
        expect = "has no column 'acc_x', 'acc_y', 'acc_z'"
    elif case == "windows":
        windows = spec.windows + 1
        expect = f"({spec.min_windows} to {spec.windows}, calibration.windows)"
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
    # its threshold edited within the bounds, CRC recomputed: not the mean + k std of its own scores
    forged = Record(**{**rec.__dict__, "threshold": float(np.float32(spec.threshold_max * 0.95))}).to_bytes()
    (tmp_path / "forged.bin").write_bytes(forged)
    assert tinyae([*base, "--record", str(tmp_path / "forged.bin")]) == 2
    assert "forged.bin cannot be used by this model's firmware (bounds)" in one_sentence(capsys)
    assert tinyae([*base, "--windows", str(spec.windows + 1), "--csv", str(tmp_path / "s.csv")]) == 2
    assert f"is more than {port}'s firmware can calibrate with" in one_sentence(capsys)
    few = spec.min_windows - 1
    assert tinyae([*base, "--windows", str(few), "--csv", str(tmp_path / "s.csv")]) == 2
    assert (
        f"--windows {few} is too few: a calibration needs at least {spec.min_windows} windows per phase"
        in (one_sentence(capsys))
    )
    assert dev.store is None


def tail_fault(
    n: int, fault_samples: int = 256, kind: str = "looseness", severity: float | None = None
) -> np.ndarray:
    """n samples of normal operation whose last `fault_samples` are a fault (default: subtle)."""
    from tinyae.train.data.synthetic import FAULT_KINDS, SEVERITY, generate

    f = np.zeros(n, np.int8)
    sev = np.zeros(n, np.float32)
    f[-fault_samples:] = FAULT_KINDS.index(kind)
    sev[-fault_samples:] = SEVERITY[kind][0] if severity is None else severity
    return generate(0, n, fault=f, severity=sev)[0].astype(np.float32)


def scaled(x: np.ndarray, channel: int, factor: float) -> np.ndarray:
    y = x.copy()
    m = y[:, channel].mean()
    y[:, channel] = (y[:, channel] - m) * np.float32(factor) + m
    return y


def with_nan(x: np.ndarray, row: int, channel: int) -> np.ndarray:
    return glitch(x, row, channel, np.nan)


def glitch(x: np.ndarray, row: int, channel: int, value: float) -> np.ndarray:
    y = x.copy()
    y[row, channel] = value
    return y


REFUSED = {
    # case: (data, the outcome, what the sentence says)
    "tail fault": (
        # between subtle and obvious: the default threshold (mad) sits above most windows of a subtle
        # fault, and an obvious one raises mean + k std beyond its bound first (threshold_high)
        lambda spec: tail_fault(spec.total_samples(N), kind="imbalance", severity=0.64),
        "anomalous_stretch",
        r"\d+ of the 99 scored calibration windows score above the factory threshold 0\.\d+: \d of them "
        r"within windows \d+-197 \(samples \d+-6367 of .*\); \d of 8 consecutive windows above it make a "
        r"stretch the model calls anomalous .* keep only the first \d+ samples",
    ),
    "acc_x spread x3": (
        lambda spec: scaled(normal_stretch(None, spec.total_samples(N)), 0, 3.0),
        "scale",
        r"the spread of acc_x on site is 3\.\d+ x the training spread, outside \[0\.5, 2\]",
    ),
    "acc_y spread x3, acc_z shifted": (
        lambda spec: (
            scaled(normal_stretch(None, spec.total_samples(N)), 1, 3.0)
            + np.float32([0, 0, 5 * spec.ref_std[2]])
        ),
        "scale",
        r"the spread of acc_y on site is 3\.\d+ .*; also acc_z: mean out of bounds",
    ),
    "acc_x shifted": (
        lambda spec: normal_stretch(None, spec.total_samples(N)) + np.float32([5 * spec.ref_std[0], 0, 0]),
        "shift",
        r"the site mean of acc_x is ",
    ),
    # data in mg, not g: the device's float32 statistics are a thousand times the training's, and the
    # cross-check's tolerance scales with them (the sentence is the real cause, not "report this")
    "in mg, not g": (
        lambda spec: normal_stretch(None, spec.total_samples(N)) * np.float32(1000.0),
        "shift",
        r"the site mean of acc_x is .*; also acc_y: mean out of bounds, acc_z: mean out of bounds",
    ),
    # one finite glitch whose square overflows float32: the device's M2 is infinite, float64's is not
    "acc_z glitch 2.5e20": (
        lambda spec: glitch(normal_stretch(None, spec.total_samples(N)), 500, 2, 2.5e20),
        "not_finite",
        r"values so far from the training mean \(about 1e19 or more\) that the device's float32 statistics "
        r"overflow \(acc_z\)",
    ),
    "acc_y NaN": (
        lambda spec: with_nan(normal_stretch(None, spec.total_samples(N)), 777, 1),
        None,  # the CSV reader refuses it first (a device's own sensor: tests/test_calib_refusals.py)
        r"row 779, column 'acc_y' is 'nan' \(NaN or infinite\); fill or remove the missing values",
    ),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_every_refusal_is_one_sentence_on_the_host_mirror_and_the_device_alike(
    model, sim, tmp_path, capsys, case
):
    """The same refusal, the same sentence naming its cause, from `tinyae calibrate` (the host mirror) and
    `tinyae device calibrate` (the simulated device: tae_app.c and tae_calib.c), exit 2, never the
    mirror-disagrees error; nothing stored."""
    import re

    model_dir, m, spec = model
    port, dev = sim
    make, outcome, pattern = REFUSED[case]
    x = make(spec)
    csv = write_csv(tmp_path / "site.csv", x, m["window"]["channel_names"])
    host_json = tmp_path / "host.json"
    assert (
        tinyae(["calibrate", "--model-dir", str(model_dir), "--csv", str(csv), "--json", str(host_json)]) == 2
    )
    host = one_sentence(capsys)
    assert re.search(pattern, host), host
    if outcome is not None:
        h = json.loads(host_json.read_text())
        assert h["outcome"] == outcome and h["numpy_cross_check"]["ok"] and h["refusal"] in host
    dev_json = tmp_path / "dev.json"
    code = tinyae(["device", "calibrate", "--port", port, "--model-dir", str(model_dir), "--csv", str(csv),
                   "--json", str(dev_json), "--quiet"])  # fmt: skip
    device = one_sentence(capsys)
    assert code == 2 and device.split(": ", 1)[1].replace(str(csv), "X") == host.split(": ", 1)[1].replace(
        str(csv), "X"
    )
    if outcome is not None:
        d = json.loads(dev_json.read_text())
        assert d["ok"] and d["record_equal"] and d["outcome"] == outcome and d["mirror"]["outcome"] == outcome
    assert dev.store is None


def test_a_normal_recording_is_calibrated_at_the_default_windows(model, tmp_path, capsys):
    model_dir, m, spec = model
    csv = write_csv(tmp_path / "n.csv", normal_stretch(None, spec.total_samples(spec.windows), 36000),
                    m["window"]["channel_names"])  # fmt: skip
    out = tmp_path / "r.json"
    rec = tmp_path / "r.bin"  # not into the shared model directory
    assert tinyae(["calibrate", "--model-dir", str(model_dir), "--csv", str(csv), "--json", str(out),
                   "--out", str(rec)]) == 0  # fmt: skip
    r = json.loads(out.read_text())
    assert r["windows"] == spec.windows and r["record"]["densest_stretch_over"] < spec.stretch_k


def test_a_normal_recording_is_calibrated_at_the_models_minimum(model, sim, tmp_path, capsys):
    """The fewest windows the model allows calibrate normal data on the host mirror and the device alike."""
    model_dir, m, spec = model
    port, dev = sim
    n = spec.min_windows
    csv = write_csv(tmp_path / "n.csv", normal_stretch(None, spec.total_samples(n), 9000) + SITE,
                    m["window"]["channel_names"])  # fmt: skip
    rec_file = tmp_path / "r.bin"
    assert tinyae(["calibrate", "--model-dir", str(model_dir), "--csv", str(csv), "--windows", str(n),
                   "--out", str(rec_file)]) == 0  # fmt: skip
    code = tinyae(["device", "calibrate", "--port", port, "--model-dir", str(model_dir), "--csv", str(csv),
                   "--windows", str(n), "--quiet"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert dev.store == rec_file.read_bytes() and Record.from_bytes(dev.store).windows == n


def test_columns_are_matched_by_name_or_given(model, tmp_path, capsys):
    """A file with the model's channels in another order is reordered by name; other names are refused
    (above) unless --channels names the columns."""
    model_dir, m, spec = model
    x = normal_stretch(None, spec.total_samples(N))
    names = m["window"]["channel_names"]
    base = ["calibrate", "--model-dir", str(model_dir), "--windows", str(N)]
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    assert tinyae([*base, "--csv", str(write_csv(tmp_path / "in.csv", x, names)), "--out", str(a)]) == 0
    shuffled = write_csv(tmp_path / "shuffled.csv", x[:, [2, 0, 1]], [names[2], names[0], names[1]])
    assert tinyae([*base, "--csv", str(shuffled), "--out", str(b)]) == 0
    assert a.read_bytes() == b.read_bytes()
    renamed = write_csv(tmp_path / "renamed.csv", x, ["temperature", "humidity", "pressure"])
    c = tmp_path / "c.bin"
    assert tinyae([*base, "--csv", str(renamed), "--channels", "temperature,humidity,pressure",
                   "--out", str(c)]) == 0  # fmt: skip
    assert c.read_bytes() == a.read_bytes()
