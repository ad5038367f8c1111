"""The exact instruction stream an image executes on the emulated Cortex-M4F, cut into function calls.

QEMU runs the image one instruction per translation block (`-singlestep`) and logs every block it
executes (`-d exec,nochain`): one line per executed instruction, with its address. A block QEMU started
and then rewound to re-execute it (`cpu_io_recompile`, an I/O access under -icount) is logged twice and
counted once; so is a block logged and then not run because the icount budget expired or an exit was
requested at its start ("Stopped execution of TB chain before ..."; about one per 70,000 instructions,
which a long window would otherwise count as extra instructions). The addresses are matched with the
image's disassembly (arm-none-eabi-objdump -d), and a walk over the calls (BL/BLX push a frame, the
return to its address pops it; an exception handler's code is set apart) gives, for every call of the
functions asked for, the instructions executed inside it in execution order. tools/emulator/cm4cycles.py
turns such a stream into estimated cycles.

The count is checked, not assumed: the harnesses that use this (tools/emulator/timing.py) measure the
same calls with SysTick under -icount, exact instruction counts, and compare.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from tinyae.errors import UserError
from tinyae.tools.emulator import cm4cycles
from tinyae.tools.emulator.cm4cycles import Insn, parse_objdump_line
from tinyae.tools.emulator.qemu import ICOUNT_SHIFT, MACHINE, QEMU

_FUNC = re.compile(r"^([0-9a-f]{8}) <([^>]+)>:$")
_TRACE = re.compile(r"^Trace \d+: \S+ \[[0-9a-f]+/([0-9a-f]+)/")
_REWIND = re.compile(r"cpu_io_recompile: rewound execution of TB to ([0-9a-f]+)")
_STOPPED = re.compile(r"^Stopped execution of TB chain before \S+ \[([0-9a-f]+)\]")
T = TypeVar("T")
VECTOR_WORDS = 48  # Cortex-M exceptions 0-15 and the mps2-an386's first 32 interrupts


@dataclass
class Image:
    """An ELF's instructions by address and its functions (start address -> name)."""

    insns: dict[int, Insn]
    functions: dict[int, str]
    handlers: set[int] = field(default_factory=set)  # exception handlers' entry addresses

    def address_of(self, name: str) -> int:
        for addr, fname in self.functions.items():
            if fname == name:
                return addr
        raise UserError(f"the image has no function {name}; was it inlined or left out?")


def disassemble(elf: Path) -> Image:
    """The image's instructions (arm-none-eabi-objdump -d) and its exception vector targets."""
    proc = subprocess.run(
        ["arm-none-eabi-objdump", "-d", str(elf)], capture_output=True, text=True, timeout=300, check=False
    )
    if proc.returncode != 0:
        raise UserError(f"arm-none-eabi-objdump could not read {elf}: {proc.stderr.strip()[-200:]}")
    insns: dict[int, Insn] = {}
    functions: dict[int, str] = {}
    for line in proc.stdout.splitlines():
        m = _FUNC.match(line)
        if m:
            functions[int(m.group(1), 16)] = m.group(2)
            continue
        insn = parse_objdump_line(line)
        if insn is not None:
            insns[insn.addr] = insn
    return Image(insns, functions, _vector_targets(elf))


def _vector_targets(elf: Path) -> set[int]:
    """Entry addresses in the vector table (.isr_vector), reset and the initial stack pointer excluded."""
    with tempfile.TemporaryDirectory(prefix="tinyae-vectors-") as tmp:
        out = Path(tmp) / "vectors.bin"
        proc = subprocess.run(
            ["arm-none-eabi-objcopy", "-O", "binary", "--only-section=.isr_vector", str(elf), str(out)],
            capture_output=True,
            timeout=60,
            check=False,
        )
        data = out.read_bytes() if proc.returncode == 0 and out.is_file() else b""
    words = [int.from_bytes(data[i : i + 4], "little") for i in range(0, min(len(data), 4 * VECTOR_WORDS), 4)]
    return {w & ~1 for w in words[2:] if w & 1}


