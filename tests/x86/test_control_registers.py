"""SDM Vol. 3A 2.5 "Control Registers", 2.2.1 "Extended Feature Enable Register", Vol. 2B
"MOV—Move to/from Control Registers" (protected-mode exceptions), and 9.8.5 "Initializing IA-32e
Mode"; CPUID consistency (Vol. 2A CPUID).

MOV to CR0 #GP(0): "an attempt to set a reserved bit in CR0[63:32]"; "an attempt to set PG when
PE is 0"; "an attempt to set NW when CD is 0"; "an attempt to clear CR0.PG in 64-bit mode";
"setting PG with EFER.LME = 1 and CR4.PAE = 0". MOV to CR4 #GP(0): reserved bits; clearing PAE
while IA-32e mode is active; changing LA57 in IA-32e mode; setting PCIDE unless in IA-32e mode with
CR3[11:0] = 0. MOV to CR8: bits 63:4 reserved. WRMSR EFER #GP(0): reserved bits; changing LME
while paging is enabled. "IA32_EFER.LMA ... is read only". At CPL > 0 every MOV CR is #GP(0).
"""
import pytest

import x86
from x86.asm import assemble
from x86_guest import long_machine, protected_machine, rec, run

PE, MP, ET, NE, WP, NW, CD, PG = 1, 2, 0x10, 0x20, 0x10000, 1 << 29, 1 << 30, 1 << 31
PAE, PSE, PGE, LA57, PCIDE, SMEP, SMAP, VMXE = 0x20, 0x10, 0x80, 0x1000, 0x20000, 1 << 20, 1 << 21, 1 << 13
EFER = 0xC0000080
LME, LMA, NXE, SCE = 0x100, 0x400, 0x800, 1


def real():
    m = x86.Machine(memory_size=4 << 20)
    m.load(b"\xf4", mode="real")
    return m


def prot():
    m = x86.Machine(memory_size=4 << 20)
    m.load(b"\xf4", mode="protected")
    return m


def long():
    m = x86.Machine(memory_size=4 << 20)
    m.load(b"\xf4", mode="long")
    return m


GP_CASES = [
    ("CR0 bit 32", real, "cr0", lambda m: m.cpu.cr0 | (1 << 32)),
    ("PG without PE", real, "cr0", lambda m: PG | ET),
    ("NW without CD", prot, "cr0", lambda m: m.cpu.cr0 | NW),
    ("clear PG in 64-bit mode", long, "cr0", lambda m: m.cpu.cr0 & ~PG),
    ("clear PE in 64-bit mode", long, "cr0", lambda m: m.cpu.cr0 & ~(PG | PE)),
    ("CR4 reserved bit 31", prot, "cr4", lambda m: 1 << 31),
    ("CR4 reserved bit 24", prot, "cr4", lambda m: 1 << 24),
    ("CR4.VMXE without VMX", prot, "cr4", lambda m: VMXE),
    ("clear PAE in IA-32e mode", long, "cr4", lambda m: m.cpu.cr4 & ~PAE),
    ("set LA57 in IA-32e mode", long, "cr4", lambda m: m.cpu.cr4 | LA57),
    ("PCIDE outside IA-32e mode", prot, "cr4", lambda m: PCIDE),
    ("CR8 bit 4", long, "cr8", lambda m: 0x10),
    ("CR3 beyond MAXPHYADDR in IA-32e mode", long, "cr3", lambda m: 1 << 40),
]


@pytest.mark.parametrize("name,mk,reg,value", GP_CASES, ids=[c[0] for c in GP_CASES])
def test_mov_cr_gp(name, mk, reg, value):
    m = mk()
    before = m.cpu.get_sys(reg)
    with pytest.raises(x86.GP) as e:
        setattr(m.cpu, reg, value(m))
    assert e.value.error_code == 0
    assert m.cpu.get_sys(reg) == before                 # a faulting MOV changes nothing


def test_pcide_with_nonzero_pcid():
    m = long()
    m.cpu.cr3 = m.cpu.cr3 | 5
    with pytest.raises(x86.GP):
        m.cpu.cr4 = m.cpu.cr4 | PCIDE


def test_ia32e_activation_requires_pae():
    """9.8.5: setting CR0.PG with EFER.LME = 1 and CR4.PAE = 0 is #GP(0)."""
    m = prot()
    m.cpu.efer = LME
    with pytest.raises(x86.GP):
        m.cpu.cr0 = m.cpu.cr0 | PG


