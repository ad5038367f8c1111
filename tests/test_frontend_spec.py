"""The [frontend] config section: validation in one sentence, band layout, feature layout and names,
and the manifest round trip the C header is rendered from."""

from __future__ import annotations

import pytest

from tinyae.errors import UserError
from tinyae.train.config import FrontendConfig, load
from tinyae.train.frontend import FrontendSpec, build_spec
from tinyae.train.frontend.cdefs import frontend_defines


def spec(length: int = 64, channels: int = 3, rate: float = 100.0, **kw) -> FrontendSpec:
    return build_spec(FrontendConfig(**kw), length, channels, rate)


def test_raw_is_the_default_and_the_window_itself() -> None:
    s = spec()
    assert s.raw_only and s.feature_size == 64 * 3
    assert s.feature_names(["x", "y", "z"])[:4] == ["x@0", "y@0", "z@0", "x@1"]


def test_spectral_defaults_keep_every_bin_but_dc() -> None:
    s = spec(kinds=["spectral"])
    assert s.spectral is not None
    assert (s.spectral.fft_length, s.spectral.frames) == (64, 1)
    assert s.spectral.band_edges == tuple(range(1, 34))  # bins 1..32: DC dropped, Nyquist kept
    assert s.feature_size == 3 * 32


def test_frames_bands_and_frequency_range() -> None:
    s = spec(length=100, kinds=["spectral"], fft_length=32, bins=4, freq_min_hz=10, freq_max_hz=40)
    assert s.spectral is not None
    assert s.spectral.frames == 3  # 100 // 32, the tail is not transformed
    # bin width 100/32 = 3.125 Hz: 10 Hz -> bin 4 (ceil 3.2), 40 Hz -> bin 12 (floor 12.8); 9 bins in 4 bands
    assert s.spectral.band_edges == (4, 6, 8, 10, 13)
    names = s.feature_names(["a"])
    assert names == ["a.band0", "a.band1", "a.band2", "a.band3"]
    assert s.to_manifest(100.0)["spectral"]["bands_hz"][0] == [12.5, 15.625]


def test_kinds_combine_in_a_fixed_order() -> None:
    s = spec(length=16, channels=2, kinds=["stats", "raw"], stats=["zcr", "mean"])
    assert s.kinds == ("raw", "stats")
    assert s.stats == ("mean", "zcr")  # canonical order whatever the config's
    assert s.sizes == {"raw": 32, "spectral": 0, "stats": 4}
    assert s.feature_names(["a", "b"])[-4:] == ["a.mean", "a.zcr", "b.mean", "b.zcr"]


def test_manifest_round_trip() -> None:
    s = spec(length=96, kinds=["raw", "spectral", "stats"], fft_length=32, bins=5, log=False)
    m = {"frontend": s.to_manifest(100.0), "window": {"length": 96, "channels": 3}}
    assert FrontendSpec.from_manifest(m) == s
    raw = {"frontend": spec(length=8, channels=2).to_manifest(), "window": {"length": 8, "channels": 2}}
    assert FrontendSpec.from_manifest(raw) == FrontendSpec(("raw",), 8, 2)


def test_header_block_carries_the_layout() -> None:
    s = spec(length=64, kinds=["spectral", "stats"], fft_length=16, bins=3, stats=["rms", "kurtosis"])
    text = frontend_defines(s)
    for line in (
        "#define TAE_FE_SPECTRAL 1",
        "#define TAE_FE_RAW_ONLY 0",
        "#define TAE_FEATURE_SIZE 15",
        "#define TAE_FE_FFT_LEN 16",
        "#define TAE_FE_FRAMES 4",
        "#define TAE_FE_BANDS 3",
        "#define TAE_FE_STAT_IDS_INIT { 1, 6 }",
    ):
        assert line in text


@pytest.mark.parametrize(
    ("kw", "length", "rate", "words"),
    [
        ({"kinds": ["fft"]}, 64, 100.0, "frontend.kinds contains 'fft'"),
        ({"kinds": []}, 64, 100.0, "frontend.kinds is empty"),
        ({"kinds": ["raw", "raw"]}, 64, 100.0, "names a kind twice"),
        ({"kinds": ["spectral"], "fft_length": 48}, 64, 100.0, "must be a power of two"),
        ({"kinds": ["spectral"], "fft_length": 128}, 64, 100.0, "longer than the window"),
        ({"kinds": ["spectral"]}, 3, 100.0, "at least 4 samples"),
        ({"kinds": ["spectral"], "freq_max_hz": 20.0}, 64, 0.0, "set data.sample_rate_hz"),
        ({"kinds": ["spectral"], "freq_min_hz": 45.5, "freq_max_hz": 46.5}, 64, 100.0, "no FFT bin lies"),
        ({"kinds": ["spectral"], "bins": 40}, 64, 100.0, "frontend.bins = 40"),
        ({"kinds": ["spectral"], "log_floor": -1.0}, 64, 100.0, "log_floor"),
        ({"kinds": ["spectral"], "log_floor": 1e-40}, 64, 100.0, "log_floor"),
        ({"kinds": ["stats"], "stats": ["median"]}, 64, 100.0, "frontend.stats"),
    ],
)
def test_bad_front_end_configs_are_refused_in_one_sentence(kw, length, rate, words) -> None:
    with pytest.raises(UserError) as err:
        spec(length=length, rate=rate, **kw)
    assert words in str(err.value)
    assert "\n" not in str(err.value)


def test_overrides_reach_the_section() -> None:
    cfg = load(None, ["frontend.kinds=spectral,stats", "frontend.window_fn=hamming", "frontend.bins=8"])
    assert cfg.frontend.kinds == ["spectral", "stats"]
    assert (cfg.frontend.window_fn, cfg.frontend.bins) == ("hamming", 8)
    with pytest.raises(UserError, match=r"frontend\.spectrum"):
        load(None, ["frontend.spectrum=db"])


def test_the_budget_estimate_counts_the_front_end() -> None:
    from tinyae.tools.budget.estimate import frontend_bytes

    raw = {"frontend": spec().to_manifest(), "input": {"size": 192}}
    assert frontend_bytes(raw)[:2] == (0, 0)
    s = spec(kinds=["spectral", "stats"], fft_length=32)
    flash, ram, _ = frontend_bytes({"frontend": s.to_manifest(100.0)})
    f = s.feature_size
    assert ram == 4 * f + 4 * (32 + 17)  # features + half-length FFT re/im + per-bin accumulator
    assert flash > 8 * f + 8 * 32  # code + normalization + window and twiddle tables
