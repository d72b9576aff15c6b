"""A VMX test bench whose guest runs in 32-bit protected mode ("IA-32e mode guest" 0) with 32-bit
paging (4-MByte pages identity-mapping the first 64 MiB), for what IA-32e mode forbids: task
switches. Its GDT holds TSS descriptors and task gates; its IDT, 32-bit gates."""
from vmx import EntryControls as En, Field as F
from x86.asm import assemble
from guest import GUEST_CODE, vm

GDT, IDT, PD = 0x50000, 0x54000, 0x55000
TSS0, TSS1, TSS2 = 0x51000, 0x52000, 0x53000     # current task, an available one, a busy one
CODE, DATA, CURRENT = 0x08, 0x10, 0x18


def segment(base: int, limit: int, kind: int, dpl: int = 0, present: bool = True, s: bool = False,
            flags: int = 0) -> int:
    """A segment or system descriptor (SDM Vol. 3A 3.4.5): type 3:0 at 43:40, S 44, DPL, P,
    limit 19:16, flags (AVL, L, D/B, G) at 55:52."""
    return ((limit & 0xFFFF) | ((base & 0xFFFFFF) << 16) | (kind << 40) | (int(s) << 44) | (dpl << 45)
            | (int(present) << 47) | (((limit >> 16) & 0xF) << 48) | (flags << 52) | ((base >> 24) << 56))


def task_gate(tss: int, dpl: int = 0, present: bool = True) -> int:
    """A task gate (SDM Vol. 3A 8.2.5): the TSS selector at 31:16, type 5."""
    return (tss << 16) | (0x5 << 40) | (dpl << 45) | (int(present) << 47)


def tss(base: int, busy: bool = False, limit: int = 0x67, **kw) -> int:
    """A 32-bit TSS descriptor: type 9 (available) or 11 (busy)."""
    return segment(base, limit, 0xB if busy else 0x9, **kw)


STANDARD_GDT = {
    CODE: segment(0, 0xFFFFF, 0xB, s=True, flags=0xC),     # 32-bit code, DPL 0, 4 GiB
    DATA: segment(0, 0xFFFFF, 0x3, s=True, flags=0xC),     # data, 4 GiB
    CURRENT: tss(TSS0, busy=True),
    0x20: tss(TSS1),
    0x28: task_gate(0x20),
    0x30: tss(TSS2, busy=True),
}


def vm32(source: str, gdt: dict | None = None, idt: dict | None = None, **controls):
    """The `vm` bench with a 32-bit protected-mode guest running `source` at GUEST_CODE. `gdt`
    adds or replaces descriptors by selector; `idt` maps vectors to 8-byte gates."""
    m = vm("nop", **controls)
    m.memory.write(GUEST_CODE, assemble(source, bits=32, address=GUEST_CODE))
    for sel, desc in {**STANDARD_GDT, **(gdt or {})}.items():
        m.memory.write_u64(GDT + sel, desc)
    for vector, gate in (idt or {}).items():
        m.memory.write_u64(IDT + 8 * vector, gate)
    for i in range(16):
        m.memory.write_u32(PD + 4 * i, (i << 22) | 0x83)   # 4-MByte page, writable, present
    w = m.cpu.vmwrite
    w(F.VM_ENTRY_CONTROLS, m.cpu.vmread(F.VM_ENTRY_CONTROLS) & ~En.IA32E_MODE)
    w(F.GUEST_CR0, 0x80000031)                              # PG NE ET PE
    w(F.GUEST_CR4, (1 << 4) | (1 << 13))                    # PSE VMXE
    w(F.GUEST_CR3, PD)
    w(F.GUEST_CS_SELECTOR, CODE)
    w(F.GUEST_CS_BASE, 0)
    w(F.GUEST_CS_LIMIT, 0xFFFFFFFF)
    w(F.GUEST_CS_AR_BYTES, 0xC09B)
    for seg in ("SS", "DS", "ES", "FS", "GS"):
        w(F[f"GUEST_{seg}_SELECTOR"], DATA)
        w(F[f"GUEST_{seg}_BASE"], 0)
        w(F[f"GUEST_{seg}_LIMIT"], 0xFFFFFFFF)
        w(F[f"GUEST_{seg}_AR_BYTES"], 0xC093)
    w(F.GUEST_TR_SELECTOR, CURRENT)
    w(F.GUEST_TR_BASE, TSS0)
    w(F.GUEST_TR_LIMIT, 0x67)
    w(F.GUEST_TR_AR_BYTES, 0x8B)
    w(F.GUEST_GDTR_BASE, GDT)
    w(F.GUEST_GDTR_LIMIT, 0x7F)
    w(F.GUEST_IDTR_BASE, IDT)
    w(F.GUEST_IDTR_LIMIT, 0x7FF)
    return m
