"""Host reference throughput: windows per second through tinyae.train.reference.HostReference (tflite_micro).

Two figures per model: the whole reference (float32 preprocessing + TFLM invoke per window + score),
and TFLM's invoke alone on already-quantized windows.
"""

from __future__ import annotations

import numpy as np

from tinyae.tools.bench.common import rate
from tinyae.tools.bench.models import TrainedModel

REPEATS = 5


def figures(model: TrainedModel, repeats: int = REPEATS) -> dict:
    from tinyae.train.reference import HostReference

    vec = np.load(model.dir / "test_vectors.npz")
    windows = vec["windows"]
    ref = HostReference.from_manifest((model.dir / "model_int8.tflite").read_bytes(), model.typed)
    input_q = ref.quantize(windows)
    full, _ = rate(lambda: len(ref.evaluate(windows).scores), repeats)
    invoke, _ = rate(lambda: len(ref.run_int8(input_q)), repeats)
    return {
        "model": model.spec.name,
        "shape": model.shape,
        "windows_per_run": len(windows),
        "repeats": repeats,
        "evaluate_windows_per_s": full.to_dict(1),
        "tflm_invoke_windows_per_s": invoke.to_dict(1),
        "command": (
            "tinyae.tools.bench.hostref.figures: HostReference.from_manifest(...).evaluate(test_vectors windows) "
            "and .run_int8(input_q), each timed until >= 0.3 s per run"
        ),
    }
