"""Shared machinery of the differential tests: run one short snippet on the simulator and on a
reference (unicorn, or the host processor) from the same registers, flags and memory, and compare
what the SDM defines.

A case is: all general-purpose registers set, RFLAGS set, a data buffer filled, the snippet, then
``hlt``. R15 points into the middle of the data buffer so that snippets can address memory on both
sides of it (``[r15 - 8]``). RSP is fixed (snippets do not use the stack).
"""
from __future__ import annotations

import functools

from hypothesis import strategies as st

import x86
from x86.asm import assemble

CODE = 0x100000
DATA = 0x200000
DATA_SIZE = 0x2000
STACK = 0x80000
R15 = DATA + DATA_SIZE // 2

GPRS = ("rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
        "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15")

# RFLAGS bits (SDM Vol. 1 3.4.3)
CF, PF, AF, ZF, SF, DF, OF = 0x1, 0x4, 0x10, 0x40, 0x80, 0x400, 0x800
ARITH = CF | PF | AF | ZF | SF | OF
ALL = ARITH | DF          # the bits a case may set and compare

EDGES = [0, 1, 2, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000,
         0xFFFFFFFF, 0x100000000, 0x7FFFFFFFFFFFFFFF, 0x8000000000000000, 0xFFFFFFFFFFFFFFFF,
         0xFFFFFFFF80000000, 0x00000000FFFFFF80]
u64 = st.one_of(st.sampled_from(EDGES), st.integers(0, 2**64 - 1),
                st.integers(0, 0xFF), st.integers(2**64 - 0x100, 2**64 - 1))
flags = st.integers(0, 0xFFF).map(lambda v: v & ARITH)
regs = st.fixed_dictionaries({r: u64 for r in GPRS if r not in ("rsp", "r15")})
mem = st.binary(min_size=64, max_size=64)


@functools.lru_cache(maxsize=None)
def snippet(src: str) -> bytes:
    """The snippet assembled at CODE, followed by ``hlt``."""
    return assemble(src + "\nhlt\n", address=CODE)


_PATTERN = bytes((k * 37 + 11) & 0xFF for k in range(DATA_SIZE))


def initial_memory(window: bytes) -> bytes:
    """The data buffer: a fixed pattern with `window` at R15 - len/2."""
    buf = bytearray(_PATTERN)
    at = R15 - DATA - len(window) // 2
    buf[at:at + len(window)] = window
    return bytes(buf)


def full_regs(values: dict) -> dict:
    r = {name: 0 for name in GPRS}
    r["r15"] = R15
    r.update(values)
    r["rsp"] = STACK
    return r


class Outcome:
    """The architectural result of a case: registers, RFLAGS and the data buffer, or a fault."""

    def __init__(self, regs=None, rflags=0, memory=b"", fault=False):
        self.regs, self.rflags, self.memory, self.fault = regs, rflags, memory, fault

    def __repr__(self):
        if self.fault:
            return "Outcome(fault)"
        r = " ".join(f"{k}={v:#x}" for k, v in self.regs.items())
        return f"Outcome({r} rflags={self.rflags:#x})"


@functools.lru_cache(maxsize=1)
def _machine():
    """One machine in 64-bit mode with identity paging, reused by the cases: each rewrites the
    code (writes invalidate decoded code), the data buffer, the registers and RFLAGS."""
    m = x86.Machine(memory_size=4 << 20)
    m.load(b"\xf4", address=CODE, mode="long")
    return m


def run_sim(src: str, regs: dict, rflags: int, memory: bytes, max_instructions: int = 100000) -> Outcome:
    code = snippet(src)
    m = _machine()
    m.memory.write(CODE, code)
    m.memory.write(DATA, memory)
    for name, v in full_regs(regs).items():
        setattr(m.cpu, name, v)
    m.cpu.rflags = (rflags & ALL) | 2
    m.cpu.rip = CODE
    m.cpu.halted = False
    stop = m.cpu.run(max_instructions=max_instructions)
    if stop.reason == "shutdown":
        _machine.cache_clear()           # a triple fault leaves the machine reset: start afresh
        return Outcome(fault=True)
    assert stop.reason == "hlt", stop
    assert stop.rip == CODE + len(code) - 1 or stop.rip == CODE + len(code), stop
    return Outcome({n: getattr(m.cpu, n) for n in GPRS}, m.cpu.rflags, m.memory.read(DATA, DATA_SIZE))


def _unicorn():
    """A fresh unicorn instance per case (a reused one was seen to miss #DE after a fault)."""
    import unicorn
    uc = unicorn.Uc(unicorn.UC_ARCH_X86, unicorn.UC_MODE_64)
    uc.mem_map(CODE, 0x1000)
    uc.mem_map(DATA, DATA_SIZE)
    uc.mem_map(STACK - 0x1000, 0x2000)
    return uc


def run_unicorn(src: str, regs: dict, rflags: int, memory: bytes) -> Outcome:
    import unicorn
    from unicorn import x86_const as U
    code = snippet(src)
    uc = _unicorn()
    uc.mem_write(CODE, code)
    uc.mem_write(DATA, memory)
    for name, v in full_regs(regs).items():
        uc.reg_write(getattr(U, "UC_X86_REG_" + name.upper()), v)
    uc.reg_write(U.UC_X86_REG_RFLAGS, (rflags & ALL) | 2)
    try:
        uc.emu_start(CODE, CODE + len(code) - 1)          # stop before the hlt
    except unicorn.UcError:
        return Outcome(fault=True)
    return Outcome({n: uc.reg_read(getattr(U, "UC_X86_REG_" + n.upper())) for n in GPRS},
                   uc.reg_read(U.UC_X86_REG_RFLAGS), bytes(uc.mem_read(DATA, DATA_SIZE)))


def compare(sim: Outcome, ref: Outcome, flag_mask: int = ALL, ignore_regs=(), context: str = ""):
    """Assert the two outcomes agree on the registers, the data buffer and RFLAGS & flag_mask."""
    assert sim.fault == ref.fault, f"{context}: fault sim={sim.fault} ref={ref.fault}"
    if sim.fault:
        return
    for name in GPRS:
        if name in ignore_regs:
            continue
        assert sim.regs[name] == ref.regs[name], \
            f"{context}: {name} sim={sim.regs[name]:#x} ref={ref.regs[name]:#x}"
    if sim.memory != ref.memory:
        k = next(k for k in range(len(sim.memory)) if sim.memory[k] != ref.memory[k])
        raise AssertionError(f"{context}: memory differs at {DATA + k:#x}: "
                             f"sim={sim.memory[k:k + 8].hex()} ref={ref.memory[k:k + 8].hex()}")
    assert sim.rflags & flag_mask == ref.rflags & flag_mask, \
        f"{context}: rflags sim={sim.rflags:#x} ref={ref.rflags:#x} (mask {flag_mask:#x})"


def check_unicorn(src: str, regs: dict, rflags: int = 0, window: bytes = b"", flag_mask: int = ALL,
                  ignore_regs=()):
    """Run the case on both and compare; returns the simulator's outcome."""
    memory = initial_memory(window)
    sim = run_sim(src, regs, rflags, memory)
    ref = run_unicorn(src, regs, rflags, memory)
    ctx = f"{src!r} regs={ {k: hex(v) for k, v in regs.items()} } rflags={rflags:#x}"
    compare(sim, ref, flag_mask, ignore_regs, ctx)
    return sim
