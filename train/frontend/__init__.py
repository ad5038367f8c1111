"""The feature front-end: what the network sees of a window (raw samples, spectra, statistics).

`spec` defines it from the config and renders its constants; `native` runs the core's C
(tae_frontend.c) through ctypes; `mirror` is the NumPy mirror of that C, tested bit-equal.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tinyae.train.frontend.spec import KINDS, STATS, FrontendSpec, build_spec

__all__ = ["KINDS", "STATS", "FrontendSpec", "build_spec", "extractor"]


def extractor(spec: FrontendSpec) -> Callable[[np.ndarray], np.ndarray]:
    """windows [n, L, C] -> features [n, F] float32, exactly as the device computes them.

    raw alone is the time-major window itself (no C needed); any other kind runs the core's C.
    """
    if spec.raw_only:
        return lambda w: np.asarray(w, np.float32).reshape(len(w), -1)
    from tinyae.train.frontend.native import NativeFrontend

    return NativeFrontend(spec)
