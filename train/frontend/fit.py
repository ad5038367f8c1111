"""What the front-end learns from the normal training windows, and what it refuses.

- The spectral log floor (frontend.log_floor = 0, the default): each band's floor is its median value
  over the training windows, frontend.log_floor_db (default AUTO_FLOOR_DB = 3) decibels down (a power
  ratio of 0.5 at 3 dB; the square root of that for a magnitude spectrum). Sensors report in g, m/s^2 or
  raw ADC counts, so a fixed floor sits above every value of a quiet sensor (all features then equal
  log(floor)) or far below the noise of a loud one; a floor relative to each band's own level gives the
  same features on any scale (shifted by the log of the scale, which the normalization removes) and is
  stored in the manifest like the normalization, so the device applies the same constants. Close to the
  median is deliberate: the log of a noise-like band's power has a long lower tail (log of an
  exponential variable) that only adds spread; flooring it keeps the increases an anomaly brings.
- Features that do not vary: a feature taking one value in at least CONSTANT_SHARE of the training
  windows (a band stuck at its floor, a statistic of a constant channel) cannot be learnt and makes
  any change read as an anomaly. Such features are named in one warning; when every feature is like
  that the training is refused.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np

from tinyae.errors import UserError, printable
from tinyae.train.frontend.spec import SMALLEST_FLOOR, FrontendSpec

CONSTANT_SHARE = 0.99
NAMES_SHOWN = 6


def fit_log_floor(spec: FrontendSpec, windows: np.ndarray) -> FrontendSpec:
    """The spec with its per-band log floors derived from normal training windows [n, L, C] (see the
    module docstring); specs without an automatic floor are returned unchanged."""
    if not spec.needs_fit:
        return spec
    from tinyae.train.frontend.native import NativeFrontend

    sp = spec.spectral
    assert sp is not None
    linear = dataclasses.replace(
        spec, kinds=("spectral",), stats=(), spectral=dataclasses.replace(sp, log=False)
    )
    values = NativeFrontend(linear)(np.asarray(windows, np.float32)).astype(np.float64)
    if len(values) == 0:
        raise UserError(
            "no normal training windows to derive the spectral log floor from; provide more normal data"
        )
    with np.errstate(invalid="ignore"):
        values = np.where(np.isfinite(values), values, np.nan)
        median = (
            np.nanmedian(values, axis=0) if np.isfinite(values).any() else np.full(values.shape[1], np.nan)
        )
    ratio = 10.0 ** (-sp.floor_db / (10.0 if sp.spectrum == "power" else 20.0))
    floor = np.where(np.isfinite(median), median * ratio, 0.0)
    floor = np.clip(floor, SMALLEST_FLOOR, 1e30).astype(np.float32)
    return dataclasses.replace(
        spec, spectral=dataclasses.replace(sp, log_floor=tuple(float(v) for v in floor))
    )


def constant_features(features: np.ndarray, share: float = CONSTANT_SHARE) -> np.ndarray:
    """Indices of the columns of [n, F] that hold one value (bit for bit) in at least `share` of the rows."""
    x = np.ascontiguousarray(features, np.float32)
    n = len(x)
    if n == 0:
        return np.zeros(0, np.int64)
    bits = x.view(np.uint32)
    out = []
    for j in range(x.shape[1]):
        _, counts = np.unique(bits[:, j], return_counts=True)
        if counts.max() >= share * n:
            out.append(j)
    return np.asarray(out, np.int64)


def check_features(
    features: np.ndarray, names: Sequence[str], kinds: Sequence[str], warn: Callable[[str], None]
) -> list[str]:
    """Warn about (nearly) constant training features by name, refuse when none varies; the names."""
    idx = constant_features(features)
    if len(idx) == 0:
        return []
    listed = [names[i] for i in idx]
    shown = ", ".join(printable(n) for n in listed[:NAMES_SHOWN]) + (
        f" and {len(listed) - NAMES_SHOWN} more" if len(listed) > NAMES_SHOWN else ""
    )
    where = "+".join(kinds)
    if len(idx) == features.shape[1]:
        raise UserError(
            f"every {where} feature ({shown}) takes one value in at least {CONSTANT_SHARE:.0%} of the normal "
            "training windows, so no model can learn them; check the sensor's scale and signal, set "
            "frontend.log_floor = 0 (derived from the data) or choose other front-end kinds"
        )
    warn(
        f"{len(idx)} of {features.shape[1]} {where} features ({shown}) take one value in at "
        f"least {CONSTANT_SHARE:.0%} of the normal training windows and cannot be learnt (any change will "
        "read as an anomaly); check those channels or the front-end settings"
    )
    return listed
