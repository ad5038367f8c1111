"""The search's device budget (`--budget flash=48k,ram=16k,instructions=200k`) and its target.

What each figure covers — tinyae's share of the device, not the board's framework (the Arduino core,
mbed OS or ESP-IDF, whose size is the application's business):
- flash: bytes of flash tinyae adds: engine code + model constants + front-end code and tables;
- ram: bytes of static RAM tinyae adds: engine objects + arena/scratch + I/O buffers + front-end;
- instructions: Cortex-M4 instructions per window: front-end + network (tools/budget/cost.py).
Flash and RAM are those terms of the budget estimator (tools/budget/estimate.py; the application around
the detector, its serial protocol and on-site calibration, is the same in every tinyae firmware and is
left to the whole-image gate of budgets.toml, like the framework); instructions from tools/budget/cost.py.

Units: flash and RAM take bytes, `k`/`KiB` (1024) or `M`/`MiB` (1024²); instructions take a count,
`k` (1000) or `M` (1,000,000).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tinyae.errors import UserError

KEYS = ("flash", "ram", "instructions")
_VALUE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(k|K|KiB|kiB|M|MiB|B)?\s*$")
_BYTES = {None: 1, "B": 1, "k": 1024, "K": 1024, "KiB": 1024, "kiB": 1024, "M": 1 << 20, "MiB": 1 << 20}
_COUNT = {None: 1, "k": 1000, "K": 1000, "M": 1_000_000}


@dataclass(frozen=True)
class Budget:
    """Limits per figure (absent = unconstrained)."""

    limits: dict[str, int]
    source: str = ""  # as the user wrote it

    def check(self, figures: dict[str, int]) -> list[str]:
        """One phrase per broken limit, e.g. 'flash 52,100 B > 49,152 B'."""
        out = []
        for key, limit in self.limits.items():
            value = figures.get(key)
            if value is not None and value > limit:
                out.append(f"{key} {value:,}{_unit(key)} > {limit:,}{_unit(key)}")
        return out

    def excess(self, figures: dict[str, int]) -> float:
        """The largest relative excess over a limit (0 when every limit holds)."""
        worst = 0.0
        for key, limit in self.limits.items():
            value = figures.get(key)
            if value is not None and limit > 0:
                worst = max(worst, value / limit - 1.0)
        return worst

    def text(self) -> str:
        return self.source or ",".join(f"{k}={v}" for k, v in self.limits.items())


def _unit(key: str) -> str:
    return "" if key == "instructions" else " B"


def parse_budget(text: str) -> Budget:
    """`flash=48k,ram=16k,instructions=200k` -> Budget; a UserError names what is wrong."""
    limits: dict[str, int] = {}
    for item in (p.strip() for p in text.split(",")):
        if not item:
            continue
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep:
            raise UserError(f"budget item {item!r} must look like key=value, e.g. --budget flash=48k,ram=16k")
        if key not in KEYS:
            raise UserError(
                f"unknown budget key {key!r} in --budget; the keys are {', '.join(KEYS)} "
                "(e.g. --budget flash=48k,ram=16k,instructions=200k)"
            )
        if key in limits:
            raise UserError(f"budget key {key!r} is given twice in --budget; give it once")
        m = _VALUE.match(value)
        units = _COUNT if key == "instructions" else _BYTES
        if m is None or m.group(2) not in units:
            example = "200k" if key == "instructions" else "48k or 49152"
            raise UserError(
                f"budget {key}={value!r} is not a number with an optional unit; write e.g. {example}"
            )
        n = int(float(m.group(1)) * units[m.group(2)])
        if n <= 0:
            raise UserError(f"budget {key}={value!r} must be more than zero")
        limits[key] = n
    if not limits:
        raise UserError("--budget names no limit; pass e.g. --budget flash=48k,ram=16k,instructions=200k")
    return Budget(limits, text.strip())


@dataclass(frozen=True)
class SearchTarget:
    """Where the searched model will run: a PlatformIO board env or the emulated board."""

    env: str  # board env / mps2_an386; goes to quantize.targets
    budget_target: str  # the budgets.toml target (framework figures, capacities)
    engine: str  # "compiled" | "tflm"
    kernels: str  # tools/budget/cost.py kernel family
    description: str


def resolve_target(env: str) -> SearchTarget:
    """A board env of platformio.ini (nano33ble, nano33ble_compiled, esp32dev, ...) or mps2_an386."""
    from tinyae.tools.budget.cli import target_for_env
    from tinyae.tools.budget.config import load_budgets
    from tinyae.tools.budget.cost import kernels_of
    from tinyae.train.boards import ROOT, targets

    known = targets()
    if env not in known:
        raise UserError(f"unknown --target {env!r}; pass one of {', '.join(sorted(known))}")
    t = known[env]
    budgets = load_budgets()
    name = env if env in budgets.targets else target_for_env(env, budgets, ROOT)
    kernels = kernels_of(t.engine, t.library.kernels if t.library else "")
    return SearchTarget(env, name, t.engine, kernels, t.describe())
