"""The bench (`tinyae bench --quick`) runs end to end and writes valid, complete results.

Timings are never asserted; the checks are on structure and on figures that must hold whatever the
machine (bit-exact device outputs, footprint arithmetic, the split protocol quoted verbatim).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import has_arm_toolchain

from tinyae.tools.bench import quality, report

ROOT = Path(__file__).resolve().parent.parent
# The quick bench trains models and, where the toolchain is installed, runs them on the emulated board:
# every test that reads its results is in those lanes (tests/lanes.py reads this).
FIXTURE_MARKS = {"quick_results": ("slow", "training", "emulator")}

TOP_KEYS = {
    "schema", "command", "quick", "machine", "quality", "pipeline", "device", "footprint",
    "streaming", "host_reference", "elapsed_s", "calibration", "timing", "threshold",
}  # fmt: skip


@pytest.fixture(scope="module")
def quick_results(tmp_path_factory) -> tuple[dict, str]:
    out = tmp_path_factory.mktemp("bench")
    proc = subprocess.run(
        [sys.executable, "-m", "tinyae", "bench", "--quick", "--out", str(out), "--work", str(out / "work")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads((out / "results.json").read_text())
    return res, (out / "RESULTS.md").read_text()


def test_quick_run_writes_every_section(quick_results) -> None:
    res, md = quick_results
    assert set(res) >= TOP_KEYS
    assert res["quick"] is True
    assert res["machine"]["cores"] >= 1 and res["machine"]["date"]
    for heading in ("## Detection quality", "## Device cost", "## Footprint", "## Pipeline", "## Streaming",
                    "## Host reference", "## On-site calibration", "## Threshold"):  # fmt: skip
        assert heading in md


def test_the_threshold_study_compares_every_method_with_the_oracle(quick_results) -> None:
    res, md = quick_results
    t = res["threshold"]
    (name,) = [d["name"] for d in t["datasets"]]  # --quick: the 2-epoch synthetic model only
    oracle = t["oracle"][name]["f1"]
    assert t["default"]["method"] in t["candidates"] and t["chosen"]["method"] in t["candidates"]
    for c in t["candidates"].values():
        r = c["per_dataset"][name]
        assert "f1" not in r or r["f1"] <= oracle + 1e-9
    assert "*oracle: best threshold on the test labels*" in md


def test_quality_figures_and_protocol(quick_results) -> None:
    from tinyae.train.data import SPLIT_PROTOCOL

    res, md = quick_results
    q = res["quality"]
    assert q["split_protocol"] == SPLIT_PROTOCOL
    assert SPLIT_PROTOCOL.splitlines()[0] in md
    figs = next(iter(q["datasets"].values()))
    for kind in ("float", "int8"):
        for key in quality.KEYS:
            assert 0.0 <= figs[kind][key] <= 1.0
        k = figs[kind]
        assert k["tp"] + k["fp"] + k["fn"] + k["tn"] == figs["windows"]["test"]
    assert "--set train.epochs=2" in figs["command"]
    assert q["reproducibility"]["runs"] == 1


def test_pipeline_and_throughput_are_positive(quick_results) -> None:
    res, _ = quick_results
    p = res["pipeline"]
    assert p["training_s"]["median"] > 0 and p["conversion_s"]["median"] > 0
    assert p["demo"]["status"] == "skipped"
    codec = res["streaming"]["codec"]
    assert codec["result_verify"]["wire_bytes"] > codec["result_plain"]["wire_bytes"]
    assert codec["result_verify"]["frames_per_s"]["median"] > 0
    host = res["host_reference"]["models"][0]
    assert host["evaluate_windows_per_s"]["median"] > 0


def test_device_cost_is_bit_exact_and_footprint_adds_up(quick_results) -> None:
    res, _ = quick_results
    # Without the toolchain the bench says so and this test has nothing to check; with it, a device
    # section the bench could not measure is a failure of the code under test, never a skip.
    if not has_arm_toolchain():
        pytest.skip("arm-none-eabi-gcc / qemu-system-arm not installed (make toolchain)")
    assert "status" not in res["device"], f"the bench did not measure the device: {res['device']}"
    assert "status" not in res["footprint"], f"the bench did not measure the footprint: {res['footprint']}"
    d = res["device"]["models"]["default"]
    os_ = d["Os"]
    assert os_["bit_exact_windows"] == os_["windows"] > 0
    assert os_["instructions"] > d["macs"] / 4  # at most 4 MACs per instruction (SMLAD does 2)
    assert os_["instructions_max"] >= os_["instructions"]
    assert (
        d["tflm"] == {} and res["device"]["tflm_status"]["status"] == "skipped"
    )  # --quick: no library build
    t = res["timing"]["rows"][0]
    assert t["engine"] == "compiled" and t["bit_exact_windows"] == t["windows"] > 0
    assert max(t["icount_check"]["differences"]) - min(t["icount_check"]["differences"]) <= 2
    for phase in ("frontend", "engine", "score", "window"):
        c = t["cycles"][phase]
        assert 0 < c["low"] <= c["nominal"] <= c["high"]
    assert t["instructions"]["window"] > t["instructions"]["engine"] + t["instructions"]["score"]
    fp = res["footprint"]["models"]["default"]
    assert fp["ram_added"] == fp["scratch_bytes"]
    assert fp["flash_added"] > fp["model_const_bytes"] > 0
    assert fp["engine_code_bytes"] == fp["flash_added"] - fp["model_const_bytes"]


def test_agreeing_digits_and_reproducibility() -> None:
    assert quality.agreeing_digits([0.123456, 0.123456]) == 6
    assert quality.agreeing_digits([0.123421, 0.123449]) == 4
    assert quality.agreeing_digits([0.123456, 0.123449]) == 3  # 0.1235 vs 0.1234
    base = {"float": dict.fromkeys(quality.KEYS, 0.5), "int8": dict.fromkeys(quality.KEYS, 0.5),
            "threshold": {"value": 0.01}}  # fmt: skip
    other = json.loads(json.dumps(base))
    other["int8"]["f1"] = 0.5001
    same = quality.reproducibility([base, json.loads(json.dumps(base))])
    assert same["identical"] and same["report_digits"] == 4
    diff = quality.reproducibility([base, other])
    assert not diff["identical"] and diff["report_digits"] == 3


def test_report_marks_unmeasured_sections() -> None:
    skip = {"status": "not measured", "reason": "the host CLI does not exist yet"}
    res = {
        "command": "x", "quick": False, "elapsed_s": 1.0,
        "machine": {"date": "d", "commit": "c", "dirty": False, "cores": 2, "cpu": "cpu", "os": "os",
                    "python": "3", "tools": {}},
        "quality": {"datasets": {}, "split_protocol": "P", "config": "c", "threshold_method": "m"},
        "device": skip, "footprint": skip, "pipeline": {"demo": skip, "command": "x"},
        "streaming": {"codec": {}, "link": skip, "paired": skip}, "host_reference": {"models": []},
    }  # fmt: skip
    md = report.render(res)
    assert md.count("not measured: the host CLI does not exist yet") == 5
