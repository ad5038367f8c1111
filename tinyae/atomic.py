"""Artifacts are written all or nothing: every command that writes files goes through this module.

A command writes its files *aside*, next to their targets (same folder, so the same file system), and
moves them into place at the very end; a Ctrl-C, SIGTERM, a full disk, a read-only folder or a crash
before that leaves what was there intact, and the user sees one sentence, never a traceback.

Three ways in, each one line at the writer:

    with atomic.replace_dir(model_dir, fresh=True) as stage:   # a whole directory (`tinyae model`)
        ...write every file into stage...
    with atomic.replace_dir(model_dir) as stage:               # change some files of a directory
        ...stage starts as a copy of model_dir...              #   (`threshold`, `export`)
    atomic.write_text(path, text) / atomic.write_bytes(path, data)      # one file
    with atomic.files() as g:                                  # several files that belong together
        g.write_text(a, ...); np.savez(g.path(b), ...)         #   (a CSV and its sidecar)

`replace_dir` holds a lock on the directory for the whole run (`locked`), so two commands writing the
same directory cannot mix their files: the second one stops with a sentence naming the first. The
swap of a directory is one `renameat2(RENAME_EXCHANGE)` on Linux; elsewhere (or on a file system
without it) two renames, and a run that dies between them is repaired by the next one (the previous
directory is put back). Ctrl-C and SIGTERM are held back while files are moved into place and
delivered right after, so an interruption never splits a commit.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from tinyae.errors import UserError, raise_if_stopped

STAGE_MARK = ".new-"  # a directory or file being written: .<name>.new-<random>
OLD_MARK = ".old-"  # the previous directory during a two-rename swap: .<name>.old-<random>

_ADVICE = {
    errno.EROFS: "the file system is read-only; choose a writable folder",
    errno.EACCES: "permission denied; make the folder writable or choose another",
    errno.EPERM: "permission denied; make the folder writable or choose another",
    errno.ENOSPC: "the disk is full; free some space and run the command again",
    errno.EDQUOT: "the disk quota is exceeded; free some space and run the command again",
    errno.ENOTDIR: "a part of the path is a file, not a folder; choose another path",
    errno.EISDIR: "it is a folder; give a file name",
    errno.ENAMETOOLONG: "the name is too long; choose a shorter path",
}


def failure(exc: OSError, target: Path | str, kept: str = "") -> UserError:
    """One sentence for an OSError met while writing `target` (what, why, what to do)."""
    why = _ADVICE.get(exc.errno or 0)
    reason = exc.strerror or str(exc)
    text = f"cannot write {target} ({reason})"
    if kept:
        text += f"; {kept}"
    if why:
        text += f"; {why}"
    return UserError(text)


# ------------------------------------------------------------------------------- signals
@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM back for the duration (moving files into place), then deliver them.

    Python runs signal handlers in the main thread between bytecodes, whichever thread the OS picked,
    so the handlers themselves are swapped for a recorder (masking the main thread would not be enough
    in a process with other threads: TensorFlow's, Ray's). Elsewhere than the main thread: no effect.
    A stop received before, whose exception was lost (tinyae.errors), is raised here: nothing is
    committed after a Ctrl-C.
    """
    raise_if_stopped()
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    kinds = [signal.SIGINT, signal.SIGTERM]
    previous = {s: signal.getsignal(s) for s in kinds}
    for s in kinds:
        if previous[s] not in (signal.SIG_IGN, None):
            signal.signal(s, lambda n, _f: caught.append(n))
    try:
        yield
    finally:
        for s, handler in previous.items():
            if handler is not None:
                signal.signal(s, handler)
        for n in dict.fromkeys(caught):
            signal.raise_signal(n)


# ---------------------------------------------------------------------------------- locks
_held: dict[Path, int] = {}  # lock path -> depth, for this process (a command may lock twice)


def _lock_path(target: Path) -> Path:
    return target.parent / f".{target.name}.lock"


def _holder(path: Path) -> str:
    try:
        text = path.read_text().strip()
    except OSError:
        return "another tinyae"
    return text or "another tinyae"


@contextlib.contextmanager
def locked(target: Path | str, what: str = "another output") -> Iterator[None]:
    """Hold `target`'s lock (a file `.NAME.lock` beside it) or refuse in one sentence when another
    process holds it. `what` says what else the user could choose (e.g. "another --out")."""
    shown = Path(target)
    target = _absolute(shown)
    lock = _lock_path(target)
    if lock in _held:
        _held[lock] += 1
        try:
            yield
        finally:
            _held[lock] -= 1
        return
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise failure(exc, shown) from None
    try:
        if not _try_lock(fd):
            raise UserError(
                f"{shown} is being written by {_holder(lock)}; wait until it has finished, or choose {what}"
            )
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            prog = Path(sys.argv[0])
            name = prog.parent.name if prog.name == "__main__.py" else prog.name  # python -m tinyae
            who = " ".join([name, *sys.argv[1:]])[:200]
            os.write(fd, f"`{who}` (pid {os.getpid()}, since {time.strftime('%H:%M:%S')})".encode())
        _held[lock] = 1
        try:
            yield
        finally:
            del _held[lock]
    finally:
        os.close(fd)  # closing releases the lock; the file stays (removing it would race)


