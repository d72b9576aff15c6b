"""SDM Vol. 3C 29.3.6 "Page-Modification Logging"."""
import ept
from ept_tables import A, D, HOST, PML_PAGE, Tables, guest

PAGES = [0x10000, 0x23000, 0x4567000]


def logged(t, first, last):
    return [t.mem.read_u64(PML_PAGE + 8 * i) for i in range(first, last - 1, -1)]


def test_log_entries_and_index():
    """"Before setting a dirty flag ... the processor checks the PML index ... writes the
    guest-physical address to the page-modification log: to the physical address of the PML
    address plus 8 times the PML index; bits 11:0 of the value written are always 0 ... The
    PML index is decremented.\""""
    t = Tables(ad=True)
    for gpa in PAGES:
        t.leaf(gpa, 1, host=HOST + gpa)
    t.e.set_pml(PML_PAGE, 511)
    for gpa in PAGES:
        t.e.access(gpa | 0x123, "w")
    assert logged(t, 511, 509) == PAGES
    assert t.e.pml_index == 508


def test_only_dirty_transitions_log():
    """Only setting a dirty flag from 0 to 1 logs: reads and writes to a page already dirty
    do not."""
    t = Tables(ad=True)
    t.leaf(PAGES[0], 1)
    t.e.set_pml(PML_PAGE, 511)
    t.e.access(PAGES[0], "r")
    assert t.e.pml_index == 511
    t.e.access(PAGES[0], "w")
    t.e.invalidate(ept.InvEptType.ALL_CONTEXT)
    t.e.access(PAGES[0] + 8, "w")
    assert t.e.pml_index == 510 and logged(t, 511, 511) == [PAGES[0]]


def test_paging_structure_accesses_log():
    """Accesses to guest paging-structure entries are writes for EPT A/D purposes (29.3.5), so
    they dirty and log the page holding the entry."""
    t = Tables(ad=True)
    t.leaf(PAGES[1], 1)
    t.e.set_pml(PML_PAGE, 511)
    t.e.access(PAGES[1] + 0x10, "r", linear_address=0x7000, paging_structure=True)
    assert logged(t, 511, 511) == [PAGES[1]]


def test_log_full():
    """"If the PML index is not in the range 0-511, there is a page-modification log-full event
    ... In this case, the accessed or dirty flag is not set, and the access that triggered the
    event does not occur." The index wraps from 0 to FFFFH after the last entry."""
    t = Tables(ad=True)
    a0 = t.leaf(PAGES[0], 1)
    a1 = t.leaf(PAGES[1], 1, host=HOST + 0x1000)
    t.e.set_pml(PML_PAGE, 0)
    t.e.access(PAGES[0], "w")
    assert t.e.pml_index == 0xFFFF and logged(t, 0, 0) == [PAGES[0]]
    assert t.e.access(PAGES[1], "w") == ept.FaultKind.PML_FULL
    f = t.e.fault
    assert f.kind == ept.FaultKind.PML_FULL and f.guest_physical_address == PAGES[1]
    assert not t.entry(a1[1]) & (A | D) and t.entry(a0[1]) & D
    assert t.e.pml_index == 0xFFFF


def test_guest_writes_logged_then_log_full_stops_the_write():
    """In a running guest: the page walks of its first fetch dirty (and log) its PML4 and PDPT
    pages (accesses treated as writes, 29.3.5); with the log then full, its first store does not
    happen and the log-full event is reported at that instruction. Emptied (index 511), the log
    takes each data page once and the guest finishes."""
    src = "\n".join(f"mov qword ptr [{0x600000 + 0x1000 * i}], {i + 1}" for i in range(3)) + "\nhlt"
    m, b, ex = guest(src, ad=True)
    e = ept.attach(m.cpu)
    m.memory.write(0x8000, bytes(4096))
    e.set_pml(0x8000, 1)
    assert m.cpu.run().reason == "vmexit"
    assert ex.seen[0]["fault"].kind == ept.FaultKind.PML_FULL
    assert ex.seen[0]["fault"].guest_physical_address == 0x600000
    assert [m.memory.read_u64(0x8000 + 8), m.memory.read_u64(0x8000)] == [0x1000, 0x2000]
    assert m.memory.read_u64(0x600000) == 0 and m.cpu.rip == 0x100000
    e.pml_index = 511
    assert m.cpu.run().reason == "hlt"
    assert [m.memory.read_u64(0x8000 + 8 * i) for i in (511, 510, 509)] == [0x600000, 0x601000, 0x602000]
    assert e.pml_index == 508 and m.memory.read_u64(0x602000) == 3
