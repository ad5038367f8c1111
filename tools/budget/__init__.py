"""Flash and SRAM budget gate: measure a firmware ELF (or estimate from manifest.json) against budgets.toml.

Public API:
    load_budgets(path=None) -> Budgets
    measure_elf(path, target, budgets=None) -> Measurement
    estimate_from_manifest(manifest, target, engine, budgets=None) -> Estimate
    check(figures, target=None, budgets=None) -> list[Violation]   (Violation.message is one sentence)
"""

from .config import Budgets, Target, load_budgets
from .estimate import estimate_from_manifest
from .figures import Estimate, Figures, Measurement, Violation, check, measure_elf

__all__ = [
    "Budgets",
    "Estimate",
    "Figures",
    "Measurement",
    "Target",
    "Violation",
    "check",
    "estimate_from_manifest",
    "load_budgets",
    "measure_elf",
]
