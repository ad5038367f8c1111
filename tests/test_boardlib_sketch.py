"""Every firmware/src file compiled for the Arduino Nano 33 BLE as the Arduino mbed core 4.5.0 compiles
a sketch: its own cxxflags/cflags, defines and include list, its mbed_config.h, the pinned IMU and
TFLM libraries' headers; both engines x {host-stream, SENSOR, SENSOR + Rev2 IMU, SENSOR + synthetic
source}, warnings as errors for the project's files (the core's and libraries' headers are system
headers). A deliberately wrong call must fail, which proves the real headers are in use. (The ESP32
core is not among the shared sources, so the esp32dev envs are compiled on a user's machine only.)"""

from __future__ import annotations

import shlex
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from boardlibs import ROOT, build_tflm, library

from tests.conftest import has_arm_toolchain

pytestmark = [
    pytest.mark.board_libs,
    pytest.mark.emulator,  # arm-none-eabi-gcc
    pytest.mark.timeout(2400),  # a first run builds the pinned TFLM library (boardlibs.py: <= 30 min)
    pytest.mark.skipif(not has_arm_toolchain(), reason="needs arm-none-eabi-gcc"),
]

SRC = ROOT / "firmware" / "src"
CORE_LIB = ROOT / "firmware" / "lib" / "tinyae" / "src"
ENGINES = {"tflm": ["-DTAE_ENGINE_TFLM", "-DTAE_TFLM_LIB_CHIRALE"], "compiled": ["-DTAE_ENGINE_COMPILED"]}
MODES = {
    "host-stream": [],
    "sensor": ["-DTAE_BOARD_SENSOR"],
    "sensor-rev2": ["-DTAE_BOARD_SENSOR", "-DTAE_NANO33BLE_REV2"],
    "sensor-synth": ["-DTAE_BOARD_SENSOR", "-DTAE_BOARD_SYNTH"],
    "sensor-calib-at-boot": ["-DTAE_BOARD_SENSOR", "-DTAE_CALIB_AT_BOOT"],
}


def variant_dir() -> Path:
    return library("mbed_core") / "variants" / "ARDUINO_NANO33BLE"


def core_flags(kind: str) -> list[str]:
    """The core's own flags for a C++ ("cxx") or C ("c") file, include dirs as system headers."""
    core = library("mbed_core")
    variant = variant_dir()
    flags = [f for f in (variant / f"{kind}flags.txt").read_text().split() if f != "-c"]
    defines = shlex.split((variant / "defines.txt").read_text())
    prefix = core / "cores" / "arduino"
    includes = []
    for line in (variant / "includes.txt").read_text().split():
        assert line.startswith("-iwithprefixbefore"), line
        includes += ["-isystem", str(prefix / line.removeprefix("-iwithprefixbefore/"))]
    board = [
        "-DARDUINO=10810",
        "-DARDUINO_ARDUINO_NANO33BLE",
        "-DARDUINO_ARCH_NRF52840",
        "-DARDUINO_ARCH_MBED",
    ]
    system = [
        prefix, prefix / "api", variant, core / "libraries" / "Wire",
        library("lsm9ds1") / "src", library("bmi270") / "src", library("chirale") / "src",
    ]  # fmt: skip
    return [
        *flags, *defines, *board, "-include", str(variant / "mbed_config.h"),
        *(arg for d in system for arg in ("-isystem", str(d))), *includes,
    ]  # fmt: skip


def compile_for_board(source: Path, extra: list[str], model_dir: Path) -> subprocess.CompletedProcess[str]:
    is_c = source.suffix == ".c"
    cmd = ["arm-none-eabi-gcc" if is_c else "arm-none-eabi-g++", *core_flags("c" if is_c else "cxx")]
    cmd += ["-Wall", "-Wextra", "-Werror", "-ffp-contract=off", "-fno-fast-math", "-fsyntax-only"]
    cmd += [f"-I{model_dir}", f"-I{CORE_LIB}", f"-I{SRC}", *extra, str(source)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


CASES = [(e, m) for e in ENGINES for m in MODES]


@pytest.mark.parametrize(("engine", "mode"), CASES, ids=[f"{e}-{m}" for e, m in CASES])
def test_every_board_source_compiles_for_the_nano33ble(engine, mode, default_model_dir):
    sources = sorted(SRC.glob("*.cpp")) + sorted(SRC.glob("*.c"))
    assert {s.name for s in sources} >= {"main.cpp", "board_port.cpp", "board_sensor.cpp", "board_store.cpp"}
    flags = ENGINES[engine] + MODES[mode]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda s: compile_for_board(s, flags, default_model_dir), sources))
    failed = {s.name: r.stderr[-1500:] for s, r in zip(sources, results, strict=True) if r.returncode != 0}
    assert not failed, failed


@pytest.mark.parametrize(
    ("call", "needs", "error"),
    [("IMU.readAcceleration(x, y);", "Arduino_LSM9DS1.h", "no matching function for call to"),
     ("Serial.setRxBufferSize(2048);", "Arduino.h", "has no member named 'setRxBufferSize'"),
     ("mbed::TDBStore *s = nullptr; (void)x; (void)y; s->set(\"k\", nullptr);", "TDBStore.h",
      "no matching function for call to")],
    ids=["imu-arity", "esp32-only-serial-api", "tdbstore-arity"],
)  # fmt: skip
def test_a_wrong_call_fails_so_the_real_headers_are_in_use(call, needs, error, default_model_dir, tmp_path):
    source = tmp_path / "broken.cpp"
    source.write_text(
        f"#include <{needs}>\nvoid tae_broken(void)\n{{\n    float x = 0, y = 0;\n    {call}\n}}\n"
    )
    proc = compile_for_board(source, [], default_model_dir)
    assert proc.returncode != 0 and error in proc.stderr, proc.stderr[-1500:]


def test_the_tflm_build_uses_the_nano33ble_code_generation():
    """mk/tflm/library.mk builds Chirale with the core's code generation flags (a subset must not drift)."""
    ours = set((build_tflm("chirale", "cm4") / "flags.txt").read_text().split())
    theirs = [
        f
        for f in (variant_dir() / "cxxflags.txt").read_text().split()
        if f.startswith(("-m", "-f", "-O", "-std"))
    ]
    assert theirs and not set(theirs) - ours, sorted(set(theirs) - ours)
