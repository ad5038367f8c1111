"""Issue 24, "sampling on the board is honest", on the emulated Cortex-M4: the core's synthetic source with a
stalled loop (EMU_SENSOR=paced EMU_SENSOR_STALL=K: 2.5 sample periods lost after every K-th sample, paced like
a board's sensor) makes the device skip slots and read samples late; every TELEMETRY frame counts them, and
`record` and `monitor` report them. The emulated board says its sensor is the built-in synthetic machine,
and names the mismatch when a model trained on other data meets it. tests/test_sampling.py runs the same
on the simulated device, and the sample clock against its mirror."""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.emulator

STALL_EVERY = 7


@pytest.fixture(scope="module")
def stalled_elf(default_model_dir: Path, tmp_path_factory) -> Path:
    from tinyae.tools.emulator.qemu import build_image

    out = tmp_path_factory.mktemp("fw_stalled")
    build_image(out, model_dir=default_model_dir, sensor_paced=True, sensor_stall=STALL_EVERY)
    return out / "tinyae.elf"


@pytest.fixture
def tinyae(capsys, monkeypatch, tmp_path: Path):
    from tinyae.cli import main

    monkeypatch.setenv("COLUMNS", "200")

    def run(*args: str) -> tuple[int, str, str]:
        code = main([*args, "--emulator-storage", str(tmp_path / "storage")])
        out = capsys.readouterr()
        return code, " ".join(out.out.split()), " ".join(out.err.split())

    return run


def test_a_stalled_loop_skips_slots_the_device_counts_and_record_reports(
    tinyae, stalled_elf: Path, default_model_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "capture.csv"
    code, _, err = tinyae("device", "record", "--emulator", str(stalled_elf), "--model-dir", str(default_model_dir),
                          "--samples", "300", "--out", str(out), "--quiet")  # fmt: skip
    assert code == 1, err
    assert "the device skipped" in err and "half a period or more after their time" in err
    assert (
        err.count("is the built-in synthetic machine") == 1 and "trained on" not in err
    )  # the default model
    meta = json.loads(out.with_suffix(".csv.json").read_text())
    assert meta["source"] == "synthetic"
    skips = meta["skipped_samples"]
    # one slot per stall: 2.5 periods away leaves the loop 1.5 periods behind, one slot skipped and the
    # next read half a period late
    assert skips and all(s["count"] == 1 for s in skips)
    assert meta["late_samples"] >= len(skips)
    assert all(b["before"] - a["before"] == STALL_EVERY for a, b in itertools.pairwise(skips))
    t = np.loadtxt(out, delimiter=",", skiprows=1)[:, 0]
    steps = np.round(np.diff(t) * 100.0).astype(int)  # the default model samples at 100 Hz
    gaps = {int(i) + 1: int(s) - 1 for i, s in enumerate(steps) if s != 1}
    assert gaps == {s["before"]: s["count"] for s in skips if s["before"] < len(t)}


def test_the_default_image_never_skips_and_monitor_names_the_synthetic_sensor(
    tinyae, default_elf: Path, default_model_dir: Path, tmp_path: Path
) -> None:
    code, out, err = tinyae("device", "monitor", "--emulator", str(default_elf), "--model-dir",
                            str(default_model_dir), "--duration", "3", "--quiet")  # fmt: skip
    assert code == 0, err
    assert "skipped" not in out and err.count("is the built-in synthetic machine") == 1
    # a model trained on the user's recordings (same network, its data section says csv): every window
    # is an alarm on the synthetic machine, and the command says why, once
    mine = tmp_path / "mine"
    shutil.copytree(default_model_dir, mine)
    doc = json.loads((mine / "manifest.json").read_text())
    doc["data"]["source"] = "csv"
    (mine / "manifest.json").write_text(json.dumps(doc))
    code, _, err = tinyae("device", "monitor", "--emulator", str(default_elf), "--model-dir", str(mine),
                          "--duration", "2", "--quiet")  # fmt: skip
    assert code == 0, err
    assert err.count("is the built-in synthetic machine") == 1
    assert "trained on csv data, so its scores here say nothing about your machine" in err
    # on-site calibration from the emulated board's sensor says it too, whatever the calibration decides
    code, _, err = tinyae("device", "calibrate", "--emulator", str(default_elf), "--model-dir", str(mine),
                          "--quiet")  # fmt: skip
    assert err.count("is the built-in synthetic machine") == 1 and "trained on csv data" in err, err
