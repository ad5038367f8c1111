"""The compiled engine on Cortex-M4: -Werror cross-compile, size of engine + model, and the DSP
(SXTB16/SMLAD) kernel path run under QEMU mps2-an386, bit-exact with tflite_micro.

Uses the bare-metal target's startup, timer and semihosting files (firmware/targets/mps2_an386)
with a small test main generated here; prints the instruction count of one inference.
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
import random_models as rm

from tools.hostbuild import CORE_DIR, ROOT
from train.compiled import render

SRC = CORE_DIR / "src"
TARGET = ROOT / "firmware" / "targets" / "mps2_an386"
CFLAGS = [
    "-std=c99", "-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard", "-Os",
    "-Wall", "-Wextra", "-Werror", "-ffp-contract=off", "-ffunction-sections", "-fdata-sections",
]  # fmt: skip

pytestmark = [
    pytest.mark.emulator,
    pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="needs arm-none-eabi-gcc"),
]


def _ae_spec(final: str | None = None, seed: int = 21) -> rm.ModelSpec:
    layers = [rm.DenseLayer(w, a) for w, a in ((64, "RELU"), (16, "RELU"), (64, "RELU"), (128, "NONE"))]
    return rm.ModelSpec(128, layers, final=final, seed=seed)


def _write_model(model: bytes, d) -> dict:
    header, source, info = render(model, "pytest")
    (d / "model_compiled.h").write_text(header)
    (d / "model_compiled.c").write_text(source)
    return info


def test_cross_compile_size_128_64_16_64_128(tmp_path) -> None:
    info = _write_model(rm.build_model(_ae_spec()), tmp_path)
    objs = []
    for src in (tmp_path / "model_compiled.c", SRC / "tae_kernels.c", SRC / "tae_engine_compiled.c"):
        obj = tmp_path / (src.stem + ".o")
        proc = subprocess.run(
            ["arm-none-eabi-gcc", *CFLAGS, f"-I{tmp_path}", f"-I{SRC}", "-c", str(src), "-o", str(obj)],
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stderr
        objs.append(str(obj))
    size = subprocess.run(["arm-none-eabi-size", "-t", *objs], capture_output=True, text=True, check=True)
    text, data, bss = (int(v) for v in size.stdout.strip().splitlines()[-1].split()[:3])
    print(f"engine+model 128-64-16-64-128: text {text} data {data} bss {bss}")
    assert bss == info["scratch_bytes"]
    assert text + data <= 23_500  # flash budget for engine + model
    assert data + bss <= 650  # static RAM budget


BENCH_MAIN = r"""
#include <stdint.h>
#include "model_compiled.h"
#include "bench_inputs.h"
void tae_timer_init(void);
uint64_t tae_timer_instructions(void);
void tae_semihost_write0(const char *s);
static int8_t out[TAE_COMPILED_OUTPUT_SIZE];
static char line[16];
static void put_u(uint32_t v) {
    char t[12]; int n = 0, i = 0;
    do { t[n++] = (char)('0' + v % 10u); v /= 10u; } while (v);
    while (n) line[i++] = t[--n];
    line[i++] = '\n'; line[i] = 0;
    tae_semihost_write0(line);
}
int main(void) {
    uint32_t hash = 2166136261u;
    tae_timer_init();
    uint64_t a = tae_timer_instructions(), b = tae_timer_instructions(), c = b;
    const uint64_t overhead = b - a;
    for (uint32_t r = 0; r < BENCH_ROWS; ++r) {
        b = tae_timer_instructions();
        tae_compiled_invoke(bench_inputs[r], out);
        c = tae_timer_instructions();
        for (uint32_t i = 0; i < TAE_COMPILED_OUTPUT_SIZE; ++i) hash = (hash ^ (uint8_t)out[i]) * 16777619u;
    }
    put_u(hash);
    put_u((uint32_t)((c - b) - overhead));
    return 0;
}
"""


@pytest.mark.skipif(shutil.which("qemu-system-arm") is None, reason="needs qemu-system-arm")
@pytest.mark.parametrize("final", [None, "LOGISTIC"])
def test_dsp_kernels_bitexact_on_qemu(final, tmp_path) -> None:
    spec = _ae_spec(final, seed=31)
    model = rm.build_model(spec)
    _write_model(model, tmp_path)
    x = rm.random_inputs(np.random.default_rng(8), spec.inputs, 12)
    rows = ",\n".join("{" + ",".join(str(int(v)) for v in row) + "}" for row in x)
    decl = f"static const int8_t bench_inputs[{len(x)}][{spec.inputs}]"
    (tmp_path / "bench_inputs.h").write_text(f"#define BENCH_ROWS {len(x)}u\n{decl} = {{\n{rows}\n}};\n")
    (tmp_path / "bench.c").write_text(BENCH_MAIN)
    elf = tmp_path / "bench.elf"
    srcs = [tmp_path / "bench.c", tmp_path / "model_compiled.c", SRC / "tae_kernels.c"]
    srcs += [TARGET / f for f in ("startup.c", "timer.c", "semihost.c", "fault.c", "uart.c")]
    flags = [f for f in CFLAGS if f not in ("-Wextra", "-Werror")]
    cmd = ["arm-none-eabi-gcc", *flags, f"-I{tmp_path}", f"-I{SRC}", f"-I{TARGET}", "-nostartfiles",
           "--specs=nano.specs", "-Wl,--gc-sections", "-T", str(TARGET / "mps2_an386.ld"), "-o", str(elf),
           *map(str, srcs), "-lc", "-lgcc"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    run = subprocess.run(
        ["qemu-system-arm", "-M", "mps2-an386", "-nographic", "-monitor", "none", "-serial", "none",
         "-icount", "shift=6", "-semihosting-config", "enable=on,target=native", "-kernel", str(elf)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    # QEMU writes semihosting console output to stderr when stdout is not a terminal
    hash_line, instr_line = (run.stdout + run.stderr).split()[:2]
    ref = rm.run_tflm(model, x)
    h = 2166136261
    for v in ref.reshape(-1).view(np.uint8):
        h = ((h ^ int(v)) * 16777619) & 0xFFFFFFFF
    assert int(hash_line) == h, "Cortex-M4 DSP path differs from tflite_micro"
    print(f"instructions per inference (final={final}): {instr_line}")
