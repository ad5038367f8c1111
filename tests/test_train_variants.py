"""Each autoencoder variant changes training the way the literature says it should."""

import numpy as np
import pytest

from tinyae.train.config import ModelConfig, TrainConfig

# TensorFlow and the training stage load inside the tests (tests/test_fast_startup.py): collecting
# this module costs nothing.
pytestmark = pytest.mark.training  # every test here trains a model


def signal_windows(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(24)
    phase = rng.uniform(0, 2 * np.pi, (n, 1))
    amp = rng.uniform(0.5, 1.5, (n, 1))
    return (amp * np.sin(2 * np.pi * t / 12 + phase) + 0.05 * rng.standard_normal((n, 24))).astype(np.float32)


X_TRAIN, X_VAL = signal_windows(600, 0), signal_windows(200, 1)


def train(variant: str, **kw) -> tuple:
    from tinyae.train.fit import fit
    from tinyae.train.model import build_autoencoder

    mcfg = ModelConfig(hidden=[16], latent=4, variant=variant, **kw)
    tcfg = TrainConfig(epochs=25, batch_size=32, learning_rate=3e-3, patience=100, seed=0)
    model, li = build_autoencoder(24, mcfg, seed=0)
    fit(model, li, X_TRAIN, X_VAL, mcfg, tcfg, show_progress=False)
    return model, li


@pytest.fixture(scope="module")
def plain():
    return train("plain")


def latent_of(model, li, x):
    import tensorflow as tf

    from tinyae.train.model import encoder

    return encoder(model, li)(tf.constant(x), training=False).numpy()


def test_sparse_shrinks_latent_activity(plain):
    sparse = train("sparse", sparsity_l1=0.05)
    assert np.abs(latent_of(*sparse, X_VAL)).mean() < 0.7 * np.abs(latent_of(*plain, X_VAL)).mean()


def test_contractive_shrinks_encoder_jacobian(plain):
    import tensorflow as tf

    from tinyae.train.model import encoder

    contractive = train("contractive", contractive=0.05)

    def jac_norm(model, li):
        x = tf.constant(X_VAL[:64])
        with tf.GradientTape() as tape:
            tape.watch(x)
            z = encoder(model, li)(x, training=False)
        return float(tf.reduce_mean(tf.reduce_sum(tf.square(tape.batch_jacobian(z, x)), axis=[1, 2])))

    assert jac_norm(*contractive) < 0.7 * jac_norm(*plain)


def test_denoising_reconstructs_clean_from_corrupted(plain):
    import tensorflow as tf

    denoising = train("denoising", noise_std=0.5)
    rng = np.random.default_rng(7)
    noisy = X_VAL + 0.5 * rng.standard_normal(X_VAL.shape).astype(np.float32)

    def err(model, li):
        y = model(tf.constant(noisy), training=False).numpy()
        return float(np.mean((y - X_VAL) ** 2))

    assert err(*denoising) < err(*plain)


def test_vae_pulls_latent_means_towards_the_prior_and_deploys_a_plain_stack() -> None:
    import tensorflow as tf

    free, _ = train("vae", kl_weight=0.0)  # the same sampled latent without the KL term
    vae, li = train("vae", kl_weight=0.05)
    assert vae.layers[li].activation.__name__ == "linear"  # a Gaussian mean, not rectified
    assert [layer.name for layer in vae.layers] == ["enc0", "latent", "dec0", "reconstruction"]
    mu_free, mu_vae = latent_of(free, li, X_VAL), latent_of(vae, li, X_VAL)
    # KL(q || N(0, I)) grows with the means' second moment: the KL term shrinks it
    assert np.mean(mu_vae**2) < 0.5 * np.mean(mu_free**2)
    y = vae(tf.constant(X_VAL), training=False).numpy()
    assert np.mean((y - X_VAL) ** 2) < np.var(X_VAL)  # the mean path still reconstructs


def test_vae_exports_only_dense_int8_ops(tmp_path) -> None:
    from tinyae.train.quantize import convert, inspect

    model, _ = train("vae", kl_weight=0.01)
    qi = inspect(convert(model, X_TRAIN[:200], per_channel=False))
    assert qi.ops == ["FULLY_CONNECTED"]
