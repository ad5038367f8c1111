"""The Python protocol codec (tools/link/protocol.py): known answers, round trips, the shared vectors,
and property tests with random frames and random corruption."""

from __future__ import annotations

import json
import math
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinyae.tools.link import protocol as p
from tinyae.tools.simdevice import vectors as pv

VECTORS = json.loads(pv.VECTORS_PATH.read_text())


# ---------------------------------------------------------------- known answers


def test_crc32_check_value():
    # The catalogued check value of CRC-32/ISO-HDLC over "123456789".
    assert p.crc32(b"123456789") == 0xCBF43926


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [  # examples from Cheshire & Baker's COBS paper / the usual COBS tables
        (b"\x00", b"\x01\x01"),
        (b"\x00\x00", b"\x01\x01\x01"),
        (b"\x11\x22\x00\x33", b"\x03\x11\x22\x02\x33"),
        (b"\x11\x22\x33\x44", b"\x05\x11\x22\x33\x44"),
        (b"\x11\x00\x00\x00", b"\x02\x11\x01\x01\x01"),
        (bytes(range(1, 255)), b"\xff" + bytes(range(1, 255))),
        (bytes(range(0, 255)), b"\x01\xff" + bytes(range(1, 255))),
        (bytes(range(1, 256)), b"\xff" + bytes(range(1, 255)) + b"\x02\xff"),
    ],
)
def test_cobs_known_encodings(raw, encoded):
    assert p.cobs_encode(raw) == encoded
    assert p.cobs_decode(encoded) == raw


def test_header_layout_is_little_endian():
    wire = p.encode_frame(p.Ack(p.MsgType.SAMPLES, 0x01020304, 0x0A0B0C0D, 0x1234), 0x11223344)
    payload = p.cobs_decode(wire[:-1])
    assert payload[:6] == bytes([p.PROTOCOL_VERSION, 0x85, 0x44, 0x33, 0x22, 0x11])
    assert payload[6:17] == bytes([0x02, 4, 3, 2, 1, 0x0D, 0x0C, 0x0B, 0x0A, 0x34, 0x12])
    assert struct.unpack("<I", payload[-4:])[0] == p.crc32(payload[:-4])


def test_max_frame_matches_vector_config():
    c = pv.CONFIG
    # the biggest here: a full TELEMETRY batch (16 fixed bytes: first sample, skipped, late, source, count,
    # channels)
    assert c["max_frame"] == 10 + 16 + c["max_batch"] * c["channels"] * 4
    assert p.max_frame(3, 500, 500) == 10 + 17 + 4 + 1000  # a verified result dominates a big model


# ---------------------------------------------------------------- the shared vectors


def test_vectors_file_is_fresh():
    assert pv.render() == pv.VECTORS_PATH.read_text(), "run python -m tinyae.tools.simdevice.vectors"


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: v["name"])
def test_vector_decodes_as_recorded(vector):
    wire = bytes.fromhex(vector["wire"])
    whole = [pv.event_to_json(e) for e in pv.decoder_for(vector["direction"]).feed(wire)]
    assert whole == vector["events"]
    dec = pv.decoder_for(vector["direction"])
    bytewise = [pv.event_to_json(e) for i in range(len(wire)) for e in dec.feed(wire[i : i + 1])]
    assert bytewise == vector["events"]
    errors = [e for e in vector["events"] if e["kind"] == "error"]
    assert dec.stats.resyncs == len(errors)
    assert dec.stats.frames == sum(e["kind"] == "frame" for e in vector["events"])


@pytest.mark.parametrize("vector", [v for v in VECTORS["vectors"] if v["canonical"]], ids=lambda v: v["name"])
def test_canonical_vector_reencodes(vector):
    (event,) = vector["events"]
    msg = pv.message_from_json(event["message"])
    assert p.encode_frame(msg, event["seq"]).hex() == vector["wire"]


def test_vectors_cover_every_type_and_error():
    types = {e["message"]["type"] for v in VECTORS["vectors"] for e in v["events"] if e["kind"] == "frame"}
    assert types == {t.name for t in p.MsgType}
    codes = {e["code"] for v in VECTORS["vectors"] for e in v["events"] if e["kind"] == "error"}
    app_codes = {
        p.ErrorCode.SEQ_GAP, p.ErrorCode.ENGINE, p.ErrorCode.WRONG_MODE, p.ErrorCode.STORE,
        p.ErrorCode.RECORD,
    }  # fmt: skip
    decoder_codes = set(p.ErrorCode) - app_codes
    assert codes == {c.name for c in decoder_codes}  # the others come from the app (sim tests)


