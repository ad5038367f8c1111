"""The host's int8 network (train/int8/network.py) against TFLM, and the multiplier rules of the engines.

- With tflite_micro's rule (the product of the scales in double) the NumPy network is tflite_micro bit for
  bit on random dense models: the arithmetic is the same, only the multiplier rule is a parameter.
- Models retuned onto multiplier ties (tools/testing/ties.py) separate the rules on purpose: there the
  pinned libraries' rule (TFLM: single-precision product) gives other outputs than tflite_micro, and the
  compiled engine's generated C follows the libraries' rule (tests/test_boardlib_*.py runs the libraries).
"""

from __future__ import annotations

import ctypes

import numpy as np
import pytest
import random_models as rm

from tinyae.hostbuild import CORE_DIR, build_shared, load
from tinyae.tools.testing.ties import retune
from tinyae.train.compiled import render
from tinyae.train.int8 import network, quant
from tinyae.train.int8.arithmetic import COMPILED_ENGINE, TFLITE_MICRO, TFLM, effective_scale
from tinyae.train.int8.lower import lower
from tinyae.train.tflite import read_tflite

SRC = CORE_DIR / "src"


def test_the_vectorized_requantization_is_the_scalar_definition() -> None:
    rng = np.random.default_rng(3)
    xs = np.concatenate(
        [[0, 1, -1, 2**31 - 1, -(2**31), 12345, -12345], rng.integers(-(2**31), 2**31, 300)]
    ).astype(np.int64)
    cases = [(2**31 - 1, 0), (1 << 30, 1), (1 << 30, -31), (1518500250, -7), (-(2**31), 0), (0, 0)]
    cases += [
        (int(m), int(s))
        for m, s in zip(rng.integers(1 << 30, 2**31, 40), rng.integers(-31, 4, 40), strict=True)
    ]
    for m, s in cases:
        ok = [x for x in xs if s <= 0 or -(2**31) <= x * (1 << s) < 2**31]
        got = network.multiply_by_quantized_multiplier(np.asarray(ok), m, s)
        want = [quant.multiply_by_quantized_multiplier(int(x), m, s) for x in ok]
        assert got.tolist() == want, (m, s)


def test_the_network_with_tflite_micros_rule_is_tflite_micro_bit_for_bit() -> None:
    rng = np.random.default_rng(8)
    for seed in range(120):  # the seeds of tests/test_compiled_bitexact.py: models TFLM accepts
        spec = rm.random_spec(seed)
        model = rm.build_model(spec)
        x = rm.random_inputs(rng, spec.inputs, 6)
        got = network.run(lower(read_tflite(model), TFLITE_MICRO), x)
        assert np.array_equal(got, rm.run_tflm(model, x)), seed


def test_the_rules_differ_only_in_the_per_tensor_product() -> None:
    s_in, s_w, s_out = 0.0123456789, 0.000987654321, 0.0456789
    assert TFLM.product(per_channel=True) == TFLITE_MICRO.product(per_channel=True) == "double"
    assert (
        TFLM.product(per_channel=False) == "float32" and TFLITE_MICRO.product(per_channel=False) == "double"
    )
    f32 = float(np.float32(np.float32(s_in) * np.float32(s_w))) / float(np.float32(s_out))
    assert effective_scale(s_in, s_w, s_out, "float32") == f32
    assert COMPILED_ENGINE == TFLM  # the compiled engine decides as the board libraries do


@pytest.fixture(scope="module")
def tie_models() -> list[tuple[bytes, np.ndarray, int]]:
    """Random per-tensor models with their last or first layer retuned onto ties of 64 inputs (seeds where
    64 inputs reach a tie within 1e-3 of the scale: last layer linear, first layer before LOGISTIC ...)."""
    out = []
    for seed, layer in [(7, -1), (19, 0), (21, -1), (24, 0)]:
        rng = np.random.default_rng(seed)
        spec = rm.random_spec(seed)
        for ly in spec.layers:
            ly.per_channel = False
        model = rm.build_model(spec)
        x = np.concatenate(
            [rm.random_inputs(rng, spec.inputs, 4), rng.integers(-128, 128, (60, spec.inputs))]
        )
        x = x.astype(np.int8)
        tuned, tie = retune(model, x, layer=layer, want=2)
        assert tie.elements >= 2 and abs(tie.new_scale / tie.old_scale - 1) < 1e-3
        out.append((tuned, x, tie.elements))
    return out


def test_retuned_models_land_where_the_rules_disagree(tie_models) -> None:
    for model, x, elements in tie_models:
        ours = network.run(lower(read_tflite(model), TFLM), x)
        nightly = rm.run_tflm(model, x)
        assert np.array_equal(network.run(lower(read_tflite(model), TFLITE_MICRO), x), nightly)
        diff = np.abs(ours.astype(np.int32) - nightly.astype(np.int32))
        assert int(np.sum(diff != 0)) == elements >= 2


def test_the_compiled_engine_follows_the_board_libraries_rule(tie_models, tmp_path) -> None:
    """The generated C (the compiled engine as shipped) equals the NumPy network with the TFLM rule on the
    tie models, where tflite_micro's rule would differ."""
    for i, (model, x, _) in enumerate(tie_models):
        d = tmp_path / f"m{i}"
        d.mkdir()
        header, source, _info = render(model, "pytest")
        (d / "model_compiled.h").write_text(header)
        (d / "model_compiled.c").write_text(source)
        lib = load(
            build_shared(
                f"tie_{i}",
                [d / "model_compiled.c", SRC / "tae_kernels.c", SRC / "tae_engine_compiled.c"],
                [d, SRC],
            )
        )
        lib.tae_engine_invoke.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        assert lib.tae_engine_init() == 0
        want = network.run(lower(read_tflite(model), COMPILED_ENGINE), x)
        for row, expected in zip(x, want, strict=True):
            row = np.ascontiguousarray(row)
            out = np.zeros(len(expected), np.int8)
            assert lib.tae_engine_invoke(row.ctypes.data, out.ctypes.data) == 0
            assert np.array_equal(out, expected)
