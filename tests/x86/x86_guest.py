"""Shared scaffolding for the x86 system-architecture tests: descriptor tables, page tables,
exception stubs that record what the processor pushed, all written from Python the way a
small kernel would write them.

Memory map (physical == linear unless a test maps otherwise):
  0x0600 GDT (this module's), 0x0800 TSS, 0x4000 IDT, 0x7000 REC (what a handler saw),
  0x7F000.. kernel stack (RSP0 = 0x80000), 0x9F000 user stack page (top 0xA0000),
  0x100000 test code, 0x110000 exception stubs (32 bytes each), 0x400000.. page-table pool.
"""
from __future__ import annotations

import x86
from x86.asm import assemble

CODE = 0x100000
STUBS = 0x110000
IDT = 0x4000
GDT = 0x600
TSS = 0x800
REC = 0x7000
KSTACK = 0x80000
USTACK = 0xA0000
POOL = 0x400000
NO_FAULT = 6          # test code ends with UD2: "the access completed" reads as #UD at the end

ERROR_CODE_VECTORS = {8, 10, 11, 12, 13, 14, 17, 21}

# selectors of this module's GDT
K_CODE32, K_DATA, K_CODE64, U_DATA, U_CODE64, U_CODE32, TSS_SEL = 0x08, 0x10, 0x18, 0x20, 0x28, 0x30, 0x38
GDT_ENTRIES = [0, 0x00CF9B000000FFFF, 0x00CF93000000FFFF, 0x00AF9B000000FFFF,
               0x00CFF3000000FFFF, 0x00AFFB000000FFFF, 0x00CFFB000000FFFF]

P, RW, US, PWT, PCD, A, D, PS, G = 1, 2, 4, 8, 16, 32, 64, 128, 256
XD = 1 << 63


def stubs(bits: int) -> bytes:
    """32 exception stubs; each stores its vector and falls into a recorder that stores the
    error code (or -1), CR2 and the frame the processor pushed, then HLTs (IF is 0 through an
    interrupt gate, so the run stops with reason "hlt")."""
    w = "qword" if bits == 64 else "dword"
    sp, ax, n = ("rsp", "rax", 8) if bits == 64 else ("esp", "eax", 4)
    lines = []
    for v in range(32):
        lines += [".balign 32", f"mov dword ptr [{REC}], {v}",
                  "jmp rec_err" if v in ERROR_CODE_VECTORS else "jmp rec"]
    lines += [".balign 32",
              f"rec_err: pop {w} ptr [{REC + 8}]", "jmp rec2",
              f"rec: mov {w} ptr [{REC + 8}], -1",
              f"rec2: mov [{REC + 0x40}], {sp}", f"push {ax}", f"mov {ax}, cr2", f"mov [{REC + 0x10}], {ax}"]
    for i, off in enumerate((0x18, 0x20, 0x28, 0x30, 0x38)):   # rip cs rflags rsp ss
        lines += [f"mov {ax}, [{sp} + {n * (i + 1)}]", f"mov [{REC + off}], {ax}"]
    lines += [f"pop {ax}", f"inc dword ptr [{REC + 0x48}]", "hlt"]
    return assemble("\n".join(lines), bits=bits, address=STUBS)


def gate(bits: int, offset: int, typ: int = 0xE, dpl: int = 0, ist: int = 0, present: int = 1,
         sel: int | None = None) -> tuple[int, int]:
    sel = (K_CODE64 if bits == 64 else K_CODE32) if sel is None else sel
    lo = ((offset & 0xFFFF) | (sel << 16) | (ist << 32) | (typ << 40) | (dpl << 45) | (present << 47)
          | (((offset >> 16) & 0xFFFF) << 48))
    return lo, (offset >> 32) & 0xFFFFFFFF


def write_gate(m, bits, vector, lo_hi):
    size = 16 if bits == 64 else 8
    m.memory.write_u64(IDT + size * vector, lo_hi[0])
    if bits == 64:
        m.memory.write_u64(IDT + size * vector + 8, lo_hi[1])


def install_idt(m, bits: int, typ: int = 0xE, vectors=range(256)) -> None:
    m.memory.write(STUBS, stubs(bits))
    for v in vectors:
        write_gate(m, bits, v, gate(bits, STUBS + 32 * (v if v < 32 else 0), typ=typ))
    m.cpu.idtr = (IDT, (16 if bits == 64 else 8) * 256 - 1)


