"""Target memory maps: which address ranges are flash, data RAM, or another RAM (IRAM, RTC)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Region:
    name: str
    start: int
    end: int  # exclusive
    kind: str  # "flash" (memory-mapped flash), "ram" (budgeted data RAM) or "other" (reported only)

    def contains(self, addr: int) -> bool:
        return self.start <= addr < self.end


@dataclass(frozen=True)
class MemoryMap:
    name: str
    regions: tuple[Region, ...]
    #: Where the stack of the main thread lives when it is not a linker reservation.
    stack_note: str

    def region_of(self, addr: int) -> Region | None:
        for region in self.regions:
            if region.contains(addr):
                return region
        return None


# Cortex-M architectural map (ARMv7-M ARM, B3.1): "Code" 0x00000000-0x1FFFFFFF, "SRAM" 0x20000000-0x3FFFFFFF.
# The nRF52840, the mbed core's linker script and QEMU's mps2-an386 all place flash and RAM there.
CORTEX_M = MemoryMap(
    name="cortex-m",
    regions=(
        Region("flash", 0x0000_0000, 0x2000_0000, "flash"),
        Region("ram", 0x2000_0000, 0x4000_0000, "ram"),
    ),
    stack_note="none found: no `.stack` section and no `__stack_size` symbol",
)

# ESP32 address map (ESP32 Technical Reference Manual, "System and Memory"; the sections of an ESP-IDF /
# Arduino-ESP32 ELF: .flash.text in IROM, .flash.rodata in DROM, .iram0.* in IRAM, .dram0.* in DRAM).
ESP32 = MemoryMap(
    name="esp32",
    regions=(
        Region("drom", 0x3F40_0000, 0x3F80_0000, "flash"),
        Region("irom", 0x400C_2000, 0x40C0_0000, "flash"),
        Region("dram", 0x3FFA_E000, 0x4000_0000, "ram"),
        Region("iram", 0x4007_0000, 0x400C_0000, "other"),
        Region("rtc_fast", 0x3FF8_0000, 0x3FF8_2000, "other"),
        Region("rtc_slow", 0x5000_0000, 0x5000_2000, "other"),
        Region("psram", 0x3F80_0000, 0x3FC0_0000, "other"),
    ),
    stack_note="none: FreeRTOS task stacks come from the heap at run time",
)

MEMORY_MAPS: dict[str, MemoryMap] = {m.name: m for m in (CORTEX_M, ESP32)}
