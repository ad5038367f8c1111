"""The repository's root: every command runs from it, and its tools read the firmware, configs and
build/ trees relative to it (an editable install maps tinyae.train / tinyae.tools to its folders)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
