"""Issue 15 on the host tool's side: data meets a model with the model's settings (fault 7: the
manifest's `data` section applied by stream/verify --csv, a different rate refused), verify says
lost rather than disagreed and checks subsets (--max-windows, --every), and a command that produced
nothing does not exit 0 (record at a rate that yields no sample, --realtime without a rate)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from tinyae.cli import main as tinyae
from tinyae.errors import UserError
from tinyae.tools.link import protocol as p
from tinyae.tools.link.device import Device, windows_for
from tinyae.tools.simdevice.port import sim_model_dir, sim_series
from tinyae.tools.simdevice.vectors import CONFIG
from tinyae.train import config

N = 1600
L, H = 32, 16


def machine_csv(path: Path, *, step_ms: int = 10, order: tuple[str, ...] | None = None) -> Path:
    """A logger's file: whole-ms timestamps, three axes, a temperature and a string state."""
    rng = np.random.default_rng(0)
    t = np.arange(N) * step_ms
    ph = np.arange(N) / 100.0
    cols = {
        "timestamp": [str(v) for v in t],
        "accX": [f"{v:.5f}" for v in np.sin(2 * np.pi * 8 * ph) + 0.1 * rng.normal(size=N)],
        "accY": [f"{v:.5f}" for v in np.cos(2 * np.pi * 13 * ph) + 0.1 * rng.normal(size=N)],
        "accZ": [f"{v:.5f}" for v in 1 + 0.05 * rng.normal(size=N)],
        "temp": [f"{v:.2f}" for v in 31 + 0.01 * np.arange(N)],
        "state": ["fault" if 1400 <= i < 1450 else "ok" for i in range(N)],
    }
    cols["accX"][1400:1450] = [f"{3 + v:.5f}" for v in range(50)]
    names = list(order or cols)
    rows = [",".join(names)] + [",".join(cols[c][i] for c in names) for i in range(N)]
    path.write_text("\n".join(rows) + "\n")
    return path


FIXTURE_MARKS = {"trained": ("training",)}  # tests/lanes.py: its users are in the training lane


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from tinyae.train.pipeline import run

    d = tmp_path_factory.mktemp("cli_data")
    data = machine_csv(d / "machine.csv")
    cfg = config.load(
        None,
        [
            "data.source=csv",
            f"data.paths=['{data}']",
            "data.channels=accX,accY,accZ",
            "data.timestamp=timestamp",
            "data.timestamp_unit=ms",
            "data.label=state",
            "data.normal=ok",
            f"window.length={L}",
            f"window.hop={H}",
            "train.epochs=2",
        ],
    )
    run(cfg, d / "model", "test", show_progress=False)
    return d, data


def test_the_manifest_carries_the_data_settings(trained):
    d, _ = trained
    m = json.loads((d / "model" / "manifest.json").read_text())
    data = m["data"]
    assert data["channels"] == ["accX", "accY", "accZ"] and data["channels_selected_by"] == "data.channels"
    assert data["timestamp"] == {"column": "timestamp", "unit": "ms", "format": ""}
    assert data["label"]["column"] == "state" and data["label"]["said"] and data["label"]["normal"] == ["ok"]
    # the classes a file read with the model's meaning may hold
    assert data["label"]["anomalous"] == ["fault"]
    assert m["window"]["sample_rate_hz"] == pytest.approx(100.0)
    assert data["sample_rate_origin"] == "timestamp column 'timestamp' in ms (data.timestamp_unit)"
    assert "TAE_SAMPLE_RATE_HZ 100.0f" in (d / "model" / "model_config.h").read_text()


def _verify(model: Path, tmp_path: Path, *extra: str) -> tuple[int, dict]:
    out = tmp_path / "v.json"
    code = tinyae(["device", "verify", "--port", f"sim://?model={model}", "--model-dir", str(model), "--json", str(out),
                 "--quiet", *extra])  # fmt: skip
    return code, json.loads(out.read_text()) if out.is_file() else {}


def test_verify_csv_reads_the_training_file_with_the_model_settings(trained, tmp_path):
    """Fault 7: the file the model was trained on (string labels, extra columns) verifies."""
    d, data = trained
    code, r = _verify(d / "model", tmp_path, "--csv", str(data))
    assert code == 0 and r["ok"], r
    assert r["windows_compared"] == windows_for(N, L, H)
    c = r["confusion"]
    assert c["tp"] + c["fn"] == sum(
        1 for w in range(windows_for(N, L, H)) if w * H + L > 1400 and w * H < 1450
    )


