"""The compiled engine on Cortex-M4: -Werror cross-compile, size of engine + model, and the DSP
(SXTB16/UXTB16/SMLAD/SMMULR/SEL) kernel paths run under QEMU mps2-an386, bit-exact with tflite_micro.

Uses the bare-metal target's startup, timer and semihosting files (firmware/targets/mps2_an386)
with a small test main generated here. Several generated models are linked into one image (each
model's tae_compiled_invoke renamed with -D), so one QEMU run checks many models. Prints the
instruction count of one inference, per stage, and the ratios to TFLM's figures in DESIGN.md.
"""

from __future__ import annotations

import itertools
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import random_models as rm
from test_compiled_bitexact import narrow_per_channel

from tinyae.hostbuild import CORE_DIR, ROOT
from tinyae.train.compiled import render
from tinyae.train.int8.arithmetic import TFLITE_MICRO

SRC = CORE_DIR / "src"
TARGET = ROOT / "firmware" / "targets" / "mps2_an386"
CFLAGS = [
    "-std=c99", "-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard", "-Os",
    "-Wall", "-Wextra", "-Werror", "-ffp-contract=off", "-ffunction-sections", "-fdata-sections",
]  # fmt: skip
# TFLM on the same emulated Cortex-M4F and network (DESIGN.md, "Figures to beat")
TFLM_INSTR_CMSIS_O2 = 52_036
TFLM_INSTR_CMSIS_OS = 72_268
TFLM_LOGISTIC_EXTRA_O2 = 47_000
TFLM_FLASH = 47_044
TFLM_RAM = 4_300

pytestmark = [
    pytest.mark.emulator,
    pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="needs arm-none-eabi-gcc"),
]
needs_qemu = pytest.mark.skipif(shutil.which("qemu-system-arm") is None, reason="needs qemu-system-arm")


def _ae_spec(
    final: str | None = None, seed: int = 21, widths=(128, 64, 16, 64, 128), per_channel: bool = False
) -> rm.ModelSpec:
    acts = ["RELU"] * (len(widths) - 2) + ["NONE"]
    layers = [rm.DenseLayer(w, a, per_channel=per_channel) for w, a in zip(widths[1:], acts, strict=True)]
    spec = rm.ModelSpec(widths[0], layers, final=final, seed=seed)
    if per_channel:  # row scales within a factor 8, as TensorFlow's converter writes them
        spec.weight_scale_log10 = (-2.4, -1.5)
    return spec


def _write_model(model: bytes, d: Path, layouts: str = "auto") -> dict:
    d.mkdir(parents=True, exist_ok=True)
    header, source, info = render(model, "pytest", layouts=layouts, arithmetic=TFLITE_MICRO)
    (d / "model_compiled.h").write_text(header)
    (d / "model_compiled.c").write_text(source)
    return info


