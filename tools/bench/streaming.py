"""Streaming figures: the host codec's frame rate, the emulated serial link's byte rate and the bound it
sets on windows per second, and end-to-end `verify` over the emulated link (when the host CLI exists).

- Codec: encode_frame + StreamDecoder.feed (COBS, CRC32 check, message decode) of RESULT frames, with
  and without the verification payload (int8 input and output of the window), in frames per second.
- Link: a bench image (bench_app.c with TAE_BENCH_LINK) on QEMU measures each direction alone: 128 KiB
  host -> device (the device only counts them, and reports RX-ring drops) and 128 KiB device -> host.
  The bound on windows per second = min over the two directions of (bytes/s / wire bytes of one window
  in that direction): a hop of samples in SAMPLES frames up; a verified RESULT frame + one ACK per
  batch down. It is an upper bound: in a real stream both directions share one emulated CPU.
- verify: `tinyae device verify --port socket://... --model-dir DIR --json out.json` against the real
  image (`make firmware-emu MODEL_DIR=DIR`) on QEMU, wall time of the whole command for the test split.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np

from tinyae.errors import UserError
from tinyae.tools.bench.common import TINYAE, Timing, command_text, rate, rel, run
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
