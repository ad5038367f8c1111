"""The search space and settings: the experiment config's `[search]` section, with defaults.

    [search]
    metric = "roc_auc"          # roc_auc | pr_auc: int8, on the labelled selection windows
    trials = 30                 # --trials overrides
    sampler = "tpe"             # tpe (Optuna's TPE) | random (Optuna's random sampler)
    seed = 0                    # the sampler's seed
    report_every = 5            # epochs between two reports a trial makes to the early-stopping scheduler
    grace = 2                   # reports before a trial may be stopped early (Ray Tune's ASHA)
    finalists = 3               # best feasible trials checked on the linked image and by QEMU
    cpus_per_trial = 1          # Ray resources and TensorFlow threads of one trial (train.threads)
    default_space = true        # start from DEFAULT_SPACE (false: only the keys below)

    [search.space]              # section.key of the experiment config = the values to try
    window.length = [32, 64]                    # a list: the choices
    window.hop_ratio = [0.5]                    # search-only: hop = round(length x ratio)
    frontend.fft_frames = [1, 2, 4]             # search-only: fft_length = window.length / frames
    model.hidden = [[32], [64, 32]]
    train.learning_rate = { min = 5e-4, max = 5e-3, log = true }   # a range (int when min/max are)
    model.variant = "plain"                     # one value: fixed (removes a default dimension)

Every key of the experiment config except [data], quantize.targets (set from --target) and
train.threads (set from cpus_per_trial) can be searched. A key given in [search.space] replaces that
key of the default space. The default space (DEFAULT_SPACE) covers the spectral front-end's own
parameters too: the FFT length (as frames per window), the bands and the log floor's decibels below
each band's median; a trial whose front-end has no spectral part leaves them at the config's values.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from typing import Any

from tinyae.errors import UserError
from tinyae.train.config import (
    CHOICES,
    FFT_MIN,
    Config,
    _coerce,
    bounds,
    check_section,
    from_dict,
    problem,
    schema,
)

DEFAULT_SPACE: dict[str, dict[str, Any]] = {
    "window": {"length": [32, 64, 128], "hop_ratio": [0.25, 0.5]},
    "frontend": {
        "kinds": [["raw"], ["spectral"], ["stats"], ["spectral", "stats"]],
        "fft_frames": [1, 2, 4],
        "bins": [0, 8, 16],
        "log_floor_db": [3.0, 10.0, 30.0],
    },
    "model": {
        "hidden": [[16], [32], [64], [128], [64, 32]],
        "latent": [4, 8, 16],
        "variant": ["plain", "denoising"],
    },
    "train": {"learning_rate": {"min": 5e-4, "max": 5e-3, "log": True}},
}
# Search-only keys, relative to another key so that every combination is a valid config:
# window.hop_ratio: hop = round(window.length x ratio); frontend.fft_frames: fft_length = the largest power of
# two in window.length / frames (the spectral front-end averages that many FFT frames of a window).
SEARCH_ONLY = {("window", "hop_ratio"): 0.5, ("frontend", "fft_frames"): 1}
# Search-only key -> the config key it sets (both in one space are refused).
SETS = {"window.hop_ratio": "window.hop", "frontend.fft_frames": "frontend.fft_length"}
NOT_SEARCHABLE = {
    "data": "the data source is what the search fits, not a choice",
    "quantize.targets": "--target",
    "train.threads": "search.cpus_per_trial",
}
# Keys that change neither the network's shape nor the front-end's tables and work, so neither flash, RAM
# nor instructions: the budget's lower bound over the space (runner.plan) tries one value of each.
SIZE_FREE = (
    "window.hop",
    "frontend.log_floor",
    "frontend.window_fn",
    "frontend.spectrum",
    "model.variant",
    "model.activation",
    "model.output_activation",
    "model.noise_std",
    "model.sparsity_l1",
    "model.contractive",
    "model.kl_weight",
    "train.",
    "threshold.",
    "decision.",
    "normalization.method",
)
METRICS = ("roc_auc", "pr_auc")
SAMPLERS = ("tpe", "random")


@dataclass(frozen=True)
class Dimension:
    """One searched key: choices (any TOML values) or a numeric range."""

    path: str  # "section.key"
    kind: str  # "choice" | "int" | "float"
    choices: tuple[Any, ...] = ()
    low: float = 0.0
    high: float = 0.0
    log: bool = False

    @property
    def labels(self) -> list[str]:
        """The choices as JSON text: Optuna's categorical values must be scalars."""
        return [json.dumps(c) for c in self.choices]

    def decode(self, value: Any) -> Any:
        return json.loads(value) if self.kind == "choice" else value

    def to_tune(self) -> Any:
        from ray import tune

        if self.kind == "choice":
            return tune.choice(self.labels)
        if self.kind == "int":
            lo, hi = int(self.low), int(self.high) + 1
            return tune.lograndint(lo, hi) if self.log else tune.randint(lo, hi)
        return tune.loguniform(self.low, self.high) if self.log else tune.uniform(self.low, self.high)

    def smallest(self) -> list[Any]:
        """Values that bound the model's size from below (all choices; a range's low end)."""
        return (
            list(self.choices)
            if self.kind == "choice"
            else [int(self.low) if self.kind == "int" else self.low]
        )

    def describe(self) -> str:
        if self.kind == "choice":
            return " | ".join(self.labels)
        return f"{self.low:g} .. {self.high:g}{' (log)' if self.log else ''}"


