"""Streaming figures: the host codec's frame rate, and `stream` / `verify` over the emulated link beside
a bound on windows per second measured in the same run.

- Codec: encode_frame + StreamDecoder.feed (COBS, CRC32 check, message decode) of RESULT frames, with
  and without the verification payload (int8 input and output of the window), in frames per second.
- Stream and verify over the emulated link, each run paired with a bound measured right before it
  (same machine, same load): `Device.stream()` of the test split (what `tinyae device stream` runs,
  no verification payload) and `tinyae device verify --json` (payload on), windows per second of the
  streaming itself (after the handshake), on the real image (`make firmware-emu MODEL_DIR=DIR`).
- The bound: a link image (bench_app.c with TAE_BENCH_LINK, 'X' mode) on the same QEMU, with the same
  host tool's socket, carries the run's own bytes per window each way (its measured bytes sent and
  received / windows) and nothing else: for every window's worth of bytes received, the image sends a
  window's worth back, while the host keeps up to RX_BUFFER bytes in flight (the most the device can
  buffer: docs/protocol.md, "Flow control window"). No protocol, no decoding, no inference, no Python
  per frame: a stream moves the same bytes with more work on both sides and the same in-flight limit
  or less, so it cannot beat it except by the noise between two runs a few seconds apart; every pair's
  ratio is reported, not only the medians. Bytes per second of each direction alone ('U', 'D') are
  kept as the link's raw figures.
"""

from __future__ import annotations

import json
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
SEGMENT_WINDOWS = 64  # windows per segment of a run (about half a second over the emulated UART)
PASSES = 3  # passes over the test split per mode
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


def wire_bytes_per_window(manifest: dict) -> dict:
    """Wire bytes one window costs in each direction at the protocol's largest batch."""
    ch, hop = manifest["window"]["channels"], manifest["window"]["hop"]
    n_in, n_out = manifest["input"]["size"], manifest["output"]["size"]
    up = down = 0
    left, seq = hop, 0
    while left > 0:
        n = min(P.MAX_BATCH, left)
        up += len(P.encode_frame(P.Samples(seq, tuple((1.2345,) * ch for _ in range(n)), ch), seq))
        down += len(P.encode_frame(P.Ack(P.MsgType.SAMPLES, seq, seq, 1), seq))
        left -= n
        seq += 1
    res = P.Result(1, 0.5, False, False, 0, 40000, (1,) * n_in, (-1,) * n_out)
    down += len(P.encode_frame(res, 1))
    return {"up": up, "down_verify": down, "samples_per_window": hop, "batch": P.MAX_BATCH}


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