def _try_lock(fd: int) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
        except OSError:
            return False
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


# ------------------------------------------------------------------------------ directories
def _absolute(p: Path) -> Path:
    """The absolute path, with a symbolic link as its last part followed (we replace what it names)."""
    p = Path(os.path.abspath(p))
    return p.resolve() if p.is_symlink() else p


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux renameat2 RENAME_EXCHANGE); False where that is unavailable."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False  # the kernel or the file system lacks it: two renames instead
    raise OSError(err, os.strerror(err), str(b))


def _siblings(target: Path, mark: str) -> list[Path]:
    prefix = f".{target.name}{mark}"
    try:
        return sorted(p for p in target.parent.iterdir() if p.name.startswith(prefix))
    except OSError:
        return []


def _recover(target: Path) -> str:
    """Repair what a run killed mid-way left beside `target` (we hold its lock, so no run owns it):
    put the previous directory back when a two-rename swap stopped between its renames, and remove
    stages. Returns a note for the user ("" when there was nothing to do)."""
    note = ""
    olds = _siblings(target, OLD_MARK)
    if olds and not target.exists():
        os.rename(olds[-1], target)
        olds = olds[:-1]
        note = f"put back {target}, which a run stopped mid-way had moved aside"
    for p in [*olds, *_siblings(target, STAGE_MARK)]:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                p.unlink()
    return note


