"""`tinyae import` refuses what it cannot import, each in one sentence naming the op, tensor or setting, exit 2,
and writes nothing. The models are int8 flatbuffers written directly (tests/random_models.py, no TensorFlow);
tests/test_import.py refuses the same kinds on models made by Keras and TFLiteConverter."""

from __future__ import annotations

import json
from pathlib import Path

import flatbuffers
import pytest
import random_models as rm
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

from tests.conftest import ROOT
from tinyae.cli import main as tinyae

DEFAULT = str(ROOT / "configs" / "default.toml")  # the synthetic recording: windows of 64 x 3 (192 values)


def _patched(model: bytes, edit) -> bytes:  # type: ignore[no-untyped-def]
    m = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(model, 0))
    edit(m.subgraphs[0])
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def _input_quantization(scale: float, zero_point: int):  # type: ignore[no-untyped-def]
    def edit(sg) -> None:  # type: ignore[no-untyped-def]
        q = sg.tensors[sg.inputs[0]].quantization
        q.scale, q.zeroPoint = [scale], [zero_point]

    return edit


def dense(inputs: int = 192, widths: tuple[int, ...] = (16, 192), per_channel: bool = False) -> bytes:
    """A dense int8 autoencoder whose input range, [-4, 4], suits z-scored windows."""
    layers = [
        rm.DenseLayer(w, "RELU" if i < len(widths) - 1 else "NONE", per_channel) for i, w in enumerate(widths)
    ]
    model = rm.build_model(rm.ModelSpec(inputs=inputs, layers=layers, seed=3))
    return _patched(model, _input_quantization(8.0 / 255.0, 0))


def refused(tmp_path: Path, capsys, model: bytes | None, *extra: str) -> str:  # type: ignore[no-untyped-def]
    """Run `tinyae import` on `model` (None: a path that does not exist); the one error sentence."""
    path = tmp_path / "user_model.tflite"
    if model is not None:
        path.write_bytes(model)
    out = tmp_path / "out"
    code = tinyae(["import", str(path), "--config", DEFAULT, "--out", str(out), "--quiet", *extra])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, err
    assert not out.exists(), "a refused import wrote files"
    return lines[0]


def test_a_missing_file_and_a_file_that_is_no_model(tmp_path, capsys) -> None:
    assert "does not exist" in refused(tmp_path, capsys, None)
    assert "is not a .tflite model" in refused(tmp_path, capsys, b"Keras weights, not a flatbuffer")
    msg = refused(tmp_path, capsys, dense()[:1000])
    assert "is not a readable .tflite model (its flatbuffer is truncated or damaged" in msg


def test_float_input_or_output_is_refused_naming_the_tensor(tmp_path, capsys) -> None:
    def float_in(sg) -> None:  # type: ignore[no-untyped-def]
        sg.tensors[sg.inputs[0]].type = fb.TensorType.FLOAT32

    def float_out(sg) -> None:  # type: ignore[no-untyped-def]
        sg.tensors[sg.outputs[0]].type = fb.TensorType.FLOAT32

    msg = refused(tmp_path, capsys, _patched(dense(), float_in))
    assert "the model input 'input' is FLOAT32" in msg and "inference_input_type" in msg
    assert "the model output 'fc1' is FLOAT32" in refused(tmp_path, capsys, _patched(dense(), float_out))


@pytest.mark.parametrize("op", ["CONV_2D", "ADD", "SOFTMAX"])
def test_an_op_outside_the_supported_set_is_refused_by_name(tmp_path, capsys, op: str) -> None:
    model = rm.with_extra_op(dense(), getattr(fb.BuiltinOperator, op))
    msg = refused(tmp_path, capsys, model)
    assert f"the op {op} (op 2, output 'extra') cannot be imported" in msg and "FULLY_CONNECTED" in msg


def test_an_input_size_that_is_not_the_window_is_refused(tmp_path, capsys) -> None:
    msg = refused(tmp_path, capsys, dense(inputs=100, widths=(16, 100)))
    assert "the model input 'input' takes 100 values, but a window of 64 samples x 3 channels" in msg
    assert "gives 192" in msg and "would match" not in msg
    msg = refused(tmp_path, capsys, dense(inputs=96, widths=(16, 96)))
    assert "takes 96 values" in msg and "window.length = 32 would match" in msg
    spectral = ["--set", "frontend.kinds=spectral"]
    msg = refused(tmp_path, capsys, dense(), *spectral)
    assert "the front-end (spectral) gives" in msg and "takes 192 values" in msg


def test_an_output_that_is_not_the_input_size_is_refused(tmp_path, capsys) -> None:
    msg = refused(tmp_path, capsys, dense(widths=(16, 64)))
    assert "the model output 'fc1' has 64 values but its input 'input' has 192" in msg


