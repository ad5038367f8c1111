"""Fault injection between the host tool and the emulated board (QEMU mps2-an386, the real firmware):
tools/faultproxy/proxy.py flips bits, drops, duplicates and inserts bytes, cuts the connection and resets
the device (QMP system_reset) at exact frames, in both directions. For each fault, `verify` must
report exactly the windows affected (lost, or retried with --retries), compare only windows that
arrived intact (all bit-exact with TFLM), keep a partial report on a fatal fault, and the device
must answer the next good frame."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import has_arm_toolchain
from tinyae.cli import main as tinyae
from tinyae.tools.emulator.qemu import Emulator
from tinyae.tools.faultproxy.proxy import Fault, FaultProxy, LogEntry
from tinyae.tools.link.device import Device, open_port
from tinyae.tools.link.protocol import MAX_BATCH

pytestmark = [
    pytest.mark.emulator,
    pytest.mark.skipif(not has_arm_toolchain(), reason="needs arm-none-eabi-gcc and qemu-system-arm"),
]

N_WINDOWS = 60


@pytest.fixture(scope="module")
def short_csv(default_model_dir, tmp_path_factory) -> Path:
    """The first N_WINDOWS windows of the default model's test split as a CSV (a fast verify)."""
    manifest = json.loads((default_model_dir / "manifest.json").read_text())
    w = manifest["window"]
    with np.load(default_model_dir / "test_vectors.npz") as z:
        x = np.asarray(z["series"], np.float32)
    n = w["length"] + (N_WINDOWS - 1) * w["hop"]
    assert len(x) >= n
    names = w.get("channel_names") or [f"ch{i}" for i in range(w["channels"])]
    path = tmp_path_factory.mktemp("robust") / "short.csv"
    rows = [",".join(names)] + [",".join(repr(float(v)) for v in row) for row in x[:n]]
    path.write_text("\n".join(rows) + "\n")
    return path


