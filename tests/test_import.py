"""`tinyae import` on int8 models tinyae did not write: plain Keras code (several layer counts and widths, ReLU and
linear, with and without a final sigmoid) trained for two epochs on the user's normal data and converted full-int8
with tf.lite.TFLiteConverter as a user would. Each is imported, then built for the emulated board and verified bit
for bit there; MLPerf Tiny's anomaly-detection autoencoder (640 inputs, 264,192 MACs) imports and runs too;
importing tinyae's own model gives its artifacts again (one path after the int8 model); threshold, budget, calibrate
and make's model rule work on an imported model; and Keras models tinyae cannot run are refused in one sentence.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT, has_arm_toolchain
from tinyae.cli import main as tinyae

pytestmark = pytest.mark.training  # Keras builds (and trains) this module's models

DEFAULT = str(
    ROOT / "configs" / "default.toml"
)  # the synthetic recording: windows of 64 samples x 3 channels
needs_toolchain = pytest.mark.skipif(
    not has_arm_toolchain(), reason="needs arm-none-eabi-gcc and qemu-system-arm"
)


@dataclass(frozen=True)
class UserModel:
    hidden: tuple[tuple[int, str], ...]  # (units, Keras activation) of each hidden Dense layer
    final: str  # the output layer's activation: linear | sigmoid
    inputs: str  # how the user's script makes the float inputs: zscore | minmax | raw
    per_tensor: (
        bool  # converted with per-tensor dense weights (every board) or TFLite's default (per-channel)
    )
    normalization: str  # what `tinyae import --normalization` is told: fit | none | file


USER_MODELS = {
    "relu_3_layers": UserModel(((48, "relu"), (12, "relu"), (48, "relu")), "linear", "zscore", False, "fit"),
    "sigmoid_1_layer": UserModel(((24, "linear"),), "sigmoid", "minmax", True, "file"),
    "mixed_raw_inputs": UserModel(
        ((40, "relu"), (6, "linear"), (40, "relu")), "linear", "raw", False, "none"
    ),
}


def user_normalization(windows: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel offset and scale as the user's script computes them (over all its normal windows)."""
    flat = windows.reshape(-1, windows.shape[-1]).astype(np.float64)
    if kind == "zscore":
        return flat.mean(axis=0), flat.std(axis=0)
    if kind == "minmax":
        return flat.min(axis=0), flat.max(axis=0) - flat.min(axis=0)
    return np.zeros(flat.shape[1]), np.ones(flat.shape[1])


def convert_like_a_user(model, x: np.ndarray, per_tensor: bool = False) -> bytes:  # type: ignore[no-untyped-def]
    """TFLiteConverter's full-integer recipe from its documentation, int8 in and out."""
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([row[None, :]] for row in x[:300])
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    if per_tensor:
        conv._experimental_disable_per_channel_quantization_for_dense_layers = True
    return conv.convert()


@pytest.fixture(scope="module")
def normal_windows() -> np.ndarray:
    """The user's normal data: the default experiment's normal windows [n, 64, 3] (training and validation)."""
    from tinyae.train import config, pipeline

    data = pipeline.read_data(config.load(Path(DEFAULT)), False)
    return np.concatenate([data.prep.train, data.prep.val]).astype(np.float32)


@pytest.fixture(scope="module")
def user_models(normal_windows, tmp_path_factory) -> dict[str, dict]:
    """name -> {"tflite": path, "keras": model, "offset"/"scale": the script's normalization}."""
    import keras

    out = tmp_path_factory.mktemp("user_models")
    made = {}
    for name, spec in USER_MODELS.items():
        offset, scale = user_normalization(normal_windows, spec.inputs)
        x = ((normal_windows - offset) / scale).reshape(len(normal_windows), -1).astype(np.float32)
        keras.utils.set_random_seed(0)
        model = keras.Sequential(
            [keras.Input(shape=(x.shape[1],))]
            + [keras.layers.Dense(units, activation=act) for units, act in spec.hidden]
            + [keras.layers.Dense(x.shape[1], activation=spec.final)]
        )
        model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="mse")
        model.fit(x, x, epochs=2, batch_size=32, verbose=0)
        path = out / f"{name}.tflite"
        path.write_bytes(convert_like_a_user(model, x, spec.per_tensor))
        made[name] = {"tflite": path, "keras": model, "offset": offset, "scale": scale}
    return made


