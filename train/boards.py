"""The firmware targets a model may be deployed to, and what each one's inference engine can compute.

platformio.ini is the one source of which board env runs which engine and which TFLM library it pins
(`-D TAE_ENGINE_TFLM` / `-D TAE_ENGINE_COMPILED` in build_flags, the library in lib_deps). What each
pinned library *can* compute is knowledge this module adds, in `TFLM_LIBRARIES`, keyed by the exact
lib_deps entry; the board-library tests (tests/test_boardlib_*.py) check every entry against the
library's own sources and runs, so this table cannot drift from the code it describes.

The emulated board (`mps2_an386`, QEMU) runs the compiled engine, which supports every quantization
the generator emits.
"""

from __future__ import annotations

import configparser
import re
from dataclasses import dataclass
from pathlib import Path

from tinyae.errors import UserError
from tinyae.paths import ROOT
from tinyae.train.int8.arithmetic import COMPILED_ENGINE, TFLM, Arithmetic

PLATFORMIO_INI = ROOT / "platformio.ini"
EMULATOR_ENV = "mps2_an386"


@dataclass(frozen=True)
class TflmLibrary:
    """One pinned TFLM distribution and the facts about it that decide what the generator may emit."""

    lib_dep: str  # the exact platformio.ini lib_deps entry ("" for a build that is no board's pin)
    name: str  # name and version: what the firmware reports in the handshake (`library`)
    macro: str  # the define a build of this library carries (mk/tflm/library.mk, platformio.ini build_flags)
    per_channel_fully_connected: bool  # int8 FULLY_CONNECTED with one weight scale per output channel
    arithmetic: Arithmetic  # how it forms requantization multipliers (measured: tests/test_boardlib_*.py)
    kernels: str  # which kernels the board gets
    basis: str  # which upstream TFLM it was cut from


# Upstream TFLM supports per-channel FULLY_CONNECTED weights since commit 47b545074 (2024-09-27);
# before it, the kernels read only the first channel's scale (silently wrong results).
TFLM_LIBRARIES: dict[str, TflmLibrary] = {
    lib.lib_dep: lib
    for lib in (
        TflmLibrary(
            lib_dep="spaziochirale/Chirale_TensorFLowLite@2.0.0",
            name="Chirale_TensorFLowLite 2.0.0",
            macro="TAE_TFLM_LIB_CHIRALE",
            per_channel_fully_connected=False,
            arithmetic=TFLM,
            kernels="CMSIS-NN optimized kernels for Cortex-M (FULLY_CONNECTED, CONV, ...), else reference",
            basis="upstream tflite-micro of 2024-07, before per-channel FULLY_CONNECTED",
        ),
        TflmLibrary(
            lib_dep="tanakamasayuki/TensorFlowLite_ESP32@1.0.0",
            name="TensorFlowLite_ESP32 1.0.0",
            macro="TAE_TFLM_LIB_ESP32",
            per_channel_fully_connected=False,
            arithmetic=TFLM,
            kernels="portable reference kernels only (its kernels/esp_nn/ holds a README, no ESP-NN code)",
            basis="upstream tflite-micro of 2022-05 (MicroInterpreter takes an ErrorReporter*)",
        ),
    )
}
# Upstream TFLM at the commit of the board-library lane's copy: no board env pins it; the emulated board
# can run it (make firmware-emu ENGINE=tflm TFLM_LIB=upstream) as a reference-kernel comparison.
UPSTREAM_TFLM = TflmLibrary(
    lib_dep="",
    name="tflite-micro 90b983c",
    macro="TAE_TFLM_LIB_UPSTREAM",
    per_channel_fully_connected=True,
    arithmetic=TFLM,
    kernels="portable reference kernels",
    basis="upstream tflite-micro of 2026-08-20",
)
# Every TFLM build tinyae knows, by the name its firmware reports in the handshake.
KNOWN_LIBRARIES: dict[str, TflmLibrary] = {lib.name: lib for lib in (*TFLM_LIBRARIES.values(), UPSTREAM_TFLM)}


@dataclass(frozen=True)
class Target:
    """A place a model can run: a PlatformIO env or the emulated board."""

    name: str
    engine: str  # "tflm" | "compiled"
    library: TflmLibrary | None  # the TFLM library of a "tflm" env

    @property
    def per_channel_ok(self) -> bool:
        return self.library is None or self.library.per_channel_fully_connected

    @property
    def arithmetic(self) -> Arithmetic:
        return COMPILED_ENGINE if self.library is None else self.library.arithmetic

    def describe(self) -> str:
        if self.library is None:
            return f"{self.name} (compiled engine)"
        return f"{self.name} (TFLM: {self.library.name})"


