"""Every file PlatformIO compiles for the board envs (firmware/src and the tinyae library), type-checked
against the board's real Arduino core the way that core compiles a sketch: the core's own flags,
defines and include paths (tests/boardcores.py reads them from the core, never retyped), the env's
build_flags and pinned libraries from platformio.ini, warnings as errors for tinyae's files (the core's
and libraries' headers are system headers). Both boards, both engines of each, every build option.

- nano33ble: Arduino mbed core 4.5.0, Chirale_TensorFLowLite 2.0.0, the Rev1 and Rev2 IMU libraries.
- esp32dev: ESP32 Arduino core 2.0.14 (the core espressif32@6.5.0 installs), with the include list,
  defines and flags of its tools/platformio-build.py / platformio-build-esp32.py, TensorFlowLite_ESP32
  1.0.0. Debian has no Xtensa compiler: arm-none-eabi-g++ -fsyntax-only -D__XTENSA__ stands in
  (boardcores.XTENSA_STAND_IN), which proves the sources agree with the core's declarations, not that
  the image builds, links or runs.

A deliberately wrong call next to its right form must fail against each core, naming a header of that
core or library, which proves the real headers are in use. One compile per source and distinct
preprocessing (boardcores.Matrix), shared by all tests, two at a time.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from boardcores import (
    NO_CANONICAL_PATHS,
    SRC,
    Matrix,
    board_envs,
    cached_run,
    compile_command,
    core,
    env,
    env_sources,
    esp32_build_env,
    option_sets,
)
from boardlibs import ROOT, library, require

from tests.conftest import has_arm_toolchain

pytestmark = [
    pytest.mark.board_libs,
    pytest.mark.emulator,  # arm-none-eabi-gcc
    pytest.mark.timeout(2400),
    pytest.mark.skipif(not has_arm_toolchain(), reason="needs arm-none-eabi-gcc"),
]

BOARDS = ("nano33ble", "esp32dev")
CORE_OF = {"nano33ble": "mbed_core", "esp32dev": "esp32_core"}


@pytest.fixture(scope="module")
def matrix(default_model_dir):
    """matrix(board) -> the board's Matrix, compiled on first use (every env x option set x source)."""
    built: dict[str, Matrix] = {}

    def get(board: str) -> Matrix:
        if board not in built:
            cases = {
                (e, name, source.name): compile_command(e, source, default_model_dir, flags)
                for e in board_envs(board)
                for name, flags in option_sets(board).items()
                for source in env_sources()
            }
            m = Matrix(cases)
            m.run(workers=os.cpu_count() or 2)
            built[board] = m
        return built[board]

    return get


CASES = [(b, o) for b in BOARDS for o in option_sets(b)]


@pytest.mark.parametrize("engine", ["tflm", "compiled"])
@pytest.mark.parametrize(("board", "option_set"), CASES, ids=[f"{b}-{o}" for b, o in CASES])
def test_every_source_compiles_against_the_core(board, option_set, engine, matrix):
    name = board if engine == "tflm" else f"{board}_compiled"
    assert name in board_envs(board)
    m = matrix(board)
    sources = {s for (e, o, s) in m.results if e == name and o == option_set}
    assert {"main.cpp", "board_port.cpp", "board_sensor.cpp", "board_store.cpp", "tae_app.c"} <= sources
    failures = m.failures(name, option_set)
    assert not failures, (
        failures,
        core(board).notes,
    )  # notes: where the check differs from the board's build


def test_the_matrix_is_compiled_once_per_distinct_preprocessing(matrix):
    """Each case has a result, from its own compile or from one whose preprocessing is provably equal;
    the TFLM glue, whose text no sensor option reaches, is compiled once per env. A compile counts
    whether the compiler ran now or its result was kept from an earlier run with every input the same
    (boardcores.cached_compile; tests/test_boardcores.py proves when one is reused)."""
    for board in BOARDS:
        m = matrix(board)
        assert set(m.results) == set(m.cases)
        own = {k for k, r in m.results.items() if r.shared_with is None}
        assert len(own) == m.compiles < len(m.cases)
        glue = [k for k in own if k[2] == "board_engine_tflm.cpp" and k[0] == board]
        assert [k[1] for k in glue] == ["host-stream"], glue
        sensor = {k[1] for k in own if k[2] == "board_sensor.cpp" and k[0] == board}
        assert {"sensor", "sensor-synth"} <= sensor  # what a TU reads is compiled for each value


