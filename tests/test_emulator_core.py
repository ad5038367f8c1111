"""The real image (core + compiled engine + default model) boots on QEMU and introduces itself, and
spins, then sleeps, while it waits for the host.

Only the boot, the handshake and the idle loop are checked here; streaming and verification through the
real protocol are the host tool's end-to-end tests."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from elftools.elf.elffile import ELFFile

from tinyae.tools.emulator.qemu import Emulator, build_image
from tinyae.tools.link import protocol
from tinyae.tools.link.device import open_device

pytestmark = pytest.mark.emulator


@pytest.fixture(scope="module")
def core_elf(tmp_path_factory, default_model_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("emu_core")
    build_image(out, app="core", model_dir=default_model_dir)
    return out / "tinyae.elf"


def _frames(emu: Emulator, ser, decoder: protocol.StreamDecoder, want: type, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for ev in decoder.feed(ser.read(max(1, ser.in_waiting))):
            if isinstance(ev, protocol.Frame) and type(ev.msg) is want:
                return ev
        assert emu.exit_code is None, emu.stderr_text
    raise AssertionError(f"no {want.__name__} frame within {timeout} s")


def test_core_image_boots_and_answers_the_handshake(core_elf: Path, default_model_dir: Path) -> None:
    manifest = json.loads((default_model_dir / "manifest.json").read_text())
    with core_elf.open("rb") as f:
        sym = {s.name: s["st_value"] for s in ELFFile(f).get_section_by_name(".symtab").iter_symbols()}
    with Emulator(core_elf) as emu:
        ser = emu.connect(timeout=0.2)
        assert "app=core" in emu.read_banner(ser)
        decoder = protocol.StreamDecoder()
        boot = _frames(emu, ser, decoder, protocol.Boot).msg
        assert boot.target == "qemu-mps2-an386"
        assert boot.cost_unit == "instructions"
        assert boot.engine == "compiled"
        assert boot.flash_used == sym["__tae_flash_used"]
        assert boot.ram_static == sym["__tae_static_ram"]
        assert boot.stack_bytes == sym["__stack_size"]
        assert boot.model_sha256.hex() == manifest["model"]["sha256"]
        assert boot.channels == manifest["window"]["channels"]
        ser.write(protocol.encode_frame(protocol.Hello(), 0))
        info = _frames(emu, ser, decoder, protocol.Info).msg
        assert info.model_sha256 == boot.model_sha256
        ser.close()


def _wfi_in_main(elf: Path) -> int:
    """The address of the idle loop's WFI (main.c's tae_emu_sleep_until_rx, inlined into main)."""
    dis = subprocess.run(
        ["arm-none-eabi-objdump", "-d", str(elf)], capture_output=True, text=True, check=True
    )
    at, fn = [], ""
    for line in dis.stdout.splitlines():
        head = re.match(r"^[0-9a-f]+ <([^>]+)>:$", line)
        fn = head.group(1) if head else fn
        insn = re.match(r"^\s+([0-9a-f]+):\s+[0-9a-f]{4}\s+wfi\b", line)
        if insn and fn == "main":
            at.append(int(insn.group(1), 16))
    assert len(at) == 1, f"expected one WFI in main, found {at}"
    return at[0]


def _pc(emu: Emulator) -> int:
    regs = emu.qmp_execute("human-monitor-command", arguments={"command-line": "info registers"})
    return int(re.search(r"R15=([0-9a-f]{8})", regs).group(1), 16)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _word(emu: Emulator, elf: Path, name: str) -> int:
    """A 32-bit variable of the running guest, read through the monitor (QMP)."""
    with elf.open("rb") as f:
        (sym,) = ELFFile(f).get_section_by_name(".symtab").get_symbol_by_name(name)
    dump = emu.qmp_execute(
        "human-monitor-command", arguments={"command-line": f"x /1wx {sym['st_value']:#x}"}
    )
    return int(dump.split(":")[1].split()[0], 16)


def _halted_at(emu: Emulator, pc: int, timeout: float = 30.0) -> None:
    """Wait until the guest's pc is `pc` and stays there for 5 looks 50 ms apart. (The board spins a
    while before it sleeps, a while of its vCPU's time: how long that is in wall time depends on the
    machine's load, so the wait has no tight limit.)"""
    deadline, seen = time.monotonic() + timeout, []
    while time.monotonic() < deadline:
        seen = [_pc(emu)]
        for _ in range(4):
            if seen[-1] != pc:
                break
            time.sleep(0.05)
            seen.append(_pc(emu))
        if seen == [pc] * 5:
            return
        time.sleep(0.05)
    raise AssertionError(f"the idle board is not halted after its WFI at {pc - 2:#x}: pc {seen}")


