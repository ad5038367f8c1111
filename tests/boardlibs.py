"""The board-library lane: tinyae's TFLM glue and board code against the exact libraries the board
envs pin (Chirale_TensorFLowLite 2.0.0, TensorFlowLite_ESP32 1.0.0), upstream TFLM and the Nano 33
BLE and ESP32 Arduino cores' headers, never against a fake.

Their sources are not in this repository. One path setting says where they are: TAE_THIRD_PARTY
(default ../shared/third_party, see mk/tflm.mk). Without it the lane is skipped with one line; under
CI=true its absence fails the run.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tinyae.paths import THIRD_PARTY
from tinyae.train.boards import TFLM_LIBRARIES

ROOT = Path(__file__).resolve().parent.parent
LIBRARY_DIRS = {
    "chirale": "Chirale_TensorFLowLite-2.0.0",
    "esp32": "TensorFlowLite_ESP32-1.0.0",
    "upstream": "tflite-micro-90b983c",
    "mbed_core": "ArduinoCore-mbed-4.5.0",
    "lsm9ds1": "Arduino_LSM9DS1-1.1.1",
    "bmi270": "Arduino_BMI270_BMM150-1.2.1",
    "esp32_core": "framework-arduinoespressif32-3.20014.231204",  # ESP32 Arduino core 2.0.14 (PlatformIO's package)
}
# The lib_deps entry of platformio.ini each TFLM build stands for (train/boards.py describes them).
LIB_DEPS = {
    "chirale": "spaziochirale/Chirale_TensorFLowLite@2.0.0",
    "esp32": "tanakamasayuki/TensorFlowLite_ESP32@1.0.0",
}
TFLM_LIBRARY_OF = {name: TFLM_LIBRARIES[dep] for name, dep in LIB_DEPS.items()}


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
    """build/tflm/<lib>-<arch>/ with libtflm.a and flags.txt (make: compiled once, then rebuilt only when
    the library's content inputs change, mk/tflm.mk)."""
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


# ---------------------------------------------------------------- the TFLM glue against a real library
CORE_SRC = ROOT / "firmware" / "lib" / "tinyae" / "src"
GLUE = CORE_SRC / "tae_engine_tflm.cpp"
ENGINE_OK, ERR_ALLOC, ERR_MODEL, ERR_INVOKE = 0, -1, -2, -3


def glue_command(lib: str, arch: str, model_dir: Path, out: Path | None = None) -> list[str]:
    """The compile of tae_engine_tflm.cpp against a TFLM build with the library's own flags and ours
    (-Werror): into a shared library for ctypes (host), or -fsyntax-only when out is None."""
    lib_dir = build_tflm(lib, arch)
    flags = (lib_dir / "flags.txt").read_text().split()
    cxx = "arm-none-eabi-g++" if arch == "cm4" else "g++"
    cmd = [cxx, *flags, "-Wall", "-Wextra", "-Werror", "-Wshadow", "-DTAE_ENGINE_TFLM"]
    cmd += [f"-I{model_dir}", f"-I{CORE_SRC}"]
    if out is None:
        return [*cmd, "-fsyntax-only", str(GLUE)]
    return [
        *cmd,
        "-shared",
        "-o",
        str(out),
        str(GLUE),
        str(model_dir / "model_data.cc"),
        str(lib_dir / "libtflm.a"),
    ]


def compile_glue(
    lib: str, arch: str, model_dir: Path, out: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        glue_command(lib, arch, model_dir, out), capture_output=True, text=True, timeout=600
    )


class HostGlue:
    """tae_engine_tflm.cpp built on the host against a TFLM library, driven through ctypes."""

    def __init__(self, so: Path) -> None:
        import ctypes

        self.lib = ctypes.CDLL(str(so))
        self.lib.tae_engine_tflm_reason.restype = ctypes.c_char_p
        self.lib.tae_engine_name.restype = ctypes.c_char_p
        self.lib.tae_engine_library.restype = ctypes.c_char_p
        self.lib.tae_engine_ram_bytes.restype = ctypes.c_uint32
        self.lib.tae_engine_invoke.argtypes = [ctypes.c_void_p, ctypes.c_void_p]

    def init(self) -> int:
        return int(self.lib.tae_engine_init())

    def reason(self) -> str:
        return self.lib.tae_engine_tflm_reason().decode()

    def invoke(self, x, out_size: int):
        import numpy as np

        xq = np.ascontiguousarray(x, np.int8)
        out = np.zeros(out_size, np.int8)
        return int(self.lib.tae_engine_invoke(xq.ctypes.data, out.ctypes.data)), out


def build_host_glue(lib: str, model_dir: Path, out_dir: Path) -> HostGlue:
    out_dir.mkdir(parents=True, exist_ok=True)
    so = out_dir / f"glue_{lib}_{model_dir.name}.so"
    proc = compile_glue(lib, "host", model_dir, so)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return HostGlue(so)


def model_variant(model_dir: Path, out: Path, edit) -> Path:
    """A copy of a model directory whose headers are re-rendered from an edited manifest.

    edit(manifest) changes the manifest in place (e.g. the arena size) and may return another
    flatbuffer (bytes) to put in model_data.cc; the headers then disagree with it on purpose. The
    calibration constants are derived again under the edited threshold, quantization and normalization,
    as a rebuild or `tinyae threshold` derives them (the export refuses stale ones)."""
    import json
    import shutil

    from tinyae.train.calibration.spec import CalibSpec, manifest_quant
    from tinyae.train.export import write_headers
    from tinyae.train.manifest import Manifest

    shutil.copytree(model_dir, out)
    manifest = json.loads((out / "manifest.json").read_text())
    flatbuffer = edit(manifest) or (out / "model_int8.tflite").read_bytes()
    threshold = {"factory_threshold": manifest["threshold"]["value"]}
    cal = CalibSpec.from_manifest(manifest).rederive(threshold, manifest_quant(manifest))
    manifest["calibration"] = cal.to_manifest()
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    write_headers(Manifest.from_dict(manifest), flatbuffer, out)
    return out
