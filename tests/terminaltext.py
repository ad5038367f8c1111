"""Reading what a command printed as a person does: a table folds a long value (a sha256, a path) onto
the next lines of its cell at a narrow terminal (tinyae/terminal.FoldingTable) instead of cutting it."""

from __future__ import annotations


def last_column(text: str) -> str:
    """The last column of every table row in `text`, joined: a folded value reads whole again."""
    return "".join(line.split("│")[-2].strip() for line in text.splitlines() if line.count("│") >= 3)