@pytest.fixture(scope="module")
def imported(user_models, tmp_path_factory) -> dict[str, Path]:
    """name -> the model directory `tinyae import` made of it."""
    dirs = {}
    for name, spec in USER_MODELS.items():
        out = tmp_path_factory.mktemp(f"imported_{name}") / "model"
        how = spec.normalization
        if how == "file":
            f = out.parent / "normalization.json"
            um = user_models[name]
            f.write_text(json.dumps({"offset": um["offset"].tolist(), "scale": um["scale"].tolist()}))
            how = str(f)
        argv = ["import", str(user_models[name]["tflite"]), "--config", DEFAULT, "--out", str(out)]
        assert tinyae([*argv, "--normalization", how, "--quiet"]) == 0
        dirs[name] = out
    return dirs


@pytest.mark.parametrize("name", list(USER_MODELS))
def test_the_manifest_describes_the_users_model_and_how_its_inputs_are_made(
    name, user_models, imported
) -> None:
    spec, model_dir, keras_model = USER_MODELS[name], imported[name], user_models[name]["keras"]
    m = json.loads((model_dir / "manifest.json").read_text())
    assert (model_dir / "model_int8.tflite").read_bytes() == user_models[name]["tflite"].read_bytes()
    expected = [{"units": u, "activation": a} for u, a in spec.hidden] + [
        {"units": 192, "activation": spec.final}
    ]
    assert m["model"]["layers"] == expected
    widths = [192, *[u for u, _ in spec.hidden], 192]
    macs = sum(a * b for a, b in pairwise(widths))
    assert m["model"]["macs"] == macs
    # the int8 graph's parameters: the converter may fold a linear layer's bias into the next layer's
    assert macs <= m["model"]["params"] <= keras_model.count_params()
    imp = m["imported"]
    assert imp["file"] == str(user_models[name]["tflite"])
    assert imp["normalization"] == {"fit": "fit", "none": "none", "file": "given"}[spec.normalization]
    assert imp["input_check"]["outside_fraction"] <= 0.01 and imp["input_check"]["levels_spanned"] >= 16
    norm = m["normalization"]
    if spec.normalization == "file":
        assert np.allclose(norm["offset"], user_models[name]["offset"], rtol=1e-6)
        assert np.allclose(norm["scale"], user_models[name]["scale"], rtol=1e-6)
        assert norm["method"] == "given"
    elif spec.normalization == "none":
        assert norm["offset"] == [0.0] * 3 and norm["scale"] == [1.0] * 3 and norm["method"] == "none"
    else:
        assert norm["method"] == "zscore"
    # no float model: no training section, no float metrics; the int8 metrics and the threshold are there
    assert "training" not in m and "float" not in m["metrics"] and "float_int8_score_corr" not in m["metrics"]
    assert m["metrics"]["int8"]["roc_auc"] > 0.5 and m["threshold"]["value"] > 0
    assert m["metrics"]["val_reconstruction_r2"] > 0  # the two epochs learnt something
    assert m["reference"]["tflite_micro"]["double_product_bit_exact"]
    q = m["quantization"]
    assert q["setting"] == "model" and q["weights"] == ("per_tensor" if spec.per_tensor else "per_channel")
    if spec.per_tensor:
        assert "nano33ble" in q["targets"] and not any("per-channel" in w for w in m["warnings"])
    else:  # TFLite's default per-channel weights: the TFLM board libraries are left out, and the user told
        assert "nano33ble" not in q["targets"] and "mps2_an386" in q["targets"]
        assert any(
            "per-channel FULLY_CONNECTED weights, which esp32dev, nano33ble" in w for w in m["warnings"]
        )
    for f in (
        "model_config.h",
        "model_data.cc",
        "model_compiled.c",
        "test_vectors.npz",
        "scores.npz",
        "report.html",
    ):
        assert (model_dir / f).is_file(), f
    head = (model_dir / "model_compiled.c").read_text().splitlines()[:4]
    assert "Model: model_int8.tflite sha256 " + m["model"]["sha256"] in head[2] and "tinyae import" in head[3]
    report = (model_dir / "report.html").read_text()
    assert "imported from" in report and not (model_dir / "loss.png").exists()


