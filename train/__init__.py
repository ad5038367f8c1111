"""tinyae training pipeline (installed as tinyae.train): data, model, int8 quantization, host reference,
artifacts. The version is tinyae.__version__ (pyproject.toml, through the installed metadata)."""

import os as _os

# TensorFlow's C++ start-up chatter (oneDNN notices, absl pre-init warnings) is noise for users;
# oneDNN off also makes float training repeatable across runs.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
_os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
