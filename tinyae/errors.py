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


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT), raised by tinyae's handler (install_stop_handlers). A subclass, not KeyboardInterrupt
    itself: CPython marks a KeyboardInterrupt of exactly that type that passes through an extension's
    PyRun_String (TensorFlow's and optree's pybind11 code do that) as unhandled for good, and `python -m`
    then ends the process by SIGINT (-2) even after the command caught it and chose 130."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C's KeyboardInterrupt, so that every `except
    KeyboardInterrupt` / `finally` that cleans up after Ctrl-C does the same for `kill`."""


def exit_code(interrupt: BaseException) -> int:
    """130 for Ctrl-C, 143 for SIGTERM."""
    return EXIT_TERMINATED if isinstance(interrupt, Terminated) else EXIT_INTERRUPTED


def interrupt_sentence(interrupt: BaseException) -> str:
    return "terminated (SIGTERM)" if isinstance(interrupt, Terminated) else "interrupted (Ctrl-C)"


# ------------------------------------------------------------------------ Ctrl-C and SIGTERM
# Python raises a signal's exception wherever the main thread is at that moment. Where that is a weakref
# callback, a __del__ or a garbage collection (TensorFlow and Keras run them all the time), the exception
# is printed as "Exception ignored in ..." and lost, and the command would go on and finish as if nothing
# had happened (measured: 10 of 40 Ctrl-Cs after `tinyae model`'s `int8:` line, under load). So the
# handler also keeps the stop until it reaches run_cli, or code that takes it on purpose (taken()):
# nothing is committed while one is pending (tinyae.atomic), and a command that returns with one pending
# still ends with its sentence and exit code.
_pending: KeyboardInterrupt | None = None
_depth = 0  # run_cli nesting (a command that runs another command's main)


def _stop(signum: int, frame: Any) -> None:
    global _pending
    stop = Terminated() if signum == signal.SIGTERM else Interrupted()
    _pending = _pending or stop
    raise stop


def install_stop_handlers() -> dict[int, Any]:
    """Ctrl-C and SIGTERM raise Interrupted / Terminated in the main thread and are kept until taken. A
    signal that is ignored (a background job, nohup) stays ignored, as does a handler someone else
    installed for Ctrl-C. Returns the handlers replaced (nothing outside the main thread)."""
    replaced: dict[int, Any] = {}
    if threading.current_thread() is not threading.main_thread():
        return replaced
    for s in (signal.SIGINT, signal.SIGTERM):
        current = signal.getsignal(s)
        ours_to_take = current is not signal.SIG_IGN and (
            s == signal.SIGTERM or current in (signal.default_int_handler, signal.SIG_DFL, _stop)
        )
        if ours_to_take and current is not None:
            replaced[s] = signal.signal(s, _stop)
    return replaced


def taken(stop: BaseException) -> None:
    """Code that catches Ctrl-C or SIGTERM to finish first (write what it received, print its summary)
    and raises it again afterwards says so: until then, its writes go ahead."""
    global _pending
    if isinstance(stop, KeyboardInterrupt):
        _pending = None


def raise_if_stopped() -> None:
    """Raise the stop this command received whose exception was lost (see above); nothing if none."""
    global _pending
    if _pending is not None:
        stop, _pending = _pending, None
        raise type(stop)()


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
        global _depth, _pending
        outermost = _depth == 0
        if outermost:
            _pending = None
        replaced = install_stop_handlers() if outermost else {}
        _depth += 1
        try:
            code = main(*args, **kwargs)
            raise_if_stopped()  # a Ctrl-C whose exception was lost still ends the command as one
            return code
        except UserError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USER_ERROR
        except KeyboardInterrupt as exc:
            taken(exc)
            print(interrupt_sentence(exc), file=sys.stderr)
            return exit_code(exc)
        except OSError as exc:  # the last net: a file or device the command could not use
            what = f" {exc.filename}" if exc.filename else ""
            print(f"error: cannot use{what}: {exc.strerror or exc}", file=sys.stderr)
            return EXIT_USER_ERROR
        finally:
            _depth -= 1
            if outermost:
                _pending = None  # a lost stop a user error came after: that error was the command's end
                for s, handler in replaced.items():  # for a caller in the same process (tests, notebooks)
                    signal.signal(s, handler)

    return wrapper  # type: ignore[return-value]
