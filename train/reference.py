"""The host reference: the device's front-end and preprocessing (float32, same rounding) + the int8
network computed with the integer arithmetic of the engine the device runs.

One class, used by calibration, test vectors, the threshold, verification and benchmarks alike. The
network runs as TFLite's int8 kernels compute it (train/int8/network.py) with the engine's multiplier rule
(train/int8/arithmetic.py): arithmetic.TFLM for every pinned board library and the compiled engine, whose
per-tensor FULLY_CONNECTED multiplier comes from a single-precision product of the scales. With
arithmetic.TFLITE_MICRO it runs `tflite_micro` itself, the TFLM Python nightly, whose product is in
double; the two differ by one LSB on the rare outputs whose rounding lands between the two multipliers.
TFLite's interpreter (XNNPACK) differs by up to 3 LSB and is no reference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from tinyae.train import preprocess
from tinyae.train.int8 import network
from tinyae.train.int8.arithmetic import KNOWN, TFLITE_MICRO, TFLM, Arithmetic
from tinyae.train.int8.lower import lower
from tinyae.train.quiet import captured_fds
from tinyae.train.tflite import read_tflite

if TYPE_CHECKING:
    from tinyae.train.manifest import Manifest

DEFAULT_ARENA_BYTES = 256 * 1024


@dataclass
class ReferenceResult:
    input_q: np.ndarray  # [n, N] int8
    output_q: np.ndarray  # [n, N] int8
    scores: np.ndarray  # [n] float32


class Preprocessing:
    """The device's preprocessing alone: raw windows -> (on-site correction) -> front-end -> the int8
    network inputs, in float32 with the device's rounding. HostReference adds the network and the score;
    this part alone needs no flatbuffer (`tinyae device stream` counts the inputs at the int8 rails)."""

    def __init__(
        self,
        *,
        offset: np.ndarray,
        gain: np.ndarray,
        input_zero_point: int,
        frontend: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> None:
        self.offset = np.asarray(offset, np.float32)
        self.gain = np.asarray(gain, np.float32)
        self.input_zero_point = int(input_zero_point)
        # windows [n, L, C] -> features [n, F]; None = the raw window (time-major)
        self.frontend = frontend
        # on-site calibration's correction of the raw samples (shift, gain per channel), or None
        self.correction: tuple[np.ndarray, np.ndarray] | None = None

    @classmethod
    def of_manifest(cls, manifest: Manifest) -> Preprocessing:
        from tinyae.train.frontend import extractor

        return cls(
            offset=np.asarray(manifest.normalization.offset, np.float32),
            gain=np.asarray(manifest.input.gain, np.float32),
            input_zero_point=manifest.input.zero_point,
            frontend=extractor(manifest.frontend_spec()),
        )

    def set_correction(self, shift=None, gain=None) -> None:  # type: ignore[no-untyped-def]
        """Use a calibration's correction from now on: every raw sample x of channel c becomes
        (x - shift[c]) * gain[c] in float32 before the front-end, as tae_pipeline.c does. None removes it."""
        if shift is None or gain is None:
            self.correction = None
        else:
            self.correction = (np.asarray(shift, np.float32), np.asarray(gain, np.float32))

    def corrected(self, windows: np.ndarray) -> np.ndarray:
        w = np.asarray(windows, np.float32)
        if self.correction is None:
            return w
        shift, gain = self.correction
        return ((w - shift) * gain).astype(np.float32)

    def features(self, windows: np.ndarray) -> np.ndarray:
        w = self.corrected(windows)
        return self.frontend(w) if self.frontend is not None else w.reshape(len(w), -1)

    def quantize(self, windows: np.ndarray) -> np.ndarray:
        return preprocess.quantize_features(
            self.features(windows), self.offset, self.gain, self.input_zero_point
        )


class HostReference(Preprocessing):
    def __init__(
        self,
        flatbuffer: bytes,
        *,
        offset: np.ndarray,
        gain: np.ndarray,
        input_scale: float,
        input_zero_point: int,
        output_scale: float,
        output_zero_point: int,
        score_kind: str = "mse",
        frontend: Callable[[np.ndarray], np.ndarray] | None = None,
        arithmetic: Arithmetic = TFLM,
        arena_bytes: int = DEFAULT_ARENA_BYTES,
    ) -> None:
        self.arithmetic = arithmetic
        self._interp = None
        self._network = None
        if arithmetic == TFLITE_MICRO:
            from tflite_micro.python.tflite_micro import runtime

            with captured_fds():
                self._interp = runtime.Interpreter.from_bytes(flatbuffer, arena_size=arena_bytes)
            details = self._interp.get_input_details(0)
            self._input_shape = tuple(int(d) for d in details["shape"])
        else:
            self._network = lower(read_tflite(flatbuffer), arithmetic)
            self._input_shape = (1, self._network.input_size)
        super().__init__(offset=offset, gain=gain, input_zero_point=input_zero_point, frontend=frontend)
        self.input_scale = float(input_scale)
        self.output_scale = float(output_scale)
        self.output_zero_point = int(output_zero_point)
        self.score_kind = score_kind

    @property
    def name(self) -> str:
        return self.arithmetic.name

    @classmethod
    def from_manifest(
        cls, flatbuffer: bytes, manifest: Manifest, arithmetic: Arithmetic | None = None
    ) -> HostReference:
        """The reference of a trained model: its flatbuffer (model_int8.tflite bytes) and manifest, computed
        with `arithmetic` (default: the one the model's targets compute, manifest `reference.arithmetic`)."""
        from tinyae.train.frontend import extractor

        if arithmetic is None:
            arithmetic = KNOWN[manifest.reference.arithmetic]

        return cls(
            flatbuffer,
            offset=np.asarray(manifest.normalization.offset, np.float32),
            gain=np.asarray(manifest.input.gain, np.float32),
            input_scale=manifest.input.scale,
            input_zero_point=manifest.input.zero_point,
            output_scale=manifest.output.scale,
            output_zero_point=manifest.output.zero_point,
            score_kind=manifest.score.kind,
            frontend=extractor(manifest.frontend_spec()),
            arithmetic=arithmetic,
        )

    def run_int8(self, input_q: np.ndarray) -> np.ndarray:
        """int8 inputs [n, N] -> int8 outputs [n, M]: the network in NumPy, or tflite_micro one invoke per
        window."""
        if self._network is not None:
            return network.run(self._network, input_q)
        assert self._interp is not None
        out = np.empty_like(input_q, dtype=np.int8)
        for i, row in enumerate(np.asarray(input_q, np.int8)):
            self._interp.set_input(row.reshape(self._input_shape), 0)
            self._interp.invoke()
            out[i] = self._interp.get_output(0).reshape(-1)
        return out

    def score_int8(self, input_q: np.ndarray, output_q: np.ndarray) -> np.ndarray:
        return preprocess.scores(
            input_q,
            output_q,
            self.input_scale,
            self.input_zero_point,
            self.output_scale,
            self.output_zero_point,
            self.score_kind,
        )

    def evaluate(self, windows: np.ndarray) -> ReferenceResult:
        """Raw windows [n, L, C] -> front-end, int8 inputs, TFLM int8 outputs and the device's scores."""
        if len(windows) == 0:
            empty = np.zeros((0, int(np.prod(self._input_shape))), np.int8)
            return ReferenceResult(empty, empty.copy(), np.zeros(0, np.float32))
        input_q = self.quantize(windows)
        output_q = self.run_int8(input_q)
        return ReferenceResult(input_q, output_q, self.score_int8(input_q, output_q))
