"""Progress while reading large files: one rich bar per file of at least MIN_BYTES, on stderr."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.progress import DownloadColumn, TransferSpeedColumn

from tinyae import terminal

MIN_BYTES = 4 << 20  # smaller files read in well under a second


@contextmanager
def file_progress(enabled: bool = True) -> Iterator[Callable[[Path], Callable[[int, int], None] | None]]:
    """A factory: path -> callback(bytes_done, bytes_total) updating that file's bar (None: no bar)."""
    bars = terminal.progress(DownloadColumn(), TransferSpeedColumn(), disable=not enabled)

    def factory(path: Path) -> Callable[[int, int], None] | None:
        try:
            size = Path(path).stat().st_size
        except OSError:
            return None
        if not enabled or size < MIN_BYTES:
            return None
        task = bars.add_task(f"reading {Path(path).name}", total=size)
        return lambda done, total: bars.update(task, completed=done, total=total)

    with bars:
        yield factory
