"""Compiled engine vs TFLM (tflite_micro): bit-exact int8 outputs on random dense models.

Two paths:
- data-driven: every model is lowered by the generator and its stages are run through the C kernels
  (one host library, layer descriptors passed from Python): >= 300 random models;
- full: a subset of models goes through the generated model_compiled.c compiled into its own
  host library with tae_engine_compiled.c, exactly what the firmware builds.
"""

from __future__ import annotations

import ctypes
import re

import numpy as np
import pytest
import random_models as rm

from tinyae.hostbuild import CORE_DIR, build_shared, load
from tinyae.train.compiled import render
from tinyae.train.int8.arithmetic import TFLITE_MICRO
from tinyae.train.int8.lower import FcStage, Lowered, kernel_words, lower, padded_bias, quant_params
from tinyae.train.tflite import read_tflite

SRC = CORE_DIR / "src"
N_MODELS = 320
N_FULL = 30


class FcLayer(ctypes.Structure):
    _fields_ = [
        ("weights", ctypes.c_void_p),
        ("bias", ctypes.c_void_p),
        ("multiplier", ctypes.c_void_p),
        ("shift", ctypes.c_void_p),
        ("lut", ctypes.c_void_p),
        ("in_features", ctypes.c_uint16),
        ("out_features", ctypes.c_uint16),
        ("per_channel", ctypes.c_uint8),
        ("fast", ctypes.c_uint8),
        ("out_zero_point", ctypes.c_int8),
        ("act_min", ctypes.c_int8),
        ("act_max", ctypes.c_int8),
        ("paired", ctypes.c_uint8),
    ]


@pytest.fixture(scope="module")
def kernels() -> ctypes.CDLL:
    lib = load(build_shared("tae_kernels", [SRC / "tae_kernels.c"], [SRC]))
    lib.tae_fc_s8.argtypes = [ctypes.POINTER(FcLayer), ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    lib.tae_lut_s8.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint32]
    lib.tae_multiply_by_quantized_multiplier.argtypes = [ctypes.c_int32, ctypes.c_int32, ctypes.c_int]
    lib.tae_multiply_by_quantized_multiplier.restype = ctypes.c_int32
    lib.tae_requantize_fast.argtypes = [ctypes.c_int32, ctypes.c_int32, ctypes.c_int, ctypes.c_int32]
    lib.tae_requantize_fast.restype = ctypes.c_int32
    return lib


def _ptr(a: np.ndarray) -> int:
    return a.ctypes.data


