"""How an engine forms a FULLY_CONNECTED requantization multiplier: the one place the engines tinyae
deploys to differ in integer arithmetic (measured, tests/test_boardlib_*.py and tests/test_int8_network.py).

TFLite's multiplier is QuantizeMultiplier(input_scale * weight_scale / output_scale). Every TFLM we build
for a board (Chirale_TensorFLowLite 2.0.0, TensorFlowLite_ESP32 1.0.0, upstream tflite-micro 90b983c)
forms the product of a per-tensor layer in single precision, `static_cast<double>(input->params.scale *
filter->params.scale)` (tensorflow/lite/kernels/kernel_util.cc, GetQuantizedConvolutionMultipler), and a
per-channel layer's in double (fully_connected_common.cc / PopulateConvolutionQuantizationParams). The
`tflite_micro` Python nightly forms both in double. The two multipliers differ in their low bits for most
scale pairs; where an accumulator's product lands within that difference of a rounding boundary, the
output differs by one LSB (tests/test_int8_network.py builds such models on purpose).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

Product = Literal["float32", "double"]


@dataclass(frozen=True)
class Arithmetic:
    """The multiplier rule of one engine (everything else of TFLite's int8 arithmetic is shared)."""

    name: str  # short id, written to the manifest and the verify report
    per_tensor_product: Product  # input_scale * weight_scale of a layer with one weight scale
    per_channel_product: Product  # ... of a layer with one weight scale per output channel
    description: str

    def product(self, per_channel: bool) -> Product:
        return self.per_channel_product if per_channel else self.per_tensor_product

    def effective_scale(self, input_scale: float, weight_scale: float, output_scale: float, *,
                        per_channel: bool) -> float:  # fmt: skip
        """input_scale * weight_scale / output_scale, the product formed as this engine forms it."""
        return effective_scale(input_scale, weight_scale, output_scale, self.product(per_channel))


def effective_scale(input_scale: float, weight_scale: float, output_scale: float, product: Product) -> float:
    """(product of input and weight scale, in float32 or in double) / double(output_scale)."""
    if product == "float32":
        p = float(np.float32(input_scale) * np.float32(weight_scale))  # IEEE single-precision product
    else:
        p = float(np.float32(input_scale)) * float(np.float32(weight_scale))  # exact in double
    return p / float(np.float32(output_scale))


# The pinned board libraries and upstream TFLM's C++ (kernel_util.cc:333-334 at 90b983c; Chirale 2.0.0
# kernel_util.cpp:331-332; TensorFlowLite_ESP32 1.0.0 kernel_util.cpp:330-331), and tinyae's compiled engine,
# which follows them so that one model decides the same on every board env.
TFLM = Arithmetic(
    "tflm",
    per_tensor_product="float32",
    per_channel_product="double",
    description="TFLM's C++ kernels (the pinned board libraries, upstream tflite-micro, tinyae's compiled "
    "engine): a per-tensor FULLY_CONNECTED multiplier from the single-precision product of the input and "
    "weight scales, a per-channel one in double",
)
# The `tflite_micro` Python nightly pyproject.toml pins (not on any device): the product in double.
TFLITE_MICRO = Arithmetic(
    "tflite_micro",
    per_tensor_product="double",
    per_channel_product="double",
    description="the tflite_micro Python nightly: every FULLY_CONNECTED multiplier from the double product",
)
KNOWN: dict[str, Arithmetic] = {a.name: a for a in (TFLM, TFLITE_MICRO)}
# What the compiled engine computes (train/compiled): the board libraries' rule.
COMPILED_ENGINE = TFLM
