"""Issue 26: terminal output fits 80 columns without cutting a number (tinyae/terminal.py), and the training
bar shows no loss before the first epoch."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from rich.progress import DownloadColumn, MofNCompleteColumn, TransferSpeedColumn

from tinyae import terminal


def _render(bar, width: int) -> list[str]:  # type: ignore[no-untyped-def]
    out = io.StringIO()
    con = Console(file=out, width=width, color_system=None)
    con.print(bar.make_tasks_table(bar.tasks))
    return out.getvalue().splitlines()


@pytest.mark.parametrize("width", [40, 60, 80, 120])
def test_a_progress_bar_keeps_every_number_whole(width):
    bar = terminal.progress(
        MofNCompleteColumn(), status="{task.fields[status]}", console_=Console(width=width)
    )
    bar.add_task(
        "stream 0", total=21_200, completed=835, status="w660 score 0.03495 / 0.05631 ALARM (285 anomalies)"
    )
    lines = _render(bar, width)
    text = "\n".join(lines)
    assert all(len(line) <= width for line in lines), lines
    assert "835/21200" in text and "…" not in text
    for word in ("w660", "0.03495", "0.05631", "(285", "anomalies)", "0:00:00"):
        assert word in text.split(), (word, lines)  # whole, never folded across lines


def test_byte_counts_and_speed_stay_whole_at_80_columns():
    bar = terminal.progress(DownloadColumn(), TransferSpeedColumn(), console_=Console(width=80))
    bar.add_task(
        "reading recordings/normal/a-long-file-name-for-a-recording.csv",
        total=50_000_000,
        completed=12_345_678,
    )
    text = "\n".join(_render(bar, 80))
    assert "12.3/50.0 MB" in text and "…" not in text


@pytest.mark.slow  # the bar is a Keras callback: TensorFlow's import (~3 s)
def test_the_training_bar_shows_no_loss_before_the_first_epoch(monkeypatch):
    from tinyae.train.fit import RichProgress

    cb = RichProgress(80, enabled=True)
    cb.bar.live.console = Console(file=io.StringIO(), width=80, color_system=None)
    cb.task = cb.bar.add_task("fit", total=80, losses="")
    before = "\n".join(_render(cb.bar, 80))
    assert "nan" not in before and "0/80" in before
    cb.on_epoch_end(0, {"loss": 0.5, "val_loss": 0.25})
    after = "\n".join(_render(cb.bar, 80))
    assert "1/80" in after and "loss 0.5000" in after and "val 0.2500" in after


def test_consoles_follow_columns(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    assert terminal.console(piped_width=110).width == 80
    assert terminal.console(stderr=True).width == 80
    monkeypatch.delenv("COLUMNS")
    assert terminal.console(piped_width=110).width == 110  # pytest captures stdout: a pipe
