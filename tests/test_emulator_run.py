"""The image on QEMU mps2-an386: banner over the socket, UART echo, faults end QEMU with a code,
repeatable instruction counts, and the runner's errors and cleanup.

Handshake/streaming tests through the real protocol belong with the host tool (they drive the core
image with `tools/link/protocol.py`); the core image is only booted here."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import serial

from tinyae.errors import UserError
from tinyae.tools.emulator.qemu import ROOT, Emulator, build_image

pytestmark = pytest.mark.emulator

BANNER = re.compile(
    rb"tinyae: boot target=mps2-an386 app=(\S+) flash=(\d+) ram=(\d+) stack=(\d+) unit=instructions"
)


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("emu_images")
    variants = {"stub": {}, "calib": {}, "fault1": {"fault": 1}, "fault2": {"fault": 2}}
    out = {}
    for name, extra in variants.items():
        app = "calib" if name == "calib" else "stub"
        build_image(root / name, app=app, **extra)
        out[name] = root / name / "tinyae.elf"
    return out


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()


def test_boots_prints_banner_and_echoes_every_byte(images) -> None:
    with Emulator(images["stub"]) as emu:
        ser = emu.connect()
        banner = emu.read_banner(ser)
        m = BANNER.search(banner.encode())
        assert m and m.group(1) == b"echo-stub"
        assert 0 < int(m.group(2)) <= 983_040 and int(m.group(4)) == 8192
        payload = bytes(range(256)) * 8  # every byte value; 2 KB in 512-byte bursts
        got = bytearray()
        for i in range(0, len(payload), 512):
            ser.write(payload[i : i + 512])
            while len(got) < i + 512:
                chunk = ser.read(i + 512 - len(got))
                assert chunk, "echo stalled"
                got += chunk
        assert bytes(got) == payload
        assert emu.exit_code is None
        pid = emu.pid
        ser.close()
    assert pid is not None and not _alive(pid)


@pytest.mark.parametrize(("variant", "cfsr"), [("fault1", 0x0001_0000), ("fault2", 0x0200_0000)])
def test_fault_ends_qemu_with_nonzero_code_and_a_fault_line(images, variant: str, cfsr: int) -> None:
    with Emulator(images[variant]) as emu:
        ser = emu.connect()
        text = emu.read_until(ser, b"FAULT", timeout=10).decode()
        code = emu.wait(10)
        ser.close()
    assert code == 106  # 100 + UsageFault's exception number
    line = next(ln for ln in text.splitlines() if ln.startswith("FAULT"))
    assert line.startswith("FAULT UsageFault pc=0x")
    assert f"cfsr=0x{cfsr:08x}" in line
    for key in ("lr=", "hfsr=", "bfar=", "mmfar="):
        assert key in line
    assert line.strip() in emu.stderr_text  # the semihosting copy


def _calibrate(elf: Path) -> dict[str, int]:
    with Emulator(elf) as emu:
        ser = emu.connect()
        text = emu.read_until(ser, b"CALIB", timeout=10).decode()
        assert emu.wait(10) == 0
        ser.close()
    line = next(ln for ln in text.splitlines() if ln.startswith("CALIB"))
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line)}


def test_systick_counts_instructions_repeatably(images) -> None:
    first = _calibrate(images["calib"])
    second = _calibrate(images["calib"])
    assert first == second
    # A loop of n iterations is 2n instructions (subs + bne): the difference is exact.
    assert first["c2"] - first["c1"] == 2 * (first["n2"] - first["n1"])
    # ... and SysTick's 25 MHz ticks are 1.6 per instruction at -icount shift=6.
    assert first["t2"] - first["t1"] == pytest.approx(1.6 * 2 * (first["n2"] - first["n1"]), abs=2)


def test_runner_errors_are_user_errors(images, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="make firmware-emu"):
        Emulator(tmp_path / "missing.elf").start()
    with pytest.raises(UserError, match="was not found"):
        Emulator(images["stub"], qemu="qemu-system-arm-that-does-not-exist").start()
    with socket.socket() as busy:  # a port someone else holds: QEMU exits at once
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        emu = Emulator(images["stub"], port=port)
        try:
            with pytest.raises(UserError, match="QEMU exited early"):
                emu.start()
            assert emu.exit_code not in (None, 0)
        finally:
            emu.stop()


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_cli_prints_url_and_stops_qemu_on_ctrl_c_or_sigterm(images, sig: int, code: int) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tinyae", "emulate", "--elf", str(images["stub"])],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = proc.stdout.readline().strip()
        assert re.fullmatch(r"socket://127\.0\.0\.1:\d+", url), url
        qemu_pid = int(re.search(r"pid (\d+)", proc.stderr.readline()).group(1))
        emu = Emulator(images["stub"])  # only for its reader helpers
        ser = serial.serial_for_url(url, timeout=2)
        assert b"tinyae: boot" in emu.read_until(ser, b"tinyae: boot", timeout=10)
        ser.close()
        proc.send_signal(sig)
        assert proc.wait(timeout=10) == code  # README: 130 Ctrl-C, 143 SIGTERM, after QEMU was stopped
        deadline = time.monotonic() + 5
        while _alive(qemu_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(qemu_pid)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_cli_missing_elf_is_a_one_line_error(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tinyae", "emulate", "--elf", str(tmp_path / "nope.elf")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and "make firmware-emu" in proc.stderr
    assert "Traceback" not in proc.stderr
