"""The device application (tae_app.c) over the simulated device: handshake, host-stream batches
with acknowledgements and sequence checks, verification data, settings, sensor-mode telemetry,
errors and resyncs — everything as the host sees it through tools/link/protocol.py."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tinyae import __version__
from tinyae.tools.link import protocol as p
from tinyae.tools.simdevice.native import SimDevice
from tinyae.tools.simdevice.vectors import CONFIG

L, H, C = CONFIG["window_len"], CONFIG["hop"], CONFIG["channels"]


class Host:
    def __init__(self, dev: SimDevice):
        self.dev = dev
        self.dec = p.StreamDecoder(CONFIG["max_frame"], accept=p.DEVICE_TYPES)
        self.seq = 0
        self.rx_seqs: list[int] = []

    def send(self, msg: p.Message) -> int:
        seq = self.seq
        self.dev.write(p.encode_frame(msg, seq))
        self.seq += 1
        return seq

    def recv(self) -> list:
        events = self.dec.feed(self.dev.read())
        for e in events:
            assert isinstance(e, p.Frame), e
            self.rx_seqs.append(e.seq)
        return [e.msg for e in events]


@pytest.fixture
def host() -> Host:
    dev = SimDevice()
    dev.set_engine_fail_every(0)
    dev.boot()
    h = Host(dev)
    (boot,) = h.recv()
    assert isinstance(boot, p.Boot)
    return h


def _rng_samples(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 0.3, size=(n, C)).astype(np.float32)


def _batch(seq: int, xs: np.ndarray) -> p.Samples:
    return p.Samples(seq, tuple(tuple(float(v) for v in row) for row in xs), C)


def _quantize(window: np.ndarray) -> np.ndarray:
    """docs/architecture.md's quantization, in float32 (the test config's constants)."""
    off = np.asarray(CONFIG["norm_offset"], np.float32)
    gain = np.asarray(CONFIG["norm_gain"], np.float32)
    v = (window.astype(np.float32) - off) * gain
    tr = np.trunc(v)
    r = tr + np.where(np.abs(v - tr) >= 0.5, np.sign(v), 0).astype(np.float32)
    r = np.clip(r, -512, 512)
    return np.clip(r + CONFIG["in_zero_point"], -128, 127).astype(np.int8).reshape(-1)


def _score(inq, outq) -> np.float32:
    s_in, s_out = np.float32(CONFIG["in_scale"]), np.float32(CONFIG["out_scale"])
    acc = np.float32(0)
    for i, o in zip(inq, outq, strict=True):
        d = np.float32(o - CONFIG["out_zero_point"]) * s_out - np.float32(i - CONFIG["in_zero_point"]) * s_in
        acc = np.float32(acc + d * d)
    return np.float32(acc / np.float32(len(inq)))


def test_boot_frame_describes_the_model_and_target():
    dev = SimDevice()
    dev.boot()
    wire = dev.read()
    assert wire[0] == 0  # a delimiter first: the host's decoder drops any partial frame
    (frame,) = p.StreamDecoder().feed(wire)
    assert frame.seq == 0
    b = frame.msg
    assert isinstance(b, p.Boot)
    assert (b.window_len, b.hop, b.channels, b.input_size, b.output_size) == (L, H, C, L * C, L * C)
    assert b.model_sha256 == bytes.fromhex(CONFIG["model_sha256"])
    assert (b.decision_k, b.decision_n, b.score_name) == (2, 3, "mse")
    assert b.threshold == b.model_threshold == pytest.approx(0.5)
    assert b.max_frame == CONFIG["max_frame"] and b.max_batch == p.MAX_BATCH
    assert (b.flash_used, b.ram_static, b.stack_bytes, b.tx_dropped) == (23456, 3456, 2048, 0)
    assert (b.engine, b.target, b.cost_unit, b.mode, b.verify) == ("sim-stub", "sim", "ticks", 0, False)


def test_hello_answers_info_with_next_tx_seq(host):
    host.send(p.Hello())
    (info,) = host.recv()
    assert type(info) is p.Info
    assert host.rx_seqs == [0, 1]


def test_host_stream_results_and_acks(host):
    xs = _rng_samples(21)
    msgs = []
    for b in range(0, 21, 5):
        host.send(_batch(b // 5, xs[b : b + 5]))
        msgs += host.recv()
    results = [m for m in msgs if isinstance(m, p.Result)]
    acks = [m for m in msgs if isinstance(m, p.Ack)]
    assert [r.window_seq for r in results] == [0, 1, 2, 3]  # windows end on samples 8, 12, 16, 20
    assert [a.batch_seq for a in acks] == [0, 1, 2, 3, 4]
    assert [a.windows for a in acks] == [0, 1, 1, 2, 0]
    assert all(a.ref_type == p.MsgType.SAMPLES for a in acks)
    assert all(r.input_q is None and r.status == 0 and r.cost > 0 for r in results)
    assert host.rx_seqs == list(range(len(host.rx_seqs)))  # no device frame lost or repeated


def test_verification_data_is_the_window_and_the_network_output(host):
    host.send(p.Setting(p.Param.VERIFY, 1))
    xs = _rng_samples(16, seed=3)
    host.send(_batch(0, xs))
    results = [m for m in host.recv() if isinstance(m, p.Result)]
    assert len(results) == 3
    for r in results:
        start = r.window_seq * H
        inq = np.array(r.input_q, np.int8)
        outq = np.array(r.output_q, np.int8)
        np.testing.assert_array_equal(inq, _quantize(xs[start : start + L]))
        # the stand-in engine: out[i] = clamp(in[i] + ((i % 3) - 1) * 4)
        expect = np.clip(inq.astype(int) + (np.arange(L * C) % 3 - 1) * 4, -128, 127)
        np.testing.assert_array_equal(outq, expect)
        assert np.float32(r.score) == _score(inq.astype(int), outq.astype(int))


def test_batch_sequence_gap_and_duplicate_are_rejected(host):
    xs = _rng_samples(24, seed=1)
    s0 = host.send(_batch(0, xs[:8]))
    first = host.recv()
    assert [type(m) for m in first] == [p.Result, p.Ack] and first[1].ref_seq == s0
    s_gap = host.send(_batch(2, xs[16:24]))
    (err,) = host.recv()
    assert (err.code, err.expected, err.got, err.ref_type, err.ref_seq) == (
        p.ErrorCode.SEQ_GAP, 1, 2, p.MsgType.SAMPLES, s_gap,
    )  # fmt: skip
    host.send(_batch(0, xs[:8]))  # a duplicate is not processed twice
    (dup,) = host.recv()
    assert (dup.code, dup.expected, dup.got) == (p.ErrorCode.SEQ_GAP, 1, 0)
    host.send(_batch(1, xs[8:16]))
    msgs = host.recv()
    assert [m.window_seq for m in msgs if isinstance(m, p.Result)] == [1, 2]
    assert msgs[-1].batch_seq == 1


def test_threshold_override_alarm_and_restore(host):
    host.send(p.Setting(p.Param.THRESHOLD, 0.0))
    host.send(p.Hello())
    ack, info = host.recv()
    assert isinstance(ack, p.Ack) and info.threshold == 0.0 and info.model_threshold == pytest.approx(0.5)
    host.send(_batch(0, _rng_samples(16, seed=2)))
    results = [m for m in host.recv() if isinstance(m, p.Result)]
    assert all(r.anomaly for r in results)  # every score > 0
    assert [r.alarm for r in results] == [False, True, True]  # k=2 of the last n=3
    host.send(p.Setting(p.Param.THRESHOLD, math.nan))
    host.send(p.Hello())
    _, info = host.recv()
    assert info.threshold == pytest.approx(0.5)


def test_reset_restarts_windows_and_batches(host):
    xs = _rng_samples(12, seed=4)
    host.send(_batch(0, xs))
    host.recv()
    host.send(p.Reset())
    (ack,) = host.recv()
    assert ack.ref_type == p.MsgType.RESET
    host.send(_batch(0, xs[:8]))
    msgs = host.recv()
    assert [m.window_seq for m in msgs if isinstance(m, p.Result)] == [0]


def test_engine_error_is_reported_with_the_window(host):
    host.dev.set_engine_fail_every(2)
    s = host.send(_batch(0, _rng_samples(12, seed=5)))
    msgs = host.recv()
    host.dev.set_engine_fail_every(0)
    assert [type(m) for m in msgs] == [p.Result, p.Result, p.ErrorReply, p.Ack]
    assert msgs[0].status == 0 and msgs[1].status == -3
    assert (msgs[2].code, msgs[2].got, msgs[2].ref_seq) == (p.ErrorCode.ENGINE, 0xFFFFFFFD, s)


def test_sensor_mode_streams_telemetry_then_results(host):
    assert host.dev.poll()  # host-stream mode: idle, a board may sleep until the host sends more
    host.send(p.Setting(p.Param.MODE, p.Mode.SENSOR))
    (ack,) = host.recv()
    assert ack.ref_type == p.MsgType.SET
    xs = _rng_samples(100, seed=6)
    assert host.dev.push_sensor(xs) == 100
    for _ in range(10):
        assert not host.dev.poll()  # sensor mode: samples fall due with time, never idle
    msgs = host.recv()
    tel = [m for m in msgs if isinstance(m, p.Telemetry)]
    got = np.array([s for t in tel for s in t.samples], np.float32)
    np.testing.assert_array_equal(got, xs)
    assert [t.first_sample for t in tel] == list(np.cumsum([0] + [len(t.samples) for t in tel[:-1]]))
    results = [m for m in msgs if isinstance(m, p.Result)]
    assert [r.window_seq for r in results] == list(range((100 - L) // H + 1))
    # each result follows the telemetry frame holding its window's last sample
    seen = 0
    for m in msgs:
        if isinstance(m, p.Telemetry):
            seen = m.first_sample + len(m.samples)
        elif isinstance(m, p.Result):
            assert seen == m.window_seq * H + L
    # host batches are refused in sensor mode
    host.send(_batch(0, xs[:4]))
    (err,) = host.recv()
    assert (err.code, err.expected, err.got) == (p.ErrorCode.WRONG_MODE, p.Mode.SENSOR, p.Mode.HOST_STREAM)
    # polling does nothing in host-stream mode
    host.send(p.Setting(p.Param.MODE, p.Mode.HOST_STREAM))
    host.recv()
    host.dev.push_sensor(xs[:20])
    assert host.dev.poll()
    assert host.recv() == []


@pytest.mark.parametrize(
    ("wire", "code"),
    [
        (b"\x05\x01\x02\x00", p.ErrorCode.BAD_COBS),
        (p.cobs_encode(p.encode_payload(p.Hello(), 1)[:-1] + b"\x00") + b"\x00", p.ErrorCode.BAD_CRC),
        (b"\x02\x01\x00", p.ErrorCode.TRUNCATED),
        (b"\x42" * 1000 + b"\x00", p.ErrorCode.OVERSIZED),
    ],
)
def test_bad_frames_get_an_error_and_the_device_resyncs(host, wire, code):
    host.dev.write(wire)
    (err,) = host.recv()
    assert err.code == code and err.ref_seq == p.NO_SEQ
    host.send(p.Hello())
    (info,) = host.recv()
    assert isinstance(info, p.Info)


def test_message_errors_name_the_frame(host):
    s = host.send(p.Setting(p.Param.VERIFY, 5))
    (err,) = host.recv()
    assert (err.code, err.got, err.ref_type, err.ref_seq) == (p.ErrorCode.BAD_PARAM, 5, p.MsgType.SET, s)
    s = host.send(p.Samples(0, ((1.0, 2.0),), 2))
    (err,) = host.recv()
    assert (err.code, err.expected, err.got, err.ref_seq) == (p.ErrorCode.CHANNELS, C, 2, s)


def test_text_query_prints_the_handshake(host):
    host.dev.write(b"?\r\n")
    line = host.dev.read().decode()
    # the firmware version comes from pyproject.toml through model_config.h (TAE_FIRMWARE_VERSION)
    head = f"tinyae fw={__version__} target=sim proto={p.PROTOCOL_VERSION} engine=sim-stub"
    assert line.startswith(head)
    assert " dropped=0 calib=factory unit=ticks" in line
    assert f"model={CONFIG['model_sha256']}" in line and line.endswith("\r\n")


def test_reboot_mid_stream_is_visible(host):
    host.send(_batch(0, _rng_samples(8)))
    host.recv()
    host.dev.boot()
    (boot,) = host.recv()
    assert isinstance(boot, p.Boot) and host.rx_seqs[-1] == 0


def test_a_closed_link_drops_frames_without_blocking_and_the_handshake_counts_them(host):
    # USB CDC with no host holding the port open takes no bytes: the device keeps processing and
    # drops each frame whole, never waiting; the next handshake says how many, and the seq gap shows it.
    host.dev.set_link_budget(0)
    xs = _rng_samples(20)
    for b in range(4):
        host.send(_batch(b, xs[5 * b : 5 * b + 5]))  # 4 ACKs and 4 RESULTs (windows end at 8, 12, 16, 20)
    assert host.dev.read() == b""
    host.dev.set_link_budget(None)
    host.send(p.Hello())
    (info,) = host.recv()
    assert type(info) is p.Info and info.tx_dropped == 8
    assert host.rx_seqs == [0, 9]  # BOOT, then INFO after 8 frames that never left
    host.send(_batch(4, xs[:4]))  # the device went on: batch 4 is the one it expects
    assert [type(m) for m in host.recv()] == [p.Result, p.Ack]


def test_a_frame_cut_short_is_dropped_and_cannot_swallow_the_next(host):
    host.dev.set_link_budget(7)  # the link dies 7 bytes into the RESULT of the first window
    host.send(_batch(0, _rng_samples(8)))
    cut = host.dev.read()
    assert len(cut) == 7 and 0 not in cut
    host.dev.set_link_budget(None)
    host.send(p.Hello())
    events = host.dec.feed(cut + host.dev.read())
    assert [type(e) for e in events] == [p.DecodeError, p.Frame]  # the cut frame, then INFO intact
    info = events[1].msg
    assert type(info) is p.Info and info.tx_dropped == 2 and events[1].seq == 3  # RESULT and ACK lost
