"""Moved to `train.hostbuild` (training runs core C through it); kept while callers migrate."""

from train.hostbuild import (  # noqa: F401
    CORE_DIR,
    FP_FLAGS,
    HOST_BUILD_DIR,
    ROOT,
    SANITIZE_FLAGS,
    WARNING_FLAGS,
    build_shared,
    load,
)
