"""A content-addressed cache of build outputs (firmware images, test models) under build/cache/.

An entry is a directory named by a digest of everything its output depends on (`Key`: sources, flags,
compiler versions, configs, library versions), so a hit is the output a fresh build would give and a
change to any input is a miss. It is shared by processes (pytest-xdist workers, `make -j`, two
shells): the first one to need an entry builds it under an exclusive lock (fcntl), the others wait for
it and then read it; a build that fails or is interrupted leaves no entry.

    key = Key("image").text("EMU_APP=core").file(path).tree(folder, "*.c", "*.h").tool("arm-none-eabi-gcc")
    elf_dir = entry("images", key, lambda out: build_into(out))

TAE_BUILD_CACHE sets another folder (e.g. one shared by several checkouts), and TAE_BUILD_CACHE=off
builds every time. Each kind keeps its most recently used MAX_ENTRIES entries.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from tinyae.paths import ROOT

MAX_ENTRIES = 64
_COMPLETE = ".complete"


def root() -> Path | None:
    """The cache folder (None: the cache is off)."""
    setting = os.environ.get("TAE_BUILD_CACHE", "")
    if setting.lower() in ("off", "0", "no"):
        return None
    return Path(setting) if setting else ROOT / "build" / "cache"


@functools.cache
def tool_version(program: str) -> str:
    """`program --version`'s first line: a compiler upgrade is a different key."""
    try:
        proc = subprocess.run([program, "--version"], capture_output=True, text=True, timeout=60)
    except OSError:
        return f"{program}: not found"
    return (proc.stdout or proc.stderr).splitlines()[0] if (proc.stdout or proc.stderr) else program


class Key:
    """A sha256 over labelled parts; `digest` names the entry."""

    def __init__(self, kind: str) -> None:
        self._h = hashlib.sha256(kind.encode() + b"\0")

    def text(self, *parts: str) -> Key:
        for part in parts:
            self._h.update(b"t" + part.encode() + b"\0")
        return self

    def data(self, blob: bytes) -> Key:
        self._h.update(b"d" + len(blob).to_bytes(8, "little") + blob)
        return self

    def file(self, path: Path, name: str | None = None) -> Key:
        """A file's content under `name` (default: its name; the folder it is in is not part of it)."""
        self.text(name if name is not None else path.name)
        return self.data(path.read_bytes()) if path.is_file() else self.text("<missing>")

    def tree(self, folder: Path, *patterns: str) -> Key:
        """Every file under `folder` matching one of `patterns` (all files without any), by relative path.

        Python's bytecode caches (__pycache__) are left out: they are derived from the sources, and their
        bytes hold the source's modification time, so a checkout or a copy would change the key."""
        files = sorted(
            {
                p
                for pat in (patterns or ("*",))
                for p in folder.rglob(pat)
                if p.is_file() and "__pycache__" not in p.relative_to(folder).parts
            }
        )
        for path in files:
            self.file(path, str(path.relative_to(folder)))
        return self

    def tool(self, program: str) -> Key:
        return self.text(tool_version(program))

    @property
    def digest(self) -> str:
        return self._h.hexdigest()[:24]


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def entry(
    kind: str,
    key: Key,
    build: Callable[[Path], None],
    *,
    scratch: Path | None = None,
    max_entries: int = MAX_ENTRIES,
) -> Path:
    """The folder holding `build`'s output for `key`, built once (build(out) fills the empty folder `out`).

    A kind whose entries are small and many (one per compile of a matrix) keeps `max_entries` of them.

    With the cache off, `build` runs into `scratch` (required then) and that folder is returned.
    The entry is built where it stays (no rename), so an output that records its own path stays true.
    """
    base = root()
    if base is None:
        if scratch is None:
            raise ValueError("the build cache is off (TAE_BUILD_CACHE=off) and no scratch folder was given")
        scratch.mkdir(parents=True, exist_ok=True)
        build(scratch)
        return scratch
    out = base / kind / key.digest
    if (out / _COMPLETE).exists():
        _touch(out)
        return out
    with _locked(base / kind / f"{key.digest}.lock"):
        if not (out / _COMPLETE).exists():
            shutil.rmtree(out, ignore_errors=True)  # what an interrupted build left
            out.mkdir(parents=True)
            try:
                build(out)
            except BaseException:
                shutil.rmtree(out, ignore_errors=True)
                raise
            (out / _COMPLETE).write_text(f"{time.time()}\n")
            _prune(base / kind, keep=out, max_entries=max_entries)
    _touch(out)
    return out


def invalidate(out: Path) -> None:
    """Drop an entry (its content was changed after the build): the next use builds it again."""
    (out / _COMPLETE).unlink(missing_ok=True)


def _touch(out: Path) -> None:
    with suppress(OSError):  # pruned meanwhile by another process
        os.utime(out / _COMPLETE)


def _prune(folder: Path, keep: Path, max_entries: int = MAX_ENTRIES) -> None:
    """Keep the `max_entries` most recently used complete entries of one kind."""
    done = [p for p in folder.iterdir() if (p / _COMPLETE).exists() and p != keep]
    done.sort(key=lambda p: (p / _COMPLETE).stat().st_mtime, reverse=True)
    for old in done[max_entries - 1 :]:
        with _locked(folder / f"{old.name}.lock"):  # the lock file stays: a waiter may hold it open
            shutil.rmtree(old, ignore_errors=True)