def _fsync_tree(root: Path) -> None:
    """Flush the files of a stage to the disk before they replace anything (a power loss after the
    swap must not find empty files)."""
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            p = os.path.join(dirpath, name)
            if os.path.islink(p):
                continue
            fd = os.open(p, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    _fsync_dir(root)


def _fsync_dir(d: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform can open a directory
        fd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _swap_in(stage: Path, target: Path) -> None:
    """Move the finished stage to `target`, replacing what is there, with signals held back."""
    _fsync_tree(stage)
    with signals_deferred():
        if not target.exists():
            os.rename(stage, target)
        elif _exchange(stage, target):
            shutil.rmtree(stage, ignore_errors=True)  # now holds the previous directory
        else:
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}{OLD_MARK}", dir=target.parent))
            os.rmdir(old)
            os.rename(target, old)
            os.rename(stage, target)
            shutil.rmtree(old, ignore_errors=True)
        _fsync_dir(target.parent)


def _copy_into(src: Path, dst: Path) -> None:
    """Copy src's entries into the (empty) stage, keeping file times (make compares them)."""
    for entry in src.iterdir():
        if entry.name.startswith(".") and entry.name.endswith(".lock"):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.copytree(entry, dst / entry.name, symlinks=True)
        else:
            shutil.copy2(entry, dst / entry.name, follow_symlinks=False)


@contextlib.contextmanager
def replace_dir(
    target: Path | str,
    *,
    fresh: bool = False,
    owned: Callable[[str], bool] | None = None,
    what: str = "another output directory",
) -> Iterator[Path]:
    """A stage directory beside `target` that replaces `target` whole when the block ends normally.

    fresh=False: the stage starts as a copy of `target` (change some files, keep the rest).
    fresh=True: the stage starts empty; `target`, when it exists, must hold only entries `owned`
    accepts (the files this kind of directory holds), so that a command never replaces a folder that
    is not its own (`--out .`). On any exception (Ctrl-C included) the stage is removed and `target`
    is what it was; an OSError becomes one sentence.
    """
    shown = Path(target)
    target = _absolute(shown)
    kept = f"{shown} is as it was" if target.exists() else ""
    try:
        with locked(shown, what):
            note = _recover(target)
            if note:
                print(f"tinyae: {note}", file=sys.stderr)
            if target.exists() and not target.is_dir():
                raise UserError(f"{shown} is a file, not a directory; choose {what}")
            if fresh and target.is_dir() and owned is not None:
                strangers = sorted(
                    e.name for e in target.iterdir() if not e.name.startswith(".") and not owned(e.name)
                )
                if strangers:
                    listed = ", ".join(strangers[:4]) + (", ..." if len(strangers) > 4 else "")
                    raise UserError(
                        f"{shown} holds files this command did not write ({listed}); it replaces the "
                        f"folder whole, so choose {what} (a new or empty folder), or move them away"
                    )
            target.parent.mkdir(parents=True, exist_ok=True)
            stage = Path(tempfile.mkdtemp(prefix=f".{target.name}{STAGE_MARK}", dir=target.parent))
            try:
                if not fresh and target.is_dir():
                    _copy_into(target, stage)
                    os.chmod(stage, target.stat().st_mode & 0o7777)
                else:
                    os.chmod(stage, 0o777 & ~_umask())
                try:
                    yield stage
                    raise_if_stopped()  # a Ctrl-C lost while the stage was written: keep the old folder
                except KeyboardInterrupt:
                    if kept:
                        print(f"tinyae: {kept}", file=sys.stderr)
                    raise
                _swap_in(stage, target)
            finally:
                if stage.exists():
                    shutil.rmtree(stage, ignore_errors=True)
    except OSError as exc:
        where = _ours(exc, target)
        if where is None:
            raise  # not a write of ours (a data file that cannot be read): the caller's to explain
        raise failure(exc, _relative(where, target, shown), kept) from None


def _ours(exc: OSError, target: Path) -> Path | None:
    """The path to name when `exc` comes from writing `target` or its stage; None when it does not."""
    name = exc.filename
    if name is None:
        return target
    p = Path(os.path.abspath(os.fsdecode(name)))
    if p == target or target in p.parents or p == _lock_path(target):
        return p
    if p.parent == target.parent and p.name.startswith(f".{target.name}"):
        return target  # the stage itself, or the previous directory during a swap
    for parent in p.parents:
        if parent.parent == target.parent and parent.name.startswith(f".{target.name}{STAGE_MARK}"):
            return target / p.relative_to(parent)  # a file in the stage: name it where it will be
    return None


def _relative(p: Path, target: Path, shown: Path) -> Path:
    """p (absolute, at or under target) named the way the user named the target."""
    try:
        return shown / p.relative_to(target)
    except ValueError:
        return p


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ---------------------------------------------------------------------------------- files
class FileGroup:
    """Files written aside and moved into place together (see `files`)."""

    def __init__(self) -> None:
        self._pending: list[tuple[Path, Path]] = []  # (temporary, target)

    def path(self, target: Path | str) -> Path:
        """A temporary path beside `target` to write to (created now, so an unwritable folder is
        found before any work); it replaces `target` when the group commits. The name keeps
        target's suffix (numpy, matplotlib and Keras pick the format from it)."""
        target = _absolute(Path(target))
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(
                prefix=f".{target.stem}{STAGE_MARK}", suffix=target.suffix, dir=target.parent
            )
            os.close(fd)
        except OSError as exc:
            raise failure(exc, target) from None
        tmp = Path(name)
        os.chmod(tmp, 0o666 & ~_umask())
        self._pending.append((tmp, target))
        return tmp

    def write_text(self, target: Path | str, text: str) -> Path:
        tmp = self.path(target)
        self._write(tmp, target, text.encode())
        return tmp

    def write_bytes(self, target: Path | str, data: bytes) -> Path:
        tmp = self.path(target)
        self._write(tmp, target, data)
        return tmp

    @staticmethod
    def _write(tmp: Path, target: Path | str, data: bytes) -> None:
        try:
            tmp.write_bytes(data)
        except OSError as exc:
            raise failure(exc, target) from None

    def commit(self) -> None:
        try:
            for tmp, _ in self._pending:
                fd = os.open(tmp, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            with signals_deferred():
                for tmp, target in self._pending:
                    os.replace(tmp, target)
        except OSError as exc:
            raise failure(exc, exc.filename or self._pending[0][1]) from None
        self._pending = []

    def discard(self) -> None:
        for tmp, _ in self._pending:
            with contextlib.suppress(OSError):
                tmp.unlink()
        self._pending = []


@contextlib.contextmanager
def files() -> Iterator[FileGroup]:
    """Files that replace their targets together when the block ends normally, or not at all.
    An OSError writing one of the temporary files (a writer given `g.path(...)`) becomes one sentence."""
    group = FileGroup()
    try:
        yield group
        group.commit()
    except OSError as exc:
        tmp = {str(t): target for t, target in group._pending}
        name = os.fsdecode(exc.filename) if exc.filename is not None else None
        if name is not None and os.path.abspath(name) in tmp:
            raise failure(exc, tmp[os.path.abspath(name)]) from None
        raise
    finally:
        group.discard()


def write_text(path: Path | str, text: str) -> None:
    """Replace `path` with `text` (UTF-8) all or nothing."""
    with files() as g:
        g.write_text(path, text)


def write_bytes(path: Path | str, data: bytes) -> None:
    """Replace `path` with `data` all or nothing."""
    with files() as g:
        g.write_bytes(path, data)


def check_writable(path: Path | str) -> None:
    """Refuse now, in one sentence, a file that could not be written at the end of a long run
    (`verify --json`): creates and removes a temporary file beside it."""
    with files() as g:
        g.path(path)
        g.discard()
