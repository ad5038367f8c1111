"""Instructions per window, estimated from a model's shape and front-end before any firmware exists.

What is counted: the feature front-end (`tae_frontend_compute`) and the network (`tae_engine_invoke`),
the two parts of a window's work that grow with the model; the normalization, input quantization and
score of the pipeline (a few instructions per input value) are not. Units: instructions executed by a
Cortex-M4 (the Nano 33 BLE's nRF52840 and the emulated mps2-an386), arm-none-eabi-gcc -Os.

Sources of the constants:
- compiled engine and front-end: least-squares fit of exact counts on the emulated Cortex-M4F
  (`tinyae bench costmodel --json bench/costmodel.json`, QEMU -icount; the command prints
  every point's measured and estimated figure; bench/costmodel.json keeps them).
- TFLM: each pinned library measured in the bench harness beside the compiled engine (`make bench`,
  "Device cost": the default network 192-64-8-64-192, per-tensor weights, 25,600 MACs, -Os, the Nano 33
  BLE's flags): 91,538 instructions with Chirale_TensorFLowLite 2.0.0's CMSIS-NN kernels, 405,989 with
  upstream tflite-micro 90b983c's reference kernels. One shape, so the per-MAC rate below carries the
  interpreter's per-op overhead of that shape; small networks are underestimated. The ESP32 (Xtensa,
  reference kernels, TensorFlowLite_ESP32 1.0.0) is estimated with the Cortex-M4 reference-kernel rate:
  a proxy for its instruction count only, there is no Xtensa emulator here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

# Compiled engine, per network: A*MACs + B*output units + D  (tinyae.tools.bench.costmodel fit over 9 networks
# from 16x8x2 to 128x96x32x8, 2,300-87,000 instructions, every point within 5%).
COMPILED_PER_MAC = 0.967
COMPILED_PER_UNIT = 13.0
COMPILED_FIXED = 778.0

# TFLM on a Cortex-M4, instructions per MAC of the default network (see the docstring).
TFLM_CMSIS_NN_PER_MAC = 91_538 / 25_600
TFLM_REFERENCE_PER_MAC = 405_989 / 25_600

# Spectral front-end: per channel and frame S1*N*log2(N) + S2*N, per channel and band S3 (fit over 6
# front-ends, 2,000-28,000 instructions, within 3.2%; refitted after the half-length real FFT halved the
# front-end's cost, which the older constants 7.71 / 58.3 / 69.6 overestimated twofold).
SPECTRAL_NLOGN = 4.77
SPECTRAL_N = 22.2
SPECTRAL_BAND = 30.7
# Stats front-end: per channel and sample T1 + T2 per statistic + T3 when skew or kurtosis is among them
# (their third and fourth moments; 3 constants fitted over 4 front-ends, 1,600-28,000 instructions,
# within 2.3 %: few points, so read it as within about 10 %).
STATS_SAMPLE = 10.3
STATS_SAMPLE_STAT = 4.25
STATS_SAMPLE_MOMENTS = 4.06

KERNELS = ("compiled", "tflm_cmsis_nn", "tflm_reference")


def kernels_of(engine: str, library_kernels: str = "") -> str:
    """The kernel family of an engine: "compiled", or TFLM's CMSIS-NN or reference kernels.

    library_kernels: tinyae.train.boards.TflmLibrary.kernels of the env's TFLM library (CMSIS-NN when it
    says so)."""
    if engine == "compiled":
        return "compiled"
    return "tflm_cmsis_nn" if library_kernels.startswith("CMSIS-NN") else "tflm_reference"


def network_instructions(layers: Sequence[tuple[int, int]], kernels: str = "compiled") -> int:
    """Instructions of one inference of a dense stack; layers = [(fan_in, units), ...] input to output."""
    if kernels not in KERNELS:
        raise ValueError(f"unknown kernels {kernels!r}; one of {', '.join(KERNELS)}")
    macs = sum(i * o for i, o in layers)
    if kernels == "tflm_cmsis_nn":
        return round(TFLM_CMSIS_NN_PER_MAC * macs)
    if kernels == "tflm_reference":
        return round(TFLM_REFERENCE_PER_MAC * macs)
    units = sum(o for _, o in layers)
    return round(COMPILED_PER_MAC * macs + COMPILED_PER_UNIT * units + COMPILED_FIXED)


def frontend_instructions_terms(fe: Mapping[str, Any]) -> list[tuple[str, int]]:
    """(term, instructions) of the front-end described by `fe`.

    fe keys: kinds, length, channels; for spectral fft_length, frames, bands; for stats the list
    `stats`. The raw front-end costs nothing beyond the pipeline's copy of the window.
    """
    kinds = list(fe.get("kinds") or ["raw"])
    c = int(fe["channels"])
    terms: list[tuple[str, int]] = []
    if "spectral" in kinds:
        n, frames, bands = int(fe["fft_length"]), int(fe["frames"]), int(fe["bands"])
        v = c * frames * (SPECTRAL_NLOGN * n * math.log2(n) + SPECTRAL_N * n) + c * bands * SPECTRAL_BAND
        terms.append(("spectral front-end", round(v)))
    if "stats" in kinds:
        length, stats = int(fe["length"]), list(fe.get("stats") or ())
        moments = any(s in ("skew", "kurtosis") for s in stats)
        v = c * length * (STATS_SAMPLE + STATS_SAMPLE_STAT * len(stats) + STATS_SAMPLE_MOMENTS * moments)
        terms.append(("stats front-end", round(v)))
    return terms


def frontend_description(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The keys frontend_instructions_terms() reads, from a manifest's window and frontend sections."""
    fe = manifest.get("frontend") or {}
    w = manifest["window"]
    out: dict[str, Any] = {
        "kinds": fe.get("kinds") or ["raw"],
        "length": int(w["length"]),
        "channels": int(w["channels"]),
        "stats": list(fe.get("stats") or ()),
    }
    sp = fe.get("spectral")
    if sp:
        out.update(
            fft_length=int(sp["fft_length"]), frames=int(sp["frames"]), bands=len(sp["band_edges"]) - 1
        )
    return out


