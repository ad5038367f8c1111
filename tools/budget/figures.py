"""Figures of an image (measured from an ELF or estimated from a manifest) and the budget check."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .config import BUDGET_KEYS, MINIMUM_BUDGETS, Budgets, Target, load_budgets
from .elf import HEAP_SECTIONS, STACK_SECTIONS, ElfImage, read_elf
from .groups import GROUPS, classify, demangle_all

ARENA_WORDS = ("arena", "scratch")
#: The compiled engine's static scratch (train/templates/model_compiled.c.j2).
SCRATCH_NAMES = frozenset({"tae_act", "tae_xbuf"})


@dataclass
class Figures:
    """What a budget is checked against; `parts` holds model / engine / arena bytes."""

    target: str
    source: str  # "elf" or "estimate"
    flash_capacity: int
    ram_capacity: int
    flash: int
    ram_static: int
    stack_reserved: int
    stack_source: str | None
    heap_reserved: int
    parts: dict[str, int]
    engine: str | None = None

    @property
    def ram(self) -> int:
        """Static RAM plus the stack and heap reservations."""
        return self.ram_static + self.stack_reserved + self.heap_reserved

    @property
    def stack_headroom(self) -> int:
        return self.ram_capacity - self.ram

    def value(self, key: str) -> int | None:
        if key == "flash":
            return self.flash
        if key == "ram":
            return self.ram
        if key == "stack_headroom":
            return self.stack_headroom
        return self.parts.get(key)


@dataclass
class SymbolRow:
    name: str
    demangled: str
    size: int
    flash: int
    ram: int
    group: str
    section: str
    file: str


@dataclass
class Measurement(Figures):
    """Figures read from a linked ELF, with the detail behind them."""

    elf: str = ""
    berkeley: dict[str, int] = field(default_factory=dict)
    groups: dict[str, dict[str, int]] = field(default_factory=dict)
    other_regions: dict[str, int] = field(default_factory=dict)
    symbols: list[SymbolRow] = field(default_factory=list)


@dataclass
class Estimate(Figures):
    """Figures estimated from manifest.json before any firmware is linked; `terms` explains each figure."""

    terms: list[tuple[str, str, int, str]] = field(default_factory=list)  # (figure, term, bytes, how)


@dataclass(frozen=True)
class Violation:
    key: str
    label: str
    target: str
    value: int
    limit: int
    excess: int
    minimum: bool
    estimated: bool

    @property
    def message(self) -> str:
        what = "estimated " if self.estimated else "used "
        if self.minimum:
            return (
                f"{self.label} budget of {self.target} missed by {self.excess:,} B "
                f"({what}{self.value:,} B free, need at least {self.limit:,} B)"
            )
        return (
            f"{self.label} budget of {self.target} exceeded by {self.excess:,} B "
            f"({what}{self.value:,} B of {self.limit:,} B)"
        )


def measure(image: ElfImage, target: Target) -> Measurement:
    """Map an ELF's sections and symbols onto the target's memory map."""
    mm = target.memory_map
    flash = ram_static = heap = 0
    other: dict[str, int] = {}
    section_region: dict[str, str] = {}
    loaded: set[str] = set()
    writable = {s.name: s.write for s in image.sections}
    for s in image.sections:
        if not s.alloc or s.size == 0:
            continue
        if s.loaded:
            flash += s.size
            loaded.add(s.name)
        region = mm.region_of(s.addr)
        kind = region.kind if region else "unmapped"
        section_region[s.name] = kind
        if kind == "ram":
            if s.name in STACK_SECTIONS:
                continue
            if s.name in HEAP_SECTIONS:
                heap += s.size
            else:
                ram_static += s.size
        elif kind != "flash":
            name = region.name if region else "unmapped"
            other[name] = other.get(name, 0) + s.size

    names = demangle_all(sym.name for sym in image.symbols)
    rows: list[SymbolRow] = []
    groups = {g: {"flash": 0, "ram": 0} for g in GROUPS}
    arena = 0
    for sym in image.symbols:
        if sym.section in STACK_SECTIONS or sym.section in HEAP_SECTIONS:
            continue
        in_flash = sym.size if sym.section in loaded else 0
        in_ram = sym.size if section_region.get(sym.section) == "ram" else 0
        readonly = section_region.get(sym.section) != "ram" and not writable.get(sym.section, False)
        group = classify(sym.name, names[sym.name], sym.file, sym.kind, readonly)
        groups[group]["flash"] += in_flash
        groups[group]["ram"] += in_ram
        if in_ram and (sym.name in SCRATCH_NAMES or any(w in sym.name.lower() for w in ARENA_WORDS)):
            arena += in_ram
        rows.append(
            SymbolRow(sym.name, names[sym.name], sym.size, in_flash, in_ram, group, sym.section, sym.file)
        )
    rows.sort(key=lambda r: (-r.size, r.name))
    groups["unattributed"] = {
        "flash": flash - sum(g["flash"] for g in groups.values()),
        "ram": ram_static - sum(g["ram"] for g in groups.values()),
    }
    engine = None
    if groups["tflm"]["flash"] > 0:
        engine = "tflm"
    elif any(r.name == "tae_compiled_invoke" or "model_compiled" in r.file for r in rows):
        engine = "compiled"
    return Measurement(
        target=target.name,
        source="elf",
        flash_capacity=target.flash_capacity,
        ram_capacity=target.ram_capacity,
        flash=flash,
        ram_static=ram_static,
        stack_reserved=image.stack_reserved,
        stack_source=image.stack_source or mm.stack_note,
        heap_reserved=heap,
        parts={
            "model": groups["model"]["flash"],
            "engine": groups["engine"]["flash"] + groups["tflm"]["flash"],
            "arena": arena,
        },
        engine=engine,
        elf=str(image.path),
        berkeley=dict(image.berkeley),
        groups=groups,
        other_regions=other,
        symbols=rows,
    )


def measure_elf(path: str | Path, target: str, budgets: Budgets | None = None) -> Measurement:
    """Read `path` and measure it for `target` (a name declared in budgets.toml)."""
    b = budgets if budgets is not None else load_budgets()
    return measure(read_elf(path), b.target(target))


def check(figures: Figures, target: Target | None = None, budgets: Budgets | None = None) -> list[Violation]:
    """Every budget of the target that `figures` breaks (empty when all hold)."""
    if target is None:
        target = (budgets if budgets is not None else load_budgets()).target(figures.target)
    out: list[Violation] = []
    for key, limit in target.budgets.items():
        value = figures.value(key)
        if value is None:
            continue
        label = BUDGET_KEYS[key][1]
        minimum = key in MINIMUM_BUDGETS
        excess = (limit - value) if minimum else (value - limit)
        if excess > 0:
            out.append(
                Violation(key, label, target.name, value, limit, excess, minimum, figures.source != "elf")
            )
    return out
