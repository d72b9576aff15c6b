"""`ept.EptBuilder` (API.md): map, unmap and protect ranges with page sizes, the EPTP, and the
walk it reads back; what it writes follows the entry formats of SDM Vol. 3C 29.3.2."""
import pytest

import x86
import ept
from ept_tables import PS, XU

MB, GB = 1 << 20, 1 << 30


@pytest.fixture
def b():
    m = x86.Machine(memory_size=16 * MB)
    return ept.EptBuilder(m.memory, ept.BumpAllocator(m.memory, 8 * MB, 12 * MB))


def leaf(b, gpa):
    return b.walk(gpa).steps[-1]


@pytest.mark.parametrize("size", [4096, 2 * MB, GB])
def test_map_round_trip(b, size):
    """A mapped page of each size walks to its host address with the entry at the level the
    page size implies (PTE, PDE with bit 7, PDPTE with bit 7)."""
    gpa, hpa = 5 * GB, 3 * GB
    b.map(gpa, hpa, 2 * size, perms="rx", page_size=size, memory_type=4)
    for off in (0, size + 0x123):
        w = b.walk(gpa + off)
        assert w.hpa == hpa + off and w.page_size == size and w.memory_type == 4
        assert w.steps[-1].name == {4096: "EPT PTE", 2 * MB: "EPT PDE", GB: "EPT PDPTE"}[size]
        assert w.steps[-1].permissions == "r-x"
        assert bool(w.steps[-1].value & PS) == (size > 4096)


def test_eptp(b):
    """The EPTP: bits 2:0 memory type of the structures (WB), 5:3 walk length - 1, 6 A/D, and
    the root table."""
    assert b.eptp == b.root | (3 << 3) | 6
    m = x86.Machine(memory_size=16 * MB)
    b5 = ept.EptBuilder(m.memory, ept.BumpAllocator(m.memory, 8 * MB, 9 * MB), levels=5, ad=True)
    assert b5.eptp == b5.root | (4 << 3) | (1 << 6) | 6
    b5.map(1 << 50, 0, 4096)
    assert [s.name for s in b5.walk(1 << 50).steps] == ["EPT PML5E", "EPT PML4E", "EPT PDPTE",
                                                         "EPT PDE", "EPT PTE"]


def test_unmap_splits_a_large_page(b):
    """Unmapping 4 KiB inside a 2-MiB page splits it into a table of 512 PTEs with the same
    attributes; only the one page becomes not present."""
    b.map(2 * MB, 6 * MB, 2 * MB, page_size=2 * MB, memory_type=5)
    b.unmap(2 * MB + 0x5000, 0x1000)
    w = b.walk(2 * MB + 0x5000)
    assert w.hpa is None and "not present" in w.reason and w.steps[-1].name == "EPT PTE"
    for off in (0, 0x4000, 0x6000, 2 * MB - 0x1000):
        w = b.walk(2 * MB + off)
        assert w.hpa == 6 * MB + off and w.page_size == 4096 and w.memory_type == 5


def test_protect_splits_twice(b):
    """Protecting one 4-KiB page of a 1-GiB page splits the PDPTE into 2-MiB PDEs and one of
    them into PTEs; the rest keeps the large pages."""
    b.map(0, 0, GB, page_size=GB)
    b.protect(0x201000, 0x1000, "r")
    assert leaf(b, 0x201000).permissions == "r--" and b.walk(0x201000).page_size == 4096
    assert b.walk(0x202000).page_size == 4096 and leaf(b, 0x202000).permissions == "rwx"
    assert b.walk(0x400000).page_size == 2 * MB
    assert b.walk(0x201abc).hpa == 0x201abc


def test_protect_whole_large_page_keeps_it(b):
    """Protecting a whole 2-MiB page changes its PDE (bit 7 set, Table 29-4) without splitting
    it."""
    b.map(0, 0, 4 * MB, page_size=2 * MB)
    b.protect(2 * MB, 2 * MB, "x")
    w = b.walk(2 * MB)
    assert w.page_size == 2 * MB and w.steps[-1].permissions == "--x"


def test_unmapped_ranges_stay_unmapped(b):
    """Protect and unmap leave a range that has no mapping without one: no table is created."""
    b.protect(0x100000, 0x1000, "r")
    b.unmap(0x100000, 0x1000)
    assert b.walk(0x100000).hpa is None and len(b.walk(0x100000).steps) == 1


def test_user_execute_and_suppress_ve(b):
    """"u" is bit 10 (execute for user-mode linear addresses); suppress #VE is bit 63."""
    b.map(0, 0, 4096, perms="ru", suppress_ve=True)
    v = leaf(b, 0).value
    assert v & XU and v >> 63 and not v & 4


def test_walk_reports_misconfiguration(b):
    """A hand-edited entry: the walk names the SDM's reason."""
    b.map(0, 0, 4096)
    pte = b.walk(0).steps[-1]
    b.memory.write_u64(pte.address, pte.value | (7 << 3))
    w = b.walk(0)
    assert w.hpa is None and "memory type 7" in w.reason
    assert "EPT PTE" in str(w)


def test_checks(b):
    """Pages are aligned to their size (29.3.2: bits 20:12 / 29:12 of a large-page entry are
    reserved); permissions are r, w, x, u; the allocator ends where its range ends."""
    with pytest.raises(ValueError):
        b.map(0x1000, 0, 2 * MB, page_size=2 * MB)
    with pytest.raises(ValueError):
        b.map(0, 0, 4096, perms="rwz")
    with pytest.raises(ValueError):
        b.unmap(0x10, 0x1000)
    alloc = ept.BumpAllocator(b.memory, 0, 0x2000)
    alloc(), alloc()
    with pytest.raises(MemoryError):
        alloc()


def test_builder_tables_drive_the_processor(b):
    """The tables the builder writes are the ones the processor walks."""
    m = x86.Machine(memory_size=16 * MB)
    bb = ept.EptBuilder(m.memory, ept.BumpAllocator(m.memory, 8 * MB, 12 * MB))
    bb.map(0x5000, 0x9000, 0x1000, perms="r")
    e = ept.attach(m.cpu)
    e.enable(bb.eptp)
    assert e.access(0x5123) == 0x9123
    assert e.access(0x5123, "w") == ept.FaultKind.VIOLATION


def test_walk_for_an_access(b):
    """walk(gpa, access) also says whether the entries allow that access."""
    b.map(0, 0, 4096, perms="x")
    assert b.walk(0).hpa == 0
    w = b.walk(0, "r")
    assert w.hpa is None and "read" in w.reason
    assert b.walk(0, "x").hpa == 0


def test_module_walk(b):
    """ept.walk reads any EPT tables in memory, given the EPTP (for debuggers)."""
    b.map(0x3000, 0x7000, 0x1000, perms="rw")
    w = ept.walk(b.memory, b.eptp, 0x3456)
    assert w.hpa == 0x7456 and [s.permissions for s in w.steps] == ["rwx", "rwx", "rwx", "rw-"]
    assert ept.walk(b.memory, b.eptp, 0x3456, "x").hpa is None