def run_stages(
    lib: ctypes.CDLL,
    model: bytes,
    inputs: np.ndarray,
    force_general: bool = False,
    force_plain: bool = False,
    low: Lowered | None = None,
) -> np.ndarray:
    """Run the lowered model through the C kernels, one stage after another (force_general: never
    take the short requantization, as for layers where the generator cannot prove it exact;
    force_plain: the plain weight layout, as for layers too wide for the paired one; `low`: the model
    already lowered with TFLITE_MICRO's rule, when the caller has it)."""
    if low is None:
        low = lower(read_tflite(model), TFLITE_MICRO)
    keep: list = []
    calls = []
    for st in low.stages:
        if isinstance(st, FcStage):
            paired = st.paired and not (force_plain or force_general)
            mult, shift = quant_params(st, paired)
            arrays = [
                kernel_words(st, paired),
                None if paired else padded_bias(st).astype(np.int32),
                mult,
                shift,
                st.lut.astype(np.int8) if st.lut is not None else None,
            ]
            keep.append(arrays)
            layer = FcLayer(
                *(_ptr(a) if a is not None else None for a in arrays),
                st.in_features,
                st.out_features,
                int(st.per_channel),
                0 if force_general else int(st.fast),
                st.out_zero_point,
                st.act_min,
                st.act_max,
                int(paired),
            )
            keep.append(layer)
            calls.append(("fc", layer, st.in_features, st.out_features))
        else:
            lut = st.lut.astype(np.int8)
            keep.append(lut)
            calls.append(("lut", lut, st.size, st.size))
    outs = []
    for row in inputs:
        cur = np.ascontiguousarray(row, dtype=np.int8)
        for kind, obj, n, m in calls:
            nxt = np.zeros(m, dtype=np.int8)
            if kind == "fc":
                xbuf = np.zeros((n + 7) // 8 * 4, dtype=np.uint32)
                lib.tae_fc_s8(ctypes.byref(obj), _ptr(cur), _ptr(nxt), _ptr(xbuf))
            else:
                lib.tae_lut_s8(_ptr(obj), _ptr(cur), _ptr(nxt), n)
            cur = nxt
        outs.append(cur)
    return np.stack(outs)


def _mismatch_report(spec, ref: np.ndarray, got: np.ndarray) -> str:
    bad = np.argwhere(ref != got)
    r, c = bad[0]
    return (
        f"seed {spec.seed}: {len(bad)} mismatches, first at row {r} col {c}: "
        f"tflm {ref[r, c]} compiled {got[r, c]}; spec {spec}"
    )


@pytest.mark.slow  # hundreds of random models through TFLM and the kernels
def test_random_models_bitexact_kernels(kernels) -> None:
    """>= 300 random models (1-6 layers, widths 1-256, all activations, LOGISTIC/TANH/QUANTIZE)."""
    rng = np.random.default_rng(1234)
    seen = {"LOGISTIC": 0, "TANH": 0, "QUANTIZE": 0, "per_channel": 0, "no_bias": 0}
    nontrivial = 0
    for seed in range(N_MODELS):
        spec = rm.random_spec(seed)
        model = rm.build_model(spec)
        x = rm.random_inputs(rng, spec.inputs, 6)
        ref = rm.run_tflm(model, x)
        got = run_stages(kernels, model, x)
        assert got.shape == ref.shape
        assert np.array_equal(ref, got), _mismatch_report(spec, ref, got)
        nontrivial += int(len(np.unique(ref)) > 2)
        if spec.final:
            seen[spec.final] += 1
        seen["QUANTIZE"] += spec.requantize_after is not None
        seen["per_channel"] += any(layer.per_channel for layer in spec.layers)
        seen["no_bias"] += any(not layer.bias for layer in spec.layers)
    # the random models really exercise what they claim to
    assert all(v >= 10 for v in seen.values()), seen
    assert nontrivial > N_MODELS // 2


def narrow_per_channel(spec: rm.ModelSpec, rng: np.random.Generator) -> rm.ModelSpec:
    """Every layer per-channel, weight scales within a factor 8 (as TensorFlow's converter writes
    them): the paired per-channel layout with its 4-entry shift table, not the plain fallback."""
    for layer in spec.layers:
        layer.per_channel = True
    lo = float(rng.uniform(-3.5, -1.9))
    spec.weight_scale_log10 = (lo, lo + 0.9)
    return spec


def test_paired_per_channel_bitexact(kernels) -> None:
    """80 random models whose per-channel layers take the paired layout (multiplier words with a
    2-bit shift index in the stream), bit-exact; shift tables of 1 to 4 distinct entries."""
    rng = np.random.default_rng(4321)
    paired, distinct = 0, set()
    for seed in range(5000, 5080):
        spec = narrow_per_channel(rm.random_spec(seed), rng)
        model = rm.build_model(spec)
        low = lower(read_tflite(model), TFLITE_MICRO)
        for st in low.stages:
            if isinstance(st, FcStage) and st.paired:
                paired += 1
                distinct.add(len(set(st.shift.tolist())))
        x = rm.random_inputs(rng, spec.inputs, 5)
        ref = rm.run_tflm(model, x)
        got = run_stages(kernels, model, x, low=low)
        assert np.array_equal(ref, got), _mismatch_report(spec, ref, got)
    assert paired >= 80 and distinct == {1, 2, 3, 4}, (paired, distinct)


def test_general_requantization_path_bitexact(kernels) -> None:
    """The plain weight layout on 40 random models, half of them with the general
    MultiplyByQuantizedMultiplier path (used when `fast` is 0), half with the fast requantization."""
    rng = np.random.default_rng(77)
    for seed in range(2000, 2040):
        spec = rm.random_spec(seed)
        model = rm.build_model(spec)
        x = rm.random_inputs(rng, spec.inputs, 4)
        ref = rm.run_tflm(model, x)
        got = run_stages(kernels, model, x, force_general=seed % 2 == 0, force_plain=True)
        assert np.array_equal(ref, got), _mismatch_report(spec, ref, got)


@pytest.mark.slow  # hundreds of random models through TFLM and the kernels
def test_generated_c_bitexact(tmp_path) -> None:
    """A subset through the full generated model_compiled.c + tae_engine_compiled.c host build."""
    rng = np.random.default_rng(99)
    entry_points: set[str] = set()
    for seed in range(1000, 1000 + N_FULL):
        spec = rm.random_spec(seed, max_width=128 if seed % 3 else 256)
        if seed % 2:  # the paired per-channel entry points too
            spec = narrow_per_channel(spec, rng)
        model = rm.build_model(spec)
        d = tmp_path / f"m{seed}"
        d.mkdir()
        header, source, info = render(
            model, "pytest", layouts="plain" if seed % 5 == 0 else "auto", arithmetic=TFLITE_MICRO
        )
        entry_points.update(re.findall(r"(tae_fc_\w*s8)\(&", source))
        (d / "model_compiled.h").write_text(header)
        (d / "model_compiled.c").write_text(source)
        so = build_shared(
            f"compiled_{seed}",
            [d / "model_compiled.c", SRC / "tae_kernels.c", SRC / "tae_engine_compiled.c"],
            [d, SRC],
        )
        lib = load(so)
        lib.tae_engine_invoke.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        lib.tae_engine_name.restype = ctypes.c_char_p
        lib.tae_engine_ram_bytes.restype = ctypes.c_uint32
        assert lib.tae_engine_init() == 0
        assert lib.tae_engine_name() == b"compiled"
        assert lib.tae_engine_ram_bytes() == info["scratch_bytes"]
        x = rm.random_inputs(rng, spec.inputs, 5)
        ref = rm.run_tflm(model, x)
        got = np.zeros_like(ref)
        for i, row in enumerate(x):
            row = np.ascontiguousarray(row)
            out = np.zeros(ref.shape[1], dtype=np.int8)
            assert lib.tae_engine_invoke(_ptr(row), _ptr(out)) == 0
            got[i] = out
        assert np.array_equal(ref, got), _mismatch_report(spec, ref, got)
    # every kernel entry point the generator emits was run
    assert entry_points == {
        "tae_fc_s8",
        "tae_fc_paired_pt_s8",
        "tae_fc_paired_pc_s8",
        "tae_fc_paired_pt_lut_s8",
        "tae_fc_paired_pc_lut_s8",
    }, entry_points


def test_multiply_by_quantized_multiplier_edges(kernels) -> None:
    """C requantization vs the Python reimplementation on edge values (saturation, ties, big shifts)."""
    from tinyae.train.int8 import quant

    rng = np.random.default_rng(5)
    xs = [0, 1, -1, 2**31 - 1, -(2**31), 12345, -12345, 1 << 20, -(1 << 20)]
    xs += [int(v) for v in rng.integers(-(2**31), 2**31, 200)]
    cases = [(2**31 - 1, 0), (1 << 30, 1), (1 << 30, -31), (1518500250, -7), (1073741824, 0), (0, 0)]
    mults, shifts = rng.integers(1 << 30, 2**31, 40), rng.integers(-31, 8, 40)
    cases += [(int(m), int(s)) for m, s in zip(mults, shifts, strict=True)]
    for m, s in cases:
        for x in xs:
            if s > 0 and not (-(2**31) <= x * (1 << s) < 2**31):
                continue  # TFLM's left shift overflows (undefined in C++); not a case models produce
            expect = quant.multiply_by_quantized_multiplier(x, m, s)
            assert kernels.tae_multiply_by_quantized_multiplier(x, m, s) == expect, (x, m, s)


def test_fast_requantization_edges(kernels) -> None:
    """The kernels' short requantization (portable C) equals TFLite's MultiplyByQuantizedMultiplier
    plus the zero point on the edges of the domain the generator allows it on."""
    from tinyae.train.int8 import quant

    cases = rm.fast_requant_cases(np.random.default_rng(6))
    assert len(cases) > 1000
    for acc, m, s, zp in cases:
        expect = quant.multiply_by_quantized_multiplier(acc, m, s) + zp
        assert kernels.tae_requantize_fast(acc, m, s, zp) == expect, (acc, m, s, zp)


@pytest.mark.parametrize("scale", [1.0, 0.5, 0.75, 1e-12, 3.0e-10, 0.999999999, 1.5, 1234.5678])
def test_quantize_multiplier_reconstructs_scale(scale) -> None:
    from tinyae.train.int8 import quant

    m, s = quant.quantize_multiplier(scale)
    if m == 0:
        assert scale < 2.0**-31
        return
    assert (1 << 30) <= m < (1 << 31)
    assert abs(m * 2.0 ** (s - 31) - scale) <= scale * 2.0**-30
