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
import re
import select
import socket
import time
from pathlib import Path

import numpy as np

from tinyae.errors import UserError
from tinyae.steps import run_step as run
from tinyae.tools.bench.common import TINYAE, Timing, command_text, rate, rel
from tinyae.tools.bench.models import TrainedModel
from tinyae.tools.link import protocol as P

REPEATS = 5
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


def duplex_rate(sock: socket.socket, up: int, down: int, units: int, ahead: int) -> float:
    """Units per second of the link image's 'X' mode: `up` bytes host -> device, then `down` bytes back,
    `units` times, the host keeping at most `ahead` bytes beyond the units answered in flight."""
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
        allowed = min(total_up, (got // down) * up + ahead)
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
    return units / (end - t0)


def _stream_once(elf: Path, series: np.ndarray) -> dict:
    """`Device.stream()` of the series on a fresh emulator: windows/s of the streaming and its bytes."""
    from tinyae.tools.emulator.qemu import Emulator
    from tinyae.tools.link.device import open_device

    with Emulator(elf) as emu, open_device(emu.url) as dev:
        dev.handshake()
        summary = dev.stream(series, lambda r: None)
    if not summary.complete or summary.windows_received == 0:
        raise UserError(f"the stream lost windows {summary.lost_windows[:10]}; its rate is not reported")
    return {
        "windows": summary.windows_received,
        "seconds": summary.seconds,
        "bytes_tx": summary.bytes_tx,
        "bytes_rx": summary.bytes_rx,
        "retransmits": dev.stats.retransmits,
        "decode_errors": dev.stats.decode_errors,
    }


def _verify_once(model: TrainedModel, elf: Path, json_out: Path) -> tuple[dict, list[str]]:
    """`tinyae device verify --json` on a fresh emulator: its report and its command line."""
    from tinyae.tools.emulator.qemu import Emulator

    with Emulator(elf) as emu:
        argv = [TINYAE, "device", "verify", "--port", emu.url, "--model-dir", rel(model.dir)]
        argv += ["--json", str(json_out), "--quiet"]
        run(argv, timeout=900)
        cmd = [a.replace(emu.url, "socket://127.0.0.1:PORT") for a in argv]
    r = json.loads(json_out.read_text())
    link = r.get("link") or {}
    if not r.get("ok"):
        raise UserError(f"verify over the emulated link failed ({json_out}); its rate is not reported")
    run_ = {
        "windows": r["windows_compared"],
        "seconds": r["seconds"],
        "bytes_tx": link["bytes_tx"],
        "bytes_rx": link["bytes_rx"],
        "retransmits": link.get("retransmits", 0),
        "decode_errors": link.get("decode_errors", 0),
    }
    return {**run_, "report": r}, cmd


def _bound(link_elf: Path, run_: dict) -> dict:
    """The bound for one run: the link image carrying that run's bytes per window (rounded up)."""
    from tinyae.tools.emulator.qemu import Emulator

    units = run_["windows"]
    up, down = -(-run_["bytes_tx"] // units), -(-run_["bytes_rx"] // units)
    with Emulator(link_elf) as emu:
        ser = emu.connect(timeout=0.05)
        try:
            emu.read_until(ser, b"LINK ready", timeout=30.0)
            sock = ser._socket
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as the host tool's ports
            rate = duplex_rate(sock, up, down, units, P.RX_BUFFER)
        finally:
            ser.close()
    return {"windows_per_s": rate, "up_bytes_per_window": up, "down_bytes_per_window": down}


def paired_figures(model: TrainedModel, work_dir: Path, repeats: int = 3) -> dict:
    """`stream` and `verify` of the test split over the emulated link, each run after its bound."""
    from tinyae.tools.bench import device
    from tinyae.tools.emulator.qemu import build_image

    img_dir = work_dir / f"core-{model.spec.name}"
    build_image(img_dir, app="core", model_dir=model.dir)
    elf = img_dir / "tinyae.elf"
    link = device.build(None, work_dir / "link", link=True)
    series = np.load(model.dir / "test_vectors.npz")["series"]
    out: dict = {
        "model": model.spec.name,
        "samples": len(series),
        "repeats": repeats,
        "image": f"make firmware-emu MODEL_DIR={rel(model.dir)} EMU_OUT={rel(img_dir)}",
        "link_image": link.command.split(" -o ")[0] + " ... -DTAE_BENCH_LINK",
        "host_window_bytes": P.HOST_WINDOW,
        "rx_buffer_bytes": P.RX_BUFFER,
    }
    for mode in ("stream", "verify"):
        pairs = []
        command = ""
        for i in range(repeats):
            if mode == "stream":
                r = _stream_once(elf, series)
                command = (
                    "tinyae.tools.link.device.open_device(socket://127.0.0.1:PORT) -> Device.stream(test "
                    "split) (what `tinyae device stream --quiet` runs)"
                )
            else:
                r, argv = _verify_once(model, elf, work_dir / f"verify-{model.spec.name}-{i}.json")
                command = command_text(argv)
            b = _bound(link.elf, r)
            rate = r["windows"] / r["seconds"]
            pairs.append({
                "windows": r["windows"], "seconds": round(r["seconds"], 3), "windows_per_s": round(rate, 1),
                "bound_windows_per_s": round(b["windows_per_s"], 1),
                "ratio": round(rate / b["windows_per_s"], 3),
                "up_bytes_per_window": b["up_bytes_per_window"],
                "down_bytes_per_window": b["down_bytes_per_window"],
                "retransmits": r["retransmits"], "decode_errors": r["decode_errors"],
            })  # fmt: skip
            if mode == "verify" and i == repeats - 1:
                out["verify_report"] = r["report"]
        ratios = sorted(p_["ratio"] for p_ in pairs)
        out[mode] = {
            "command": command,
            "runs": pairs,
            "windows_per_s": Timing([p_["windows_per_s"] for p_ in pairs]).to_dict(1),
            "bound_windows_per_s": Timing([p_["bound_windows_per_s"] for p_ in pairs]).to_dict(1),
            "ratio_median": ratios[len(ratios) // 2],
            "ratio_min": ratios[0],
            "up_bytes_per_window": pairs[-1]["up_bytes_per_window"],
            "down_bytes_per_window": pairs[-1]["down_bytes_per_window"],
        }
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
