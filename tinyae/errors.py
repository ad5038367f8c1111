"""User-facing errors: one sentence, no traceback, non-zero exit."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import TypeVar

EXIT_USER_ERROR = 2

F = TypeVar("F", bound=Callable[..., int])


class UserError(Exception):
    """A mistake the user can fix; the message says what is wrong and what to do."""


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