# ------------------------------------------------------------------------------ wrong calls must fail

# (id, includes, declarations, right call, wrong call, what the compiler says about the wrong one)
TFLM_PROLOGUE = (
    "static uint8_t arena[1024];\n    const tflite::Model *model = tflite::GetModel(arena);\n"
    "    tflite::MicroMutableOpResolver<1> resolver;\n"
)
TFLM_HEADERS = [
    "tensorflow/lite/micro/micro_interpreter.h",
    "tensorflow/lite/micro/micro_mutable_op_resolver.h",
]
WRONG_CALLS: dict[str, list[tuple[str, list[str], str, str, str, str]]] = {
    "esp32dev": [
        ("nvs-open-mode", ["nvs.h"], "nvs_handle_t h;",
         'nvs_open("tinyae", NVS_READONLY, &h);', 'nvs_open("tinyae", true, &h);',
         "cannot convert 'bool' to 'nvs_open_mode_t'"),
        ("nvs-blob-length-by-value", ["nvs.h"], "size_t n = 0;",
         'nvs_get_blob(0, "calib", NULL, &n);', 'nvs_get_blob(0, "calib", NULL, n);',
         "invalid conversion from 'size_t'"),
        ("adc-attenuation", ["Arduino.h"], "",
         "analogSetPinAttenuation(34, ADC_11db);", "analogSetPinAttenuation(34, 3);",
         "invalid conversion from 'int' to 'adc_attenuation_t'"),
        ("uart-write-takes-no-timeout", ["driver/uart.h"], "",
         'uart_write_bytes(UART_NUM_0, "x", 1);', 'uart_write_bytes(UART_NUM_0, "x", 1, 100);',
         "too many arguments to function 'int uart_write_bytes("),
        ("tflm-interpreter-needs-error-reporter", [*TFLM_HEADERS, "tensorflow/lite/micro/micro_error_reporter.h"],
         TFLM_PROLOGUE + "    static tflite::MicroErrorReporter reporter;",
         "tflite::MicroInterpreter i(model, resolver, arena, sizeof arena, &reporter);",
         "tflite::MicroInterpreter i(model, resolver, arena, sizeof arena); (void)reporter;",
         "no matching function for call to 'tflite::MicroInterpreter::MicroInterpreter("),
    ],
    "nano33ble": [
        ("imu-arity", ["Arduino_LSM9DS1.h"], "float x = 0, y = 0, z = 0;",
         "IMU.readAcceleration(x, y, z);", "IMU.readAcceleration(x, y); (void)z;",
         "no matching function for call to"),
        ("usbcdc-send-buffer", ["Arduino.h", "USB/PluggableUSBSerial.h"], "static uint8_t packet[64] = {0};",
         "_SerialUSB.send(packet, sizeof packet);", '_SerialUSB.send("tinyae", 6); (void)packet;',
         "invalid conversion from 'const char*' to 'uint8_t*'"),
        ("tdbstore-arity", ["TDBStore.h"], "mbed::TDBStore *s = nullptr;",
         's->set("k", nullptr, 0, 0);', 's->set("k", nullptr);',
         "no matching function for call to"),
        ("tflm-interpreter-takes-no-error-reporter", [*TFLM_HEADERS, "tensorflow/lite/core/api/error_reporter.h"],
         TFLM_PROLOGUE + "    tflite::ErrorReporter *reporter = nullptr;",
         "tflite::MicroInterpreter i(model, resolver, arena, sizeof arena); (void)reporter;",
         "tflite::MicroInterpreter i(model, resolver, arena, sizeof arena, reporter);",
         "no matching function for call to 'tflite::MicroInterpreter::MicroInterpreter("),
    ],
}  # fmt: skip
WRONG = [(b, *case) for b, cases in WRONG_CALLS.items() for case in cases]


