"""The reference for the simulated device's stand-in engine (firmware/tests/sim_engine.c): testing-only.

Tests of the link, the protocol and `verify` over `sim://` without a trained model compare the device
with this instead of TFLM; the `tinyae` command never offers it.
"""

from __future__ import annotations

import numpy as np

from tinyae.train import preprocess
from tinyae.train.manifest import Manifest
from tinyae.train.reference import ReferenceResult


class SimStubReference:
    """What sim_engine.c computes: out[i] = clamp(in[i] + ((i % 3) - 1) * 4), with the real preprocessing."""

    name = "sim-stub"

    def __init__(self, manifest: Manifest) -> None:
        self.m = manifest
        self.correction: tuple[np.ndarray, np.ndarray] | None = None

    def set_correction(self, shift=None, gain=None) -> None:  # type: ignore[no-untyped-def]
        """As HostReference.set_correction: an on-site calibration's correction of the raw samples."""
        ok = shift is not None and gain is not None
        self.correction = (np.asarray(shift, np.float32), np.asarray(gain, np.float32)) if ok else None

    def evaluate(self, windows: np.ndarray) -> ReferenceResult:
        m = self.m
        zi, zo = m.input.zero_point, m.output.zero_point
        w = np.asarray(windows, np.float32)
        if self.correction is not None:
            w = ((w - self.correction[0]) * self.correction[1]).astype(np.float32)
        offset, gain = np.asarray(m.normalization.offset, np.float32), np.asarray(m.input.gain, np.float32)
        inq = preprocess.quantize_windows(w, offset, gain, zi)
        delta = ((np.arange(inq.shape[1]) % 3) - 1) * 4
        outq = np.clip(inq.astype(np.int32) + delta, -128, 127).astype(np.int8)
        s = preprocess.scores(inq, outq, m.input.scale, zi, m.output.scale, zo, m.score.kind)
        return ReferenceResult(inq, outq, s)
