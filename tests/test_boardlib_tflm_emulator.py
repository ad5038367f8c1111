"""The TFLM engine on the emulated Cortex-M4F, built from the library the nano33ble env pins
(Chirale_TensorFLowLite 2.0.0, its CMSIS-NN kernels, the Nano 33 BLE's code generation flags) and
from upstream TFLM (reference kernels), verified by the real host tool, window for window, against the
host reference of the library the device names in its handshake, on three trained models, two models
retuned onto multiplier ties (where tflite_micro's double-precision multiplier would differ) and both weight
granularities where the library supports them: every window bit-exact, every decision equal."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from boardlibs import TFLM_LIBRARY_OF, build_tflm, model_variant, require

from tests.conftest import LANE_MODELS, TIE_MODELS, has_arm_toolchain, windows_to_verify
from tinyae.cli import main as tinyae
from tinyae.tools.emulator.qemu import Emulator, build_image
from tinyae.tools.link import protocol as p
from tinyae.tools.testing.ties import differing_windows

pytestmark = [
    pytest.mark.board_libs,
    pytest.mark.emulator,
    pytest.mark.timeout(2400),  # a first run builds the pinned TFLM library (boardlibs.py: <= 30 min)
    pytest.mark.skipif(not has_arm_toolchain(), reason="needs arm-none-eabi-gcc and qemu-system-arm"),
]

CASES = (
    [("chirale", m, "per_tensor") for m in [*LANE_MODELS, *TIE_MODELS]]
    + [("upstream", m, w) for m in LANE_MODELS for w in ("per_tensor", "per_channel")]
    + [("upstream", m, "per_tensor") for m in TIE_MODELS]
)
LIBRARY_NAMES = {"chirale": "Chirale_TensorFLowLite 2.0.0", "upstream": "tflite-micro 90b983c"}


def tflm_image(lib: str, model_dir: Path, out: Path) -> Path:
    require()
    build_tflm(lib, "cm4")
    build_image(out, model_dir=model_dir, engine="tflm", tflm_lib=lib)
    return out / "tinyae.elf"


@pytest.mark.parametrize(("lib", "model", "weights"), CASES, ids=["-".join(c) for c in CASES])
def test_tflm_on_the_emulated_board_is_bit_exact_with_the_host(lib, model, weights, lane_model, tmp_path):
    model_dir = lane_model(model, weights)
    elf = tflm_image(lib, model_dir, tmp_path / "fw")
    windows = windows_to_verify(model_dir)
    report = tmp_path / "verify.json"
    code = tinyae(["device", "verify", "--emulator", str(elf), "--model-dir", str(model_dir),
                   "--max-windows", str(windows), "--json", str(report), "--quiet"])  # fmt: skip
    r = json.loads(report.read_text())
    assert r["device"]["engine"] == "tflm" and r["device"]["library"] == LIBRARY_NAMES[lib]
    assert r["reference"] == "tflm"  # the library's arithmetic (train/boards.py), not tflite_micro's
    assert r["windows_compared"] == r["windows_expected"] == windows
    assert r["input_mismatches"] == 0 and r["output_mismatches"] == 0, r
    assert r["scores_exact_equal"] == r["windows_compared"]
    assert r["n_decision_mismatches"] == 0 and r["n_alarm_mismatches"] == 0
    assert 0 < r["device_anomalies"] < r["windows_compared"]  # decisions both ways
    assert all(c["ok"] for c in r["constants"])
    assert code == 0 and r["ok"], r
    if model in TIE_MODELS:  # the windows where tflite_micro's rule would have given other outputs
        tie = json.loads((model_dir / "manifest.json").read_text())["reference"]["tflite_micro"]
        assert tie["elements_differing"] >= 3 and tie["windows_differing"] == len(
            differing_windows(model_dir)
        )


def test_per_channel_weights_do_not_build_for_the_nano33ble_library(lane_model, tmp_path):
    require()
    build_tflm("chirale", "cm4")
    proc = build_image(
        tmp_path / "fw",
        model_dir=lane_model("default", "per_channel"),
        engine="tflm",
        tflm_lib="chirale",
        check=False,
    )
    assert proc.returncode != 0
    assert (
        "this model has per-channel FULLY_CONNECTED weights, which this TFLM library computes" in proc.stderr
    )
    assert not TFLM_LIBRARY_OF["chirale"].per_channel_fully_connected  # train/boards.py says the same


def _boot(elf: Path) -> tuple[str, list]:
    """Boot the image: the text it prints before its first frame and the messages after it (BOOT, any
    ERROR within half a second), then the answer to a HELLO: the device must still work."""
    with Emulator(elf) as emu:
        ser = emu.connect(timeout=0.2)
        data = b""

        def messages() -> list:
            if b"\x00" not in data:
                return []
            events = p.StreamDecoder().feed(data[data.index(b"\x00") :])
            return [e.msg for e in events if isinstance(e, p.Frame)]

        def read_until(done, seconds: float) -> None:
            nonlocal data
            deadline = time.monotonic() + seconds
            while not done():
                assert time.monotonic() < deadline and emu.exit_code is None, (
                    data[-300:],
                    emu.stderr_text[-999:],
                )
                data += ser.read(4096)

        read_until(lambda: any(isinstance(m, p.Boot) for m in messages()), 15.0)
        settle = time.monotonic() + 0.5
        read_until(lambda: time.monotonic() > settle, 5.0)
        ser.write(p.encode_frame(p.Hello(), 0))
        read_until(lambda: any(type(m) is p.Info for m in messages()), 5.0)
        return data[: data.index(b"\x00")].decode(errors="replace"), messages()


def test_an_arena_too_small_for_an_op_is_an_engine_error_not_a_crash(lane_model, tmp_path):
    """Below TAE_ARENA_MIN_BYTES TFLM's own failure paths are unsafe (the build refuses it); this test
    fakes a wrong host measurement to reach the arena sizes where an op's init finds no room, which
    Chirale's kernels would then dereference: the glue's guard turns that into ERR_ALLOC.

    The sizes are found, not assumed: starting small, each boot's "missing: N" from TFLM's allocator
    is added until model allocation starts; the next failure is the first op's data."""
    require()
    build_tflm("chirale", "cm4")
    base = lane_model("default", "per_tensor")
    size, seen = 256, []
    for attempt in range(12):

        def shrink(manifest: dict, n: int = size) -> None:
            manifest["arena"]["bytes"] = manifest["arena"]["measured_bytes_host"] = n

        model_dir = model_variant(base, tmp_path / f"m{attempt}", shrink)
        text, frames = _boot(tflm_image("chirale", model_dir, tmp_path / f"fw{attempt}"))
        boot = next(f for f in frames if isinstance(f, p.Boot))
        assert boot.engine == "tflm" and boot.engine_ram == size
        errors = [f for f in frames if isinstance(f, p.ErrorReply)]
        assert [(e.code, e.got) for e in errors] == [(p.ErrorCode.ENGINE, 0xFFFFFFFF)], (size, text)  # -1
        seen.append((size, text))
        if "setting up FULLY_CONNECTED" in text:
            assert "tinyae: engine init failed: TFLM ran out of arena setting up FULLY_CONNECTED: " in text
            assert "raise arena.margin_bytes and run make model" in text
            return
        missing = re.findall(r"missing: (\d+)", text)
        assert "Failed starting model allocation" in text and missing, (size, text)
        size += int(missing[0])
    pytest.fail(f"no arena size reached the op-init guard: {seen}")
