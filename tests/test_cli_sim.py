"""The host CLI end to end against the simulated device (sim://: the real tae_app.c in-process):
info, stream, verify, record, monitor, ports and every error case, each with one clear sentence."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
import serial
from terminaltext import last_column

from tinyae.cli import main as tinyae
from tinyae.errors import UserError
from tinyae.tools.commands import ports as ports_cmd
from tinyae.tools.commands import verify as verify_cmd
from tinyae.tools.link import protocol as p
from tinyae.tools.link.device import Device, open_port, windows_for
from tinyae.tools.simdevice.port import default_sensor, sim_manifest, sim_model_dir, sim_series
from tinyae.tools.simdevice.vectors import CONFIG
from tinyae.tools.testing.simstub import SimStubReference
from tinyae.train import preprocess
from tinyae.train.data import load_csv, make_windows

L, H, C = CONFIG["window_len"], CONFIG["hop"], CONFIG["channels"]
N_SAMPLES = 600
N_WINDOWS = windows_for(N_SAMPLES, L, H)
# Link faults mid-stream: past the first window of batches in flight (p.HOST_WINDOW bytes), so that the
# host has read results before the fault (the simulated device drops what it had not delivered yet).
RESET_AT = p.HOST_WINDOW + 1500
STALL_AT = p.HOST_WINDOW + 1200


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    return sim_model_dir(tmp_path / "model", sim_series(N_SAMPLES))


def run(*argv: str) -> int:
    """`tinyae device ARGV` (`tinyae ports` for ports)."""
    return tinyae([*argv] if argv[0] == "ports" else ["device", *argv])


def reference_scores(series: np.ndarray) -> np.ndarray:
    return SimStubReference(sim_manifest()).evaluate(make_windows(series, L, H)).scores


# ---------------------------------------------------------------------------- info
def test_info_shows_handshake_and_model_match(model_dir, tmp_path, capsys):
    out = tmp_path / "info.json"
    assert run("info", "--port", "sim://", "--model-dir", str(model_dir), "--json", str(out)) == 0
    text = capsys.readouterr().out
    # the table folds the 64-digit sha256 at a narrow terminal instead of cutting it: read it across lines
    assert CONFIG["model_sha256"] in last_column(text)
    assert "matches" in text and "sim-stub" in text
    info = json.loads(out.read_text())
    assert info["model_matches"] is True and info["model_sha256"] == CONFIG["model_sha256"]
    assert (info["window_len"], info["hop"], info["channels"]) == (L, H, C)
    assert info["flash_used"] == 23456 and info["cost_unit"] == "ticks"


def test_info_model_mismatch_names_both_sha_prefixes(model_dir, capsys):
    m = json.loads((model_dir / "manifest.json").read_text())
    m["model"]["sha256"] = "ab" * 32
    (model_dir / "manifest.json").write_text(json.dumps(m))
    assert run("info", "--port", "sim://", "--model-dir", str(model_dir)) == 2
    err = capsys.readouterr().err
    assert "000102030405" in err and "abababababab" in err and "flash the firmware" in err
    assert err.count("\n") == 1  # one sentence, no traceback


def test_info_without_local_artifacts_still_shows_the_device(tmp_path, capsys):
    assert run("info", "--port", "sim://", "--model-dir", str(tmp_path / "none")) == 0
    assert "no local artifacts" in capsys.readouterr().out


# ---------------------------------------------------------------------------- stream
@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_stream_writes_every_window_with_the_device_scores(model_dir, tmp_path, suffix):
    out = tmp_path / f"results{suffix}"
    assert run("stream", "--port", "sim://", "--model-dir", str(model_dir), "--out", str(out), "--quiet") == 0
    if suffix == ".csv":
        with out.open() as f:
            rows = list(csv.DictReader(f))
        scores = np.array([float(r["score"]) for r in rows], np.float32)
    else:
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        scores = np.array([r["score"] for r in rows], np.float32)
    assert [int(r["window"]) for r in rows] == list(range(N_WINDOWS))
    np.testing.assert_array_equal(scores, reference_scores(sim_series(N_SAMPLES)))


def _csv(path: Path, header: list[str], x: np.ndarray) -> Path:
    path.write_text(
        ",".join(header) + "\n" + "".join(",".join(repr(float(v)) for v in row) + "\n" for row in x)
    )
    return path


def _scores(out: Path) -> np.ndarray:
    with out.open() as f:
        return np.array([float(r["score"]) for r in csv.DictReader(f)], np.float32)


def test_stream_a_csv_and_refuse_a_wrong_channel_count(model_dir, tmp_path, capsys):
    x = sim_series(60, seed=3)
    good = _csv(tmp_path / "good.csv", ["ch0", "ch1", "ch2"], x)
    out = tmp_path / "r.csv"
    args = ("stream", "--port", "sim://", "--model-dir", str(model_dir), "--quiet")
    assert run(*args, "--csv", str(good), "--out", str(out)) == 0
    np.testing.assert_array_equal(_scores(out), reference_scores(x))
    bad = tmp_path / "bad.csv"
    bad.write_text("ch0,ch1\n1,2\n3,4\n")
    assert run(*args, "--csv", str(bad)) == 2
    err = capsys.readouterr().err
    assert (
        "has no column 'ch2'" in err and "channels are ch0, ch1, ch2" in err and "columns are ch0, ch1" in err
    )


@pytest.mark.parametrize("command", ["stream", "verify"])
def test_csv_columns_are_matched_to_the_model_by_name(model_dir, tmp_path, capsys, command):
    """Issue 15 fault 3: the model's channels in another column order give the same windows."""
    x = sim_series(80, seed=5)
    ordered = _csv(tmp_path / "ordered.csv", ["ch0", "ch1", "ch2"], x)
    shuffled = _csv(tmp_path / "shuffled.csv", ["ch2", "ch0", "ch1"], x[:, [2, 0, 1]])
    args = ("--port", "sim://", "--model-dir", str(model_dir), "--quiet")
    if command == "stream":
        a, b = tmp_path / "a.csv", tmp_path / "b.csv"
        assert run("stream", *args, "--csv", str(ordered), "--out", str(a)) == 0
        assert run("stream", *args, "--csv", str(shuffled), "--out", str(b)) == 0
        np.testing.assert_array_equal(_scores(a), _scores(b))
        np.testing.assert_array_equal(_scores(b), reference_scores(x))
    else:
        code, r = _verify(model_dir, tmp_path, "sim://", "--csv", str(shuffled))
        assert code == 0 and r["ok"] and r["windows_compared"] == windows_for(80, L, H)
    assert "reordered to the model's channel order" in capsys.readouterr().err
    unrelated = _csv(tmp_path / "unrelated.csv", ["x", "y", "z"], x)
    assert (
        run(
            command,
            *args,
            "--csv",
            str(unrelated),
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "has no column 'ch0', 'ch1', 'ch2' and has unknown columns 'x', 'y', 'z'" in err
    assert err.count("error:") == 1 and "Traceback" not in err
    # --channels names the file's columns for the model's channels, in the model's order
    out = tmp_path / "mapped.csv"
    if command == "stream":
        assert run("stream", *args, "--csv", str(unrelated), "--channels", "x,y,z", "--out", str(out)) == 0
        np.testing.assert_array_equal(_scores(out), reference_scores(x))


def test_stream_realtime_paces_at_the_sample_rate(model_dir, tmp_path):
    import time

    x = sim_series(50, seed=4)
    f = _csv(tmp_path / "rt.csv", ["ch0", "ch1", "ch2"], x)
    out = tmp_path / "rt_out.csv"
    t0 = time.monotonic()
    code = run("stream", "--port", "sim://", "--model-dir", str(model_dir), "--csv", str(f), "--realtime",
               "--out", str(out), "--quiet")  # fmt: skip
    assert code == 0
    assert time.monotonic() - t0 >= 0.9 * len(x) / CONFIG["sample_rate_hz"]  # 50 samples at 50 Hz
    assert len(out.read_text().splitlines()) == 1 + windows_for(len(x), L, H)


# ---------------------------------------------------------------------------- verify
def _verify(model_dir: Path, tmp_path: Path, port: str = "sim://", *extra: str) -> tuple[int, dict]:
    out = tmp_path / "verify.json"
    code = run(
        "verify", "--port", port, "--model-dir", str(model_dir),
        "--json", str(out), "--markdown", str(tmp_path / "verify.md"), "--quiet", *extra,
    )  # fmt: skip
    return code, json.loads(out.read_text())


def test_verify_passes_bit_exact_against_the_stub_reference(model_dir, tmp_path):
    code, r = _verify(model_dir, tmp_path)
    assert code == 0 and r["ok"]
    assert r["windows_compared"] == r["windows_expected"] == N_WINDOWS
    assert r["output_mismatches"] == 0 and r["input_mismatches"] == 0
    assert r["scores_exact_equal"] == N_WINDOWS
    assert r["cost"]["unit"] == "ticks" and r["cost"]["min"] >= 1000
    assert "PASS" in (tmp_path / "verify.md").read_text()


def test_verify_reports_mismatch_positions(model_dir, tmp_path, monkeypatch):
    class Off:
        def __init__(self, manifest):
            self.inner = SimStubReference(manifest)

        def evaluate(self, windows):
            r = self.inner.evaluate(windows)
            r.output_q[3, 5] = np.int8(r.output_q[3, 5] + 1 if r.output_q[3, 5] < 127 else 126)
            return r

    monkeypatch.setattr(verify_cmd, "make_reference", lambda art, info: Off(art.require()))
    code, r = _verify(model_dir, tmp_path)
    assert code == 1 and not r["ok"]
    assert r["output_mismatches"] == 1
    first = r["first_output_mismatches"][0]
    assert (first["window"], first["element"]) == (3, 5)
    assert r["output_bit_exact_windows"] == N_WINDOWS - 1
    assert r["output_max_abs_lsb"] == 1


def test_verify_uses_labels_for_a_confusion_matrix(tmp_path):
    x = sim_series(N_SAMPLES)
    labels = np.zeros(N_SAMPLES, np.int8)
    labels[100:112] = 1
    md = sim_model_dir(tmp_path / "m", x, labels)
    code, r = _verify(md, tmp_path)
    assert code == 0
    c = r["confusion"]
    assert c["tp"] + c["fp"] + c["fn"] + c["tn"] == N_WINDOWS
    assert c["tp"] + c["fn"] == int(np.sum(make_windows(labels[:, None], L, H).max(axis=(1, 2)) > 0))


def test_verify_reports_a_lost_window_by_number(model_dir, tmp_path, capsys):
    # device frames: 0 BOOT, 1 INFO, 2 ack(verify), 3 ack(reset), 4 result w0, 5 ack? -> corrupt frame 8
    code, r = _verify(model_dir, tmp_path, "sim://?corrupt_rx=8", "--retries", "0")
    assert code == 1 and not r["ok"]
    assert len(r["lost_windows"]) == 1
    assert r["windows_compared"] == N_WINDOWS - 1
    assert r["link"]["lost_frames"] == 1


def test_verify_recovers_a_lost_window_by_default(model_dir, tmp_path):
    code, r = _verify(model_dir, tmp_path, "sim://?corrupt_rx=8")
    assert code == 0 and r["ok"], r
    assert len(r["retried_windows"]) == 1 and not r["lost_windows"]
    assert r["windows_compared"] == N_WINDOWS


def test_verify_resumes_after_a_device_reset_by_default(model_dir, tmp_path):
    code, r = _verify(model_dir, tmp_path, f"sim://?reset_after={RESET_AT}")
    assert code == 0 and r["ok"], r
    assert r["link"]["device_resets"] == 1 and r["windows_compared"] == N_WINDOWS


def test_verify_survives_a_corrupted_host_frame_by_resending(model_dir, tmp_path):
    # host frames: 0 HELLO, 1 SET verify, 2 RESET, 3.. sample batches
    code, r = _verify(model_dir, tmp_path, "sim://?corrupt_tx=4")
    assert code == 0 and r["ok"], r
    assert r["link"]["retransmits"] >= 1


def test_verify_device_reset_midway_keeps_a_partial_report(model_dir, tmp_path, capsys):
    code, r = _verify(model_dir, tmp_path, f"sim://?reset_after={RESET_AT}", "--retries", "0")
    err = capsys.readouterr().err
    assert code == 2
    assert "reset during the session" in err
    assert not r["ok"] and "reset" in r["incomplete"]
    assert 0 < r["windows_compared"] < N_WINDOWS
    assert len(r["lost_windows"]) == N_WINDOWS - r["windows_compared"]


def test_verify_engine_errors_fail(model_dir, tmp_path):
    code, r = _verify(model_dir, tmp_path, "sim://?engine_fail_every=7")
    assert code == 1 and r["engine_errors"]


# ---------------------------------------------------------------------------- errors
def test_stream_timeout_keeps_received_results(model_dir, tmp_path, capsys):
    out = tmp_path / "r.csv"
    code = run(
        "stream", "--port", f"sim://?stall_after={STALL_AT}", "--model-dir", str(model_dir), "--out", str(out),
        "--timeout", "0.3", "--quiet",
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert "no acknowledgement of a sample batch" in err
    rows = out.read_text().splitlines()[1:]
    assert 0 < len(rows) < N_WINDOWS
    assert "kept" in err


def test_stream_reset_detected(model_dir, tmp_path, capsys):
    out = tmp_path / "r.jsonl"
    code = run(
        "stream", "--port", f"sim://?reset_after={RESET_AT}", "--model-dir", str(model_dir), "--out", str(out),
        "--retries", "0",
    )  # fmt: skip
    assert code == 2
    assert "reset during the session" in capsys.readouterr().err
    assert len(out.read_text().splitlines()) > 0


def test_no_handshake_on_a_loopback(capsys):
    assert run("info", "--port", "loop://", "--timeout", "0.5") == 2
    assert "loopback" in capsys.readouterr().err


def test_no_such_port(capsys):
    assert run("info", "--port", "/dev/ttyDOES_NOT_EXIST0") == 2
    err = capsys.readouterr().err
    assert "no serial port /dev/ttyDOES_NOT_EXIST0" in err and "ports" in err


def test_port_busy(capsys):
    master, slave = os.openpty()
    path = os.ttyname(slave)
    holder = serial.Serial(path, exclusive=True)
    try:
        assert run("info", "--port", path, "--timeout", "0.5") == 2
        assert "busy" in capsys.readouterr().err
    finally:
        holder.close()
        os.close(master)
        os.close(slave)


class _TextDevice:
    """A board running other firmware: it prints text lines."""

    def __init__(self, payload: bytes) -> None:
        self.payload, self.port, self.baudrate = payload, "fake-text", 115200

    def write(self, data: bytes) -> int:
        return len(data)

    def read(self, n: int) -> bytes:
        out, self.payload = self.payload[:n], self.payload[n:]
        return out

    def wait_readable(self, timeout: float) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.mark.parametrize(
    ("payload", "expect"),
    [
        (b"Hello from another sketch\r\nvalue=12\r\n", "answers with text ('Hello from another sketch')"),
        (bytes(range(1, 250)) * 3, "check the baud rate"),
        (b"", "nothing was received"),
    ],
)
def test_no_handshake_sentences(monkeypatch, capsys, payload, expect):
    from tinyae.tools.commands import common

    monkeypatch.setattr(common, "open_port", lambda port, baud: _TextDevice(payload))
    assert run("info", "--port", "fake", "--timeout", "0.3") == 2
    assert expect in capsys.readouterr().err


def test_wrong_protocol_version_is_named(monkeypatch, capsys):
    from tinyae.tools.commands import common

    payload = p.encode_payload(p.Hello(), 0)
    bad = bytearray(payload)
    bad[0] = 7  # version
    bad[-4:] = p.crc32(bytes(bad[:-4])).to_bytes(4, "little")
    frame = p.cobs_encode(bytes(bad)) + b"\x00"
    monkeypatch.setattr(common, "open_port", lambda port, baud: _TextDevice(frame))
    assert run("info", "--port", "fake", "--timeout", "0.3") == 2
    assert "protocol version 7" in capsys.readouterr().err


# ---------------------------------------------------------------------------- record and monitor
def test_record_writes_a_training_ready_csv(tmp_path):
    out = tmp_path / "cap.csv"
    code = run("record", "--port", "sim://", "--samples", "300", "--out", str(out), "--label", "1",
               "--note", "bearing test", "--quiet")  # fmt: skip
    assert code == 0
    (s,) = load_csv(out)
    assert s.values.shape == (300, C)
    expect = np.array([default_sensor(i, C) for i in range(300)], np.float32)
    np.testing.assert_array_equal(s.values, expect)
    assert s.labels is not None and set(s.labels.tolist()) == {1}
    assert s.sample_rate_hz == pytest.approx(CONFIG["sample_rate_hz"])
    meta = json.loads((tmp_path / "cap.csv.json").read_text())
    assert meta["note"] == "bearing test" and meta["samples"] == 300 and meta["lost_samples"] == []


def test_record_by_duration_and_a_silent_sensor(tmp_path, capsys):
    out = tmp_path / "d.csv"
    assert run("record", "--port", "sim://", "--duration", "0.3", "--out", str(out), "--quiet") == 0
    assert len(out.read_text().splitlines()) > 10
    out2 = tmp_path / "stall.csv"
    # a board without a sensor source: sensor mode sends nothing
    code = run("record", "--port", "sim://?sensor_rate=0", "--duration", "5", "--timeout", "0.3",
               "--out", str(out2), "--quiet")  # fmt: skip
    assert code == 2
    assert "no sensor data" in capsys.readouterr().err
    assert json.loads((tmp_path / "stall.csv.json").read_text())["stopped_by"] == "error"


def test_monitor_for_a_duration_logs_contiguous_windows(model_dir, tmp_path, capsys):
    log = tmp_path / "mon.jsonl"
    code = run("monitor", "--port", "sim://", "--model-dir", str(model_dir), "--duration", "0.5",
               "--log", str(log), "--threshold", "0.01")  # fmt: skip
    assert code == 0
    rows = [json.loads(x) for x in log.read_text().splitlines()]
    assert len(rows) > 5
    assert [r["window"] for r in rows] == list(range(len(rows)))
    assert all(r["anomaly"] for r in rows) and rows[0]["threshold"] == pytest.approx(0.01)
    assert "alarms" in capsys.readouterr().out
    # the device went back to host-stream mode with its own threshold
    assert run("stream", "--port", "sim://", "--model-dir", str(model_dir), "--quiet") == 0


def test_monitor_refuses_a_threshold_the_device_would_hold_as_0(model_dir, capsys):
    code = run("monitor", "--port", "sim://", "--model-dir", str(model_dir), "--duration", "0.2",
               "--threshold", "1e-50")  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.count("error:") == 1 and "Traceback" not in err
    assert "1e-50 becomes 0 as a float32" in err


@pytest.mark.parametrize("value", [1e-50, 1e-45, 0.0, -1.0, 3.5e38, float("inf")])
def test_the_host_never_sets_a_threshold_the_device_cannot_use(value):
    """SET THRESHOLD: the device takes any float, so the host sends a positive normal float32 or NaN (the
    device's default threshold again), whoever calls Device.set."""
    dev = Device(open_port("sim://"), timeout=5.0, name="sim://")
    try:
        dev.handshake()
        with pytest.raises(UserError, match=r"^threshold .* float32|^threshold .*(above 0|finite)"):
            dev.set(p.Param.THRESHOLD, value)
        dev.set(p.Param.THRESHOLD, 0.25)
        dev.set(p.Param.THRESHOLD, float("nan"))
    finally:
        dev.close()


def test_verify_computes_the_hosts_alarms_with_the_artifacts_rule(tmp_path, monkeypatch):
    """A device built with another alarm rule (the stand-in decides 2 of 3) is a named constant mismatch, and
    the host's alarms follow the artifacts' rule, not the one the device reports (as for the threshold)."""
    md = sim_model_dir(tmp_path / "m", sim_series(N_SAMPLES))
    doc = json.loads((md / "manifest.json").read_text())
    assert (
        (doc["decision"]["k"], doc["decision"]["n"]) == (CONFIG["decision_k"], CONFIG["decision_n"]) == (2, 3)
    )
    doc["decision"] = {"k": 1, "n": 1}
    (md / "manifest.json").write_text(json.dumps(doc))
    rules = []
    real = preprocess.decisions

    def spy(scores, threshold, k, n):  # type: ignore[no-untyped-def]
        rules.append((k, n))
        return real(scores, threshold, k, n)

    monkeypatch.setattr(preprocess, "decisions", spy)
    code, r = _verify(md, tmp_path)
    assert code == 1 and not r["ok"]
    assert [c["name"] for c in r["constants"] if not c["ok"]] == ["alarm rule"]
    assert rules and set(rules) == {(1, 1)}


# ---------------------------------------------------------------------------- ports
class _PortInfo:
    def __init__(self, device, vid, pid, desc):
        self.device, self.vid, self.pid, self.description = device, vid, pid, desc
        self.serial_number = "X1"


def test_ports_marks_known_boards(monkeypatch, capsys):
    fake = [
        _PortInfo("/dev/ttyACM0", 0x2341, 0x805A, "Nano 33 BLE"),
        _PortInfo("/dev/ttyUSB0", 0x10C4, 0xEA60, "CP2102"),
        _PortInfo("/dev/ttyACM1", 0x303A, 0x1001, "USB JTAG"),
        _PortInfo("/dev/ttyUSB1", 0x0403, 0x6001, "FT232R"),
        _PortInfo("/dev/ttyS0", None, None, "n/a"),
    ]
    monkeypatch.setattr(ports_cmd.list_ports, "comports", lambda: fake)
    assert run("ports") == 0
    out = capsys.readouterr().out
    assert "Arduino Nano 33 BLE" in out and "CP210x" in out and "Espressif" in out
    assert "ttyUSB1" in out and "ttyS0" not in out
    assert ports_cmd.board_guess(0x0403, 0x6001) is None
    assert run("ports", "--all") == 0
    assert "ttyS0" in capsys.readouterr().out


@pytest.mark.parametrize(("emulator", "given", "expected"), [(None, 5.0, 5.0), ("fw.elf", 5.0, 30.0),
                                                             ("fw.elf", 60.0, 60.0)])  # fmt: skip
def test_the_emulated_board_gets_at_least_the_emulator_reply_timeout(monkeypatch, emulator, given, expected):
    """QEMU shares the host's cores: --emulator waits at least EMULATOR_REPLY_TIMEOUT for a reply, so a
    loaded host is not reported as a dead board; a real port keeps --timeout as given."""
    import argparse
    from contextlib import contextmanager

    from tinyae.tools.commands import common
    from tinyae.tools.emulator import qemu

    @contextmanager
    def fake_emulator(elf, timeout, storage):
        assert timeout == expected
        yield argparse.Namespace(url="sim://", storage=storage)

    monkeypatch.setattr(qemu, "Emulator", fake_emulator)
    monkeypatch.setattr(common.Device, "handshake", lambda self: argparse.Namespace(calib_state=None))
    args = argparse.Namespace(emulator=emulator, port=None if emulator else "sim://", baud=115200, timeout=given,
                              emulator_storage=None)  # fmt: skip
    with common.session(args) as dev:
        assert dev.timeout == expected
