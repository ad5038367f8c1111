"""A flash/RAM estimate from manifest.json alone, before any firmware is linked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tinyae.errors import UserError
from tinyae.train.frontend.spec import Spectral

from .config import Budgets, load_budgets
from .figures import Estimate

ENGINES = ("tflm", "compiled")


def _get(manifest: dict[str, Any], dotted: str) -> Any:
    node: Any = manifest
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise UserError(
                f"manifest lacks {dotted!r}, which the estimate needs; regenerate it with `make model`"
            )
        node = node[part]
    return node


def _int(manifest: dict[str, Any], dotted: str) -> int:
    value = _get(manifest, dotted)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UserError(
            f"manifest {dotted!r} is {value!r}, not a byte count; regenerate it with `make model`"
        )
    return value


def compiled_model_bytes(manifest: dict[str, Any]) -> tuple[int, str]:
    """Flash of the compiled engine's constants: the generator's own count (compiled.const_bytes) when the
    manifest has it, else int8 weights + int32 bias, multiplier and shift per unit (an upper bound)."""
    const = manifest.get("compiled", {}).get("const_bytes")
    if isinstance(const, int) and not isinstance(const, bool) and const > 0:
        return const, "compiled.const_bytes (weights, biases, requantization, tables as generated)"
    layers = manifest.get("model", {}).get("layers")
    if not layers:
        n = _int(manifest, "model.tflite_bytes")
        return n, "no model.layers: the .tflite size as an upper bound"
    fan_in = _int(manifest, "input.size")
    weights = biases = 0
    for layer in layers:
        units = int(layer["units"])
        weights += fan_in * units
        biases += units
        fan_in = units
    total = weights + 4 * biases + 8 * biases
    return (
        total,
        f"{weights:,} int8 weights + {biases:,} units x (int32 bias + int32 multiplier + int32 shift)",
    )


# Code of each front-end kind, arm-none-eabi-gcc -Os: the flash the front-end harness adds minus its
# generated tables, fitted by `tinyae bench costmodel` (bench/costmodel.json "fit.frontend_code_flash";
# spectral 1,162-1,366 B over 6 front-ends, mean 1,278; stats 455 B + 45 B per statistic, least squares over
# 4). Raw needs no code beyond the pipeline's.
FRONTEND_CODE_FLASH = {"raw": 0, "spectral": 1278, "stats": 455}
STATS_CODE_PER_STAT = 45


def frontend_tables(frontend: dict[str, Any], channels: int) -> int:
    """Flash of the spectral front-end's generated tables: window, interleaved twiddles, bit reversal,
    band edges, per-band log floors (0 without a spectral part)."""
    if not frontend.get("spectral"):
        return 0
    sp = Spectral.from_manifest(frontend["spectral"])
    n = sp.fft_length
    return 4 * n + 4 * n + 2 * (n // 2) + 2 * (sp.bands + 1) + (4 * channels * sp.bands if sp.log else 0)


def normalization_bytes(manifest: dict[str, Any]) -> int:
    """Flash of the per-feature normalization offsets and gains of a feature front-end (float32 each)."""
    fe = manifest.get("frontend") or {}
    if (fe.get("kinds") or ["raw"]) == ["raw"]:
        return 0
    return 8 * int(fe.get("feature_size", manifest.get("input", {}).get("size", 0)))


def frontend_bytes(manifest: dict[str, Any]) -> tuple[int, int, str]:
    """(flash, static RAM, how) the feature front-end adds; (0, 0) for the raw front-end."""
    fe = manifest.get("frontend") or {}
    kinds = fe.get("kinds") or ["raw"]
    if kinds == ["raw"]:
        return 0, 0, ""
    size = int(fe.get("feature_size", manifest.get("input", {}).get("size", 0)))
    channels = int(manifest.get("window", {}).get("channels", 1))
    flash = sum(FRONTEND_CODE_FLASH.get(k, 0) for k in kinds) + frontend_tables(fe, channels)
    if "stats" in kinds:
        flash += STATS_CODE_PER_STAT * len(fe.get("stats") or ())
    ram = 4 * size
    if fe.get("spectral"):
        ram += Spectral.from_manifest(fe["spectral"]).work_bytes
    flash += normalization_bytes(manifest)
    return flash, ram, "code per kind (FRONTEND_CODE_FLASH) + FFT/band/log-floor tables + normalization"


# On-site calibration's code, arm-none-eabi-gcc -Os, the emulated board: tae_calib.c 1,932 B, tae_app.c
# +1,120 B, tae_protocol.c +198 B, tae_pipeline.c +50 B, the semihosting store 400 B (object sizes of
# this code against the commit before it), rounded up. A board's flash store (mbed TDBStore, ESP32 NVS)
# adds its library's code, which the linked-image gate counts.
CALIBRATION_CODE_FLASH = 3_800


def calibration_bytes(manifest: dict[str, Any]) -> tuple[int, int, str]:
    """(flash, static RAM, how) of on-site calibration; (0, 0) for a manifest without it."""
    cal = manifest.get("calibration")
    if not isinstance(cal, dict) or not isinstance(cal.get("ram_bytes"), int):
        return 0, 0, ""
    ram = int(cal["ram_bytes"])
    fe = manifest.get("frontend") or {}
    if (fe.get("kinds") or ["raw"]) != ["raw"]:
        window = manifest.get("window", {})
        ram += 4 * int(window.get("length", 0)) * int(window.get("channels", 0))  # the corrected window
    flash = CALIBRATION_CODE_FLASH + 12 * int(manifest.get("window", {}).get("channels", 0))
    return flash, ram, "calibration.ram_bytes (state, records) + corrected window; code + reference tables"


# The serial protocol's frame buffers (firmware/lib/tinyae/src/tae_protocol.h): the application holds one
# decoded frame being received (tae_frame_decoder_t: the buffer and 32 B of state) and one to send (g_tx),
# each TAE_PROTO_MAX_FRAME bytes, the largest of a SAMPLES batch, a RESULT with the raw int8 input and
# output, an INFO and a CALIB_STATE with the calibration record.
PROTO_OVERHEAD = 10  # header + CRC
PROTO_MAX_BATCH = 32  # samples per SAMPLES frame
PROTO_DECODER_STATE = 32


def protocol_frame_bytes(manifest: dict[str, Any]) -> int:
    """TAE_PROTO_MAX_FRAME for this model (the firmware computes it from the same constants)."""
    channels = int(manifest.get("window", {}).get("channels", 1))
    in_size, out_size = _int(manifest, "input.size"), _int(manifest, "output.size")
    cal = manifest.get("calibration")
    record = int(cal.get("record", {}).get("bytes", 0)) if isinstance(cal, dict) else 0
    body = max(7 + PROTO_MAX_BATCH * channels * 4, 21 + in_size + out_size, 108 + 4 * 32, 12 + record)
    return PROTO_OVERHEAD + body


def estimate_from_manifest(
    manifest: dict[str, Any], target: str, engine: str, budgets: Budgets | None = None
) -> Estimate:
    """Estimate the image's flash and RAM for `target` and `engine` ("tflm" or "compiled")."""
    if engine not in ENGINES:
        raise UserError(f"unknown engine {engine!r}; pass one of {', '.join(ENGINES)}")
    b = budgets if budgets is not None else load_budgets()
    t = b.target(target)
    e = b.engine(engine)
    in_size = _int(manifest, "input.size")
    out_size = _int(manifest, "output.size")
    terms: list[tuple[str, str, int, str]] = []

    if engine == "tflm":
        model = _int(manifest, "model.tflite_bytes")
        model_how = "model.tflite_bytes (the flatbuffer array)"
        arena = _int(manifest, "arena.bytes")
        arena_how = "arena.bytes (host measurement + margin)"
    else:
        model, model_how = compiled_model_bytes(manifest)
        scratch = manifest.get("compiled", {}).get("scratch_bytes")
        if isinstance(scratch, int) and not isinstance(scratch, bool):
            arena, arena_how = scratch, "compiled.scratch_bytes"
        else:
            widths = [in_size, out_size] + [
                int(x["units"]) for x in manifest.get("model", {}).get("layers", [])
            ]
            arena = 2 * max(widths) + 4 * max(widths)
            arena_how = (
                "no compiled.scratch_bytes: 2 int8 ping-pong buffers + int32 accumulators of the widest layer"
            )

    fe_flash, fe_ram, fe_how = frontend_bytes(manifest)
    cal_flash, cal_ram, cal_how = calibration_bytes(manifest)

    window = manifest.get("window", {})
    if isinstance(window.get("length"), int) and isinstance(window.get("channels"), int):
        raw_window = 4 * window["length"] * window["channels"]
    else:
        raw_window = 4 * in_size
    io = raw_window + in_size + out_size
    frame = protocol_frame_bytes(manifest)
    frames = 2 * frame + PROTO_DECODER_STATE

    terms += [
        ("flash", f"{t.name} framework", t.framework_flash, "framework_flash in budgets.toml"),
        ("flash", f"{engine} engine code", e.code_flash, f"engines.{engine}.code_flash in budgets.toml"),
        ("flash", "model", model, model_how),
        ("ram", f"{t.name} framework", t.framework_ram, "framework_ram in budgets.toml"),
        ("ram", f"{engine} engine objects", e.ram, f"engines.{engine}.ram in budgets.toml"),
        ("ram", "arena/scratch", arena, arena_how),
        (
            "ram",
            "I/O buffers",
            io,
            f"float32 raw window {raw_window:,} + int8 input {in_size:,} + output {out_size:,}",
        ),
        (
            "ram",
            "protocol frames",
            frames,
            f"a frame received and one sent, {frame:,} B each (TAE_PROTO_MAX_FRAME), + decoder state",
        ),
        ("ram", "stack reservation", t.stack_reserve, "stack_reserve in budgets.toml"),
    ]
    if fe_flash or fe_ram:
        terms.insert(3, ("flash", "feature front-end", fe_flash, fe_how))
        terms.insert(-1, ("ram", "feature front-end", fe_ram, "features (float32) + FFT scratch"))
    if cal_flash or cal_ram:
        terms.insert(3, ("flash", "on-site calibration", cal_flash, cal_how))
        terms.insert(-1, ("ram", "on-site calibration", cal_ram, cal_how))
    return Estimate(
        target=t.name,
        source="estimate",
        flash_capacity=t.flash_capacity,
        ram_capacity=t.ram_capacity,
        flash=t.framework_flash + e.code_flash + model + fe_flash + cal_flash,
        ram_static=t.framework_ram + e.ram + arena + io + frames + fe_ram + cal_ram,
        stack_reserved=t.stack_reserve,
        stack_source="stack_reserve in budgets.toml",
        heap_reserved=0,
        parts={"model": model, "engine": e.code_flash, "arena": arena},
        engine=engine,
        terms=terms,
    )


def load_manifest(path: str | Path) -> dict[str, Any]:
    """The manifest at path, validated (train/manifest.py), in its JSON layout (what the estimators read)."""
    from tinyae.train.manifest import Manifest

    p = Path(path)
    if not p.is_file():
        raise UserError(f"manifest {p} does not exist; run `make model` first (or pass --manifest)")
    return Manifest.load(p).to_dict()
