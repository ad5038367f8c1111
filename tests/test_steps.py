"""The one runner of build and bench steps: output on success, one sentence on every failure."""

from __future__ import annotations

import sys

import pytest

from tinyae.errors import UserError
from tinyae.steps import run_step


def test_a_step_returns_its_time_and_output() -> None:
    wall, out = run_step([sys.executable, "-c", "import sys; print('out'); print('err', file=sys.stderr)"])
    assert wall > 0 and "out" in out and "err" in out


@pytest.mark.parametrize(
    ("code", "said"),
    [
        # the step's own error sentence wins over its other lines
        ("import sys; print('noise'); print('error: the model is gone; run make model', file=sys.stderr); sys.exit(2)",
         "failed (exit 2): the model is gone; run make model"),
        # otherwise its last lines, joined on one line
        ("import sys; print('a\\nb\\nc\\nd', file=sys.stderr); sys.exit(1)", "failed (exit 1): b | c | d"),
    ],
)  # fmt: skip
def test_a_failing_step_is_one_sentence(code: str, said: str) -> None:
    with pytest.raises(UserError) as exc:
        run_step([sys.executable, "-c", code, "x", "y"])
    assert str(exc.value).startswith("`") and " ...` " in str(exc.value) and str(exc.value).endswith(said)
    assert "\n" not in str(exc.value)


def test_a_step_that_cannot_start_or_hangs_is_one_sentence() -> None:
    with pytest.raises(UserError, match=r"^cannot run no-such-tool-tae .*make toolchain"):
        run_step(["no-such-tool-tae"])
    with pytest.raises(UserError, match=r"did not finish within 1 s$"):
        run_step([sys.executable, "-c", "import time; time.sleep(5)"], timeout=1)
