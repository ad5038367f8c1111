"""budgets.toml: the targets, their capacities and budgets, and the estimate constants."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinyae.errors import UserError
from tinyae.paths import ROOT

from .memmap import MEMORY_MAPS, MemoryMap

REPO_ROOT = ROOT
DEFAULT_BUDGETS = "budgets.toml"

#: Budgets of a target: name -> (region whose capacity a percentage refers to, label in messages).
BUDGET_KEYS: dict[str, tuple[str, str]] = {
    "flash": ("flash", "flash"),
    "ram": ("ram", "RAM"),
    "model": ("flash", "model weights"),
    "engine": ("flash", "engine code"),
    "arena": ("ram", "arena/scratch"),
    "stack_headroom": ("ram", "stack headroom"),
}
#: Budgets that are a floor (fail when the figure is below), all others are ceilings.
MINIMUM_BUDGETS = frozenset({"stack_headroom"})

TARGET_KEYS = frozenset(
    {
        "description",
        "memory_map",
        "pio_boards",
        "flash_capacity",
        "ram_capacity",
        "framework_flash",
        "framework_ram",
        "stack_reserve",
        "core",
        "clock_hz",
        "budget",
    }
)
#: The time budget (a share of each hop period, "NN%"), kept apart from the byte budgets above.
TIME_BUDGET = "window_time"
#: Cores whose cycles per window are estimated (tools/emulator/timing.py); others are not estimated.
TIMED_CORES = frozenset({"cortex-m4f"})
ENGINE_KEYS = frozenset({"code_flash", "ram"})
TOP_KEYS = frozenset({"schema", "engines", "targets"})


@dataclass(frozen=True)
class EngineConstants:
    name: str
    code_flash: int
    ram: int


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    memory_map: MemoryMap
    pio_boards: tuple[str, ...]
    flash_capacity: int
    ram_capacity: int
    framework_flash: int
    framework_ram: int
    stack_reserve: int
    budgets: dict[str, int]  # resolved to bytes
    core: str = ""  # "cortex-m4f" (its time per window is estimated) or another core (not estimated)
    clock_hz: float = 0.0  # the CPU clock a window's cycles are divided by
    window_time: float | None = None  # share of each hop period a window's computation may take (0-1]

    def capacity(self, region: str) -> int:
        return self.flash_capacity if region == "flash" else self.ram_capacity


@dataclass(frozen=True)
class Budgets:
    path: Path
    targets: dict[str, Target]
    engines: dict[str, EngineConstants]

    def target(self, name: str) -> Target:
        if name not in self.targets:
            raise UserError(
                f"unknown target {name!r} (known in {self.path}: {', '.join(sorted(self.targets))}); "
                "pass one of those or add a [targets.NAME] block to that file"
            )
        return self.targets[name]

    def engine(self, name: str) -> EngineConstants:
        if name not in self.engines:
            raise UserError(
                f"unknown engine {name!r} (known in {self.path}: {', '.join(sorted(self.engines))}); "
                "pass one of those"
            )
        return self.engines[name]


_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(%|KiB|kiB|K|MiB|M|B)?\s*$")


def parse_size(value: Any, capacity: int, where: str) -> int:
    """Bytes from an int, "NN%" of `capacity`, "NN KiB", "NN MiB" or "NN B"."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise UserError(
            f'{where} must be bytes (an integer) or a string like "90%" or "64 KiB", not {value!r}'
        )
    if isinstance(value, int):
        if value < 0:
            raise UserError(f"{where} is negative ({value}); give a size in bytes")
        return value
    m = _SIZE_RE.match(value)
    if not m:
        raise UserError(f'{where} = {value!r} is not a size; write bytes, "NN%" or "NN KiB"')
    number, unit = float(m.group(1)), m.group(2) or "B"
    if unit == "%":
        if number > 100:
            raise UserError(f"{where} = {value!r} is more than 100% of the capacity; lower it")
        return int(capacity * number / 100)
    scale = {"B": 1, "K": 1024, "KiB": 1024, "kiB": 1024, "M": 1 << 20, "MiB": 1 << 20}[unit]
    return int(number * scale)


def _unknown(keys: set[str], known: frozenset[str], where: str) -> None:
    extra = sorted(keys - known)
    if extra:
        raise UserError(
            f"unknown key {extra[0]!r} in {where} (known keys: {', '.join(sorted(known))}); "
            "fix the spelling or remove it"
        )


def _int(table: dict[str, Any], key: str, where: str, default: int | None = None) -> int:
    if key not in table:
        if default is not None:
            return default
        raise UserError(f"{where} lacks {key!r}; add it (bytes)")
    return parse_size(table[key], 0, f"{where}.{key}")


