"""Build C sources of the firmware core into a shared library for ctypes, or a program (host build).

It lives in `train` because training itself runs core C (the feature front-end); `tools` uses it too.

The host build uses the same warning and floating-point flags as the Cortex-M4 build
(`-ffp-contract=off`, no fast-math) so host and device perform the same float32 operations.
Libraries are cached under build/host/, named by a digest of what the library is made of: the compiler,
the flags, the sources' and every reachable header's content, and the place of each folder among the
include folders. Where a folder is (a test's tmp_path, another checkout) is not part of it: the folder
is mapped to a fixed name in the library (-ffile-prefix-map), so the same headers in two temporary
folders give the same library, built once.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from tinyae.buildcache import tool_version
from tinyae.errors import UserError
from tinyae.paths import ROOT

CORE_DIR = ROOT / "firmware" / "lib" / "tinyae"
HOST_BUILD_DIR = ROOT / "build" / "host"

WARNING_FLAGS = ["-Wall", "-Wextra", "-Werror", "-Wshadow", "-Wdouble-promotion"]
FP_FLAGS = ["-ffp-contract=off", "-fno-fast-math"]
SANITIZE_FLAGS = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]


def _role(folder: Path) -> str:
    """A folder's name in the digest and in the library: its path under the repository, or a fixed
    name for one outside it (see _inputs)."""
    try:
        return "repo/" + folder.relative_to(ROOT).as_posix()
    except ValueError:
        return ""


def _inputs(sources: Sequence[Path], include_dirs: Sequence[Path]) -> tuple[str, list[str]]:
    """The digest of the build's inputs with every folder outside the repository named by its place
    (the i-th such folder: `ext<i>`), and the -ffile-prefix-map flags that give it that name in the
    library (debug information, __FILE__)."""
    h = hashlib.sha256()
    names: dict[Path, str] = {}

    def name(folder: Path) -> str:
        if folder not in names:
            names[folder] = _role(folder) or f"ext{sum(not v.startswith('repo/') for v in names.values())}"
        return names[folder]

    # a source's own folder is searched first for #include "..." (then the include folders, in order)
    folders = [*dict.fromkeys(s.parent for s in sources), *include_dirs]
    for i, folder in enumerate(folders):
        h.update(f"folder {i} {name(folder)}\0".encode())
    for src in sources:
        h.update(f"source {name(src.parent)}/{src.name}\0".encode() + src.read_bytes())
    for folder in dict.fromkeys(folders):
        for header in sorted(folder.rglob("*.h")) if folder.is_dir() else ():
            h.update(f"header {name(folder)}/{header.relative_to(folder).as_posix()}\0".encode())
            h.update(header.read_bytes())
    maps = [f"-ffile-prefix-map={folder}=/{n}" for folder, n in names.items() if not n.startswith("repo/")]
    return h.hexdigest(), maps


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
    return _build(name, sources, include_dirs, defines, ["-fPIC", "-shared"], ".so", sanitize, opt, compiler)


def build_program(
    name: str,
    sources: Sequence[Path],
    include_dirs: Sequence[Path] = (),
    defines: Sequence[str] = (),
    *,
    sanitize: bool = False,
    opt: str = "-O2",
    compiler: str | None = None,
) -> Path:
    """Compile `sources` (one holds main) into the executable build/host/<name>-<hash> and return its path."""
    return _build(name, sources, include_dirs, defines, [], "", sanitize, opt, compiler)


def _build(
    name: str,
    sources: Sequence[Path],
    include_dirs: Sequence[Path],
    defines: Sequence[str],
    kind: list[str],
    suffix: str,
    sanitize: bool,
    opt: str,
    compiler: str | None,
) -> Path:
    cc = compiler or os.environ.get("CC", "gcc")
    if shutil.which(cc) is None:
        raise UserError(f"the C compiler '{cc}' was not found; install gcc (apt-get install gcc)")
    flags = ["-std=c11", opt, "-g", *kind, *WARNING_FLAGS, *FP_FLAGS]
    if sanitize:
        flags += SANITIZE_FLAGS
    flags += [f"-D{d}" for d in defines]
    srcs = [Path(s).resolve() for s in sources]
    dirs = [Path(d).resolve() for d in include_dirs]
    inputs, maps = _inputs(srcs, dirs)
    tag = hashlib.sha256("\0".join([cc, tool_version(cc), *flags, inputs]).encode()).hexdigest()[:16]
    flags += [*maps, *(f"-I{d}" for d in dirs)]
    HOST_BUILD_DIR.mkdir(parents=True, exist_ok=True)
    out = HOST_BUILD_DIR / f"{name}-{'asan-' if sanitize else ''}{tag}{suffix}"
    if out.exists():
        return out
    tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")
    cmd = [cc, *flags, "-o", str(tmp), *map(str, srcs), "-lm"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"host build failed: {' '.join(cmd)}\n{proc.stderr}")
    tmp.replace(out)
    return out


def load(path: Path) -> ctypes.CDLL:
    return ctypes.CDLL(str(path))
