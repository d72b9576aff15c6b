"""A bare-metal 64-bit guest on the processor without VT-x: it installs its own IDT, takes a page
fault and maps the page in its handler, programs the local APIC timer and sleeps in HLT until it
fires, and reports through the debug console (port 0xE9). No VMM: `build()` returns None for it.
"""
from __future__ import annotations

import x86
from x86.asm import assemble

NAME = "bare-metal"
DESCRIPTION = ("a bare-metal 64-bit guest, no VT-x: CPUID, MSRs, a CR write, a page fault it "
               "resolves, the APIC timer waking HLT, console output")
ENTRY = 0x100000

GUEST = r"""
    .equ IDT, 0x3000
    .equ PT, 0x4000                 # page tables the #PF handler fills: PT, PD 0x5000, PDPT 0x6000
    .equ UNMAPPED, 0x8000001000          # beyond the loader's 512 GiB identity map: not present
    .equ APIC, 0xFEE00000
    # install IDT gates for #PF (14) and the timer (0x40)
    lea rax, [rip + pf_handler]
    mov edi, IDT + 14 * 16
    call set_gate
    lea rax, [rip + timer_handler]
    mov edi, IDT + 0x40 * 16
    call set_gate
    lidt [rip + idtr]
    lea rsi, [rip + msg_start]
    call puts
    # CPUID: the vendor string goes to the console
    xor eax, eax
    cpuid
    mov [rip + vendor], ebx
    mov [rip + vendor + 4], edx
    mov [rip + vendor + 8], ecx
    lea rsi, [rip + msg_vendor]
    call puts
    # an MSR round trip and a CR4 write (enable global pages)
    mov ecx, 0xC0000102             # IA32_KERNEL_GS_BASE
    mov eax, 0x1234
    xor edx, edx
    wrmsr
    rdmsr
    mov rax, cr4
    or eax, 0x80
    mov cr4, rax
    # touch an unmapped page: the #PF handler maps it and the access restarts
    mov rdi, UNMAPPED
    mov qword ptr [rdi], 0x42
    lea rsi, [rip + msg_mapped]
    call puts
    # the APIC timer: one-shot, 5000 ticks, vector 0x40; sleep until it fires
    mov edi, APIC
    mov dword ptr [rdi + 0x3E0], 0xB
    mov dword ptr [rdi + 0x320], 0x40
    mov dword ptr [rdi + 0x380], 5000
    sti
    hlt
    cli
    lea rsi, [rip + msg_done]
    call puts
    xor eax, eax
    out 0xf4, eax

set_gate:                           # rax = handler, rdi = gate address
    mov word ptr [rdi], ax
    mov word ptr [rdi + 2], 0x18
    mov word ptr [rdi + 4], 0x8E00
    shr rax, 16
    mov word ptr [rdi + 6], ax
    shr rax, 16
    mov dword ptr [rdi + 8], eax
    mov dword ptr [rdi + 12], 0
    ret

puts:
    lodsb
    test al, al
    jz 1f
    out 0xe9, al
    jmp puts
1:  ret

pf_handler:                         # map the faulting 4 KiB page to physical 0x800000
    push rax
    mov qword ptr [0x1000 + 8], 0x6003       # PML4[1] -> a new PDPT
    mov qword ptr [0x6000], 0x5003           # PDPT[0] -> a page directory
    mov qword ptr [0x5000], PT | 3           # PD[0] -> a page table
    mov rax, cr2
    shr rax, 12
    and eax, 0x1FF
    mov qword ptr [PT + rax * 8], 0x800003   # PTE -> physical 0x800000
    mov rax, cr2
    invlpg [rax]
    lea rsi, [rip + msg_pf]
    call puts
    pop rax
    add rsp, 8                      # the error code
    iretq

timer_handler:
    push rax
    lea rsi, [rip + msg_timer]
    call puts
    mov eax, APIC
    mov dword ptr [rax + 0xB0], 0   # EOI
    pop rax
    iretq

idtr:   .word 0xFFF
        .quad IDT
msg_start:  .asciz "guest: hello from 64-bit mode\n"
msg_vendor: .ascii "guest: CPUID vendor "
vendor:     .asciz "............\n"
msg_pf:     .asciz "guest: #PF handled, page mapped\n"
msg_mapped: .asciz "guest: the write went through after the fault\n"
msg_timer:  .asciz "guest: APIC timer interrupt\n"
msg_done:   .asciz "guest: woke from HLT, exiting\n"
"""



def build():
    m = x86.Machine(memory_size=64 << 20)
    m.load(assemble(GUEST, address=ENTRY), address=ENTRY, mode="long")
    return m, None
