"""Every user mistake ends in one clear sentence and exit code 2 from `tinyae model` (run in the test's
process, tests/clirun.py; the same through a real process: tests/test_hostile_names.py's unknown key)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from clirun import tinyae


def run_model(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess[str]:
    args = ["model", "--quiet", "--out", str(tmp_path / "out")]
    for o in overrides:
        args += ["--set", o]
    return tinyae(*args)


def csv(tmp_path: Path, text: str, name: str = "data.csv") -> str:
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def good_rows(n: int, channels: int = 2, const: bool = False) -> str:
    rng = np.random.default_rng(0)
    head = ",".join(f"c{i}" for i in range(channels))
    rows = [
        ",".join("1.0" if const and i == 0 else f"{rng.normal():.4f}" for i in range(channels))
        for _ in range(n)
    ]
    return head + "\n" + "\n".join(rows) + "\n"


CASES = {
    "missing file": (lambda t: ["data.source='csv'", f"data.paths=['{t}/nope.csv']"], "does not exist"),
    "nan value": (
        lambda t: [
            "data.source='csv'",
            f"data.paths=['{csv(t, good_rows(50) + 'nan,1.0' + chr(10) + good_rows(300)[6:])}']",
        ],
        "NaN",
    ),
    "inconsistent columns": (
        lambda t: ["data.source='csv'", f"data.paths=['{csv(t, good_rows(40) + '1.0,2.0,3.0' + chr(10))}']"],
        "has 3 fields but the header has 2",
    ),
    "shorter than a window": (
        lambda t: ["data.source='csv'", f"data.paths=['{csv(t, good_rows(20))}']", "window.length=64"],
        "window",
    ),
    "constant channel": (
        lambda t: ["data.source='csv'", f"data.paths=['{csv(t, good_rows(2000, const=True))}']"],
        "constant",
    ),
    "labels needed for best_f1": (
        lambda t: [
            "data.source='csv'",
            f"data.paths=['{csv(t, good_rows(2000))}']",
            "threshold.method='best_f1'",
        ],
        "label",
    ),
    "features that never vary": (  # a log floor far above the signal's power flattens every band
        lambda t: [
            "data.source='csv'",
            f"data.paths=['{csv(t, good_rows(2000))}']",
            "frontend.kinds=['spectral']",
            "frontend.log_floor=1e6",
        ],
        "takes one value in at least 99% of the normal training windows",
    ),
    # refused by the config's bounds before training (divergence itself: tests/test_train_fit.py)
    "learning rate out of range": (lambda t: ["train.learning_rate=1e6"], "must be above 0 and at most 1"),
    "unknown dataset": (lambda t: ["data.source='no_such_set'"], "no_such_set"),
    "no sample rate": (
        lambda t: ["data.source='csv'", f"data.paths=['{csv(t, good_rows(2000))}']", "data.sample_rate_hz=0"],
        "gives no sample rate",
    ),
    "ambiguous timestamp unit": (
        lambda t: [
            "data.source='csv'",
            "data.sample_rate_hz=0",
            f"data.paths=['{csv(t, _ms_rows(2000))}']",
        ],
        "100 Hz in milliseconds",
    ),
    "unknown config key data.test_fractoin": (lambda t: ["data.test_fractoin=0.4"], "unknown key"),
    "binary garbage": (
        lambda t: ["data.source='csv'", f"data.paths=['{_garbage(t)}']"],
        "",
    ),
}


def _ms_rows(n: int) -> str:
    """timestamp,accX,accY,accZ with whole-number timestamps 0, 10, 20 ... (milliseconds of 100 Hz data)."""
    rng = np.random.default_rng(1)
    rows = [f"{10 * i},{rng.normal():.4f},{rng.normal():.4f},{rng.normal():.4f}" for i in range(n)]
    return "timestamp,accX,accY,accZ\n" + "\n".join(rows) + "\n"


def _garbage(t: Path) -> str:
    p = t / "garbage.csv"
    p.write_bytes(bytes(range(256)) * 8)
    return str(p)


# Cases that reach training before they are refused run in the `training` lane.
TRAINS = {"labels needed for best_f1"}


@pytest.mark.parametrize(
    "case", [pytest.param(c, marks=pytest.mark.training) if c in TRAINS else c for c in CASES]
)
def test_bad_input_is_one_sentence(tmp_path, case):
    make_overrides, needle = CASES[case]
    # CSV cases name their sample rate unless the rate is what they test (a later override wins)
    rate = ["data.sample_rate_hz=100"] if "data.source='csv'" in make_overrides(tmp_path) else []
    proc = run_model(tmp_path, *rate, *make_overrides(tmp_path), "train.epochs=2")
    assert proc.returncode == 2, proc.stderr[-2000:]
    err = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(err) == 1, proc.stderr[-2000:]
    assert needle.lower() in err[0].lower()
    assert "Traceback" not in proc.stderr
