"""SDM Vol. 3C 29.3.5 "Accessed and Dirty Flags for EPT"."""
import pytest

import ept
from ept_tables import A, D, HOST, WB, Tables

GPA = 0x13579BDF000


def entries(t, addrs):
    return {lvl: t.entry(a) for lvl, a in addrs.items()}


@pytest.mark.parametrize("level", [1, 2, 3])
def test_read_sets_accessed_everywhere(level):
    """"Whenever the processor uses an EPT paging-structure entry as part of guest-physical-
    address translation, it sets the accessed flag in that entry (if it is not already set)."
    A read sets no dirty flag."""
    t = Tables(ad=True)
    addrs = t.leaf(GPA, level, host=1 << 30 if level == 3 else HOST)
    t.e.access(GPA, "r")
    for lvl, e in entries(t, addrs).items():
        assert e & A and not e & D, lvl


@pytest.mark.parametrize("level", [1, 2, 3])
def test_write_sets_dirty_in_the_entry_that_maps_the_page(level):
    """"Whenever there is a write to a guest-physical address, the processor sets the dirty flag
    (if it is not already set) in the EPT paging-structure entry that identifies the final
    physical address for the guest-physical address (either an EPT PTE or an EPT paging-structure
    entry in which bit 7 is 1)"; bit 9 of the entries above it is ignored and left alone."""
    t = Tables(ad=True)
    addrs = t.leaf(GPA, level, host=1 << 30 if level == 3 else HOST)
    t.e.access(GPA, "w")
    got = entries(t, addrs)
    assert got[level] & (A | D) == A | D
    assert all(not e & D for lvl, e in got.items() if lvl != level)


def test_flags_off_without_eptp_bit_6():
    """Without EPTP bit 6 the processor sets no EPT accessed or dirty flag."""
    t = Tables(ad=False)
    addrs = t.leaf(GPA, 1)
    before = entries(t, addrs)
    t.e.access(GPA, "w")
    assert entries(t, addrs) == before


@pytest.mark.parametrize("kind", ["r", "w"])
def test_guest_paging_structure_access_is_a_write(kind):
    """"When accessed and dirty flags for EPT are enabled, processor accesses to guest
    paging-structure entries are treated as writes. Thus, such an access will cause the
    processor to set the dirty flag in the EPT paging-structure entry that identifies the final
    physical address for the guest paging-structure entry.\""""
    t = Tables(ad=True)
    addrs = t.leaf(GPA, 1)
    t.e.access(GPA, kind, linear_address=0x1000, paging_structure=True)
    assert t.entry(addrs[1]) & (A | D) == A | D


def test_pdpte_loads_do_not_set_dirty():
    """"This does not apply to loads of the PDPTE registers for PAE paging by the MOV to CR
    instruction ... Those loads of guest PDPTEs are treated as reads and do not cause the
    processor to set the dirty flag in any EPT paging-structure entry.\""""
    t = Tables(ad=True)
    addrs = t.leaf(GPA, 1)
    t.e.access(GPA, "r", linear_address=None, paging_structure=True)
    assert t.entry(addrs[1]) & (A | D) == A


def test_no_flags_on_a_violation():
    """A refused access sets no flag (the walker sets A/D only for accesses that translate)."""
    t = Tables(ad=True)
    addrs = t.path(GPA, 1, HOST | WB | 0b001)
    assert t.e.access(GPA, "w") == ept.FaultKind.VIOLATION
    assert all(not e & (A | D) for e in entries(t, addrs).values())


def test_write_through_a_cached_clean_mapping_sets_dirty():
    """A mapping cached by a read is reused for reads, but a later write still sets the dirty
    flag: the processor walks again to set it."""
    t = Tables(ad=True)
    addrs = t.leaf(GPA, 1)
    t.e.access(GPA, "r")
    walks = t.e.stats["walks"]
    t.e.access(GPA, "r")
    assert t.e.stats["walks"] == walks
    t.e.access(GPA, "w")
    assert t.entry(addrs[1]) & D and t.e.stats["walks"] == walks + 1
    t.e.access(GPA, "w")
    assert t.e.stats["walks"] == walks + 1


def test_guest_run_sets_dirty_on_its_page_tables():
    """A guest under EPT with A/D flags: its page walks dirty the EPT entries mapping its page
    tables (accesses treated as writes), its data writes dirty the data page, its reads do not."""
    import x86
    from x86.asm import assemble
    m = x86.Machine(memory_size=32 << 20)
    m.load(assemble("mov rax, [0x600000]\nmov [0x700000], rax\nhlt", address=0x100000), address=0x100000)
    b = ept.EptBuilder(m.memory, ept.BumpAllocator(m.memory, 0x1000000, 0x1100000), ad=True)
    b.identity(16 << 20, page_size=4096)
    ept.attach(m.cpu).enable(b.eptp)
    assert m.cpu.run().reason == "hlt"
    d = {gpa: b.walk(gpa).steps[-1].value & (A | D) for gpa in (0x1000, 0x2000, 0x600000, 0x700000, 0x100000)}
    assert d == {0x1000: A | D, 0x2000: A | D, 0x600000: A, 0x700000: A | D, 0x100000: A}
