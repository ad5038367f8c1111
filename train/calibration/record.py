"""The calibration record: what a calibration learned, in the form the device stores and sends
(tae_calib.h is the definition; docs/protocol.md §3 lays it out). Little-endian, 72 + 16 C bytes:

    magic "TAEC" | version u8 | channels u8 | flags u8 | method u8 | model sha256 [32] | config CRC u32 |
    windows u16 | rank u16 | over u16 | cluster u16 | samples u32 | threshold f32 | score mean f32 | score std f32 |
    site mean [C] f32 | site std [C] f32 | shift [C] f32 | gain [C] f32 | CRC-32 of all before it u32

Parsing here checks only the layout and the CRC; whether a record may be used by a firmware (model,
constants, bounds, the correction recomputed bit for bit) is decided by the core's own check,
tae_calib_unpack, which the host runs through ctypes (train/calibration/native.py).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import Any

from tinyae.errors import UserError
from tinyae.train.calibration.spec import METHODS, RECORD_MAGIC, RECORD_VERSION, record_bytes

FLAG_OFFSETS, FLAG_SCALES, FLAG_THRESHOLD = 0x01, 0x02, 0x04
_HEAD = struct.Struct("<4sBBBB32sIHHHHIfff")  # 68 bytes

# tae_calib.h's codes, by name (the protocol's CalibOutcome / RecordVerdict use the same numbers).
OUTCOMES = (
    "none", "running", "stored", "aborted", "shift", "scale", "not_finite", "threshold_high",
    "threshold_low", "engine", "store", "rejected", "factory", "not_normal", "anomalous_stretch",
)  # fmt: skip
VERDICTS = ("empty", "valid", "corrupt", "other_model", "other_config", "version", "bounds", "store_error")


@dataclass(frozen=True)
class Record:
    """A packed calibration record, parsed (float fields are exactly the stored float32 values)."""

    version: int
    channels: int
    flags: int
    method: int
    model_sha256: bytes
    config_crc: int
    windows: int
    rank: int
    over: int  # phase-2 scores above the factory threshold
    cluster: int  # the most of them among any stretch_n consecutive phase-2 windows
    samples: int
    threshold: float
    score_mean: float
    score_std: float
    mean: tuple[float, ...]
    std: tuple[float, ...]
    shift: tuple[float, ...]
    gain: tuple[float, ...]
    crc: int

    @classmethod
    def from_bytes(cls, data: bytes, where: str = "the record") -> Record:
        b = bytes(data)
        if len(b) < _HEAD.size + 4 or b[:4] != RECORD_MAGIC:
            raise UserError(f"{where} is not a tinyae calibration record (no 'TAEC' header)")
        if b[4] != RECORD_VERSION:
            raise UserError(
                f"{where} is a calibration record of layout version {b[4]}; this tinyae reads version "
                f"{RECORD_VERSION}: calibrate again with this tinyae"
            )
        c = b[5]
        if len(b) != record_bytes(c):
            raise UserError(f"{where} has {len(b)} bytes, a record of {c} channels has {record_bytes(c)}")
        (crc,) = struct.unpack_from("<I", b, len(b) - 4)
        if zlib.crc32(b[:-4]) & 0xFFFFFFFF != crc:
            raise UserError(f"{where} is damaged (its CRC-32 does not match); calibrate again")
        head = _HEAD.unpack_from(b)
        arrays = struct.unpack_from(f"<{4 * c}f", b, _HEAD.size)
        return cls(
            version=head[1], channels=c, flags=head[3], method=head[4], model_sha256=head[5],
            config_crc=head[6], windows=head[7], rank=head[8], over=head[9], cluster=head[10], samples=head[11],
            threshold=head[12], score_mean=head[13], score_std=head[14], mean=arrays[0:c],
            std=arrays[c : 2 * c], shift=arrays[2 * c : 3 * c], gain=arrays[3 * c :], crc=crc,
        )  # fmt: skip

    def to_bytes(self) -> bytes:
        c = self.channels
        body = _HEAD.pack(
            RECORD_MAGIC, self.version, c, self.flags, self.method, self.model_sha256, self.config_crc,
            self.windows, self.rank, self.over, self.cluster, self.samples, self.threshold, self.score_mean,
            self.score_std,
        ) + struct.pack(f"<{4 * c}f", *self.mean, *self.std, *self.shift, *self.gain)  # fmt: skip
        return body + struct.pack("<I", zlib.crc32(body) & 0xFFFFFFFF)

    @property
    def learned(self) -> list[str]:
        names = [(FLAG_OFFSETS, "offsets"), (FLAG_SCALES, "scales"), (FLAG_THRESHOLD, "threshold")]
        return [n for f, n in names if self.flags & f]

    @property
    def method_name(self) -> str:
        return METHODS[self.method] if self.method < len(METHODS) else f"method {self.method}"

    @property
    def has_correction(self) -> bool:
        return bool(self.flags & (FLAG_OFFSETS | FLAG_SCALES))

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "model_sha256": self.model_sha256.hex(),
            "config_crc": self.config_crc,
            "learned": self.learned,
            "method": self.method_name,
            "windows": self.windows,
            "rank": self.rank,
            "over_factory_threshold": self.over,
            "densest_stretch_over": self.cluster,
            "samples": self.samples,
            "threshold": self.threshold,
            "score_mean": self.score_mean,
            "score_std": self.score_std,
            "site_mean": list(self.mean),
            "site_std": list(self.std),
            "shift": list(self.shift),
            "gain": list(self.gain),
            "crc": f"{self.crc:08x}",
        }