def test_decode_frame_raises_protocol_error():
    with pytest.raises(p.ProtocolError) as info:
        p.decode_frame(bytes.fromhex(next(v for v in VECTORS["vectors"] if v["name"] == "bad_crc")["wire"]))
    assert info.value.code == p.ErrorCode.BAD_CRC


# ---------------------------------------------------------------- round trips (hypothesis)

f32 = st.floats(width=32, allow_nan=False)
u32 = st.integers(0, 0xFFFFFFFF)
i8s = st.lists(st.integers(-128, 127), max_size=300).map(tuple)
text = st.text(max_size=20)


@st.composite
def sample_batches(draw):
    ch = draw(st.integers(1, 8))
    n = draw(st.integers(0, 40))
    return ch, tuple(tuple(draw(st.lists(f32, min_size=ch, max_size=ch))) for _ in range(n))


def _info(draw, cls):
    return cls(
        p.PROTOCOL_VERSION, draw(st.integers(0, 1)), draw(st.booleans()), draw(st.integers(1, 255)),
        draw(st.integers(0, 1)),
        draw(st.integers(0, 255)), draw(st.integers(1, 255)), draw(st.integers(-128, 127)),
        draw(st.integers(-128, 127)), *(draw(st.integers(0, 0xFFFF)) for _ in range(6)),
        *(draw(f32) for _ in range(5)), draw(st.binary(min_size=32, max_size=32)),
        *(draw(u32) for _ in range(5)), *(draw(st.integers(0, 255)) for _ in range(3)),
        draw(st.integers(0, 0xFFFF)), draw(st.integers(0, 0xFFFF)), *(draw(u32) for _ in range(4)),
        *(draw(text) for _ in range(5)),
    )  # fmt: skip


@st.composite
def messages(draw):
    kind = draw(st.sampled_from(list(p.MsgType)))
    if kind == p.MsgType.HELLO:
        return p.Hello()
    if kind == p.MsgType.RESET:
        return p.Reset()
    if kind in (p.MsgType.SAMPLES, p.MsgType.TELEMETRY):
        ch, samples = draw(sample_batches())
        cls = p.Samples if kind == p.MsgType.SAMPLES else p.Telemetry
        return cls(draw(u32), samples, ch)
    if kind == p.MsgType.SET:
        param = draw(st.sampled_from(list(p.Param)))
        return p.Setting(param, draw(f32) if param == p.Param.THRESHOLD else draw(u32))
    if kind in (p.MsgType.INFO, p.MsgType.BOOT):
        return _info(draw, p.Info if kind == p.MsgType.INFO else p.Boot)
    if kind == p.MsgType.RESULT:
        verify = draw(st.booleans())
        return p.Result(
            draw(u32), draw(f32), draw(st.booleans()), draw(st.booleans()),
            draw(st.integers(-(2**31), 2**31 - 1)), draw(u32),
            draw(i8s) if verify else None, draw(i8s) if verify else None, draw(st.booleans()),
        )  # fmt: skip
    if kind == p.MsgType.CALIB:
        action = draw(st.sampled_from(list(p.CalibAction)))
        record = draw(st.binary(max_size=300)) if action == p.CalibAction.WRITE else b""
        return p.Calib(action, draw(st.integers(0, 0xFFFF)), record)
    if kind == p.MsgType.CALIB_STATE:
        return p.CalibStatus(
            *(draw(st.integers(0, 255)) for _ in range(5)), draw(st.integers(0, 0xFFFF)),
            draw(st.integers(0, 0xFFFF)), draw(st.binary(max_size=300)),
        )  # fmt: skip
    if kind == p.MsgType.ACK:
        return p.Ack(draw(st.integers(0, 255)), draw(u32), draw(u32), draw(st.integers(0, 0xFFFF)))
    return p.ErrorReply(draw(st.integers(0, 255)), draw(st.integers(0, 255)), draw(u32), draw(u32), draw(u32))


def _clip_strings(msg):
    if isinstance(msg, p.Info):  # strings longer than MAX_STR bytes are cut by the encoder
        cut = {k: getattr(msg, k).encode()[: p.MAX_STR].decode("utf-8", "replace")
               for k in ("firmware_version", "target", "engine", "library", "cost_unit")}  # fmt: skip
        return type(msg)(**{**msg.__dict__, **cut})
    return msg


