"""The C protocol codec (tae_protocol.c), host-built and driven through ctypes: the shared vectors,
the Python codec as a differential oracle on random and corrupted streams."""

from __future__ import annotations

import ctypes
import json
import math
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinyae.tools.link import protocol as p
from tinyae.tools.simdevice import vectors as pv
from tinyae.tools.simdevice.native import build_codec

VECTORS = json.loads(pv.VECTORS_PATH.read_text())
CFG = pv.CONFIG
C = CFG["channels"]


class CCodec:
    def __init__(self):
        lib = ctypes.CDLL(str(build_codec()))
        self.lib = lib
        for name in ("drv_max_frame", "drv_max_wire", "drv_max_batch", "drv_host_window", "drv_rx_buffer"):
            getattr(lib, name).restype = ctypes.c_uint32
        lib.drv_crc32.restype = ctypes.c_uint32
        lib.drv_crc32.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
        lib.drv_cobs_encode.restype = ctypes.c_size_t
        lib.drv_cobs_encode.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t]
        lib.drv_decoder_push.argtypes = [ctypes.c_uint8, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
        lib.drv_decode_host.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_void_p,
                                        ctypes.c_size_t, ctypes.c_void_p]  # fmt: skip
        sz, u8, u16, u32, i32 = (
            ctypes.c_size_t,
            ctypes.c_uint8,
            ctypes.c_uint16,
            ctypes.c_uint32,
            ctypes.c_int32,
        )
        vp = ctypes.c_void_p
        lib.drv_encode_result.argtypes = [vp, sz, u32, u32, ctypes.c_float, u8, i32, u32, vp, vp]
        lib.drv_encode_telemetry.argtypes = [vp, sz, u32, u32, u32, u32, u8, vp, u16]
        lib.drv_encode_ack.argtypes = [vp, sz, u32, u8, u32, u32, u16]
        lib.drv_encode_error.argtypes = [vp, sz, u32, u8, u8, u32, u32, u32]
        lib.drv_encode_info.argtypes = [vp, sz, u8, u32, vp, vp, ctypes.c_char_p, ctypes.c_char_p,
                                        ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                                        ctypes.c_char_p]  # fmt: skip
        lib.drv_encode_calib_state.argtypes = [vp, sz, u32, vp, ctypes.c_char_p]
        lib.drv_record_bytes.restype = u32
        self.record_bytes = lib.drv_record_bytes()
        for name in ("drv_encode_result", "drv_encode_telemetry", "drv_encode_ack", "drv_encode_error",
                     "drv_encode_info", "drv_encode_calib_state"):  # fmt: skip
            getattr(lib, name).restype = sz
        self.max_frame = lib.drv_max_frame()
        self.out = ctypes.create_string_buffer(lib.drv_max_wire() + 16)

    # -- decoding: the device's view of a host->device stream, as vector events
    def events(self, wire: bytes) -> list[dict]:
        lib = self.lib
        lib.drv_decoder_reset()
        details = (ctypes.c_uint32 * 2)()
        frame = ctypes.create_string_buffer(self.max_frame)
        flen = ctypes.c_uint32()
        events = []
        for b in wire:
            r = lib.drv_decoder_push(b, details, frame, ctypes.byref(flen))
            if r == 1:
                events.append(self._message(frame.raw[: flen.value]))
            elif r == 2:
                events.append({"kind": "text"})
            elif r < 0:
                code = p.ErrorCode(-r).name
                events.append({"kind": "error", "code": code, "expected": details[0], "got": details[1],
                               "ref_type": None, "ref_seq": None})  # fmt: skip
            else:
                assert r == 0
        return events

    def _message(self, frame: bytes) -> dict:
        f = (ctypes.c_uint32 * 13)()
        samples = (ctypes.c_float * (CFG["max_batch"] * C))()
        record = ctypes.create_string_buffer(self.record_bytes)
        err = self.lib.drv_decode_host(frame, len(frame), f, samples, len(samples), record)
        if err:
            return {"kind": "error", "code": p.ErrorCode(err).name, "expected": f[7], "got": f[8],
                    "ref_type": f[0], "ref_seq": f[1]}  # fmt: skip
        type_ = p.MsgType(f[0])
        if type_ == p.MsgType.HELLO:
            msg = p.Hello()
        elif type_ == p.MsgType.RESET:
            msg = p.Reset()
        elif type_ == p.MsgType.SAMPLES:
            flat = list(samples)[: f[3] * C]
            msg = p.Samples(f[2], tuple(tuple(flat[i * C : (i + 1) * C]) for i in range(f[3])), f[4])
        elif type_ == p.MsgType.CALIB:
            msg = p.Calib(f[10], f[11], record.raw[: f[12]])
        else:
            value = struct.unpack("<f", struct.pack("<I", f[6]))[0] if f[5] == p.Param.THRESHOLD else f[6]
            msg = p.Setting(f[5], value)
        return {"kind": "frame", "seq": f[1], "message": pv.message_to_json(msg)}

    # -- encoding: device->host messages
    def encode(self, msg: p.Message, seq: int) -> bytes:
        lib, out, cap = self.lib, self.out, len(self.out)
        if isinstance(msg, p.Result):
            flags = (p.RESULT_ANOMALY if msg.anomaly else 0) | (p.RESULT_ALARM if msg.alarm else 0)
            flags |= p.RESULT_CALIB if msg.calib else 0
            ins = outs = None
            if msg.input_q is not None:
                flags |= p.RESULT_VERIFY
                ins = (ctypes.c_int8 * len(msg.input_q))(*msg.input_q)
                outs = (ctypes.c_int8 * len(msg.output_q))(*msg.output_q)
            n = lib.drv_encode_result(out, cap, seq, msg.window_seq, msg.score, flags, msg.status, msg.cost,
                                      ins, outs)  # fmt: skip
        elif isinstance(msg, p.Telemetry):
            flat = (ctypes.c_float * (len(msg.samples) * C))(*[v for s in msg.samples for v in s])
            n = lib.drv_encode_telemetry(out, cap, seq, msg.first_sample, msg.skipped, msg.late, msg.source,
                                         flat, len(msg.samples))  # fmt: skip
        elif isinstance(msg, p.Ack):
            n = lib.drv_encode_ack(out, cap, seq, msg.ref_type, msg.ref_seq, msg.batch_seq, msg.windows)
        elif isinstance(msg, p.ErrorReply):
            n = lib.drv_encode_error(
                out, cap, seq, msg.code, msg.ref_type, msg.ref_seq, msg.expected, msg.got
            )
        elif isinstance(msg, p.CalibStatus):
            assert len(msg.record) in (0, self.record_bytes)
            ints = (ctypes.c_int32 * 7)(msg.state, msg.outcome, msg.detail, msg.boot, msg.record_kind,
                                        msg.windows, msg.done)  # fmt: skip
            n = lib.drv_encode_calib_state(out, cap, seq, ints, msg.record or None)
        else:
            assert isinstance(msg, p.Info)
            m = msg
            ints = (ctypes.c_uint32 * 28)(
                m.mode, int(m.verify), m.channels, m.score_kind, m.decision_k, m.decision_n, m.in_zero_point,
                m.out_zero_point, m.window_len, m.hop, m.input_size, m.output_size, m.max_batch, m.max_frame,
                m.flash_used, m.ram_static, m.engine_ram, m.stack_bytes, m.tx_dropped, m.calib_state,
                m.calib_boot, m.calib_flags, m.calib_windows, m.calib_max_windows, m.calib_crc,
                m.frontend_crc, m.norm_crc, m.calib_config_crc,
            )  # fmt: skip
            floats = (ctypes.c_float * 5)(
                m.sample_rate_hz, m.threshold, m.model_threshold, m.in_scale, m.out_scale
            )
            n = lib.drv_encode_info(out, cap, m.TYPE, seq, ints, floats, m.model_sha256,
                                    m.firmware_version.encode(), m.target.encode(), m.engine.encode(),
                                    m.library.encode(), m.cost_unit.encode())  # fmt: skip
        assert n > 0
        return out.raw[:n]


