"""Time per window on the Cortex-M4F boards: ESTIMATED cycles and milliseconds for the front-end, the engine,
scoring and the whole window, from the exact instruction stream (tools/emulator/timing.py: a window
harness with the model's real pipeline traced on QEMU, each instruction weighted by the Cortex-M4 TRM's
timings), for the compiled engine and each pinned TFLM library; and, for a model of MLPerf Tiny's
anomaly-detection size (a 640-input dense autoencoder, 264,192 MACs), beside the latencies published in
MLPerf Tiny v1.1 for Cortex-M4F boards at 120 MHz. Not a measurement: the published figures are; the
section says which is which.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from tinyae.errors import UserError
from tinyae.tools.bench import models
from tinyae.tools.bench.models import TrainedModel
from tinyae.tools.emulator import timing
from tinyae.tools.emulator.harness import TFLM_LIBS

# MLPerf Tiny's AD network: Dense 128 x4, 8, 128 x4, 640, ReLU (batch norm folds into the int8 dense
# layers), on 640 inputs. Trained here for a few epochs on a one-channel signal the bench writes (its cost
# depends on its shape, not on what it learnt).
MLPERF_AD_NAME = "mlperf-ad-size"
MLPERF_AD_LAYERS = ("window.hop=64", "window.length=640", "model.hidden=[128,128,128,128]", "model.latent=8",
                    "train.epochs=3")  # fmt: skip
MLPERF_AD_NOTE = (
    "640-128-128-128-128-8-128-128-128-128-640, the shape of MLPerf Tiny's anomaly-detection autoencoder"
)


def mlperf_spec(model_dir: Path) -> models.ModelSpec:
    """The spec, with its one-channel training signal written beside the models (sines and noise)."""
    csv = model_dir / f"{MLPERF_AD_NAME}.csv"
    if not csv.is_file():
        csv.parent.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(0)
        t = np.arange(30_000)
        x = np.sin(2 * np.pi * t / 97.0) + 0.3 * np.sin(2 * np.pi * t / 13.0) + 0.1 * rng.normal(size=t.size)
        csv.write_text("value\n" + "".join(f"{v:.6f}\n" for v in x))
    data = ("data.source=csv", f'data.paths=["{csv}"]', "data.sample_rate_hz=1000")
    return models.ModelSpec(MLPERF_AD_NAME, (*data, *MLPERF_AD_LAYERS), MLPERF_AD_NOTE)


# Published latencies of MLPerf Tiny v1.1's anomaly-detection benchmark (closed division) on Cortex-M4F
# boards at 120 MHz: github.com/mlcommons/tiny_results_v1.1, closed/<submitter>/results/*L4R5ZI*/ad/
# performance/results.txt (STM32L4R5ZI: Cortex-M4F, 120 MHz, flash with wait states behind ST's ART
# accelerator). Quoted, with their source; they are the figures users compare against.
MLPERF_V11_AD_M4F_120MHZ_MS = {
    "Plumerai": 4.05,
    "Bosch": 5.66,
    "STM32Cube.AI": 6.86,
    "microTVM (CMSIS-NN)": 8.6,
}
MLPERF_CLOCK_HZ = 120e6


def boards() -> dict[str, float]:
    """Cortex-M4F targets of budgets.toml and their clocks (the ones the estimate applies to)."""
    from tinyae.tools.budget.config import load_budgets

    b = load_budgets()
    return {name: t.clock_hz for name, t in b.targets.items() if t.core == "cortex-m4f" and t.clock_hz}


def not_estimated() -> dict[str, str]:
    """The other targets of budgets.toml and why they are not estimated (the ESP32: no Xtensa simulator)."""
    from tinyae.tools.budget.config import load_budgets
    from tinyae.tools.budget.realtime import not_estimated_reason

    out = {}
    for name, t in load_budgets().targets.items():
        reason = not_estimated_reason(t)
        if reason is not None:
            out[f"{name} ({t.core or 'core unknown'}, {t.clock_hz / 1e6:g} MHz)"] = reason
    return out


def _row(model: TrainedModel, engine: str, windows: int) -> dict:
    try:
        r = timing.measure(model.dir, engine, windows=windows)
    except UserError as exc:
        return {"status": "not measured", "reason": str(exc)}
    r = dict(r)
    r.pop("method", None)
    r["model"] = model.spec.name
    r["shape"] = model.shape
    r["macs"] = model.manifest["model"]["macs"]
    return r


def section(
    default: TrainedModel, quick: bool, model_dir: Path, device_ok: bool, say: Callable[[str], None]
) -> dict:
    if not device_ok:
        return {"status": "not measured", "reason": "arm-none-eabi-gcc or qemu-system-arm is missing"}
    engines = ("compiled",) if quick else ("compiled", *TFLM_LIBS)
    out: dict = {"method": timing.METHOD, "boards": boards(), "not_estimated": not_estimated(), "rows": []}
    for engine in engines:
        say(f"time per window (estimate): {default.spec.name}, {engine}")
        out["rows"].append(_row(default, engine, timing.WINDOWS))
    if quick:
        out["mlperf"] = {"status": "skipped", "reason": "--quick"}
        return out
    say(f"training {MLPERF_AD_NAME} (the shape of MLPerf Tiny's AD model)")
    try:
        ad = models.train(mlperf_spec(model_dir), model_dir)
    except UserError as exc:
        out["mlperf"] = {"status": "not measured", "reason": str(exc)}
        return out
    rows = []
    for engine in ("compiled", *TFLM_LIBS):
        say(f"time per window (estimate): {ad.spec.name}, {engine}")
        rows.append(_row(ad, engine, 1))  # one window: TFLM's reference kernels run ~4 M instructions
    out["mlperf"] = {
        "model": ad.spec.name,
        "shape": ad.shape,
        "macs": ad.manifest["model"]["macs"],
        "command": ad.command,
        "rows": rows,
        "clock_hz": MLPERF_CLOCK_HZ,
        "published_ms": MLPERF_V11_AD_M4F_120MHZ_MS,
        "published_source": "github.com/mlcommons/tiny_results_v1.1, closed/*/results/*L4R5ZI*/ad/performance/"
        "results.txt (Cortex-M4F at 120 MHz)",
    }
    return out


def render(t: dict | None) -> list[str]:
    if t is None:
        return []
    out = ["## Time per window on the Cortex-M4F boards (estimate)", ""]
    if t.get("status"):
        return [*out, f"not measured: {t.get('reason', '')}", ""]
    out += [t["method"], ""]
    clocks = t["boards"]
    head = ["model", "engine", "phase", "instructions (exact)", "cycles nominal (low-high)"]
    head += [f"ms at {name} ({hz / 1e6:g} MHz)" for name, hz in clocks.items()]
    rows = []
    for r in t["rows"]:
        if "status" in r:
            rows.append(["default", "—", "—", "—", r["reason"], *([""] * len(clocks))])
            continue
        for phase in timing.PHASES:
            c = r["cycles"][phase]
            ms = [
                f"{1000 * c['nominal'] / hz:.3f} ({1000 * c['low'] / hz:.3f}-{1000 * c['high'] / hz:.3f})"
                for hz in clocks.values()
            ]
            cyc = f"{c['nominal']:,} ({c['low']:,}-{c['high']:,})"
            rows.append([f"{r['model']} ({r['shape']})", r["engine_name"], timing.PHASE_NAMES[phase],
                         f"{r['instructions'][phase]:,}", cyc, *ms])  # fmt: skip
    from tinyae.tools.bench.common import md_table

    out += md_table(head, rows)
    checks = [
        f"{r['engine_name']}: traced vs -icount differences {r['icount_check']['differences']} instructions "
        f"per window push, {r['bit_exact_windows']}/{r['windows']} windows bit-exact"
        for r in t["rows"]
        if "icount_check" in r
    ]
    out += ["", "Checks: " + "; ".join(checks) + ".", ""]
    for name, reason in (t.get("not_estimated") or {}).items():
        out += [f"{name}: {reason}. What is known: its clock; what is not: its cycles per window.", ""]
    m = t.get("mlperf")
    if m and "status" not in m:
        out += [
            f"A model of MLPerf Tiny's anomaly-detection size, {m['shape']} ({m['macs']:,} MACs): `{m['command']}`. "
            f"Its engine's estimated time at {m['clock_hz'] / 1e6:g} MHz beside the latencies published for "
            "Cortex-M4F boards at that clock (MLPerf Tiny v1.1, closed division: "
            + m["published_source"]
            + "). "
            "Those boards run from flash with wait states behind a prefetch/cache accelerator, which the "
            "estimate does not model (zero wait states), and their models carry the AD benchmark's own "
            "weights; the estimate is of the same shape.",
            "",
        ]
        rows = []
        for r in m["rows"]:
            if "status" in r:
                rows.append(["—", r["reason"], "", ""])
                continue
            c = r["cycles"]["engine"]
            hz = m["clock_hz"]
            span = f"{1000 * c['nominal'] / hz:.2f} ({1000 * c['low'] / hz:.2f}-{1000 * c['high'] / hz:.2f})"
            rows.append([r["engine_name"] + " (estimate)", f"{r['instructions']['engine']:,}",
                         f"{c['nominal']:,} ({c['low']:,}-{c['high']:,})", span])  # fmt: skip
        for who, published in m["published_ms"].items():
            rows.append([f"{who} (published, measured)", "—", "—", f"{published:.2f}"])
        out += md_table(["engine", "instructions per inference", "cycles nominal (low-high)",
                         f"ms at {m['clock_hz'] / 1e6:g} MHz"], rows)  # fmt: skip
        out.append("")
    elif m:
        out += [f"MLPerf-size model: {m['status']}: {m.get('reason', '')}", ""]
    return out