@pytest.fixture(scope="module")
def sleepy_elf(tmp_path_factory, default_model_dir: Path) -> Path:
    """The core image that sleeps as soon as it is idle (EMU_SPIN_POLLS=0): a wake-up per received byte."""
    out = tmp_path_factory.mktemp("emu_core_sleepy")
    build_image(out, app="core", model_dir=default_model_dir, spin_polls=0)
    return out / "tinyae.elf"


def test_instruction_counts_stay_exact_across_sleeps(
    sleepy_elf: Path, default_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """SysTick stops for every sleep and restarts at a whole wrap (timer.c), so the instruction counts
    stay exact however often the board sleeps: on the image that sleeps before every received byte, with
    one batch in flight (no byte arrives during an inference), the same windows cost the same
    instructions, pass after pass, with thousands of sleeps in between. (A count whose SysTick phase
    drifted with the sleeps would be one instruction off here and there.)"""
    series = np.load(default_model_dir / "test_vectors.npz")["series"][:480]
    wfi = _wfi_in_main(sleepy_elf)
    with Emulator(sleepy_elf, qmp=True) as emu, open_device(emu.url) as dev:
        passes, sleeps, sent = [], 0, 0
        for _ in range(3):
            dev.reset_windows()
            results: list[protocol.Result] = []
            s0 = _word(emu, sleepy_elf, "tae_emu_sleeps")
            summary = dev.stream(series, results.append, inflight=1)
            sleeps += _word(emu, sleepy_elf, "tae_emu_sleeps") - s0
            sent += summary.bytes_tx
            passes.append([r.cost for r in sorted(results, key=lambda r: r.window_seq)])
            _halted_at(emu, wfi + 2)
    assert len(passes[0]) > 10 and passes[0] == passes[1] == passes[2], passes
    # Nearly every received byte was a wake-up (the UART holds one byte); some were already in the ring.
    assert sleeps > sent // 4, (sleeps, sent)
    with capsys.disabled():
        print(f"\n[emulator-core] sleep at once: {sleeps} sleeps for {sent} B, 3 passes, same costs")


def test_the_board_spins_through_a_burst_and_sleeps_when_idle(
    core_elf: Path, default_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The default image spins while bytes keep coming and sleeps once it has been idle a while: streaming
    takes a batch's hundreds of bytes without a sleep between them (sleeps: a few per batch, between the
    host's frames, never one per byte as on the image that sleeps at once), and the idle board halts in
    main's WFI and stays there (no SysTick, no spinning)."""
    series = np.load(default_model_dir / "test_vectors.npz")["series"][:960]
    wfi = _wfi_in_main(core_elf)
    with Emulator(core_elf, qmp=True) as emu, open_device(emu.url) as dev:
        assert emu.pid is not None
        dev.handshake()
        _halted_at(emu, wfi + 2)
        s0 = _word(emu, core_elf, "tae_emu_sleeps")
        summary = dev.stream(series, lambda r: None)
        s1 = _word(emu, core_elf, "tae_emu_sleeps")
        assert summary.complete
        # A sleeping board sleeps at most once per byte; this one far less than once per 16 bytes.
        assert s1 - s0 < summary.bytes_tx // 16, (s1 - s0, summary.bytes_tx, summary.batches)
        _halted_at(emu, wfi + 2)
        s2 = _word(emu, core_elf, "tae_emu_sleeps")
        cpu0, t0 = _cpu_seconds(emu.pid), time.monotonic()
        time.sleep(1.0)
        idle_cpu = (_cpu_seconds(emu.pid) - cpu0) / (time.monotonic() - t0)
        assert _word(emu, core_elf, "tae_emu_sleeps") == s2  # asleep all along: nothing woke it
        assert _pc(emu) == wfi + 2
    with capsys.disabled():
        print(
            f"\n[emulator-core] streaming: {s1 - s0} sleeps for {summary.bytes_tx} B in "
            f"{summary.batches} batches; idle QEMU: {idle_cpu:.0%} of a CPU"
        )
