"""User-facing errors: one sentence, no traceback, non-zero exit."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from functools import wraps
from typing import TypeVar

EXIT_USER_ERROR = 2

F = TypeVar("F", bound=Callable[..., int])


class UserError(Exception):
    """A mistake the user can fix; the message says what is wrong and what to do."""


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
    """Wrap a CLI entry point: UserError and Ctrl-C end in one line and an exit code."""

    @wraps(main)
    def wrapper(*args, **kwargs) -> int:  # type: ignore[no-untyped-def]
        try:
            return main(*args, **kwargs)
        except UserError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USER_ERROR
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130

    return wrapper  # type: ignore[return-value]
