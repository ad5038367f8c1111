"""The warnings of a training run, from one source.

Every stage warns through `warn(sentence)`: the sentence is printed on stderr as it happens and, while
a run collects (`collecting()`, which `pipeline.run` opens around all its stages), recorded in order,
once. The manifest's `warnings` list is that record, and the report shows exactly that list, so the
terminal, the manifest and the page never disagree. `tinyae threshold` replaces the threshold's own
warnings in the list (`replace`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_RECORD: ContextVar[list[str] | None] = ContextVar("tinyae_warnings", default=None)


def warn(sentence: str) -> None:
    """Print one warning on stderr and record it in the run being collected (if any)."""
    from rich.console import Console
    from rich.markup import escape

    from tinyae.terminal import console

    sentence = sentence.removeprefix("warning: ").strip()
    if not sentence:
        return
    record = _RECORD.get()
    if record is not None:
        if sentence in record:
            return
        record.append(sentence)
    con: Console = console(stderr=True)
    con.print(f"[bold yellow]warning:[/] {escape(sentence)}")


@contextmanager
def collecting() -> Iterator[list[str]]:
    """Record every `warn` inside the block into the yielded list (nested blocks share the outer one)."""
    outer = _RECORD.get()
    if outer is not None:
        yield outer
        return
    record: list[str] = []
    token = _RECORD.set(record)
    try:
        yield record
    finally:
        _RECORD.reset(token)


def collected() -> list[str]:
    """The warnings recorded so far in the current run (empty outside `collecting`)."""
    return list(_RECORD.get() or [])


def replace(warnings: list[str], old: list[str], new: list[str]) -> list[str]:
    """`warnings` with the sentences of `old` (a section's previous warnings) swapped for `new`."""
    kept = [w for w in warnings if w not in old]
    return kept + [w for w in new if w not in kept]
