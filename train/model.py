"""The dense autoencoder: a plain Sequential of Dense layers that converts to int8 FULLY_CONNECTED ops,
and `Autoencoder`, the keras.Model that trains it under one of the variants.

The variants the literature names change training only, in `Autoencoder.train_step`; the deployed
network is always the plain stack:
- plain: reconstruction loss only;
- denoising: the input is corrupted with Gaussian noise, the target stays clean (Vincent et al. 2008);
- sparse: plus an L1 penalty on the latent activations;
- contractive: plus the squared Frobenius norm of the encoder's Jacobian dz/dx (Rifai et al. 2011);
- vae: a variational autoencoder (Kingma and Welling 2014): the latent layer is the (linear) mean mu
  of a Gaussian q(z|x) whose log-variance comes from a second Dense head on the same encoder output;
  the decoder reads z = mu + exp(logvar/2) * eps while training and the loss adds kl_weight times
  KL(q || N(0, I)) = -1/2 sum(1 + logvar - mu^2 - exp(logvar)) (mean over the batch). The head and
  the sampling exist only in training: the deployed network is the mean path plus the decoder,
  scored by reconstruction error like the others.
Validation (`test_step`, early stopping) is the deterministic reconstruction error of the deployed
stack for every variant. The training step uses tf.GradientTape (the contractive penalty is a
batch Jacobian), so it needs Keras' TensorFlow backend, the one tinyae pins.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import tensorflow as tf

from tinyae.train.config import ModelConfig

ACTIVATIONS = {"relu": "relu", "relu6": keras.activations.relu6, "linear": None}
OUTPUT_ACTIVATIONS = {"linear": None, "sigmoid": "sigmoid", "tanh": "tanh"}


def build_autoencoder(input_size: int, cfg: ModelConfig, seed: int = 0) -> tuple[keras.Model, int]:
    """Return (model, index of the latent layer). Encoder widths mirror into the decoder."""
    init = keras.initializers.GlorotUniform(seed=seed)
    act = ACTIVATIONS[cfg.activation]
    layers: list[keras.layers.Layer] = [keras.Input(shape=(input_size,), name="window")]
    for i, width in enumerate(cfg.hidden):
        layers.append(keras.layers.Dense(width, activation=act, kernel_initializer=init, name=f"enc{i}"))
    latent_act = None if cfg.variant == "vae" else act  # a Gaussian mean is not rectified
    layers.append(
        keras.layers.Dense(cfg.latent, activation=latent_act, kernel_initializer=init, name="latent")
    )
    latent_index = len(cfg.hidden)
    for i, width in enumerate(reversed(cfg.hidden)):
        layers.append(keras.layers.Dense(width, activation=act, kernel_initializer=init, name=f"dec{i}"))
    layers.append(
        keras.layers.Dense(
            input_size,
            activation=OUTPUT_ACTIVATIONS[cfg.output_activation],
            kernel_initializer=init,
            name="reconstruction",
        )
    )
    return keras.Sequential(layers, name="tinyae"), latent_index


def encoder(model: keras.Model, latent_index: int) -> keras.Model:
    """The sub-model from the input to the latent code (for the report's projection)."""
    return keras.Model(model.inputs, model.layers[latent_index].output)


def macs(model: keras.Model) -> int:
    return sum(int(w.shape[0]) * int(w.shape[1]) for layer in model.layers for w in layer.weights[:1])


def reconstruction_error(kind: str, y: tf.Tensor, x: tf.Tensor) -> tf.Tensor:
    """Per-window error [batch] of reconstruction y against x [batch, features]: mean square or absolute.

    The same definition as the score (train.loss = mse | mae).
    """
    err = y - x
    return tf.reduce_mean(tf.square(err) if kind == "mse" else tf.abs(err), axis=1)


class Autoencoder(keras.Model):
    """Trains `net` (from build_autoencoder, shared, updated in place) under `cfg.variant`.

    Use it like any Keras model: compile(optimizer=...) without a loss (the loss is the reconstruction
    error `loss` plus the variant's penalty), then fit(x, x, validation_data=(x_val, x_val), callbacks=...)
    with x [n, features] float32 windows; the target is the clean window. Logs per epoch: `loss`
    (training, penalty included, mean over the windows), `penalty` and `val_loss` (reconstruction
    error of the deployed stack, no noise, no sampling, no penalty). Calling it runs `net`.
    """

    def __init__(
        self, net: keras.Model, latent_index: int, cfg: ModelConfig, loss: str = "mse", seed: int = 0
    ):
        super().__init__(name=f"{net.name}_training")
        self.net = net
        self.latent_index = latent_index
        self.cfg = cfg
        self.loss_kind = loss
        self.noise_seed = keras.random.SeedGenerator(seed)
        self.logvar_head: keras.layers.Dense | None = None
        if cfg.variant == "vae":
            self.logvar_head = keras.layers.Dense(
                cfg.latent,
                kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 1),
                bias_initializer="zeros",
                name="latent_logvar",
            )
            width = net.layers[latent_index - 1].units if latent_index > 0 else net.inputs[0].shape[-1]
            self.logvar_head.build((None, width))
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.penalty_tracker = keras.metrics.Mean(name="penalty")

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        return [self.loss_tracker, self.penalty_tracker]

    def call(self, x: tf.Tensor, training: bool = False) -> tf.Tensor:
        return self.net(x, training=training)

    def _run(self, layers: list[keras.layers.Layer], h: tf.Tensor) -> tf.Tensor:
        for layer in layers:
            h = layer(h, training=True)
        return h

    def _forward_train(self, x_in: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Training forward pass: (reconstruction [batch, features], the variant's penalty, a scalar)."""
        layers, li, cfg = self.net.layers, self.latent_index, self.cfg
        if self.logvar_head is not None:
            h = self._run(layers[:li], x_in)
            mu = layers[li](h, training=True)
            logvar = self.logvar_head(h, training=True)
            eps = keras.random.normal(tf.shape(mu), seed=self.noise_seed)
            y = self._run(layers[li + 1 :], mu + tf.exp(0.5 * logvar) * eps)
            kl = -0.5 * tf.reduce_mean(tf.reduce_sum(1.0 + logvar - tf.square(mu) - tf.exp(logvar), axis=1))
            return y, cfg.kl_weight * kl
        if cfg.variant == "contractive":
            with tf.GradientTape() as jac_tape:
                jac_tape.watch(x_in)
                z = self._run(layers[: li + 1], x_in)
            jac = jac_tape.batch_jacobian(z, x_in)  # [batch, latent, features]
            penalty = cfg.contractive * tf.reduce_mean(tf.reduce_sum(tf.square(jac), axis=[1, 2]))
            return self._run(layers[li + 1 :], z), penalty
        z = self._run(layers[: li + 1], x_in)
        y = self._run(layers[li + 1 :], z)
        if cfg.variant == "sparse":
            return y, cfg.sparsity_l1 * tf.reduce_mean(tf.reduce_sum(tf.abs(z), axis=1))
        return y, tf.constant(0.0)

    def train_step(self, data: tf.Tensor | tuple) -> dict[str, tf.Tensor]:
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        target = x if y is None else y
        x_in = x
        if self.cfg.variant == "denoising":
            x_in = x + keras.random.normal(tf.shape(x), stddev=self.cfg.noise_std, seed=self.noise_seed)
        with tf.GradientTape() as tape:
            y_pred, penalty = self._forward_train(x_in)
            loss = tf.reduce_mean(reconstruction_error(self.loss_kind, y_pred, target)) + penalty
        variables = self.trainable_variables
        self.optimizer.apply(tape.gradient(loss, variables), variables)
        n = tf.cast(tf.shape(x)[0], tf.float32)
        self.loss_tracker.update_state(loss, sample_weight=n)
        self.penalty_tracker.update_state(penalty, sample_weight=n)
        return {"loss": self.loss_tracker.result(), "penalty": self.penalty_tracker.result()}

    def test_step(self, data: tf.Tensor | tuple) -> dict[str, tf.Tensor]:
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        target = x if y is None else y
        self.loss_tracker.update_state(reconstruction_error(self.loss_kind, self(x, training=False), target))
        return {"loss": self.loss_tracker.result()}
