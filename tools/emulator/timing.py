"""Estimated cycles and milliseconds per window on the Cortex-M4F boards, from the exact instruction
stream of the model's own code on the emulated board.

ESTIMATES, not measurements. How they are made:
1. A window harness (window_app.c beside this file) runs the real per-sample pipeline, tae_pipeline_push()
   (window assembly, front-end, normalization, int8 quantization, the engine, the score, the decision),
   with the model's engine (the compiled engine, or a pinned TFLM library as the board builds it) on the
   host reference's raw test samples, and checks every window's int8 outputs against the host
   reference's. It is built with mk/firmware-emu.mk's flags (-Os).
2. QEMU runs it one instruction at a time and logs every executed address (trace.py); the log is cut
   into the calls of tae_pipeline_push, tae_engine_invoke and tae_score. The count is checked against
   the harness's own SysTick counts under -icount: every window's push must differ from its traced length
   by the measurement's call overhead, the same within MAX_SPREAD instructions, or the estimate is
   refused.
3. Each instruction is weighted by the Cortex-M4 Technical Reference Manual's cycle timings
   (cm4cycles.py: its docstring lists the timings, the choices within the TRM's ranges and the
   assumptions: zero wait states, i.e. cache hits on the nRF52840, aligned data, no bus contention).
   `low` and `high` bound those choices; wait states and cache misses are in neither.
4. Milliseconds = cycles / the board's clock (budgets.toml `clock_hz`: the Nano 33 BLE's nRF52840 runs
   at 64 MHz; the emulated board stands for it).

Phases, per window: the engine (tae_engine_invoke), scoring (tae_score), the front-end (the rest of the
push that completes the window: features or the raw copy, normalization, int8 quantization, the
decision), and the whole window = that push + (hop - 1) pushes of the samples in between. What the
firmware does around them (the protocol's frames, the UART's interrupts, reading the sensor) is not in
it; the real-time budget (budgets.toml `window_time`) leaves room for that.

For the ESP32 (Xtensa LX6), nothing here applies: there is no Xtensa simulator or compiler here, so its
time per window is not estimated (budgets.toml gives it no `core = "cortex-m4f"`).

Results are kept in build/timing/<digest>.json, the digest over the harness image's bytes (its sources,
flags, compiler and model), the cycle model and this file, so an unchanged model is traced once.
"""

from __future__ import annotations

import hashlib
import json
import re
import statistics
from pathlib import Path

import numpy as np

from tinyae.errors import UserError
from tinyae.paths import ROOT
from tinyae.tools.emulator import cm4cycles, harness, trace

WINDOW_APP = Path(__file__).resolve().parent / "window_app.c"
WINDOWS = 3
# The trace and the -icount count of a window's push differ by the measurement's call overhead (5-6
# instructions whatever the window's length: 6 in each of the default model's 44,600-instruction windows, 5
# in the 4.1 M of the MLPerf-size model with TFLM's reference kernels); a larger spread means a broken
# trace, and no estimate is made from it.
MAX_SPREAD = 2
CACHE = ROOT / "build" / "timing"
CORE_SRCS = ("tae_pipeline.c", "tae_frontend.c")
PHASES = ("frontend", "engine", "score", "window")
PHASE_NAMES = {
    "frontend": "front-end (features, normalization, int8 quantization, decision)",
    "engine": "engine (tae_engine_invoke)",
    "score": "scoring (tae_score)",
    "window": "whole window (the hop's pushes: window assembly + the above)",
}
_HEAD = re.compile(r"TIMING windows=(\d+) hop=(\d+) mismatches=(\d+) empty=(\d+)")
_PUSH = re.compile(r"TIMING w=(\d+) push=(\d+)")
METHOD = (
    "ESTIMATE: the model's real per-sample pipeline and engine (-Os) run on the emulated Cortex-M4F "
    "(QEMU mps2-an386), traced instruction by instruction (count checked against -icount); each "
    "instruction weighted by the Cortex-M4 TRM's cycle timings (ARM DDI 0439B: loads 2 cycles, pipelined "
    "to 1; MAC/SIMD 1; SDIV 2-12; taken branch 1 + refill 1-3; LDM/STM 1 + N; VFP 1/3/14) at zero wait "
    "states (nRF52840 cache hits), aligned data, no bus contention; low/high bound the model's choices "
    "within the TRM's ranges, not wait states or cache misses. Not a measurement."
)