def install_gdt_tss(m, bits: int, rsp0: int = KSTACK, ist: dict | None = None, tss_limit: int = 0x67,
                    iomap: bytes | None = None) -> None:
    """This module's GDT (kernel and user segments) and a TSS whose RSP0/ESP0 is `rsp0`."""
    for i, d in enumerate(GDT_ENTRIES):
        m.memory.write_u64(GDT + 8 * i, d | (1 << 40 if d else 0))
    m.memory.write(TSS, bytes(0x68))
    if bits == 64:
        m.memory.write_u64(TSS + 4, rsp0)
        for k, v in (ist or {}).items():
            m.memory.write_u64(TSS + 0x24 + 8 * (k - 1), v)
    else:
        m.memory.write_u32(TSS + 4, rsp0)
        m.memory.write_u32(TSS + 8, K_DATA)
    if iomap is not None:
        m.memory.write_u16(TSS + 0x66, 0x68)
        m.memory.write(TSS + 0x68, iomap)
        tss_limit = 0x68 + len(iomap) - 1
    else:
        m.memory.write_u16(TSS + 0x66, 0xFFFF)
    desc = ((tss_limit & 0xFFFF) | ((TSS & 0xFFFFFF) << 16) | (0x8B << 40)
            | (((tss_limit >> 16) & 0xF) << 48) | ((TSS >> 24) << 56))
    m.memory.write_u64(GDT + TSS_SEL, desc)
    m.memory.write_u64(GDT + TSS_SEL + 8, 0)
    m.cpu.gdtr = (GDT, TSS_SEL + 15)
    m.cpu.set_segment("tr", TSS_SEL, TSS, tss_limit, 0x8B)


def enter_user(m, bits: int, rsp: int = USTACK) -> None:
    if bits == 64:
        m.cpu.set_segment("cs", U_CODE64 | 3, 0, 0xFFFFFFFF, 0xA0FB)
    else:
        m.cpu.set_segment("cs", U_CODE32 | 3, 0, 0xFFFFFFFF, 0xC0FB)
    for s in ("ss", "ds", "es"):
        m.cpu.set_segment(s, U_DATA | 3, 0, 0xFFFFFFFF, 0xC0F3)
    m.cpu.rsp = rsp
    m.cpu.refresh_mode()


def rec(m, bits: int = 64) -> dict:
    rd = m.memory.read_u64 if bits == 64 else m.memory.read_u32
    names = ("vector", "error", "cr2", "rip", "cs", "rflags", "rsp", "ss", "frame")
    out = {k: rd(REC + 8 * i) for i, k in enumerate(names)}
    out["vector"] &= 0xFFFFFFFF
    if out["error"] in (0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF):
        out["error"] = None
    out["count"] = m.memory.read_u32(REC + 0x48)
    return out


def clear_rec(m):
    m.memory.write(REC, bytes(0x50))
    m.memory.write_u32(REC, 0xEE)


