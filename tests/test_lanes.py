"""The lane markers stay true (tests/lanes.py): a test that starts the emulator's programs without the
`emulator` marker fails, in its body or in its fixtures, through a subprocess too; the shared fixtures
mark their users."""

from __future__ import annotations

import pytest

CONFTEST = """
import os
import lanes

def pytest_configure(config):
    config.pluginmanager.register(lanes, "tinyae-lanes")
    os.environ["INNER_PATH_AT_START"] = os.environ["PATH"]

import pytest

@pytest.fixture
def default_elf():
    return "elf"

@pytest.fixture
def builds_firmware():
    import subprocess
    subprocess.run(["arm-none-eabi-gcc", "--version"], capture_output=True)
    return "image"
"""

INI = """
[pytest]
markers =
    emulator: e
    training: t
    slow: s
    board_libs: b
"""


@pytest.fixture
def inner(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(CONFTEST)
    pytester.makeini(INI)
    return pytester


def test_an_unmarked_test_that_starts_the_toolchain_fails_naming_it(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        """
        import os, subprocess, sys
        import pytest

        def test_direct():
            subprocess.run(["qemu-system-arm", "--version"], capture_output=True)

        def test_through_a_child_process():
            code = "import subprocess; subprocess.run(['arm-none-eabi-gcc', '-v'], capture_output=True)"
            subprocess.run([sys.executable, "-c", code], check=True)

        def test_in_a_fixture(builds_firmware):
            assert builds_firmware == "image"

        def test_harmless():
            subprocess.run(["true"], check=True)
            assert os.environ["PATH"].endswith(os.environ["INNER_PATH_AT_START"])
            assert os.environ["PATH"] != os.environ["INNER_PATH_AT_START"]  # the stand-ins come first

        @pytest.mark.emulator
        def test_marked_keeps_the_real_path():
            assert os.environ["PATH"] == os.environ["INNER_PATH_AT_START"]
        """
    )
    result = inner.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=3)
    result.stdout.fnmatch_lines(
        [
            "*test_direct started qemu-system-arm without @pytest.mark.emulator*",
            "*test_through_a_child_process started arm-none-eabi-gcc without @pytest.mark.emulator*",
            "*test_in_a_fixture started arm-none-eabi-gcc without @pytest.mark.emulator*",
        ]
    )


def test_shared_and_module_fixtures_mark_their_users(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        """
        import pytest

        FIXTURE_MARKS = {"local_model": ("training",)}

        @pytest.fixture
        def local_model():
            return 1

        def test_uses_the_image(default_elf):
            pass

        def test_uses_the_local_model(local_model):
            pass

        def test_plain():
            pass
        """
    )
    result = inner.runpytest("-p", "no:cacheprovider", "-m", "not emulator and not training")
    result.assert_outcomes(passed=1, deselected=2)
    result = inner.runpytest("-p", "no:cacheprovider", "-m", "emulator and training")
    result.assert_outcomes(passed=1, deselected=2)
