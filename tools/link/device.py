"""A session with a tinyae device over any pyserial port: handshake, settings, flow-controlled
sample streaming with sequence tracking, sensor-mode telemetry, reset and timeout detection.

    with open_device("/dev/ttyACM0", baud=115200, timeout=5.0) as dev:   # or socket://, sim://
        info = dev.handshake()
        summary = dev.stream(samples, on_result=print)

Every failure is a `DeviceError` (a `UserError`): one sentence saying what happened and what to do.
Nothing is skipped silently: lost device frames (header sequence gaps), lost windows (window
sequence gaps) and lost sensor samples are counted and listed by number in the summaries.
"""

from __future__ import annotations

import builtins
import errno
import math
import select
import socket
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import serial

from tinyae import f32
from tinyae.errors import UserError
from tinyae.tools.link import protocol as p

DEFAULT_BAUD = 115200
DEFAULT_TIMEOUT = 5.0
# Sample batches sent ahead of their acknowledgement: None = as many as fit p.HOST_WINDOW wire bytes, the
# receive window every tinyae device guarantees (docs/protocol.md, "Host obligations"; window_batches()).
DEFAULT_INFLIGHT: int | None = None
HELLO_RETRY_S = 0.5
READ_CHUNK = 65536
_LOCAL_SCHEMES = ("socket://", "loop://", "rfc2217://", "spy://", "hwgrep://", "alt://", "sim://")


class DeviceError(UserError):
    """A device or link failure; `kind` names it for callers and tests."""

    kind = "device"


class PortError(DeviceError):
    kind = "port"


class HandshakeError(DeviceError):
    kind = "handshake"


class DeviceReset(DeviceError):
    kind = "reset"


class DeviceTimeout(DeviceError):
    kind = "timeout"


class LinkClosed(DeviceError):
    kind = "closed"


# ---------------------------------------------------------------------------- opening ports
def _is_url(port: str) -> bool:
    return "://" in port


# URL schemes served in-process instead of by pyserial (scheme -> opener of the whole URL). The link
# knows no device; a layer above registers one (the simulated device: `sim`, tools/simdevice/port.py).
URL_OPENERS: dict[str, Callable[[str], Any]] = {}


def open_port(port: str, baud: int = DEFAULT_BAUD):  # type: ignore[no-untyped-def]
    """Open a device path, any pyserial URL or a registered URL_OPENERS scheme, non-blocking;
    PortError on failure."""
    if not port:
        raise PortError("no port given; pass --port (see `tinyae ports`) or --emulator")
    scheme = port.split("://", 1)[0] if _is_url(port) else ""
    if scheme in URL_OPENERS:
        return URL_OPENERS[scheme](port)
    kwargs: dict = {"baudrate": baud, "timeout": 0, "write_timeout": 10.0}
    if not _is_url(port):
        kwargs["exclusive"] = True  # Linux/macOS: flock, so a port another program holds is refused
    try:
        ser = serial.serial_for_url(port, **kwargs)
    except serial.SerialException as exc:
        raise PortError(_port_error_sentence(port, exc)) from None
    except (ValueError, OSError) as exc:
        raise PortError(f"cannot open {port}: {exc}; check the port name or URL") from None
    _no_delay(ser)
    return ser


