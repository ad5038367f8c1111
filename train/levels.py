"""How many of the 256 int8 input levels each channel's normal data uses on the device.

The network sees int8 inputs q = round((x - offset) * gain) + zero_point. When one channel's
normalization or the shared input scale is set by something other than that channel's normal
spread (a glitch sample, a channel with a far larger range), the channel lands on a handful of
levels and an anomaly on it can no longer move the input. The figure is computed on the normal
training windows the device would see, per channel: the number of distinct int8 values of its raw
samples (raw front-end), or the median over its features of each feature's distinct values
(spectral/stats features). Below `min_levels` the pipeline warns, naming the channels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tinyae.train.frontend import FrontendSpec


def feature_channels(spec: FrontendSpec) -> np.ndarray:
    """int [F]: the channel of each element of the feature vector (docs/architecture.md layout)."""
    c = spec.channels
    parts = []
    if "raw" in spec.kinds:
        parts.append(np.tile(np.arange(c), spec.length))  # time-major: element t*C + ch
    if spec.spectral:
        parts.append(np.repeat(np.arange(c), spec.spectral.bands))  # channel-major blocks
    if spec.stats:
        parts.append(np.repeat(np.arange(c), len(spec.stats)))
    return np.concatenate(parts)


def input_levels(input_q: np.ndarray, spec: FrontendSpec, channel_names: Sequence[str]) -> dict[str, int]:
    """Per channel: distinct int8 levels its normal data uses (see the module docstring)."""
    q = np.asarray(input_q, np.int8)
    owner = feature_channels(spec)
    out: dict[str, int] = {}
    for c, name in enumerate(channel_names):
        cols = np.flatnonzero(owner == c)
        if spec.raw_only:
            out[name] = len(np.unique(q[:, cols]))
        else:
            out[name] = int(np.median([len(np.unique(q[:, j])) for j in cols]))
    return out


def levels_warning(levels: dict[str, int], floor: int) -> str:
    """One sentence naming the channels below `floor` levels (empty when none)."""
    low = {k: v for k, v in levels.items() if v < floor}
    if not low:
        return ""
    shown = ", ".join(f"'{k}' {v}" for k, v in low.items())
    return (
        f"channel(s) {shown} use fewer than {floor} of the 256 int8 input levels on normal data, so the "
        "device barely sees them change; look for glitch samples or a channel whose range dwarfs the others "
        '(normalization.method = "robust", normalization.outliers = "clip")'
    )
