"""Cycles of a Cortex-M4F instruction stream, estimated from the Technical Reference Manual's timings.

An ESTIMATE, never a measurement: QEMU executes the exact instruction stream of the firmware (the
stream is exact: tools/emulator/trace.py checks its length against the -icount instruction counts), but
it models no pipeline, bus or memory timing. This module weights each executed instruction by the
cycle counts of ARM's Cortex-M4 Technical Reference Manual (ARM DDI 0439B, r0p1: section 3.3.1, the
processor instruction timings; 3.3.2, load/store pipelining; 7.2.3, the FPU's), taken as the board's
core executes them from memory without wait states:

- data processing, moves, compares, shifts, bit fields, extends, saturation, SIMD (SADD16, SEL, ...),
  CLZ, REV, and every multiply and multiply-accumulate including the DSP ones (MUL, MLA, MLS, SMULL,
  SMLAL, SMLAD, SMMLA, SMULBB, ...): 1 cycle (the M4's single-cycle MAC);
- SDIV/UDIV: 2 to 12 (early termination on the operands, which the trace does not carry): nominal 7;
- LDR/LDRB/LDRH/LDRSB/LDRSH: 2, pipelined to 1 when the previous instruction was a single load and
  this one's address does not use that load's result (TRM 3.3.2: "LDR R0,[R1]; LDR R1,[R2] normally
  three cycles total"); STR with an immediate offset: 1; STR with a register offset: 2, or 1 right
  after a load; LDRD/STRD: 3, never pipelined; LDM/STM/PUSH/POP: 1 + N registers; VLDR/VSTR: 2;
  VLDM/VSTM/VPUSH/VPOP: 1 + N words;
- a load or store whose address uses the result of the instruction just before it: +1 (no forwarding
  path, TRM 3.3.2);
- a taken branch: 1 + P, the pipeline refill. P is 1 to 3 (TRM); nominal P = 1 for a direct branch (B,
  BL, CBZ, conditional B) whose target the fetch unit speculates early, +1 when the target is a 32-bit
  instruction that straddles a word (both measured with DWT on a Cortex-M4 by the "Cortex-M4 compendium",
  compendium.i-0.nl, "Branch timing"); P = 3 for a PC loaded from memory or a register (LDR PC, POP {PC},
  LDM {PC}, BX, BLX Rm; the TRM: "LDR PC ... three cycles for the pipeline reload"); TBB/TBH: 2 + 1 + 3;
  a not-taken conditional branch: 1;
- IT: folded into the previous 16-bit instruction (0 cycles, TRM 3.3.1), else 1;
- three or more consecutive 32-bit instructions that straddle words: +1 per such run (compendium,
  "Alignment rules");
- VFP: VADD/VSUB/VMUL/VNMUL/VABS/VNEG/VCMP/VCVT/VMOV/VMRS: 1; VMLA/VMLS/VNMLA/VNMLS/VFMA/VFMS: 3;
  VDIV/VSQRT: 14;
- barriers DMB/DSB: 1 + B with B = 0 (nominal), ISB: 1 + P.

Assumptions (each is a limit of the estimate): zero flash wait states, i.e. every instruction fetch and
constant load hits the Nano 33 BLE's nRF52840 cache (Nordic's figure of 212 CoreMark at 64 MHz, 3.3
CoreMark/MHz, is within a few % of the core's zero-wait-state rate; a cache miss costs what is not
known here); no bus contention (no DMA); aligned data accesses (the trace carries no addresses: an
unaligned word load costs more); interrupts excluded (the trace segments exclude handler code).
`low` and `high` bound the assumptions above that the model chooses: low takes every P = 1, divisions
in 2 cycles, every IT folded; high takes every P = 3, divisions in 12, no IT folded, a literal-pool load
one cycle more (TRM: "LDR Rx,[PC,#imm] might add a cycle"). Wait states are not in either bound.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


CONDITIONS = _words("eq ne cs hs cc lo mi pl vs vc hi ls ge lt gt le al")
REGS = {f"r{i}": i for i in range(13)} | {"ip": 12, "fp": 11, "sl": 10, "sb": 9, "sp": 13, "lr": 14, "pc": 15}

# base mnemonics by cost class (Thumb-2 UAL as arm-none-eabi-objdump prints them, without .w/.n)
_LOAD = {"ldr", "ldrb", "ldrh", "ldrsb", "ldrsh", "ldrex", "ldrexb", "ldrexh", "ldrt", "ldrbt", "ldrht"}
_STORE = {"str", "strb", "strh", "strex", "strexb", "strexh", "strt", "strbt", "strht"}
_DOUBLE = {"ldrd", "strd"}
_MULTI = {"ldm", "ldmia", "ldmfd", "ldmdb", "ldmea", "stm", "stmia", "stmea", "stmdb", "stmfd", "push", "pop"}
_VMULTI = {"vldm", "vldmia", "vldmdb", "vstm", "vstmia", "vstmdb", "vpush", "vpop"}
_BRANCH_DIRECT = {"b", "bl", "cbz", "cbnz"}
_BRANCH_INDIRECT = {"bx", "blx"}
_TABLE = {"tbb", "tbh"}
_DIV = {"sdiv", "udiv"}
_VFP3 = {"vmla", "vmls", "vnmla", "vnmls", "vfma", "vfms", "vfnma", "vfnms"}
_VFP14 = {"vdiv", "vsqrt"}
_VFP_MEM = {"vldr", "vstr"}
_NO_S = _LOAD | _STORE | _DOUBLE | _MULTI | _BRANCH_DIRECT | _BRANCH_INDIRECT | _TABLE | {"it"}
# every other base mnemonic is a 1-cycle data-processing, multiply, DSP or system instruction; the
# list below only serves to split a mnemonic into base + suffix (S, condition)
_ONE = _words(
    """adc add addw adr and asr bfc bfi bic clrex clz cmn cmp cpsid cpsie dbg eor lsl lsr mla mls mov movt
    movw mrs msr mul mvn nop orn orr pkhbt pkhtb qadd qadd16 qadd8 qasx qdadd qdsub qsax qsub qsub16 qsub8
    rbit rev rev16 revsh ror rrx rsb sadd16 sadd8 sasx sbc sbfx sel sev shadd16 shadd8 shasx shsax shsub16
    shsub8 smlabb smlabt smlad smladx smlal smlalbb smlalbt smlald smlaldx smlaltb smlaltt smlatb smlatt
    smlawb smlawt smlsd smlsdx smlsld smlsldx smmla smmlar smmls smmlsr smmul smmulr smuad smuadx smulbb
    smulbt smull smultb smultt smulwb smulwt smusd smusdx ssat ssat16 ssax ssub16 ssub8 sub subw svc sxtab
    sxtab16 sxtah sxtb sxtb16 sxth teq tst uadd16 uadd8 uasx ubfx uhadd16 uhadd8 uhasx uhsax uhsub16 uhsub8
    umaal umlal umull uqadd16 uqadd8 uqasx uqsax uqsub16 uqsub8 usad8 usada8 usat usat16 usax usub16 usub8
    uxtab uxtab16 uxtah uxtb uxtb16 uxth wfe wfi yield bkpt udf dmb dsb isb neg
    vabs vadd vsub vmul vnmul vneg vcmp vcmpe vcvt vcvtr vmov vmrs vmsr vsel"""
)
BASES = sorted(
    _ONE | _LOAD | _STORE | _DOUBLE | _MULTI | _VMULTI | _BRANCH_DIRECT | _BRANCH_INDIRECT | _TABLE | _DIV
    | _VFP3 | _VFP14 | _VFP_MEM | {"it", "ite", "itt", "itee", "itet", "itte", "ittt", "iteee", "iteet",
                                   "itete", "itett", "ittee", "ittet", "ittte", "itttt"},
    key=len,
    reverse=True,
)  # fmt: skip


@dataclass(frozen=True)
class Insn:
    """One instruction of the image (arm-none-eabi-objdump -d): address, size in bytes, mnemonic, operands."""

    addr: int
    size: int
    mnemonic: str
    operands: str = ""

    @property
    def base(self) -> str:
        return split_mnemonic(self.mnemonic)[0]


def split_mnemonic(mnemonic: str) -> tuple[str, str]:
    """(base, suffix): 'ldrbne.w' -> ('ldrb', 'ne'), 'addseq' -> ('add', 'seq'), 'bls.n' -> ('b', 'ls'),
    'vadd.f32' -> ('vadd', '')."""
    m = mnemonic.lower()
    m = m.split(".", 1)[0] if m.startswith("v") else m.removesuffix(".w").removesuffix(".n")
    if m.startswith("it") and set(m[2:]) <= {"t", "e"}:
        return "it", ""
    for base in BASES:
        if not m.startswith(base):
            continue
        rest = m[len(base) :]
        if rest in ("",) or rest in CONDITIONS:
            return base, rest
        if base not in _NO_S and (rest == "s" or (rest.startswith("s") and rest[1:] in CONDITIONS)):
            return base, rest
    return m, ""


_REG = re.compile(r"\b(r1[0-2]|r[0-9]|ip|fp|sl|sb|sp|lr|pc)\b")


def _regs(text: str) -> list[int]:
    return [REGS[r] for r in _REG.findall(text)]


def address_regs(insn: Insn) -> set[int]:
    """Registers a load/store uses to form its address (inside [...]; the base of LDM/STM; SP of PUSH/POP)."""
    base = insn.base
    if base in ("push", "pop", "vpush", "vpop"):
        return {13}
    if base in _MULTI or base in _VMULTI:
        return set(_regs(insn.operands.split(",", 1)[0]))
    m = re.search(r"\[([^\]]*)\]", insn.operands)
    return set(_regs(m.group(1))) if m else set()


def written_regs(insn: Insn) -> set[int]:
    """Core registers an instruction writes (its first operand for data processing and loads)."""
    base = insn.base
    ops = insn.operands
    if base in _STORE or base in (
        "strd",
        "cmp",
        "cmn",
        "tst",
        "teq",
        "it",
        "b",
        "bl",
        "bx",
        "blx",
        "cbz",
        "cbnz",
    ):
        return set()
    if base in ("push", "pop", "ldm", "ldmia", "ldmfd", "ldmdb", "ldmea") or base.startswith("stm"):
        regs = set(_regs(ops.split("{", 1)[1])) if "{" in ops else set()
        return (regs if base.startswith(("pop", "ldm")) else set()) | (
            {13} if base in ("push", "pop") else set()
        )
    first = ops.split(",", 1)[0]
    return set(_regs(first))


def register_count(insn: Insn) -> int:
    """Words moved by LDM/STM/PUSH/POP (core registers) or VLDM/VSTM/VPUSH/VPOP (S = 1 word, D = 2)."""
    body = insn.operands.split("{", 1)[1].split("}", 1)[0] if "{" in insn.operands else ""
    n = 0
    for part in body.split(","):
        part = part.strip()
        if "-" in part:
            a, b = (p.strip() for p in part.split("-"))
            span = int(b[1:]) - int(a[1:]) + 1
            n += span * (2 if a.startswith("d") else 1)
        elif part:
            n += 2 if part.startswith("d") else 1
    return n


@dataclass
class Params:
    """The model's choices within the TRM's ranges (module docstring): nominal, low and high."""

    p_direct: int = 1  # refill after a taken direct branch
    p_indirect: int = 3  # refill after a PC loaded from memory or a register
    straddle: int = 1  # extra refill when the target is a 32-bit instruction straddling a word
    div: int = 7
    it_folds: bool = True
    literal_extra: int = 0  # an LDR Rx,[PC,#imm] "might add a cycle"
    straddle_runs: int = 1  # +cycles per run of >= 3 word-straddling 32-bit instructions


NOMINAL = Params()
LOW = Params(p_direct=1, p_indirect=1, straddle=0, div=2, it_folds=True, literal_extra=0, straddle_runs=0)
HIGH = Params(p_direct=3, p_indirect=3, straddle=0, div=12, it_folds=False, literal_extra=1, straddle_runs=1)


@dataclass
class Tally:
    """Cycles of a stream under one Params, with instruction and cycle counts per class."""

    instructions: int = 0
    cycles: int = 0
    by_class: dict[str, list[int]] = field(default_factory=dict)  # class -> [instructions, cycles]

    def add(self, cls: str, cycles: int) -> None:
        self.instructions += 1
        self.cycles += cycles
        row = self.by_class.setdefault(cls, [0, 0])
        row[0] += 1
        row[1] += cycles


def _straddles(insn: Insn | None) -> bool:
    return insn is not None and insn.size == 4 and insn.addr % 4 == 2


def classify(insn: Insn) -> str:
    base = insn.base
    for name, group in (
        ("load", _LOAD), ("store", _STORE), ("load/store double", _DOUBLE), ("load/store multiple", _MULTI),
        ("vfp load/store multiple", _VMULTI), ("branch", _BRANCH_DIRECT | _BRANCH_INDIRECT), ("table branch", _TABLE),
        ("divide", _DIV), ("vfp multiply-accumulate", _VFP3), ("vfp divide/sqrt", _VFP14), ("vfp load/store", _VFP_MEM),
    ):  # fmt: skip
        if base in group:
            return name
    if base == "it":
        return "it"
    if base.startswith("v"):
        return "vfp"
    if base.startswith(("mul", "mla", "mls", "smu", "sml", "smm", "umu", "uml", "uma")):
        return "multiply/MAC"
    return "data processing"


@dataclass(frozen=True)
class _Static:
    """What the model needs of an instruction that does not depend on its execution."""

    cls: str
    direct: bool  # a direct branch (its target known at decode)
    writes_pc: bool
    address: frozenset[int]
    written: frozenset[int]
    words: int
    has_index: bool
    literal: bool
    mem: bool
    size: int
    straddles: bool


@functools.cache
def _static(insn: Insn) -> _Static:
    cls = classify(insn)
    address = frozenset(address_regs(insn)) if cls != "branch" else frozenset()
    return _Static(
        cls=cls,
        direct=insn.base in _BRANCH_DIRECT,
        writes_pc=15 in written_regs(insn),
        address=address,
        written=frozenset(written_regs(insn)),
        words=register_count(insn) if cls in ("load/store multiple", "vfp load/store multiple") else 0,
        has_index=bool(re.search(r"\[[^\]]*,\s*(r\d+|ip|fp|sl|sb|lr)", insn.operands)),
        literal=15 in address,
        mem=cls in _MEM_CLASSES,
        size=insn.size,
        straddles=_straddles(insn),
    )


_MEM_CLASSES = frozenset(
    {"load", "store", "load/store double", "load/store multiple", "vfp load/store", "vfp load/store multiple",
     "table branch"}
)  # fmt: skip


class Counter:
    """Cycles of an instruction stream fed one instruction at a time, under one Params."""

    def __init__(self, params: Params = NOMINAL, targets: dict[int, Insn] | None = None) -> None:
        self.params = params
        self.targets = targets or {}
        self.tally = Tally()
        self._prev: _Static | None = None
        self._prev_was_load = False
        self._prev_load_dest: frozenset[int] = frozenset()
        self._prev_dp_dest: frozenset[int] = frozenset()
        self._run = 0  # consecutive word-straddling 32-bit instructions

    def feed(self, insn: Insn, nxt: int | None) -> None:
        """One executed instruction and the address executed after it (None: the stream ends)."""
        params, s = self.params, _static(insn)
        cls = s.cls
        c = 1
        taken = nxt is not None and nxt != insn.addr + s.size
        refill_extra = 0
        if taken:
            refill_extra = params.straddle if _straddles(self.targets.get(nxt)) else 0  # type: ignore[arg-type]
        if cls == "load":
            c = 1 if self._prev_was_load and not (s.address & self._prev_load_dest) else 2
            if s.literal:
                c += params.literal_extra
            if s.writes_pc:
                c = 2 + params.p_indirect + refill_extra
        elif cls == "store":
            c = 1 if not s.has_index or self._prev_was_load else 2
        elif cls == "load/store double":
            c = 3
        elif cls in ("load/store multiple", "vfp load/store multiple"):
            c = 1 + s.words
            if s.writes_pc:
                c += params.p_indirect + refill_extra
        elif cls == "vfp load/store":
            c = 2
        elif cls == "table branch":
            c = 3 + params.p_indirect + refill_extra
        elif cls == "branch":
            if taken:
                c = 1 + (params.p_direct if s.direct else params.p_indirect) + refill_extra
        elif cls == "divide":
            c = params.div
        elif cls == "vfp multiply-accumulate":
            c = 3
        elif cls == "vfp divide/sqrt":
            c = 14
        elif cls == "it":
            c = 0 if params.it_folds and self._prev is not None and self._prev.size == 2 else 1
        elif insn.base == "isb":
            c = 1 + params.p_indirect
        elif s.writes_pc and taken:  # MOV PC / ADD PC
            c = 1 + params.p_indirect + refill_extra
        if s.mem and s.address & self._prev_dp_dest:
            c += 1  # address from the previous instruction's result: no forwarding path
        self._run = self._run + 1 if s.straddles else 0
        if self._run == 3:
            c += params.straddle_runs
        self.tally.add(cls, c)
        self._prev = s
        self._prev_was_load = cls == "load" and not s.writes_pc
        self._prev_load_dest = s.written if self._prev_was_load else frozenset()
        self._prev_dp_dest = s.written if cls in ("data processing", "multiply/MAC") else frozenset()
        if taken:
            self._run = 0


def cycles(
    stream: Iterable[tuple[Insn, int | None]],
    params: Params = NOMINAL,
    targets: dict[int, Insn] | None = None,
) -> Tally:
    """Cycles of `stream`: (instruction, address executed next or None at the end), in execution order.
    `targets` maps addresses to instructions (for a branch target's width and alignment)."""
    counter = Counter(params, targets)
    for insn, nxt in stream:
        counter.feed(insn, nxt)
    return counter.tally


def parse_objdump_line(line: str) -> Insn | None:
    """An instruction from one `arm-none-eabi-objdump -d` line ("   c8:\tb538      \tpush\t{r3, lr}")."""
    parts = line.split("\t")
    if len(parts) < 3 or not parts[0].strip().endswith(":"):
        return None
    try:
        addr = int(parts[0].strip()[:-1], 16)
    except ValueError:
        return None
    halves = parts[1].split()
    mnemonic = parts[2].strip()
    if not mnemonic or mnemonic.startswith("."):
        return None
    ops = parts[3].split("@")[0].split(";")[0].strip() if len(parts) > 3 else ""
    return Insn(addr, 2 * len(halves), mnemonic, ops)
