"""Read a linked firmware ELF with pyelftools: sections, sized symbols, stack reservation, source files."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from train.errors import UserError

#: Section names that are reservations rather than objects.
STACK_SECTIONS = (".stack", ".stack_dummy")
HEAP_SECTIONS = (".heap", ".heap_dummy")
#: Linker symbols that give the stack size when the stack is not a section (first found wins).
STACK_SIZE_SYMBOLS = ("__stack_size", "__stack_size__", "_Min_Stack_Size", "__STACK_SIZE")


@dataclass(frozen=True)
class Section:
    name: str
    addr: int
    size: int
    alloc: bool
    write: bool
    execute: bool
    nobits: bool

    @property
    def loaded(self) -> bool:
        """Part of the load image (flash) — an allocated section with contents."""
        return self.alloc and not self.nobits


@dataclass(frozen=True)
class Symbol:
    name: str
    addr: int
    size: int
    kind: str  # "func" | "object"
    section: str
    file: str  # source file hint ("" when unknown)


@dataclass
class ElfImage:
    path: Path
    machine: str
    sections: list[Section]
    symbols: list[Symbol]
    stack_reserved: int
    stack_source: str | None
    berkeley: dict[str, int] = field(default_factory=dict)


def berkeley_sizes(sections: list[Section]) -> dict[str, int]:
    """text/data/bss exactly as binutils `size` (Berkeley format) sums them."""
    text = data = bss = 0
    for s in sections:
        if not s.alloc:
            continue
        if s.execute or not s.write:
            text += s.size
        elif not s.nobits:
            data += s.size
        else:
            bss += s.size
    return {"text": text, "data": data, "bss": bss}


def _file_hints_from_dwarf(elf: ELFFile) -> tuple[list[int], list[tuple[int, str]]] | None:
    """Address ranges -> compilation-unit path from .debug_aranges, when the ELF has debug info."""
    if not elf.has_dwarf_info():
        return None
    try:
        dwarf = elf.get_dwarf_info()
        aranges = dwarf.get_aranges()
        if aranges is None:
            return None
        cu_names: dict[int, str] = {}
        ranges: list[tuple[int, int, int]] = []
        for entry in aranges.entries:
            ranges.append((entry.begin_addr, entry.begin_addr + entry.length, entry.info_offset))
        for cu in dwarf.iter_CUs():
            top = cu.get_top_DIE()
            name = top.attributes.get("DW_AT_name")
            if name is not None:
                value = (
                    name.value.decode(errors="replace") if isinstance(name.value, bytes) else str(name.value)
                )
                cu_names[cu.cu_offset] = value
        ranges.sort()
        starts = [r[0] for r in ranges]
        return starts, [(r[1], cu_names.get(r[2], "")) for r in ranges]
    except Exception:  # malformed or unsupported DWARF: the hints are optional
        return None


def read_elf(path: str | Path) -> ElfImage:
    p = Path(path)
    if not p.is_file():
        raise UserError(f"ELF file {p} does not exist; build the firmware first")
    try:
        with p.open("rb") as fh:
            elf = ELFFile(fh)
            return _read(p, elf)
    except ELFError as exc:
        raise UserError(f"{p} is not a readable ELF file ({exc}); pass the linked firmware .elf") from exc


def _read(p: Path, elf: ELFFile) -> ElfImage:
    sections: list[Section] = []
    index_to_name: dict[int, str] = {}
    for i, sec in enumerate(elf.iter_sections()):
        flags = sec["sh_flags"]
        index_to_name[i] = sec.name
        if not sec.name:
            continue
        sections.append(
            Section(
                name=sec.name,
                addr=sec["sh_addr"],
                size=sec["sh_size"],
                alloc=bool(flags & SH_FLAGS.SHF_ALLOC),
                write=bool(flags & SH_FLAGS.SHF_WRITE),
                execute=bool(flags & SH_FLAGS.SHF_EXECINSTR),
                nobits=sec["sh_type"] == "SHT_NOBITS",
            )
        )
    alloc_names = {s.name for s in sections if s.alloc}
    thumb = elf["e_machine"] == "EM_ARM"
    dwarf_hints = _file_hints_from_dwarf(elf)

    symbols: list[Symbol] = []
    absolute: dict[str, int] = {}
    seen: set[tuple[int, int]] = set()
    symtab = elf.get_section_by_name(".symtab")
    if isinstance(symtab, SymbolTableSection):
        current_file = ""
        for sym in symtab.iter_symbols():
            st_type = sym["st_info"]["type"]
            shndx = sym["st_shndx"]
            if st_type == "STT_FILE":
                current_file = sym.name
                continue
            if sym["st_info"]["bind"] != "STB_LOCAL":
                current_file = ""  # globals follow all locals and carry no file
            if shndx == "SHN_ABS" and sym.name:
                absolute.setdefault(sym.name, sym["st_value"])
                continue
            if st_type not in ("STT_FUNC", "STT_OBJECT") or sym["st_size"] == 0 or not isinstance(shndx, int):
                continue
            section = index_to_name.get(shndx, "")
            if section not in alloc_names:
                continue
            addr = sym["st_value"]
            if thumb and st_type == "STT_FUNC":
                addr &= ~1
            key = (addr, sym["st_size"])
            if key in seen:  # aliases (weak handlers, C++ constructor variants) count once
                continue
            seen.add(key)
            file = current_file
            if dwarf_hints is not None:
                starts, rest = dwarf_hints
                i = bisect.bisect_right(starts, addr) - 1
                if i >= 0 and addr < rest[i][0] and rest[i][1]:
                    file = rest[i][1]
            symbols.append(
                Symbol(
                    name=sym.name,
                    addr=addr,
                    size=sym["st_size"],
                    kind="func" if st_type == "STT_FUNC" else "object",
                    section=section,
                    file=file,
                )
            )

    stack_reserved, stack_source = 0, None
    for s in sections:
        if s.alloc and s.name in STACK_SECTIONS:
            stack_reserved, stack_source = s.size, f"{s.name} section"
            break
    else:
        for name in STACK_SIZE_SYMBOLS:
            if name in absolute:
                stack_reserved, stack_source = absolute[name], f"{name} symbol"
                break
    return ElfImage(
        path=p,
        machine=str(elf["e_machine"]),
        sections=sections,
        symbols=symbols,
        stack_reserved=stack_reserved,
        stack_source=stack_source,
        berkeley=berkeley_sizes(sections),
    )
