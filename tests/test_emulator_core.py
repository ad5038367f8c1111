"""The real image (core + compiled engine + default model) boots on QEMU and introduces itself.

Only the boot and the handshake are checked here; streaming and verification through the real
protocol are the host tool's end-to-end tests."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from tinyae.tools.emulator.qemu import Emulator, build_image
from tinyae.tools.link import protocol

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
