"""Training the Keras way: same seed same bits, early stopping keeps the best epoch, callbacks, NaN."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

from tinyae.errors import UserError
from tinyae.train import config
from tinyae.train.config import ModelConfig, TrainConfig

pytestmark = pytest.mark.training  # every test here trains a model
# Keras and the training stage (TensorFlow) load inside the tests (tests/test_fast_startup.py).

RNG = np.random.default_rng(0)
# few noise windows: the network overfits them, so the validation loss turns and early stopping acts
X_TRAIN = RNG.standard_normal((48, 24)).astype(np.float32)
X_VAL = RNG.standard_normal((64, 24)).astype(np.float32)


def model_cfg(variant: str = "plain") -> ModelConfig:
    return ModelConfig(hidden=[32], latent=16, variant=variant, noise_std=0.3, sparsity_l1=0.01)


def train_cfg(**kw) -> TrainConfig:
    return TrainConfig(**{"epochs": 12, "batch_size": 16, "learning_rate": 1e-2, "patience": 4, **kw})


def train(mcfg: ModelConfig, tcfg: TrainConfig, x_val: np.ndarray = X_VAL, callbacks=()):
    from tinyae.train.fit import fit
    from tinyae.train.model import build_autoencoder

    net, li = build_autoencoder(X_TRAIN.shape[1], mcfg, seed=0)
    history = fit(net, li, X_TRAIN, x_val, mcfg, tcfg, show_progress=False, callbacks=callbacks)
    return net, history


def same_bits(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(
        x.dtype == y.dtype and x.tobytes() == y.tobytes() for x, y in zip(a, b, strict=True)
    )


@pytest.mark.parametrize("variant", ["plain", "denoising", "sparse", "contractive", "vae"])
def test_same_seed_same_weights_bit_for_bit(variant: str) -> None:
    first, h1 = train(model_cfg(variant), train_cfg())
    again, h2 = train(model_cfg(variant), train_cfg())
    other, _ = train(model_cfg(variant), train_cfg(seed=1))  # shuffling (and noise) from another seed
    assert same_bits(first.get_weights(), again.get_weights())
    assert h1.loss == h2.loss and h1.val_loss == h2.val_loss and h1.best_epoch == h2.best_epoch
    assert not same_bits(first.get_weights(), other.get_weights())


def test_steps_per_execution_does_not_change_the_weights(monkeypatch) -> None:
    from tinyae.train import fit as fitmod

    looped, _ = train(model_cfg("denoising"), train_cfg())
    monkeypatch.setattr(fitmod, "STEPS_PER_EXECUTION", 1)
    stepwise, _ = train(model_cfg("denoising"), train_cfg())
    assert same_bits(looped.get_weights(), stepwise.get_weights())


def snapshots():
    """A callback keeping the validation loss and the deployed network's weights after every epoch."""
    import keras

    class Snapshots(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.val_loss: list[float] = []
            self.weights: list[list[np.ndarray]] = []

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            self.val_loss.append(float(logs["val_loss"]))
            self.weights.append(self.model.net.get_weights())

    return Snapshots()


def test_early_stopping_restores_the_best_epochs_weights() -> None:
    snaps = snapshots()
    patience = 4
    net, history = train(model_cfg(), train_cfg(epochs=200, patience=patience), callbacks=[snaps])
    best = int(np.argmin(snaps.val_loss))
    assert len(snaps.val_loss) < 200  # it stopped early ...
    assert len(snaps.val_loss) == best + patience + 1  # ... patience epochs after the best one
    assert history.best_epoch == best and history.val_loss == snaps.val_loss
    assert same_bits(net.get_weights(), snaps.weights[best])
    assert not same_bits(net.get_weights(), snaps.weights[-1])
    # val_loss is the deployed network's reconstruction error over every validation window
    y = net.predict(X_VAL, verbose=0)
    assert np.isclose(np.mean((y - X_VAL) ** 2), history.val_loss[best], rtol=1e-5)


def test_a_user_callback_sees_every_epoch(tmp_path) -> None:
    import keras

    path = tmp_path / "training.csv"
    _, history = train(model_cfg("sparse"), train_cfg(), callbacks=[keras.callbacks.CSVLogger(str(path))])
    with path.open() as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == list(range(len(history.loss)))
    for key in ("loss", "val_loss", "penalty"):
        assert np.allclose([float(r[key]) for r in rows], getattr(history, key), rtol=1e-6)
    assert all(p > 0 for p in history.penalty)  # the sparse L1 term is logged


def test_tensorboard_logs_every_epoch(tmp_path) -> None:
    import keras
    import tensorflow as tf

    _, history = train(model_cfg(), train_cfg(), callbacks=[keras.callbacks.TensorBoard(str(tmp_path))])

    def scalars(run: str) -> list[float]:
        values = []
        for path in sorted((tmp_path / run).glob("events.out.tfevents.*")):
            for event in tf.compat.v1.train.summary_iterator(str(path)):
                values += [
                    float(tf.make_ndarray(v.tensor)) for v in event.summary.value if v.tag == "epoch_loss"
                ]
        return values

    assert np.allclose(scalars("train"), history.loss, rtol=1e-6)
    assert np.allclose(scalars("validation"), history.val_loss, rtol=1e-6)


def test_an_exception_in_a_user_callback_ends_training() -> None:
    import keras

    class Stop(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            if epoch == 2:
                raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        train(model_cfg(), train_cfg(), callbacks=[Stop()])


def test_validation_loss_not_finite_from_the_first_epoch_is_refused() -> None:
    # the old loop kept the initial weights silently when val_loss was never a number
    x_val = X_VAL.copy()
    x_val[3, 5] = 1e30  # its square overflows float32
    with pytest.raises(UserError, match=r"the validation loss became inf at epoch 1 \(learning rate 0.01\)"):
        train(model_cfg(), train_cfg(), x_val=x_val)


@pytest.mark.parametrize("variant", ["plain", "vae"])
def test_diverging_training_is_refused(variant: str) -> None:
    with pytest.raises(UserError) as err:
        train(model_cfg(variant), train_cfg(learning_rate=1e6))
    message = str(err.value)
    assert re.match(
        r"training diverged: the (training|validation) loss became (nan|inf|-inf) at epoch \d+", message
    )
    assert "lower train.learning_rate" in message and "\n" not in message


def test_no_validation_window_is_refused() -> None:
    with pytest.raises(UserError, match="no validation windows"):
        train(model_cfg(), train_cfg(), x_val=X_VAL[:0])


def test_the_pipeline_hands_user_callbacks_to_training(tmp_path) -> None:
    import keras

    from tinyae.train.pipeline import run

    cfg = config.load(Path(__file__).resolve().parent.parent / "configs" / "default.toml", ["train.epochs=3"])
    log = tmp_path / "training.csv"
    run(
        cfg,
        tmp_path / "model",
        "pytest",
        show_progress=False,
        callbacks=[keras.callbacks.CSVLogger(str(log))],
    )
    manifest = json.loads((tmp_path / "model" / "manifest.json").read_text())
    with log.open() as f:
        rows = list(csv.DictReader(f))
    assert np.allclose([float(r["val_loss"]) for r in rows], manifest["training"]["val_loss"], rtol=1e-6)
    assert len(rows) == 3
