"""Terminal output that fits the terminal: consoles sized from the terminal (or COLUMNS), and progress
bars that never cut a number.

Every progress bar of the CLI comes from `progress`: its columns are the task's description, a bar
that takes the room left over, the count columns (done/total, bytes, speed), a free-text status and
the elapsed time. The counts and the time never wrap or shrink: the bar takes the room the others
leave, and when that gets too narrow the status moves to a line of its own. (Rich's defaults give every
column its full width and then cut all of them evenly, which turned `835/6000` into `835/60…` at 80
columns.)
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text


def columns_from_env() -> int | None:
    """COLUMNS when it is set to a usable width, else None."""
    try:
        n = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        return None
    return n if n >= 20 else None


def console(stderr: bool = False, *, piped_width: int | None = None, **kwargs: Any) -> Console:
    """A rich Console: COLUMNS wins when set; else the terminal's width; a pipe gets `piped_width` (rich's
    80 when None)."""
    width = columns_from_env()
    if width is None and piped_width is not None:
        probe = Console(stderr=stderr)
        if not probe.is_terminal:
            width = piped_width
    kwargs.setdefault("highlight", False)
    return Console(stderr=stderr, width=width, **kwargs)


MIN_BAR = 10  # narrower than this, the status moves to a line of its own


class FittedProgress(Progress):
    """Progress whose task lines are laid out by hand (see the module docstring)."""

    def __init__(
        self,
        description: ProgressColumn,
        counts: Sequence[ProgressColumn],
        status: ProgressColumn | None,
        elapsed: ProgressColumn | None,
        **kwargs: Any,
    ) -> None:
        self.bar = BarColumn(bar_width=None)
        self.parts = (description, list(counts), status, elapsed)
        cols = [description, self.bar, *counts, *(c for c in (status, elapsed) if c is not None)]
        super().__init__(*cols, **kwargs)

    def _text(self, column: ProgressColumn | None, task: Task) -> Text:
        if column is None:
            return Text()
        out = column(task)
        return out if isinstance(out, Text) else Text(str(out))

    def _bar(self, task: Task, width: int) -> Text:
        bar = self.bar(task)
        assert isinstance(bar, ProgressBar)
        bar.width = width
        segs = self.console.render(bar, self.console.options.update_width(width))
        return Text.assemble(*((s.text, s.style or "") for s in segs if s.text != "\n"))

    def task_lines(self, task: Task, width: int) -> list[Text]:
        """The lines of one task at `width` columns."""
        desc_col, count_cols, status_col, elapsed_col = self.parts
        desc = self._text(desc_col, task)
        figures = Text(" ").join(t for t in (self._text(c, task) for c in count_cols) if t.plain)
        status = self._text(status_col, task)
        elapsed = self._text(elapsed_col, task)
        fixed = [t for t in (desc, figures, elapsed) if t.plain]
        room = width - sum(t.cell_len for t in fixed) - len(fixed)  # one space after each part
        inline = bool(status.plain) and room - status.cell_len - 1 >= MIN_BAR
        if inline:
            room -= status.cell_len + 1
        head: list[Text] = [desc] if desc.plain else []
        if room >= 3:
            head.append(self._bar(task, room))
        head += [t for t in (figures, status if inline else Text(), elapsed) if t.plain]
        lines = [Text(" ").join(head)]
        if status.plain and not inline:
            lines.append(Text("  ").append_text(status))
        return lines

    def make_tasks_table(self, tasks: Iterable[Task]) -> Table:
        grid = Table.grid(expand=False)
        grid.add_column(no_wrap=False, overflow="fold")
        tasks = [t for t in tasks if t.visible]
        if not tasks:  # (also while Progress.__init__ builds its Live, before self.console exists)
            return grid
        width = self.console.width
        for task in tasks:
            for line in self.task_lines(task, width):
                grid.add_row(line)
        return grid


def progress(
    *counts: ProgressColumn,
    description: str = "[bold]{task.description}",
    status: str | None = None,
    elapsed: bool = True,
    console_: Console | None = None,
    disable: bool = False,
    transient: bool = False,
) -> Progress:
    """A progress bar laid out as the module docstring says.

    counts: the columns of figures (MofNCompleteColumn(), DownloadColumn(), ...), kept whole;
    status: a format for free text after them (e.g. "{task.fields[status]}"), on its own line when the
    bar would get narrower than MIN_BAR.
    """
    return FittedProgress(
        TextColumn(description),
        counts,
        TextColumn(status) if status is not None else None,
        TimeElapsedColumn() if elapsed else None,
        console=console_ or console(stderr=True),
        disable=disable,
        transient=transient,
    )


class FoldingTable(Table):
    """A rich Table whose cells fold a word too long for its column onto the next line instead of cutting it
    with '…' (rich's default), so a sha256, a path or a number is never shown cut short."""

    def add_column(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("overflow", "fold")
        super().add_column(*args, **kwargs)


def table(*args: Any, **kwargs: Any) -> Table:
    """A table for the terminal (FoldingTable); takes rich.table.Table's arguments."""
    return FoldingTable(*args, **kwargs)