def _compile(src: Path, obj: Path, includes: list[Path], extra: list[str] = ()) -> None:
    incs = [f"-I{p}" for p in includes]
    proc = subprocess.run(
        ["arm-none-eabi-gcc", *CFLAGS, *extra, *incs, "-c", str(src), "-o", str(obj)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr


def test_cross_compile_size_128_64_16_64_128(tmp_path) -> None:
    info = _write_model(rm.build_model(_ae_spec()), tmp_path)
    objs = []
    for src in (tmp_path / "model_compiled.c", SRC / "tae_kernels.c", SRC / "tae_engine_compiled.c"):
        obj = tmp_path / (src.stem + ".o")
        _compile(src, obj, [tmp_path, SRC])
        objs.append(str(obj))
    size = subprocess.run(["arm-none-eabi-size", "-t", *objs], capture_output=True, text=True, check=True)
    text, data, bss = (int(v) for v in size.stdout.strip().splitlines()[-1].split()[:3])
    flash, ram = text + data, data + bss
    print(
        f"\nengine+model 128-64-16-64-128: text {text} data {data} bss {bss}; flash {flash} B "
        f"({flash / TFLM_FLASH:.2f} x TFLM's {TFLM_FLASH}), "
        f"RAM {ram} B ({ram / TFLM_RAM:.3f} x TFLM's {TFLM_RAM}); "
        f"constants {info['const_bytes']} B"
    )
    assert bss == info["scratch_bytes"]
    assert flash <= 23_500  # flash budget for engine + model
    assert ram <= 650  # static RAM budget


@dataclass
class _Case:
    name: str
    model: bytes
    inputs: np.ndarray
    layouts: str = "auto"
    profile: bool = False


MAIN_HEAD = r"""
#include <stdint.h>
void tae_timer_init(void);
uint64_t tae_timer_instructions(void);
void tae_semihost_write0(const char *s);
static char line[160];
static uint32_t pos;
static void put_s(const char *s) { while (*s) line[pos++] = *s++; }
static void put_u(uint32_t v) {
    char t[12]; int n = 0;
    do { t[n++] = (char)('0' + v % 10u); v /= 10u; } while (v);
    while (n) line[pos++] = t[--n];
    line[pos++] = ' ';
}
static void flush(void) { line[pos++] = '\n'; line[pos] = 0; tae_semihost_write0(line); pos = 0; }
static uint64_t prof[16];
void tae_prof(uint32_t stage) { prof[stage] = tae_timer_instructions(); }
static uint32_t run(int (*invoke)(const int8_t *, int8_t *), const int8_t *in, uint32_t n_in, uint32_t rows,
                    int8_t *out, uint32_t n_out, uint32_t stages, uint32_t overhead, uint32_t prof_overhead) {
    uint32_t hash = 2166136261u, cost = 0;
    for (uint32_t r = 0; r < rows; ++r) {
        uint64_t b = tae_timer_instructions();
        invoke(in + r * n_in, out);
        uint64_t c = tae_timer_instructions();
        cost = (uint32_t)(c - b) - overhead;
        for (uint32_t i = 0; i < n_out; ++i) hash = (hash ^ (uint8_t)out[i]) * 16777619u;
    }
    put_u(hash);
    put_u(cost);
    for (uint32_t s = 0; s < stages; ++s) put_u((uint32_t)(prof[s + 1] - prof[s]) - prof_overhead);
    flush();
    return hash;
}
"""


def _link_and_run(tmp_path: Path, main: str, objs: list[Path], kernel_opt: str = "-Os") -> list[list[str]]:
    """Link `main` (C text) with tae_kernels.c (built with `kernel_opt`), the target's runtime and
    `objs`; run it on QEMU with -icount; return its semihosting output lines, split into words."""
    (tmp_path / "bench.c").write_text(main)
    kernels = tmp_path / "tae_kernels.o"
    _compile(SRC / "tae_kernels.c", kernels, [SRC], [kernel_opt])
    objs = [*objs, kernels]
    flags = [f for f in CFLAGS if f not in ("-Wextra", "-Werror")]
    srcs = [tmp_path / "bench.c"]
    srcs += [TARGET / f for f in ("startup.c", "timer.c", "semihost.c", "fault.c", "uart.c")]
    elf = tmp_path / "bench.elf"
    cmd = ["arm-none-eabi-gcc", *flags, f"-I{SRC}", f"-I{TARGET}", "-nostartfiles", "--specs=nano.specs",
           "-Wl,--gc-sections", "-T", str(TARGET / "mps2_an386.ld"), "-o", str(elf), *map(str, srcs),
           *map(str, objs), "-lc", "-lgcc"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    run = subprocess.run(
        ["qemu-system-arm", "-M", "mps2-an386", "-nographic", "-monitor", "none", "-serial", "none",
         "-icount", "shift=6", "-semihosting-config", "enable=on,target=native", "-kernel", str(elf)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    # QEMU writes semihosting console output to stderr when stdout is not a terminal
    return [ln.split() for ln in (run.stdout + run.stderr).splitlines() if ln.strip()]


def _run_cases(
    cases: list[_Case], tmp_path: Path, kernel_opt: str = "-Os"
) -> list[tuple[int, int, list[int]]]:
    """Build one image with every case's generated model, run it on QEMU; per case (hash of all
    outputs, instructions of the last inference, per-stage instructions when profiled)."""
    objs: list[Path] = []
    decls, calls = [], []
    stage_counts = []
    for i, c in enumerate(cases):
        d = tmp_path / f"m{i}"
        info = _write_model(c.model, d, c.layouts)
        stage_counts.append(info["stages"] if c.profile else 0)
        extra = [f"-Dtae_compiled_invoke=tae_compiled_invoke_{i}"]
        if c.profile:
            (d / "prof.h").write_text("#include <stdint.h>\nvoid tae_prof(uint32_t stage);\n")
            extra += ["-DTAE_COMPILED_PROFILE(s)=tae_prof(s)", "-include", str(d / "prof.h")]
        _compile(d / "model_compiled.c", d / "model.o", [d, SRC], extra)
        objs.append(d / "model.o")
        rows, n_in = c.inputs.shape
        data = ",".join(str(int(v)) for v in c.inputs.reshape(-1))
        n_out = info["output_size"]
        decls.append(f"int tae_compiled_invoke_{i}(const int8_t *in, int8_t *out);")
        decls.append(f"static const int8_t in_{i}[{rows * n_in}] = {{{data}}};")
        decls.append(f"static int8_t out_{i}[{n_out}];")
        calls.append(
            f"    run(tae_compiled_invoke_{i}, in_{i}, {n_in}u, {rows}u, out_{i}, {n_out}u, "
            f"{stage_counts[-1]}u, overhead, prof_overhead);"
        )
    main = (
        MAIN_HEAD
        + "\n".join(decls)
        + "\nint main(void) {\n    tae_timer_init();\n"
        + "    uint64_t a = tae_timer_instructions(), b = tae_timer_instructions();\n"
        + "    const uint32_t overhead = (uint32_t)(b - a);\n"
        + "    tae_prof(0); tae_prof(1);\n"
        + "    const uint32_t prof_overhead = (uint32_t)(prof[1] - prof[0]);\n"
        + "\n".join(calls)
        + "\n    return 0;\n}\n"
    )
    lines = _link_and_run(tmp_path, main, objs, kernel_opt)
    assert len(lines) == len(cases), lines
    return [(int(ln[0]), int(ln[1]), [int(v) for v in ln[2:]]) for ln in lines]


def _hash(ref: np.ndarray) -> int:
    h = 2166136261
    for v in ref.reshape(-1).view(np.uint8):
        h = ((h ^ int(v)) * 16777619) & 0xFFFFFFFF
    return h


def _stage_names(model: bytes) -> list[str]:
    from tinyae.train.int8.lower import FcStage, lower
    from tinyae.train.tflite import read_tflite

    names = []
    for st in lower(read_tflite(model), TFLITE_MICRO).stages:
        if isinstance(st, FcStage):
            extra = f"+{'+'.join(st.lut_ops)}" if st.lut_ops else ""
            names.append(f"FC {st.in_features}->{st.out_features} {st.activation}{extra}")
        else:
            names.append("+".join(st.lut_ops))
    return names


@needs_qemu
def test_dsp_kernels_bitexact_and_cost_on_qemu(tmp_path) -> None:
    """The reference autoencoder (linear and LOGISTIC output), bit-exact, with instruction counts
    per inference and per stage, and a small width sweep of the same shape."""
    cases, specs = [], []
    for final in (None, "LOGISTIC"):
        for profile in (False, True):
            spec = _ae_spec(final, seed=31)
            specs.append(spec)
            x = rm.random_inputs(np.random.default_rng(8), spec.inputs, 12)
            cases.append(_Case(f"ae final={final}", rm.build_model(spec), x, profile=profile))
    sweep = [(32, 16, 4, 16, 32), (64, 32, 8, 32, 64), (256, 128, 32, 128, 256)]
    for widths in sweep:
        spec = _ae_spec(None, seed=32, widths=widths)
        specs.append(spec)
        cases.append(
            _Case(
                f"sweep {widths}",
                rm.build_model(spec),
                rm.random_inputs(np.random.default_rng(9), widths[0], 3),
            )
        )
    # per-channel weights (what TensorFlow's converter writes for Dense layers, as tinyae's own model)
    pc_shapes = [(128, 64, 16, 64, 128), (192, 64, 8, 64, 192)]
    for widths in pc_shapes:
        spec = _ae_spec(None, seed=33, widths=widths, per_channel=True)
        x = rm.random_inputs(np.random.default_rng(10), widths[0], 3)
        cases.append(_Case(f"per-channel {widths}", rm.build_model(spec), x))
    results = _run_cases(cases, tmp_path)
    for c, (h, _, _) in zip(cases, results, strict=True):
        assert h == _hash(rm.run_tflm(c.model, c.inputs)), (
            f"{c.name}: Cortex-M4 DSP path differs from tflite_micro"
        )
    macs = 18_432
    lin, logi = results[0][1], results[2][1]
    print(f"\n128-64-16-64-128 ({macs} MACs) on the emulated Cortex-M4F, instructions per inference:")
    print(
        f"  linear output: {lin} ({lin / macs:.2f}/MAC); TFLM+CMSIS-NN -O2 {TFLM_INSTR_CMSIS_O2} "
        f"(ratio {lin / TFLM_INSTR_CMSIS_O2:.3f}), "
        f"-Os {TFLM_INSTR_CMSIS_OS} (ratio {lin / TFLM_INSTR_CMSIS_OS:.3f})"
    )
    tflm_logi = TFLM_INSTR_CMSIS_O2 + TFLM_LOGISTIC_EXTRA_O2
    print(
        f"  + final LOGISTIC: {logi} (+{logi - lin}); TFLM+CMSIS-NN -O2 about {tflm_logi} "
        f"(ratio {logi / tflm_logi:.3f})"
    )
    for idx, label in ((1, "linear"), (3, "LOGISTIC")):
        per = results[idx][2]
        names = _stage_names(cases[idx].model)
        print(f"  per stage ({label}; profiled build, total {sum(per)}):")
        for name, cost in zip(names, per, strict=True):
            print(f"    {name:<28} {cost:>6}")
    print("  width sweep (linear output, ReLU hidden layers):")
    for widths, (_, cost, _) in zip(sweep, results[4:7], strict=True):
        m = sum(a * b for a, b in itertools.pairwise(widths))
        print(f"    {'-'.join(map(str, widths)):<22} {m:>6} MACs {cost:>7} instr ({cost / m:.2f}/MAC)")
    print("  per-channel weights (linear output, ReLU hidden layers):")
    for widths, (_, cost, _) in zip(pc_shapes, results[7:], strict=True):
        m = sum(a * b for a, b in itertools.pairwise(widths))
        print(f"    {'-'.join(map(str, widths)):<22} {m:>6} MACs {cost:>7} instr ({cost / m:.2f}/MAC)")
    assert lin <= 26_000 and logi <= 30_000


@needs_qemu
@pytest.mark.parametrize("kernel_opt", ["-Os", "-O0"])
def test_dsp_kernels_random_models_bitexact_on_qemu(kernel_opt, tmp_path) -> None:
    """Random models (odd widths, per-channel, RELU6, tables, extreme scales) through every kernel
    path on the Cortex-M4: the generator's choice, the plain layout and the general requantization
    (-O0: no whole-layer assembly loops, the per-block path for every block)."""
    rng = np.random.default_rng(41)
    cases = []
    for k, seed in enumerate(range(3000, 3036)):
        spec = rm.random_spec(seed, max_width=96)
        if k % 2:  # paired per-channel layers (narrow weight scales) besides the plain fallback
            spec = narrow_per_channel(spec, rng)
        layouts = ("auto", "plain", "general")[k % 3]
        model = rm.build_model(spec)
        cases.append(_Case(f"seed {seed} {layouts}", model, rm.random_inputs(rng, spec.inputs, 5), layouts))
    results = _run_cases(cases, tmp_path, kernel_opt)
    bad = [
        c.name
        for c, (h, _, _) in zip(cases, results, strict=True)
        if h != _hash(rm.run_tflm(c.model, c.inputs))
    ]
    assert not bad, f"Cortex-M4 DSP path differs from tflite_micro on {bad}"


@needs_qemu
def test_fast_requantization_edges_on_qemu(tmp_path) -> None:
    """The SMMULR/SMMLAR requantization on the Cortex-M4 equals TFLite's MultiplyByQuantizedMultiplier
    plus the zero point on the edges of its domain (the same cases as the host test)."""
    from tinyae.train.int8 import quant

    cases = rm.fast_requant_cases(np.random.default_rng(6))
    rows = ",\n".join(f"{{{a}, {m}, {s}, {z}}}" for a, m, s, z in cases)
    main = (
        '#include <stdint.h>\n#include "tae_kernels.h"\n'
        "void tae_semihost_write0(const char *s);\n"
        f"static const int32_t cases[{len(cases)}][4] = {{\n{rows}\n}};\n"
        "int main(void) {\n    uint32_t h = 2166136261u;\n"
        f"    for (uint32_t i = 0; i < {len(cases)}u; ++i) {{\n"
        "        const int32_t *c = cases[i];\n"
        "        uint32_t v = (uint32_t)tae_requantize_fast(c[0], c[1], (int)c[2], c[3]);\n"
        "        for (int b = 0; b < 4; ++b) h = (h ^ ((v >> (8 * b)) & 0xFFu)) * 16777619u;\n"
        "    }\n"
        "    char t[12], line[13]; int n = 0, k = 0;\n"
        "    do { t[n++] = (char)('0' + h % 10u); h /= 10u; } while (h);\n"
        "    while (n) line[k++] = t[--n];\n    line[k++] = '\\n'; line[k] = 0;\n"
        "    tae_semihost_write0(line);\n    return 0;\n}\n"
    )
    lines = _link_and_run(tmp_path, main, [])
    expect = np.array(
        [quant.multiply_by_quantized_multiplier(a, m, s) + z for a, m, s, z in cases], dtype=np.int32
    )
    assert int(lines[0][0]) == _hash(expect.view(np.int8)), (
        "Cortex-M4 fast requantization differs from TFLite's"
    )