def _parse_target(name: str, t: Any, path: Path) -> Target:
    where = f"[targets.{name}] of {path}"
    if not isinstance(t, dict):
        raise UserError(f"targets.{name} in {path} must be a table; write [targets.{name}]")
    _unknown(set(t), TARGET_KEYS, where)
    map_name = t.get("memory_map", "cortex-m")
    if map_name not in MEMORY_MAPS:
        raise UserError(
            f"unknown memory_map {map_name!r} in {where} (known: {', '.join(sorted(MEMORY_MAPS))}); "
            "use one of those"
        )
    flash_cap = _int(t, "flash_capacity", where)
    ram_cap = _int(t, "ram_capacity", where)
    budget_table = t.get("budget", {})
    if not isinstance(budget_table, dict):
        raise UserError(f"budget of {where} must be a table; write [targets.{name}.budget]")
    _unknown(set(budget_table), frozenset(BUDGET_KEYS) | {TIME_BUDGET}, f"[targets.{name}.budget] of {path}")
    budgets: dict[str, int] = {}
    window_time = (
        _share(budget_table[TIME_BUDGET], f"targets.{name}.budget.{TIME_BUDGET}")
        if TIME_BUDGET in budget_table
        else None
    )
    core = t.get("core", "")
    clock = t.get("clock_hz", 0)
    if not isinstance(core, str):
        raise UserError(f'core of {where} must be a string such as "cortex-m4f"')
    if isinstance(clock, bool) or not isinstance(clock, int | float) or clock < 0:
        raise UserError(f"clock_hz of {where} must be the CPU clock in Hz (a number), not {clock!r}")
    if window_time is not None and core in TIMED_CORES and not clock:
        raise UserError(f"{where} has a {TIME_BUDGET} budget but no clock_hz; add the CPU clock in Hz")
    for key, raw in budget_table.items():
        if key == TIME_BUDGET:
            continue
        region = BUDGET_KEYS[key][0]
        cap = flash_cap if region == "flash" else ram_cap
        budgets[key] = parse_size(raw, cap, f"targets.{name}.budget.{key}")
    boards = t.get("pio_boards", [])
    if not isinstance(boards, list) or not all(isinstance(b, str) for b in boards):
        raise UserError(f"pio_boards of {where} must be a list of strings")
    return Target(
        name=name,
        description=str(t.get("description", name)),
        memory_map=MEMORY_MAPS[map_name],
        pio_boards=tuple(boards),
        flash_capacity=flash_cap,
        ram_capacity=ram_cap,
        framework_flash=_int(t, "framework_flash", where, 0),
        framework_ram=_int(t, "framework_ram", where, 0),
        stack_reserve=_int(t, "stack_reserve", where, 0),
        budgets=budgets,
        core=core,
        clock_hz=float(clock),
        window_time=window_time,
    )


def _share(value: Any, where: str) -> float:
    """A share of the hop period: "NN%" (0 < NN <= 100)."""
    m = _SIZE_RE.match(value) if isinstance(value, str) else None
    if m is None or m.group(2) != "%" or not 0 < float(m.group(1)) <= 100:
        raise UserError(f'{where} = {value!r} is not a share of the hop period; write it like "50%" (0-100%)')
    return float(m.group(1)) / 100


def parse_budgets(data: dict[str, Any], path: Path) -> Budgets:
    _unknown(set(data), TOP_KEYS, f"the top level of {path}")
    if data.get("schema", 1) != 1:
        raise UserError(f"{path} has schema {data.get('schema')!r}; this tinyae reads schema 1")
    targets_raw = data.get("targets", {})
    if not isinstance(targets_raw, dict) or not targets_raw:
        raise UserError(f"{path} declares no [targets.NAME]; add at least one")
    targets = {name: _parse_target(name, t, path) for name, t in targets_raw.items()}
    engines: dict[str, EngineConstants] = {}
    for name, e in data.get("engines", {}).items():
        where = f"[engines.{name}] of {path}"
        if not isinstance(e, dict):
            raise UserError(f"engines.{name} in {path} must be a table")
        _unknown(set(e), ENGINE_KEYS, where)
        engines[name] = EngineConstants(name, _int(e, "code_flash", where), _int(e, "ram", where))
    return Budgets(path=path, targets=targets, engines=engines)


def find_budgets_file(path: str | Path | None = None) -> Path:
    """The budgets file: `path` when given, else ./budgets.toml, else the repository's."""
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise UserError(f"budgets file {p} does not exist; pass an existing file with --budgets")
        return p
    for candidate in (Path.cwd() / DEFAULT_BUDGETS, REPO_ROOT / DEFAULT_BUDGETS):
        if candidate.is_file():
            return candidate
    raise UserError(f"no {DEFAULT_BUDGETS} in {Path.cwd()} or {REPO_ROOT}; pass one with --budgets")


def load_budgets(path: str | Path | None = None) -> Budgets:
    p = find_budgets_file(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{p} is not valid TOML ({exc}); fix it") from exc
    return parse_budgets(data, p)
