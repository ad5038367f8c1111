"""Digests of the constants a device decides with, computed from manifest.json exactly as the device
computes them over its own tables (firmware/lib/tinyae/src/tae_digest.c; docs/protocol.md §3, "Constants
the device decides with"): CRC-32 over little-endian int32 / IEEE binary32 values in a fixed order. The
handshake reports the device's; `tinyae device info` and `verify` compare them with these.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable
from dataclasses import fields
from typing import Any

import numpy as np

from tinyae.train.calibration.spec import CalibSpec, config_crc, manifest_quant
from tinyae.train.frontend.cdefs import frontend_context


class _Digest:
    def __init__(self) -> None:
        self.crc = 0

    def bytes(self, b: bytes) -> _Digest:
        self.crc = zlib.crc32(b, self.crc)
        return self

    def i32(self, *values: int) -> _Digest:
        return self.bytes(struct.pack(f"<{len(values)}i", *(int(v) for v in values)))

    def f32(self, values: Iterable[float]) -> _Digest:
        v = np.asarray(list(values), np.float64).astype(np.float32)  # the C literal's value (render._f32)
        return self.bytes(v.astype("<f4").tobytes())

    @property
    def value(self) -> int:
        return self.crc & 0xFFFFFFFF


def frontend(manifest: dict[str, Any]) -> int:
    """tae_digest_frontend() of the firmware built from this manifest (its JSON layout)."""
    ctx = frontend_context(manifest)
    fe, sp = ctx["fe"], ctx["sp"]
    kinds, sizes = fe["kinds"], fe["sizes"]
    d = _Digest().i32(
        ctx["length"], ctx["channels"], "raw" in kinds, "spectral" in kinds, "stats" in kinds,
        sizes["raw"], sizes["spectral"], sizes["stats"], fe["feature_size"],
    )  # fmt: skip
    if sp:
        edges = sp["band_edges"]
        d.i32(sp["fft_length"], sp["frames"], sp["spectrum"] == "power", bool(sp["log"]), len(edges) - 1)
        if sp["log"]:
            d.f32(sp["log_floor"])
        d.i32(*edges).f32(ctx["window_table"]).f32(ctx["twiddle"]).i32(*ctx["bitrev"])
    if "stats" in kinds:
        d.i32(len(ctx["stat_ids"]), *ctx["stat_ids"])
    return d.value


def normalization(manifest: dict[str, Any]) -> int:
    """tae_digest_normalization(): the period, offsets, gains and the input zero point."""
    offset, gain = manifest["normalization"]["offset"], manifest["input"]["gain"]
    return _Digest().i32(len(offset)).f32(offset).f32(gain).i32(manifest["input"]["zero_point"]).value


def calibration(manifest: dict[str, Any]) -> int:
    """tae_digest_calibration(): config_crc, the recipe of the manifest's calibration.config_crc
    (tinyae.train.calibration.spec.CONFIG_CRC_RECIPE, which the firmware runs as TAE_CALIB_CONFIG_RECIPE),
    over the constants the firmware is built with, the factory threshold being the model's threshold
    (TAE_THRESHOLD)."""
    spec = CalibSpec.from_manifest(manifest)
    values = {f.name: getattr(spec, f.name) for f in fields(spec)}
    values["factory_threshold"] = float(np.float32(manifest["threshold"]["value"]))
    return config_crc(values, manifest_quant(manifest))
