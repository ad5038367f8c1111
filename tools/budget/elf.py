"""Read a linked firmware ELF with pyelftools: sections, sized symbols, stack reservation, source files."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from elftools.common.exceptions import ELFError
from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from tinyae.errors import UserError

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


#: Walk the variables of every compilation unit only below this much debug info (pyelftools is slow).
DWARF_VARIABLE_WALK_LIMIT = 4 << 20
DW_OP_ADDR = 0x03


@dataclass
class DwarfHints:
    """Source files from debug info: code ranges (.debug_aranges), global variables, CU basenames."""

    starts: list[int] = field(default_factory=list)
    ranges: list[tuple[int, str]] = field(default_factory=list)  # (end, cu name) per start
    variables: dict[int, str] = field(default_factory=dict)  # address -> cu name
    by_basename: dict[str, str] = field(default_factory=dict)  # "uart.c" -> "firmware/.../uart.c"

    def file_at(self, addr: int) -> str:
        if addr in self.variables:
            return self.variables[addr]
        i = bisect.bisect_right(self.starts, addr) - 1
        if i >= 0 and addr < self.ranges[i][0]:
            return self.ranges[i][1]
        return ""


def _text(value: object) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _dwarf_hints(elf: ELFFile) -> DwarfHints | None:
    if not elf.has_dwarf_info():
        return None
    hints = DwarfHints()
    try:
        dwarf = elf.get_dwarf_info()
        info = elf.get_section_by_name(".debug_info")
        walk_variables = info is not None and info["sh_size"] <= DWARF_VARIABLE_WALK_LIMIT
        cu_names: dict[int, str] = {}
        basenames: dict[str, set[str]] = {}
        order: Literal["little", "big"] = "little" if elf.little_endian else "big"
        for cu in dwarf.iter_CUs():
            top = cu.get_top_DIE()
            attr = top.attributes.get("DW_AT_name")
            if attr is None:
                continue
            name = _text(attr.value)
            cu_names[cu.cu_offset] = name
            basenames.setdefault(Path(name).name, set()).add(name)
            if not walk_variables:
                continue
            for die in top.iter_children():
                loc = die.attributes.get("DW_AT_location") if die.tag == "DW_TAG_variable" else None
                value = loc.value if loc is not None else None
                if isinstance(value, list) and len(value) in (5, 9) and value[0] == DW_OP_ADDR:
                    hints.variables[int.from_bytes(bytes(value[1:]), order)] = name
        hints.by_basename = {b: next(iter(v)) for b, v in basenames.items() if len(v) == 1}
        aranges = dwarf.get_aranges()
        if aranges is not None:
            ranges = sorted(
                (e.begin_addr, e.begin_addr + e.length, cu_names.get(e.info_offset, ""))
                for e in aranges.entries
            )
            hints.starts = [r[0] for r in ranges]
            hints.ranges = [(r[1], r[2]) for r in ranges]
    except Exception:  # malformed or unsupported DWARF: the hints are optional
        return hints
    return hints


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
    dwarf_hints = _dwarf_hints(elf)

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
                file = dwarf_hints.file_at(addr) or dwarf_hints.by_basename.get(file, file)
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