def _no_delay(ser) -> None:  # type: ignore[no-untyped-def]
    """A socket:// port sends each frame at once: without TCP_NODELAY, Nagle's algorithm holds a frame
    written while an earlier one is unacknowledged until the peer's (delayed, up to 40 ms) TCP ACK."""
    sock = getattr(ser, "_socket", None)
    if isinstance(sock, socket.socket) and sock.family in (socket.AF_INET, socket.AF_INET6):
        with suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def window_batches(frame_bytes: int, window: int = p.HOST_WINDOW) -> int:
    """Sample batches of `frame_bytes` wire bytes the host may keep unacknowledged: as many as fit the
    protocol's receive window, at least one."""
    return max(1, window // max(1, frame_bytes))


def _port_error_sentence(port: str, exc: serial.SerialException) -> str:
    text = str(exc)
    code = exc.errno if isinstance(exc.errno, int) else None
    if "exclusively lock" in text or code in (errno.EBUSY, errno.EAGAIN, errno.EWOULDBLOCK):
        return (
            f"port {port} is busy: another program holds it (a serial monitor, `make monitor`, another "
            "tinyae command); close that program and retry"
        )
    if code == errno.ENOENT or "No such file" in text:
        return f"no serial port {port}; list the ports with `tinyae ports` and pass one with --port"
    if code == errno.EACCES or "Permission denied" in text:
        return (
            f"permission denied on {port}; add your user to the port's group (Debian: `sudo usermod -aG "
            "dialout $USER`, then log in again)"
        )
    if "Connection refused" in text or code == errno.ECONNREFUSED:
        return f"nothing listens at {port}; start the emulator (`make emulate`) or check the URL"
    return f"cannot open {port}: {text}; check the port and that no other program uses it"


# ---------------------------------------------------------------------------- summaries
@dataclass
class LinkStats:
    bytes_tx: int = 0
    bytes_rx: int = 0
    frames_rx: int = 0
    lost_frames: int = 0  # device->host frames missing from the header sequence
    decode_errors: int = 0  # frames the host decoder rejected (CRC, COBS, ...)
    device_errors: list[p.ErrorReply] = field(default_factory=list)
    retransmits: int = 0
    resets: int = 0  # device reboots seen (BOOT frame, or the device forgot acknowledged batches)
    replays: int = 0  # window ranges streamed again to recover lost windows


@dataclass
class StreamSummary:
    samples: int = 0
    batches: int = 0
    windows_expected: int = 0
    windows_received: int = 0
    lost_windows: list[int] = field(default_factory=list)
    retried_windows: list[int] = field(default_factory=list)  # lost at first, recovered by a replay
    resets: int = 0  # device reboots survived during this stream
    engine_errors: int = 0
    seconds: float = 0.0
    bytes_tx: int = 0
    bytes_rx: int = 0

    @property
    def complete(self) -> bool:
        return not self.lost_windows and self.windows_received == self.windows_expected


def windows_for(n_samples: int, length: int, hop: int) -> int:
    """How many windows the device completes over n samples (as tinyae.train.data.make_windows forms them)."""
    return 0 if n_samples < length else (n_samples - length) // hop + 1


# ---------------------------------------------------------------------------- the session
class Device:
    """One host session; not thread-safe. `ser` is a pyserial-like object opened non-blocking."""

    def __init__(self, ser, *, timeout: float = DEFAULT_TIMEOUT, name: str | None = None) -> None:  # type: ignore[no-untyped-def]
        self.ser = ser
        self.timeout = float(timeout)
        self.name = name or str(getattr(ser, "port", "the device"))
        self.info: p.Info | None = None
        self.stats = LinkStats()
        self._dec = p.StreamDecoder()
        self._inbox: deque[p.Message] = deque()
        self._tx_seq = 0
        self._rx_seq: int | None = None
        self._pre_bytes = bytearray()  # what arrived before the handshake (for diagnosis)
        self._echoes = 0
        self._pre_errors = 0
        self._bad_version: int | None = None
        self._windows_seen = 0  # for the reset sentence
        self._settings: dict[int, float | int] = {}  # what set() changed, re-applied after a reboot
        self._recovering = False  # while True a BOOT is queued as a message instead of raising
        self.on_raw: Callable[[bytes], None] | None = None

    # ------------------------------------------------------------------ low level
    def close(self) -> None:
        with suppress(Exception):  # closing a port that already failed must not hide the first error
            self.ser.close()

    def send(self, msg: p.Message) -> int:
        """Write one frame; its wire bytes."""
        data = p.encode_frame(msg, self._tx_seq)
        self._tx_seq = (self._tx_seq + 1) & 0xFFFFFFFF
        try:
            self.ser.write(data)
            if hasattr(self.ser, "flush") and not isinstance(msg, p.Samples):
                self.ser.flush()
        except (serial.SerialException, OSError) as exc:
            raise LinkClosed(f"writing to {self.name} failed ({exc}); the device was disconnected") from None
        self.stats.bytes_tx += len(data)
        return len(data)

    def _wait_readable(self, timeout: float) -> None:
        if timeout <= 0:
            return
        wait = getattr(self.ser, "wait_readable", None)
        if wait is not None:
            wait(timeout)
            return
        try:
            fd = self.ser.fileno()
        except (AttributeError, OSError, ValueError, serial.SerialException):
            time.sleep(min(timeout, 0.002))
            return
        try:
            select.select([fd], [], [], timeout)
        except (OSError, ValueError):
            time.sleep(min(timeout, 0.002))

    def _read_some(self, timeout: float) -> bytes:
        self._wait_readable(timeout)
        try:
            data = self._read_available()
        except (serial.SerialException, OSError) as exc:
            raise LinkClosed(
                f"the connection to {self.name} closed ({exc}); the device was unplugged or the "
                "emulator exited"
            ) from None
        if data:
            self.stats.bytes_rx += len(data)
            if self.on_raw is not None:
                self.on_raw(data)
        return data

    def _read_available(self) -> bytes:
        """What the port holds now. pyserial's socket:// read() drops the bytes it already received
        when it meets the end of the connection in the same call, so socket ports are read directly:
        every byte that arrived before a cut reaches the decoder, then the cut raises."""
        sock = getattr(self.ser, "_socket", None)
        if not isinstance(sock, socket.socket):
            return self.ser.read(READ_CHUNK)
        try:
            data = sock.recv(READ_CHUNK)
        except (BlockingIOError, InterruptedError):
            return b""
        if not data:
            raise serial.SerialException("socket disconnected")
        return data

    def poll(self, timeout: float) -> None:
        """Read what arrives within `timeout` s and queue the decoded messages."""
        data = self._read_some(timeout)
        if not data:
            return
        if self.info is None and len(self._pre_bytes) < 4096:
            self._pre_bytes += data[: 4096 - len(self._pre_bytes)]
        for ev in self._dec.feed(data):
            if isinstance(ev, p.DecodeError):
                if ev.code == p.ErrorCode.BAD_VERSION:
                    self._bad_version = ev.got
                if self.info is not None:
                    self.stats.decode_errors += 1
                else:
                    self._pre_errors += 1
                continue
            if isinstance(ev, p.TextQuery):
                continue
            msg = ev.msg
            if type(msg) in (p.Hello, p.Samples, p.Setting, p.Reset):
                self._echoes += 1  # our own frames coming back: a loopback, not a device
                continue
            self.stats.frames_rx += 1
            if isinstance(msg, p.Boot):
                self._rx_seq = ev.seq
                if self.info is not None:
                    self.stats.resets += 1
                    if not self._recovering:
                        raise self._reset_error()
            elif self._rx_seq is not None:
                gap = (ev.seq - self._rx_seq - 1) & 0xFFFFFFFF
                if 0 < gap < 0x80000000:
                    self.stats.lost_frames += gap
                self._rx_seq = ev.seq
            else:
                self._rx_seq = ev.seq
            self._inbox.append(msg)

    def _reset_error(self) -> DeviceReset:
        return DeviceReset(
            f"{self.name} reset during the session (its boot handshake appeared again after "
            f"{self._windows_seen} windows); check its power supply and for a crash or watchdog, "
            "then rerun (or pass --retries N to resume after a reset)"
        )

    def next_message(self, deadline: float, what: str) -> p.Message:
        """The next queued message, reading until `deadline`; DeviceTimeout names `what` was awaited."""
        while not self._inbox:
            left = deadline - time.monotonic()
            if left <= 0:
                raise DeviceTimeout(
                    f"no {what} from {self.name} within {self.timeout:g} s; the device stopped answering "
                    "(check the cable, or raise --timeout for a slow board)"
                )
            self.poll(min(left, 0.05))
        return self._inbox.popleft()

    # ------------------------------------------------------------------ handshake and settings
    def handshake(self) -> p.Info:
        """Send Hello (repeated every 0.5 s) until the device answers with its Info."""
        deadline = time.monotonic() + self.timeout
        next_hello = 0.0
        while True:
            now = time.monotonic()
            if now >= deadline:
                raise HandshakeError(self._no_handshake_sentence())
            if now >= next_hello:
                self.send(p.Hello())
                next_hello = now + HELLO_RETRY_S
            self.poll(min(0.05, deadline - now))
            while self._inbox:
                msg = self._inbox.popleft()
                if type(msg) is p.Info:
                    self._check_version(msg)
                    self.info = msg
                    self._dec.max_frame = max(msg.max_frame, 64) + 64
                    self.stats = LinkStats(bytes_tx=self.stats.bytes_tx, bytes_rx=self.stats.bytes_rx)
                    return msg
                if isinstance(msg, p.Boot):
                    next_hello = 0.0  # the device just (re)started: ask again at once

    def _check_version(self, info: p.Info) -> None:
        if info.proto_version != p.PROTOCOL_VERSION:
            raise HandshakeError(
                f"{self.name} speaks tinyae protocol version {info.proto_version} but this tool speaks "
                f"{p.PROTOCOL_VERSION}; flash firmware built from this checkout (or use the matching tool)"
            )

    def _no_handshake_sentence(self) -> str:
        raw = bytes(self._pre_bytes)
        who = f"{self.name} (baud {getattr(self.ser, 'baudrate', '?')})"
        if self._bad_version is not None:
            return (
                f"{who} speaks tinyae protocol version {self._bad_version}, this tool speaks "
                f"{p.PROTOCOL_VERSION}; flash firmware built from this checkout"
            )
        if self._echoes and not self._pre_errors:
            return (
                f"{who} sends back exactly what the tool writes (a loopback or echo, not a tinyae device); "
                "pass the port of the board"
            )
        if not raw:
            return (
                f"no handshake from {who} within {self.timeout:g} s: nothing was received; check that the "
                "tinyae firmware is flashed and that this is its port"
            )
        text = raw.replace(b"\x00", b"")
        printable = sum(32 <= b < 127 or b in (9, 10, 13) for b in text)
        if text and printable >= 0.9 * len(text):
            line = next((ln.strip() for ln in text.decode("ascii", "replace").splitlines() if ln.strip()), "")
            if self._echoes:
                return f"{who} echoes what the tool writes (a loopback, not a tinyae device); pass the board"
            return (
                f"{who} answers with text ({line[:60]!r}) but not the tinyae protocol: it runs other "
                "firmware; flash the tinyae firmware (`make flash`)"
            )
        return (
            f"no handshake from {who}: {len(raw)} unreadable bytes arrived; check the baud rate (--baud, "
            f"tinyae uses {DEFAULT_BAUD}) and that the device runs the tinyae firmware"
        )

    def _await_ack(
        self,
        ref_type: int,
        what: str,
        on_other: Callable[[p.Message], None] | None = None,
        resend: p.Message | None = None,
    ) -> p.Ack:
        """The ACK of `ref_type`. `resend` (an idempotent SET or RESET) is sent again, at most twice,
        when the device reports a corrupted frame or stays silent for a third of the timeout."""
        deadline = time.monotonic() + self.timeout
        resends = 2 if resend is not None else 0
        quiet = time.monotonic() + self.timeout / 3
        while True:
            try:
                msg = self.next_message(
                    min(deadline, quiet) if resends else deadline, f"acknowledgement of {what}"
                )
            except DeviceTimeout:
                if not resends or time.monotonic() >= deadline:
                    raise
                msg = None
            if msg is None or (isinstance(msg, p.ErrorReply) and msg.code in p.FRAMING_ERRORS and resends):
                assert resend is not None
                resends -= 1
                self.stats.retransmits += 1
                self.send(resend)
                quiet = time.monotonic() + self.timeout / 3
                continue
            if isinstance(msg, p.Boot):
                raise _Rebooted() if self._recovering else self._reset_error()
            if isinstance(msg, p.Ack) and msg.ref_type == ref_type:
                return msg
            if isinstance(msg, p.ErrorReply) and msg.ref_type == ref_type:
                err = DeviceError(
                    f"{self.name} refused {what} ({msg.code_name}, expected {msg.expected}, got {msg.got}); "
                    "check the value or update the firmware"
                )
                err.reply = msg  # type: ignore[attr-defined]
                raise err
            if on_other is not None:
                on_other(msg)

    def set(self, param: p.Param, value: float | int) -> None:
        """A runtime setting; waits for its acknowledgement (messages before it are dropped). A threshold is
        NaN (the device's default again) or a positive normal float32 (tinyae/f32.py): the device takes any
        float, and 1e-50 would be a threshold of 0 there."""
        if param == p.Param.THRESHOLD and not math.isnan(value):
            wrong = f32.problem(float(value), positive=True)
            if wrong:
                raise UserError(f"threshold {value!r} {wrong}; set a score such as 0.5")
        msg = p.Setting(int(param), value)
        self.send(msg)
        self._await_ack(p.MsgType.SET, f"setting {param.name.lower()}={value}", resend=msg)
        self._settings[int(param)] = value

    def reset_windows(self) -> None:
        """Clear the device's window state (window and batch numbering restart at 0)."""
        self.send(p.Reset())
        self._await_ack(p.MsgType.RESET, "the window reset", resend=p.Reset())

    def take_messages(self, timeout: float) -> list[p.Message]:
        """Read for up to `timeout` s and return every queued message (the queue is emptied)."""
        self.poll(timeout)
        out = list(self._inbox)
        self._inbox.clear()
        return out

    # ------------------------------------------------------------------ on-site calibration
    def calib_query(self) -> p.CalibStatus:
        """The device's calibration state and the record in use (CALIB QUERY, repeated on silence)."""
        self.require_info()
        for attempt in range(3):
            self.send(p.Calib(p.CalibAction.QUERY))
            deadline = time.monotonic() + self.timeout / 3
            try:
                while True:
                    msg = self.next_message(deadline, "the calibration state")
                    if isinstance(msg, p.Boot):
                        raise self._reset_error()
                    if isinstance(msg, p.CalibStatus):
                        return msg
                    if isinstance(msg, p.ErrorReply) and msg.ref_type == p.MsgType.CALIB:
                        raise DeviceError(
                            f"{self.name} refused the calibration query ({msg.code_name}); update its "
                            "firmware"
                        )
            except DeviceTimeout:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def calib_command(self, action: p.CalibAction, windows: int = 0, record: bytes = b"") -> None:
        """START / ABORT / FACTORY / WRITE, waiting for the ACK; the device's refusal is one sentence."""
        msg = p.Calib(int(action), int(windows), bytes(record))
        self.send(msg)
        what = {
            p.CalibAction.START: f"the calibration start ({windows or 'the most'} windows per phase)",
            p.CalibAction.ABORT: "the calibration abort",
            p.CalibAction.FACTORY: "the reset to factory values",
            p.CalibAction.WRITE: "the calibration record",
        }[p.CalibAction(action)]
        try:
            self._await_ack(p.MsgType.CALIB, what, resend=msg if action != p.CalibAction.START else None)
        except DeviceError as exc:
            raise DeviceError(_calib_refusal(self.name, exc, action, windows, self.info)) from None

    def require_info(self) -> p.Info:
        if self.info is None:
            self.handshake()
        assert self.info is not None
        return self.info

    def batch_size(self) -> int:
        info = self.require_info()
        room = (info.max_frame - p.OVERHEAD - p.SAMPLES_FIXED.size) // (4 * info.channels)
        return max(1, min(info.max_batch, room))

    # ------------------------------------------------------------------ host-stream mode
    def stream(
        self,
        samples: np.ndarray,
        on_result: Callable[[p.Result], None],
        *,
        realtime_hz: float | None = None,
        inflight: int | None = DEFAULT_INFLIGHT,
        on_progress: Callable[[int], None] | None = None,
        retries: int = 0,
        on_message: Callable[[p.Message], None] | None = None,
    ) -> StreamSummary:
        """Send `samples` [T, C] and hand every Result to `on_result` (window_seq 0-based, each once).

        Flow control: the batches not yet acknowledged hold at most p.HOST_WINDOW wire bytes (the receive
        window every tinyae device guarantees; at least one batch), or at most `inflight` batches when it
        is given. A batch the device rejected (SEQ_GAP after a corrupted frame) is resent. Lost windows
        are listed in the summary.

        With `retries` > 0 the stream recovers: windows whose RESULT was lost are streamed again
        (the device's window state is RESET and the samples from n-1 windows before the first lost
        one are replayed, so the decision history of the lost window is the same as the first time),
        and a device reboot (BOOT frame, or the device rejecting batches it had acknowledged) is
        followed by a new handshake, the settings made through `set()` and a replay of every window
        not received yet. Each replay round uses one retry; windows recovered are listed in
        `retried_windows`, windows still missing in `lost_windows`. Messages the stream itself does not
        use (a calibration's CALIB_STATE) go to `on_message`.
        """
        info = self.require_info()
        x = np.asarray(samples, np.float32)
        if x.ndim != 2 or x.shape[1] != info.channels:
            raise UserError(
                f"the data has {x.shape[-1] if x.ndim == 2 else '?'} channels but the device's model expects "
                f"{info.channels}; pass data with {info.channels} channel columns"
            )
        summary = StreamSummary(samples=len(x))
        summary.windows_expected = windows_for(len(x), info.window_len, info.hop)
        received: set[int] = set()
        first_pass: set[int] = set()
        tx0, rx0, t0 = self.stats.bytes_tx, self.stats.bytes_rx, time.monotonic()
        L, hop, n_hist = info.window_len, info.hop, max(1, info.decision_n)

        def deliver(r: p.Result, replay: bool) -> None:
            received.add(r.window_seq)
            if not replay:
                first_pass.add(r.window_seq)
            summary.windows_received += 1
            self._windows_seen = summary.windows_received
            if r.status != 0:
                summary.engine_errors += 1
            on_result(r)

        # Rounds: round 0 streams everything; later rounds replay ranges of missing windows.
        ranges: list[tuple[int, int]] = [(0, summary.windows_expected)]  # [first, end) window ranges
        rounds_left = max(0, int(retries))
        self._recovering = rounds_left > 0
        replay = False
        pending_reboot = False
        try:
            while True:
                rebooted = False
                try:
                    if pending_reboot:  # a reboot during the recovery itself uses another round
                        self._after_reboot()
                    for first, end in ranges:
                        # samples from window `first` up to the end of window end-1 (or all samples)
                        lo = first * hop
                        hi = len(x) if end >= summary.windows_expected else (end - 1) * hop + L
                        if replay:
                            self.stats.replays += 1
                        self._stream_range(
                            x[lo:hi], first, received, deliver, summary, info, replay=replay,
                            realtime_hz=realtime_hz, inflight=inflight,
                            on_progress=None if replay else on_progress, on_message=on_message,
                        )  # fmt: skip
                except _Rebooted:
                    rebooted = True
                    summary.resets += 1
                missing = sorted(set(range(summary.windows_expected)) - received)
                if not missing and not rebooted:
                    break
                if rounds_left <= 0:
                    if rebooted:
                        raise self._reset_error()
                    break
                rounds_left -= 1
                pending_reboot = rebooted
                ranges = _replay_ranges(missing, n_hist)
                replay = True
                if not missing:
                    break
        finally:
            self._recovering = False
        summary.lost_windows = sorted(set(range(summary.windows_expected)) - received)
        summary.retried_windows = sorted(received - first_pass)
        summary.seconds = time.monotonic() - t0
        summary.bytes_tx = self.stats.bytes_tx - tx0
        summary.bytes_rx = self.stats.bytes_rx - rx0
        return summary

    def _after_reboot(self) -> None:
        """After a device reboot: handshake again and re-apply the settings made in this session."""
        self._inbox.clear()
        self.info = None
        stats = self.stats
        self.handshake()
        self.stats = stats  # one session: the link figures span the reboot
        for param, value in list(self._settings.items()):
            self.set(p.Param(param), value)

    def _stream_range(
        self,
        x: np.ndarray,
        first: int,
        received: builtins.set[int],  # `set` is also a method of Device
        deliver: Callable[[p.Result, bool], None],
        summary: StreamSummary,
        info: p.Info,
        *,
        replay: bool,
        realtime_hz: float | None,
        inflight: int | None,
        on_progress: Callable[[int], None] | None,
        on_message: Callable[[p.Message], None] | None = None,
    ) -> None:
        """Stream samples whose first window is stream window `first`, after a window RESET.

        Results are delivered renumbered (device window_seq + first), each stream window once.
        Raises _Rebooted when the device rebooted (only while recovering; otherwise DeviceReset).
        """
        if info.mode != p.Mode.HOST_STREAM:
            self.set(p.Param.MODE, p.Mode.HOST_STREAM)
            self.info = info = _replace(info, mode=p.Mode.HOST_STREAM)
        self.reset_windows()
        bsize = self.batch_size()
        if realtime_hz:
            bsize = max(1, min(bsize, round(realtime_hz * 0.05)))
        starts = list(range(0, len(x), bsize))
        if not replay:
            summary.batches += len(starts)
        payloads = [
            tuple(tuple(float(v) for v in row) for row in x[s : s + bsize]) for s in starts
        ]  # fmt: skip
        t0 = time.monotonic()
        next_send, acked = 0, 0
        wire = [0] * len(payloads)  # wire bytes of each batch as last sent
        window = p.HOST_WINDOW
        if inflight is not None:
            window = max(1, int(inflight)) * p.samples_wire_bytes(bsize, info.channels)
        stale_until = -1  # batch seqs below this, rejected before a rewind, are stale rejections
        rewound_at = -1  # `acked` when a framing error last rewound the stream
        stalled = False  # one resend after a silence without progress, then DeviceTimeout

        def handle(msg: p.Message) -> None:
            nonlocal acked, next_send, stale_until, stalled, rewound_at
            if isinstance(msg, p.Boot):
                raise _Rebooted()
            if isinstance(msg, p.Result):
                w = msg.window_seq + first
                if w in received or w >= summary.windows_expected:
                    return
                deliver(_replace(msg, window_seq=w), replay)
            elif isinstance(msg, p.Ack) and msg.ref_type == p.MsgType.SAMPLES:
                if msg.batch_seq >= acked:
                    acked = msg.batch_seq + 1
                    stalled = False
                    if on_progress is not None:
                        on_progress(sum(len(b) for b in payloads[:acked]))
            elif isinstance(msg, p.ErrorReply):
                if msg.code == p.ErrorCode.SEQ_GAP and msg.ref_type == p.MsgType.SAMPLES:
                    if msg.expected < acked:
                        # the device forgot batches it had acknowledged: it rebooted (its BOOT was lost)
                        self.stats.resets += 1
                        if not self._recovering:
                            raise self._reset_error()
                        raise _Rebooted()
                    # every batch below `expected` was accepted (a resent batch the device already
                    # had: its ACK was lost), whether or not this rejection is a stale one
                    if msg.expected > acked:
                        acked = msg.expected
                        stalled = False
                    if msg.got < stale_until:
                        return
                    if msg.expected < next_send:
                        self.stats.retransmits += next_send - msg.expected
                        stale_until, next_send = next_send, msg.expected
                    return
                self.stats.device_errors.append(msg)
                if msg.code in p.FRAMING_ERRORS and acked < next_send and acked != rewound_at:
                    # A frame arrived corrupted. The device answers frames in order, so every batch it
                    # acknowledged before this error was fine: resend from the first unacknowledged
                    # one now rather than after a timeout (a batch that was fine after all is answered
                    # with SEQ_GAP, expected > got, which acknowledges it; later ones are stale).
                    # Once per acknowledgement: the framing errors that follow before the next ACK are
                    # about bytes sent before this resend (a burst of line noise answers with many),
                    # and rewinding for each would pile copies of the window into the device's
                    # buffer; a resent batch damaged in turn is resent after the timeout.
                    self.stats.retransmits += next_send - acked
                    stale_until, next_send, rewound_at = next_send, acked, acked
            elif isinstance(msg, p.CalibStatus) and on_message is not None:
                on_message(msg)

        def room() -> bool:
            """Another batch fits the window (the first unacknowledged one always does)."""
            if next_send == acked:
                return True
            ahead = sum(wire[acked:next_send])
            return ahead + p.samples_wire_bytes(len(payloads[next_send]), info.channels) <= window

        while acked < len(payloads):
            while next_send < len(payloads) and room():
                if realtime_hz:
                    due = t0 + (starts[next_send] + len(payloads[next_send])) / realtime_hz
                    while time.monotonic() < due:
                        self.poll(min(0.02, max(0.0, due - time.monotonic())))
                        while self._inbox:
                            handle(self._inbox.popleft())
                wire[next_send] = self.send(p.Samples(next_send, payloads[next_send], info.channels))
                next_send += 1
            try:
                msg = self.next_message(time.monotonic() + self.timeout, "acknowledgement of a sample batch")
            except DeviceTimeout:
                if stalled or next_send == acked:
                    raise
                stalled = True  # one resend: the last batch itself may have been corrupted on the way
                self.stats.retransmits += next_send - acked
                stale_until, next_send = next_send, acked
                continue
            handle(msg)
        while self._inbox:  # results are sent before their batch's ack; nothing should remain
            handle(self._inbox.popleft())

    # ------------------------------------------------------------------ sensor mode
    def sensor(self, *, stop: Callable[[], bool]) -> Iterator[p.Message]:
        """Switch to sensor mode and yield Telemetry/Result messages until `stop()` is true.

        Sample and window continuity is checked by the caller (`SensorTracker`). Switches the device
        back to host-stream mode on the way out (best effort).
        """
        self.require_info()
        self.set(p.Param.MODE, p.Mode.SENSOR)
        self.info = _replace(self.info, mode=p.Mode.SENSOR)
        try:
            last = time.monotonic()
            while not stop():
                if not self._inbox:
                    self.poll(0.05)
                if self._inbox:
                    last = time.monotonic()
                    msg = self._inbox.popleft()
                    if isinstance(msg, p.Result):
                        self._windows_seen += 1
                    yield msg
                elif time.monotonic() - last > self.timeout:
                    raise DeviceTimeout(
                        f"no sensor data from {self.name} for {self.timeout:g} s in sensor mode; the board "
                        "has no sensor source (build it with SENSOR=1) or stopped answering"
                    )
        finally:
            self.leave_sensor_mode()

    def leave_sensor_mode(self) -> None:
        try:
            self.send(p.Setting(int(p.Param.MODE), int(p.Mode.HOST_STREAM)))
            deadline = time.monotonic() + min(self.timeout, 2.0)
            while time.monotonic() < deadline:
                msg = self.next_message(deadline, "acknowledgement of the mode switch")
                if isinstance(msg, p.Ack) and msg.ref_type == p.MsgType.SET:
                    break
            if self.info is not None:
                self.info = _replace(self.info, mode=p.Mode.HOST_STREAM)
        except DeviceError:
            pass


@dataclass
class SensorTracker:
    """Continuity of sensor-mode telemetry (sample indices) and results (window numbers), and the
    device's sample clock: slots it skipped, samples it read late (docs/protocol.md, TELEMETRY)."""

    next_sample: int = 0
    next_window: int = 0
    lost_samples: list[tuple[int, int]] = field(default_factory=list)  # (first, count)
    lost_windows: list[int] = field(default_factory=list)
    skipped_slots: list[tuple[int, int]] = field(default_factory=list)  # (before sample, count)
    skipped: int = 0  # slots the device skipped since the stream started
    late: int = 0  # samples it read half a period or more after their slot
    source: int = 0  # p.Clock flags of the last frame

    def telemetry(self, t: p.Telemetry) -> None:
        if t.first_sample > self.next_sample:
            self.lost_samples.append((self.next_sample, t.first_sample - self.next_sample))
        self.next_sample = max(self.next_sample, t.first_sample + len(t.samples))
        if t.skipped > self.skipped:
            self.skipped_slots.append((t.first_sample, t.skipped - self.skipped))
        self.skipped = max(self.skipped, t.skipped)
        self.late = max(self.late, t.late)
        self.source = t.source

    @staticmethod
    def slot(t: p.Telemetry, i: int) -> int:
        """The time slot of sample i of frame t: its index plus the slots skipped before it."""
        return t.first_sample + i + t.skipped

    @property
    def synthetic(self) -> bool:
        return bool(self.source & p.Clock.SYNTHETIC)

    @property
    def late_matters(self) -> bool:
        """Late samples of a catch-up source still hold their slot's value; a sensor's do not."""
        return self.late > 0 and not self.source & p.Clock.CATCH_UP

    def clock_sentence(self, rate_hz: float) -> str:
        """What the device's sample clock missed, in one sentence ("" when nothing)."""
        parts = []
        if self.skipped:
            first = self.skipped_slots[0][0] if self.skipped_slots else 0
            parts.append(
                f"the device skipped {self.skipped} sample slot(s) (first before sample {first}): its loop "
                f"could not keep {rate_hz:g} Hz"
            )
        if self.late_matters:
            parts.append(f"it read {self.late} sample(s) half a period or more after their time")
        if not parts:
            return ""
        return (
            "; ".join(parts)
            + " — lower data.sample_rate_hz, shorten the inference (a smaller model, the compiled engine) or "
            "raise the serial speed"
        )

    def result(self, r: p.Result) -> None:
        if r.window_seq > self.next_window:
            self.lost_windows.extend(range(self.next_window, r.window_seq))
        self.next_window = max(self.next_window, r.window_seq + 1)

    @property
    def samples_lost(self) -> int:
        return sum(n for _, n in self.lost_samples)


class _Rebooted(Exception):
    """Internal: the device rebooted during a stream that may recover from it."""


RECORD_REFUSALS = {
    p.RecordVerdict.CORRUPT: "it is damaged (size or CRC-32)",
    p.RecordVerdict.OTHER_MODEL: (
        "it was made for another model (sha256); calibrate with this model's artifacts"
    ),
    p.RecordVerdict.OTHER_CONFIG: (
        "it was made under other calibration or normalization constants; calibrate with the artifacts the "
        "firmware was built from"
    ),
    p.RecordVerdict.VERSION: "its layout version is not this firmware's",
    p.RecordVerdict.BOUNDS: (
        "its values are outside the firmware's bounds, or not what its own statistics give (an edited record)"
    ),
}


def _calib_refusal(name: str, exc: DeviceError, action, windows: int, info) -> str:  # type: ignore[no-untyped-def]
    """The sentence for a refused CALIB command (the device's ERROR reply, named by its code)."""
    reply = getattr(exc, "reply", None)
    if reply is None:
        return str(exc)
    if reply.code == p.ErrorCode.BAD_PARAM and action == p.CalibAction.START:
        most = info.calib_max_windows if info is not None else reply.expected
        if windows and reply.expected > windows:  # below the minimum the firmware's statistics need
            return (
                f"{name} cannot calibrate over {windows} windows per phase: its firmware needs at least "
                f"{reply.expected} (the model's calibration.min_windows says why); pass --windows "
                f"{reply.expected} or more"
            )
        return (
            f"{name} cannot calibrate over {windows} windows per phase: its firmware holds at most {most} "
            "(calibration.windows); pass --windows within that, or rebuild with a larger calibration.windows"
        )
    if reply.code == p.ErrorCode.RECORD:
        try:
            why = RECORD_REFUSALS[p.RecordVerdict(reply.got)]
        except (KeyError, ValueError):
            why = f"verdict {reply.got}"
        return f"{name} refused the calibration record: {why}"
    if reply.code == p.ErrorCode.STORE:
        return (
            f"{name} could not write its calibration storage; what the storage holds stays in use "
            "(check the board's flash, then retry)"
        )
    return str(exc)


def _replay_ranges(missing: list[int], n_hist: int) -> list[tuple[int, int]]:
    """[first, end) window ranges that recover `missing`: each starts n_hist-1 windows early (the
    alarm of a window depends on the decisions of the n windows ending with it); overlaps merge."""
    out: list[tuple[int, int]] = []
    for w in missing:
        lo = max(0, w - (n_hist - 1))
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], w + 1))
        else:
            out.append((lo, w + 1))
    return out


def _replace(info, **kw):  # type: ignore[no-untyped-def]
    from dataclasses import replace

    return replace(info, **kw)


@contextmanager
def open_device(port: str, baud: int = DEFAULT_BAUD, timeout: float = DEFAULT_TIMEOUT) -> Iterator[Device]:
    """Open the port, handshake, yield the Device, always close the port."""
    ser = open_port(port, baud)
    dev = Device(ser, timeout=timeout, name=port)
    try:
        dev.handshake()
        yield dev
    finally:
        dev.close()
