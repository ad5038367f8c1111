"""Training: Adam, early stopping on validation loss, fixed seeds, a progress bar.

The autoencoder variants the literature names are loss terms here, so the deployed network stays
a plain dense stack:
- denoising: the input is corrupted with Gaussian noise, the target stays clean (Vincent et al. 2008);
- sparse: an L1 penalty on the latent activations;
- contractive: the squared Frobenius norm of the encoder's Jacobian dz/dx (Rifai et al. 2011);
- vae: a variational autoencoder (Kingma and Welling 2014): the latent layer is the mean mu of a
  Gaussian q(z|x) whose log-variance comes from a second Dense head on the same encoder output; the
  decoder reads z = mu + exp(logvar/2) * eps while training and the loss adds kl_weight times
  KL(q || N(0, I)) = -1/2 sum(1 + logvar - mu^2 - exp(logvar)) (mean over the batch). The head is
  dropped after training: the deployed network is the mean path plus the decoder, scored by
  reconstruction error like the others. Validation (early stopping) uses that deterministic path.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tinyae.train.config import ModelConfig, TrainConfig


@dataclass
class History:
    loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    penalty: list[float] = field(default_factory=list)
    best_epoch: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {
            "loss": self.loss,
            "val_loss": self.val_loss,
            "penalty": self.penalty,
            "best_epoch": self.best_epoch,
            "seconds": round(self.seconds, 2),
        }


def _forward(
    model: keras.Model, x: tf.Tensor, latent_index: int, training: bool
) -> tuple[tf.Tensor, tf.Tensor]:
    h = x
    z = x
    for i, layer in enumerate(model.layers):
        h = layer(h, training=training)
        if i == latent_index:
            z = h
    return h, z


def _forward_vae(
    model: keras.Model, logvar_head: keras.layers.Layer, x: tf.Tensor, latent_index: int, eps: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor]:
    """Reconstruction through a sampled latent, and the KL divergence (mean over the batch)."""
    h = x
    for layer in model.layers[:latent_index]:
        h = layer(h, training=True)
    mu = model.layers[latent_index](h, training=True)
    logvar = logvar_head(h, training=True)
    z = mu + tf.exp(0.5 * logvar) * eps
    y = z
    for layer in model.layers[latent_index + 1 :]:
        y = layer(y, training=True)
    kl = -0.5 * tf.reduce_mean(tf.reduce_sum(1.0 + logvar - tf.square(mu) - tf.exp(logvar), axis=1))
    return y, kl


def vae_head(model: keras.Model, latent_index: int, latent: int, seed: int) -> keras.layers.Layer:
    """The training-only log-variance head, on the encoder output the mean layer reads."""
    head = keras.layers.Dense(
        latent,
        kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 1),
        bias_initializer="zeros",
        name="latent_logvar",
    )
    width = model.layers[latent_index - 1].units if latent_index > 0 else model.inputs[0].shape[-1]
    head.build((None, width))
    return head


def _recon_loss(kind: str, y: tf.Tensor, x: tf.Tensor) -> tf.Tensor:
    err = y - x
    return tf.reduce_mean(tf.square(err)) if kind == "mse" else tf.reduce_mean(tf.abs(err))


def make_step(model: keras.Model, latent_index: int, mcfg: ModelConfig, tcfg: TrainConfig, seed: int):
    optimizer = keras.optimizers.Adam(learning_rate=tcfg.learning_rate)
    noise_gen = tf.random.Generator.from_seed(seed)
    head = vae_head(model, latent_index, mcfg.latent, seed) if mcfg.variant == "vae" else None
    variables = model.trainable_variables + (head.trainable_variables if head is not None else [])

    @tf.function(reduce_retracing=True)
    def step(x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        x_in = x
        if mcfg.variant == "denoising":
            x_in = x + noise_gen.normal(tf.shape(x), stddev=mcfg.noise_std)
        with tf.GradientTape() as tape:
            if head is not None:
                eps = noise_gen.normal((tf.shape(x)[0], mcfg.latent))
                y, kl = _forward_vae(model, head, x, latent_index, eps)
                penalty = mcfg.kl_weight * kl
            elif mcfg.variant == "contractive":
                with tf.GradientTape() as jac_tape:
                    jac_tape.watch(x_in)
                    y, z = _forward(model, x_in, latent_index, True)
                jac = jac_tape.batch_jacobian(z, x_in)
                penalty = mcfg.contractive * tf.reduce_mean(tf.reduce_sum(tf.square(jac), axis=[1, 2]))
            else:
                y, z = _forward(model, x_in, latent_index, True)
                penalty = tf.constant(0.0)
                if mcfg.variant == "sparse":
                    penalty = mcfg.sparsity_l1 * tf.reduce_mean(tf.reduce_sum(tf.abs(z), axis=1))
            loss = _recon_loss(tcfg.loss, y, x) + penalty
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(grads, variables, strict=True))
        return loss, penalty

    return step


def fit(
    model: keras.Model,
    latent_index: int,
    x_train: np.ndarray,
    x_val: np.ndarray,
    mcfg: ModelConfig,
    tcfg: TrainConfig,
    *,
    show_progress: bool = True,
    on_epoch: Callable[[int, History, keras.Model], None] | None = None,
) -> History:
    """Train on normalized, flattened normal windows; restore the weights of the best validation epoch.

    on_epoch(epoch, history, model) runs after every epoch (the search reports to its scheduler
    there); an exception it raises ends the training and propagates.
    """
    keras.utils.set_random_seed(tcfg.seed)
    rng = np.random.default_rng(tcfg.seed)
    step = make_step(model, latent_index, mcfg, tcfg, tcfg.seed)
    x_val_t = tf.constant(x_val, tf.float32)
    hist = History()
    best = np.inf
    best_weights = model.get_weights()
    waited = 0
    start = time.perf_counter()
    progress = Progress(
        TextColumn("training"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}  val {task.fields[val]:.4f}"),
        TimeElapsedColumn(),
        disable=not show_progress,
        transient=False,
    )
    with progress:
        task = progress.add_task("fit", total=tcfg.epochs, loss=float("nan"), val=float("nan"))
        for epoch in range(tcfg.epochs):
            order = rng.permutation(len(x_train))
            losses, penalties = [], []
            for i in range(0, len(order), tcfg.batch_size):
                batch = tf.constant(x_train[order[i : i + tcfg.batch_size]], tf.float32)
                loss, penalty = step(batch)
                losses.append(float(loss))
                penalties.append(float(penalty))
            y_val, _ = _forward(model, x_val_t, latent_index, False)
            val = float(_recon_loss(tcfg.loss, y_val, x_val_t))
            hist.loss.append(float(np.mean(losses)))
            hist.penalty.append(float(np.mean(penalties)))
            hist.val_loss.append(val)
            progress.update(task, advance=1, loss=hist.loss[-1], val=val)
            if on_epoch is not None:
                on_epoch(epoch, hist, model)
            if val < best - 1e-7:
                best, waited, hist.best_epoch = val, 0, epoch
                best_weights = model.get_weights()
            else:
                waited += 1
                if waited >= tcfg.patience:
                    progress.update(task, total=epoch + 1)
                    break
    model.set_weights(best_weights)
    hist.seconds = time.perf_counter() - start
    return hist
