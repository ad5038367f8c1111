from pathlib import Path

import pytest

from train import config
from train.errors import UserError


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
        ("[window]\nlength = 'x'\n", [], "should be a int"),
        ("[model]\nvariant = 'fancy'\n", [], "is not one of plain"),
        ("[window]\nlength = 8\nhop = 9\n", [], "window.hop = 9"),
        ("not toml = = 1", [], "is not valid TOML"),
        ("", ["epochs=3"], "must look like section.key=value"),
        ("", ["train.epoch=3"], "unknown key 'epoch'"),
        ("[decision]\nk = 3\nn = 2\n", [], "decision.k = 3"),
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
    import subprocess
    import sys

    bad = write(tmp_path, "[train]\nepochz = 1\n")
    proc = subprocess.run(
        [sys.executable, "-m", "train", "model", "--config", str(bad), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: unknown key 'epochz'")
    assert "Traceback" not in proc.stderr
