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
from collections.abc import Callable
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
