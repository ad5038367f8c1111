"""Host builds of the C protocol codec and of a simulated device, for ctypes.

`SimDevice()` is the real device application (tae_app.c + tae_protocol.c + tae_pipeline.c) over an
in-memory port with a stand-in engine (firmware/tests/sim_engine.c), built for the protocol test
configuration (tools/protocol_vectors.CONFIG) unless a model_config.h directory is given:

    dev = SimDevice()
    dev.boot()                      # BOOT frame waits in dev.read()
    dev.write(encode_frame(Hello(), 0))
    frames = StreamDecoder().feed(dev.read())

`python -m tinyae.tools.testing.fuzz --seconds N` (make fuzz) builds and runs the libFuzzer target.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tinyae import hostbuild
from tinyae.tools.simdevice.vectors import CONFIG, model_config_h

ROOT = hostbuild.ROOT
SRC = hostbuild.CORE_DIR / "src"
TESTS_C = ROOT / "firmware" / "tests"
CONFIG_DIR = hostbuild.HOST_BUILD_DIR / "protocol_config"


def config_dir() -> Path:
    """Directory holding the model_config.h of the protocol test configuration."""
    CONFIG_DIR.mkdir(parents=True, exist_ok=True)
    header = CONFIG_DIR / "model_config.h"
    text = model_config_h(CONFIG)
    if not header.exists() or header.read_text() != text:
        header.write_text(text)
    return CONFIG_DIR


def build_codec(*, sanitize: bool = False) -> Path:
    """The C codec plus firmware/tests/protocol_driver.c as a shared library."""
    return hostbuild.build_shared(
        "protocol_codec",
        [SRC / "tae_protocol.c", TESTS_C / "protocol_driver.c"],
        [config_dir(), SRC],
        sanitize=sanitize,
    )


def build_sim(model_config: Path | None = None, engine_sources: Sequence[Path] | None = None) -> Path:
    """The simulated device library; by default the test configuration and the stand-in engine."""
    cfg = model_config if model_config is not None else config_dir()
    engine = list(engine_sources) if engine_sources is not None else [TESTS_C / "sim_engine.c"]
    sources = [
        SRC / "tae_app.c", SRC / "tae_protocol.c", SRC / "tae_pipeline.c", SRC / "tae_calib.c", SRC / "tae_pace.c",
        SRC / "tae_digest.c", SRC / "tae_frontend.c", TESTS_C / "sim_device.c",
    ]  # fmt: skip
    return hostbuild.build_shared("protocol_sim", sources + engine, [cfg, SRC])


class _ClockCounts(ctypes.Structure):
    """tae_clock_counts_t (tae_port.h)."""

    _fields_ = [("skipped", ctypes.c_uint32), ("late", ctypes.c_uint32), ("flags", ctypes.c_uint8)]


class SimDevice:
    """A device in-process: write() bytes to it, read() what it answered."""

    def __init__(self, lib_path: Path | None = None, channels: int = CONFIG["channels"]):
        # The C state is static: instances over the same library share one device; boot() resets it.
        path = lib_path if lib_path is not None else build_sim()
        self.lib = ctypes.CDLL(str(path), mode=getattr(ctypes, "RTLD_LOCAL", 0))
        self.channels = channels
        lib = self.lib
        lib.sim_feed.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
        lib.sim_read.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        lib.sim_read.restype = ctypes.c_size_t
        lib.sim_pending.restype = ctypes.c_size_t
        lib.sim_poll.restype = ctypes.c_int
        lib.sim_push_sensor.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
        lib.sim_push_sensor.restype = ctypes.c_uint32
        lib.sim_tx_overflow.restype = ctypes.c_uint32
        lib.sim_set_link_budget.argtypes = [ctypes.c_int32]
        lib.sim_sensor_pace.argtypes = [ctypes.c_uint32, ctypes.c_int32, ctypes.c_uint32]
        lib.sim_sensor_advance.argtypes = [ctypes.c_uint32]
        lib.sim_store_put.argtypes = [ctypes.c_char_p, ctypes.c_int32]
        lib.sim_store_get.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        lib.sim_store_get.restype = ctypes.c_int32
        lib.sim_store_fail.argtypes = [ctypes.c_uint32]
        # Only the stand-in engine has the fault hook; a real model's engine does not.
        self._fail_hook = getattr(lib, "sim_set_engine_fail_every", None)
        if self._fail_hook is not None:
            self._fail_hook.argtypes = [ctypes.c_uint32]

    def boot(self) -> None:
        """Reset the device: it sends 0x00 and a BOOT frame with tx seq 0."""
        self.lib.sim_boot()

    def write(self, data: bytes) -> int:
        self.lib.sim_feed(bytes(data), len(data))
        return len(data)

    def read(self, max_bytes: int | None = None) -> bytes:
        n = self.lib.sim_pending() if max_bytes is None else max_bytes
        buf = ctypes.create_string_buffer(max(n, 1))
        got = self.lib.sim_read(buf, n)
        return buf.raw[:got]

    @property
    def pending(self) -> int:
        return int(self.lib.sim_pending())

    def poll(self) -> bool:
        """One main-loop iteration (sensor mode reads the queued samples). True when the device is then
        idle (tae_app_idle: a board may sleep until the host sends more), False in sensor mode."""
        return bool(self.lib.sim_poll())

    def push_sensor(self, samples) -> int:
        arr = np.ascontiguousarray(samples, dtype=np.float32).reshape(-1, self.channels)
        return int(self.lib.sim_push_sensor(arr.ctypes.data, arr.shape[0]))

    def sensor_pace(self, period: int, catch_up: bool = False, flags: int = 0) -> None:
        """Pace the sensor like a board (tae_pace.h): a slot every `period` ticks of a clock moved with
        sensor_advance; the queue holds one value per slot (a skipped slot's is dropped). period 0:
        unpaced. flags: the p.Clock flags the device reports (they survive boot, like hardware)."""
        self.lib.sim_sensor_pace(period, int(catch_up), flags)

    def sensor_advance(self, ticks: int) -> None:
        self.lib.sim_sensor_advance(ticks)

    def sample_counts(self) -> tuple[int, int, int]:
        """The device's sample clock since the stream started: (skipped, late, flags)."""
        out = _ClockCounts()
        self.lib.tae_port_sample_counts(ctypes.byref(out))
        return int(out.skipped), int(out.late), int(out.flags)

    def set_engine_fail_every(self, n: int) -> None:
        if self._fail_hook is None:
            raise RuntimeError("this simulated device runs a real engine without the fault hook")
        self._fail_hook(n)

    def set_link_budget(self, n: int | None) -> None:
        """The link takes n more bytes, then none (a USB CDC port no host holds open); None: unlimited."""
        self.lib.sim_set_link_budget(-1 if n is None else n)

    @property
    def tx_overflow(self) -> int:
        return int(self.lib.sim_tx_overflow())

    # The device's non-volatile storage (survives boot()): the calibration record.
    STORE_READ_FAILS, STORE_WRITE_FAILS, STORE_ERASE_FAILS, STORE_WRITE_TEARS = 1, 2, 4, 8

    @property
    def store(self) -> bytes | None:
        buf = ctypes.create_string_buffer(8192)
        n = int(self.lib.sim_store_get(buf, len(buf)))
        return None if n < 0 else buf.raw[:n]

    @store.setter
    def store(self, data: bytes | None) -> None:
        if data is None:
            self.lib.sim_store_put(None, -1)
        else:
            self.lib.sim_store_put(bytes(data), len(data))

    def store_fail(self, mode: int) -> None:
        """Storage faults from now on: an OR of the STORE_* bits (0: none)."""
        self.lib.sim_store_fail(mode)


# ---------------------------------------------------------------- fuzzing (make fuzz)
