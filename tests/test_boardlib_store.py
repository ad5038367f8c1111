"""The ESP32 half of firmware/src/board_store.cpp keeps tae_port.h's storage contract, run on the host
against NVS as ESP-IDF 4.4's nvs.h documents it (firmware/tests/nvs_sim.c), compiled with the real
nvs.h and esp_err.h of the ESP32 core the esp32dev env pins (its include list from the core's own
build scripts, tests/boardcores.py). Its calls type-check against the real core in
tests/test_boardlib_sketch.py; here it is what they return that is checked:

- a stored record longer than the caller's buffer is OK with its full length (the core then calls it
  corrupt), never a store error;
- nothing stored (no namespace, or no key) is EMPTY; a failing NVS is an ERROR, never EMPTY;
- write replaces the record and commits it; erase of nothing is OK and writes nothing.
"""

from __future__ import annotations

import ctypes
import subprocess
from pathlib import Path

import pytest
from boardcores import SRC, esp32_build_env
from boardlibs import ROOT, library

pytestmark = pytest.mark.board_libs

STORE_OK, STORE_EMPTY, STORE_ERROR = 0, 1, -1
ESP_FAIL = -1
ESP_ERR_NVS_NOT_INITIALIZED = 0x1100 + 0x01
ESP_ERR_NVS_INVALID_STATE = 0x1100 + 0x0B
ESP_ERR_NVS_NOT_ENOUGH_SPACE = 0x1100 + 0x05


class Store:
    """board_store.cpp (ESP32 half) + the NVS simulation, through ctypes."""

    def __init__(self, so: Path) -> None:
        self.lib = ctypes.CDLL(str(so))
        self.lib.tae_nvs_sim_fail.argtypes = [ctypes.c_char_p, ctypes.c_int]
        self.lib.tae_nvs_sim_put.argtypes = [
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_size_t,
        ]
        self.lib.tae_port_store_read.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.POINTER(ctypes.c_size_t),
        ]
        self.lib.tae_port_store_write.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
        self.lib.tae_nvs_sim_reset()

    def read(self, cap: int) -> tuple[int, int, bytes]:
        buf = ctypes.create_string_buffer(b"\xee" * cap, cap)
        length = ctypes.c_size_t(12345)
        rc = self.lib.tae_port_store_read(buf, cap, ctypes.byref(length))
        return rc, length.value, buf.raw

    def write(self, data: bytes) -> int:
        return self.lib.tae_port_store_write(data, len(data))

    def erase(self) -> int:
        return self.lib.tae_port_store_erase()

    def put(self, data: bytes) -> None:
        self.lib.tae_nvs_sim_put(b"tinyae", b"calib", data, len(data))

    def fail(self, fn: str, err: int) -> None:
        self.lib.tae_nvs_sim_fail(fn.encode(), err)


@pytest.fixture(scope="module")
def store_so(tmp_path_factory) -> Path:
    core = library("esp32_core")
    out = tmp_path_factory.mktemp("esp32_store")
    (out / "Arduino.h").write_text("/* board_store.cpp's ESP32 half needs nothing from the Arduino core */\n")
    # nvs.h and what it includes, each from the first folder of the core's include list that holds it
    # (the whole list would put the core's newlib headers before the host's C library).
    cpppath = [Path(p) for p in esp32_build_env(core).vars["CPPPATH"]]
    needed = ["nvs.h", "esp_attr.h", "esp_err.h", "esp_compiler.h", "sdkconfig.h"]
    dirs = [next(d for d in cpppath if (d / h).is_file()) for h in needed]
    includes = [f"-I{out}", *(f"-isystem{d}" for d in dict.fromkeys(dirs))]
    includes += [f"-I{SRC}", f"-I{ROOT / 'firmware' / 'lib' / 'tinyae' / 'src'}"]
    so = out / "store.so"
    cmd = [
        "g++", "-shared", "-fPIC", "-Wall", "-Wextra", "-Werror", "-DARDUINO_ARCH_ESP32", "-DTAE_ENGINE_COMPILED",
        *includes, "-x", "c++", str(SRC / "board_store.cpp"), "-x", "c", str(ROOT / "firmware" / "tests" / "nvs_sim.c"),
        "-o", str(so),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return so


@pytest.fixture
def store(store_so) -> Store:
    return Store(store_so)


def test_nothing_stored_is_empty(store):
    assert store.read(64)[:2] == (STORE_EMPTY, 0)
    store.put(b"x")
    store.lib.tae_nvs_sim_reset()
    store.lib.tae_nvs_sim_put(b"tinyae", b"other", b"y", 1)  # the namespace, but no record
    assert store.read(64)[:2] == (STORE_EMPTY, 0)


def test_a_record_round_trips(store):
    record = bytes(range(48))
    assert store.write(record) == STORE_OK
    rc, length, buf = store.read(48)
    assert (rc, length, buf) == (STORE_OK, 48, record)
    assert store.read(100)[:2] == (STORE_OK, 48)
    assert store.lib.tae_nvs_sim_open_handles() == 0


def test_a_record_longer_than_the_buffer_is_ok_with_its_full_length(store):
    """tae_port.h: *len is the full stored length (which may exceed cap), status OK; the core then
    calls the record corrupt. (Preferences::getBytes returns 0 here, which was reported as an error.)"""
    store.put(bytes(range(200)))
    rc, length, _ = store.read(64)
    assert (rc, length) == (STORE_OK, 200)


def test_a_shorter_or_empty_record_is_ok_with_its_length(store):
    store.put(b"\x01\x02\x03")
    rc, length, buf = store.read(64)
    assert (rc, length, buf[:3]) == (STORE_OK, 3, b"\x01\x02\x03")
    store.put(b"")
    assert store.read(64)[:2] == (STORE_OK, 0)


@pytest.mark.parametrize(
    ("fn", "err"),
    [
        ("nvs_open", ESP_ERR_NVS_NOT_INITIALIZED),
        ("nvs_open", ESP_FAIL),
        ("nvs_get_blob", ESP_ERR_NVS_INVALID_STATE),
    ],
)
def test_a_failing_nvs_is_an_error_never_empty(store, fn, err):
    store.put(bytes(16))
    store.fail(fn, err)
    assert store.read(64)[:2] == (STORE_ERROR, 0)
    assert store.lib.tae_nvs_sim_open_handles() == 0


@pytest.mark.parametrize(
    ("fn", "err"), [("nvs_open", ESP_ERR_NVS_NOT_INITIALIZED), ("nvs_set_blob", ESP_ERR_NVS_NOT_ENOUGH_SPACE),
                    ("nvs_commit", ESP_FAIL)]
)  # fmt: skip
def test_a_failing_write_is_an_error(store, fn, err):
    store.fail(fn, err)
    assert store.write(bytes(16)) == STORE_ERROR
    assert store.lib.tae_nvs_sim_open_handles() == 0


def test_erase(store):
    assert store.erase() == STORE_OK  # nothing stored
    assert store.lib.tae_nvs_sim_namespaces() == 0  # and nothing written for it
    assert store.write(bytes(16)) == STORE_OK
    assert store.erase() == STORE_OK
    assert store.read(64)[:2] == (STORE_EMPTY, 0)
    assert store.erase() == STORE_OK  # the namespace, no record
    store.put(bytes(16))
    store.fail("nvs_erase_key", ESP_ERR_NVS_INVALID_STATE)
    assert store.erase() == STORE_ERROR
    store.fail("nvs_open", ESP_ERR_NVS_NOT_INITIALIZED)
    assert store.erase() == STORE_ERROR
    assert store.lib.tae_nvs_sim_open_handles() == 0