@dataclass(frozen=True)
class Settings:
    """[search]: its keys and their bounds, declared like the experiment config's (tinyae.train.config)."""

    metric: str = field(default="roc_auc", metadata=bounds(choices=METRICS))
    trials: int = field(default=30, metadata=bounds(ge=1, le=100_000))
    sampler: str = field(default="tpe", metadata=bounds(choices=SAMPLERS))
    seed: int = field(default=0, metadata=bounds(ge=0, le=2**31 - 1))
    report_every: int = field(default=5, metadata=bounds(ge=1, le=100_000, what="epochs"))
    grace: int = field(default=2, metadata=bounds(ge=1, le=100_000, what="reports before a trial may stop"))
    finalists: int = field(default=3, metadata=bounds(ge=0, le=1000, what="trials checked on the device"))
    cpus_per_trial: int = field(default=1, metadata=bounds(ge=1, le=1024))
    default_space: bool = field(default=True, metadata=bounds())


@dataclass(frozen=True)
class SearchSpec:
    settings: Settings
    dimensions: tuple[Dimension, ...]
    fixed: dict[str, Any] = field(default_factory=dict)  # "section.key" -> value, applied to every trial

    def to_tune(self) -> dict[str, Any]:
        return {d.path: d.to_tune() for d in self.dimensions}

    def decode(self, params: dict[str, Any]) -> dict[str, Any]:
        """Ray/Optuna parameters -> config values (choices decoded from their JSON labels)."""
        by_path = {d.path: d for d in self.dimensions}
        return {k: by_path[k].decode(v) if k in by_path else v for k, v in params.items()}

    def grid_lower(self, limit: int = 20_000, seed: int = 0) -> list[dict[str, Any]]:
        """Points that bound the space's smallest models: every combination of the choices and the
        ranges' low ends (a seeded sample of `limit` of them when there are more); a dimension that
        cannot change the device figures (SIZE_FREE) keeps its first value."""
        axes = [d.smallest()[:1] if d.path.startswith(SIZE_FREE) else d.smallest() for d in self.dimensions]
        paths = [d.path for d in self.dimensions]
        total = 1
        for a in axes:
            total *= len(a)
        combos: Iterable[tuple[Any, ...]]
        if total <= limit:
            combos = itertools.product(*axes)
        else:
            rng = random.Random(seed)
            combos = (tuple(rng.choice(a) for a in axes) for _ in range(limit))
        return [dict(zip(paths, c, strict=True)) for c in combos]


def _section_fields(section: str) -> dict[str, Any]:
    cfg = Config()
    return {f.name: getattr(getattr(cfg, section), f.name) for f in fields(getattr(cfg, section))}