@pytest.fixture(scope="module")
def codec() -> CCodec:
    return CCodec()


def test_limits_match_python(codec):
    assert codec.max_frame == CFG["max_frame"]
    assert codec.lib.drv_max_batch() == p.MAX_BATCH
    assert codec.lib.drv_host_window() == p.HOST_WINDOW
    assert codec.lib.drv_rx_buffer() == p.RX_BUFFER
    assert codec.lib.drv_max_wire() == p.wire_bytes(CFG["max_frame"])


@given(st.binary(max_size=1500))
@settings(max_examples=200, deadline=None)
def test_crc_and_cobs_match_python(data):
    lib = _LIB.lib
    assert lib.drv_crc32(data, len(data)) == p.crc32(data)
    out = ctypes.create_string_buffer(len(data) + len(data) // 254 + 4)
    n = lib.drv_cobs_encode(data, len(data), out, len(out))
    assert out.raw[:n] == p.cobs_encode(data) + b"\x00"


def test_cobs_encode_refuses_a_short_buffer(codec):
    data = bytes(range(1, 200))
    out = ctypes.create_string_buffer(100)
    assert codec.lib.drv_cobs_encode(data, len(data), out, len(out)) == 0


HOST_VECTORS = [v for v in VECTORS["vectors"] if v["direction"] == "host_to_device"]
DEVICE_FRAMES = [v for v in VECTORS["vectors"] if v["direction"] == "device_to_host" and v["canonical"]]
DEVICE_BAD = [v for v in VECTORS["vectors"] if v["direction"] == "device_to_host" and not v["canonical"]]


@pytest.mark.parametrize("vector", HOST_VECTORS, ids=lambda v: v["name"])
def test_c_decoder_matches_vector(codec, vector):
    assert codec.events(bytes.fromhex(vector["wire"])) == vector["events"]


@pytest.mark.parametrize("vector", DEVICE_FRAMES, ids=lambda v: v["name"])
def test_c_encoder_matches_vector(codec, vector):
    (event,) = vector["events"]
    msg = pv.message_from_json(event["message"])
    assert codec.encode(msg, event["seq"]).hex() == vector["wire"]


@pytest.mark.parametrize("vector", DEVICE_BAD, ids=lambda v: v["name"])
def test_c_framing_of_bad_device_frames(codec, vector):
    # The device never decodes device->host messages; its framing layer must agree with the host's.
    c_events = codec.events(bytes.fromhex(vector["wire"]))
    framing = [
        e for e in vector["events"] if e["kind"] == "error" and p.ErrorCode[e["code"]] in p.FRAMING_ERRORS
    ]
    assert [e for e in c_events if e["kind"] == "error" and e["ref_type"] is None] == framing


# ---------------------------------------------------------------- differential: C vs Python


def _normalize(events: list[dict]) -> str:
    def fix(o):
        if isinstance(o, float) and math.isnan(o):
            return "nan"
        if isinstance(o, dict):
            return {k: fix(v) for k, v in o.items()}
        if isinstance(o, list):
            return [fix(v) for v in o]
        return o

    return json.dumps(fix(events))


def _python_events(wire: bytes) -> list[dict]:
    return [pv.event_to_json(e) for e in pv.decoder_for("host_to_device").feed(wire)]


_LIB: CCodec  # set lazily below (hypothesis tests cannot take function-scoped fixtures)


@pytest.fixture(scope="module", autouse=True)
def _module_lib(codec):
    global _LIB
    _LIB = codec


host_msgs = st.one_of(
    st.just(p.Hello()),
    st.just(p.Reset()),
    st.builds(
        p.Samples,
        st.integers(0, 0xFFFFFFFF),
        st.lists(st.tuples(*[st.floats(width=32)] * C), max_size=CFG["max_batch"] + 2).map(tuple),
        st.just(C),
    ),
    st.builds(p.Setting, st.sampled_from(list(p.Param)), st.integers(0, 3)),
)


@given(st.lists(st.one_of(host_msgs.map(lambda m: p.encode_frame(m, 7)), st.binary(max_size=60)), max_size=8))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_c_and_python_agree_on_random_streams(parts):
    wire = b"".join(parts)
    assert _normalize(_LIB.events(wire)) == _normalize(_python_events(wire))


@given(st.lists(host_msgs, min_size=1, max_size=4), st.data())
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_c_and_python_agree_on_corrupted_frames(msgs, data):
    wire = bytearray(b"".join(p.encode_frame(m, i) for i, m in enumerate(msgs)))
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(wire) - 1))
        wire[at] = data.draw(st.integers(0, 255))
    assert _normalize(_LIB.events(bytes(wire))) == _normalize(_python_events(bytes(wire)))