def targets(platformio_ini: Path = PLATFORMIO_INI) -> dict[str, Target]:
    """Every board env of platformio.ini, plus the emulated board, by name.

    Raises UserError when an env's engine is not stated or its TFLM library is not in TFLM_LIBRARIES
    (a new pin must be described before a model can be generated for it).
    """
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.read(platformio_ini)
    found: dict[str, Target] = {}
    for section in parser.sections():
        if not section.startswith("env:"):
            continue
        name = section.removeprefix("env:")
        flags = parser.get(section, "build_flags", fallback="")
        deps = [d.strip() for d in parser.get(section, "lib_deps", fallback="").splitlines() if d.strip()]
        if re.search(r"-D\s*TAE_ENGINE_COMPILED\b", flags):
            found[name] = Target(name, "compiled", None)
            continue
        if not re.search(r"-D\s*TAE_ENGINE_TFLM\b", flags):
            raise UserError(
                f"platformio.ini env {name} defines neither TAE_ENGINE_TFLM nor TAE_ENGINE_COMPILED"
            )
        libs = [TFLM_LIBRARIES[d] for d in deps if d in TFLM_LIBRARIES]
        if len(libs) != 1:
            tflm_like = [d for d in deps if "tensorflow" in d.lower()]
            raise UserError(
                f"platformio.ini env {name} pins TFLM library {', '.join(tflm_like) or '(none)'}, which "
                f"train/boards.py does not describe; add it to TFLM_LIBRARIES with what it supports"
            )
        found[name] = Target(name, "tflm", libs[0])
    found[EMULATOR_ENV] = Target(EMULATOR_ENV, "compiled", None)
    return found


@dataclass(frozen=True)
class WeightsChoice:
    """The FULLY_CONNECTED weight quantization chosen for a model and why (written to the manifest)."""

    per_channel: bool
    setting: str  # the config value: auto | per_channel | per_tensor
    reason: str
    targets: list[str]  # the targets the model was generated for
    runs_on: list[str]  # every known target that computes this model correctly

    @property
    def granularity(self) -> str:
        return "per_channel" if self.per_channel else "per_tensor"

    def to_manifest(self) -> dict:
        return {
            "weights": self.granularity,
            "setting": self.setting,
            "reason": self.reason,
            "targets": self.targets,
            "runs_on": self.runs_on,
        }


def choose_weights(setting: str, wanted: list[str], known: dict[str, Target] | None = None) -> WeightsChoice:
    """Per-channel FULLY_CONNECTED weights when every wanted target computes them, else per-tensor.

    setting: "auto" (decide from the targets), "per_channel" or "per_tensor" (forced).
    wanted: target names; empty means every target known (all board envs and the emulator).
    Raises UserError for an unknown target, or per_channel forced onto a target that would compute
    it wrongly.
    """
    known = targets() if known is None else known
    unknown = [t for t in wanted if t not in known]
    if unknown:
        raise UserError(
            f"quantize.targets names {', '.join(unknown)}, which is not a target; "
            f"known: {', '.join(sorted(known))}"
        )
    names = list(wanted) or sorted(known)
    lacking = [known[n] for n in names if not known[n].per_channel_ok]
    if setting == "per_channel" and lacking:
        t = lacking[0]
        raise UserError(
            f"quantize.weights = per_channel cannot run on {t.describe()}: that library computes "
            f"per-channel FULLY_CONNECTED weights with the first channel's scale (wrong results); use "
            f'quantize.weights = "auto" or "per_tensor", or leave {t.name} out of quantize.targets'
        )
    if setting == "per_tensor":
        per_channel, reason = False, "quantize.weights = per_tensor"
    elif setting == "per_channel":
        per_channel, reason = True, "quantize.weights = per_channel"
    elif lacking:
        per_channel = False
        reason = (
            "auto: per-tensor, because "
            + ", ".join(f"{t.name} ({t.library.name})" for t in lacking if t.library is not None)
            + " cannot compute per-channel FULLY_CONNECTED weights"
        )
    else:
        per_channel, reason = True, "auto: per-channel, every target supports it (" + ", ".join(names) + ")"
    runs_on = sorted(n for n, t in known.items() if per_channel is False or t.per_channel_ok)
    return WeightsChoice(per_channel, setting, reason, names, runs_on)


