"""Issue 24, "sampling on the board is honest": the core's sample clock (tae_pace.c) counts the slots a
late loop skips and the samples it reads late; every TELEMETRY frame carries the counts and the source
kind; `record` writes the true timestamps (skipped slots leave gaps), lists the skips and exits 1;
`monitor` shows them; the emulated board's synthetic sensor is named wherever it meets a model trained on
other data; and the board build refuses a sample rate the board cannot keep (tools/budget/sampling.py).

The device side runs here on the simulated device (the real tae_app.c with a test-driven sensor clock);
tests/test_emulator_sampling.py runs the same on the emulated Cortex-M4 with a stalling source."""

from __future__ import annotations

import ctypes
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinyae import hostbuild
from tinyae.tools.link import protocol as p
from tinyae.tools.simdevice.native import SRC, SimDevice
from tinyae.tools.simdevice.port import sim_model_dir
from tinyae.tools.simdevice.vectors import CONFIG

C = CONFIG["channels"]


class Pace(ctypes.Structure):
    _fields_ = [
        ("period", ctypes.c_uint32),
        ("next_due", ctypes.c_uint32),
        ("skipped", ctypes.c_uint32),
        ("late", ctypes.c_uint32),
        ("started", ctypes.c_uint8),
        ("catch_up", ctypes.c_uint8),
    ]


@pytest.fixture(scope="module")
def pace_lib():
    lib = ctypes.CDLL(str(hostbuild.build_shared("tae_pace", [SRC / "tae_pace.c"], [SRC])))
    lib.tae_pace_init.argtypes = [ctypes.POINTER(Pace), ctypes.c_uint32, ctypes.c_int]
    lib.tae_pace_restart.argtypes = [ctypes.POINTER(Pace)]
    lib.tae_pace_due.argtypes = [ctypes.POINTER(Pace), ctypes.c_uint32]
    return lib


def mirror(period: int, catch_up: bool, times: list[int]) -> tuple[list[int], int, int]:
    """Python mirror of tae_pace_due over calls at `times`: (taken flags, skipped, late)."""
    due, skipped, late, out = None, 0, 0, []
    for now in times:
        if due is None:
            due = now
        behind = (now - due) & 0xFFFFFFFF
        if behind >= 1 << 31:  # negative as int32: not yet due
            out.append(0)
            continue
        if not catch_up and behind >= period:
            missed = behind // period
            skipped += missed
            due += missed * period
            behind -= missed * period
        if behind >= period - period // 2:
            late += 1
        due += period
        out.append(1)
    return out, skipped, late


def run_c(lib, period: int, catch_up: bool, times: list[int]) -> tuple[list[int], int, int]:
    s = Pace()
    lib.tae_pace_init(ctypes.byref(s), period, int(catch_up))
    taken = [lib.tae_pace_due(ctypes.byref(s), t & 0xFFFFFFFF) for t in times]
    return taken, s.skipped, s.late


def test_a_stall_of_two_and_a_half_periods_skips_one_slot_and_reads_one_late(pace_lib) -> None:
    period = 100
    # on time, on time, then the loop comes back 2.5 periods after the last slot it read
    assert run_c(pace_lib, period, False, [0, 100, 350]) == ([1, 1, 1], 1, 1)
    # a catch-up source (the synthetic machine) skips nothing: the missed slots come late, back to back
    assert run_c(pace_lib, period, True, [0, 100, 350, 350, 350]) == ([1, 1, 1, 1, 0], 0, 2)
    # early calls take nothing; a slot read a third of a period late is on time, half a period is late
    assert run_c(pace_lib, period, False, [0, 50, 133, 250]) == ([1, 0, 1, 1], 0, 1)


@given(
    period=st.integers(1, 1000),
    catch_up=st.booleans(),
    steps=st.lists(st.integers(0, 3000), min_size=1, max_size=60),
    start=st.integers(0, 2**32 - 1),
)
def test_the_sample_clock_equals_its_mirror_and_accounts_for_every_slot(
    pace_lib, period: int, catch_up: bool, steps: list[int], start: int
) -> None:
    times = list(np.cumsum([start, *steps]).astype(np.int64) % 2**32)  # wraps across 2^32 too
    times = [int(t) for t in times]
    unwrapped = [start + sum(steps[:i]) for i in range(len(times))]
    got = run_c(pace_lib, period, catch_up, times)
    assert got == mirror(period, catch_up, unwrapped)
    taken, skipped, _ = got
    # every slot up to the last read is either read or skipped (a sensor never reads ahead of time)
    last = max((i for i, t in enumerate(taken) if t), default=None)
    if last is not None:
        slots_passed = (unwrapped[last] - unwrapped[0]) // period + 1
        assert sum(taken) + skipped <= slots_passed
        if not catch_up:
            assert sum(taken) + skipped == slots_passed
    if catch_up:
        assert skipped == 0


