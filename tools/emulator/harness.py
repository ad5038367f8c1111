"""Harness images for the emulated Cortex-M4F: a stand-in application (bench_app.c, window_app.c) linked
with the mps2_an386 target, with the compiled engine or a pinned TFLM library, compiled with the flags of
mk/firmware-emu.mk. Used by the bench (tools/bench/device.py) and the window timing (timing.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tinyae.errors import UserError
from tinyae.paths import ROOT, THIRD_PARTY
from tinyae.steps import run_step

TARGET_DIR = ROOT / "firmware" / "targets" / "mps2_an386"
CORE_DIR = ROOT / "firmware" / "lib" / "tinyae" / "src"
TARGET_SRCS = ("startup.c", "uart.c", "timer.c", "fault.c", "semihost.c", "port.c", "main.c")
ENGINE_SRCS = ("tae_engine_compiled.c", "tae_kernels.c")
ARCH = ("-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard")
# The TFLM images use the board's float ABI (the Nano 33 BLE core's softfp), as mk/firmware-emu.mk does.
ARCH_SOFTFP = ("-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=softfp")
WARN = (
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wshadow",
    "-Wdouble-promotion",
    "-ffp-contract=off",
    "-fno-fast-math",
)
TFLM_LIBS = {
    "chirale": "TFLM Chirale_TensorFLowLite 2.0.0 (the nano33ble env's pin), CMSIS-NN kernels",
    "upstream": "TFLM upstream tflite-micro 90b983c, reference kernels",
}


def link(
    elf: Path, srcs: Sequence[str], include_dirs: Sequence[Path], defines: Sequence[str], opt: str = "-Os",
    arch: tuple[str, ...] = ARCH,
) -> list[str]:  # fmt: skip
    """Compile and link a harness image for the mps2_an386 target; the command line."""
    argv = [
        "arm-none-eabi-gcc", *arch, "-std=c99", opt, "-g", "-ffunction-sections", "-fdata-sections",
        "-fno-common", *WARN, f"-I{TARGET_DIR}", f"-I{CORE_DIR}", *(f"-I{d}" for d in include_dirs),
        *defines,
        "-T", str(TARGET_DIR / "mps2_an386.ld"), "-nostartfiles", "--specs=nano.specs", "-Wl,--gc-sections",
        f"-Wl,-Map={elf.with_suffix('.map')}", "-Wl,--no-warn-rwx-segments",
        "-o", str(elf), *srcs,
        "-Wl,--start-group", "-lc_nano", "-lm", "-lgcc", "-Wl,--end-group",
    ]  # fmt: skip
    run_step(argv, timeout=300)
    return argv


def tflm_library(lib: str) -> Path:
    """build/tflm/<lib>-cm4/ with libtflm.a and flags.txt: `make build/tflm/<lib>-cm4/libtflm.a`, the
    build the board-library tests share (compiled once, then up to date); UserError without sources."""
    if lib not in TFLM_LIBS:
        raise UserError(f"unknown TFLM library {lib!r}; one of {', '.join(TFLM_LIBS)}")
    target = f"build/tflm/{lib}-cm4/libtflm.a"
    try:
        run_step(
            ["make", "--no-print-directory", "-s", target],
            timeout=3600,
            env={"TAE_THIRD_PARTY": str(THIRD_PARTY)},
        )
    except UserError as exc:
        raise UserError(f"the {lib} TFLM library could not be built ({exc})") from None
    return ROOT / "build" / "tflm" / f"{lib}-cm4"


def tflm_objects(model_dir: Path, out_dir: Path, lib: str, opt: str = "-Os") -> list[str]:
    """The TFLM glue, the model's C array and the target's TFLM support compiled as mk/firmware-emu.mk
    compiles them (the library's own flags.txt, -Werror for ours), then the library: what to link."""
    lib_dir = tflm_library(lib)
    flags = (lib_dir / "flags.txt").read_text().split()
    defs = ["-DTAE_ENGINE_TFLM", *(["-DTAE_EMU_TFLM_DEBUGLOG"] if lib == "chirale" else [])]
    objs = []
    for src in (
        CORE_DIR / "tae_engine_tflm.cpp",
        model_dir / "model_data.cc",
        TARGET_DIR / "tflm_support.cpp",
    ):
        obj = out_dir / (src.name + ".o")
        argv = [
            "arm-none-eabi-g++", *ARCH_SOFTFP, opt, "-g", "-ffunction-sections", "-fdata-sections",
            "-fno-exceptions", "-fno-rtti", "-funsigned-char", "-Wall", "-Wextra", "-Werror", "-Wshadow",
            "-ffp-contract=off", "-fno-fast-math", *flags, f"-I{TARGET_DIR}", f"-I{CORE_DIR}", f"-I{model_dir}",
            *defs, "-c", str(src), "-o", str(obj),
        ]  # fmt: skip
        run_step(argv, timeout=600)
        objs.append(str(obj))
    return [*objs, str(lib_dir / "libtflm.a")]


def relative(argv: Sequence[str]) -> list[str]:
    root = str(ROOT) + "/"
    return [a.replace(root, "") for a in argv]  # inside -I, -Wl,-Map= and -o arguments too
