"""The core's calibration C (firmware/lib/tinyae/src/tae_calib.c), built for the host against a model's
model_config.h and called through ctypes: the host mirror computes a record with the very float32
operations, in the very order, the device performs (built with -ffp-contract=off, no fast-math), so
its record is the device's bit for bit; and a record is judged (tae_calib_unpack) by the device's own
rules."""

from __future__ import annotations

import ctypes
from functools import cache
from pathlib import Path

import numpy as np

from tinyae import hostbuild
from tinyae.errors import UserError
from tinyae.train.calibration.spec import record_bytes

CORE_SRC = hostbuild.CORE_DIR / "src"
EV_NONE, EV_CORRECTION, EV_DONE = 0, 1, 2


def _library(include_dir: Path) -> ctypes.CDLL:
    """The core's calibration C built against include_dir's model_config.h as it is now (the build is
    named by the headers' content, so a header `tinyae threshold` rewrote gives another library)."""
    header = include_dir / "model_config.h"
    if not header.is_file():
        raise UserError(f"{header} is missing; run `make model` (it renders the model's constants)")
    so = hostbuild.build_shared(
        "calibration", [CORE_SRC / "tae_calib.c", CORE_SRC / "tae_protocol.c"], [include_dir, CORE_SRC]
    )
    return _bind(so)


@cache
def _bind(so: Path) -> ctypes.CDLL:
    lib = hostbuild.load(so)
    vp, u16, u32, sz = ctypes.c_void_p, ctypes.c_uint16, ctypes.c_uint32, ctypes.c_size_t
    lib.tae_calib_state_size.restype = sz
    lib.tae_calib_begin.argtypes = [vp, u16]
    lib.tae_calib_begin.restype = ctypes.c_int
    lib.tae_calib_sample.argtypes = [vp, vp]
    lib.tae_calib_window.argtypes = [vp, ctypes.c_float, ctypes.c_int32]
    lib.tae_calib_window.restype = ctypes.c_int
    lib.tae_calib_status.argtypes = [vp]
    lib.tae_calib_status.restype = u32
    lib.tae_calib_cluster_end.argtypes = [vp]
    lib.tae_calib_cluster_end.restype = u32
    lib.tae_calib_channel_verdict.argtypes = [u32, ctypes.c_float, ctypes.c_float]
    lib.tae_calib_channel_verdict.restype = ctypes.c_uint8
    lib.tae_calib_pack_candidate.argtypes = [vp, vp]
    lib.tae_calib_pack_candidate.restype = sz
    lib.tae_calib_unpack.argtypes = [ctypes.c_char_p, sz, vp]
    lib.tae_calib_unpack.restype = ctypes.c_int
    lib.tae_calib_rank.argtypes = [u16]
    lib.tae_calib_rank.restype = u16
    lib.tae_calib_phases.restype = u32
    lib.tae_calib_factory.argtypes = [vp]
    lib.tae_calib_pack.argtypes = [vp, vp]
    lib.tae_calib_pack.restype = sz
    return lib


class NativeCalib:
    """One tae_calib_t driven from Python (include_dir: the directory of the model's model_config.h)."""

    RECORD_STRUCT_BYTES = 4096  # room for a tae_calib_record_t of up to 255 channels

    def __init__(self, include_dir: Path, channels: int) -> None:
        self.lib = _library(Path(include_dir).resolve())
        self.channels = int(channels)
        self._state = ctypes.create_string_buffer(self.lib.tae_calib_state_size())
        self._packed = ctypes.create_string_buffer(record_bytes(self.channels))

    def begin(self, n: int) -> None:
        if self.lib.tae_calib_begin(self._state, n) != 0:
            raise UserError(f"{n} windows is outside what the firmware's calibration accepts")

    def cluster_end(self) -> int:
        """The phase-2 index of the last window of the densest stretch above the factory threshold."""
        return int(self.lib.tae_calib_cluster_end(self._state))

    def channel_verdict(self, k: int, mean: float, sd: float) -> int:
        """tae_calib_channel_verdict: 0, or the TAE_CALIB_OUT_* reason channel k's statistics are refused."""
        return int(self.lib.tae_calib_channel_verdict(k, float(mean), float(sd)))

    def samples(self, x: np.ndarray) -> None:
        a = np.ascontiguousarray(x, np.float32).reshape(-1, self.channels)
        base = a.ctypes.data
        step = a.strides[0]
        for i in range(len(a)):
            self.lib.tae_calib_sample(self._state, base + i * step)

    def window(self, score: float, status: int = 0) -> int:
        return int(self.lib.tae_calib_window(self._state, float(score), int(status)))

    def status(self) -> tuple[int, int, int]:
        v = int(self.lib.tae_calib_status(self._state))
        return v & 0xFF, (v >> 8) & 0xFF, (v >> 16) & 0xFF

    def candidate(self) -> bytes:
        n = self.lib.tae_calib_pack_candidate(self._state, self._packed)
        return self._packed.raw[:n]

    def verdict(self, record: bytes) -> int:
        """tae_calib_unpack's verdict on a packed record (TAE_CALIB_REC_*: 1 = valid)."""
        out = ctypes.create_string_buffer(self.RECORD_STRUCT_BYTES)
        return int(self.lib.tae_calib_unpack(bytes(record), len(record), out))

    def rank(self, n: int) -> int:
        return int(self.lib.tae_calib_rank(n))

    def phases(self) -> int:
        return int(self.lib.tae_calib_phases())

    def factory(self) -> bytes:
        rec = ctypes.create_string_buffer(self.RECORD_STRUCT_BYTES)
        self.lib.tae_calib_factory(rec)
        n = self.lib.tae_calib_pack(rec, self._packed)
        return self._packed.raw[:n]