@settings(max_examples=300, deadline=None)
@given(messages(), u32)
def test_round_trip_every_message(msg, seq):
    wire = p.encode_frame(msg, seq)
    assert wire.endswith(b"\x00") and 0 not in wire[:-1]
    frame = p.decode_frame(wire)
    assert frame.seq == seq
    assert frame.msg == _clip_strings(msg)
    (event,) = p.StreamDecoder().feed(wire)
    assert event == frame


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_cobs_round_trip(data):
    enc = p.cobs_encode(data)
    assert 0 not in enc
    assert len(enc) <= len(data) + len(data) // 254 + 1
    assert p.cobs_decode(enc) == data


# ---------------------------------------------------------------- random streams and corruption


def _check_events(events):
    for e in events:
        assert isinstance(e, p.Frame | p.DecodeError | p.TextQuery)
        if isinstance(e, p.DecodeError):
            assert e.code in set(p.ErrorCode)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=3000), st.lists(st.integers(1, 64), max_size=20))
def test_random_bytes_never_raise_and_chunking_does_not_matter(data, cuts):
    whole = p.StreamDecoder(max_frame=401)
    ev_whole = whole.feed(data)
    _check_events(ev_whole)
    chunked, ev_chunked, pos = p.StreamDecoder(max_frame=401), [], 0
    for n in [*cuts, len(data)]:
        ev_chunked += chunked.feed(data[pos : pos + n])
        pos += n
    assert ev_chunked == ev_whole
    # each delimiter ends at most one event; text queries consume no delimiter
    assert whole.stats.frames + whole.stats.resyncs <= data.count(0)


@st.composite
def corrupted_streams(draw):
    msgs = draw(st.lists(messages(), min_size=1, max_size=6))
    frames = [p.encode_frame(m, i) for i, m in enumerate(msgs)]
    victim = draw(st.integers(0, len(frames) - 1))
    raw = bytearray(frames[victim])
    how = draw(st.sampled_from(["flip", "drop", "insert", "truncate"]))
    at = draw(st.integers(0, len(raw) - 2))  # never touch the delimiter itself
    if how == "flip":
        raw[at] ^= draw(st.integers(1, 255))
    elif how == "drop":
        del raw[at]
    elif how == "insert":
        raw.insert(at, draw(st.integers(0, 255)))
    else:
        raw = raw[:at] + b"\x00"
    return msgs, frames, victim, bytes(raw)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(corrupted_streams())
def test_corruption_is_reported_and_the_decoder_resyncs(case):
    msgs, frames, victim, bad = case
    stream = b"".join(frames[:victim]) + bad + b"".join(frames[victim + 1 :])
    dec = p.StreamDecoder()
    events = dec.feed(stream)
    _check_events(events)
    got = [e for e in events if isinstance(e, p.Frame)]
    # every frame before the victim and every frame after it decode intact
    before = [p.Frame(i, _clip_strings(m)) for i, m in enumerate(msgs[:victim])]
    after = [p.Frame(i, _clip_strings(m)) for i, m in enumerate(msgs) if i > victim]
    assert got[: len(before)] == before
    assert got[len(got) - len(after) :] == after if after else True
    middle = got[len(before) : len(got) - len(after)]
    # the damaged frame is either reported as an error or (a flip that CRC-32 cannot see is
    # astronomically unlikely) decodes to nothing but itself
    assert len(middle) <= 1
    if not middle:
        # reported, or the whole frame vanished (truncated to its delimiter): then the gap in the
        # sequence numbers is what shows the loss
        assert dec.stats.resyncs >= 1 or bad == b"\x00"
        assert victim not in [f.seq for f in got]
    # nothing is ever duplicated
    assert len(got) <= len(msgs)


def test_oversized_garbage_is_bounded_in_memory():
    dec = p.StreamDecoder(max_frame=401)
    for _ in range(200):
        assert dec.feed(b"\xaa" * 1000) == []
    assert len(dec._buf) < 2000
    (event,) = dec.feed(b"\x00")
    assert event.code == p.ErrorCode.OVERSIZED and event.got > 190_000


def test_nan_threshold_survives_as_nan():
    frame = p.decode_frame(p.encode_frame(p.Setting(p.Param.THRESHOLD, math.nan), 0))
    assert math.isnan(frame.msg.value)
