"""SDM Vol. 3A 10.9 "Mode Switching" and 9.8.5 "Initializing IA-32e Mode": the guest itself goes
from real-address mode to protected mode to IA-32e mode.

10.9.1: load a GDT with LGDT, set CR0.PE, and "immediately following the MOV CR0 instruction
execute a far JMP or far CALL" to load CS. 9.8.5: with paging off, enable PAE (CR4.PAE = 1),
load CR3 with the PML4, set IA32_EFER.LME = 1, then enable paging (CR0.PG = 1): the processor
sets IA32_EFER.LMA; a far jump to a 64-bit code segment (L = 1) enters 64-bit mode.
"""
import x86
from x86.asm import assemble
from x86_guest import mode_switch_source

BASE = 0x8000


SRC = mode_switch_source("    mov dx, 0xf4\n    mov eax, 0x64\n    out dx, eax")


def test_real_to_protected_to_long():
    m = x86.Machine(memory_size=4 << 20)
    m.load(assemble(SRC, bits=16, address=BASE), address=BASE, mode="real")
    stop = m.cpu.run(max_instructions=200)
    assert (stop.reason, stop.status) == ("exit", 0x64)
    assert m.cpu.code_bits == 64
    assert m.cpu.r9 & 0x500 == 0x500                   # LME and LMA
    assert m.cpu.cr0 & 0x80000001 == 0x80000001
    assert m.cpu.segment("cs").selector == 0x18