def snippet(name: str, includes: list[str], declarations: str, call: str) -> Path:
    """The call in a source of its own, at a path that stays the same from run to run (build/sketch-snippets),
    so that its compile is kept by content like the matrix's (boardcores.cached_run)."""
    head = "".join(f"#include <{h}>\n" for h in includes)
    text = f"{head}\nvoid tae_probe(void)\n{{\n    {declarations}\n    {call}\n}}\n"
    path = ROOT / "build" / "sketch-snippets" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("board", "case", "includes", "declarations", "right", "wrong", "error"),
    WRONG,
    ids=[f"{w[0]}-{w[1]}" for w in WRONG],
)
def test_a_wrong_call_fails_against_the_real_headers(
    board, case, includes, declarations, right, wrong, error, default_model_dir
):
    """The right call compiles and the wrong one fails where the core's or library's header says why."""
    from concurrent.futures import ThreadPoolExecutor

    sources = [
        snippet(f"{board}-{case}-{kind}.cpp", includes, declarations, call)
        for kind, call in [("right", right), ("wrong", wrong)]
    ]
    with ThreadPoolExecutor(max_workers=2) as pool:
        ok, bad = pool.map(lambda s: cached_run(compile_command(board, s, default_model_dir)), sources)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert bad.returncode != 0 and error in bad.stderr, bad.stderr[-2000:]
    third_party = library("esp32_core").parent
    assert re.search(rf"{re.escape(str(third_party))}/[^:\s]+\.h:\d+", bad.stderr), bad.stderr[-2000:]


def test_a_braced_adc_pin_list_is_refused_in_one_sentence(default_model_dir):
    """The form a brace-expanding shell breaks is refused at compile time, saying which form to use."""
    cmd = compile_command("esp32dev_compiled", SRC / "board_sensor.cpp", default_model_dir,
                          ["-DTAE_BOARD_SENSOR", "-DTAE_ESP32_ADC_PINS={34,35,32}"])  # fmt: skip
    proc = cached_run(cmd)
    assert proc.returncode != 0
    assert (
        "TAE_ESP32_ADC_PINS takes a comma list without braces: -D TAE_ESP32_ADC_PINS=34,35,32" in proc.stderr
    )


@pytest.mark.parametrize("board", BOARDS)
def test_resolving_no_header_path_changes_nothing_the_compiler_reads(board, default_model_dir):
    """The matrix compiles with -fno-canonical-system-headers (boardcores.NO_CANONICAL_PATHS: it spares
    GCC a realpath of every path it tries in a core's hundreds of folders). main.cpp, the source that
    reaches most of the core, preprocessed with and without it gives the same text line for line but for
    the spelling of file names in line markers, and both name the same files."""
    cmd = compile_command(board_envs(board)[0], SRC / "main.cpp", default_model_dir)
    assert cmd[1] == NO_CANONICAL_PATHS
    preprocess = [*[a for a in cmd if a != "-fsyntax-only"][:-1], "-E", cmd[-1]]
    fast = subprocess.run(preprocess, capture_output=True, text=True, timeout=300)
    resolved = subprocess.run([preprocess[0], *preprocess[2:]], capture_output=True, text=True, timeout=300)
    assert fast.returncode == 0 and resolved.returncode == 0, (fast.stderr[-2000:], resolved.stderr[-2000:])
    marker = re.compile(r'^(# \d+ )"([^"]*)"')  # a line marker: its number and flags stay compared

    def split(text: str) -> tuple[list[str], list[str]]:
        lines = text.splitlines()
        names = [m[2] for m in map(marker.match, lines) if m]
        return [marker.sub(r'\1"<file>"', line) for line in lines], names

    fast_lines, fast_names = split(fast.stdout)
    resolved_lines, resolved_names = split(resolved.stdout)
    assert fast_lines == resolved_lines

    def real(names: list[str]) -> list[str]:
        return [os.path.realpath(n) if n.startswith("/") else n for n in names]

    assert real(fast_names) == real(resolved_names)
    assert any(n.startswith(str(library(CORE_OF[board]))) for n in resolved_names)


# ------------------------------------------------------------------- the cores' flags and the pins