def test_a_batched_input_shape_is_refused(tmp_path, capsys) -> None:
    def two_rows(sg) -> None:  # type: ignore[no-untyped-def]
        sg.tensors[sg.inputs[0]].shape = [2, 96]

    msg = refused(tmp_path, capsys, _patched(dense(inputs=96, widths=(192,)), two_rows))
    assert "FULLY_CONNECTED 'fc0' applies its 96-input weights to each row of 'input' (shape [2, 96])" in msg


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("{offset: 1}", "is not readable JSON"),
        ('{"offset": [0, 0, 0]}', "must hold exactly the keys offset and scale"),
        (
            '{"offset": [0, 0], "scale": [1, 1]}',
            "`offset` has 2 values, but the model's inputs need one per channel",
        ),
        ('{"offset": 0, "scale": [1, 0, 1]}', "`scale` must be positive"),
        ('{"offset": "0", "scale": 1}', "`offset` must be a number or a list of numbers"),
        ('{"offset": 1e39, "scale": 1}', "not a finite float32"),
        # positive as a double, 0 as the float32 the device stores (its gain would be inf)
        (
            '{"offset": 0, "scale": 1e-50}',
            "`scale` holds 1e-50, which is not a finite float32 the device can use: "
            "it becomes 0 as a float32",
        ),
    ],
)
def test_a_bad_normalization_file_is_refused(tmp_path, capsys, content: str, words: str) -> None:
    f = tmp_path / "norm.json"
    f.write_text(content)
    assert words in refused(tmp_path, capsys, dense(), "--normalization", str(f))


def test_an_unknown_normalization_is_refused(tmp_path, capsys) -> None:
    msg = refused(tmp_path, capsys, dense(), "--normalization", "zscore")
    assert "--normalization 'zscore' is neither fit, none nor an existing JSON file" in msg


def test_normal_data_outside_the_models_input_range_are_refused(tmp_path, capsys) -> None:
    """A model whose input quantization was fitted on other inputs than tinyae would feed it: [0, 1] (min-max
    scaled by the user's script) against z-scored windows, and [-128, 127] (raw units) against the same."""
    unit = _patched(dense(), _input_quantization(1.0 / 255.0, -128))
    msg = refused(tmp_path, capsys, unit)
    assert "with zscore normalization (fitted)" in msg and "of the normal training inputs fall outside" in msg
    assert "the model's int8 inputs cover [0, 1]" in msg and "normalization.method" in msg
    wide = _patched(dense(), _input_quantization(1.0, 0))
    msg = refused(tmp_path, capsys, wide)
    assert "the normal training inputs reach only" in msg and "of the model's 256 int8 input levels" in msg
    msg = refused(tmp_path, capsys, unit, "--normalization", "none")
    assert "with no normalization" in msg and "the model expects normalized inputs" in msg


def test_weights_a_named_target_cannot_compute_are_refused(tmp_path, capsys) -> None:
    per_channel = dense(per_channel=True)
    msg = refused(tmp_path, capsys, per_channel, "--set", "quantize.targets=nano33ble")
    assert "per-channel FULLY_CONNECTED weights, which Chirale_TensorFLowLite 2.0.0 (nano33ble)" in msg
    assert "leave nano33ble out of quantize.targets" in msg
    msg = refused(tmp_path, capsys, per_channel, "--set", "quantize.weights=per_tensor")
    assert "quantize.weights = per_tensor, but the model's FULLY_CONNECTED weights are per-channel" in msg


def test_a_normalization_file_of_json_numbers_is_read(tmp_path) -> None:
    """One value for all channels broadcasts; a list gives one per channel."""
    from tinyae.train.importer import read_normalization

    f = tmp_path / "n.json"
    f.write_text(json.dumps({"offset": 1.5, "scale": [1, 2, 4]}))
    offset, scale = read_normalization(f, ["x", "y", "z"], "channel")
    assert offset.tolist() == [1.5, 1.5, 1.5] and scale.tolist() == [1.0, 2.0, 4.0]


def test_what_the_compiled_engine_cannot_compute_is_refused_without_engine_advice(tmp_path, capsys) -> None:
    def weight_zero_point(sg) -> None:  # type: ignore[no-untyped-def]
        sg.tensors[1].quantization.zeroPoint = [3]  # w0: the first layer's weights

    msg = refused(tmp_path, capsys, _patched(dense(), weight_zero_point))
    assert "weights 'w0' have a non-zero zero point; tinyae cannot import it" in msg and "--engine" not in msg


def test_an_import_that_fails_while_writing_leaves_the_previous_model_as_it_was(
    tmp_path, capsys, monkeypatch
) -> None:
    """The import builds the directory aside and swaps it in at the end (tinyae/atomic.py, as `tinyae model`):
    a disk that fills up once the imported model_int8.tflite is written leaves the model directory already at
    --out as it was, in one sentence, and no stage behind; a folder holding other files is never replaced."""
    import errno
    import os

    from tinyae.train import pipeline

    out = tmp_path / "out"
    out.mkdir()
    before = {
        "manifest.json": b'{"previous": true}\n',
        "model_int8.tflite": b"previous model",
        "loss.png": b"png",
    }
    for name, data in before.items():
        (out / name).write_bytes(data)
    path = tmp_path / "user_model.tflite"
    path.write_bytes(dense())

    def disk_full(q):  # type: ignore[no-untyped-def]
        assert q.path.read_bytes() == path.read_bytes() and q.path.parent != out  # written aside
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(q.path))

    monkeypatch.setattr(pipeline, "measure_arena", disk_full)
    code = tinyae(["import", str(path), "--config", DEFAULT, "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert code == 2 and len(lines) == 1 and "the disk is full" in lines[0] and "Traceback" not in err, err
    assert {f.name: f.read_bytes() for f in out.iterdir()} == before
    assert not [f.name for f in tmp_path.iterdir() if ".new-" in f.name]  # the stage is gone (the lock stays)
    (out / "notes.txt").write_text("the user's")
    code = tinyae(["import", str(path), "--config", DEFAULT, "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "notes.txt" in err and (out / "notes.txt").read_text() == "the user's"
