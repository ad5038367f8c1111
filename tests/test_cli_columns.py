"""Issue 26: every table and progress bar the CLI prints fits 80 columns (COLUMNS=80) without cutting a number,
and no `nan` stands where a figure is not known yet. Each command runs as a user runs it, through a pipe,
against the simulated device (sim://, the real device application built for the host)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

WIDTH = 80


def tinyae(*args: str, cwd=None) -> str:  # type: ignore[no-untyped-def]
    env = {**os.environ, "COLUMNS": str(WIDTH), "TERM": "dumb"}
    proc = subprocess.run([sys.executable, "-m", "tinyae", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=600)  # fmt: skip
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    return proc.stdout + proc.stderr


def check_fits(out: str, what: str) -> None:
    long = [line for line in out.splitlines() if len(line) > WIDTH]
    assert not long, f"{what}: {len(long)} line(s) wider than {WIDTH}: {long[:3]}"
    cut = re.sub(r"\b[0-9a-f]{12}…", "", out)  # `sha256[:12]…` is said short on purpose; anything else is cut
    assert "…" not in cut, f"{what}: a figure cut short: {[ln for ln in cut.splitlines() if '…' in ln][:3]}"
    assert not re.search(r"\bnan\b", out), (
        f"{what}: nan printed: {[ln for ln in out.splitlines() if 'nan' in ln]}"
    )


def test_device_commands_fit_80_columns(default_model_dir, tmp_path):
    port = f"sim://?model={default_model_dir}"
    common = ["--port", port, "--model-dir", str(default_model_dir)]
    outputs = {
        "info": tinyae("device", "info", *common),
        "stream": tinyae("device", "stream", *common),
        "verify": tinyae("device", "verify", *common),
        "record": tinyae("device", "record", *common, "--samples", "400", "--out", str(tmp_path / "r.csv")),
        "monitor": tinyae("device", "monitor", *common, "--duration", "1"),
        "budget estimate": tinyae(
            "budget",
            "estimate",
            "--manifest",
            str(default_model_dir / "manifest.json"),
            "--target",
            "nano33ble",
            "--engine",
            "compiled",
        ),
        "ports": tinyae("ports"),
    }
    for what, out in outputs.items():
        check_fits(out, what)
    assert re.search(r"stream 0 .*\b21200/21200\b", outputs["stream"]), outputs["stream"][-1500:]


def test_training_and_threshold_fit_80_columns(default_model_dir, tmp_path):
    out = tinyae("model", "--set", "train.epochs=2", "--out", str(tmp_path / "m"))
    check_fits(out, "model")
    assert re.search(r"training .* 2/2 loss \d\.\d{4}  val \d\.\d{4}", out), out[-1500:]
    d = tmp_path / "moved"
    shutil.copytree(default_model_dir, d)
    check_fits(
        tinyae("threshold", "--model-dir", str(d), "--method", "mean_std", "--k-std", "3"), "threshold"
    )


def _parsers(parser, path=()):  # type: ignore[no-untyped-def]
    import argparse

    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                if child.add_help:  # pass-through commands print their own help
                    yield from _parsers(child, (*path, name))


def test_every_help_text_fits(monkeypatch):
    from tinyae.cli import build_parser

    monkeypatch.setenv("COLUMNS", str(WIDTH))
    seen = 0
    for path, parser in _parsers(build_parser()):
        check_fits(parser.format_help(), f"tinyae {' '.join(path)} --help")
        seen += 1
    assert seen > 20