def test_the_esp32_flags_are_the_build_scripts(default_model_dir):
    """The scripts' include list exists in the copy (a changed list is noticed, not silently skipped
    by the compiler), and what the lane leaves out of their flags is only Xtensa code generation."""
    c = core("esp32dev")
    built = esp32_build_env(c.root)
    missing = [p for p in built.vars["CPPPATH"] if not Path(p).is_dir()]
    assert not missing, missing
    assert len(built.vars["CPPPATH"]) > 150  # the IDF components' include dirs
    assert "-std=gnu++11" in c.cxxflags and "-std=gnu99" in c.cflags and "-fno-rtti" in c.cxxflags
    dropped = set(built.vars["CCFLAGS"]) - set(c.cxxflags)
    assert dropped and all(f.startswith("-m") or f == "-MMD" for f in dropped), dropped
    defines = " ".join(c.common)
    for expected in ("-DESP32", "-DARDUINO_ARCH_ESP32", "-DF_CPU=240000000L", "-DARDUINO_ESP32_DEV",
                     '-DMBEDTLS_CONFIG_FILE="mbedtls/esp_config.h"', "-DESP_PLATFORM"):  # fmt: skip
        assert expected in defines
    cmd = compile_command("esp32dev", SRC / "main.cpp", default_model_dir)
    assert str(library("esp32") / "src") in cmd  # the env's lib_deps


# platform-espressif32 release -> the Arduino core it installs (its platform.json pins
# framework-arduinoespressif32 ~3.20014.0 from 6.5.0 on: "Arduino core 2.0.14" in its release notes).
ESP32_PLATFORM_CORE = {"6.5.0": "2.0.14"}


def test_the_esp32dev_platform_pin_is_the_core_of_these_headers():
    c = core("esp32dev")
    platforms = {env(e).platform for e in board_envs("esp32dev")}
    assert len(platforms) == 1
    name, version = platforms.pop().split("@")
    assert name == "espressif32" and version in ESP32_PLATFORM_CORE, (
        f"espressif32@{version}: which Arduino core it installs is not recorded here; the lane checks 2.0.14"
    )
    package = json.loads((c.root / "package.json").read_text())
    major, packed = package["version"].split(".")[:2]  # PlatformIO's 3.MMmmpp.date for core M.m.p
    assert package["name"] == "framework-arduinoespressif32" and major == "3"
    decoded = f"{int(packed[:-4])}.{int(packed[-4:-2])}.{int(packed[-2:])}"
    platform_txt = re.search(r"^version=(\S+)$", (c.root / "platform.txt").read_text(), re.M)
    assert platform_txt is not None
    assert decoded == platform_txt[1] == ESP32_PLATFORM_CORE[version]


def test_the_esp32_tflm_build_uses_the_core_defines():
    """mk/tflm/library.mk builds TensorFlowLite_ESP32 with the ESP32 core's defines (checked, not assumed),
    plus tinyae's own name of the library, the one the esp32dev env gives the sketch."""
    defines = {f for f in build_tflm_flags("esp32", "host").read_text().split() if f.startswith("-D")}
    identity = {f for f in defines if f.startswith("-DTAE_TFLM_LIB_")}
    ours = defines - identity
    theirs = set(core("esp32dev").common)
    assert ours and ours <= theirs, sorted(ours - theirs)
    env_flags = " ".join(env("esp32dev").build_flags).replace("-D ", "-D")
    assert identity == {"-DTAE_TFLM_LIB_ESP32"} and "-DTAE_TFLM_LIB_ESP32" in env_flags.split()


def test_the_tflm_build_uses_the_nano33ble_code_generation():
    """mk/tflm/library.mk builds Chirale with the core's code generation flags (a subset must not drift)."""
    ours = set(build_tflm_flags("chirale", "cm4").read_text().split())
    theirs = [f for f in core("nano33ble").cxxflags if f.startswith(("-m", "-f", "-O", "-std"))]
    assert theirs and not set(theirs) - ours, sorted(set(theirs) - ours)


def build_tflm_flags(lib: str, arch: str) -> Path:
    """build/tflm/<lib>-<arch>/flags.txt alone (mk/tflm.mk), without building the library."""
    out = ROOT / "build" / "tflm" / f"{lib}-{arch}" / "flags.txt"
    proc = subprocess.run(
        ["make", "--no-print-directory", str(out.relative_to(ROOT))],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "TAE_THIRD_PARTY": str(require())},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out
