from pathlib import Path

import pytest

from tinyae.errors import UserError
from tinyae.train import config


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "exp.toml"
    p.write_text(text)
    return p


def test_defaults_and_overrides(tmp_path):
    cfg = config.load(
        write(tmp_path, "[window]\nlength = 64\nhop = 8\n"), ["train.epochs=3", "model.hidden=[32,16]"]
    )
    assert (cfg.window.length, cfg.window.hop, cfg.train.epochs, cfg.model.hidden) == (64, 8, 3, [32, 16])


@pytest.mark.parametrize(
    ("text", "overrides", "message"),
    [
        ("[window]\nlenght = 3\n", [], "unknown key 'lenght' in section [window]"),
        ("[windows]\nlength = 3\n", [], "unknown section [windows]"),
        (
            "[window]\nlength = 'x'\n",
            [],
            "window.length = 'x' should be a whole number \\(between 2 and 65535\\)",
        ),
        ("[model]\nvariant = 'fancy'\n", [], "is not one of plain"),
        ("[window]\nlength = 8\nhop = 9\n", [], "window.hop = 9"),
        ("not toml = = 1", [], "is not valid TOML"),
        ("", ["epochs=3"], "must look like section.key=value"),
        ("", ["train.epoch=3"], "unknown key 'epoch'"),
        ("[decision]\nk = 3\nn = 2\n", [], "decision.k = 3"),
        ("[threshold]\nfactor = 0\n", [], "threshold.factor = 0.0 must be above 0 and at most 1000"),
        ("[threshold]\npercentile = 101\n", [], "threshold.percentile = 101.0"),
        ("[quantize]\nheadroom = 0.5\n", [], "quantize.headroom = 0.5 must be between 1"),
        ("[model]\nkl_weight = -1\n", [], "model.kl_weight = -1.0 must be between 0 and 1"),
        ("[train]\nlearning_rate = 0\n", [], "train.learning_rate = 0.0 must be above 0"),
        (
            "",
            ["train.learning_rate=nan"],
            "train.learning_rate = nan is not a finite number; it must be above 0",
        ),
        ("[train]\npatience = 0\n", [], "train.patience = 0 must be between 1 and 100000"),
        ("[model]\nnoise_std = -0.1\n", [], "model.noise_std = -0.1 must be between 0 and 10"),
        ("", ["model.contractive=inf"], "model.contractive = inf is not a finite number"),
    ],
)
def test_bad_config_is_one_sentence(tmp_path, text, overrides, message):
    with pytest.raises(UserError, match=message.replace("[", r"\[").replace("]", r"\]")):
        config.load(write(tmp_path, text), overrides)


def test_missing_config_file(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        config.load(tmp_path / "nope.toml")


def test_config_saved_round_trips(tmp_path):
    cfg = config.load(None, ["model.variant=sparse", "threshold.percentile=99"])
    cfg.save(tmp_path / "used.toml")
    assert config.load(tmp_path / "used.toml") == cfg


def test_cli_bad_config_exits_2_without_traceback(tmp_path):
    from clirun import tinyae

    bad = write(tmp_path, "[train]\nepochz = 1\n")
    proc = tinyae("model", "--config", str(bad), "--out", str(tmp_path / "o"))
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: unknown key 'epochz'")
    assert "Traceback" not in proc.stderr


def test_the_threshold_factor_scales_the_calibrated_value():
    import numpy as np

    from tinyae.train.calibrate import calibrate
    from tinyae.train.config import ThresholdConfig

    scores = np.linspace(0.0, 2.0, 101)
    top = calibrate(ThresholdConfig(method="percentile", percentile=100.0), scores)
    ucl = calibrate(ThresholdConfig(method="percentile", percentile=100.0, factor=1.5), scores)
    assert top.value == 2.0 and ucl.value == 3.0 and ucl.params["factor"] == 1.5
    ms = calibrate(ThresholdConfig(method="mean_std", k_std=2.0, factor=2.0), scores)
    assert ms.value == pytest.approx(2 * (scores.mean() + 2 * scores.std()), rel=1e-6)


def test_quantize_headroom_widens_the_representative_set():
    import numpy as np

    from tinyae.train.quantize import representative_set

    x = np.array([[1.0, -2.0], [0.5, 0.25]], np.float32)
    assert representative_set(x, 1.0) is not None and np.array_equal(representative_set(x, 1.0), x)
    wide = representative_set(x, 8.0)
    assert wide.shape == (4, 2) and np.array_equal(wide[2:], 8 * x) and np.abs(wide).max() == 16.0