def samples_header(model_dir: Path, out: Path, windows: int) -> int:
    """window_samples.h: the first windows' raw samples and the host reference's int8 outputs."""
    manifest = json.loads((model_dir / "manifest.json").read_text())
    length, hop = int(manifest["window"]["length"]), int(manifest["window"]["hop"])
    with np.load(model_dir / "test_vectors.npz") as vec:
        series = np.asarray(vec["series"], np.float32)
        expected = np.asarray(vec["output_q"], np.int8)
    n = min(windows, len(expected), max(0, (len(series) - length) // hop + 1))
    if n == 0:
        raise UserError(
            f"{model_dir}/test_vectors.npz holds no whole window; retrain with a longer test split"
        )
    x = series[: length + (n - 1) * hop].ravel()

    def rows(values: list[str]) -> str:
        return ",\n    ".join(", ".join(values[i : i + 12]) for i in range(0, len(values), 12))

    floats = [f"{float(v):.9g}f" if np.isfinite(v) else "0.0f" for v in x]
    out.write_text(
        "/* Generated by tools/emulator/timing.py (window timing harness) from "
        f"{model_dir.name}/test_vectors.npz — do not edit. */\n"
        "#ifndef TAE_WINDOW_SAMPLES_H\n#define TAE_WINDOW_SAMPLES_H\n#include <stdint.h>\n"
        f"#define TAE_TIMING_SAMPLES {len(x) // int(manifest['window']['channels'])}u\n"
        f"#define TAE_TIMING_WINDOWS {n}u\n"
        f"static const float tae_timing_samples[{len(x)}] = {{\n    {rows(floats)}\n}};\n"
        f"static const int8_t tae_timing_expected[{n * expected.shape[1]}] = {{\n    "
        + rows([str(int(v)) for v in expected[:n].ravel()])
        + "\n};\n#endif\n"
    )
    return n


def build(
    model_dir: Path, out_dir: Path, engine: str = "compiled", windows: int = WINDOWS
) -> tuple[Path, str]:
    """The window harness for `model_dir` with `engine` ("compiled", or a TFLM library: "chirale",
    "upstream"); its ELF and command line."""
    out_dir.mkdir(parents=True, exist_ok=True)
    samples_header(model_dir, out_dir / "window_samples.h", windows)
    srcs = [str(harness.TARGET_DIR / s) for s in harness.TARGET_SRCS] + [str(WINDOW_APP)]
    srcs += [str(harness.CORE_DIR / s) for s in CORE_SRCS]
    if engine == "compiled":
        srcs += [str(harness.CORE_DIR / s) for s in harness.ENGINE_SRCS] + [
            str(model_dir / "model_compiled.c")
        ]
        arch = harness.ARCH
    else:
        srcs += harness.tflm_objects(model_dir, out_dir, engine)
        arch = harness.ARCH_SOFTFP
    elf = out_dir / "window.elf"
    argv = harness.link(elf, srcs, [model_dir, out_dir], [], "-Os", arch)
    return elf, " ".join(harness.relative(argv))


QUALITIES = ("nominal", "low", "high")
PARAMS = (cm4cycles.NOMINAL, cm4cycles.LOW, cm4cycles.HIGH)


def _digest(elf: Path, windows: int) -> str:
    h = hashlib.sha256(elf.read_bytes())
    for f in (Path(cm4cycles.__file__), Path(trace.__file__), Path(__file__)):
        h.update(f.read_bytes())
    h.update(str(windows).encode())
    return h.hexdigest()[:24]


def measure(
    model_dir: Path, engine: str = "compiled", *, windows: int = WINDOWS, work: Path | None = None
) -> dict:
    """Per-phase instructions (exact) and estimated cycles (nominal, low, high) of one window of
    `model_dir` with `engine`; cached in build/timing/ by the image's content."""
    manifest = json.loads((model_dir / "manifest.json").read_text())
    where = hashlib.sha256(str(model_dir.resolve()).encode()).hexdigest()[:8]  # one folder per model dir
    work = work or ROOT / "build" / "timing" / "images" / f"{model_dir.name}-{where}-{engine}"
    elf, command = build(model_dir, work, engine, windows)
    cached = CACHE / f"{_digest(elf, windows)}.json"
    if cached.is_file():
        res = json.loads(cached.read_text())
        _remember(res.get("model_sha256", ""), engine, cached)
        return res
    image = trace.disassemble(elf)
    names = {
        x for x in ("tae_pipeline_push", "tae_engine_invoke", "tae_score") if x in image.functions.values()
    }
    calls, uart = trace.run(elf, lambda pcs: trace.calls(pcs, image, names, PARAMS))
    head = _HEAD.search(uart)
    if head is None:
        raise UserError(f"the window harness {elf} printed no TIMING line: {uart[-200:]!r}")
    n, hop, mismatches, _empty = (int(v) for v in head.groups())
    measured = {int(w): int(c) for w, c in _PUSH.findall(uart)}
    pushes = [c for c in calls if c.function == "tae_pipeline_push"]
    inner = [c for c in calls if c.function != "tae_pipeline_push"]
    window_pushes = [
        p for p in pushes if any(p.contains(c) and c.function == "tae_engine_invoke" for c in inner)
    ]
    if len(window_pushes) != n or len(measured) != n:
        raise UserError(f"the trace of {elf} shows {len(window_pushes)} windows, the harness {n}")
    deltas = [measured[w] - p.instructions for w, p in enumerate(window_pushes)]
    if max(abs(d) for d in deltas) > 24 or max(deltas) - min(deltas) > MAX_SPREAD:
        raise UserError(
            f"the instruction trace of {elf} disagrees with its -icount counts (differences {deltas}); "
            "no estimate is made from it"
        )
    first, last = window_pushes[0].start, window_pushes[-1].start
    samples = [p for p in pushes if p not in window_pushes and (n == 1 or first < p.start < last)]
    samples = samples or [p for p in pushes if p not in window_pushes]
    sample_instr = statistics.mean(p.instructions for p in samples) if samples else 0.0
    sample_cyc = [statistics.mean(p.cycles()[q] for p in samples) if samples else 0.0 for q in range(3)]
    rows: dict[str, list[list[float]]] = {
        k: [] for k in PHASES
    }  # phase -> per window [instr, nom, low, high]
    for wp in window_pushes:
        parts = {c.function: c for c in inner if wp.contains(c)}
        eng, sc = parts.get("tae_engine_invoke"), parts.get("tae_score")
        e: list[float] = [eng.instructions, *eng.cycles()] if eng else [0.0, 0.0, 0.0, 0.0]
        c: list[float] = [sc.instructions, *sc.cycles()] if sc else [0.0, 0.0, 0.0, 0.0]
        w: list[float] = [wp.instructions, *wp.cycles()]
        rows["engine"].append(e)
        rows["score"].append(c)
        rows["frontend"].append([w[k] - e[k] - c[k] for k in range(4)])
        rows["window"].append(
            [w[0] + (hop - 1) * sample_instr] + [w[1 + q] + (hop - 1) * sample_cyc[q] for q in range(3)]
        )
    med = {k: [statistics.median(r[j] for r in v) for j in range(4)] for k, v in rows.items()}
    eng0 = next(c for c in inner if window_pushes[0].contains(c) and c.function == "tae_engine_invoke")
    res = {
        "method": METHOD,
        "model_sha256": manifest["model"].get("sha256", ""),
        "engine": engine,
        "engine_name": "compiled engine (tinyae)" if engine == "compiled" else harness.TFLM_LIBS[engine],
        "windows": n,
        "hop": hop,
        "sample_rate_hz": manifest["window"].get("sample_rate_hz")
        or manifest.get("data", {}).get("sample_rate_hz"),
        "bit_exact_windows": n - mismatches,
        "instructions": {k: round(v[0]) for k, v in med.items()},
        "cycles": {k: {q: round(v[1 + j]) for j, q in enumerate(QUALITIES)} for k, v in med.items()},
        "engine_by_class": {
            cls: {"instructions": v[0], "cycles": v[1]}
            for cls, v in sorted(eng0.counters[0].tally.by_class.items(), key=lambda kv: -kv[1][1])
        },
        "icount_check": {
            "windows": n,
            "push_instructions_measured": [measured[w] for w in range(n)],
            "push_instructions_traced": [p.instructions for p in window_pushes],
            "differences": deltas,
        },
        "image": command,
    }
    CACHE.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps(res, indent=1) + "\n")
    _remember(res["model_sha256"], engine, cached)
    return res


def _remember(model_sha256: str, engine: str, path: Path) -> None:
    """Note the latest traced result of a model and engine (build/timing/latest/), for last_traced()."""
    if not model_sha256:
        return
    latest = CACHE / "latest"
    latest.mkdir(parents=True, exist_ok=True)
    (latest / f"{model_sha256[:24]}-{engine}.json").write_text(path.read_text())


def last_traced(model_sha256: str, engine: str) -> dict | None:
    """The latest traced result of this model (by its sha256) and engine, if any run traced it (make budget,
    make bench, `tinyae budget estimate --timing`): nothing is built or run."""
    path = CACHE / "latest" / f"{model_sha256[:24]}-{engine}.json"
    return json.loads(path.read_text()) if model_sha256 and path.is_file() else None


def milliseconds(cycles: dict, clock_hz: float) -> dict:
    """A phase's cycles (nominal, low, high) as milliseconds at `clock_hz`."""
    return {q: round(1000.0 * v / clock_hz, 4) for q, v in cycles.items()}