@pytest.mark.emulator
@needs_toolchain
@pytest.mark.parametrize("name", list(USER_MODELS))
def test_each_imported_model_is_bit_exact_on_the_emulated_board(name, imported, tmp_path) -> None:
    from tinyae.tools.emulator.qemu import build_image

    model_dir = imported[name]
    build_image(tmp_path / "fw", model_dir=model_dir)
    report = tmp_path / "verify.json"
    argv = [
        "device",
        "verify",
        "--emulator",
        str(tmp_path / "fw" / "tinyae.elf"),
        "--model-dir",
        str(model_dir),
    ]
    code = tinyae([*argv, "--max-windows", "200", "--json", str(report), "--quiet"])
    r = json.loads(report.read_text())
    assert code == 0, r
    assert r["ok"] and r["windows_compared"] == 200
    assert r["input_mismatches"] == 0 and r["output_mismatches"] == 0
    assert r["scores_exact_equal"] == 200 and r["n_decision_mismatches"] == 0


def test_threshold_budget_calibrate_and_make_work_on_an_imported_model(user_models, tmp_path, capsys) -> None:
    from tinyae.train.data.synthetic import generate

    source, model_dir = tmp_path / "user.tflite", tmp_path / "model"
    shutil.copyfile(user_models["relu_3_layers"]["tflite"], source)
    assert tinyae(["import", str(source), "--config", DEFAULT, "--out", str(model_dir), "--quiet"]) == 0
    assert tinyae(["threshold", "--model-dir", str(model_dir), "--method", "target_fpr", "--target-fpr", "0.02",
                   "--quiet"]) == 0  # fmt: skip
    m = json.loads((model_dir / "manifest.json").read_text())
    assert m["threshold"]["method"] == "target_fpr" and "float" not in m["metrics"]
    estimate = ["budget", "estimate", "--manifest", str(model_dir / "manifest.json"), "--target", "nano33ble"]
    assert tinyae([*estimate, "--engine", "compiled"]) == 0
    x, _ = generate(0, 6000)  # the machine in normal operation, mounted a little differently
    site = tmp_path / "site.csv"
    names = ",".join(m["window"]["channel_names"])
    np.savetxt(site, x + np.float32([0.1, -0.05, 0.02]), delimiter=",", header=names, comments="", fmt="%.9g")
    record = tmp_path / "record.bin"
    assert tinyae(["calibrate", "--csv", str(site), "--model-dir", str(model_dir), "--out", str(record)]) == 0
    assert record.stat().st_size > 0
    capsys.readouterr()
    # make's model rule (tinyae inputs) never trains over an imported model: with its own config and .tflite
    # unchanged it uses the model as it is and says so; asked for another config, or after the user's .tflite
    # changed, it stops in one sentence naming the `tinyae import` command that rebuilds it
    stamp = tmp_path / "stamp"
    inputs = ["inputs", "--config", DEFAULT, "--model-dir", str(model_dir), "--stamp", str(stamp)]
    assert tinyae(inputs) == 0 and os.stat(stamp).st_mtime_ns == 0
    err = " ".join(capsys.readouterr().err.split())
    assert f"`tinyae import {source}" in err and "not by make; make uses it as it is" in err
    assert tinyae([*inputs, "--set", "threshold.percentile=99"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert err.count("error:") == 1 and "make never replaces a model it did not build" in err
    assert f"`tinyae import {source}" in err and "Traceback" not in err
    source.write_bytes(user_models["sigmoid_1_layer"]["tflite"].read_bytes())
    assert tinyae(inputs) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert err.count("error:") == 1 and f"{source} changed since" in err
    assert "make never rebuilds a model it did not build" in err
    before = (model_dir / "manifest.json").read_bytes()
    code = tinyae(["model", "--config", DEFAULT, "--out", str(model_dir), "--from-make"])
    assert code == 0 and (model_dir / "manifest.json").read_bytes() == before  # make's manifest rule too


@pytest.mark.emulator
@needs_toolchain
def test_the_mlperf_tiny_anomaly_detection_model_imports_and_is_bit_exact(tmp_path, capsys) -> None:
    """MLPerf Tiny's AD autoencoder: 640 inputs, Dense 128 x4 (batch norm, ReLU), 8, 128 x4, 640: 264,192 MACs,
    random weights (size, not quality, is the point), its inputs 5 channels x 128 samples of a CSV recording."""
    import keras

    rng = np.random.default_rng(0)
    t = np.arange(6000) / 100.0
    series = np.stack(
        [np.sin(2 * np.pi * (1 + c) * t + c) + 0.1 * rng.standard_normal(len(t)) for c in range(5)], 1
    )
    csv = tmp_path / "five.csv"
    np.savetxt(csv, series, delimiter=",", header="m0,m1,m2,m3,m4", comments="", fmt="%.6f")
    windows = np.lib.stride_tricks.sliding_window_view(series, 128, axis=0)[::64].transpose(0, 2, 1)
    x = ((windows - series.mean(0)) / series.std(0)).reshape(len(windows), -1).astype(np.float32)
    keras.utils.set_random_seed(0)
    inp = keras.Input(shape=(640,))
    h = inp
    for units in (128, 128, 128, 128, 8, 128, 128, 128, 128):
        h = keras.layers.Activation("relu")(keras.layers.BatchNormalization()(keras.layers.Dense(units)(h)))
    path = tmp_path / "ad01_int8.tflite"
    path.write_bytes(convert_like_a_user(keras.Model(inp, keras.layers.Dense(640)(h)), x))
    out = tmp_path / "model"
    data = ["--set", "data.source=csv", "--set", f'data.paths=["{csv}"]', "--set", "data.sample_rate_hz=100",
            "--set", "window.length=128", "--set", "window.hop=64"]  # fmt: skip
    assert tinyae(["import", str(path), *data, "--out", str(out), "--quiet"]) == 0
    m = json.loads((out / "manifest.json").read_text())
    assert m["model"]["macs"] == 264_192 and m["model"]["ops"] == ["FULLY_CONNECTED"]
    assert [la["units"] for la in m["model"]["layers"]] == [128] * 4 + [8] + [128] * 4 + [640]
    assert any("worse than their mean" in w for w in m["warnings"])  # random weights reconstruct nothing
    from tinyae.tools.emulator.qemu import build_image

    build_image(tmp_path / "fw", model_dir=out)
    report = tmp_path / "verify.json"
    argv = ["device", "verify", "--emulator", str(tmp_path / "fw" / "tinyae.elf"), "--model-dir", str(out)]
    assert tinyae([*argv, "--max-windows", "6", "--json", str(report), "--quiet"]) == 0
    r = json.loads(report.read_text())
    assert r["windows_compared"] == 6 and r["output_mismatches"] == 0 and r["scores_exact_equal"] == 6
    dev, cost = r["device"], r["cost"]
    with capsys.disabled():  # README "Bringing a model trained elsewhere" quotes this line
        print(
            f"\n[import] MLPerf Tiny AD-sized model: {m['model']['macs']} MACs, compiled constants "
            f"{m['compiled']['const_bytes']} B, scratch {m['compiled']['scratch_bytes']} B; on the emulated "
            f"board: {cost['min']}-{cost['max']} instructions per window (median {cost['median']:.0f}), flash "
            f"{dev['flash_used']} B, static RAM {dev['ram_static']} B; bit-exact on {r['windows_compared']} windows"
        )


def test_importing_tinyaes_own_model_gives_its_artifacts_again(default_model_dir, tmp_path) -> None:
    """`tinyae model` and `tinyae import` share every stage after the int8 model: the default model's
    model_int8.tflite imported with the config it was trained with gives the same threshold, constants,
    headers, compiled engine and test vectors (only the command in the banners and the provenance differ)."""
    out = tmp_path / "model"
    assert tinyae(["import", str(default_model_dir / "model_int8.tflite"), "--config", DEFAULT, "--out", str(out),
                   "--quiet"]) == 0  # fmt: skip
    a = json.loads((default_model_dir / "manifest.json").read_text())
    b = json.loads((out / "manifest.json").read_text())
    for key in ("model", "window", "frontend", "normalization", "input", "output", "reference", "score",
                "threshold", "calibration", "decision", "arena", "compiled", "data"):  # fmt: skip
        assert a[key] == b[key], key
    assert {k: v for k, v in a["quantization"].items() if k not in ("setting", "reason")} == {
        k: v for k, v in b["quantization"].items() if k not in ("setting", "reason")
    }
    said = (a["quantization"]["reason"], b["quantization"]["reason"])  # why the weights are per-tensor
    for name in ("model_config.h", "model_data.h", "model_data.cc", "model_compiled.h", "model_compiled.c"):
        ta, tb = ((d / name).read_text().splitlines() for d in (default_model_dir, out))
        same = [ln for ln in ta if "Command:" not in ln and said[0] not in ln]
        assert same == [ln for ln in tb if "Command:" not in ln and said[1] not in ln], name
    with np.load(default_model_dir / "test_vectors.npz") as za, np.load(out / "test_vectors.npz") as zb:
        assert sorted(za.files) == sorted(zb.files)
        for k in za.files:
            assert np.array_equal(za[k], zb[k]), k


@pytest.fixture(scope="module")
def unimportable(tmp_path_factory) -> dict[str, Path]:
    """Keras models tinyae cannot run, converted as a user would (no training needed)."""
    import keras
    import tensorflow as tf

    out = tmp_path_factory.mktemp("unimportable")
    rng = np.random.default_rng(1)
    keras.utils.set_random_seed(1)

    def dense(n_in: int, n_out: int):  # type: ignore[no-untyped-def]
        return keras.Sequential([keras.Input(shape=(n_in,)), keras.layers.Dense(16, activation="relu"),
                                 keras.layers.Dense(n_out)])  # fmt: skip

    inp = keras.Input(shape=(192,))
    conv = keras.layers.Conv1D(4, 3, padding="same", activation="relu")(keras.layers.Reshape((64, 3))(inp))
    residual = keras.Input(shape=(192,))
    models = {
        "conv": (keras.Model(inp, keras.layers.Dense(192)(keras.layers.Flatten()(conv))), 192),
        "add": (
            keras.Model(residual, keras.layers.Add()([residual, keras.layers.Dense(192)(residual)])),
            192,
        ),
        "size": (dense(100, 100), 100),
        "output": (dense(192, 64), 192),
    }
    paths = {}
    for name, (model, n) in models.items():
        paths[name] = out / f"{name}.tflite"
        paths[name].write_bytes(convert_like_a_user(model, rng.standard_normal((50, n)).astype(np.float32)))
    float_model = dense(192, 192)
    paths["float"] = out / "float.tflite"
    paths["float"].write_bytes(tf.lite.TFLiteConverter.from_keras_model(float_model).convert())
    dynamic = tf.lite.TFLiteConverter.from_keras_model(float_model)
    dynamic.optimizations = [tf.lite.Optimize.DEFAULT]  # int8 weights, float input and output
    paths["dynamic"] = out / "dynamic.tflite"
    paths["dynamic"].write_bytes(dynamic.convert())
    return paths


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("float", "is FLOAT32, but tinyae runs int8 models: convert it with full-integer quantization"),
        ("dynamic", "is FLOAT32, but tinyae runs int8 models"),
        ("conv", "CONV_2D"),
        ("add", "the op ADD (op "),
        ("size", "takes 100 values, but a window of 64 samples x 3 channels"),
        ("output", "has 64 values but its input"),
    ],
)
def test_keras_models_tinyae_cannot_run_are_refused_in_one_sentence(
    name, words, unimportable, tmp_path, capsys
):
    out = tmp_path / "model"
    code = tinyae(["import", str(unimportable[name]), "--config", DEFAULT, "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert words in lines[0], lines[0]
    assert "cannot be imported" in lines[0] or name not in ("conv", "add")
    assert not out.exists()


def test_an_import_over_a_trained_model_leaves_no_float_model_behind(
    default_model_dir, user_models, tmp_path
):
    out = tmp_path / "model"
    shutil.copytree(default_model_dir, out)
    assert (out / "model.keras").is_file() and (out / "loss.png").is_file()
    argv = ["import", str(user_models["relu_3_layers"]["tflite"]), "--config", DEFAULT, "--out", str(out)]
    assert tinyae([*argv, "--quiet"]) == 0
    assert not any((out / f).exists() for f in ("model.keras", "loss.png", "float_vs_int8.png", "latent.png"))
    m = json.loads((out / "manifest.json").read_text())
    assert "training" not in m and m["imported"]["file"].endswith("relu_3_layers.tflite")
