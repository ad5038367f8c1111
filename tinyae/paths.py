"""The repository's root: every command runs from it, and its tools read the firmware, configs and
build/ trees relative to it (tinyae/train and tinyae/tools are symlinks to its folders train/ and tools/)."""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The pinned board libraries' sources (the one path setting of the board-library lane; mk/tflm.mk's
# TAE_THIRD_PARTY has the same default for make).
THIRD_PARTY = Path(os.environ.get("TAE_THIRD_PARTY") or ROOT.parent / "shared" / "third_party").resolve()
# Real public recordings kept outside the repository (SKAB, NAB; see its README): the bench's data sets.
DATASETS = Path(os.environ.get("TAE_DATASETS") or ROOT.parent / "shared" / "datasets").resolve()
