"""Issue 24, builds: every command that writes artifacts writes them all or nothing (tinyae/atomic.py), two
runs on one directory cannot mix, no stage leaves files from two builds side by side, and `make` never
replaces a model it did not build. Each case is the command as a user runs it: a real Ctrl-C and SIGTERM
after training's `int8:` line, a second `tinyae model` on the same --out, a read-only folder (a private
read-only bind mount) for every writer, a directory mixed by an older tinyae, make over a model built by
`tinyae model --set` or changed by `tinyae threshold`, and `make model CONFIG=` with spaces in the path."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT
from tests.test_atomic import needs_mounts

pytestmark = pytest.mark.training  # they start from the shared default model (or train a small one)

TINY = ["--set", "train.epochs=2"]


def digest(d: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.iterdir()) if p.is_file()}


def leftovers(parent: Path) -> list[str]:
    return [p.name for p in parent.iterdir() if ".new-" in p.name or ".old-" in p.name]


@pytest.fixture
def model(default_model_dir: Path, tmp_path: Path) -> Path:
    d = tmp_path / "model"
    shutil.copytree(default_model_dir, d)
    return d


@pytest.fixture
def tinyae(capsys):
    from tinyae.cli import main

    def run(*args: str) -> tuple[int, str]:
        code = main(list(args))
        out = capsys.readouterr()
        return code, " ".join((out.out + out.err).split())

    return run


def _train(out: Path, *sets: str) -> subprocess.Popen[str]:
    args = [a for kv in sets for a in ("--set", kv)]
    return subprocess.Popen([sys.executable, "-m", "tinyae", "model", *args, "--out", str(out), "--quiet"],
                            cwd=ROOT, stderr=subprocess.PIPE, text=True)  # fmt: skip


def _until(proc: subprocess.Popen[str], text: str) -> None:
    assert proc.stderr is not None
    for line in proc.stderr:
        if text in line:
            return
    raise AssertionError(f"the run ended before printing {text!r}")


def test_sigterm_while_training_and_ctrl_c_after_int8_leave_the_previous_model(model: Path) -> None:
    before = digest(model)
    long = _train(model, "train.epochs=2000", "train.patience=2000")
    _until(long, "tinyae data:")  # it holds the directory's lock and trains
    # a second run on the same directory stops at once, naming the first
    second = subprocess.run([sys.executable, "-m", "tinyae", "model", *TINY, "--out", str(model)],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert second.returncode == 2, second.stderr
    assert second.stderr.startswith(
        f"error: {model} is being written by `tinyae model --set train.epochs=2000"
    )
    assert f"pid {long.pid}" in second.stderr and "choose another --out" in second.stderr
    assert long.poll() is None, "the long run ended too early for the test"
    long.send_signal(signal.SIGTERM)
    rest = long.stderr.read() if long.stderr else ""
    assert long.wait(timeout=120) == 143, rest
    assert rest.strip().endswith("terminated (SIGTERM)") and f"{model} is as it was" in rest, rest
    assert digest(model) == before and leftovers(model.parent) == []
    # Ctrl-C after `int8:` (the old code had written a new model_int8.tflite beside the old manifest)
    short = _train(model, "train.epochs=2")
    _until(short, "int8:")
    short.send_signal(signal.SIGINT)
    rest = short.stderr.read() if short.stderr else ""
    assert short.wait(timeout=120) == 130, rest
    assert rest.strip().endswith("interrupted (Ctrl-C)") and "Traceback" not in rest, rest
    assert digest(model) == before and leftovers(model.parent) == []


@needs_mounts
def test_a_read_only_folder_is_one_sentence_for_every_writer_and_changes_nothing(
    model: Path, tmp_path: Path
) -> None:
    vec = np.load(model / "test_vectors.npz")
    names = json.loads((model / "manifest.json").read_text())["window"]["channel_names"]
    normal = (
        vec["series"][:4000][vec["series_labels"][:4000] == 0] if len(vec["series_labels"]) else vec["series"]
    )
    csv = tmp_path / "site.csv"
    np.savetxt(csv, np.column_stack([np.arange(len(normal)) / 100.0, normal]), delimiter=",",
               header=",".join(["timestamp", *names]), comments="", fmt="%.6f")  # fmt: skip
    ro = tmp_path / "ro"
    ro.mkdir()
    shutil.move(str(model), ro / "model")
    m = ro / "model"
    before = digest(m)
    cli = f"{sys.executable} -m tinyae"
    commands = {
        "threshold": f"{cli} threshold --model-dir {m} --method mean_std --k-std 2",
        "export": f"{cli} export --model-dir {m}",
        "compile": f"{cli} compile {m}/model_int8.tflite {m}",
        "calibrate": f"{cli} calibrate --model-dir {m} --csv {csv}",
        "model": f"{cli} model {' '.join(TINY)} --out {m}",
        "verify --json": f"{cli} device verify --port sim:// --model-dir {m} --json {ro}/report.json",
    }
    script = f"mount --bind {ro} {ro} && mount -o remount,ro,bind {ro}\n" + "".join(
        f"echo '=== {name}'; {cmd} 2>&1; echo \"rc=$?\"\n" for name, cmd in commands.items()
    )
    proc = subprocess.run(["unshare", "-m", "sh", "-c", script], cwd=ROOT, capture_output=True, text=True,
                          timeout=900)  # fmt: skip
    parts = dict(part.split("\n", 1) for part in proc.stdout.split("=== ")[1:])
    assert set(parts) == set(commands), proc.stdout + proc.stderr
    for name, text in parts.items():
        lines = [line for line in text.strip().splitlines() if line.strip()]
        assert lines[-1] == "rc=2", (name, text)
        said = " ".join(lines[:-1])
        assert said.startswith("error: cannot write") and "read-only" in said, (name, said)
        assert "Traceback" not in text, (name, text)
    assert digest(m) == before and leftovers(ro) == []


def test_a_directory_mixed_by_an_older_tinyae_is_named_and_make_rebuilds_it(
    model: Path, tinyae, tmp_path: Path
) -> None:
    # what a Ctrl-C after `int8:` left before: a new network beside the old manifest and headers
    tfl = model / "model_int8.tflite"
    data = bytearray(tfl.read_bytes())
    data[-1] ^= 1
    tfl.write_bytes(bytes(data))
    code, text = tinyae("calibrate", "--model-dir", str(model), "--csv", "nothing.csv")
    assert code == 2 and text.startswith(
        f"error: the files in {model} are from two builds: model_int8.tflite"
    )
    code, text = tinyae("device", "info", "--port", "sim://", "--model-dir", str(model))
    assert code == 2 and "are from two builds" in text
    stamp = tmp_path / "stamp"
    code, text = tinyae("inputs", "--config", str(ROOT / "configs" / "default.toml"), "--model-dir", str(model),
                        "--stamp", str(stamp))  # fmt: skip
    assert code == 0 and "its files are from two builds" in text and stamp.stat().st_mtime_ns > 0


def _make_n(
    *args: str, target: str = "model", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", "-n", "--no-print-directory", target, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**os.environ, **(env or {})})  # fmt: skip


def test_make_never_replaces_a_model_it_did_not_build(model: Path, tinyae, tmp_path: Path) -> None:
    other = tmp_path / "other.toml"
    other.write_text("[train]\nepochs = 1\n")
    # built by make's own command: another CONFIG rebuilds it (README: make follows CONFIG)
    proc = _make_n(f"MODEL_DIR={model}", f"CONFIG={other}")
    assert proc.returncode == 0 and "tinyae model --config" in proc.stdout, proc.stderr
    # changed by `tinyae threshold`: make uses it as it is with its default CONFIG ...
    code, _ = tinyae(
        "threshold", "--model-dir", str(model), "--method", "mean_std", "--k-std", "2", "--quiet"
    )
    assert code == 0
    before = digest(model)
    proc = _make_n(f"MODEL_DIR={model}")
    assert proc.returncode == 0, proc.stderr
    said = " ".join(proc.stderr.split())
    assert "tinyae threshold --model-dir" in said and "not by make; make uses it as it is" in said
    # said once per make, however make was started (one inside `make test` runs at MAKELEVEL 1): demo's
    # own sub-makes do not repeat it
    demo = _make_n(f"MODEL_DIR={model}", target="demo", env={"MAKELEVEL": "1"})
    assert " ".join(demo.stderr.split()).count("make uses it as it is") == 1, demo.stderr
    assert all("--from-make" in line for line in proc.stdout.splitlines() if "tinyae model" in line)
    # ... and if make's manifest rule runs (tinyae's code changed), `--from-make` leaves it as well
    code, text = tinyae("model", "--config", str(ROOT / "configs" / "default.toml"), "--out", str(model),
                        "--from-make")  # fmt: skip
    assert code == 0 and "make leaves it as it is" in text and digest(model) == before
    # ... but is refused, in one sentence naming the commands, when asked for another config
    proc = _make_n(f"MODEL_DIR={model}", f"CONFIG={other}")
    assert proc.returncode == 2 and "tinyae model --config" not in proc.stdout
    err = " ".join(proc.stderr.split())
    assert (
        f"error: {model} was built by `tinyae model --config configs/default.toml`, then `tinyae threshold"
        in err
    )
    assert "make never replaces a model it did not build" in err and f"not from {other}" in err
    # built with --set overrides whose inputs changed since (here: the override no longer gives its digest)
    doc = json.loads((model / "manifest.json").read_text())
    doc["built_from"].update(overrides=["train.epochs=1"], changed_by=[],
                             command=f"tinyae model --set train.epochs=1 --out {model}")  # fmt: skip
    (model / "manifest.json").write_text(json.dumps(doc))
    proc = _make_n(f"MODEL_DIR={model}")
    assert proc.returncode == 2, proc.stdout
    err = " ".join(proc.stderr.split())
    assert "`tinyae model --set train.epochs=1" in err and "the config differs" in err
    assert "make never rebuilds a model it did not build" in err


def test_make_model_takes_a_config_path_with_spaces(tmp_path: Path) -> None:
    cfg = tmp_path / "my data" / "small config.toml"
    cfg.parent.mkdir()
    cfg.write_text("[train]\nepochs = 1\n")
    out = tmp_path / "model"
    proc = subprocess.run(["make", "--no-print-directory", "model", f"CONFIG={cfg}", f"MODEL_DIR={out}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=900)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    built = json.loads((out / "manifest.json").read_text())["built_from"]
    assert built["config_file"] == str(cfg)
    again = subprocess.run(["make", "-q", "model", f"CONFIG={cfg}", f"MODEL_DIR={out}"], cwd=ROOT,
                           capture_output=True, text=True, timeout=300)  # fmt: skip
    assert again.returncode == 0, again.stderr  # up to date
    spaced = subprocess.run(["make", "-n", "model", f"MODEL_DIR={tmp_path / 'my model'}"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert spaced.returncode == 2 and "holds a space, which make cannot use" in spaced.stderr


def test_export_and_compile_replace_their_files_and_keep_the_others(model: Path, tinyae) -> None:
    """`export` rewrites the headers in a copy that replaces the directory, keeping the other files'
    times (make compares them); `compile` replaces its two files together."""
    times = {p.name: p.stat().st_mtime_ns for p in model.iterdir()}
    code, _ = tinyae("export", "--model-dir", str(model))
    assert code == 0
    assert (model / "model_int8.tflite").stat().st_mtime_ns == times["model_int8.tflite"]
    assert (model / "model_compiled.c").stat().st_mtime_ns == times["model_compiled.c"]
    code, _ = tinyae("compile", str(model / "model_int8.tflite"), str(model))
    assert code == 0 and leftovers(model.parent) == [] and leftovers(model) == []


def test_a_refusal_after_training_keeps_the_trained_network_for_import(tinyae, tmp_path: Path) -> None:
    """A threshold its method cannot give on the trained model's scores is refused at the end of `tinyae
    model`: the model directory is not made, but the training is not lost: the network is kept beside it,
    and the command the sentence gives (with the change as one more --set) builds the model from it."""
    out = tmp_path / "model"
    refused = [*TINY, "--set", "threshold.method=pot", "--set", "threshold.pot_quantile=0.9999"]
    code, said = tinyae("model", *refused, "--out", str(out), "--quiet")
    assert code == 2 and "Traceback" not in said, said
    assert "threshold.method = pot: only" in said and "the trained network is kept in" in said, said
    assert not out.exists() and not leftovers(tmp_path)
    kept = tmp_path / "model.trained"
    assert sorted(p.name for p in kept.iterdir()) == ["model.keras", "model_int8.tflite"]
    command = said.split("`")[1]  # the sentence's command, as a user copies it
    assert command.startswith(f"tinyae import {kept / 'model_int8.tflite'} --set train.epochs=2 ")
    code, said = tinyae(*command.split()[1:], "--set", "threshold.method=percentile", "--quiet")
    assert code == 0, said
    manifest = json.loads((out / "manifest.json").read_text())
    assert (
        manifest["model"]["sha256"] == hashlib.sha256((kept / "model_int8.tflite").read_bytes()).hexdigest()
    )
    assert manifest["threshold"]["method"] == "percentile"


def test_a_refusal_whose_network_cannot_be_kept_still_says_the_refusal(tmp_path: Path) -> None:
    """Keeping the network must not hide the refusal: where <out>.trained cannot be made (a file of that
    name here), the sentence is the refusal and says the network could not be kept."""
    from tinyae.errors import UserError
    from tinyae.train.pipeline import keep_trained

    stage = tmp_path / "stage"
    stage.mkdir()
    (stage / "model_int8.tflite").write_bytes(b"int8")
    (tmp_path / "model.trained").write_text("not a folder")
    said = keep_trained(
        stage, tmp_path / "model", UserError("threshold.method = pot: only 1 window."), None, []
    )
    assert said.startswith("threshold.method = pot: only 1 window (the trained network could not be kept: ")
    assert "is a file, not a directory" in said and (tmp_path / "model.trained").read_text() == "not a folder"
