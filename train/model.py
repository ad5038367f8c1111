"""The dense autoencoder: a plain Sequential of Dense layers that converts to int8 FULLY_CONNECTED ops.

Training variants (denoising, sparse, contractive, vae) change only training (`fit.py`); the deployed
network is always this plain stack. For the VAE the latent layer is the encoder's mean (linear), and
the log-variance head and the sampling exist only while training.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras

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
