"""The interpreter against this host's own processor on ALU, shift and multiply instructions.

SDM Vol. 2A/2B "Operation" and "Flags Affected" of ADD..XOR, INC/DEC/NEG, SHL/SHR/SAR/ROL/ROR/
RCL/RCR, SHLD/SHRD, MUL/IMUL: the host executes the same snippet (wrapped in a tiny function that
loads the registers and RFLAGS from a buffer and stores them back with PUSHFQ) in a forked child, so
that a fault cannot take pytest down. Flags the SDM leaves undefined are masked as in
test_diff_unicorn.
"""
import ctypes
import functools
import mmap
import os
import platform
import struct

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import diffutil as D
from diffutil import ALL, AF, CF, DF, OF
from x86.asm import assemble

if platform.machine() not in ("x86_64", "AMD64"):
    pytest.skip("the host is not x86-64", allow_module_level=True)

ORDER = [r for r in D.GPRS if r != "rsp"]     # the buffer: 15 registers, then RFLAGS
SLOT = {r: 8 * k for k, r in enumerate(ORDER)}
FLAGS_SLOT = 8 * len(ORDER)


def wrapper(src: str) -> str:
    """A System V function f(buffer): load, run the snippet, store; callee-saved registers kept."""
    loads = "\n".join(f"mov {r}, [rdi + {SLOT[r]}]" for r in ORDER if r != "rdi")
    stores = "\n".join(f"mov [rdi + {SLOT[r]}], {r}" for r in ORDER if r != "rdi")
    return f"""
        push rbx; push rbp; push r12; push r13; push r14; push r15
        push rdi
        push qword ptr [rdi + {FLAGS_SLOT}]
        {loads}
        mov rdi, [rdi + {SLOT['rdi']}]
        popfq
        {src}
        pushfq
        xchg rdi, [rsp + 8]
        {stores}
        pop rax
        mov [rdi + {FLAGS_SLOT}], rax
        pop rax
        mov [rdi + {SLOT['rdi']}], rax
        cld
        pop r15; pop r14; pop r13; pop r12; pop rbp; pop rbx
        ret
    """


@functools.lru_cache(maxsize=None)
def _assembled(src: str) -> bytes:
    return assemble(wrapper(src), address=0)


def run_native(src: str, regs: dict, rflags: int):
    """Run in a forked child; returns (registers, rflags), or None when the child faulted."""
    code = _assembled(src)
    values = D.full_regs(regs)
    buf = b"".join(struct.pack("<Q", values[r]) for r in ORDER) + struct.pack("<Q", (rflags & ALL) | 2)
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:                                    # child
        try:
            os.close(rfd)
            mem = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
            mem.write(code)
            addr = ctypes.addressof(ctypes.c_char.from_buffer(mem))
            fn = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(addr)
            data = ctypes.create_string_buffer(buf, len(buf))
            fn(ctypes.addressof(data))
            os.write(wfd, data.raw)
        finally:
            os._exit(0)
    os.close(wfd)
    out = b""
    while True:
        chunk = os.read(rfd, 4096)
        if not chunk:
            break
        out += chunk
    os.close(rfd)
    os.waitpid(pid, 0)
    if len(out) != len(buf):
        return None
    vals = struct.unpack(f"<{len(ORDER) + 1}Q", out)
    return dict(zip(ORDER, vals[:-1])), vals[-1]


def _native_works() -> str:
    try:
        r = run_native("add eax, 1", {"rax": 41}, 0)
    except (OSError, PermissionError) as e:
        return f"cannot map executable memory: {e}"
    if r is None or r[0]["rax"] != 42:
        return "executing generated code in a child process failed (PROT_EXEC refused?)"
    return ""


_why = _native_works()
if _why:
    pytest.skip(_why, allow_module_level=True)


def check_native(src: str, regs: dict, rflags: int, mask: int):
    sim = D.run_sim(src, regs, rflags, D.initial_memory(b""))
    native = run_native(src, regs, rflags)
    assert native is not None and not sim.fault, f"{src}: fault sim={sim.fault} native={native is None}"
    nregs, nflags = native
    for r in ORDER:
        assert sim.regs[r] == nregs[r], f"{src} {regs}: {r} sim={sim.regs[r]:#x} native={nregs[r]:#x}"
    assert sim.rflags & mask == nflags & mask, \
        f"{src} {regs} rflags={rflags:#x}: sim={sim.rflags:#x} native={nflags:#x} mask={mask:#x}"


CASES = settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
values = st.fixed_dictionaries({r: D.u64 for r in ("rax", "rbx", "rcx", "rdx", "rsi", "r9", "r10")})

ALU = [(f"{op} {form}", ALL if op in ("add", "adc", "sub", "sbb", "cmp") else ALL & ~AF)
       for op in ("add", "adc", "sub", "sbb", "cmp", "and", "or", "xor", "test")
       for form in ("al, bl", "ah, ch", "cx, dx", "esi, ebx", "r9, r10", "eax, -7")]
ALU += [(f"{op} {r}", ALL) for op in ("inc", "dec", "neg", "not") for r in ("bh", "cx", "esi", "r9")]
MUL = [(f"{op} {r}", CF | OF | DF) for op in ("mul", "imul") for r in ("bl", "cx", "esi", "r10")]
MUL += [("imul ecx, ebx", CF | OF | DF), ("imul r9, r10, -77", CF | OF | DF),
        ("imul si, dx", CF | OF | DF)]


@pytest.mark.parametrize("src,mask", ALU + MUL)
@CASES
@given(regs=values, rflags=D.flags)
def test_alu_native(src, mask, regs, rflags):
    check_native(src, regs, rflags, mask)


@pytest.mark.parametrize("dest,bits", [("bl", 8), ("dx", 16), ("esi", 32), ("r9", 64)])
@pytest.mark.parametrize("op", ["shl", "shr", "sar", "rol", "ror", "rcl", "rcr"])
@CASES
@given(regs=values, rflags=D.flags, count=st.integers(0, 70))
def test_shift_native(op, dest, bits, regs, rflags, count):
    """Including a count of 0 on a 32-bit register (does the destination get zero-extended?)."""
    from test_diff_unicorn import shift_mask
    regs["rcx"] = (regs["rcx"] & ~0xFF) | count
    check_native(f"{op} {dest}, cl", regs, rflags, shift_mask(op, bits, count))


@pytest.mark.parametrize("form,bits", [("dx, si", 16), ("esi, ebx", 32), ("r9, r10", 64)])
@pytest.mark.parametrize("op", ["shld", "shrd"])
@CASES
@given(regs=values, rflags=D.flags, count=st.integers(0, 70))
def test_double_shift_native(op, form, bits, regs, rflags, count):
    masked = count & (0x3F if bits == 64 else 0x1F)
    if masked > bits:
        return
    regs["rcx"] = (regs["rcx"] & ~0xFF) | count
    mask = ALL if masked == 0 else ALL & ~AF & (~OF if masked != 1 else ALL)
    check_native(f"{op} {form}, cl", regs, rflags, mask)
