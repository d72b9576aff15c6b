"""SDM Vol. 3A 10.9 "Mode Switching" and 9.8.5 "Initializing IA-32e Mode": the guest itself goes
from real-address mode to protected mode to IA-32e mode.

10.9.1: load a GDT with LGDT, set CR0.PE, and "immediately following the MOV CR0 instruction
execute a far JMP or far CALL" to load CS. 9.8.5: with paging off, enable PAE (CR4.PAE = 1),
load CR3 with the PML4, set IA32_EFER.LME = 1, then enable paging (CR0.PG = 1): the processor
sets IA32_EFER.LMA; a far jump to a 64-bit code segment (L = 1) enters 64-bit mode.
"""
import x86
from x86.asm import assemble

BASE = 0x8000


SRC = f"""
    .code16
    cli
    lgdt [gdtr]
    mov eax, cr0
    or eax, 1
    mov cr0, eax
    ljmp 0x08, offset pm32
    .code32
pm32:
    mov ax, 0x10
    mov ds, ax
    mov ss, ax
    mov esp, 0x90000
    # identity map the first 1 GiB: PML4 at 0x20000 -> PDPT at 0x21000 (one 1-GiB page)
    mov dword ptr [0x20000], 0x21003
    mov dword ptr [0x20004], 0
    mov dword ptr [0x21000], 0x83
    mov dword ptr [0x21004], 0
    mov eax, cr4
    or eax, 0x20
    mov cr4, eax
    mov eax, 0x20000
    mov cr3, eax
    mov ecx, 0xC0000080
    rdmsr
    or eax, 0x100
    wrmsr
    mov eax, cr0
    or eax, 0x80000000
    mov cr0, eax
    ljmp 0x18, offset lm64
    .code64
lm64:
    mov rax, 0x123456789
    mov ecx, 0xC0000080
    rdmsr
    mov r9, rax
    mov dx, 0xf4
    mov eax, 0x64
    out dx, eax
    .balign 8
gdt:
    .quad 0
    .quad 0x00CF9B000000FFFF
    .quad 0x00CF93000000FFFF
    .quad 0x00AF9B000000FFFF
gdtr:
    .word 31
    .long offset gdt
"""


def test_real_to_protected_to_long():
    m = x86.Machine(memory_size=4 << 20)
    m.load(assemble(SRC, bits=16, address=BASE), address=BASE, mode="real")
    stop = m.cpu.run(max_instructions=200)
    assert (stop.reason, stop.status) == ("exit", 0x64)
    assert m.cpu.code_bits == 64
    assert m.cpu.r9 & 0x500 == 0x500                   # LME and LMA
    assert m.cpu.cr0 & 0x80000001 == 0x80000001
    assert m.cpu.segment("cs").selector == 0x18