def duplex_seconds(sock: socket.socket, up: int, down: int, units: int, ahead: int | None = None) -> float:
    """Seconds the link image's 'X' mode takes to carry `units` units of `up` bytes host -> device, each
    answered by `down` bytes device -> host, until the last answer byte is in. The host writes from one
    prepared buffer as fast as the socket takes it: no flow-control window (`ahead` None), or at most
    `ahead` bytes beyond the units answered."""
    sock.setblocking(True)
    sock.sendall(f"X{up},{down},{units}\n".encode())
    sock.setblocking(False)
    payload = bytes(range(1, 256)) * (up * units // 255 + 1)
    total_up, total_down = up * units, down * units
    sent = got = 0
    tail = b""
    end: float | None = None
    done = re.compile(rb"XD (\d+) dropped=(\d+)\r\n")
    t0 = time.perf_counter()
    while got < total_down or not done.search(tail):
        allowed = total_up if ahead is None else min(total_up, (got // down) * up + ahead)
        readable, writable, _ = select.select([sock], [sock] if sent < allowed else [], [], 30.0)
        if not readable and not writable:
            raise UserError(f"the link image stopped after {sent} B sent, {got} B received")
        if writable:
            sent += sock.send(payload[sent:allowed])
        if readable:
            data = sock.recv(65536)
            if not data:
                raise UserError("the link image closed the connection during the link benchmark")
            take = min(len(data), total_down - got)
            got += take
            tail += data[take:]
            if got == total_down and end is None:
                end = time.perf_counter()
    m = done.search(tail)
    assert m is not None and end is not None
    if int(m.group(2)) != 0:
        raise UserError(f"the link image dropped {m.group(2)} received bytes; the bound is not measured")
    return end - t0


def segments(n_samples: int, length: int, hop: int, per: int) -> list[tuple[int, int]]:
    """Sample ranges [a, b) of consecutive runs of `per` whole windows (the last one shorter) covering
    every window the device forms over n samples."""
    from tinyae.tools.link.device import windows_for

    n = windows_for(n_samples, length, hop)
    return [(w * hop, (min(n, w + per) - 1) * hop + length) for w in range(0, n, per)]


@dataclass
class Pair:
    """One segment of a run and the bound segment right after it, carrying the segment's own bytes."""

    windows: int
    run_s: float
    bound_s: float
    up: int  # wire bytes per window, host -> device (the segment's, rounded up)
    down: int
    retransmits: int = 0
    decode_errors: int = 0

    @property
    def ratio(self) -> float:
        return self.bound_s / self.run_s  # = run windows/s over bound windows/s

    def to_dict(self) -> dict:
        return {
            "windows": self.windows, "run_s": round(self.run_s, 4), "bound_s": round(self.bound_s, 4),
            "windows_per_s": round(self.windows / self.run_s, 1),
            "bound_windows_per_s": round(self.windows / self.bound_s, 1), "ratio": round(self.ratio, 3),
            "up_bytes_per_window": self.up, "down_bytes_per_window": self.down,
            "retransmits": self.retransmits, "decode_errors": self.decode_errors,
        }  # fmt: skip


def summarize(pairs: list[Pair], per_pass: int) -> dict:
    """Every pair, the spread of their ratios, and each pass's (and all passes') total windows over total
    seconds, run and bound: the figure a whole run of the test split would report."""
    ratios = sorted(q.ratio for q in pairs)
    passes = [pairs[i : i + per_pass] for i in range(0, len(pairs), per_pass)]

    def total(ps: list[Pair]) -> dict:
        w = sum(q.windows for q in ps)
        run_s, bound_s = sum(q.run_s for q in ps), sum(q.bound_s for q in ps)
        return {"windows": w, "windows_per_s": round(w / run_s, 1), "bound_windows_per_s": round(w / bound_s, 1),
                "ratio": round(bound_s / run_s, 3)}  # fmt: skip

    return {
        "pairs": [q.to_dict() for q in pairs],
        "pair_ratio": {
            "min": round(ratios[0], 3),
            "median": round(float(np.median(ratios)), 3),
            "max": round(ratios[-1], 3),
        },
        "passes": [total(ps) for ps in passes],
        "total": total(pairs),
        "retransmits": sum(q.retransmits for q in pairs),
        "decode_errors": sum(q.decode_errors for q in pairs),
    }


class _LinkSide:
    """The link image on its own (paused) emulator: carries a segment's bytes between two QMP commands."""

    def __init__(self, emu) -> None:  # type: ignore[no-untyped-def]
        self.emu = emu
        self.ser = emu.connect(timeout=0.05)
        emu.read_until(self.ser, b"LINK ready", timeout=30.0)
        self.sock: socket.socket = self.ser._socket
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as the host tool's ports
        emu.pause()

    def seconds(self, up: int, down: int, units: int, core) -> float:  # type: ignore[no-untyped-def]
        """The bound segment: the core emulator paused, the link one running, then back."""
        core.pause()
        self.emu.resume()
        try:
            return duplex_seconds(self.sock, up, down, units)
        finally:
            self.emu.pause()
            core.resume()


def interleaved(
    model: TrainedModel, core_elf: Path, link_elf: Path, work_dir: Path, *,
    segment_windows: int = SEGMENT_WINDOWS, passes: int = PASSES, say: Callable[[str], None] | None = None,
) -> dict:  # fmt: skip
    """`stream` and `verify` of the test split, cut into segments of `segment_windows` windows, each
    segment followed at once by its bound segment; `passes` passes over the split per mode; then the bound
    against itself (consecutive bound segments); then one whole `tinyae device verify --json`."""
    from tinyae.tools.commands.verify import Collected
    from tinyae.tools.emulator.qemu import Emulator
    from tinyae.tools.link.device import open_device, windows_for

    series = np.load(model.dir / "test_vectors.npz")["series"]
    out: dict = {}
    load0 = os.getloadavg()
    with Emulator(core_elf, qmp=True) as core, Emulator(link_elf, qmp=True) as link:
        side = _LinkSide(link)
        try:
            with open_device(core.url) as dev:
                info = dev.handshake()
                L, hop = info.window_len, info.hop
                cuts = segments(len(series), L, hop, segment_windows)
                for mode in ("stream", "verify"):
                    if say:
                        say(f"streaming: {mode}, {passes} x {len(cuts)} segments, each beside its bound")
                    dev.set(P.Param.VERIFY, 1 if mode == "verify" else 0)
                    pairs: list[Pair] = []
                    for _ in range(passes):
                        for a, b in cuts:
                            x = series[a:b]
                            col = Collected(windows_for(len(x), L, hop))
                            st = dev.stats
                            tx0, rx0, re0, de0 = st.bytes_tx, st.bytes_rx, st.retransmits, st.decode_errors
                            summary = dev.stream(x, col.add if mode == "verify" else lambda r: None)
                            n = summary.windows_received
                            if not summary.complete or (mode == "verify" and col.no_data):
                                raise UserError(f"{mode} lost windows or their verification data; "
                                                "its rate is not reported")  # fmt: skip
                            up, down = -(-(st.bytes_tx - tx0) // n), -(-(st.bytes_rx - rx0) // n)
                            pairs.append(Pair(n, summary.seconds, side.seconds(up, down, n, core), up, down,
                                              st.retransmits - re0, st.decode_errors - de0))  # fmt: skip
                    out[mode] = summarize(pairs, len(cuts))
                dev.set(P.Param.VERIFY, 0)
            # The bound against itself: the same segments twice in a row, as a run and its bound are.
            if say:
                say("streaming: the bound against itself")
            aa: list[Pair] = []
            for q in out["stream"]["pairs"]:
                n, up, down = q["windows"], q["up_bytes_per_window"], q["down_bytes_per_window"]
                first = side.seconds(up, down, n, core)
                aa.append(Pair(n, first, side.seconds(up, down, n, core), up, down))
            out["bound_vs_bound"] = summarize(aa, len(cuts))
            if say:
                say("streaming: one whole `tinyae device verify --json` beside its bound")
            out["verify_cli"] = _verify_cli(model, core, side, work_dir / f"verify-{model.spec.name}.json")
        finally:
            side.ser.close()
    out["load_avg"] = {
        "before": [round(v, 2) for v in load0],
        "after": [round(v, 2) for v in os.getloadavg()],
    }
    out["cpus"] = os.cpu_count()
    return out


def _verify_cli(model: TrainedModel, core, side: _LinkSide, json_out: Path) -> dict:  # type: ignore[no-untyped-def]
    """`tinyae device verify --json` of the test split on the running core emulator, then its bound."""
    argv = [TINYAE, "device", "verify", "--port", core.url, "--model-dir", rel(model.dir)]
    argv += ["--json", str(json_out), "--quiet"]
    run(argv, timeout=900)
    r = json.loads(json_out.read_text())
    if not r.get("ok"):
        raise UserError(f"verify over the emulated link failed ({json_out}); its rate is not reported")
    n, link = r["windows_compared"], r.get("link") or {}
    up, down = -(-link["bytes_tx"] // n), -(-link["bytes_rx"] // n)
    pair = Pair(n, r["seconds"], side.seconds(up, down, n, core), up, down, link.get("retransmits", 0),
                link.get("decode_errors", 0))  # fmt: skip
    cmd = command_text([a.replace(core.url, "socket://127.0.0.1:PORT") for a in argv])
    return {"command": cmd, **pair.to_dict(), "cost": r.get("cost"), "ok": True}


def paired_figures(model: TrainedModel, work_dir: Path, say: Callable[[str], None] | None = None) -> dict:
    """`stream` and `verify` of the test split over the emulated link, interleaved with their bound."""
    from tinyae.tools.bench import device
    from tinyae.tools.emulator.qemu import build_image

    img_dir = work_dir / f"core-{model.spec.name}"
    build_image(img_dir, app="core", model_dir=model.dir)
    link = device.build(None, work_dir / "link", link=True)
    series = np.load(model.dir / "test_vectors.npz")["series"]
    out: dict = {
        "model": model.spec.name,
        "samples": len(series),
        "segment_windows": SEGMENT_WINDOWS,
        "passes": PASSES,
        "image": f"make firmware-emu MODEL_DIR={rel(model.dir)} EMU_OUT={rel(img_dir)}",
        "link_image": link.command.split(" -o ")[0] + " ... -DTAE_BENCH_LINK",
        "host_window_bytes": P.HOST_WINDOW,
        "rx_buffer_bytes": P.RX_BUFFER,
        "command": "tinyae.tools.bench.streaming.interleaved: Device.stream(segment) (what `tinyae device "
        "stream` and, with VERIFY on and verify's result collector, `tinyae device verify` run per series), "
        "then duplex_seconds(segment's bytes) on the link image",
    }
    out.update(interleaved(model, img_dir / "tinyae.elf", link.elf, work_dir, say=say))
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
