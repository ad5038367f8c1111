"""In CI every tool the suite needs must be there: a missing one would turn real tests into skips."""

import os
import shutil

import pytest

TOOLS = ("gcc", "g++", "clang-14", "arm-none-eabi-gcc", "arm-none-eabi-size", "qemu-system-arm", "chromium")


@pytest.mark.skipif(not os.environ.get("CI"), reason="only CI requires the whole toolchain")
def test_ci_has_every_tool_the_suite_needs():
    missing = [t for t in TOOLS if shutil.which(t) is None]
    assert not missing, f"CI lacks {missing}; `make toolchain` should have installed them"
    import aeon  # noqa: F401  (the datasets extra: the real-data tests need it)
    import playwright.sync_api  # noqa: F401  (the dev extra: the report's browser test drives Chromium with it)
