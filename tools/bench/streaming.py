"""Streaming figures: the host codec's frame rate, and `stream` / `verify` over the emulated link,
each beside a bound measured in the same seconds, under the same host load.

`tinyae bench streaming --out bench` measures this section alone and merges it into results.json and
RESULTS.md; `make bench` measures it with everything else.

- Codec: encode_frame + StreamDecoder.feed (COBS, CRC32 check, message decode) of RESULT frames, with
  and without the verification payload, in frames per second.
- The link's raw byte rate, each direction alone ('U', 'D' of the link image).
- Stream and verify over the emulated link: `Device.stream()` of the test split on the real image
  (`make firmware-emu MODEL_DIR=DIR`), with the verification payload off (what `tinyae device stream`
  runs) and on, with verify's result collector (what `tinyae device verify` runs per series); windows per
  second of the streaming itself. One whole `tinyae device verify --json` checks the windows bit for bit
  and gives the device's cost per window.

Where the noise came from. QEMU's CMSDK UART holds one received byte: every byte host -> device is a
hand-over between QEMU's main-loop thread (which reads the socket, one byte per guest read) and its
vCPU thread (whose interrupt handler takes the byte; between the bytes of a burst the guest spins, so
while bytes flow that thread wants a whole CPU; the core image sleeps only after 4,096 idle polls, between
frames, and the link image never sleeps). On 2 CPUs shared with other
work, where the scheduler puts those two threads decides the byte rate. Measured while this module was
written (Bound.beside with the link image on both sides, 4 pairs each, load average 16-30): unpinned,
two identical link images side by side differed by up to 45 % (ratios 0.69-1.19); pinned as below,
by under 1 % (0.993-0.998). Runs and bounds measured a few seconds apart, as before, inherit the first
plus the drift of the load (pairs 0.79-1.13); in alternating half-second segments, 0.37-2.2.

The bound. The link image (bench_app.c, TAE_BENCH_LINK, 'X' mode) runs on its own emulator *at the same
time* as the run, carrying the run's own bytes per window (its bytes sent and received over an untimed
pass of the split, divided by the windows; not rounded: `_carry` sizes each command so that the bytes
carried, command lines included, track that average): for every window's worth of bytes received it
writes a window's worth back, in commands of CHUNK_UNITS units sent back to back, its host side (a child
process) keeping up to BOUND_AHEAD bytes (4 x the device's RX_BUFFER, more than any host may send ahead:
docs/protocol.md, "Flow control window") in flight. Its rate is the windows' worth it completed between
the run's first and last second. Every emulator is pinned the same way (`pin`: the vCPU thread on one CPU,
QEMU's other threads on the other; a third, idle emulator is paused through QMP), so the run and the
bound share the same CPUs, in the same seconds, with the same share; the host processes are not pinned.

Why no run exceeds it. The bound does strictly less per byte on both ends: no framing, CRC, decoding,
inference, result handling or Python per frame, and a larger window than the protocol allows, on the
same UART model, driver and interrupt path. What is left is the asymmetry of the measurement itself
(which emulator, which side's host process, the moment the run starts), and that is measured in the same
section: the link image beside itself, the "run" side carried by this process as the run's host is, as
many pairs as the runs. The two sides are the same, so their log ratios scatter around 0; the margin
is exp(3 x their root mean square), or the largest ratio either way round (max(r, 1/r)) if that is
more (`noise_margin`), and a run's **bound** is the link image's rate beside it times that margin. A run
exactly as fast as the link image, the best any run can be, scatters like the link image beside itself,
so it passes its bound only by more than three times the noise measured in the same minutes; every
pair is reported, with min / median / max of run / bound, and the section says if any pair passed.

What the bound does not say: both emulators compete for the same 2 CPUs, so the rates beside the bound
are lower than a run alone on an idle machine (the whole `verify` run alone is reported beside them).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import select
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyae.errors import UserError
from tinyae.steps import run_step as run
from tinyae.tools.bench.common import TINYAE, Timing, command_text, rate, rel
from tinyae.tools.bench.models import TrainedModel
from tinyae.tools.link import protocol as P

REPEATS = 5
PAIRS = 5  # runs of each mode, each beside its bound
CONTROL_PAIRS = 2  # runs of the control (`stream` with one batch in flight)
CHUNK_UNITS = 16  # units per 'X' command of the bound
BOUND_AHEAD = 4 * 4096  # bytes the bound's host may send beyond the answered units (4 x RX_BUFFER)
SETTLE_S = 0.3  # the bound runs this long before the run starts
CODEC_BATCH = 100  # frames per timed call
LINK_BYTES = 131072  # TAE_BENCH_LINK_BYTES in bench_app.c


def codec_figures(model: TrainedModel, repeats: int = REPEATS) -> dict:
    n_in, n_out = model.manifest["input"]["size"], model.manifest["output"]["size"]
    rng = np.random.default_rng(0)
    inq = tuple(int(v) for v in rng.integers(-128, 128, n_in))
    outq = tuple(int(v) for v in rng.integers(-128, 128, n_out))
    out: dict = {"model": model.spec.name, "repeats": repeats}
    for name, msg in (
        ("result_verify", P.Result(7, 0.015625, True, False, 0, 39786, inq, outq)),
        ("result_plain", P.Result(7, 0.015625, True, False, 0, 39786)),
    ):
        dec = P.StreamDecoder()

        def step(msg=msg, dec=dec) -> int:
            n = 0
            for seq in range(CODEC_BATCH):
                events = dec.feed(P.encode_frame(msg, seq))
                if len(events) != 1 or not isinstance(events[0], P.Frame) or events[0].msg != msg:
                    raise UserError(f"the codec did not round-trip a {type(msg).__name__} frame")
                n += 1
            return n

        t, _ = rate(step, repeats)
        out[name] = {"wire_bytes": len(P.encode_frame(msg, 7)), "frames_per_s": t.to_dict(0)}
    out["command"] = (
        "tinyae.tools.bench.streaming.codec_figures: encode_frame + StreamDecoder.feed, checked round trip"
    )
    return out


def link_byte_rate(work_dir: Path, repeats: int = 3) -> dict:
    """Bytes per second host -> device and device -> host through the emulated UART (medians).

    The link image (bench_app.c built with TAE_BENCH_LINK) swallows LINK_BYTES bytes after 'U' and
    reports any byte its RX ring dropped; after 'D' it writes LINK_BYTES bytes as fast as it can.
    """
    from tinyae.tools.bench import device
    from tinyae.tools.emulator.qemu import Emulator

    img = device.build(None, work_dir / "link", link=True)
    up, down = [], []
    with Emulator(img.elf) as emu:
        ser = emu.connect(timeout=0.05)
        try:
            emu.read_until(ser, b"LINK ready", timeout=30.0)
            for _ in range(repeats):
                up.append(_up_rate(emu, ser))
                down.append(_down_rate(ser))
        finally:
            ser.close()
    return {
        "up_bytes_per_s": Timing(up).to_dict(0),
        "down_bytes_per_s": Timing(down).to_dict(0),
        "bytes_per_run": LINK_BYTES,
        "repeats": repeats,
        "command": f"{img.command.split(' -o ')[0]} -DTAE_BENCH_LINK ...; "
        "tinyae.tools.bench.streaming.link_byte_rate ('U' + 128 KiB host -> device, 'D' device -> host)",
    }


def _up_rate(emu, ser) -> float:  # type: ignore[no-untyped-def]
    payload = bytes(range(256)) * (LINK_BYTES // 256)
    t0 = time.perf_counter()
    ser.write(b"U")
    for i in range(0, len(payload), 4096):
        ser.write(payload[i : i + 4096])
    line = emu.read_until(ser, b"UP ", timeout=60.0)
    elapsed = time.perf_counter() - t0
    m = re.search(rb"UP (\d+) dropped=(\d+)", line)
    if m is None or int(m.group(2)) != 0:
        raise UserError(f"the link image lost bytes or did not answer: {line[-80:]!r}")
    return LINK_BYTES / elapsed


def _down_rate(ser) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    ser.write(b"D")
    got = 0
    while got < LINK_BYTES:
        data = ser.read(max(1, ser.in_waiting))
        got += len(data)
        if not data and time.perf_counter() - t0 > 60.0:
            raise UserError("the link image stopped sending during the link benchmark")
    return LINK_BYTES / (time.perf_counter() - t0)


def _carry(
    sock: socket.socket,
    up: float,
    down: float,
    *,
    units: int | None = None,
    stop=None,
    ahead: int = BOUND_AHEAD,
) -> list[float]:  # type: ignore[no-untyped-def]
    """Drive the link image's 'X' mode: commands of CHUNK_UNITS units (the last one shorter) back to back,
    `units` in all, or until `stop` (a multiprocessing Event) is set. A unit carries `up` bytes host ->
    device and `down` bytes back on average (not whole numbers: each command's sizes are chosen so that
    the bytes carried, command lines included, stay within one unit's rounding of up and down times the
    units). The host keeps at most `ahead` bytes beyond the units answered in flight. Returns the start
    time and the time each unit's answer was complete (time.monotonic(), comparable across processes)."""
    sock.setblocking(False)
    chunk_units: list[int] = []  # units of each command sent
    chunk_down: list[int] = []  # answer bytes per unit of each command
    up_sent = down_asked = 0  # bytes host -> device queued (command lines included), answer bytes asked
    unit_end: list[int] = []  # where each unit's bytes end in everything sent
    payload = bytes(range(1, 256)) * (int(up + 1) * CHUNK_UNITS // 255 + 1)
    buf = b""
    queued = sent = 0  # bytes put in `buf` in all, bytes sent
    times = [time.monotonic()]
    answered = 0  # units whose answer is complete
    chunk_done = 0  # commands whose "XD" line arrived
    rx_data = 0  # answer bytes of the current command
    tail = b""
    done_re = re.compile(rb"XD (\d+) dropped=(\d+)\r\n")

    def more() -> bool:
        if units is not None:
            return len(unit_end) < units
        return stop is not None and not stop.is_set()

    while True:
        if not buf and more():
            k = CHUNK_UNITS if units is None else min(CHUNK_UNITS, units - len(unit_end))
            through = len(unit_end) + k
            d = max(1, round((down * through - down_asked) / k))
            u = max(1, round((up * through - up_sent - len(f"X{int(up)},{d},{k}\n")) / k))
            cmd = f"X{u},{d},{k}\n".encode()
            buf = cmd + payload[: u * k]
            unit_end += [queued + len(cmd) + u * (j + 1) for j in range(k)]
            queued += len(buf)
            up_sent += len(buf)
            down_asked += d * k
            chunk_units.append(k)
            chunk_down.append(d)
        if not buf and chunk_done == len(chunk_units):
            return times
        limit = (unit_end[answered - 1] if answered else 0) + ahead  # in flight: at most `ahead` bytes
        can_send = bool(buf) and sent < limit
        readable, writable, _ = select.select([sock], [sock] if can_send else [], [], 30.0)
        if not readable and not writable:
            raise UserError(f"the link image stopped after {answered} units answered")
        if writable:
            n = sock.send(buf[: limit - sent])
            buf = buf[n:]
            sent += n
        if readable:
            data = sock.recv(65536)
            if not data:
                raise UserError("the link image closed the connection during the link benchmark")
            now = time.monotonic()
            while data:
                d = chunk_down[chunk_done]
                want = chunk_units[chunk_done] * d - rx_data
                if want > 0:
                    take = data[:want]
                    before = rx_data // d
                    rx_data += len(take)
                    data = data[len(take) :]
                    for _ in range(rx_data // d - before):
                        times.append(now)
                        answered += 1
                    continue
                tail += data
                data = b""
                m = done_re.search(tail)
                if m is None:
                    break
                if int(m.group(2)) != 0:
                    raise UserError(
                        f"the link image dropped {int(m.group(2))} received bytes; no bound is measured"
                    )
                data, tail = tail[m.end() :], b""
                chunk_done += 1
                rx_data = 0
                if chunk_done == len(chunk_units):
                    tail = data
                    break


def _carry_child(sock: socket.socket, up: float, down: float, stop, conn) -> None:  # type: ignore[no-untyped-def]
    """The bound's host side, in its own process: carry until `stop`, then send the times back."""
    try:
        conn.send(("ok", _carry(sock, up, down, stop=stop)))
    except Exception as exc:  # reported by the parent as one sentence
        conn.send(("error", str(exc)))


def pin(emu) -> str:  # type: ignore[no-untyped-def]
    """Pin the emulator's vCPU thread to the first CPU this process may use and QEMU's other threads (its
    main loop, which moves every UART byte) to the second: every emulator of the measurement the same way,
    so that a run and its bound differ in what they do, not in where the scheduler put their threads.
    Returns how it pinned (or why it did not)."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return "not pinned (one CPU)"
    vcpus = {int(c["thread-id"]) for c in emu.qmp_execute("query-cpus-fast")}
    try:
        for task in Path(f"/proc/{emu.pid}/task").iterdir():
            os.sched_setaffinity(int(task.name), {cpus[0]} if int(task.name) in vcpus else {cpus[1]})
    except OSError as exc:
        raise UserError(
            f"could not pin the emulator's threads ({exc}); the bound would not be comparable"
        ) from None
    return f"vCPU thread on CPU {cpus[0]}, QEMU's other threads on CPU {cpus[1]}; host processes not pinned"


class Bound:
    """The link image on its own emulator, its host side in a child process, running beside a run."""

    def __init__(self, emu) -> None:  # type: ignore[no-untyped-def]
        self.emu = emu
        self.ser = emu.connect(timeout=0.05)
        emu.read_until(self.ser, b"LINK ready", timeout=30.0)
        self.sock: socket.socket = self.ser._socket
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as the host tool's ports

    def beside(self, up: float, down: float, run: Callable[[], int]) -> tuple[int, float, float]:
        """Start carrying `up`/`down` bytes per unit, let it settle, call `run` (it returns the windows it
        streamed) and stop: (windows, run seconds, units the bound carried per second in those seconds)."""
        ctx = multiprocessing.get_context("fork")
        stop = ctx.Event()
        mine, theirs = ctx.Pipe()
        child = ctx.Process(target=_carry_child, args=(self.sock, up, down, stop, theirs), daemon=True)
        child.start()
        try:
            time.sleep(SETTLE_S)
            t0 = time.monotonic()
            windows = run()
            t1 = time.monotonic()
        finally:
            stop.set()
            ready = mine.poll(60.0)
            status, value = mine.recv() if ready else ("error", "no answer")
            child.join(10.0)
        if status != "ok" or isinstance(value, str):
            raise UserError(f"the bound's link image failed: {value}")
        times: list[float] = value  # the child's answer: its start, then when each window's bytes were back
        done = [t for t in times[1:] if t0 < t <= t1]
        if times[-1] <= t1 or len(done) < 2:
            raise UserError("the bound stopped before the run it was measured beside")
        return windows, t1 - t0, len(done) / (t1 - t0)


@dataclass
class Pair:
    """One run and the bound carried at the same time, over the same seconds, with the run's bytes."""

    windows: int
    seconds: float
    bound_per_s: float  # units (windows' worth of bytes) the bound carried per second in those seconds
    up: float  # wire bytes per window, host -> device (the run's average)
    down: float
    retransmits: int = 0
    decode_errors: int = 0

    @property
    def rate(self) -> float:
        return self.windows / self.seconds

    @property
    def ratio(self) -> float:
        return self.rate / self.bound_per_s

    def to_dict(self) -> dict:
        return {
            "windows": self.windows, "seconds": round(self.seconds, 3),
            "windows_per_s": round(self.rate, 1), "bound_windows_per_s": round(self.bound_per_s, 1),
            "ratio": round(self.ratio, 4),
            "up_bytes_per_window": round(self.up, 2), "down_bytes_per_window": round(self.down, 2),
            "retransmits": self.retransmits, "decode_errors": self.decode_errors,
        }  # fmt: skip


def summarize(pairs: list[Pair]) -> dict:
    """Every pair and the spread of their ratios."""
    ratios = [q.ratio for q in pairs]
    return {
        "pairs": [q.to_dict() for q in pairs],
        "ratio": {
            "min": round(min(ratios), 3),
            "median": round(float(np.median(ratios)), 3),
            "max": round(max(ratios), 3),
        },
        "windows_per_s": Timing([q.rate for q in pairs]).to_dict(1),
        "bound_windows_per_s": Timing([q.bound_per_s for q in pairs]).to_dict(1),
        "up_bytes_per_window": round(pairs[-1].up, 2),
        "down_bytes_per_window": round(pairs[-1].down, 2),
        "retransmits": sum(q.retransmits for q in pairs),
        "decode_errors": sum(q.decode_errors for q in pairs),
    }


def noise_margin(aa: list[float]) -> float:
    """The bound's margin from the link image's ratios beside itself: the two sides are the same, so a
    ratio r and 1/r are equally likely and the log ratios scatter around 0; the margin is the larger of
    exp(3 x their root mean square) and the largest max(r, 1/r) measured, at least 1. A run exactly as
    fast as the link image (the best any run can be) scatters like them, so it passes its bound only by
    more than three times the noise measured beside it."""
    logs = np.log(np.asarray(aa, dtype=float))
    return float(max(1.0, np.exp(3.0 * np.sqrt(np.mean(logs**2))), np.exp(np.max(np.abs(logs)))))


def against_bound(mode: dict, margin: float) -> dict:
    """The bound of each run: the link image's rate beside it times `margin` (noise_margin); each run's
    ratio to it, and whether the run reaches 90 % of it."""
    ratios = [q["ratio"] / margin for q in mode["pairs"]]
    return {
        "bound_margin": round(margin, 3),
        "ratio_to_bound": {
            "min": round(min(ratios), 3),
            "median": round(float(np.median(ratios)), 3),
            "max": round(max(ratios), 3),
        },
        "reaches_90_percent": min(ratios) >= 0.9,
        "exceeds_bound": max(ratios) > 1.0,
    }


def beside_bound(
    model: TrainedModel, core_elf: Path, link_elf: Path, work_dir: Path, *,
    repeats: int = PAIRS, say: Callable[[str], None] | None = None,
) -> dict:  # fmt: skip
    """`stream` and `verify` of the test split, `repeats` times each, each run beside its bound (at the
    same time); the bound beside itself (`repeats` times); one whole `tinyae device verify --json`."""
    from tinyae.tools.commands.verify import Collected
    from tinyae.tools.emulator.qemu import Emulator
    from tinyae.tools.link.device import open_device, windows_for

    series = np.load(model.dir / "test_vectors.npz")["series"]
    out: dict = {}
    load0 = os.getloadavg()
    with (
        Emulator(core_elf, qmp=True) as core,
        Emulator(link_elf, qmp=True) as link,
        Emulator(link_elf, qmp=True) as other,
    ):
        bound = Bound(link)
        alone = Bound(other)  # the A/A check's "run": the bound's own loop, in this process
        try:
            other.pause()  # the link image spins when idle: only the two measured run at any time
            with open_device(core.url) as dev:
                info = dev.handshake()  # QEMU opens its QMP socket once the serial client is connected
                for emu in (core, link, other):
                    out["pinning"] = pin(emu)
                n = windows_for(len(series), info.window_len, info.hop)
                st = dev.stats
                wire: dict[bool, tuple[float, float]] = {}  # verify off/on: bytes per window up, down
                # the control: `stream` with one batch in flight, what a window too small costs
                for mode, inflight, times in (("stream", None, repeats), ("verify", None, repeats),
                                              ("stream_one_batch", 1, CONTROL_PAIRS)):  # fmt: skip
                    verify = mode == "verify"
                    dev.set(P.Param.VERIFY, int(verify))
                    if verify not in wire:  # the run's bytes per window, from a first pass (not timed)
                        tx0, rx0 = st.bytes_tx, st.bytes_rx
                        if not dev.stream(series, lambda r: None).complete:
                            raise UserError(f"{mode} lost windows; its rate is not reported")
                        wire[verify] = (st.bytes_tx - tx0) / n, (st.bytes_rx - rx0) / n
                    up, down = wire[verify]
                    pairs: list[Pair] = []
                    for i in range(times):
                        if say:
                            say(f"streaming: {mode} {i + 1}/{times} beside its bound")
                        col = Collected(n)
                        re0, de0 = st.retransmits, st.decode_errors

                        def once(
                            col: Collected = col, verify: bool = verify, inflight: int | None = inflight
                        ) -> int:
                            summary = dev.stream(
                                series, col.add if verify else lambda r: None, inflight=inflight
                            )
                            if not summary.complete or (verify and col.no_data):
                                raise UserError("the run lost windows or their verification data; its rate "
                                                "is not reported")  # fmt: skip
                            return summary.windows_received

                        w, s, b = bound.beside(up, down, once)
                        pairs.append(Pair(w, s, b, up, down, st.retransmits - re0, st.decode_errors - de0))
                    out[mode] = summarize(pairs)
                dev.set(P.Param.VERIFY, 0)
            core.pause()
            other.resume()
            aa: list[Pair] = []
            up, down = (
                out["verify"]["pairs"][0]["up_bytes_per_window"],
                out["verify"]["pairs"][0]["down_bytes_per_window"],
            )
            for i in range(repeats):
                if say:
                    say(f"streaming: the bound beside itself {i + 1}/{repeats}")
                w, s, b = bound.beside(up, down, lambda: len(_carry(alone.sock, up, down, units=n)) - 1)
                aa.append(Pair(w, s, b, up, down))
            out["bound_vs_bound"] = summarize(aa)
            margin = noise_margin([q.ratio for q in aa])
            for mode in ("stream", "verify", "stream_one_batch"):
                out[mode].update(against_bound(out[mode], margin))
            other.pause()
            core.resume()
            link.pause()
            if say:
                say("streaming: one whole `tinyae device verify --json` (alone)")
            out["verify_cli"] = _verify_cli(model, core, work_dir / f"verify-{model.spec.name}.json")
        finally:
            bound.ser.close()
            alone.ser.close()
    out["load_avg"] = {
        "before": [round(v, 2) for v in load0],
        "after": [round(v, 2) for v in os.getloadavg()],
    }
    out["cpus"] = os.cpu_count()
    return out


def _verify_cli(model: TrainedModel, core, json_out: Path) -> dict:  # type: ignore[no-untyped-def]
    """`tinyae device verify --json` of the test split on the running core emulator."""
    argv = [TINYAE, "device", "verify", "--port", core.url, "--model-dir", rel(model.dir)]
    argv += ["--json", rel(json_out), "--quiet"]
    run(argv, timeout=900)
    r = json.loads(json_out.read_text())
    if not r.get("ok"):
        raise UserError(f"verify over the emulated link failed ({json_out}); its rate is not reported")
    link = r.get("link") or {}
    return {
        "command": command_text([a.replace(core.url, "socket://127.0.0.1:PORT") for a in argv]),
        "ok": True,
        "windows": r["windows_compared"],
        "seconds": round(r["seconds"], 2),
        "windows_per_s": round(r["windows_per_second"], 1),
        "retransmits": link.get("retransmits", 0),
        "cost": r.get("cost"),
    }


def paired_figures(
    model: TrainedModel, work_dir: Path, say: Callable[[str], None] | None = None, *, pairs: int = PAIRS
) -> dict:
    """`stream` and `verify` of the test split over the emulated link, each beside its bound."""
    from tinyae.tools.bench import device
    from tinyae.tools.emulator.qemu import build_image

    img_dir = work_dir / f"core-{model.spec.name}"
    build_image(img_dir, app="core", model_dir=model.dir)
    link = device.build(None, work_dir / "link", link=True)
    series = np.load(model.dir / "test_vectors.npz")["series"]
    out: dict = {
        "model": model.spec.name,
        "samples": len(series),
        "image": f"make firmware-emu MODEL_DIR={rel(model.dir)} EMU_OUT={rel(img_dir)}",
        "link_image": link.command.split(" -o ")[0] + " ... -DTAE_BENCH_LINK",
        "host_window_bytes": P.HOST_WINDOW,
        "rx_buffer_bytes": P.RX_BUFFER,
        "bound_ahead_bytes": BOUND_AHEAD,
        "command": "tinyae.tools.bench.streaming.beside_bound: Device.stream(test split) (what `tinyae device "
        "stream` runs; with VERIFY on and verify's result collector, what `tinyae device verify` runs) while "
        "the link image carries the run's bytes per window (Bound.beside)",
    }
    out.update(beside_bound(model, img_dir / "tinyae.elf", link.elf, work_dir, repeats=pairs, say=say))
    return out


def cli_available() -> str | None:
    """None when `tinyae device verify` exists, else the reason it cannot be measured."""
    try:
        _, text = run([TINYAE, "device", "verify", "--help"], timeout=60)
    except UserError as exc:
        return f"`tinyae device verify --help` failed: {exc}"
    if "--json" not in text or "--model-dir" not in text:
        return "`tinyae device verify` has no --json/--model-dir options yet"
    return None


def verify_figures(model: TrainedModel, work_dir: Path, repeats: int = 3) -> dict:
    """End-to-end verify of the test split over the emulated link, median of `repeats` runs."""
    reason = cli_available()
    if reason:
        return {"status": "not measured", "reason": reason}
    from tinyae.tools.emulator.qemu import Emulator, build_image

    img_dir = work_dir / f"core-{model.spec.name}"
    build_image(img_dir, app="core", model_dir=model.dir)
    elf = img_dir / "tinyae.elf"
    vec = np.load(model.dir / "test_vectors.npz")
    n_windows = len(vec["scores"])
    walls, reports = [], []
    argv: list[str] = []
    url = ""
    for i in range(repeats):
        json_out = work_dir / f"verify-{model.spec.name}-{i}.json"
        with Emulator(elf) as emu:
            url = emu.url
            argv = [TINYAE, "device", "verify", "--port", url, "--model-dir", rel(model.dir)]
            argv += ["--json", str(json_out), "--quiet"]
            wall, _ = run(argv, timeout=900)
        walls.append(wall)
        reports.append(json.loads(json_out.read_text()) if json_out.is_file() else {})
    t = Timing(walls)
    out = {
        "status": "measured",
        "model": model.spec.name,
        "windows": n_windows,
        "samples": len(vec["series"]),
        "wall_s": t.to_dict(2),
        "windows_per_s": round(n_windows / t.median, 1),
        "repeats": repeats,
        "command": command_text(argv).replace(url, "socket://127.0.0.1:PORT"),
        "image": f"make firmware-emu MODEL_DIR={rel(model.dir)} EMU_OUT={rel(img_dir)}",
        "cli_windows_per_s": _median_of(reports, "windows_per_second"),
        "cli_stream_s": _median_of(reports, "seconds"),
        "ok": all(r.get("ok") for r in reports),
        "device_cost_per_window": reports[-1].get("cost"),
        "link": reports[-1].get("link"),
        "cli_report": reports[-1],
    }
    return out


def _median_of(reports: list[dict], key: str) -> float | None:
    vals = [r[key] for r in reports if isinstance(r.get(key), int | float)]
    return round(Timing(vals).median, 2) if vals else None