def imported_weights(
    per_channel: bool, setting: str, wanted: list[str], known: dict[str, Target] | None = None
) -> tuple[WeightsChoice, str]:
    """The weight quantization of an imported model, as it is (tinyae does not requantize it): the targets
    it goes to and a warning naming the targets left out ("" when none).

    setting: quantize.weights; "auto" accepts either granularity, a forced one must be the model's.
    wanted: quantize.targets; empty means every target that computes the model correctly. Raises UserError
    for an unknown target, a named target that would compute it wrongly, or a forced granularity the
    model does not have.
    """
    known = targets() if known is None else known
    unknown = [t for t in wanted if t not in known]
    if unknown:
        raise UserError(
            f"quantize.targets names {', '.join(unknown)}, which is not a target; "
            f"known: {', '.join(sorted(known))}"
        )
    has = "per_channel" if per_channel else "per_tensor"
    if setting != "auto" and setting != has:
        raise UserError(
            f"quantize.weights = {setting}, but the model's FULLY_CONNECTED weights are "
            f"{has.replace('_', '-')}; tinyae imports a model as it is: convert it with the granularity you "
            'want, or set quantize.weights = "auto"'
        )
    runs_on = sorted(n for n, t in known.items() if not per_channel or t.per_channel_ok)
    lacking = [known[n] for n in wanted if n not in runs_on]
    if lacking:
        t = lacking[0]
        assert t.library is not None
        raise UserError(
            f"the model has per-channel FULLY_CONNECTED weights, which {t.library.name} ({t.name}) computes "
            "with the first channel's scale (wrong results); convert it with per-tensor weights "
            "(converter._experimental_disable_per_channel_quantization_for_dense_layers = True) or leave "
            f"{t.name} out of quantize.targets"
        )
    names = list(wanted) or runs_on
    left_out = sorted(set(known) - set(runs_on))
    warning = ""
    if left_out and not wanted:
        warning = (
            f"the model has per-channel FULLY_CONNECTED weights, which {', '.join(left_out)} would compute "
            "wrongly (their TFLM library predates per-channel support), so it goes to "
            f"{', '.join(names)} only; convert it with per-tensor weights "
            "(converter._experimental_disable_per_channel_quantization_for_dense_layers = True) for every board"
        )
    reason = f"imported: the model's weights are {has.replace('_', '-')}"
    return WeightsChoice(per_channel, "model", reason, names, runs_on), warning


def check_model_runs_on(weights: str, env: str, known: dict[str, Target] | None = None) -> None:
    """Refuse, in one sentence, to build `env` for a model its engine would compute wrongly.

    weights: the manifest's `quantization.weights` (per_tensor | per_channel).
    """
    known = targets() if known is None else known
    target = known.get(env)
    if target is None:
        raise UserError(f"unknown board env {env}; known: {', '.join(sorted(known))}")
    if weights == "per_channel" and not target.per_channel_ok:
        assert target.library is not None
        raise UserError(
            f"the model has per-channel FULLY_CONNECTED weights, which {target.library.name} (env {env}) "
            f"computes with the first channel's scale (wrong results); regenerate it with "
            f'quantize.weights = "auto" or "per_tensor" (make model), or build the compiled-engine env'
        )


def reference_arithmetic(
    wanted: list[str], known: dict[str, Target] | None = None
) -> tuple[Arithmetic, dict]:
    """The integer arithmetic every target of a model computes, and each target's (for the manifest).

    The threshold and the test vectors are computed once, so the targets must agree; every engine tinyae
    knows does (train/int8/arithmetic.py). A target that did not would be refused here, in one sentence."""
    known = targets() if known is None else known
    names = list(wanted) or sorted(known)
    per_target = {n: known[n].arithmetic for n in names}
    kinds = sorted({a.name for a in per_target.values()})
    if len(kinds) > 1:
        groups = "; ".join(
            f"{k}: {', '.join(n for n, a in per_target.items() if a.name == k)}" for k in kinds
        )
        raise UserError(
            f"quantize.targets mixes engines whose integer arithmetic differs ({groups}), so one threshold "
            "cannot be computed for all of them; build one model per group (quantize.targets)"
        )
    return next(iter(per_target.values())), {n: a.name for n, a in per_target.items()}


def device_arithmetic(engine: str, library: str) -> Arithmetic:
    """The arithmetic of a device, from its handshake's engine and TFLM library; UserError when tinyae
    knows no host reference for it."""
    if engine == "compiled":
        return COMPILED_ENGINE
    if engine == "tflm":
        lib = KNOWN_LIBRARIES.get(library)
        if lib is None:
            known = ", ".join(sorted(KNOWN_LIBRARIES))
            raise UserError(
                f"the device runs TFLM from {library or 'an unnamed library'}, for which tinyae knows no host "
                f"reference (it knows {known}); build the firmware with a pinned library (platformio.ini) or "
                "describe the library in train/boards.py"
            )
        return lib.arithmetic
    raise UserError(
        f"the device reports engine '{engine}', which tinyae does not know; flash a tinyae firmware"
    )
