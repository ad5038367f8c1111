"""The mps2-an386 image links with the Nano 33 BLE's memory sizes, and overflows fail the link."""

from __future__ import annotations

from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from tinyae.tools.emulator.qemu import build_image

pytestmark = pytest.mark.emulator

NANO_FLASH = 983_040
NANO_RAM = 262_144


def _symbols(elf: Path) -> dict[str, int]:
    with elf.open("rb") as f:
        table = ELFFile(f).get_section_by_name(".symtab")
        return {s.name: s["st_value"] for s in table.iter_symbols() if s.name}


@pytest.fixture(scope="module")
def stub_elf(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("emu_stub")
    build_image(out, app="stub")
    return out / "tinyae.elf"


def test_image_links_with_nano_memory_map(stub_elf: Path) -> None:
    sym = _symbols(stub_elf)
    assert sym["__flash_size"] == NANO_FLASH
    assert sym["__ram_size"] == NANO_RAM
    assert sym["__stack_size"] == 8192
    # The stack sits at the bottom of RAM, static data above it, everything inside the board's RAM.
    assert sym["__stack_bottom"] == 0x2000_0000
    assert sym["__stack_top"] - sym["__stack_bottom"] == sym["__stack_size"]
    assert sym["__data_start"] >= sym["__stack_top"]
    assert sym["__bss_end"] <= 0x2000_0000 + NANO_RAM
    assert sym["__tae_static_ram"] == sym["__bss_end"] - sym["__data_start"]
    assert 0 < sym["__tae_flash_used"] <= NANO_FLASH
    # No heap: nothing links malloc's system call.
    assert "_sbrk" not in sym and "malloc" not in sym
    assert (stub_elf.parent / "tinyae.bin").stat().st_size == sym["__tae_flash_used"]


@pytest.mark.parametrize(
    ("kind", "fits", "too_big", "region"),
    [("ram", 200_000, NANO_RAM, "RAM"), ("flash", 900_000, NANO_FLASH, "FLASH")],
)
def test_static_array_overflow_fails_the_link(
    tmp_path: Path, kind: str, fits: int, too_big: int, region: str
):
    ok = build_image(tmp_path / "fits", app="stub", check=False, **{f"ballast_{kind}": fits})
    assert ok.returncode == 0, ok.stderr
    sym = _symbols(tmp_path / "fits" / "tinyae.elf")
    used = sym["__tae_static_ram"] if kind == "ram" else sym["__tae_flash_used"]
    assert used >= fits
    bad = build_image(tmp_path / "too_big", app="stub", check=False, **{f"ballast_{kind}": too_big})
    assert bad.returncode != 0
    assert f"region `{region}' overflowed" in bad.stderr


def test_core_image_links_with_the_default_model(tmp_path: Path, default_model_dir: Path) -> None:
    build_image(tmp_path, app="core", model_dir=default_model_dir)
    sym = _symbols(tmp_path / "tinyae.elf")
    assert sym["__tae_flash_used"] <= NANO_FLASH
    assert sym["__stack_size"] + sym["__tae_static_ram"] <= NANO_RAM
    for needed in ("tae_app_init", "tae_engine_invoke", "tae_port_read_sample", "tae_synth_next"):
        assert needed in sym, needed
