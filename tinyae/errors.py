"""User-facing errors: one sentence, no traceback, non-zero exit.

Exit codes (README, every command's --help): 0 success, 1 a check failed, 2 a user or device error,
130 interrupted by Ctrl-C (SIGINT), 143 stopped by SIGTERM (`kill`, a CI timeout, systemd) — the codes a
shell gives a process killed by those signals (128 + the signal number), after the command has cleaned up:
kept what it received, removed what it had only half written, stopped the emulator it started.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any, TypeVar

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 128 + signal.SIGINT  # 130
EXIT_TERMINATED = 128 + signal.SIGTERM  # 143

F = TypeVar("F", bound=Callable[..., int])


class UserError(Exception):
    """A mistake the user can fix; the message says what is wrong and what to do."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C's KeyboardInterrupt, so that every `except
    KeyboardInterrupt` / `finally` that cleans up after Ctrl-C does the same for `kill`."""


def exit_code(interrupt: BaseException) -> int:
    """130 for Ctrl-C, 143 for SIGTERM."""
    return EXIT_TERMINATED if isinstance(interrupt, Terminated) else EXIT_INTERRUPTED


def interrupt_sentence(interrupt: BaseException) -> str:
    return "terminated (SIGTERM)" if isinstance(interrupt, Terminated) else "interrupted (Ctrl-C)"


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated


def install_sigterm() -> None:
    """SIGTERM raises Terminated in the main thread (a no-op elsewhere, or where SIGTERM is ignored)."""
    main = threading.current_thread() is threading.main_thread()
    if main and signal.getsignal(signal.SIGTERM) is not signal.SIG_IGN:
        signal.signal(signal.SIGTERM, _raise_terminated)


NAME_LIMIT = 48
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(name: object, limit: int | None = NAME_LIMIT) -> str:
    """A name taken from the data (a column, file, label, channel or sensor name, a string a device
    sent) as it goes into a one-line message: control and format characters escaped (a newline as
    \\n, others as \\xNN or \\uNNNN: no line break, no terminal escape, no reversed text) and a name
    longer than `limit` characters cut in the middle with "…" (None: never cut, for paths). Every
    message that shows such a name uses this (tests/test_hostile_names.py)."""
    out = []
    for ch in str(name):
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif not ch.isprintable():  # Python's own test: controls, formats, separators but " "
            code = ord(ch)
            out.append(
                f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
            )
        else:
            out.append(ch)
    text = "".join(out)
    if limit is not None and len(text) > limit:
        head = (limit - 1) * 2 // 3
        text = text[:head] + "…" + text[len(text) - (limit - 1 - head) :]
    return text


def printable_list(names: Iterable[object], n: int = 20, *, limit: int | None = NAME_LIMIT) -> str:
    """Up to `n` names, each printable(), joined by ", " (and ", ..." when there are more)."""
    items = list(names)
    shown = ", ".join(printable(x, limit) for x in items[:n])
    return shown + (", ..." if len(items) > n else "")


def run_cli(main: F) -> F:
    """Wrap a CLI entry point: UserError, Ctrl-C, SIGTERM and an OS error end in one line and an exit code."""

    @wraps(main)
    def wrapper(*args, **kwargs) -> int:  # type: ignore[no-untyped-def]
        install_sigterm()
        try:
            return main(*args, **kwargs)
        except UserError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USER_ERROR
        except KeyboardInterrupt as exc:
            print(interrupt_sentence(exc), file=sys.stderr)
            return exit_code(exc)
        except OSError as exc:  # the last net: a file or device the command could not use
            what = f" {exc.filename}" if exc.filename else ""
            print(f"error: cannot use{what}: {exc.strerror or exc}", file=sys.stderr)
            return EXIT_USER_ERROR

    return wrapper  # type: ignore[return-value]
