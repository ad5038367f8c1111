"""What the front-end fits on normal training windows: the spectral log floor derived from the data
(the same features on any sensor scale) and the refusal or warning for features that do not vary."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tinyae.errors import UserError
from tinyae.train.config import FrontendConfig
from tinyae.train.data import make_synthetic, make_windows
from tinyae.train.frontend import build_spec, extractor
from tinyae.train.frontend.fit import check_features, constant_features, fit_log_floor
from tinyae.train.frontend.spec import AUTO_FLOOR_DB, FrontendSpec


@pytest.fixture(scope="module")
def windows() -> np.ndarray:
    return make_windows(make_synthetic(0).train.values, 64, 32)[:120]


def spec(**kw) -> FrontendSpec:
    return build_spec(FrontendConfig(kinds=["spectral"], **kw), 64, 3, 100.0)


def test_the_default_floor_is_fitted_per_band_from_the_data(windows: np.ndarray) -> None:
    s = spec()
    assert s.needs_fit and s.spectral.floor_rule == "auto"
    with pytest.raises(ValueError, match="not fitted"):
        extractor(s)
    fitted = fit_log_floor(s, windows)
    assert not fitted.needs_fit and len(fitted.spectral.log_floor) == 3 * 32
    linear = extractor(build_spec(FrontendConfig(kinds=["spectral"], log=False), 64, 3, 100.0))(windows)
    expected = np.median(linear.astype(np.float64), axis=0) * 10 ** (-AUTO_FLOOR_DB / 10)
    assert np.allclose(fitted.spectral.log_floor, expected, rtol=1e-6)
    m = fitted.to_manifest(100.0)["spectral"]
    assert m["log_floor_rule"] == "auto" and len(m["log_floor"]) == 96
    assert (
        FrontendSpec.from_manifest(
            {"frontend": fitted.to_manifest(), "window": {"length": 64, "channels": 3}}
        )
        == fitted
    )


@pytest.mark.parametrize("scale", [1e-4, 1.0, 9.81, 4096.0])  # g of a quiet machine, ..., ADC counts
def test_features_do_not_depend_on_the_sensor_unit(windows: np.ndarray, scale: float) -> None:
    base = extractor(fit_log_floor(spec(), windows))(windows).astype(np.float64)
    scaled_w = (windows * np.float32(scale)).astype(np.float32)
    scaled = extractor(fit_log_floor(spec(), scaled_w))(scaled_w).astype(np.float64)
    # log(power * scale^2) = log(power) + 2 log(scale), floors included
    assert np.allclose(scaled - base, 2 * math.log(scale), atol=1e-3)  # float32 rounding differs
    assert len(constant_features(scaled)) == 0


def test_a_fixed_floor_above_a_quiet_sensor_flattens_everything_and_is_refused(windows: np.ndarray) -> None:
    quiet = (windows * np.float32(1e-4)).astype(np.float32)  # a vibration in g: powers near 1e-9
    f = extractor(spec(log_floor=1e-3))(quiet)
    assert len(constant_features(f)) == f.shape[1]
    names = spec().feature_names(["x", "y", "z"])
    with pytest.raises(UserError) as err:
        check_features(f, names, ("spectral",), print)
    msg = str(err.value)
    assert "\n" not in msg and ". " not in msg and "x.band0" in msg and "frontend.log_floor = 0" in msg


def test_some_constant_features_are_named_in_one_warning(windows: np.ndarray) -> None:
    w = windows.copy()
    w[:, :, 1] = 2.5  # the y axis is stuck: its spectrum is zero, its floor the smallest float
    s = build_spec(FrontendConfig(kinds=["spectral", "stats"], bins=4), 64, 3, 100.0)
    s = fit_log_floor(s, w)
    f = extractor(s)(w)
    said: list[str] = []
    names = check_features(f, s.feature_names(["x", "y", "z"]), s.kinds, said.append)
    assert names[:4] == ["y.band0", "y.band1", "y.band2", "y.band3"]
    assert "y.std" in names and not any(n.startswith(("x.", "z.")) for n in names)
    assert len(said) == 1 and not said[0].startswith("warning") and "y.band0" in said[0] and "more" in said[0]


def test_a_feature_stuck_in_99_percent_of_windows_counts_as_constant() -> None:
    x = np.zeros((200, 3), np.float32)
    x[:, 0] = np.arange(200)  # varies
    x[1:, 1] = 7.0  # one window differs: 199/200 = 99.5 % stuck
    x[:, 2] = np.where(np.arange(200) < 190, 1.0, 2.0)  # 95 %: varies enough
    assert constant_features(x).tolist() == [1]
