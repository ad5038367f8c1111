"""A score cache for the bench: arrays that took minutes of training to compute, kept under build/ and
reused while everything they depend on is unchanged.

The key of an entry is a SHA-256 over what was asked (a JSON-able description: config, data, protocol),
the versions of the packages that compute scores (TensorFlow, Keras, tflite-micro, NumPy) and the bytes
of tinyae's own sources that read, train, convert and score (SOURCES), so a change to any of them misses
the cache instead of serving stale figures. `--no-cache` ignores it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from tinyae.paths import ROOT

# The code a cached score depends on (relative to the repository): reading, windowing, the front-end,
# normalization, training, conversion and the host reference, not the threshold, the report or the
# artifacts (the config's values are part of each key, so config.py itself is not).
SOURCES = (
    "train/__init__.py",
    "train/data",
    "train/frontend",
    "train/boards.py",
    "train/fit.py",
    "train/model.py",
    "train/preprocess.py",
    "train/quantize.py",
    "train/reference.py",
    "train/tflite.py",
    "firmware/lib/tinyae",
    "tools/bench/detector.py",
    "tools/bench/skab_data.py",
    "tools/bench/skab_scores.py",
)
PACKAGES = ("tensorflow-cpu", "keras", "tflite-micro", "numpy")


def _fingerprint() -> str:
    h = hashlib.sha256()
    for pkg in PACKAGES:
        try:
            h.update(f"{pkg}={version(pkg)}\n".encode())
        except PackageNotFoundError:
            h.update(f"{pkg}=missing\n".encode())
    for top in SOURCES:
        p = ROOT / top
        for f in [p] if p.is_file() else sorted(p.rglob("*")):
            if f.is_file() and f.suffix in (".py", ".c", ".h", ".j2", ".toml"):
                h.update(str(f.relative_to(ROOT)).encode())
                h.update(f.read_bytes())
    return h.hexdigest()


def file_digest(path: Path) -> str:
    """SHA-256 of a file (a dependency of one kind of entry only, e.g. the pipeline for its models)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def key(what: dict) -> str:
    """The cache key of `what` (JSON-able) under the current code and packages."""
    h = hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode())
    h.update(_fingerprint().encode())
    return h.hexdigest()[:20]


def cached(
    directory: Path, name: str, what: dict, compute: Callable[[], dict[str, np.ndarray]], *, use: bool = True
) -> tuple[dict[str, np.ndarray], bool]:
    """(arrays, hit): the entry `name`-<key(what)>.npz under directory, or compute() written there."""
    path = directory / f"{name}-{key(what)}.npz"
    if use and path.is_file():
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}, True
    arrays = compute()
    directory.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, allow_pickle=False, **arrays)  # as np.load above reads it
    tmp.replace(path)
    return arrays, False
