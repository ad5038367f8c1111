"""The budget gate on the emulated Cortex-M4 image of the default model: it passes, and its figures
are the linker's (arm-none-eabi-size)."""

from __future__ import annotations

import json
import subprocess

import pytest

from tinyae.cli import main as tinyae

pytestmark = pytest.mark.emulator


def test_default_image_passes_its_budget(default_elf, tmp_path, capsys):
    out = tmp_path / "budget.json"
    code = tinyae(["budget", "check", str(default_elf), "--target", "mps2_an386", "--json", str(out)])
    assert code == 0, capsys.readouterr().err
    doc = json.loads(out.read_text())
    size = subprocess.run(
        ["arm-none-eabi-size", "-B", str(default_elf)], capture_output=True, text=True, check=True
    )
    text, data, bss = (int(v) for v in size.stdout.splitlines()[1].split()[:3])
    assert doc["sizes"] == {"text": text, "data": data, "bss": bss}
    assert doc["ok"] and doc["violations"] == []
    model_bytes = sum(s["flash"] for s in doc["symbols"] if s["group"] == "model")
    assert model_bytes >= 25_600  # the default model's int8 weights (192-64-8-64-192) live in flash


def test_outgrown_budget_fails_with_the_sentence(default_elf, tmp_path, capsys):
    from tinyae.tools.budget.config import REPO_ROOT

    text = (REPO_ROOT / "budgets.toml").read_text()
    section = text.index("[targets.mps2_an386.budget]")
    tight = text[:section] + text[section:].replace('model = "25%"', "model = 10_000", 1)
    assert tight != text
    budgets = tmp_path / "tight.toml"
    budgets.write_text(tight)
    code = tinyae(["budget", "check", str(default_elf), "--target", "mps2_an386", "--budgets", str(budgets)])
    err = capsys.readouterr().err
    assert code == 1
    assert "budget of mps2_an386 exceeded by" in err and "model" in err