# ------------------------------------------------------------------------------ the device application
class Host:
    def __init__(self, dev: SimDevice):
        self.dev = dev
        self.dec = p.StreamDecoder(CONFIG["max_frame"], accept=p.DEVICE_TYPES)
        self.seq = 0

    def send(self, msg: p.Message) -> None:
        self.dev.write(p.encode_frame(msg, self.seq))
        self.seq += 1

    def recv(self) -> list:
        return [e.msg for e in self.dec.feed(self.dev.read())]


@pytest.fixture
def paced():
    dev = SimDevice()
    dev.set_engine_fail_every(0)
    dev.sensor_pace(10, False, 0)
    try:
        dev.boot()
        host = Host(dev)
        host.recv()
        host.send(p.Setting(p.Param.MODE, p.Mode.SENSOR))
        host.recv()
        yield host
    finally:
        dev.sensor_pace(0)  # the C state is shared by every SimDevice of this library


def _slots(host: Host, values: np.ndarray, poll: list[bool]) -> list[p.Telemetry]:
    """One sensor value per slot (10 ticks); the loop polls at the slots `poll` says."""
    for v, polled in zip(values, poll, strict=True):
        host.dev.push_sensor(v[None, :])
        if polled:
            host.dev.poll()
        host.dev.sensor_advance(10)
    host.dev.poll()
    return [m for m in host.recv() if isinstance(m, p.Telemetry)]


def test_telemetry_counts_the_skipped_slots_and_keeps_each_frame_contiguous(paced: Host) -> None:
    values = np.arange(40 * C, dtype=np.float32).reshape(40, C)  # value = the slot, visibly
    poll = [True] * 40
    poll[11] = poll[12] = poll[13] = False  # the loop is away for three slots after slot 10
    frames = _slots(paced, values, poll)
    got = np.concatenate([np.asarray(f.samples) for f in frames])
    slots = got[:, 0] / C
    assert 11 not in slots and 12 not in slots and 13 not in slots  # never read, never passed off
    assert 0 <= 40 - 3 - len(got) < CONFIG["hop"]  # the rest waits for its window's end on the device
    assert paced.dev.sample_counts()[:2] == (3, 0)
    # first_sample stays contiguous (nothing lost on the link); the skip is between two frames
    assert [f.first_sample for f in frames] == list(np.cumsum([0] + [len(f.samples) for f in frames[:-1]]))
    before = [f for f in frames if f.skipped == 0]
    after = [f for f in frames if f.skipped == 3]
    assert before and after and len(before) + len(after) == len(frames)
    assert before[-1].samples[-1][0] / C == 10 and after[0].samples[0][0] / C == 14
    assert all(f.source == 0 for f in frames)  # a sensor, not the synthetic machine


def test_a_new_stream_restarts_the_counts(paced: Host) -> None:
    values = np.zeros((12, C), np.float32)
    poll = [True] * 12
    poll[5] = poll[6] = False
    assert _slots(paced, values, poll)[-1].skipped == 2
    paced.send(p.Reset())  # a new stream (so is a mode switch)
    paced.recv()
    frames = _slots(paced, values, [True] * 12)
    assert frames and all(f.skipped == 0 and f.late == 0 for f in frames)


def test_a_synthetic_catch_up_source_says_what_it_is(paced: Host) -> None:
    paced.dev.sensor_pace(10, True, int(p.Clock.SYNTHETIC | p.Clock.CATCH_UP))
    paced.send(p.Reset())
    paced.recv()
    poll = [True] * 12
    poll[5] = poll[6] = False
    frames = _slots(paced, np.zeros((12, C), np.float32), poll)
    assert sum(len(f.samples) for f in frames) == 12  # nothing skipped: the late ones come back to back
    assert frames[-1].skipped == 0 and frames[-1].late >= 1
    assert frames[-1].source == p.Clock.SYNTHETIC | p.Clock.CATCH_UP


# ------------------------------------------------------------------------------ the host commands
@pytest.fixture
def tinyae(capsys, monkeypatch):
    """`tinyae ARGS` in this process: (exit code, stdout, stderr), whitespace folded (rich wraps)."""
    from tinyae.cli import main

    monkeypatch.setenv("COLUMNS", "200")

    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out = capsys.readouterr()
        return code, " ".join(out.out.split()), " ".join(out.err.split())

    return run