class PageTables:
    """Hand-written paging structures in guest memory, for every paging mode of SDM chapter 4."""

    def __init__(self, m, mode: str = "4level", pool: int = POOL):
        self.m, self.mode, self.next = m, mode, pool
        self.esize = 4 if mode == "32bit" else 8
        self.levels = {"32bit": 2, "pae": 3, "4level": 4, "5level": 5}[mode]
        if mode == "pae":
            self.root = self.alloc(32)
        else:
            self.root = self.alloc()

    def alloc(self, size=4096):
        a = self.next
        self.next += 4096
        self.m.memory.write(a, bytes(size))
        return a

    def _rd(self, pa):
        return self.m.memory.read_u32(pa) if self.esize == 4 else self.m.memory.read_u64(pa)

    def _wr(self, pa, v):
        (self.m.memory.write_u32 if self.esize == 4 else self.m.memory.write_u64)(pa, v)

    def _index(self, va, level):
        """Entry address within a table at `level` (1 = PT)."""
        if self.mode == "32bit":
            return ((va >> (12 + 10 * (level - 1))) & 0x3FF) * 4
        if self.mode == "pae" and level == 3:
            return ((va >> 30) & 3) * 8
        return ((va >> (12 + 9 * (level - 1))) & 0x1FF) * 8

    def entry_addr(self, va, level):
        """Physical address of the entry for `va` at `level`, creating tables on the way."""
        table = self.root
        for lvl in range(self.levels, level, -1):
            ea = table + self._index(va, lvl)
            e = self._rd(ea)
            if not e & P:
                t = self.alloc()
                flags = P if (self.mode == "pae" and lvl == 3) else (P | RW | US)
                self._wr(ea, t | flags)
                e = t | flags
            table = e & 0x000FFFFFFFFFF000 & ~(0xFFF)
        return table + self._index(va, level)

    def map(self, va, pa, flags=P | RW, size=4096):
        level = {4096: 1, 2 << 20: 2, 4 << 20: 2, 1 << 30: 3}[size]
        self._wr(self.entry_addr(va, level), pa | flags | (PS if level > 1 else 0))

    def set_upper(self, va, level, clear=0, set_=0):
        """Change the flags of the non-leaf entry at `level` on the path to `va`."""
        ea = self.entry_addr(va, level)
        self._wr(ea, (self._rd(ea) & ~clear) | set_)

    def leaf(self, va, level=1):
        return self._rd(self.entry_addr(va, level))

    def set_leaf(self, va, value, level=1):
        self._wr(self.entry_addr(va, level), value)

    def identity_low(self, user_pages=(), flags=P | RW, limit=2 << 20):
        """Identity-map [0, limit) with 4 KiB pages, supervisor except `user_pages`."""
        for pa in range(0, limit, 4096):
            self.map(pa, pa, flags | (US if pa in user_pages else 0))

    def activate(self, pcide=False):
        cpu = self.m.cpu
        if self.mode == "32bit":
            cpu.cr3 = self.root
        else:
            cpu.cr3 = self.root


def long_machine(code_src: str, *, user: bool = False, memory_size=64 << 20, **kw):
    """A long-mode machine running `code_src` at CODE (CPL3 when `user`) with this module's GDT,
    TSS and IDT, and the loader's 1 GiB identity map (tests replace CR3 as needed)."""
    m = x86.Machine(memory_size=memory_size, **kw)
    code = assemble(code_src, bits=64, address=CODE)
    m.load(code, address=CODE, mode="long")
    install_gdt_tss(m, 64)
    m.cpu.set_segment("cs", K_CODE64, 0, 0xFFFFFFFF, 0xA09B)
    install_idt(m, 64)
    clear_rec(m)
    if user:
        enter_user(m, 64)
    return m


def protected_machine(code_src: str, *, user: bool = False, memory_size=64 << 20, **kw):
    m = x86.Machine(memory_size=memory_size, **kw)
    code = assemble(code_src, bits=32, address=CODE)
    m.load(code, address=CODE, mode="protected")
    install_gdt_tss(m, 32)
    m.cpu.set_segment("cs", K_CODE32, 0, 0xFFFFFFFF, 0xC09B)
    install_idt(m, 32)
    clear_rec(m)
    if user:
        enter_user(m, 32)
    return m


TARGET = 0x40000000       # the linear address the paging tests access (32-bit modes)
TARGETS = {"32bit": TARGET, "pae": TARGET, "4level": (1 << 40) | TARGET,          # PML4E 2
           "5level": (1 << 48) | (1 << 40) | TARGET}                               # PML5E 1
TARGET_PA = 0x300000
ACCESS_CODE = {
    64: {"r": "mov rax, [rdi]\nud2", "w": "mov [rdi], rax\nud2", "x": "call rdi\nud2"},
    32: {"r": "mov eax, [edi]\nud2", "w": "mov [edi], eax\nud2", "x": "call edi\nud2"},
}


