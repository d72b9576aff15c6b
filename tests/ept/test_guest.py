"""Guests running under EPT: which fault comes first when guest paging and EPT both have
something to say (SDM Vol. 3C 29.3.3: EPT violations "occur only due to an attempt to access
memory with a guest-physical address"; guest paging-structure entries are read with
guest-physical addresses, each before the guest checks it), and what the processor reports."""
import pytest

import ept
from ept_tables import (Q_FETCH, Q_GLA_VALID, Q_READ, Q_READABLE, Q_TRANSLATION,
                        Q_WRITABLE, Q_WRITABLE_LA, guest)
from x86.intercept import DK_EXCEPTION

FAR = 1 << 39                 # linear address in guest PML4 slot 1 (the loader maps slot 0 only)
GUEST_PDPT = 0x9000           # a guest PDPT for slot 1, mapping 1 GiB at 0x600000000 -> 0


def far_guest(src, pdpte=0x83):
    m, b, ex = guest(src)
    m.memory.write_u64(0x1000 + 8, GUEST_PDPT | 0x3)
    m.memory.write(GUEST_PDPT, bytes(4096))
    m.memory.write_u64(GUEST_PDPT, pdpte)                        # 1 GiB page at 0, or not present
    ex.take_exceptions = True
    return m, b, ex


def test_final_access():
    """The guest translation succeeds; its final guest-physical access is refused: bit 8 = 1
    (an access to the translation of the linear address) and the linear address is reported."""
    m, b, ex = guest("mov rax, [0x600123]\nhlt")
    b.unmap(0x600000, 0x1000)
    assert m.cpu.run().reason == "vmexit"
    s = ex.seen[0]
    f = s["fault"]
    assert (f.guest_physical_address, f.guest_linear_address) == (0x600123, 0x600123)
    # the loader's mapping is supervisor, read/write, executable: bits 9 = 0, 10 = 1, 11 = 0
    assert f.qualification == Q_READ | Q_GLA_VALID | Q_TRANSLATION | Q_WRITABLE_LA
    assert s["rip"] == 0x100000 and m.cpu.rip == 0x100000


def test_paging_structure_entry_before_its_checks():
    """The guest PDPTE is read with its guest-physical address before its P flag is examined:
    an EPT violation on that read (bit 8 = 0) comes before any #PF it would give."""
    m, b, ex = far_guest(f"mov rax, {FAR}\nmov rax, [rax]\nhlt", pdpte=0)
    b.unmap(GUEST_PDPT, 0x1000)
    assert m.cpu.run().reason == "vmexit"
    f = ex.seen[0]["fault"]
    assert (f.guest_physical_address, f.guest_linear_address) == (GUEST_PDPT, FAR)
    assert f.qualification == Q_READ | Q_GLA_VALID


def test_guest_page_fault_first():
    """A guest #PF found during the walk comes before the EPT check of the final access (which
    is never made)."""
    m, b, ex = far_guest(f"mov rax, {FAR}\nmov rax, [rax]\nhlt", pdpte=0)
    b.unmap(0, 0x1000)
    assert m.cpu.run().reason == "vmexit"
    assert ex.seen == [dict(vector=14, error=0, rip=0x10000A)]


def test_guest_translation_then_ept():
    """A good guest translation to an EPT-unmapped page: the violation is on the final access."""
    m, b, ex = far_guest(f"mov rax, {FAR + 0x700010}\nmov rax, [rax]\nhlt")
    b.unmap(0x700000, 0x1000)
    assert m.cpu.run().reason == "vmexit"
    f = ex.seen[0]["fault"]
    assert (f.guest_physical_address, f.guest_linear_address) == (0x700010, FAR + 0x700010)
    assert f.qualification & (Q_GLA_VALID | Q_TRANSLATION) == Q_GLA_VALID | Q_TRANSLATION


def test_fetch():
    """An instruction fetch from a page EPT does not let execute: bit 2, rights rw-."""
    m, b, ex = guest("nop\nhlt")
    b.protect(0x100000, 0x1000, "rw")
    assert m.cpu.run().reason == "vmexit"
    f = ex.seen[0]["fault"]
    assert f.qualification == (Q_FETCH | Q_READABLE | Q_WRITABLE | Q_GLA_VALID | Q_TRANSLATION
                               | Q_WRITABLE_LA)
    assert f.guest_linear_address == 0x100000


def test_during_event_delivery():
    """An EPT violation on the IDT while delivering #UD: the processor reports the event being
    delivered (for IDT-vectoring information) and RIP at the UD2; no #DF."""
    m, b, ex = guest("ud2")
    m.cpu.idtr = (0x9000, 0xFFF)
    b.unmap(0x9000, 0x1000)
    assert m.cpu.run().reason == "vmexit"
    s = ex.seen[0]
    assert s["delivering"] == (6, DK_EXCEPTION, None, 0) and s["rip"] == 0x100000
    assert s["fault"].guest_physical_address == 0x9000 + 6 * 16


def test_resume_after_fix():
    """The VMM maps the page and resumes: the instruction runs again and completes."""
    m, b, ex = guest("mov rax, [0x600000]\nhlt")
    m.memory.write_u64(0x600000, 42)
    b.unmap(0x600000, 0x1000)
    assert m.cpu.run().reason == "vmexit"
    b.map(0x600000, 0x600000, 0x1000)
    assert m.cpu.run().reason == "hlt" and m.cpu.rax == 42


@pytest.mark.parametrize("levels,page_size", [(4, 2 << 20), (5, 4096), (5, 1 << 30)])
def test_program_runs(levels, page_size):
    """A loop that loads, stores, calls and returns gives the same result under EPT with any
    walk length and page size."""
    src = """
        mov rcx, 1000
        xor eax, eax
    1:  add rax, rcx
        mov [0x600000 + rcx*8], rax
        call f
        dec rcx
        jnz 1b
        hlt
    f:  add rax, [0x600000 + rcx*8]
        ret
    """
    m, b, ex = guest(src, levels=levels, page_size=page_size)
    assert m.cpu.run().reason == "hlt"
    plain, _, _ = guest(src)
    ept.attach(plain.cpu).disable()
    plain.cpu.run()
    assert m.cpu.rax == plain.cpu.rax and m.memory.read(0x600000, 8008) == plain.memory.read(0x600000, 8008)
