"""tinyae training pipeline: data, model, int8 quantization, host reference, artifacts."""

import os as _os
from importlib.metadata import PackageNotFoundError as _NotInstalled
from importlib.metadata import version as _version

# The version has one source, pyproject.toml; the installed distribution's metadata carries it here
# (`make setup` installs it; tests/test_version.py checks the two agree). The firmware reports it
# through model_config.h (TAE_FIRMWARE_VERSION, rendered from manifest.json's generator.tinyae).
try:
    __version__ = _version("tinyae")
except _NotInstalled:  # a source tree used without `pip install -e .`: say so rather than guess
    __version__ = "0+not-installed"

# TensorFlow's C++ start-up chatter (oneDNN notices, absl pre-init warnings) is noise for users;
# oneDNN off also makes float training repeatable across runs.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
_os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
