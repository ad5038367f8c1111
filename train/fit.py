"""Training the Keras way: `Autoencoder.fit` with Adam, early stopping, a rich progress bar, fixed seeds.

The variants (denoising, sparse, contractive, vae) live in `tinyae.train.model.Autoencoder.train_step`. The
callbacks are Keras callbacks: EarlyStopping(monitor="val_loss", restore_best_weights=True) keeps the
best validation epoch's weights, StopOnNonFinite stops a run whose training or validation loss is
NaN/inf, which `fit` then refuses in one sentence; any callback of the caller's (CSVLogger, TensorBoard,
ModelCheckpoint, ...) runs alongside them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf
from rich.progress import MofNCompleteColumn, TaskID

from tinyae import terminal
from tinyae.errors import UserError
from tinyae.train.config import ModelConfig, TrainConfig
from tinyae.train.model import Autoencoder

# Training steps per call of Keras' compiled train function (a loop inside the graph): the default
# model's 12 steps an epoch take one call instead of 12, about a third less training time. Batch-level
# callbacks (on_train_batch_end) therefore run every STEPS_PER_EXECUTION batches; epoch-level ones
# every epoch. The weights are the same bit for bit whatever this value.
STEPS_PER_EXECUTION = 16


@dataclass
class History:
    """Per epoch: training loss (penalty included), the penalty, validation reconstruction error."""

    loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    penalty: list[float] = field(default_factory=list)
    best_epoch: int = 0  # 0-based: the epoch whose weights the model holds
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {
            "loss": self.loss,
            "val_loss": self.val_loss,
            "penalty": self.penalty,
            "best_epoch": self.best_epoch,
            "seconds": round(self.seconds, 2),
        }


class RichProgress(keras.callbacks.Callback):
    """One rich bar over the epochs with the latest training and validation loss (Keras' verbose=0);
    no loss is shown before the first epoch ends."""

    def __init__(self, epochs: int, enabled: bool = True) -> None:
        super().__init__()
        self.epochs = epochs
        self.bar = terminal.progress(
            MofNCompleteColumn(),
            description="training",
            status="{task.fields[losses]}",
            disable=not enabled,
        )
        self.task = TaskID(0)  # add_task gives the real one at on_train_begin
        self.done = 0

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.bar.start()
        self.task = self.bar.add_task("fit", total=self.epochs, losses="")

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        shown = [f"{name} {float(logs[key]):.4f}" for key, name in (("loss", "loss"), ("val_loss", "val"))
                 if key in logs]  # fmt: skip
        self.bar.update(self.task, completed=epoch + 1, losses="  ".join(shown))
        self.done = epoch + 1

    def on_train_end(self, logs: dict | None = None) -> None:
        self.bar.update(self.task, total=self.done)  # early stopping ends the bar there
        self.bar.stop()


class StopOnNonFinite(keras.callbacks.Callback):
    """Stops training at the end of the first epoch whose loss or validation loss is NaN or infinite
    and remembers it as (epoch, log name, value). The training loss is the epoch's mean, so one
    non-finite batch shows. (Keras' TerminateOnNaN looks at the training batches only, and prints.)"""

    def __init__(self) -> None:
        super().__init__()
        self.first: tuple[int, str, float] | None = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        for name in ("loss", "val_loss"):
            value = float((logs or {}).get(name, 0.0))
            if not math.isfinite(value):
                self.first = (epoch, name, value)
                self.model.stop_training = True
                return


def use_threads(threads: int) -> None:
    """Train with `threads` TensorFlow intra-op threads (0: TensorFlow's choice), before any TensorFlow op.

    TensorFlow splits a float sum (a reduction, a long matrix product) between its threads, so the
    trained weights depend on the count in their last bits. The count can be set only before TensorFlow
    starts in this process; a different count after that is refused in one sentence rather than giving
    another model than the config promises."""
    if threads == 0:
        return
    current = tf.config.threading.get_intra_op_parallelism_threads()
    if current == threads:
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
    except RuntimeError:
        raise UserError(
            f"train.threads = {threads} cannot take effect: TensorFlow already runs in this process with "
            f"{current or 'its default number of'} threads; train in a new process (`tinyae model`)"
        ) from None


def fit(
    model: keras.Model,
    latent_index: int,
    x_train: np.ndarray,
    x_val: np.ndarray,
    mcfg: ModelConfig,
    tcfg: TrainConfig,
    *,
    show_progress: bool = True,
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> History:
    """Train `model` (build_autoencoder's plain stack) in place on normalized, flattened normal windows.

    x_train, x_val: float32 [n, features]. Adam at tcfg.learning_rate, tcfg.batch_size windows per step,
    shuffled every epoch; at most tcfg.epochs epochs, ending tcfg.patience epochs after the best
    validation loss, whose weights the model then holds. Same seed, same data, same tcfg.threads -> the
    same weights bit for bit (use_threads). `callbacks` are Keras callbacks run after tinyae's own (early
    stopping, NaN stop, progress) every epoch; their `self.model` is the training `Autoencoder` (its `.net`
    is `model`), and an exception one raises ends the training and propagates.

    Raises UserError when a loss becomes NaN or infinite (the model is then unusable) or when there is
    no validation window.
    """
    if len(x_val) == 0:
        raise UserError("no validation windows: early stopping needs at least one; use more normal data")
    use_threads(tcfg.threads)
    keras.utils.set_random_seed(tcfg.seed)
    trainer = Autoencoder(model, latent_index, mcfg, loss=tcfg.loss, seed=tcfg.seed)
    trainer.compile(
        optimizer=keras.optimizers.Adam(learning_rate=tcfg.learning_rate),
        steps_per_execution=STEPS_PER_EXECUTION,
    )
    stopping = keras.callbacks.EarlyStopping(
        monitor="val_loss", mode="min", patience=tcfg.patience, restore_best_weights=True
    )
    non_finite = StopOnNonFinite()
    start = time.perf_counter()
    # tf.data pipelines built once: the array adapter of fit(x, y) rebuilds heavier iterators every epoch
    # (about 3x slower here). The shuffle is seeded, reshuffled every epoch; a window is its own target.
    train_ds = (
        tf.data.Dataset.from_tensor_slices(x_train)
        .shuffle(len(x_train), seed=tcfg.seed, reshuffle_each_iteration=True)
        .batch(tcfg.batch_size)
    )
    val_ds = tf.data.Dataset.from_tensor_slices(x_val).batch(max(tcfg.batch_size, 1024))
    keras_history = trainer.fit(
        train_ds,
        epochs=tcfg.epochs,
        shuffle=False,  # train_ds shuffles itself, seeded
        validation_data=val_ds,
        callbacks=[non_finite, stopping, RichProgress(tcfg.epochs, show_progress), *callbacks],
        verbose=0,
    )
    logs = keras_history.history
    if non_finite.first is not None:
        epoch, name, value = non_finite.first
        which = "validation" if name == "val_loss" else "training"
        raise UserError(
            f"training diverged: the {which} loss became {value} at epoch {epoch + 1} (learning rate "
            f"{tcfg.learning_rate:g}); lower train.learning_rate or look for extreme values in the data"
        )
    return History(
        loss=[float(v) for v in logs["loss"]],
        val_loss=[float(v) for v in logs["val_loss"]],
        penalty=[float(v) for v in logs["penalty"]],
        best_epoch=int(stopping.best_epoch),
        seconds=time.perf_counter() - start,
    )
