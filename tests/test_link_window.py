"""The host's flow-control window (docs/protocol.md, "Flow control window"): sample batches are sent ahead
of their acknowledgement up to HOST_WINDOW wire bytes, the receive buffer every device guarantees is twice
that, and nothing is lost or resent on a clean link. Fast tests drive the real device application
(sim://, tae_app.c in-process) through a port that holds the device's answers back, so the host meets a
slow device and fills its window; the emulator test streams the test split to the Cortex-M4 image over
QEMU's UART and through a fault proxy. No test measures a rate: the bench does (tools/bench/streaming.py).
"""

from __future__ import annotations

import pytest

from tests.conftest import has_arm_toolchain
from tinyae.tools.link import protocol as p
from tinyae.tools.link.device import Device, open_port, window_batches
from tinyae.tools.simdevice.vectors import CONFIG


class SlowDevice:
    """sim:// whose answers reach the host one frame per read, after the host has written what it wants:
    a device (or link) slower than the host, the case the window exists for."""

    def __init__(self) -> None:
        self.sim = open_port("sim://")
        self._frames: list[bytes] = []
        self._partial = b""
        self._host = p.StreamDecoder()
        self.port = "sim://slow"
        self.outstanding = 0  # SAMPLES batches written, not yet acknowledged to the host
        self.ahead_bytes = 0  # their wire bytes
        self._sizes: list[int] = []
        self.max_outstanding = 0
        self.max_ahead_bytes = 0

    def write(self, data: bytes) -> int:
        for ev in self._host.feed(data):
            if isinstance(ev, p.Frame) and isinstance(ev.msg, p.Samples):
                self.outstanding += 1
                self._sizes.append(len(data))
                self.ahead_bytes += len(data)
        self.max_outstanding = max(self.max_outstanding, self.outstanding)
        self.max_ahead_bytes = max(self.max_ahead_bytes, self.ahead_bytes)
        return self.sim.write(data)

    def wait_readable(self, timeout: float) -> bool:
        self._fill()
        return bool(self._frames)

    def read(self, size: int = 1) -> bytes:
        self._fill()
        if not self._frames:
            return b""
        frame = self._frames.pop(0)
        for ev in p.StreamDecoder().feed(frame):
            if isinstance(ev, p.Frame) and isinstance(ev.msg, p.Ack) and ev.msg.ref_type == p.MsgType.SAMPLES:
                self.outstanding -= 1
                self.ahead_bytes -= self._sizes.pop(0)
        return frame

    def _fill(self) -> None:
        data = self._partial + self.sim.read(1 << 20)
        *whole, self._partial = data.split(b"\x00")
        self._frames += [f + b"\x00" for f in whole if f]  # a bare delimiter carries no frame

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.sim.close()


def stream_through(port: SlowDevice, inflight: int | None = None):  # type: ignore[no-untyped-def]
    import numpy as np

    dev = Device(port, timeout=5.0, name=port.port)
    info = dev.handshake()
    x = (
        np.random.default_rng(0)
        .normal(size=(40 * info.hop + info.window_len, info.channels))
        .astype(np.float32)
    )
    return dev, dev.stream(x, lambda r: None, inflight=inflight)


def test_the_window_is_the_protocols_receive_window_in_batches():
    frame = p.samples_wire_bytes(p.MAX_BATCH, CONFIG["channels"])
    port = SlowDevice()
    dev, summary = stream_through(port)
    assert summary.complete and summary.lost_windows == [] and dev.stats.retransmits == 0
    assert port.max_ahead_bytes <= p.HOST_WINDOW
    assert port.max_outstanding == window_batches(frame) > 2  # the old fixed window was 2 batches
    assert p.RX_BUFFER >= 2 * p.HOST_WINDOW  # a go-back-N resend behind stale copies still fits


def test_inflight_overrides_the_window():
    port = SlowDevice()
    _, summary = stream_through(port, inflight=1)
    assert summary.complete and port.max_outstanding == 1


def test_the_window_never_drops_below_one_batch():
    huge = p.HOST_WINDOW + 1
    assert window_batches(huge) == 1
    assert window_batches(p.samples_wire_bytes(32, 3)) == p.HOST_WINDOW // p.samples_wire_bytes(32, 3)


# ------------------------------------------------------------------------------- on the emulated board
emulator = pytest.mark.skipif(not has_arm_toolchain(), reason="needs arm-none-eabi-gcc and qemu-system-arm")


@pytest.mark.emulator
@emulator
def test_the_test_split_streams_at_the_larger_window_with_nothing_lost_or_resent(
    default_elf, default_model_dir
):
    import numpy as np

    from tinyae.tools.emulator.qemu import Emulator
    from tinyae.tools.link.device import open_device

    series = np.load(default_model_dir / "test_vectors.npz")["series"][:4000]
    with Emulator(default_elf) as emu, open_device(emu.url) as dev:
        dev.handshake()
        sent: list[int] = []
        send = dev.send

        def spy(msg: p.Message) -> int:
            if isinstance(msg, p.Samples):
                sent.append(msg.batch_seq)
            return send(msg)

        dev.send = spy  # type: ignore[method-assign]
        summary = dev.stream(series, lambda r: None)
    assert summary.complete and summary.lost_windows == [] and summary.retried_windows == []
    assert dev.stats.retransmits == 0 and dev.stats.decode_errors == 0 and dev.stats.lost_frames == 0
    assert dev.stats.device_errors == []  # no framing error: the device's buffer never overflowed
    assert sent == list(range(len(sent)))  # every batch sent once, in order


@pytest.mark.emulator
@emulator
def test_a_burst_of_line_noise_is_resent_once_per_acknowledgement(default_elf, default_model_dir):
    """3,000 bytes of garbage before a batch: the device answers many framing errors; the host rewinds once
    (and once more per acknowledgement), not once per error, and loses nothing."""
    import numpy as np

    from tinyae.tools.emulator.qemu import Emulator
    from tinyae.tools.faultproxy.proxy import Fault, FaultProxy

    series = np.load(default_model_dir / "test_vectors.npz")["series"][:2000]
    fault = Fault("garbage", "h2d", msg="samples:8", count=3000)
    with Emulator(default_elf) as emu, FaultProxy(emu.port, [fault], seed=7) as proxy:
        dev = Device(open_port(proxy.url), timeout=3.0, name=proxy.url)
        try:
            dev.handshake()
            summary = dev.stream(series, lambda r: None)
        finally:
            dev.close()
    errors = len(dev.stats.device_errors)
    assert summary.complete and summary.lost_windows == []
    assert errors > 3  # the burst was answered frame by frame
    frame = p.samples_wire_bytes(p.MAX_BATCH, 3)
    assert dev.stats.retransmits <= 2 * window_batches(frame)
