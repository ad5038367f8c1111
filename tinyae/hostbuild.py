"""Build C sources of the firmware core into a shared library for ctypes (host build).

It lives in `train` because training itself runs core C (the feature front-end); `tools` uses it too.

The host build uses the same warning and floating-point flags as the Cortex-M4 build
(`-ffp-contract=off`, no fast-math) so host and device perform the same float32 operations.
Libraries are cached under build/host/ by a hash of the sources, headers and flags.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from tinyae.errors import UserError
from tinyae.paths import ROOT

CORE_DIR = ROOT / "firmware" / "lib" / "tinyae"
HOST_BUILD_DIR = ROOT / "build" / "host"

WARNING_FLAGS = ["-Wall", "-Wextra", "-Werror", "-Wshadow", "-Wdouble-promotion"]
FP_FLAGS = ["-ffp-contract=off", "-fno-fast-math"]
SANITIZE_FLAGS = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]


def _digest(paths: Sequence[Path], flags: Sequence[str]) -> str:
    h = hashlib.sha256()
    for flag in flags:
        h.update(flag.encode() + b"\0")
    for path in sorted(set(paths)):
        h.update(str(path).encode() + b"\0")
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _headers(include_dirs: Sequence[Path]) -> list[Path]:
    found: list[Path] = []
    for d in include_dirs:
        if d.is_dir():
            found.extend(p for p in d.rglob("*.h"))
    return found


def build_shared(
    name: str,
    sources: Sequence[Path],
    include_dirs: Sequence[Path] = (),
    defines: Sequence[str] = (),
    *,
    sanitize: bool = False,
    opt: str = "-O2",
    compiler: str | None = None,
) -> Path:
    """Compile `sources` into build/host/<name>-<hash>.so and return its path."""
    cc = compiler or os.environ.get("CC", "gcc")
    if shutil.which(cc) is None:
        raise UserError(f"the C compiler '{cc}' was not found; install gcc (apt-get install gcc)")
    flags = ["-std=c11", opt, "-g", "-fPIC", "-shared", *WARNING_FLAGS, *FP_FLAGS]
    if sanitize:
        flags += SANITIZE_FLAGS
    flags += [f"-D{d}" for d in defines]
    flags += [f"-I{d}" for d in include_dirs]
    srcs = [Path(s).resolve() for s in sources]
    tag = _digest(srcs + _headers(include_dirs), [cc, *flags])
    HOST_BUILD_DIR.mkdir(parents=True, exist_ok=True)
    out = HOST_BUILD_DIR / f"{name}-{'asan-' if sanitize else ''}{tag}.so"
    if out.exists():
        return out
    tmp = out.with_suffix(f".{os.getpid()}.tmp")
    cmd = [cc, *flags, "-o", str(tmp), *map(str, srcs), "-lm"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"host build failed: {' '.join(cmd)}\n{proc.stderr}")
    tmp.replace(out)
    return out


def load(path: Path) -> ctypes.CDLL:
    return ctypes.CDLL(str(path))