def test_ia32e_activation_sets_lma():
    m = prot()
    m.cpu.cr4 = PAE
    m.cpu.cr3 = 0x1000
    m.memory.write_u64(0x1000, 0)
    m.cpu.efer = LME
    assert not m.cpu.efer & LMA
    m.cpu.cr0 = m.cpu.cr0 | PG
    assert m.cpu.efer & LMA


@pytest.mark.parametrize("name,mk,value", [
    ("reserved bit 1", prot, 2),
    ("reserved bit 9", prot, 1 << 9),
    ("reserved bit 63", prot, 1 << 63),
    ("LME change with paging on", long, SCE | NXE),
])
def test_wrmsr_efer_gp(name, mk, value):
    m = mk()
    with pytest.raises(x86.GP):
        m.cpu.wrmsr(EFER, value)


def test_efer_lma_read_only():
    m = prot()
    m.cpu.wrmsr(EFER, LMA | SCE)
    assert m.cpu.rdmsr(EFER) == SCE


@pytest.mark.parametrize("src", ["mov rax, cr0", "mov cr0, rax", "mov rax, cr3", "mov cr3, rax",
                                 "mov cr8, rax", "mov rax, dr7", "rdmsr", "wrmsr", "hlt", "lgdt [rax]",
                                 "invlpg [rax]", "cli"])
def test_privileged_at_cpl3(src):
    """6.15 / Vol. 2: privileged instructions at CPL 3 are #GP(0) (CLI: CPL > IOPL)."""
    from x86_guest import paging_machine
    m, pt = paging_machine("4level", "r", user=True, src=src + "\nud2")
    m.cpu.rax = 0x100000
    r = run(m)
    assert (r["vector"], r["error"]) == (13, 0)


def test_guest_mov_cr_gp_is_delivered():
    """A guest MOV CR that breaks a rule raises #GP(0) inside the guest, at that instruction."""
    m = long_machine("mov rax, cr4\nand eax, ~0x20\nmov cr4, rax\nud2")
    r = run(m)
    assert (r["vector"], r["error"], r["rip"]) == (13, 0, 0x100000 + 3 + 3)


# --- CPUID and the registers it describes --------------------------------------------------

def cpuid(m, leaf, sub=0):
    code = assemble("cpuid\nhlt")
    m.memory.write(0x100000, code)
    m.cpu.rip = 0x100000
    m.cpu.rax, m.cpu.rcx = leaf, sub
    m.cpu.run(max_instructions=5)
    return tuple(getattr(m.cpu, r) & 0xFFFFFFFF for r in ("rax", "rbx", "rcx", "rdx"))


def test_cpuid_consistency():
    """Each advertised feature is usable; each CR4/EFER bit without its feature is reserved."""
    m = long()
    max_leaf = cpuid(m, 0)[0]
    max_ext = cpuid(m, 0x80000000)[0]
    assert max_leaf >= 7 and max_ext >= 0x80000008
    _, _, ecx1, edx1 = cpuid(m, 1)
    _, ebx7, ecx7, _ = cpuid(m, 7)
    _, _, ecx81, edx81 = cpuid(m, 0x80000001)
    assert edx81 & (1 << 29)                           # LM
    phys = cpuid(m, 0x80000008)[0] & 0xFF
    assert phys == x86.MAXPHYADDR
    valid = m.cpu.get_sys("cr4_valid")
    for bit, (reg, feat) in {PSE: (edx1, 3), PAE: (edx1, 6), PGE: (edx1, 13), SMEP: (ebx7, 7),
                             SMAP: (ebx7, 20), LA57: (ecx7, 16), PCIDE: (ecx1, 17),
                             1 << 18: (ecx1, 26)}.items():
        assert bool(valid & bit) == bool(reg & (1 << feat)), hex(bit)
    assert bool(m.cpu.get_sys("efer_valid") & NXE) == bool(edx81 & (1 << 20))
    assert bool(m.cpu.get_sys("efer_valid") & SCE) == bool(edx81 & (1 << 11))


def test_cpuid_osxsave_reflects_cr4():
    m = long()
    assert not cpuid(m, 1)[2] & (1 << 27)
    m.cpu.cr4 = m.cpu.cr4 | (1 << 18)
    assert cpuid(m, 1)[2] & (1 << 27)
