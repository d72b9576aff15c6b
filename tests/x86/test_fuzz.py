"""Robustness (ARCHITECTURE.md "The hot path": "a guest must never be able to crash the process or
touch memory outside the machine"; API.md: an unmodelled feature raises x86.Unsupported, a runaway
guest x86.InstructionLimit).

Random bytes run as guest code at CPL0 and at CPL3 (64-bit, and 32-bit protected mode at CPL0),
with and without an IDT. Each batch runs in a forked child so that a crash of the interpreter fails
the test instead of killing pytest; the child reports every outcome through a pipe.
"""
import json
import os
import select
import signal
import time

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import x86
from x86_guest import CODE, install_gdt_tss, install_idt, enter_user

MEM = 16 << 20
BATCH_SECONDS = 20
ALLOWED = ("hlt", "shutdown", "exit", "max_instructions", "request")


def one_case(code: bytes, flavour: str) -> str:
    m = x86.Machine(memory_size=MEM, instruction_limit=10_000)
    bits = 32 if flavour == "prot" else 64
    # set the mode up with a placeholder, then place the bytes raw (random bytes may begin
    # with an ELF magic number, which load() would rightly parse as an image)
    m.load(b"\xf4", address=CODE, mode="protected" if bits == 32 else "long")
    m.memory.write(CODE, code)
    if flavour in ("cpl0_idt", "cpl3", "prot"):
        install_gdt_tss(m, bits)
        m.cpu.set_segment("cs", 0x18 if bits == 64 else 0x08, 0, 0xFFFFFFFF,
                          0xA09B if bits == 64 else 0xC09B)
        install_idt(m, bits)
    if flavour == "cpl3":
        # make the loader's identity map user-accessible, then drop to CPL3
        m.memory.write_u64(0x1000, m.memory.read_u64(0x1000) | 4)
        for i in range(4):
            m.memory.write_u64(0x2000 + 8 * i, m.memory.read_u64(0x2000 + 8 * i) | 4)
        enter_user(m, 64)
    for r in ("rax", "rbx", "rcx", "rdx", "rsi", "rdi"):
        setattr(m.cpu, r, 0x100000 + 0x1000 * len(r))
    try:
        stop = m.cpu.run(max_instructions=2_000)
        outcome = stop.reason
        if outcome not in ALLOWED:
            return f"bad stop {stop!r}"
    except x86.Unsupported:
        outcome = "unsupported"
    except x86.InstructionLimit:
        outcome = "limit"
    except Exception as e:                   # noqa: BLE001 - anything else is a bug
        return f"error {type(e).__name__}: {e}"
    pages = m.memory.touched_pages()
    if pages and max(pages) >= MEM >> 12:
        return f"touched page {max(pages):#x} beyond memory"
    return outcome


def run_batch(cases, flavour):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:                              # child
        os.close(r)
        try:
            out = [one_case(c, flavour) for c in cases]
            os.write(w, json.dumps(out).encode())
            code = 0
        except BaseException:                 # noqa: BLE001
            code = 3
        os.close(w)
        os._exit(code)
    os.close(w)
    data = b""
    deadline = time.monotonic() + BATCH_SECONDS
    while True:
        ready, _, _ = select.select([r], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(r)
            pytest.fail(f"batch still running after {BATCH_SECONDS}s (a hang that escapes "
                        f"instruction_limit) on one of {[c.hex() for c in cases]}")
        chunk = os.read(r, 1 << 16)
        if not chunk:
            break
        data += chunk
    os.close(r)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, \
        f"child died ({status:#x}) on one of {[c.hex() for c in cases]}"
    return json.loads(data)


# found by this test: an exception storm (a null DS makes every handler fault at once, ESP wraps
# into open bus) that never retired an instruction and ran for minutes
KNOWN = [bytes.fromhex("c467601fae64f58f5bfed5184f62059dd6245e0cc0944b92465798779de56c631a69c0a7b6c416ca")]


@pytest.mark.parametrize("flavour", ["cpl0", "cpl0_idt", "cpl3", "prot"])
def test_known_cases(flavour):
    outcomes = run_batch(KNOWN, flavour)
    assert all(o in ALLOWED + ("unsupported", "limit") for o in outcomes), outcomes


@pytest.mark.parametrize("flavour", ["cpl0", "cpl0_idt", "cpl3", "prot"])
@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(cases=st.lists(st.binary(min_size=1, max_size=48), min_size=25, max_size=25))
def test_random_code(flavour, cases):
    outcomes = run_batch(cases, flavour)
    bad = [(c.hex(), o) for c, o in zip(cases, outcomes)
           if o not in ALLOWED + ("unsupported", "limit")]
    assert not bad, bad


# byte patterns that reach the system paths: prefixes, 0F xx, far transfers, IRET, descriptor
# table and control-register instructions
SYSTEM_BYTES = [bytes.fromhex(h) for h in (
    "cf", "48cf", "ca0800", "cb", "ff18", "ff28", "0f0010", "0f0018", "0f0110", "0f0118", "0f00d8",
    "0f22d8", "0f22e0", "0f22c0", "0f23f8", "0f05", "0f07", "0f34", "0f35", "cd80", "cc", "f1",
    "0f01f8", "8ed0", "8ed8", "6a0017", "9d", "0f30", "0f32", "e4f4", "ed", "0fa2", "0f0b")]


@pytest.mark.parametrize("flavour", ["cpl0_idt", "cpl3"])
@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(cases=st.lists(st.lists(st.sampled_from(SYSTEM_BYTES) | st.binary(min_size=1, max_size=6),
                               min_size=1, max_size=12).map(b"".join), min_size=25, max_size=25))
def test_system_instruction_soup(flavour, cases):
    outcomes = run_batch(cases, flavour)
    bad = [(c.hex(), o) for c, o in zip(cases, outcomes)
           if o not in ALLOWED + ("unsupported", "limit")]
    assert not bad, bad