def last_batch(csv: Path) -> int:
    """batch_seq of the last SAMPLES batch of a stream of `csv` (MAX_BATCH samples per batch)."""
    return -(-(len(csv.read_text().splitlines()) - 1) // MAX_BATCH) - 1


def run_verify(elf, model_dir, csv, tmp_path, faults, *, retries=2, timeout=2.0):
    """verify through a FaultProxy; (exit code, JSON report, proxy, emulator still running)."""
    report = tmp_path / "verify.json"
    with Emulator(elf, qmp=True) as emu, FaultProxy(emu.port, faults, reset=emu.reset, seed=7) as proxy:
        code = tinyae(
            ["device", "verify", "--port", proxy.url, "--model-dir", str(model_dir), "--csv", str(csv),
             "--json", str(report), "--quiet", "--timeout", str(timeout), "--retries", str(retries)]
        )  # fmt: skip
        proxy.stop()
        assert not proxy.unfired, f"fault never fired: {proxy.unfired}"
        answers_next_good_frame(emu)
    return code, json.loads(report.read_text()), proxy


def answers_next_good_frame(emu: Emulator) -> None:
    """After the faults the device still answers a HELLO with its INFO, over a new connection."""
    dev = Device(open_port(emu.url), timeout=3.0, name=emu.url)
    try:
        assert dev.handshake().channels > 0
    finally:
        dev.close()
    assert emu.exit_code is None, emu.stderr_text


def windows(entries: list[LogEntry]) -> set[int]:
    return {int(e.label.split(":")[1]) for e in entries if e.label and e.label.startswith("result:")}


def affected_d2h(proxy: FaultProxy) -> set[int]:
    """Windows whose RESULT frame the proxy damaged, plus the frame after a dropped delimiter."""
    log = proxy.frames("d2h")
    hit = set()
    for i, e in enumerate(log):
        if e.fault is None:
            continue
        hit |= windows([e])
        if e.fault.startswith("drop") and i + 1 < len(log):
            hit |= windows([log[i + 1]])
    return hit


def assert_verified_exact(r: dict) -> None:
    """Every compared window is bit-exact with the reference; nothing compared twice."""
    assert r["input_mismatches"] == 0 and r["output_mismatches"] == 0, r
    assert r["n_scores_out_of_tolerance"] == 0 and r["n_decision_mismatches"] == 0
    assert r["n_alarm_mismatches"] == 0
    assert r["input_bit_exact_windows"] == r["output_bit_exact_windows"] == r["windows_compared"]


def lost(r: dict) -> list[int]:
    return [x["window"] for x in r["lost_windows"]]


def retried(r: dict) -> list[int]:
    return [x["window"] for x in r["retried_windows"]]


D2H_DAMAGE = [
    pytest.param(Fault("flip", "d2h", msg="result:20", bit=3), id="flip"),
    pytest.param(Fault("drop", "d2h", msg="result:10", pos=-1), id="drop-delimiter"),
    pytest.param(Fault("drop", "d2h", msg="result:33", count=5), id="drop-bytes"),
    pytest.param(Fault("dup", "d2h", msg="result:30", count=3), id="dup"),
    pytest.param(Fault("garbage", "d2h", msg="result:41", pos=5, count=200), id="garbage"),
]


@pytest.mark.parametrize("fault", D2H_DAMAGE)
def test_device_to_host_damage_is_retried_exactly(default_elf, default_model_dir, short_csv, tmp_path, fault):
    code, r, proxy = run_verify(default_elf, default_model_dir, short_csv, tmp_path, [fault])
    hit = affected_d2h(proxy)
    assert hit, "the fault must hit a RESULT frame"
    assert code == 0 and r["ok"], r
    assert retried(r) == sorted(hit) and lost(r) == []
    assert r["windows_compared"] == r["windows_expected"] == N_WINDOWS
    assert r["link"]["replays"] >= 1 and r["link"]["decode_errors"] >= 1
    assert_verified_exact(r)


def test_device_to_host_damage_without_retries_names_the_lost_windows(
    default_elf, default_model_dir, short_csv, tmp_path
):
    faults = [Fault("flip", "d2h", msg="result:7"), Fault("drop", "d2h", msg="result:50", pos=-1)]
    code, r, proxy = run_verify(default_elf, default_model_dir, short_csv, tmp_path, faults, retries=0)
    hit = affected_d2h(proxy)
    assert code == 1 and not r["ok"]
    assert lost(r) == sorted(hit) and 7 in hit and 50 in hit and retried(r) == []
    assert r["windows_compared"] == N_WINDOWS - len(hit)
    assert_verified_exact(r)


H2D_DAMAGE = [
    pytest.param([Fault("flip", "h2d", msg="samples:5")], id="flip"),
    pytest.param([Fault("drop", "h2d", msg="samples:9", pos=-1)], id="drop-delimiter"),
    pytest.param([Fault("dup", "h2d", msg="samples:3", count=4)], id="dup"),
    pytest.param([Fault("garbage", "h2d", msg="samples:8", count=3000)], id="garbage-burst"),
    pytest.param(
        [Fault("flip", "h2d", msg="samples:LAST"), Fault("flip", "h2d", msg="set")], id="last-batch+set"
    ),
]


def test_lost_acks_cost_nothing(default_elf, default_model_dir, short_csv, tmp_path):
    # batch 12's ACK is covered by batch 13's; the last batch's by the SEQ_GAP answering its resend
    faults = [Fault("flip", "d2h", msg="ack:12"), Fault("flip", "d2h", msg=f"ack:{last_batch(short_csv)}")]
    code, r, _ = run_verify(default_elf, default_model_dir, short_csv, tmp_path, faults, retries=0)
    assert code == 0 and r["ok"], r
    assert lost(r) == [] and retried(r) == [] and r["windows_compared"] == N_WINDOWS
    assert r["link"]["decode_errors"] == 2 and r["link"]["retransmits"] == 1
    assert_verified_exact(r)


@pytest.mark.parametrize("faults", H2D_DAMAGE)
def test_host_to_device_damage_is_resent_and_nothing_is_lost(
    default_elf, default_model_dir, short_csv, tmp_path, faults
):
    # no --retries: the protocol's own resend (SEQ_GAP / framing error / silence) is enough
    for f in faults:
        if f.msg == "samples:LAST":
            f.msg = f"samples:{last_batch(short_csv)}"
    code, r, _ = run_verify(default_elf, default_model_dir, short_csv, tmp_path, faults, retries=0)
    assert code == 0 and r["ok"], r
    assert lost(r) == [] and retried(r) == []
    assert r["windows_compared"] == N_WINDOWS and r["link"]["retransmits"] >= 1
    assert_verified_exact(r)


@pytest.mark.parametrize(
    "fault", [Fault("cut", "d2h", msg="result:25"), Fault("cut", "h2d", msg="samples:12")], ids=["d2h", "h2d"]
)
def test_connection_cut_keeps_a_partial_report(
    default_elf, default_model_dir, short_csv, tmp_path, capsys, fault
):
    code, r, proxy = run_verify(default_elf, default_model_dir, short_csv, tmp_path, [fault])
    err = capsys.readouterr().err
    assert code == 2 and not r["ok"]
    assert "connection" in r["incomplete"] and "closed" in err
    got = windows(proxy.frames("d2h", fault=False))
    assert r["windows_compared"] == len(got) > 0
    if fault.direction == "d2h":
        assert got == set(range(25))  # everything before the cut, nothing after
    assert sorted(lost(r)) == sorted(set(range(N_WINDOWS)) - got)
    assert_verified_exact(r)


def first_incarnation_windows(proxy: FaultProxy) -> set[int]:
    """Windows whose RESULT the proxy forwarded before the rebooted device's BOOT frame."""
    log = proxy.frames("d2h")
    reset_at = next(i for i, e in enumerate(log) if e.fault and e.fault.startswith("reset"))
    boot_at = next(i for i in range(reset_at, len(log)) if log[i].label == "boot")
    return windows(log[:boot_at])


@pytest.mark.parametrize(
    "fault", [Fault("reset", "d2h", msg="ack:9"), Fault("reset", "h2d", msg="samples:17")], ids=["d2h", "h2d"]
)
def test_device_reset_midstream_is_recovered(default_elf, default_model_dir, short_csv, tmp_path, fault):
    code, r, proxy = run_verify(default_elf, default_model_dir, short_csv, tmp_path, [fault])
    assert "reset" in proxy.events
    assert code == 0 and r["ok"], r
    assert r["link"]["device_resets"] == 1
    if fault.direction == "d2h":
        before = first_incarnation_windows(proxy)
        assert retried(r) == sorted(set(range(N_WINDOWS)) - before)
    assert 0 < len(retried(r)) < N_WINDOWS and lost(r) == []
    assert r["windows_compared"] == N_WINDOWS
    assert_verified_exact(r)


def test_device_reset_without_retries_stops_with_one_sentence(
    default_elf, default_model_dir, short_csv, tmp_path, capsys
):
    code, r, proxy = run_verify(
        default_elf, default_model_dir, short_csv, tmp_path, [Fault("reset", "d2h", msg="ack:9")], retries=0
    )
    err = capsys.readouterr().err
    assert code == 2 and "reset during the session" in err and "--retries" in err
    assert not r["ok"] and "reset" in r["incomplete"]
    assert r["windows_compared"] == len(first_incarnation_windows(proxy)) > 0
    assert r["windows_compared"] + len(lost(r)) == N_WINDOWS
    assert_verified_exact(r)


@pytest.mark.parametrize("retries", [0, 2])
def test_stream_keeps_every_row_and_recovers_with_retries(
    default_elf, default_model_dir, short_csv, tmp_path, capsys, retries
):
    out = tmp_path / "rows.jsonl"
    fault = Fault("flip", "d2h", msg="result:15")
    with Emulator(default_elf, qmp=True) as emu, FaultProxy(emu.port, [fault]) as proxy:
        code = tinyae(
            ["device", "stream", "--port", proxy.url, "--model-dir", str(default_model_dir), "--csv", str(short_csv),
             "--out", str(out), "--quiet", "--timeout", "2", "--retries", str(retries)]
        )  # fmt: skip
    assert fault.fired
    table = capsys.readouterr().out
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    got = [r["window"] for r in rows]
    assert len(got) == len(set(got))  # each window once
    if retries:
        assert code == 0 and sorted(got) == list(range(N_WINDOWS))
        assert "retried windows" in table and "1: 15" in table
    else:
        assert code == 1 and sorted(got) == [w for w in range(N_WINDOWS) if w != 15]
        assert "1: 15" in table  # the lost window, by number


def test_record_lists_the_samples_a_fault_cost(default_elf, default_model_dir, tmp_path, capsys):
    out = tmp_path / "capture.csv"
    fault = Fault("flip", "d2h", msg="telemetry:64")
    with Emulator(default_elf, qmp=True) as emu, FaultProxy(emu.port, [fault]) as proxy:
        code = tinyae(
            ["device", "record", "--port", proxy.url, "--model-dir", str(default_model_dir), "--samples", "400",
             "--out", str(out), "--no-timestamp", "--quiet", "--timeout", "3"]
        )  # fmt: skip
    assert fault.fired
    err = capsys.readouterr().err
    meta = json.loads(out.with_suffix(".csv.json").read_text())
    (gap,) = meta["lost_samples"]
    assert code == 1 and "samples were lost on the link (first at sample 64)" in err
    assert gap["first"] == 64 and 1 <= gap["count"] <= MAX_BATCH
    following = [e.label for e in proxy.frames("d2h") if e.label and e.label.startswith("telemetry:")]
    assert f"telemetry:{64 + gap['count']}" in following  # the gap ends where the next frame starts
    assert meta["samples"] == 400 == len(out.read_text().splitlines()) - 1
