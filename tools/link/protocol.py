"""The tinyae serial protocol, host side: message dataclasses, frame codec and a stream decoder.

docs/protocol.md is the specification; firmware/lib/tinyae/src/tae_protocol.c is the device side;
tests/vectors/protocol_vectors.json binds both. Frame on the wire:

    COBS(header | body | crc32) 0x00      header = version u8, type u8, seq u32 (little-endian)

`encode_frame(msg, seq)` gives the wire bytes of one message; `StreamDecoder.feed(data)` turns any
byte stream into `Frame`, `DecodeError` and `TextQuery` events and never raises on bad input.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections import Counter
from dataclasses import dataclass, field
from enum import IntEnum, IntFlag
from typing import ClassVar

PROTOCOL_VERSION = 4
HEADER = struct.Struct("<BBI")
HEADER_SIZE = HEADER.size  # 6
CRC_SIZE = 4
OVERHEAD = HEADER_SIZE + CRC_SIZE
MAX_BATCH = 32  # TAE_PROTO_MAX_BATCH
MAX_STR = 32  # TAE_PROTO_MAX_STR
NO_SEQ = 0xFFFFFFFF  # ref_seq of an error about a frame that never parsed
DEFAULT_MAX_FRAME = 0xFFFF  # until the handshake says otherwise
# Flow control (docs/protocol.md section 5): the host keeps at most HOST_WINDOW wire bytes of
# unacknowledged SAMPLES frames in flight (TAE_PROTO_HOST_WINDOW); every device buffers at least
# RX_BUFFER received bytes (TAE_PROTO_RX_BUFFER), twice the window, because a go-back-N resend can
# follow stale copies of the same batches still in its buffer.
HOST_WINDOW = 2048
RX_BUFFER = 2 * HOST_WINDOW


class MsgType(IntEnum):
    HELLO = 0x01
    SAMPLES = 0x02
    SET = 0x03
    RESET = 0x04
    CALIB = 0x05
    INFO = 0x81
    BOOT = 0x82
    RESULT = 0x83
    TELEMETRY = 0x84
    ACK = 0x85
    ERROR = 0x86
    CALIB_STATE = 0x87


HOST_TYPES = frozenset({MsgType.HELLO, MsgType.SAMPLES, MsgType.SET, MsgType.RESET, MsgType.CALIB})
DEVICE_TYPES = frozenset(set(MsgType) - HOST_TYPES)


class ErrorCode(IntEnum):
    BAD_CRC = 1
    BAD_COBS = 2
    OVERSIZED = 3
    TRUNCATED = 4
    UNKNOWN_TYPE = 5
    BAD_LENGTH = 6
    SEQ_GAP = 7
    ENGINE = 8
    CHANNELS = 9
    BAD_VERSION = 10
    BAD_PARAM = 11
    WRONG_MODE = 12
    BATCH_TOO_BIG = 13
    STORE = 14
    RECORD = 15


FRAMING_ERRORS = frozenset({ErrorCode.BAD_CRC, ErrorCode.BAD_COBS, ErrorCode.OVERSIZED, ErrorCode.TRUNCATED})


class Param(IntEnum):
    THRESHOLD = 1
    VERIFY = 2
    MODE = 3


class Mode(IntEnum):
    HOST_STREAM = 0
    SENSOR = 1


class CalibAction(IntEnum):
    QUERY = 0
    START = 1
    ABORT = 2
    FACTORY = 3
    WRITE = 4


class CalibState(IntEnum):
    FACTORY = 0
    CALIBRATED = 1
    STATS = 2  # calibrating, phase 1 (sample statistics)
    SCORES = 3  # calibrating, phase 2 (scores for the threshold)


class CalibOutcome(IntEnum):
    NONE = 0
    RUNNING = 1
    STORED = 2
    ABORTED = 3
    SHIFT = 4
    SCALE = 5
    NOT_FINITE = 6
    THRESHOLD_HIGH = 7
    THRESHOLD_LOW = 8
    ENGINE = 9
    STORE = 10
    REJECTED = 11
    FACTORY = 12
    NOT_NORMAL = 13
    ANOMALOUS_STRETCH = (
        14  # k of n consecutive phase-2 windows above the factory threshold (max_over_stretch)
    )


class RecordVerdict(IntEnum):
    EMPTY = 0
    VALID = 1
    CORRUPT = 2
    OTHER_MODEL = 3
    OTHER_CONFIG = 4
    VERSION = 5
    BOUNDS = 6
    STORE_ERROR = 7


class RecordKind(IntEnum):
    NONE = 0
    IN_USE = 1
    CANDIDATE = 2


CALIB_FLAG_OFFSETS = 0x01
CALIB_FLAG_SCALES = 0x02
CALIB_FLAG_THRESHOLD = 0x04


RESULT_ANOMALY = 0x01
RESULT_ALARM = 0x02
RESULT_VERIFY = 0x04
RESULT_CALIB = 0x08  # a window of a running on-site calibration


def record_bytes(channels: int) -> int:
    """TAE_CALIB_RECORD_BYTES: a calibration record for `channels` channels (train/calibration/record.py)."""
    return 72 + 16 * channels


def wire_bytes(frame_bytes: int) -> int:
    """Most wire bytes a decoded frame of `frame_bytes` takes: COBS adds one byte per 254 and one more,
    then the 0x00 delimiter (TAE_PROTO_MAX_WIRE's formula)."""
    return frame_bytes + frame_bytes // 254 + 2


def samples_wire_bytes(count: int, channels: int) -> int:
    """Most wire bytes of a SAMPLES frame of `count` samples of `channels` channels."""
    return wire_bytes(OVERHEAD + SAMPLES_FIXED.size + 4 * count * channels)


def max_frame(channels: int, input_size: int, output_size: int, max_batch: int = MAX_BATCH) -> int:
    """TAE_PROTO_MAX_FRAME for a model: the largest decoded frame either side sends."""
    samples = TELEMETRY_FIXED.size + max_batch * channels * 4  # the larger of SAMPLES and TELEMETRY
    result = 17 + 4 + input_size + output_size
    info = INFO_FIXED_SIZE + INFO_STRINGS * MAX_STR
    calib_state = CALIB_STATE_FIXED.size + record_bytes(channels)
    return OVERHEAD + max(samples, result, info, calib_state)


class ProtocolError(Exception):
    """A frame or message that does not follow docs/protocol.md (carries the protocol error code)."""

    def __init__(
        self, code: ErrorCode, expected: int = 0, got: int = 0, ref_type: int | None = None, ref_seq=None
    ):
        super().__init__(f"{code.name}: expected {expected}, got {got}")
        self.code = code
        self.expected = expected
        self.got = got
        self.ref_type = ref_type
        self.ref_seq = ref_seq


# ---------------------------------------------------------------- messages


@dataclass(frozen=True)
class Hello:
    TYPE: ClassVar[MsgType] = MsgType.HELLO


@dataclass(frozen=True)
class Samples:
    """Host -> device batch. `samples[i]` is one sample of `channels` float32 values."""

    TYPE: ClassVar[MsgType] = MsgType.SAMPLES
    batch_seq: int
    samples: tuple[tuple[float, ...], ...]
    channels: int


@dataclass(frozen=True)
class Setting:
    """Runtime setting: THRESHOLD (float; NaN restores the model's), VERIFY (0|1), MODE (Mode)."""

    TYPE: ClassVar[MsgType] = MsgType.SET
    param: int
    value: float | int


@dataclass(frozen=True)
class Reset:
    TYPE: ClassVar[MsgType] = MsgType.RESET


@dataclass(frozen=True)
class Calib:
    """On-site calibration command (CalibAction): START n windows per phase (0 = the build's maximum),
    QUERY, ABORT, FACTORY, or WRITE `record` (a packed calibration record)."""

    TYPE: ClassVar[MsgType] = MsgType.CALIB
    action: int
    windows: int = 0
    record: bytes = b""


@dataclass(frozen=True)
class Info:
    """The handshake (answer to Hello)."""

    TYPE: ClassVar[MsgType] = MsgType.INFO
    proto_version: int
    mode: int
    verify: bool
    channels: int
    score_kind: int  # 0 mse, 1 mae
    decision_k: int
    decision_n: int
    in_zero_point: int
    out_zero_point: int
    window_len: int
    hop: int
    input_size: int
    output_size: int
    max_batch: int
    max_frame: int
    sample_rate_hz: float
    threshold: float  # the active threshold
    model_threshold: float  # the model's calibrated threshold
    in_scale: float
    out_scale: float
    model_sha256: bytes
    flash_used: int
    ram_static: int
    engine_ram: int
    stack_bytes: int
    tx_dropped: int  # device frames the link would not take since boot (dropped, not blocked on)
    calib_state: int  # CalibState
    calib_boot: int  # RecordVerdict: what the boot found in storage
    calib_flags: int  # CALIB_FLAG_* of the record in use (0: factory values)
    calib_windows: int  # N of the record in use
    calib_max_windows: int  # the build's TAE_CALIB_WINDOWS
    calib_crc: int  # CRC-32 of the record in use (0: none)
    # Digests the device computes over the constants it decides with (docs/protocol.md §3, "Constants")
    frontend_crc: int  # the feature front-end's tables
    norm_crc: int  # the normalization offsets and gains
    calib_config_crc: int  # the on-site calibration constants (the manifest's calibration.config_crc)
    firmware_version: str
    target: str
    engine: str
    library: str  # the TFLM library the engine links, name and version ("" for the compiled engine)
    cost_unit: str

    @property
    def score_name(self) -> str:
        return "mae" if self.score_kind == 1 else "mse"


@dataclass(frozen=True)
class Boot(Info):
    """Sent once after every device reset, same fields as Info."""

    TYPE: ClassVar[MsgType] = MsgType.BOOT


@dataclass(frozen=True)
class Result:
    """One completed window; input_q/output_q (int8) are present when verification is on."""

    TYPE: ClassVar[MsgType] = MsgType.RESULT
    window_seq: int
    score: float
    anomaly: bool
    alarm: bool
    status: int
    cost: int
    input_q: tuple[int, ...] | None = None
    output_q: tuple[int, ...] | None = None
    calib: bool = False  # a window of a running calibration


class Clock(IntFlag):
    """TELEMETRY `source`: what is behind the device's sample clock (tae_port.h TAE_CLOCK_*)."""

    SYNTHETIC = 1  # the built-in synthetic machine (tae_synth), not a sensor
    CATCH_UP = 2  # missed slots are delivered late, back to back, never skipped


@dataclass(frozen=True)
class Telemetry:
    """Sensor mode: raw samples, `first_sample` is the index of samples[0] since the last reset.

    skipped, late: the device's sample clock since the stream started, up to the last of these samples:
    slots it passed without reading a sample, samples it read half a period or more after their slot
    (docs/protocol.md). A frame's samples are contiguous in time: skipped slots fall between frames."""

    TYPE: ClassVar[MsgType] = MsgType.TELEMETRY
    first_sample: int
    samples: tuple[tuple[float, ...], ...]
    channels: int
    skipped: int = 0
    late: int = 0
    source: int = 0  # Clock flags


@dataclass(frozen=True)
class Ack:
    TYPE: ClassVar[MsgType] = MsgType.ACK
    ref_type: int
    ref_seq: int
    batch_seq: int
    windows: int


@dataclass(frozen=True)
class ErrorReply:
    TYPE: ClassVar[MsgType] = MsgType.ERROR
    code: int
    ref_type: int
    ref_seq: int
    expected: int
    got: int

    @property
    def code_name(self) -> str:
        try:
            return ErrorCode(self.code).name
        except ValueError:
            return f"code {self.code}"


@dataclass(frozen=True)
class CalibStatus:
    """The device's calibration state (answer to Calib QUERY; also sent when a calibration changes
    phase or ends). `record` is the packed record of `record_kind` (the one in use, or a calibration's
    candidate), empty for RecordKind.NONE."""

    TYPE: ClassVar[MsgType] = MsgType.CALIB_STATE
    state: int
    outcome: int
    detail: int
    boot: int
    record_kind: int
    windows: int
    done: int
    record: bytes = b""


Message = (
    Hello
    | Samples
    | Setting
    | Reset
    | Calib
    | Info
    | Boot
    | Result
    | Telemetry
    | Ack
    | ErrorReply
    | CalibStatus
)
_CLASSES = (
    Hello, Samples, Setting, Reset, Calib, Info, Boot, Result, Telemetry, Ack, ErrorReply, CalibStatus,
)  # fmt: skip
MESSAGE_CLASSES: dict[int, type] = {cls.TYPE: cls for cls in _CLASSES}


@dataclass(frozen=True)
class Frame:
    seq: int
    msg: Message


@dataclass(frozen=True)
class DecodeError:
    """A frame the decoder rejected; it resynced on the delimiter that ended it."""

    code: ErrorCode
    expected: int
    got: int
    ref_type: int | None = None  # header fields, when the header could be read
    ref_seq: int | None = None


@dataclass(frozen=True)
class TextQuery:
    """A "?\\n" text line (the human-readable handshake request)."""


Event = Frame | DecodeError | TextQuery

# ---------------------------------------------------------------- CRC and COBS


def crc32(data: bytes) -> int:
    """CRC-32/ISO-HDLC, the same as zlib.crc32 and tae_crc32."""
    return zlib.crc32(data) & 0xFFFFFFFF


def cobs_encode(data: bytes) -> bytes:
    """COBS (Cheshire & Baker 1999) without the trailing delimiter; canonical, as tae_cobs_write."""
    out = bytearray()
    start, n = 0, len(data)
    while True:
        zero = data.find(b"\x00", start, min(start + 254, n))
        end = zero if zero >= 0 else min(start + 254, n)
        code = end - start + 1
        out.append(code)
        out += data[start:end]
        if end >= n:
            return bytes(out)
        start = end if code == 0xFF else end + 1


def _cobs_scan(data: bytes, remaining: int, pending: bool, out: bytearray | None) -> tuple[int, int, bool]:
    """Decode zero-free COBS bytes from a state; returns (decoded bytes, remaining, pending zero)."""
    count, i, n = 0, 0, len(data)
    while i < n:
        if remaining == 0:
            code = data[i]
            i += 1
            if pending:
                count += 1
                if out is not None:
                    out.append(0)
            remaining, pending = code - 1, code != 0xFF
        else:
            take = min(remaining, n - i)
            if out is not None:
                out += data[i : i + take]
            count += take
            i += take
            remaining -= take
    return count, remaining, pending


def cobs_decode(data: bytes) -> bytes:
    """Decode one COBS frame (no delimiter). Raises ProtocolError(BAD_COBS) on a short block."""
    if 0 in data:
        raise ProtocolError(ErrorCode.BAD_COBS, 0, data.index(0))
    out = bytearray()
    _, remaining, _ = _cobs_scan(data, 0, False, out)
    if remaining:
        raise ProtocolError(ErrorCode.BAD_COBS, 0, remaining)
    return bytes(out)


# ---------------------------------------------------------------- encoding

INFO_FIXED = struct.Struct("<BBBBBBBbbHHHHHHfffff32sIIIIIBBBHHIIII")
INFO_STRINGS = 5  # firmware version, target, engine, library, cost unit
INFO_FIXED_SIZE = INFO_FIXED.size + INFO_STRINGS  # plus the string length bytes (125)
CALIB_FIXED = struct.Struct("<BH")
CALIB_STATE_FIXED = struct.Struct("<BBBBBBHHH")
RESULT_FIXED = struct.Struct("<IfBiI")
SAMPLES_FIXED = struct.Struct("<IHB")
TELEMETRY_FIXED = struct.Struct("<IIIBHB")  # first_sample, skipped, late, source, count, channels
ACK = struct.Struct("<BIIH")
ERROR = struct.Struct("<BBIII")
SET_FMT = struct.Struct("<BI")


def _f32(x: float) -> float:
    return struct.unpack("<f", struct.pack("<f", x))[0]


def _str(s: str) -> bytes:
    b = s.encode("utf-8")[:MAX_STR]
    return bytes([len(b)]) + b


def _samples_body(seq_field: int, samples: tuple[tuple[float, ...], ...], channels: int) -> bytes:
    flat = [v for s in samples for v in s]
    if any(len(s) != channels for s in samples):
        raise ValueError(f"every sample must have {channels} channels")
    return SAMPLES_FIXED.pack(seq_field, len(samples), channels) + struct.pack(f"<{len(flat)}f", *flat)


def encode_body(msg: Message) -> bytes:
    if isinstance(msg, Hello | Reset):
        return b""
    if isinstance(msg, Samples):
        return _samples_body(msg.batch_seq, msg.samples, msg.channels)
    if isinstance(msg, Telemetry):
        head = TELEMETRY_FIXED.pack(
            msg.first_sample, msg.skipped, msg.late, msg.source, len(msg.samples), msg.channels
        )
        return head + _samples_body(0, msg.samples, msg.channels)[SAMPLES_FIXED.size :]
    if isinstance(msg, Setting):
        if msg.param == Param.THRESHOLD:
            return struct.pack("<Bf", msg.param, msg.value)
        return SET_FMT.pack(msg.param, int(msg.value))
    if isinstance(msg, Info):
        fixed = INFO_FIXED.pack(
            msg.proto_version, msg.mode, int(msg.verify), msg.channels, msg.score_kind, msg.decision_k,
            msg.decision_n, msg.in_zero_point, msg.out_zero_point, msg.window_len, msg.hop, msg.input_size,
            msg.output_size, msg.max_batch, msg.max_frame, msg.sample_rate_hz, msg.threshold,
            msg.model_threshold, msg.in_scale, msg.out_scale, msg.model_sha256, msg.flash_used,
            msg.ram_static, msg.engine_ram, msg.stack_bytes, msg.tx_dropped, msg.calib_state, msg.calib_boot,
            msg.calib_flags, msg.calib_windows, msg.calib_max_windows, msg.calib_crc, msg.frontend_crc,
            msg.norm_crc, msg.calib_config_crc,
        )  # fmt: skip
        strings = (msg.firmware_version, msg.target, msg.engine, msg.library, msg.cost_unit)
        return fixed + b"".join(_str(s) for s in strings)
    if isinstance(msg, Result):
        in_q, out_q = msg.input_q, msg.output_q
        verify = in_q is not None and out_q is not None
        flags = (RESULT_ANOMALY if msg.anomaly else 0) | (RESULT_ALARM if msg.alarm else 0)
        flags |= (RESULT_VERIFY if verify else 0) | (RESULT_CALIB if msg.calib else 0)
        body = RESULT_FIXED.pack(msg.window_seq, msg.score, flags, msg.status, msg.cost)
        if in_q is not None and out_q is not None:
            n_in, n_out = len(in_q), len(out_q)
            body += struct.pack(f"<H{n_in}bH{n_out}b", n_in, *in_q, n_out, *out_q)
        return body
    if isinstance(msg, Ack):
        return ACK.pack(msg.ref_type, msg.ref_seq, msg.batch_seq, msg.windows)
    if isinstance(msg, ErrorReply):
        return ERROR.pack(msg.code, msg.ref_type, msg.ref_seq, msg.expected, msg.got)
    if isinstance(msg, Calib):
        return CALIB_FIXED.pack(msg.action, msg.windows) + bytes(msg.record)
    if isinstance(msg, CalibStatus):
        fixed = CALIB_STATE_FIXED.pack(
            msg.state, msg.outcome, msg.detail, msg.boot, msg.record_kind, 0, msg.windows, msg.done,
            len(msg.record),
        )  # fmt: skip
        return fixed + bytes(msg.record)
    raise TypeError(f"not a protocol message: {msg!r}")


def encode_payload(msg: Message, seq: int) -> bytes:
    """header | body | crc32, before COBS."""
    payload = HEADER.pack(PROTOCOL_VERSION, msg.TYPE, seq & 0xFFFFFFFF) + encode_body(msg)
    return payload + struct.pack("<I", crc32(payload))


def encode_frame(msg: Message, seq: int) -> bytes:
    """The wire bytes of one message: COBS(header | body | crc32) + 0x00."""
    return cobs_encode(encode_payload(msg, seq)) + b"\x00"


# ---------------------------------------------------------------- decoding


@dataclass(frozen=True)
class DeviceLimits:
    """Checks the device applies to host->device messages (from model_config.h / the handshake)."""

    channels: int
    max_batch: int = MAX_BATCH


def _samples_of(body: bytes, count: int, channels: int, offset: int = 0) -> tuple[tuple[float, ...], ...]:
    flat = struct.unpack_from(f"<{count * channels}f", body, offset or SAMPLES_FIXED.size)
    return tuple(tuple(flat[i * channels : (i + 1) * channels]) for i in range(count))


def _decode_samples(body: bytes, limits: DeviceLimits | None) -> tuple[int, int, int]:
    if len(body) < SAMPLES_FIXED.size:
        raise ProtocolError(ErrorCode.BAD_LENGTH, SAMPLES_FIXED.size, len(body))
    seq_field, count, channels = SAMPLES_FIXED.unpack_from(body)
    if limits is not None:
        if channels != limits.channels:
            raise ProtocolError(ErrorCode.CHANNELS, limits.channels, channels)
        if count > limits.max_batch:
            raise ProtocolError(ErrorCode.BATCH_TOO_BIG, limits.max_batch, count)
    need = SAMPLES_FIXED.size + count * channels * 4
    if len(body) != need:
        raise ProtocolError(ErrorCode.BAD_LENGTH, need, len(body))
    return seq_field, count, channels


def _expect_len(body: bytes, n: int) -> None:
    if len(body) != n:
        raise ProtocolError(ErrorCode.BAD_LENGTH, n, len(body))


def _decode_info(cls: type, body: bytes) -> Info:
    if len(body) < INFO_FIXED_SIZE:
        raise ProtocolError(ErrorCode.BAD_LENGTH, INFO_FIXED_SIZE, len(body))
    fixed = INFO_FIXED.unpack_from(body)
    pos, strings = INFO_FIXED.size, []
    for _ in range(INFO_STRINGS):
        n = body[pos] if pos < len(body) else 0
        if pos >= len(body) or n > MAX_STR or pos + 1 + n > len(body):
            raise ProtocolError(ErrorCode.BAD_LENGTH, pos + 1 + min(n, MAX_STR), len(body))
        strings.append(body[pos + 1 : pos + 1 + n].decode("utf-8", errors="replace"))
        pos += 1 + n
    _expect_len(body, pos)
    values = list(fixed)
    values[2] = bool(values[2])
    return cls(*values, *strings)


def _decode_result(body: bytes) -> Result:
    if len(body) < RESULT_FIXED.size:
        raise ProtocolError(ErrorCode.BAD_LENGTH, RESULT_FIXED.size, len(body))
    window_seq, score, flags, status, cost = RESULT_FIXED.unpack_from(body)
    anomaly, alarm = bool(flags & RESULT_ANOMALY), bool(flags & RESULT_ALARM)
    calib = bool(flags & RESULT_CALIB)
    if not flags & RESULT_VERIFY:
        _expect_len(body, RESULT_FIXED.size)
        return Result(window_seq, score, anomaly, alarm, status, cost, calib=calib)
    pos = RESULT_FIXED.size
    if len(body) < pos + 2:
        raise ProtocolError(ErrorCode.BAD_LENGTH, pos + 2, len(body))
    (n_in,) = struct.unpack_from("<H", body, pos)
    pos += 2 + n_in
    if len(body) < pos + 2:
        raise ProtocolError(ErrorCode.BAD_LENGTH, pos + 2, len(body))
    (n_out,) = struct.unpack_from("<H", body, pos)
    _expect_len(body, pos + 2 + n_out)
    input_q = struct.unpack_from(f"<{n_in}b", body, RESULT_FIXED.size + 2)
    output_q = struct.unpack_from(f"<{n_out}b", body, pos + 2)
    return Result(window_seq, score, anomaly, alarm, status, cost, input_q, output_q, calib)


def _decode_calib(body: bytes, limits: DeviceLimits | None) -> Calib:
    if len(body) < CALIB_FIXED.size:
        raise ProtocolError(ErrorCode.BAD_LENGTH, CALIB_FIXED.size, len(body))
    action, windows = CALIB_FIXED.unpack_from(body)
    if action not in set(CalibAction):
        raise ProtocolError(ErrorCode.BAD_PARAM, 0, action)
    record = body[CALIB_FIXED.size :]
    if action == CalibAction.WRITE:
        if limits is not None:
            _expect_len(body, CALIB_FIXED.size + record_bytes(limits.channels))
    else:
        _expect_len(body, CALIB_FIXED.size)
    return Calib(action, windows, bytes(record))


def _decode_calib_state(body: bytes) -> CalibStatus:
    if len(body) < CALIB_STATE_FIXED.size:
        raise ProtocolError(ErrorCode.BAD_LENGTH, CALIB_STATE_FIXED.size, len(body))
    state, outcome, detail, boot, kind, _, windows, done, n = CALIB_STATE_FIXED.unpack_from(body)
    _expect_len(body, CALIB_STATE_FIXED.size + n)
    record = bytes(body[CALIB_STATE_FIXED.size :])
    return CalibStatus(state, outcome, detail, boot, kind, windows, done, record)


def decode_message(type_: int, body: bytes, limits: DeviceLimits | None = None) -> Message:
    """Decode a message body of a known type; raises ProtocolError on a malformed body."""
    if type_ in (MsgType.HELLO, MsgType.RESET):
        _expect_len(body, 0)
        return Hello() if type_ == MsgType.HELLO else Reset()
    if type_ == MsgType.SAMPLES:
        seq_field, count, channels = _decode_samples(body, limits)
        return Samples(seq_field, _samples_of(body, count, channels), channels)
    if type_ == MsgType.TELEMETRY:
        if len(body) < TELEMETRY_FIXED.size:
            raise ProtocolError(ErrorCode.BAD_LENGTH, TELEMETRY_FIXED.size, len(body))
        first, skipped, late, source, count, channels = TELEMETRY_FIXED.unpack_from(body)
        _expect_len(body, TELEMETRY_FIXED.size + count * channels * 4)
        return Telemetry(
            first, _samples_of(body, count, channels, TELEMETRY_FIXED.size), channels, skipped, late, source
        )
    if type_ == MsgType.SET:
        _expect_len(body, SET_FMT.size)
        param, raw = SET_FMT.unpack(body)
        if param not in set(Param):
            raise ProtocolError(ErrorCode.BAD_PARAM, 0, param)
        value = struct.unpack("<f", body[1:5])[0] if param == Param.THRESHOLD else raw
        return Setting(param, value)
    if type_ in (MsgType.INFO, MsgType.BOOT):
        return _decode_info(Info if type_ == MsgType.INFO else Boot, body)
    if type_ == MsgType.RESULT:
        return _decode_result(body)
    if type_ == MsgType.ACK:
        _expect_len(body, ACK.size)
        return Ack(*ACK.unpack(body))
    if type_ == MsgType.ERROR:
        _expect_len(body, ERROR.size)
        return ErrorReply(*ERROR.unpack(body))
    if type_ == MsgType.CALIB:
        return _decode_calib(body, limits)
    if type_ == MsgType.CALIB_STATE:
        return _decode_calib_state(body)
    raise ProtocolError(ErrorCode.UNKNOWN_TYPE, 0, type_)


def decode_payload(
    payload: bytes, *, accept: frozenset[int] | None = None, limits: DeviceLimits | None = None
) -> Frame:
    """Decode header | body | crc32 (after COBS). Raises ProtocolError with the protocol's code."""
    if len(payload) < OVERHEAD:
        raise ProtocolError(ErrorCode.TRUNCATED, OVERHEAD, len(payload))
    computed = crc32(payload[:-CRC_SIZE])
    (received,) = struct.unpack_from("<I", payload, len(payload) - CRC_SIZE)
    if computed != received:
        raise ProtocolError(ErrorCode.BAD_CRC, computed, received)
    return _decode_checked(payload, accept, limits)


def _decode_checked(payload: bytes, accept: frozenset[int] | None, limits: DeviceLimits | None) -> Frame:
    version, type_, seq = HEADER.unpack_from(payload)
    try:
        if version != PROTOCOL_VERSION:
            raise ProtocolError(ErrorCode.BAD_VERSION, PROTOCOL_VERSION, version)
        if accept is not None and type_ not in accept:
            raise ProtocolError(ErrorCode.UNKNOWN_TYPE, 0, type_)
        msg = decode_message(type_, payload[HEADER_SIZE:-CRC_SIZE], limits)
    except ProtocolError as exc:
        exc.ref_type, exc.ref_seq = type_, seq
        raise
    return Frame(seq, msg)


def decode_frame(wire: bytes, **kwargs) -> Frame:
    """Decode one complete wire frame (a trailing 0x00 is optional)."""
    if wire.endswith(b"\x00"):
        wire = wire[:-1]
    return decode_payload(cobs_decode(wire), **kwargs)


# ---------------------------------------------------------------- stream decoder


@dataclass
class DecoderStats:
    bytes: int = 0
    frames: int = 0
    text_queries: int = 0
    errors: Counter = field(default_factory=Counter)  # ErrorCode -> count

    @property
    def resyncs(self) -> int:
        """Every rejected frame is a resync on the next delimiter."""
        return sum(self.errors.values())


class StreamDecoder:
    """Incremental decoder with the same outcomes as tae_frame_decoder_push + message decoding.

    `feed(data)` returns the events completed by `data`; bad input becomes DecodeError events,
    never an exception. Memory is bounded: a frame longer than the limit is counted, not stored.
    """

    def __init__(
        self,
        max_frame: int = DEFAULT_MAX_FRAME,
        *,
        accept: frozenset[int] | None = None,
        limits: DeviceLimits | None = None,
    ):
        self.max_frame = max_frame
        self.accept = accept
        self.limits = limits
        self.stats = DecoderStats()
        self._buf = bytearray()
        self._skip_line = False
        # counting state for a frame that outgrew the buffer (it can only end OVERSIZED)
        self._counting = False
        self._seen = 0
        self._remaining = 0
        self._pending = False

    @classmethod
    def for_device(cls, channels: int, input_size: int, output_size: int, max_batch: int = MAX_BATCH):
        """A decoder that judges host->device frames exactly as the device does."""
        return cls(
            max_frame(channels, input_size, output_size, max_batch),
            accept=HOST_TYPES,
            limits=DeviceLimits(channels, max_batch),
        )

    def _wire_cap(self) -> int:
        # Any zero-free run longer than this decodes to more than max_frame bytes.
        return self.max_frame + self.max_frame // 254 + 4

    def feed(self, data: bytes) -> list[Event]:
        self.stats.bytes += len(data)
        events: list[Event] = []
        buf = self._buf
        buf += data
        pos = 0
        while pos < len(buf):
            if self._skip_line:
                while pos < len(buf) and buf[pos] in (0x0A, 0x0D):
                    pos += 1
                if pos >= len(buf):
                    break
                self._skip_line = False
            zero = buf.find(0, pos)
            if self._counting:
                end = len(buf) if zero < 0 else zero
                seen, self._remaining, self._pending = _cobs_scan(
                    bytes(buf[pos:end]), self._remaining, self._pending, None
                )
                self._seen += seen
                pos = end
                if zero < 0:
                    break
                pos += 1
                self._counting = False
                events.append(self._error(ProtocolError(ErrorCode.OVERSIZED, self.max_frame, self._seen)))
                continue
            if buf[pos] == 0x3F and pos + 1 < len(buf) and buf[pos + 1] in (0x0A, 0x0D):
                pos += 2
                self._skip_line = True
                self.stats.text_queries += 1
                events.append(TextQuery())
                continue
            if zero < 0:
                if len(buf) - pos > self._wire_cap():
                    seen, self._remaining, self._pending = _cobs_scan(bytes(buf[pos:]), 0, False, None)
                    self._seen, self._counting = seen, True
                    pos = len(buf)
                break
            piece = bytes(buf[pos:zero])
            pos = zero + 1
            if piece:
                events.append(self._finish(piece))
        del buf[:pos]
        return events

    def _error(self, exc: ProtocolError) -> DecodeError:
        self.stats.errors[exc.code] += 1
        return DecodeError(exc.code, exc.expected, exc.got, exc.ref_type, exc.ref_seq)

    def _finish(self, piece: bytes) -> Event:
        out = bytearray()
        count, remaining, _ = _cobs_scan(piece, 0, False, out)
        try:
            if count > self.max_frame:
                raise ProtocolError(ErrorCode.OVERSIZED, self.max_frame, count)
            if remaining:
                raise ProtocolError(ErrorCode.BAD_COBS, 0, remaining)
            frame = decode_payload(bytes(out), accept=self.accept, limits=self.limits)
        except ProtocolError as exc:
            return self._error(exc)
        self.stats.frames += 1
        return frame


def float32(x: float) -> float:
    """x rounded to float32 (what survives a trip through the protocol)."""
    return _f32(x) if math.isfinite(x) else x