def run(elf: Path, consume: Callable[[Iterator[int]], T], *, timeout: float = 900.0) -> tuple[T, str]:
    """Run `elf` on QEMU until it ends itself (semihosting exit); `consume` reads the executed addresses
    (streamed from QEMU's log, never all in memory). Its result and the image's UART text."""
    with tempfile.TemporaryDirectory(prefix="tinyae-trace-") as tmp:
        log, uart = Path(tmp) / "exec.log", Path(tmp) / "uart.txt"
        argv = [
            QEMU, "-M", MACHINE, "-nographic", "-monitor", "none", "-kernel", str(elf.resolve()),
            "-icount", f"shift={ICOUNT_SHIFT}", "-semihosting-config", "enable=on,target=native",
            "-singlestep", "-d", "exec,nochain", "-D", str(log), "-serial", f"file:{uart}",
        ]  # fmt: skip
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise UserError(f"the traced run of {elf} did not end within {timeout:.0f} s") from None
        except OSError as exc:
            raise UserError(f"cannot run {QEMU} ({exc}); install it with `make toolchain`") from None
        text = uart.read_text(errors="replace") if uart.is_file() else ""
        if proc.returncode != 0:
            raise UserError(f"the traced run of {elf} ended with code {proc.returncode}: {text[-200:]!r}")
        return consume(_addresses(log)), text


def _addresses(log: Path) -> Iterator[int]:
    pending: int | None = None
    with log.open() as f:
        for line in f:
            m = _TRACE.match(line)
            if m:
                if pending is not None:
                    yield pending
                pending = int(m.group(1), 16)
                continue
            r = _REWIND.search(line) or _STOPPED.match(line)
            if r and pending == int(r.group(1), 16):
                pending = None  # that execution was abandoned (or never began) and is logged again
    if pending is not None:
        yield pending


@dataclass
class Call:
    """One call of a function: its instructions, estimated cycles (one Counter per Params), and where it
    began and ended in the trace."""

    function: str
    start: int  # index in the trace of its first instruction
    counters: list[cm4cycles.Counter]
    instructions: int = 0
    exceptions: int = 0  # instructions of exception handlers that ran during the call (left out)
    end: int = -1  # index in the trace of the instruction after its return (-1: it never returned)

    def contains(self, other: Call) -> bool:
        return other is not self and self.start <= other.start and (self.end < 0 or other.end <= self.end)

    def cycles(self) -> list[int]:
        return [c.tally.cycles for c in self.counters]


_RETURNS = ("bx", "pop", "ldm", "ldmia", "ldr", "mov")


def calls(
    pcs: Iterable[int],
    image: Image,
    names: set[str],
    params: Sequence[cm4cycles.Params] = (cm4cycles.NOMINAL,),
) -> list[Call]:
    """Every call of a function in `names`, in order of entry, with its instruction count and its cycles
    under each of `params`; a call inside another such call counts in both."""
    wanted = {image.address_of(n): n for n in names}
    open_calls: list[tuple[int, Call]] = []  # (call-stack depth at entry, call)
    stack: list[tuple[int | None, bool]] = []  # (return address, is an exception frame)
    done: list[Call] = []
    exceptions = 0  # exception frames on the stack
    it = iter(pcs)
    pc = next(it, None)
    i = 0
    while pc is not None:
        insn = image.insns.get(pc)
        if insn is None:
            raise UserError(f"the trace executed 0x{pc:08x}, which the disassembly does not hold")
        nxt = next(it, None)
        for _, c in open_calls:
            if exceptions:
                c.exceptions += 1
            else:
                c.instructions += 1
                for counter in c.counters:
                    counter.feed(insn, nxt)
        if nxt is None:
            break
        base = insn.base
        fallthrough = insn.addr + insn.size
        if nxt in image.handlers and nxt != fallthrough and base not in ("bl", "blx", "b"):
            stack.append((None, True))  # an exception entry between two instructions
            exceptions += 1
        elif base in ("bl", "blx") and nxt != fallthrough:
            stack.append((fallthrough, False))
            if nxt in wanted:
                counters = [cm4cycles.Counter(p, image.insns) for p in params]
                open_calls.append((len(stack), Call(wanted[nxt], i + 1, counters)))
        elif stack and stack[-1][1] and base.startswith(_RETURNS) and nxt != fallthrough:
            stack.pop()  # the handler returned (EXC_RETURN)
            exceptions -= 1
        else:
            while stack and not stack[-1][1] and nxt == stack[-1][0]:
                depth = len(stack)
                stack.pop()
                while open_calls and open_calls[-1][0] == depth:
                    call = open_calls.pop()[1]
                    call.end = i + 1
                    done.append(call)
        pc = nxt
        i += 1
    done.extend(c for _, c in open_calls)  # calls the image never returned from
    return sorted(done, key=lambda c: c.start)
