"""tinyae training pipeline: data, model, int8 quantization, host reference, artifacts."""

__version__ = "0.1.0"
