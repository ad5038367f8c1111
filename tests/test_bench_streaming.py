"""The streaming bench's bound (tools/bench/streaming.py): the link image's 'X' driver carries exactly the
units asked for, keeps no more than its window in flight, stops only between whole commands, refuses a
measurement whose bytes were dropped; a run's bound carries the measured margin; the report says what was
measured. The fast tests drive a stand-in link image over a socket pair; the emulator test drives the real
one (bench_app.c with TAE_BENCH_LINK), pinned and paused as the bench does. No test measures a rate.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import has_arm_toolchain
from tinyae.errors import UserError
from tinyae.tools.bench import streaming
from tinyae.tools.bench.report import render_streaming


class FakeLink(threading.Thread):
    """bench_app.c's 'X' mode in Python: commands "X<up>,<down>,<k>\\n", then for every <up> bytes received
    <down> bytes back, then "XD <k> dropped=<D>\\r\\n"; records the most bytes ever received ahead of the
    units it answered."""

    def __init__(self, sock: socket.socket, dropped: int = 0) -> None:
        super().__init__(daemon=True)
        self.sock, self.dropped = sock, dropped
        self.commands: list[tuple[int, int, int]] = []
        self.max_unanswered = 0
        self.partial = b""  # bytes left over when the host closed
        self.received = self.answered = 0  # bytes in (command lines included), answer bytes out

    def run(self) -> None:
        buf = b""
        cmd: tuple[int, int, int] | None = None
        got = done = 0
        while True:
            data = self.sock.recv(65536)
            if not data:
                self.partial = buf
                return
            buf += data
            self.received += len(data)
            while True:
                if cmd is None:
                    m = re.match(rb"X(\d+),(\d+),(\d+)\n", buf)
                    if m is None:
                        break
                    cmd = (int(m.group(1)), int(m.group(2)), int(m.group(3)))
                    self.commands.append(cmd)
                    buf, got, done = buf[m.end() :], 0, 0
                up, down, k = cmd
                self.max_unanswered = max(self.max_unanswered, len(buf))
                take = min(len(buf), up * (k - done) - got)
                got += take
                buf = buf[take:]
                while got >= up:
                    got -= up
                    done += 1
                    self.sock.sendall(b"\x01" * down)
                    self.answered += down
                if done == k:
                    self.sock.sendall(f"XD {k} dropped={self.dropped}\r\n".encode())
                    cmd = None
                    continue
                break


def _pair(dropped: int = 0) -> tuple[socket.socket, FakeLink]:
    host, dev = socket.socketpair()
    link = FakeLink(dev, dropped)
    link.start()
    return host, link


def test_carry_counts_every_unit_in_whole_commands_and_keeps_its_window() -> None:
    host, link = _pair()
    units = 2 * streaming.CHUNK_UNITS + 5
    times = streaming._carry(host, 40.3, 7.25, units=units, ahead=200)
    host.close()
    link.join(5.0)
    assert len(times) == 1 + units
    assert times == sorted(times)
    assert [c[2] for c in link.commands] == [streaming.CHUNK_UNITS, streaming.CHUNK_UNITS, 5]
    assert link.partial == b""
    # the run's average bytes per window, not rounded up: command lines count as bytes up
    assert abs(link.received - 40.3 * units) <= 5 and abs(link.answered - 7.25 * units) <= 5
    # at most `ahead` bytes beyond the answered units (and the command line of the next chunk)
    assert link.max_unanswered <= 200 + 16


def test_carry_beside_a_run_stops_between_commands() -> None:
    host, link = _pair()
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    times = streaming._carry(host, 30, 5, stop=stop)
    host.close()
    link.join(5.0)
    assert stop.is_set() and len(times) - 1 == sum(c[2] for c in link.commands) > 0
    assert link.partial == b""  # nothing sent that was not answered: the link image is ready again


def test_a_bound_whose_bytes_were_dropped_is_refused() -> None:
    host, _link = _pair(dropped=3)
    with pytest.raises(UserError, match="dropped 3 received bytes"):
        streaming._carry(host, 10, 2, units=4)
    host.close()


def _pairs(ratios: list[float]) -> list[streaming.Pair]:
    return [streaming.Pair(100, 2.0, 50.0 / r, 405, 53) for r in ratios]


def test_the_margin_is_three_times_the_noise_of_the_bound_beside_itself() -> None:
    import math

    # symmetric scatter of +-0.5 %: three root mean squares
    assert streaming.noise_margin([1.005, 1 / 1.005, 1.005, 1 / 1.005]) == pytest.approx(1.005**3)
    # one large outlier among small ones: never less than the largest ratio either way round
    assert streaming.noise_margin([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1 / 1.05]) >= 1.05
    assert streaming.noise_margin([1.0, 1.0]) == 1.0
    assert math.isfinite(streaming.noise_margin([0.9, 1.1]))


def test_a_runs_bound_carries_the_margin_the_link_image_beat_itself_by() -> None:
    mode = streaming.summarize(_pairs([0.95, 1.004, 0.99]))
    aa = streaming.summarize(_pairs([0.998, 1.008, 1.001]))
    got = streaming.against_bound(mode, max(1.0, aa["ratio"]["max"]))
    assert got["bound_margin"] == pytest.approx(1.008)
    assert got["ratio_to_bound"]["max"] == pytest.approx(1.004 / 1.008, abs=1e-3)
    assert got["ratio_to_bound"]["min"] == pytest.approx(0.95 / 1.008, abs=1e-3)
    assert got["reaches_90_percent"] and not got["exceeds_bound"]
    slow = streaming.against_bound(streaming.summarize(_pairs([0.85, 0.99])), 1.0)
    assert not slow["reaches_90_percent"]
    fast = streaming.against_bound(streaming.summarize(_pairs([1.02])), 1.01)
    assert fast["exceeds_bound"]


def test_the_report_shows_every_pair_and_the_margin() -> None:
    pr: dict = {
        "model": "synthetic", "samples": 21200, "bound_ahead_bytes": 16384, "pinning": "vCPU thread on CPU 0",
        "host_window_bytes": 2048, "rx_buffer_bytes": 4096, "load_avg": {"before": [3.0], "after": [4.0]},
        "cpus": 2, "image": "make firmware-emu", "link_image": "gcc", "command": "Device.stream",
        "bound_vs_bound": streaming.summarize(_pairs([0.998, 1.008])),
        "verify_cli": {"command": "tinyae device verify", "windows": 661, "windows_per_s": 80.0, "retransmits": 0},
    }  # fmt: skip
    for mode, ratios in (("stream", [0.97, 0.99]), ("verify", [0.93, 0.96])):
        pr[mode] = streaming.summarize(_pairs(ratios))
        pr[mode].update(streaming.against_bound(pr[mode], 1.008))
    text = "\n".join(render_streaming({"codec": {}, "link": {}, "paired": pr}))
    assert "ratios 0.998 – 1.008" in text and "is 1.008x" in text
    assert "Every `stream` and `verify` run reaches 92.3 % of its bound or more; no runs passed it." in text
    assert "| `verify` (payload on) | 405.0 / 53.0 B |" in text and "(0.923 – 0.952)" in text
    assert "50.0/54.2, 50.0/52.5" in text  # each pair's run / its bound (the link image's rate x the margin)
    old = render_streaming({"codec": {}, "link": {}, "paired": {"stream": {}}})
    assert any("older bench" in line for line in old)


@pytest.mark.emulator
@pytest.mark.skipif(not has_arm_toolchain(), reason="needs arm-none-eabi-gcc and qemu-system-arm")
def test_the_link_image_carries_back_to_back_commands_pinned_and_pauses(tmp_path) -> None:
    from tinyae.tools.bench import device
    from tinyae.tools.emulator.qemu import Emulator

    img = device.build(None, tmp_path / "link", link=True)
    with Emulator(img.elf, qmp=True) as emu:
        bound = streaming.Bound(emu)
        try:
            how = streaming.pin(emu)
            if len(os.sched_getaffinity(0)) >= 2:
                tasks = list(Path(f"/proc/{emu.pid}/task").iterdir())
                assert len(tasks) >= 2 and {len(os.sched_getaffinity(int(t.name))) for t in tasks} == {1}, how
            times = streaming._carry(bound.sock, 405, 53, units=streaming.CHUNK_UNITS + 3)
            assert len(times) == streaming.CHUNK_UNITS + 4
            emu.pause()
            bound.sock.setblocking(True)
            bound.sock.sendall(b"X1,1,1\n")
            bound.sock.settimeout(0.5)
            bound.sock.sendall(b"\x01")
            with pytest.raises(TimeoutError):
                bound.sock.recv(16)  # a paused guest takes no byte and answers nothing
            t0 = time.monotonic()
            emu.resume()
            assert bound.sock.recv(16).startswith(b"\x01") and time.monotonic() - t0 < 5.0
        finally:
            bound.ser.close()
