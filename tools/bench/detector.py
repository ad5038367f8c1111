"""Train one detector in-process from windows the caller cut: the stages of `tinyae model`
(front-end with its fitted log floor, normalization fitted on the training windows, the Keras
autoencoder, full-int8 conversion, the host reference = the device's preprocessing + tflite_micro,
the threshold) without the artifacts, for benchmarks that train many small models (SKAB trains one
per experiment). tinyae.train.pipeline.run remains what users run; this calls the same functions with the
same config.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from tinyae.train import preprocess
from tinyae.train.calibrate import Threshold, calibrate
from tinyae.train.config import Config
from tinyae.train.frontend import FrontendSpec, build_spec, extractor
from tinyae.train.frontend.fit import check_features, fit_log_floor

if TYPE_CHECKING:  # keras loads TensorFlow, the reference tflite-micro: imported where they are used
    import keras

    from tinyae.train.reference import HostReference


@dataclass
class Detector:
    cfg: Config
    spec: FrontendSpec
    offset: np.ndarray  # float32 [P]
    scale: np.ndarray  # float32 [P]
    model: keras.Model = field(repr=False)
    flatbuffer: bytes = field(repr=False)
    reference: HostReference = field(repr=False)
    constant_features: list[str] = field(default_factory=list)
    float_threshold: Threshold | None = None
    int8_threshold: Threshold | None = None

    @property
    def macs(self) -> int:
        from tinyae.train.model import macs

        return macs(self.model)

    @property
    def shape(self) -> str:
        return "-".join(str(n) for n in [self.spec.feature_size, *(la.units for la in self.model.layers)])

    def _inputs(self, windows: np.ndarray) -> np.ndarray:
        f = self.reference.features(windows)
        reps = f.shape[1] // len(self.offset)
        return ((f - np.tile(self.offset, reps)) / np.tile(self.scale, reps)).astype(np.float32)

    def float_scores(self, windows: np.ndarray) -> np.ndarray:
        """Reconstruction error per window of the Keras model (float32 [n])."""
        if len(windows) == 0:
            return np.zeros(0, np.float32)
        x = self._inputs(windows)
        y = self.model(x, training=False).numpy()
        err = (y - x) ** 2 if self.cfg.train.loss == "mse" else np.abs(y - x)
        return err.mean(axis=1).astype(np.float32)

    def int8_scores(self, windows: np.ndarray) -> np.ndarray:
        """The device's scores per window (host reference: bit-exact with the device)."""
        return self.reference.evaluate(windows).scores

    def calibrate(self, normal_windows: np.ndarray) -> None:
        """Both thresholds from the scores of normal windows (cfg.threshold: percentile x factor)."""
        self.float_threshold = calibrate(self.cfg.threshold, self.float_scores(normal_windows))
        self.int8_threshold = calibrate(self.cfg.threshold, self.int8_scores(normal_windows))


@dataclass
class FloatFit:
    """The float half of a detector: front-end, normalization and the trained Keras model."""

    cfg: Config
    spec: FrontendSpec
    featurize: Callable[[np.ndarray], np.ndarray] = field(repr=False)  # windows -> features
    offset: np.ndarray = field(repr=False)
    scale: np.ndarray = field(repr=False)
    model: keras.Model = field(repr=False)
    x_train: np.ndarray = field(repr=False)  # normalized training features
    constant_features: list[str] = field(default_factory=list)


def fit_float(
    cfg: Config,
    train_windows: np.ndarray,
    val_windows: np.ndarray,
    sample_rate_hz: float,
    channel_names: list[str],
    *,
    warn=lambda msg: None,
) -> FloatFit:
    """Windows [n, L, C] (normal) -> the trained float autoencoder (not converted yet)."""
    from tinyae.train.data import fit_normalization
    from tinyae.train.fit import fit
    from tinyae.train.model import build_autoencoder

    c = train_windows.shape[2]
    spec = fit_log_floor(build_spec(cfg.frontend, cfg.window.length, c, sample_rate_hz), train_windows)
    featurize = extractor(spec)
    f_train, f_val = featurize(train_windows), featurize(val_windows)
    names = spec.feature_names(channel_names)
    if spec.raw_only:
        constant = check_features(train_windows.reshape(-1, c), channel_names, spec.kinds, warn)
        norm = fit_normalization(train_windows, cfg.normalization.method, channel_names=channel_names)
    else:
        constant = check_features(f_train, names, spec.kinds, warn)
        norm = fit_normalization(f_train, cfg.normalization.method, channel_names=names, constant_ok=True)
    offset, scale = norm.offset.astype(np.float32), norm.scale.astype(np.float32)

    def normalize(f: np.ndarray) -> np.ndarray:
        reps = f.shape[1] // len(offset)
        return ((f - np.tile(offset, reps)) / np.tile(scale, reps)).astype(np.float32)

    x_train, x_val = normalize(f_train), normalize(f_val)
    model, latent_index = build_autoencoder(x_train.shape[1], cfg.model, seed=cfg.train.seed)
    fit(model, latent_index, x_train, x_val, cfg.model, cfg.train, show_progress=False)
    return FloatFit(cfg, spec, featurize, offset, scale, model, x_train, constant)


def quantize(ff: FloatFit, headroom: float | None = None) -> Detector:
    """The float fit converted to full int8 (quantize.headroom, or `headroom`) with its host reference."""
    from tinyae.train.boards import choose_weights
    from tinyae.train.quantize import convert, inspect, representative_set
    from tinyae.train.reference import HostReference

    cfg = ff.cfg
    room = cfg.quantize.headroom if headroom is None else headroom
    rng = np.random.default_rng(cfg.train.seed)
    rep = np.sort(rng.permutation(len(ff.x_train))[: cfg.quantize.representative_windows])
    weights = choose_weights(cfg.quantize.weights, cfg.quantize.targets)
    flatbuffer = convert(ff.model, representative_set(ff.x_train[rep], room), per_channel=weights.per_channel)
    qi = inspect(flatbuffer)
    reference = HostReference(
        flatbuffer,
        offset=ff.offset,
        gain=preprocess.input_gain(ff.scale, qi.input_scale),
        input_scale=qi.input_scale,
        input_zero_point=qi.input_zero_point,
        output_scale=qi.output_scale,
        output_zero_point=qi.output_zero_point,
        score_kind=cfg.train.loss,
        frontend=ff.featurize,
    )
    return Detector(
        cfg, ff.spec, ff.offset, ff.scale, ff.model, flatbuffer, reference, list(ff.constant_features)
    )


def fit_detector(
    cfg: Config,
    train_windows: np.ndarray,
    val_windows: np.ndarray,
    sample_rate_hz: float,
    channel_names: list[str],
    *,
    warn=lambda msg: None,
) -> Detector:
    """Windows [n, L, C] (normal) -> a trained, int8-converted detector (thresholds not set yet)."""
    return quantize(fit_float(cfg, train_windows, val_windows, sample_rate_hz, channel_names, warn=warn))
