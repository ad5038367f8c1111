"""The compiled int8 engine generator: .tflite -> model_compiled.h/.c over tae_kernels (TFLM-exact)."""

from tinyae.train.compiled.generate import check_ops, generate, render

__all__ = ["check_ops", "generate", "render"]