def test_stream_csv_matches_columns_by_name_whatever_their_order(trained, tmp_path):
    d, data = trained
    shuffled = machine_csv(
        tmp_path / "shuffled.csv", order=("state", "accZ", "temp", "accX", "timestamp", "accY")
    )
    scores = []
    for f in (data, shuffled):
        out = tmp_path / f"{f.stem}.out.csv"
        args = [
            "device",
            "stream",
            "--port",
            f"sim://?model={d / 'model'}",
            "--model-dir",
            str(d / "model"),
            "--csv",
            str(f),
        ]
        assert tinyae([*args, "--out", str(out), "--quiet"]) == 0
        with out.open() as fh:
            scores.append([float(row["score"]) for row in csv.DictReader(fh)])
    assert scores[0] == scores[1] and len(scores[0]) == windows_for(N, L, H)


@pytest.mark.parametrize("command", ["stream", "verify"])
def test_a_file_at_another_rate_is_refused(trained, tmp_path, capsys, command):
    d, _ = trained
    slow = machine_csv(tmp_path / "slow.csv", step_ms=20)
    code = tinyae(["device", command, "--port", f"sim://?model={d / 'model'}", "--model-dir", str(d / "model"),
                 "--csv", str(slow), "--quiet"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    # the model's ms is not assumed for the file's column: no unit gives 100 Hz, each reading is named
    assert (
        "slow.csv steps by 20: that is 0.05 Hz in seconds, 50 Hz in milliseconds or 50000 Hz in microseconds, "
        "none of them the model's 100 Hz; resample the file to 100 Hz" in err
    ), err
    assert err.count("error:") == 1 and "Traceback" not in err


def _retimed(src: Path, dst: Path, name: str, per_ms: float) -> Path:
    """src with its timestamp column renamed and given in another unit (per_ms of it per millisecond)."""
    lines = src.read_text().splitlines()
    head = lines[0].split(",")
    i = head.index("timestamp")
    head[i] = name
    rows = [head]
    for line in lines[1:]:
        cells = line.split(",")
        cells[i] = f"{float(cells[i]) * per_ms:g}"
        rows.append(cells)
    dst.write_text("\n".join(",".join(r) for r in rows) + "\n")
    return dst


@pytest.mark.parametrize(
    ("name", "per_ms"),
    [("time_s", 0.001), ("time_us", 1000.0), ("timestamp", 1000.0)],  # the name's unit; the model's rate's
)
def test_a_file_in_another_timestamp_unit_streams_at_its_own_rate(trained, tmp_path, name, per_ms):
    """The model was trained on a `timestamp` column in ms (data.timestamp_unit); a file whose column says
    its unit by name, or whose unit only the model's rate tells (microseconds at 100 Hz), gives the same
    scores: the model's unit decides only what the file leaves open (before, a `time_s` file was read in
    ms, "sampled at 0.1 Hz", and refused)."""
    d, data = trained
    scores = []
    for f in (data, _retimed(data, tmp_path / f"{name}.csv", name, per_ms)):
        out = tmp_path / f"{f.stem}.out.csv"
        assert tinyae(["device", "stream", "--port", f"sim://?model={d / 'model'}", "--model-dir",
                       str(d / "model"), "--csv", str(f), "--out", str(out), "--quiet"]) == 0  # fmt: skip
        with out.open() as fh:
            scores.append([float(row["score"]) for row in csv.DictReader(fh)])
    assert scores[0] == scores[1] and len(scores[0]) == windows_for(N, L, H)


def test_a_file_in_no_unit_that_gives_the_models_rate_is_refused_with_its_rate_in_each(
    trained, tmp_path, capsys
):
    d, _ = trained
    slow = _retimed(machine_csv(tmp_path / "slow.csv", step_ms=20), tmp_path / "slow_s.csv", "t", 0.001)
    code = tinyae(["device", "stream", "--port", f"sim://?model={d / 'model'}", "--model-dir", str(d / "model"),
                   "--csv", str(slow), "--quiet"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.count("error:") == 1 and "Traceback" not in err
    assert "column 't' of " in err and (
        "slow_s.csv steps by 0.02: that is 50 Hz in seconds, 50000 Hz in milliseconds or 5e+07 Hz in "
        "microseconds, none of them the model's 100 Hz; resample the file to 100 Hz" in err
    ), err


# ---------------------------------------------------------------------------- verify's words and subsets
@pytest.fixture
def sim_dir(tmp_path: Path) -> Path:
    return sim_model_dir(tmp_path / "model", sim_series(200))


def _sim_verify(model_dir: Path, tmp_path: Path, *extra: str) -> tuple[int, dict]:
    out = tmp_path / "verify.json"
    code = tinyae(["device", "verify", "--port", extra[0] if extra and extra[0].startswith("sim") else "sim://",
                 "--model-dir", str(model_dir), "--json", str(out), "--quiet",
                 *[e for e in extra if not e.startswith("sim")]])  # fmt: skip
    return code, json.loads(out.read_text())


def test_a_lost_window_is_said_to_be_lost_not_a_disagreement(sim_dir, tmp_path, capsys):
    code, r = _sim_verify(sim_dir, tmp_path, "sim://?corrupt_rx=8", "--retries", "0")
    err = capsys.readouterr().err
    assert code == 1 and len(r["lost_windows"]) == 1 and r["output_mismatches"] == 0
    assert "1 window(s) were lost on the link and not compared" in err
    assert "agree with the host reference bit for bit" in err and "disagree" not in err


def test_verify_a_subset_of_a_long_stream(sim_dir, tmp_path, capsys):
    n = windows_for(200, CONFIG["window_len"], CONFIG["hop"])
    code, r = _sim_verify(sim_dir, tmp_path, "--max-windows", "3")
    assert code == 0 and r["ok"] and r["windows_compared"] == 3 == r["windows_expected"]
    assert r["subset"]["windows_in_data"] == n
    assert "cannot fire" not in capsys.readouterr().err
    code, r = _sim_verify(sim_dir, tmp_path, "--every", "2")
    assert code == 0 and r["ok"] and r["windows_compared"] == len(range(0, n, 2))
    # the model alarms on 2 of 3 windows: windows sent on their own can never raise one, and the terminal
    # says so (not only the JSON), since the confusion of alarms then reads as a detector that never fires
    assert (
        "note: with --every 2 each window is sent on its own, so the alarm rule (2 of 3 windows) cannot fire"
        in " ".join(capsys.readouterr().err.split())
    )
    code, r = _sim_verify(sim_dir, tmp_path, "--every", "3", "--max-windows", "2")
    assert code == 0 and r["windows_compared"] == 2


def test_verify_every_reports_windows_by_their_number_in_the_series(sim_dir, tmp_path, monkeypatch):
    from tinyae.tools.commands import verify as verify_cmd
    from tinyae.tools.testing.simstub import SimStubReference

    class Off:  # the host reference is off by one LSB on the 4th piece's window
        calls = 0

        def __init__(self, manifest):
            self.inner = SimStubReference(manifest)

        def evaluate(self, windows):
            r = self.inner.evaluate(windows)
            if Off.calls == 3:
                r.output_q[0, 5] = np.int8(r.output_q[0, 5] + 1 if r.output_q[0, 5] < 127 else 126)
            Off.calls += 1
            return r

    monkeypatch.setattr(verify_cmd, "make_reference", lambda art, info: Off(art.require()))
    code, r = _sim_verify(sim_dir, tmp_path, "--every", "2")
    assert code == 1 and r["first_output_mismatches"][0]["window"] == 6  # piece 3 = window 3 * 2


def test_record_that_gets_no_sample_does_not_exit_0(tmp_path, capsys):
    out = tmp_path / "none.csv"
    code = tinyae(
        [
            "device",
            "record",
            "--port",
            "sim://?sensor_rate=0.5",
            "--duration",
            "0.3",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and "no sample arrived" in err
    assert json.loads((tmp_path / "none.csv.json").read_text())["samples"] == 0


def test_a_device_without_a_sample_rate_is_refused_where_it_matters(sim_dir, tmp_path, capsys, monkeypatch):
    real = Device.handshake

    def no_rate(self):  # type: ignore[no-untyped-def]
        info = real(self)
        self.info = p.Info(**{**info.__dict__, "sample_rate_hz": 0.0})
        return self.info

    monkeypatch.setattr(Device, "handshake", no_rate)
    assert (
        tinyae(
            [
                "device",
                "record",
                "--port",
                "sim://",
                "--samples",
                "10",
                "--out",
                str(tmp_path / "r.csv"),
                "--quiet",
            ]
        )
        == 2
    )
    assert "sample rate of 0 Hz" in capsys.readouterr().err
    code = tinyae(
        ["device", "stream", "--port", "sim://", "--model-dir", str(sim_dir), "--realtime", "--quiet"]
    )
    assert code == 2 and "--realtime needs the model's sample rate" in capsys.readouterr().err


def test_monitor_that_gets_no_sample_does_not_exit_0(sim_dir, capsys):
    port = "sim://?sensor_rate=0.5"
    code = tinyae(
        ["device", "monitor", "--port", port, "--model-dir", str(sim_dir), "--duration", "0.3", "--quiet"]
    )
    assert code == 1 and "no sample arrived" in capsys.readouterr().err


def test_a_csv_shorter_than_a_window_is_refused_not_streamed_to_nothing(sim_dir, tmp_path, capsys):
    short = tmp_path / "short.csv"
    short.write_text("ch0,ch1,ch2\n" + "".join(f"{i},{i},{i}\n" for i in range(5)))
    for command, extra in (("stream", []), ("verify", [])):
        code = tinyae(
            [
                "device",
                command,
                "--port",
                "sim://",
                "--model-dir",
                str(sim_dir),
                "--csv",
                str(short),
                "--quiet",
                *extra,
            ]
        )
        err = capsys.readouterr().err
        assert code == 2 and "fewer than one window" in err and "nothing would be computed" in err


def test_labels_outside_the_models_classes_are_refused_not_read_as_anomalous(sim_dir, tmp_path, capsys):
    """Audit D1: a 1 = normal, -1 = fault column read with a 0/1 model made every window anomalous (a wrong
    confusion matrix, PASS); stream, verify and calibrate refuse it in one sentence, --normal reads it."""
    m = json.loads((sim_dir / "manifest.json").read_text())
    m["data"]["label"] = {"column": "label", "normal": ["0.0"], "said": True, "meaning": "0 = normal, 1 = a fault",
                          "anomalous": ["1.0"]}  # fmt: skip
    (sim_dir / "manifest.json").write_text(json.dumps(m))
    x = sim_series(200)
    names = m["window"]["channel_names"]
    path = tmp_path / "pm1.csv"
    path.write_text(",".join([*names, "label"]) + "\n" + "".join(
        ",".join([*(f"{v:.6f}" for v in row), "-1" if 100 <= i < 112 else "1"]) + "\n" for i, row in enumerate(x)
    ))  # fmt: skip
    said = "has label value -1 that the model's classes (0 = normal, 1 = anomalous) do not include"
    for command in ("verify", "stream"):
        code = tinyae(["device", command, "--port", "sim://", "--model-dir", str(sim_dir), "--csv", str(path),
                       "--quiet"])  # fmt: skip
        err = capsys.readouterr().err
        assert code == 2 and err.count("error:") == 1 and "Traceback" not in err, (command, err)
        assert said in err, err
    # calibrate (tinyae calibrate, device calibrate --csv) reads its recording the same way: its refusal is
    # this sentence, not "labels N of the calibration samples as anomalous"
    from tinyae.train.calibration.command import recording
    from tinyae.train.manifest import Manifest

    with pytest.raises(UserError, match=said.replace("(", r"\(").replace(")", r"\)")):
        recording(str(path), Manifest.load(sim_dir / "manifest.json"))
    code, r = _sim_verify(sim_dir, tmp_path, "--csv", str(path), "--normal", "1")
    assert code == 0 and r["confusion"]["tn"] > 0 and r["confusion"]["tp"] + r["confusion"]["fn"] > 0, r


# ---------------------------------------------------------------------------- inputs at the int8 rails
def _saturation_model(tmp_path: Path) -> tuple[Path, list[str]]:
    """The simulated device's model with test vectors holding int8 inputs and window labels, as a trained
    model's do (the limit comes from them: tools/commands/saturation.py)."""
    from tinyae.train.data import make_windows
    from tinyae.train.manifest import Manifest
    from tinyae.train.reference import Preprocessing

    series = sim_series(400)
    model = sim_model_dir(tmp_path / "model", series)
    m = Manifest.load(model / "manifest.json")
    L, hop = m.window.length, m.window.hop
    windows = make_windows(series, L, hop)
    labels = np.array([int(w * hop + L > 200 and w * hop < 212) for w in range(len(windows))], np.int8)
    with np.load(model / "test_vectors.npz") as z:
        kept = dict(z)
    np.savez(
        model / "test_vectors.npz",
        **kept,
        input_q=Preprocessing.of_manifest(m).quantize(windows),
        labels=labels,
    )
    return model, list(m.window.channel_names)


def _csv(path: Path, names: list[str], x: np.ndarray) -> Path:
    path.write_text(",".join(names) + "\n" + "".join(",".join(f"{v:.6g}" for v in row) + "\n" for row in x))
    return path


def test_inputs_far_outside_the_training_range_are_named(tmp_path, capsys):
    """Audit D5: data in m/s^2 for a model trained in g put ~90 % of the int8 inputs at -128/127, every
    window alarmed, and stream and verify said nothing. Now one warning names the share, the channel and
    the likely cause; verify's --json carries the counts; the model's own data do not warn."""
    model, names = _saturation_model(tmp_path)
    x = sim_series(400, seed=1)
    x[:, 0] *= 50.0  # one channel in another unit
    scaled = _csv(tmp_path / "scaled.csv", names, x)
    port = ["--port", "sim://", "--model-dir", str(model), "--quiet"]
    assert tinyae(["device", "stream", *port, "--csv", str(scaled)]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert (
        err.count("warning:") == 1 and "of the int8 inputs" in err and "sit at the rails -128/127" in err
    ), err
    assert (
        f"most on channel(s) '{names[0]}'" in err
        and "other units, scale or offset than the training data" in err
    )
    out = tmp_path / "v.json"
    assert tinyae(["device", "verify", *port, "--csv", str(scaled), "--json", str(out)]) == 0
    sat = json.loads(out.read_text())["input_saturation"]
    assert sat["large"] and sat["share"] > sat["limit"] and sat["by_channel"][names[0]] > sat["limit"], sat
    assert sat["at_rails"] > 0 and sat["inputs"] == json.loads(out.read_text())["input_elements"]
    assert "warning:" in capsys.readouterr().err
    # the model's own data (its test split, and a recording like it) stay quiet
    for extra in ([], ["--csv", str(_csv(tmp_path / "same.csv", names, sim_series(400, seed=1)))]):
        assert tinyae(["device", "verify", *port, "--json", str(out), *extra]) == 0
        assert "warning:" not in capsys.readouterr().err
        sat = json.loads(out.read_text())["input_saturation"]
        assert not sat["large"] and sat["share"] <= sat["limit"], sat


def test_a_channel_flat_for_the_whole_stream_is_named(tmp_path, capsys):
    """Audit D6: a sensor stuck at one value (at the training mean it scores as normal) went unsaid."""
    model, names = _saturation_model(tmp_path)
    x = sim_series(400, seed=2)
    x[:, 1] = CONFIG["norm_offset"][1]  # stuck at the training mean
    stuck = _csv(tmp_path / "stuck.csv", names, x)
    port = ["--port", "sim://", "--model-dir", str(model), "--quiet"]
    assert tinyae(["device", "stream", *port, "--csv", str(stuck)]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert err.count("warning:") == 1, err
    assert (
        f"channel '{names[1]}' (" in err
        and "holds one value in all 400 samples sent, 0 x the training spread" in err
    )
    assert "a dead, stuck or disconnected sensor" in err and "(the other channels still count)" in err
    out = tmp_path / "v.json"
    assert tinyae(["device", "verify", *port, "--csv", str(stuck), "--json", str(out)]) == 0
    assert list(json.loads(out.read_text())["flat_channels"]) == [names[1]]
    assert "holds one value" in capsys.readouterr().err
    assert tinyae(["device", "verify", *port, "--json", str(out)]) == 0  # the test split: every channel moves
    assert json.loads(out.read_text())["flat_channels"] == {} and "warning:" not in capsys.readouterr().err