def test_record_writes_true_timestamps_lists_the_skips_and_exits_1(tinyae, tmp_path: Path) -> None:
    out = tmp_path / "capture.csv"
    code, _, err = tinyae(
        "device", "record", "--port", "sim://?sensor_stall=50", "--samples", "300", "--out", str(out),
        "--model-dir", str(sim_model_dir(tmp_path / "model")), "--quiet",
    )  # fmt: skip
    assert code == 1, err
    assert "the device skipped" in err and "could not keep 50 Hz" in err
    meta = json.loads(out.with_suffix(".csv.json").read_text())
    skips = meta["skipped_samples"]
    assert skips and all(s["count"] == 2 for s in skips)
    t = np.loadtxt(out, delimiter=",", skiprows=1)[:, 0]
    steps = np.round(np.diff(t) * CONFIG["sample_rate_hz"]).astype(int)
    gaps = {int(i) + 1: int(s) - 1 for i, s in enumerate(steps) if s != 1}  # sample index -> slots missing
    assert gaps == {s["before"]: s["count"] for s in skips if s["before"] < len(t)}


def test_monitor_shows_the_skips_and_exits_1(tinyae, tmp_path: Path) -> None:
    code, out, err = tinyae(
        "device", "monitor", "--port", "sim://?sensor_stall=40", "--duration", "1",
        "--model-dir", str(sim_model_dir(tmp_path / "model")), "--quiet",
    )  # fmt: skip
    assert code == 1, err
    assert "sample slots skipped by the device" in out
    assert "the device skipped" in err


def test_the_synthetic_sensor_is_named_when_it_meets_a_model_trained_on_other_data(
    tinyae, tmp_path: Path
) -> None:
    model = sim_model_dir(tmp_path / "model")
    doc = json.loads((model / "manifest.json").read_text())
    doc["data"]["source"] = "csv"  # a model trained on the user's own recordings
    (model / "manifest.json").write_text(json.dumps(doc))
    for cmd in (
        ["monitor", "--duration", "0.5"],
        ["record", "--samples", "50", "--out", str(tmp_path / "r.csv")],
    ):
        code, _, text = tinyae(
            "device", *cmd, "--port", "sim://?synthetic=1", "--model-dir", str(model), "--quiet"
        )
        assert code == 0, text
        assert text.count("is the built-in synthetic machine") == 1, text  # said once
        assert "trained on csv data" in text and "tinyae device stream --csv" in text
    code, _, text = tinyae(
        "device", "monitor", "--duration", "0.5", "--port", "sim://", "--model-dir", str(model)
    )
    assert "synthetic machine" not in text  # a real sensor: nothing to say


# ------------------------------------------------------------------------------ the build refuses
def _model_at(tmp_path: Path, rate: float) -> Path:
    model = sim_model_dir(tmp_path / f"model-{rate:g}")
    doc = json.loads((model / "manifest.json").read_text())
    doc["window"]["sample_rate_hz"] = rate
    doc["window"]["hop"] = 32
    doc["quantization"]["weights"] = "per_tensor"
    (model / "manifest.json").write_text(json.dumps(doc))
    return model


def test_the_budget_refuses_a_rate_above_the_sensors_and_says_how_it_estimates(
    tinyae, tmp_path: Path
) -> None:
    manifest = str(_model_at(tmp_path, 200.0) / "manifest.json")
    code, out, err = tinyae("budget", "sampling", "--env", "nano33ble_compiled", "--manifest", manifest)
    assert code == 1
    assert "LSM9DS1" in err and "at most 119 samples/s" in err
    assert "CTRL_REG1_G = 0x78" in out  # the source of the figure is stated
    code, _, err = tinyae("budget", "sampling", "--env", "nano33ble_compiled", "--manifest",
                          str(_model_at(tmp_path, 50.0) / "manifest.json"))  # fmt: skip
    assert code == 0, err


def test_the_esp32_uart_at_115200_cannot_carry_a_hop_in_time_and_the_build_says_so(
    tinyae, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("TAE_BOARD_MODEL_DIR", str(_model_at(tmp_path, 100.0)))
    monkeypatch.setenv("TAE_PIO", "/bin/false")  # PlatformIO's stand-in: fails at once when reached
    monkeypatch.setenv("PLATFORMIO_BUILD_FLAGS", "-D TAE_BOARD_SENSOR")
    code, _, err = tinyae("pio", "run", "-e", "esp32dev_compiled")
    assert code == 2, err
    assert err.startswith("error: esp32dev_compiled cannot keep the model's 100 Hz in sensor mode")
    assert "writing to the UART" in err and "TAE_SERIAL_BAUD=921600" in err
    # at 921,600 baud the same build goes on to PlatformIO; a host-stream build (no sensor mode) too
    for flags in ("-D TAE_BOARD_SENSOR -D TAE_SERIAL_BAUD=921600", ""):
        monkeypatch.setenv("PLATFORMIO_BUILD_FLAGS", flags)
        code, _, err = tinyae("pio", "run", "-e", "esp32dev_compiled")
        assert code == 1 and "cannot keep" not in err  # /bin/false's exit code: it was reached
