"""The real-time budget: does a window's computation fit the share of each hop period budgets.toml allows?

A window of `hop` new samples arrives every hop / sample_rate seconds; the firmware must finish the
window's computation (the hop's pushes: window assembly, front-end, normalization, quantization, the
engine, the score, the decision) within `window_time` of that period, leaving the rest to sample, send
and answer the host. The time is an ESTIMATE for a Cortex-M4F target (budgets.toml core = "cortex-m4f"):
traced instruction stream x the Cortex-M4 TRM's cycle timings / clock_hz (tools/emulator/timing.py), or,
before any firmware exists, instructions from the manifest's shape (tools/budget/cost.py) x the cycles per
instruction the traces gave. The gate compares the HIGH end of the estimate (the model's least favourable
choices within the TRM's ranges) with the budget. Other cores are not estimated and not gated: the
report says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

from .config import TIME_BUDGET, TIMED_CORES, Target

PHASE_LABELS = {
    "frontend": "front-end (features, normalization, int8 quantization, decision)",
    "engine": "engine",
    "score": "scoring",
    "window": "whole window (the hop's pushes)",
}


@dataclass
class TimeCheck:
    """The time figures of one model on one target and the verdict."""

    target: str
    core: str
    clock_hz: float
    how: str  # "trace" | "formula" | "" (not estimated)
    phases: dict[str, dict[str, int]] = field(default_factory=dict)  # phase -> cycles nominal/low/high
    instructions: dict[str, int] = field(default_factory=dict)
    hop: int = 0
    sample_rate_hz: float = 0.0
    share: float | None = None
    reason: str = ""  # why there is no estimate or no gate
    model: str = ""

    @property
    def estimated(self) -> bool:
        return bool(self.phases)

    @property
    def period_ms(self) -> float | None:
        return 1000.0 * self.hop / self.sample_rate_hz if self.sample_rate_hz > 0 and self.hop > 0 else None

    @property
    def allowed_ms(self) -> float | None:
        p = self.period_ms
        return p * self.share if p is not None and self.share is not None else None

    def ms(self, phase: str, quality: str = "nominal") -> float:
        return 1000.0 * self.phases[phase][quality] / self.clock_hz

    @property
    def fits(self) -> bool | None:
        allowed = self.allowed_ms
        if not self.estimated or allowed is None:
            return None
        return self.ms("window", "high") <= allowed

    def violation(self) -> str | None:
        """One sentence when the window does not fit its share of the hop period."""
        if self.fits is not False:
            return None
        allowed, period = self.allowed_ms, self.period_ms
        assert allowed is not None and period is not None and self.share is not None
        return (
            f"a window of {self.model or 'the model'} takes an estimated {self.ms('window', 'high'):.3f} ms on "
            f"{self.target} ({self.phases['window']['high']:,} cycles at {self.clock_hz / 1e6:g} MHz, the "
            f"estimate's high end), more than the {100 * self.share:g}% of its hop period ({period:.3f} ms: "
            f"{self.hop} samples at {self.sample_rate_hz:g} Hz) that budgets.toml allows ({allowed:.3f} ms); "
            "make the model cheaper (fewer or narrower layers, the compiled engine) or lengthen the hop"
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "target": self.target,
            "core": self.core,
            "clock_hz": self.clock_hz,
            "estimated": self.estimated,
            "how": self.how,
            "reason": self.reason,
        }
        if self.estimated:
            out["cycles"] = self.phases
            out["instructions"] = self.instructions
            out["ms"] = {k: {q: round(self.ms(k, q), 4) for q in v} for k, v in self.phases.items()}
        out.update(
            hop=self.hop,
            sample_rate_hz=self.sample_rate_hz,
            period_ms=self.period_ms,
            budget_share=self.share,
            allowed_ms=self.allowed_ms,
            fits=self.fits,
        )
        return out


def not_estimated_reason(target: Target) -> str | None:
    if target.core not in TIMED_CORES:
        core = target.core or "its core (budgets.toml gives none)"
        return (
            f"{core} is not estimated: there is no simulator for it here, so its cycles per window are "
            "unknown (measure them on the board: `tinyae device verify` reports the device's own cost)"
        )
    if not target.clock_hz:
        return "budgets.toml gives no clock_hz for it"
    return None


def time_check(
    target: Target, manifest: dict[str, Any], timing: dict[str, Any] | None, how: str
) -> TimeCheck:
    """The TimeCheck of `manifest` on `target` from a timing result (tools/emulator/timing.py's keys
    `cycles` and `instructions`), or the reason there is none."""
    w = manifest.get("window", {})
    data = manifest.get("data", {}) if isinstance(manifest.get("data"), dict) else {}
    rate = float(w.get("sample_rate_hz") or data.get("sample_rate_hz") or 0.0)
    tc = TimeCheck(
        target=target.name,
        core=target.core,
        clock_hz=target.clock_hz,
        how=how if timing else "",
        hop=int(w.get("hop", 0)),
        sample_rate_hz=rate,
        share=target.window_time,
        model=str(manifest.get("model", {}).get("name", "")) or "the model",
    )
    reason = not_estimated_reason(target)
    if reason is not None:
        tc.reason = reason
        return tc
    if timing is None:
        tc.reason = "not estimated"
        return tc
    tc.phases = {k: dict(v) for k, v in timing["cycles"].items()}
    tc.instructions = dict(timing.get("instructions", {}))
    if rate <= 0:
        tc.reason = (
            "the model has no sample rate, so its hop period is unknown; the time budget is not checked"
        )
    elif target.window_time is None:
        tc.reason = f"budgets.toml sets no {TIME_BUDGET} for {target.name}"
    return tc


def print_time(console: Console, tc: TimeCheck, method: str) -> None:
    """The time table, then the headroom (or the reason there is no estimate)."""
    if not tc.estimated:
        console.print(f"time per window on {tc.target}: {tc.reason}")
        return
    t = Table(
        title=f"time per window on {tc.target} ({tc.core}, {tc.clock_hz / 1e6:g} MHz): ESTIMATE",
        title_justify="left",
    )
    for col in ("phase", "instructions", "cycles (low-high)", "ms (low-high)"):
        t.add_column(col, justify="left" if col == "phase" else "right")
    for phase, label in PHASE_LABELS.items():
        if phase not in tc.phases:
            continue
        c = tc.phases[phase]
        n = tc.instructions.get(phase)
        t.add_row(
            label,
            f"{n:,}" if n is not None else "—",
            f"{c['nominal']:,} ({c['low']:,}-{c['high']:,})",
            f"{tc.ms(phase):.3f} ({tc.ms(phase, 'low'):.3f}-{tc.ms(phase, 'high'):.3f})",
        )
    allowed, period = tc.allowed_ms, tc.period_ms
    if allowed is not None and period is not None and tc.share is not None:
        t.add_row(
            f"budget: {100 * tc.share:g}% of the hop period ({tc.hop} samples at {tc.sample_rate_hz:g} Hz = "
            f"{period:.3f} ms)",
            "",
            "",
            f"{allowed:.3f}",
            style="bold",
        )
    console.print(t)
    console.print(method)
    if tc.fits is True and allowed is not None:
        used = tc.ms("window", "high")
        console.print(
            f"time: fits; a window takes at most {used:.3f} ms of the {allowed:.3f} ms allowed "
            f"(headroom {allowed - used:.3f} ms, {100 * (1 - used / allowed):.1f}% of the budget)"
        )
    elif tc.reason:
        console.print(f"time: {tc.reason}")


def device_estimate(
    model_dir: Any, device_target: str, device_engine: str, device_library: str = ""
) -> dict[str, Any]:
    """The estimated time per window of `model_dir` on the device a verify talked to (its INFO's target,
    engine and TFLM library), for verify's report, built and run nothing: the model's traced figures when
    a run traced it with that engine (make budget, make bench, `tinyae budget estimate --timing`), else
    the estimate from its shape (tools/budget/cost.py) with that library's kernels.
    Returns per phase cycles and ms (nominal, low, high), the engine and how, or `{"estimated": False,
    "reason": ...}`."""
    import json
    from pathlib import Path

    from tinyae.tools.emulator import timing
    from tinyae.train.boards import KNOWN_LIBRARIES

    from .config import load_budgets
    from .cost import FORMULA_METHOD, formula_timing

    budgets = load_budgets()
    name = device_target.replace("-", "_").removeprefix("qemu_")  # "qemu-mps2-an386" -> mps2_an386
    for tname, t in budgets.targets.items():
        if device_target in t.pio_boards:
            name = tname
    target = budgets.targets.get(name)
    if target is None:
        return {
            "estimated": False,
            "reason": f"budgets.toml has no target for the device's {device_target!r}",
        }
    reason = not_estimated_reason(target)
    if reason is not None:
        return {"estimated": False, "target": name, "reason": reason}
    manifest_path = Path(model_dir) / "manifest.json"
    if not manifest_path.is_file():
        return {"estimated": False, "target": name, "reason": f"no {manifest_path}"}
    manifest = json.loads(manifest_path.read_text())
    if device_engine == "compiled":
        engine, kernels, label = "compiled", None, "compiled engine (tinyae)"
    else:
        lib = KNOWN_LIBRARIES.get(device_library)
        if lib is None:
            return {
                "estimated": False,
                "target": name,
                "reason": f"the device runs TFLM from {device_library or 'an unnamed library'}, whose time "
                "tinyae does not estimate",
            }
        # the library's name in mk/tflm.mk and the timing cache (TAE_TFLM_LIB_CHIRALE -> chirale)
        engine, kernels = lib.macro.removeprefix("TAE_TFLM_LIB_").lower(), lib.kernels
        label = f"TFLM {lib.name}"
    traced = timing.last_traced(str(manifest.get("model", {}).get("sha256", "")), engine)
    if traced is not None:
        cycles, how, method = traced["cycles"], "traced", traced["method"]
    else:
        shaped = formula_timing(manifest, device_engine, kernels)
        if shaped is None:
            return {"estimated": False, "target": name, "reason": "the manifest lacks the model's shape"}
        cycles, how = shaped["cycles"], "from the shape (`make budget` traces this model's code)"
        method = FORMULA_METHOD
    return {
        "estimated": True,
        "target": name,
        "clock_hz": target.clock_hz,
        "engine": label,
        "how": how,
        "cycles": cycles,
        "ms": {
            k: {q: round(1000.0 * v / target.clock_hz, 4) for q, v in c.items()} for k, c in cycles.items()
        },
        "method": method,
    }