def _check_value(path: str, value: Any, current: Any) -> Any:
    section, key = path.split(".", 1)
    coerced = _coerce(value, current, path)
    allowed = CHOICES.get((section, key))
    if allowed and coerced not in allowed:
        raise UserError(
            f"[search.space] {path} = {value!r} is not one of {', '.join(allowed)}; fix that value"
        )
    known = schema().get(path)  # the config key's own bounds (search-only keys such as hop_ratio aside)
    wrong = problem(known, coerced) if known is not None else None
    if wrong:
        raise UserError(f"[search.space] {path} = {value!r} {wrong}; fix that value")
    return coerced


def _dimension(path: str, spec: Any, current: Any) -> Dimension | Any:
    """A Dimension for a list or a {min, max, log} table; a single value is returned as is (fixed)."""
    where = f"[search.space] {path}"
    if (isinstance(spec, list) and not isinstance(current, list)) or (
        isinstance(spec, list) and spec and isinstance(spec[0], list)
    ):
        if not spec:
            raise UserError(f"{where} is an empty list; give at least one value to try")
        values = tuple(_check_value(path, v, current) for v in spec)
        return Dimension(path, "choice", values)
    if isinstance(spec, list) and isinstance(current, list):
        # a list-valued key given one flat list: that list is one fixed value, unless it is empty
        if not spec:
            raise UserError(f"{where} is an empty list; give the list values to try, e.g. [[32], [64, 32]]")
        return _check_value(path, spec, current)
    if isinstance(spec, dict):
        unknown = sorted(set(spec) - {"min", "max", "log"})
        if unknown or "min" not in spec or "max" not in spec:
            raise UserError(f"{where} must be a list of values or a table {{ min = .., max = .., log = .. }}")
        if isinstance(current, bool) or not isinstance(current, int | float):
            raise UserError(f"{where} is a range but {path} is not a number; give a list of values instead")
        lo, hi, log = spec["min"], spec["max"], bool(spec.get("log", False))
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (lo, hi)):
            raise UserError(f"{where} needs numbers for min and max")
        if lo > hi:
            raise UserError(f"{where} is an empty range (min {lo} > max {hi}); swap or widen it")
        if log and lo <= 0:
            raise UserError(f"{where} is a log range from {lo}; a log range must start above 0")
        integer = isinstance(current, int)
        if integer and not (float(lo).is_integer() and float(hi).is_integer()):
            raise UserError(f"{where}: {path} is an integer; give integer min and max")
        _check_value(path, lo, current), _check_value(path, hi, current)
        return Dimension(path, "int" if integer else "float", (), float(lo), float(hi), log)
    return _check_value(path, spec, current)


def parse_search(raw: dict[str, Any] | None, source: str) -> SearchSpec:
    """The [search] table (None = none in the config) -> SearchSpec; UserError on any bad entry."""
    raw = dict(raw or {})
    space_raw = raw.pop("space", {})
    if not isinstance(space_raw, dict):
        raise UserError(f"[search.space] in {source} must be a table of section.key = values")
    known = {f.name: f.default for f in fields(Settings)}
    for key, value in raw.items():
        if key not in known:
            raise UserError(
                f"unknown key '{key}' in [search] of {source}; known keys: {', '.join(sorted(known))}, space"
            )
        raw[key] = _coerce(value, known[key], f"search.{key}")
    settings = Settings(**raw)
    check_section(settings, "search")

    merged: dict[str, dict[str, Any]] = (
        {s: dict(v) for s, v in DEFAULT_SPACE.items()} if settings.default_space else {}
    )
    sections = {f.name for f in fields(Config)}
    for section, table in space_raw.items():
        if section == "data":
            raise UserError(f"[search.space] cannot search data.*: {NOT_SEARCHABLE['data']}; remove it")
        if section not in sections:
            raise UserError(
                f"unknown section '{section}' in [search.space] of {source}; "
                f"known: {', '.join(sorted(sections))}"
            )
        if not isinstance(table, dict):
            raise UserError(f"[search.space] {section} must be a table of keys, e.g. {section}.KEY = [..]")
        merged.setdefault(section, {}).update(table)

    dims: list[Dimension] = []
    fixed: dict[str, Any] = {}
    for section, table in merged.items():
        current_fields = _section_fields(section)
        for key, spec in table.items():
            path = f"{section}.{key}"
            if path in NOT_SEARCHABLE:
                raise UserError(
                    f"[search.space] cannot search {path}: the search sets it from {NOT_SEARCHABLE[path]}"
                )
            if (section, key) in SEARCH_ONLY:
                current = SEARCH_ONLY[(section, key)]
            elif key in current_fields:
                current = current_fields[key]
            else:
                raise UserError(
                    f"unknown key '{path}' in [search.space] of {source}; known keys of [{section}]: "
                    f"{', '.join(sorted(current_fields) + [k for s, k in SEARCH_ONLY if s == section])}"
                )
            d = _dimension(path, spec, current)
            if isinstance(d, Dimension) and not (d.kind == "choice" and len(d.choices) == 1):
                dims.append(d)
            else:
                fixed[path] = d.choices[0] if isinstance(d, Dimension) else d
    given = set(fixed) | {d.path for d in dims}
    for relative, key in SETS.items():
        if relative in given and key in given:
            raise UserError(f"[search.space] sets both {key} and {relative}; keep one of them")
    for d in dims:
        if d.path == "frontend.fft_frames":
            for v in d.smallest() + ([d.high] if d.kind != "choice" else []):
                if int(v) < 1:
                    raise UserError(f"[search.space] frontend.fft_frames = {v} must be at least 1")
        if d.path == "window.hop_ratio":
            for v in d.smallest() + ([d.high] if d.kind != "choice" else []):
                if not 0 < float(v) <= 1:
                    raise UserError(f"[search.space] window.hop_ratio = {v} must be in (0, 1]")
    return SearchSpec(settings, tuple(dims), fixed)


