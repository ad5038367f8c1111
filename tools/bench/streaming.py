"""Streaming figures: the host codec's frame rate, the emulated serial link's byte rate and the bound it
sets on windows per second, and end-to-end `verify` over the emulated link (when the host CLI exists).

- Codec: encode_frame + StreamDecoder.feed (COBS, CRC32 check, message decode) of RESULT frames, with
  and without the verification payload (int8 input and output of the window), in frames per second.
- Link: the target's echo image (EMU_APP=stub) on QEMU; the host writes blocks and reads the echo back,
  keeping at most BLOCK (1024) bytes in flight (the RX ring must never overflow); echoed bytes per second.
  The bound on windows per second = link bytes/s / the wire bytes of one window in the busier
  direction (a hop of samples in SAMPLES frames up; a verified RESULT frame + one ACK per batch down),
  each direction assumed to move at the echo rate.
- verify: `python -m tools verify --port socket://... --model-dir DIR --json out.json` against the real
  image (`make firmware-emu MODEL_DIR=DIR`) on QEMU, wall time of the whole command for the test split.
"""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

import numpy as np

from tools import protocol as P
from tools.bench.common import PY, ROOT, Timing, command_text, rate, run
from tools.bench.models import TrainedModel
from train.errors import UserError

REPEATS = 5
CODEC_BATCH = 100  # frames per timed call
BLOCK = 1024  # echo benchmark: bytes in flight (the target's RX ring holds 4096)


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
        "tools.bench.streaming.codec_figures: encode_frame + StreamDecoder.feed, checked round trip"
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


def link_byte_rate(work_dir: Path, seconds: float = 1.5, repeats: int = 3) -> dict:
    """Echoed bytes per second through the stub image's UART on QEMU (median of `repeats` runs)."""
    from tools.emulator import Emulator, build_image

    img_dir = work_dir / "echo-stub"
    build_image(img_dir, app="stub")
    elf = img_dir / "tinyae.elf"
    block = bytes(range(256)) * (BLOCK // 256)
    rates = []
    with Emulator(elf) as emu:
        ser = emu.connect(timeout=0.5)
        try:
            emu.read_banner(ser)
            for _ in range(repeats):
                got = 0
                t0 = time.perf_counter()
                while time.perf_counter() - t0 < seconds:
                    ser.write(block)
                    want = len(block)
                    while want > 0:
                        chunk = ser.read(want)
                        if not chunk:
                            raise UserError("the echo image stopped answering during the link benchmark")
                        if chunk != block[len(block) - want : len(block) - want + len(chunk)]:
                            raise UserError("the echo image returned different bytes than were sent")
                        want -= len(chunk)
                    got += len(block)
                rates.append(got / (time.perf_counter() - t0))
        finally:
            ser.close()
    t = Timing(rates)
    return {
        "bytes_per_s": t.to_dict(0),
        "block_bytes": len(block),
        "repeats": repeats,
        "seconds_per_run": seconds,
        "command": f"make firmware-emu EMU_APP=stub EMU_OUT={img_dir.relative_to(ROOT)}; "
        "tools.bench.streaming.link_byte_rate (1024-byte blocks written and read back)",
    }


def cli_available() -> str | None:
    """None when `python -m tools verify` exists, else the reason it cannot be measured."""
    if importlib.util.find_spec("tools.cli") is None or not (ROOT / "tools" / "__main__.py").exists():
        return "the host CLI (`python -m tools verify`, tools/cli.py) does not exist yet"
    try:
        _, text = run([PY, "-m", "tools", "verify", "--help"], timeout=60)
    except UserError as exc:
        return f"`python -m tools verify --help` failed: {exc}"
    if "--json" not in text or "--model-dir" not in text:
        return "`python -m tools verify` has no --json/--model-dir options yet"
    return None


def verify_figures(model: TrainedModel, work_dir: Path, repeats: int = 3) -> dict:
    """End-to-end verify of the test split over the emulated link, median of `repeats` runs."""
    reason = cli_available()
    if reason:
        return {"status": "not measured", "reason": reason}
    from tools.emulator import Emulator, build_image

    img_dir = work_dir / f"core-{model.spec.name}"
    build_image(img_dir, app="core", model_dir=model.dir)
    elf = img_dir / "tinyae.elf"
    vec = np.load(model.dir / "test_vectors.npz")
    n_windows = len(vec["scores"])
    walls, reports = [], []
    argv: list[str] = []
    for i in range(repeats):
        json_out = work_dir / f"verify-{model.spec.name}-{i}.json"
        with Emulator(elf) as emu:
            argv = [PY, "-m", "tools", "verify", "--port", emu.url, "--model-dir", str(model.dir)]
            argv += ["--json", str(json_out)]
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
        "command": command_text(argv).replace(argv[4], "socket://127.0.0.1:PORT"),
        "image": f"make firmware-emu MODEL_DIR={model.dir} EMU_OUT={img_dir}",
        "cli_report": reports[-1],
    }
    return out
