"""The compiled engine under AddressSanitizer + UndefinedBehaviorSanitizer (standalone driver).

Generated model + kernels + engine + firmware/tests/compiled_driver.c built with gcc
-fsanitize=address,undefined; input rows from a file; outputs compared with tflite_micro.
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
import random_models as rm

from tinyae.hostbuild import CORE_DIR, ROOT, build_program
from tinyae.train.compiled import render
from tinyae.train.int8.arithmetic import TFLITE_MICRO

SRC = CORE_DIR / "src"
DRIVER = ROOT / "firmware" / "tests" / "compiled_driver.c"

SPECS = [
    # the reference autoencoder shape, linear output
    rm.ModelSpec(
        128,
        [rm.DenseLayer(w, a) for w, a in ((64, "RELU"), (16, "RELU"), (64, "RELU"), (128, "NONE"))],
        seed=21,
    ),
    # odd widths (row and input padding), per-channel, no bias, requantize and a final TANH
    rm.ModelSpec(
        37,
        [
            rm.DenseLayer(5, "RELU6", per_channel=True, bias=False),
            rm.DenseLayer(255, "NONE"),
            rm.DenseLayer(1, "RELU", per_channel=True),
        ],
        final="TANH",
        requantize_after=1,
        seed=22,
    ),
    # a RESHAPE first and a final LOGISTIC, extreme scales
    rm.ModelSpec(
        3,
        [rm.DenseLayer(7, "NONE", per_channel=True), rm.DenseLayer(2, "RELU")],
        final="LOGISTIC",
        reshape_input=True,
        seed=23,
        act_scale_log10=(-6.0, 2.0),
        weight_scale_log10=(-6.0, 0.5),
    ),
]


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
@pytest.mark.parametrize("spec", SPECS, ids=["ae128", "odd_tanh", "reshape_logistic"])
def test_compiled_engine_under_asan_ubsan(spec, tmp_path) -> None:
    model = rm.build_model(spec)
    header, source, _ = render(model, "pytest", arithmetic=TFLITE_MICRO)
    (tmp_path / "model_compiled.h").write_text(header)
    (tmp_path / "model_compiled.c").write_text(source)
    sources = [DRIVER, tmp_path / "model_compiled.c", SRC / "tae_kernels.c", SRC / "tae_engine_compiled.c"]
    exe = build_program("compiled_driver", sources, [tmp_path, SRC], sanitize=True, opt="-O1")
    x = rm.random_inputs(np.random.default_rng(spec.seed), spec.inputs, 40)
    (tmp_path / "in.bin").write_bytes(x.tobytes())
    run = subprocess.run(
        [str(exe), str(tmp_path / "in.bin"), str(tmp_path / "out.bin")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith(f"PASS {len(x)} "), run.stdout + run.stderr
    assert "runtime error" not in run.stderr
    got = np.frombuffer((tmp_path / "out.bin").read_bytes(), dtype=np.int8).reshape(len(x), -1)
    ref = rm.run_tflm(model, x)
    assert np.array_equal(ref, got), np.argwhere(ref != got)[:5]