def estimate_instructions(manifest: Mapping[str, Any], kernels: str = "compiled") -> tuple[int, list]:
    """(instructions per window, [(term, instructions), ...]) for a manifest (or its search stand-in).

    Reads model.layers (units), input.size, window and frontend. Raises KeyError on a manifest
    without them (the caller turns that into its own sentence).
    """
    fan_in = int(manifest["input"]["size"])
    layers = []
    for layer in manifest["model"]["layers"]:
        units = int(layer["units"])
        layers.append((fan_in, units))
        fan_in = units
    terms = frontend_instructions_terms(frontend_description(manifest))
    terms.append((f"network ({kernels})", network_instructions(layers, kernels)))
    return sum(v for _, v in terms), terms


# -- time per window from the manifest alone -------------------------------------------------------------
# The pipeline around the network, in instructions, and the cycles per instruction of each part: from the
# traced default model (192-64-8-64-192, raw front-end, 3 channels, hop 32; tools/emulator/timing.py, the
# "Time per window" section of `make bench`), rounded. Estimates of an estimate: `tinyae budget estimate
# --timing` and `make budget` trace the model's own code instead.
RAW_PER_INPUT = 59.5  # raw front-end: normalization, int8 quantization (and the decision), per input value
SCORE_PER_INPUT = 13.0  # reconstruction error, per input value
PUSH_PER_SAMPLE_VALUE = 12.5  # storing a sample into the window ring, per channel value
CPI = {
    "compiled": 1.40,  # 41,309 cycles / 29,523 instructions (engine)
    "tflm_cmsis_nn": 1.40,  # 128,170 / 91,534 (Chirale_TensorFLowLite 2.0.0)
    "tflm_reference": 1.40,  # 567,973 / 406,031 (tflite-micro 90b983c, reference kernels)
    "frontend": 1.34,  # 15,370 / 11,428
    "score": 1.70,  # 4,252 / 2,505
}
FORMULA_METHOD = (
    "ESTIMATE from the manifest alone: instructions from the model's shape (tools/budget/cost.py, fitted on "
    "the emulated Cortex-M4F) x the cycles per instruction that traces of the default model's code gave "
    "(the Cortex-M4 TRM's timings at zero wait states). `--timing` traces this model's own code instead. "
    "Not a measurement."
)


def formula_timing(
    manifest: Mapping[str, Any], engine: str, library_kernels: str | None = None
) -> dict[str, Any] | None:
    """Per-phase instructions and cycles (nominal; low = high = nominal) from the manifest alone, in the
    keys tools/emulator/timing.py uses; None when the manifest lacks the shape. A TFLM engine runs the
    kernels `library_kernels` names (tinyae.train.boards.TflmLibrary.kernels), by default those of the
    library the nano33ble env pins (Chirale_TensorFLowLite, CMSIS-NN)."""
    from tinyae.train.boards import TFLM_LIBRARIES

    kernels = "compiled"
    if engine != "compiled":
        if library_kernels is None:
            lib = next((x for x in TFLM_LIBRARIES.values() if x.name.startswith("Chirale")), None)
            library_kernels = lib.kernels if lib is not None else ""
        kernels = kernels_of(engine, library_kernels)
    try:
        _, terms = estimate_instructions(manifest, kernels)
        n_in = int(manifest["input"]["size"])
        hop = int(manifest["window"]["hop"])
        channels = int(manifest["window"]["channels"])
    except (KeyError, TypeError, ValueError):
        return None
    network = sum(v for name, v in terms if name.startswith("network"))
    features = sum(v for name, v in terms if not name.startswith("network"))
    kinds = (manifest.get("frontend") or {}).get("kinds") or ["raw"]
    frontend = features + (RAW_PER_INPUT * n_in if kinds == ["raw"] else RAW_PER_INPUT / 2 * n_in)
    score = SCORE_PER_INPUT * n_in
    samples = PUSH_PER_SAMPLE_VALUE * channels * hop
    instructions = {
        "frontend": round(frontend),
        "engine": round(network),
        "score": round(score),
        "window": round(frontend + network + score + samples),
    }
    cyc = {
        "frontend": frontend * CPI["frontend"],
        "engine": network * CPI[kernels],
        "score": score * CPI["score"],
    }
    cyc["window"] = sum(cyc.values()) + samples * CPI["frontend"]
    return {
        "instructions": instructions,
        "cycles": {k: {q: round(v) for q in ("nominal", "low", "high")} for k, v in cyc.items()},
    }