def paging_machine(mode: str, access: str, *, user=False, wp=True, nxe=True, smep=False,
                   smap=False, ac=False, pse=True, pge=False, src=None):
    """A machine in `mode` paging ("32bit", "pae", "4level", "5level") about to make one access
    (`access` r/w/x) to TARGET; returns (m, pt). The caller maps TARGET, then calls `run`."""
    bits = 32 if mode in ("32bit", "pae") else 64
    src = src or ACCESS_CODE[bits][access]
    m = (protected_machine if bits == 32 else long_machine)(src)
    pt = PageTables(m, "4level" if mode == "4level" else mode)
    user_pages = {CODE, CODE + 0x1000, USTACK - 0x1000} if user else set()
    pt.identity_low(user_pages=user_pages)
    m.memory.write_u8(TARGET_PA, 0xC3)        # RET, for fetches
    pt.entry_addr(TARGETS[mode], 1)                   # build the path now: PAE loads PDPTEs with CR3
    cpu = m.cpu
    if bits == 32:
        cr4 = (0x10 if pse else 0) | (0x20 if mode == "pae" else 0) | (0x80 if pge else 0)
        cpu.cr4 = cr4
        if nxe and mode == "pae":
            cpu.efer = cpu.efer | 0x800
        cpu.cr3 = pt.root
        cpu.cr0 = cpu.cr0 | 0x80000000 | (0x10000 if wp else 0)
    else:
        if mode == "5level":
            # leave IA-32e mode from compatibility mode, turn LA57 on, come back (SDM 9.8.5)
            cpu.set_segment("cs", K_CODE32, 0, 0xFFFFFFFF, 0xC09B)
            cpu.refresh_mode()
            cpu.cr0 = cpu.cr0 & ~0x80000000
            cpu.cr4 = cpu.cr4 | 0x1000
            cpu.cr3 = pt.root
            cpu.cr0 = cpu.cr0 | 0x80000000
            cpu.set_segment("cs", K_CODE64, 0, 0xFFFFFFFF, 0xA09B)
            cpu.refresh_mode()
        else:
            cpu.cr3 = pt.root
        if not nxe:
            cpu.efer = cpu.efer & ~0x800
        cpu.cr0 = (cpu.cr0 | 0x10000) if wp else (cpu.cr0 & ~0x10000)
        if pge:
            cpu.cr4 = cpu.cr4 | 0x80
    if smep or smap:
        cpu.cr4 = cpu.cr4 | (0x100000 if smep else 0) | (0x200000 if smap else 0)
    if ac:
        cpu.rflags = cpu.rflags | (1 << 18)
    if user:
        enter_user(m, bits)
    cpu.rdi = TARGETS[mode]
    return m, pt


def run(m, bits=64, n=1000):
    stop = m.cpu.run(max_instructions=n)
    assert stop.reason == "hlt", stop
    return rec(m, bits)


APIC = 0xFEE00000
LOG = 0x7400          # handlers append (vector, time, pushed RIP) triples of u64 here; count at LOG-8


def logging_handler(vector: int, eoi: bool = True, extra: str = "") -> str:
    """64-bit handler that logs (vector, RDTSC, pushed RIP), writes the APIC EOI, and IRETQs."""
    return f"""
        push rax; push rcx; push rdx
        mov ecx, [{LOG - 8}]
        imul ecx, ecx, 24
        mov qword ptr [{LOG} + rcx], {vector}
        rdtsc
        shl rdx, 32
        or rax, rdx
        mov [{LOG + 8} + rcx], rax
        mov rax, [rsp + 24]
        mov [{LOG + 16} + rcx], rax
        inc dword ptr [{LOG - 8}]
        {"mov rax, 0xFEE000B0; mov dword ptr [rax], 0" if eoi else ""}
        {extra}
        pop rdx; pop rcx; pop rax
        iretq
    """


def install_logging_handler(m, vector, at, **kw):
    m.memory.write(at, assemble(logging_handler(vector, **kw), bits=64, address=at))
    write_gate(m, 64, vector, gate(64, at))


HANDLER_DELAY = 6     # instructions the logging handler retires before its RDTSC


def log(m):
    """(vector, time the event was delivered, pushed RIP) for each logged event."""
    n = m.memory.read_u32(LOG - 8)
    out = []
    for i in range(n):
        v, t, rip = (m.memory.read_u64(LOG + 24 * i + 8 * k) for k in range(3))
        out.append((v, t - HANDLER_DELAY, rip))
    return out


def arm_timer(m, ticks, vector=0x40, periodic=False):
    """APIC timer, divide by 1, `ticks` from now (SDM 11.5.4)."""
    m.apic.write_reg(0x3E0, 0xB)                                   # divide configuration: by 1
    m.apic.write_reg(0x320, vector | (1 << 17 if periodic else 0))
    m.apic.write_reg(0x380, ticks)


def mode_switch_source(stop: str) -> str:
    """A guest that goes from real-address mode to protected mode to IA-32e mode (SDM Vol. 3A
    10.9, 9.8.5) and then runs `stop` in 64-bit mode, with R9 = IA32_EFER."""
    return MODE_SWITCH.replace("{stop}", stop)


MODE_SWITCH = """
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
{stop}
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
