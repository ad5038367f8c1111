"""The board-library lane: tinyae's TFLM glue and board code against the exact libraries the board
envs pin (Chirale_TensorFLowLite 2.0.0, TensorFlowLite_ESP32 1.0.0), upstream TFLM and the Nano 33
BLE core headers, never against a fake.

Their sources are not in this repository. One path setting says where they are: TAE_THIRD_PARTY
(default ../shared/third_party, see mk/tflm.mk). Without it the lane is skipped with one line; under
CI=true its absence fails the run.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
THIRD_PARTY = Path(os.environ.get("TAE_THIRD_PARTY") or ROOT.parent / "shared" / "third_party").resolve()
LIBRARY_DIRS = {
    "chirale": "Chirale_TensorFLowLite-2.0.0",
    "esp32": "TensorFlowLite_ESP32-1.0.0",
    "upstream": "tflite-micro-90b983c",
    "mbed_core": "ArduinoCore-mbed-4.5.0",
    "lsm9ds1": "Arduino_LSM9DS1-1.1.1",
    "bmi270": "Arduino_BMI270_BMM150-1.2.1",
}
# The lib_deps entry of platformio.ini each TFLM build stands for (train/boards.py describes them).
LIB_DEPS = {
    "chirale": "spaziochirale/Chirale_TensorFLowLite@2.0.0",
    "esp32": "tanakamasayuki/TensorFlowLite_ESP32@1.0.0",
}


def missing_reason() -> str | None:
    """None when every library is there, else the one line that says why the lane cannot run."""
    absent = [d for d in LIBRARY_DIRS.values() if not (THIRD_PARTY / d).is_dir()]
    if not absent:
        return None
    return (
        f"board-library lane skipped: {THIRD_PARTY} lacks {', '.join(absent)} "
        "(set TAE_THIRD_PARTY to the folder with the pinned library sources)"
    )


def require() -> Path:
    """The third-party folder, or skip (fail under CI=true) with one line."""
    reason = missing_reason()
    if reason is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason.replace("skipped", "cannot run under CI=true"), pytrace=False)
        pytest.skip(reason)
    return THIRD_PARTY


def library(name: str) -> Path:
    return require() / LIBRARY_DIRS[name]


def build_tflm(lib: str, arch: str) -> Path:
    """build/tflm/<lib>-<arch>/ with libtflm.a and flags.txt (make: compiled once, then up to date)."""
    require()
    out = ROOT / "build" / "tflm" / f"{lib}-{arch}"
    proc = subprocess.run(
        ["make", "--no-print-directory", "-j2", f"build/tflm/{lib}-{arch}/libtflm.a"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
        env={**os.environ, "TAE_THIRD_PARTY": str(THIRD_PARTY)},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out