def apply_params(base: Config, values: dict[str, Any], where: str = "search trial") -> Config:
    """The config of one trial: `base` with `values` ("section.key" -> value) applied and validated.

    Search-only keys set the key they stand for (SEARCH_ONLY). A value whose key has no effect in this
    trial (a spectral key when frontend.kinds has no spectral, Bounds.applies of tinyae.train.config) is
    left at the base's value, so the trial's config, best.toml included, says only what it uses. A
    frontend.bins above the FFT's bins (no frequency limits) means one band per bin (bins = 0)."""
    from tinyae.train.config import schema

    raw: dict[str, dict[str, Any]] = {}
    ratio = frames = None
    for path, value in values.items():
        section, key = path.split(".", 1)
        if path == "window.hop_ratio":
            ratio = float(value)
        elif path == "frontend.fft_frames":
            frames = int(value)
        else:
            raw.setdefault(section, {})[key] = value
    length = int(raw.get("window", {}).get("length", base.window.length))
    if ratio is not None:
        raw.setdefault("window", {})["hop"] = max(1, round(length * ratio))
    if "window" in raw and "hop" not in raw["window"] and "length" in raw["window"]:
        # a shorter window than the base's hop: keep the base's hop ratio
        raw["window"]["hop"] = max(1, round(length * base.window.hop / base.window.length))
    cfg = from_dict(raw, where, base=base)
    # keys without effect in this trial go back to the base's value
    keys = schema()
    unused = []
    for section, table in raw.items():
        for key in table:
            k = keys.get(f"{section}.{key}")
            if k is None or k.bounds.applies is None:
                continue
            other, allowed = k.bounds.applies
            v = getattr(getattr(cfg, other.split(".")[0]), other.split(".")[1])
            if not (any(x in allowed for x in v) if isinstance(v, list) else v in allowed):
                unused.append((section, key))
    for section, key in unused:
        del raw[section][key]
    fe = cfg.frontend
    if "spectral" in fe.kinds:
        spectral = raw.setdefault("frontend", {})
        if frames is not None:
            if length // frames < FFT_MIN:
                raise UserError(
                    f"frontend.fft_frames = {frames} leaves fewer than {FFT_MIN} samples per FFT frame in a "
                    f"window of {length}; the search space needs fewer frames or longer windows"
                )
            spectral["fft_length"] = 1 << ((length // frames).bit_length() - 1)
        n = spectral.get("fft_length", fe.fft_length) or 1 << (length.bit_length() - 1)
        if fe.bins > n // 2 and fe.freq_min_hz == 0 and fe.freq_max_hz == 0:
            spectral["bins"] = 0
    return from_dict(raw, where, base=base) if unused or "spectral" in fe.kinds else cfg
