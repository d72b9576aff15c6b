"""SDM Vol. 3C 29.3.2 "EPT Translation Mechanism": the page walk, page sizes and what a
translation carries (memory type, ignore PAT)."""
import pytest

import ept
from ept_tables import HOST, IPAT, PS, RWX, SIZES, WB, Tables

GPA = 0x12345678AB


@pytest.mark.parametrize("levels", [4, 5])
@pytest.mark.parametrize("level", [1, 2, 3])
def test_page_sizes(levels, level):
    """"Bits 47:39 [56:48 with 5 levels] select the PML4E [PML5E] ... If bit 7 of the EPT PDPTE
    [PDE] is 1, it maps a 1-GByte [2-MByte] page; the final physical address is the page frame
    from the entry with the remaining low bits of the guest-physical address" (29.3.2)."""
    t = Tables(levels=levels)
    size = SIZES[level]
    host = 1 << 30 if level == 3 else HOST            # aligned to the page size
    t.leaf(GPA, level, host=host)
    tr = t.e.translate(GPA)
    assert tr.fault is None
    assert tr.host_physical_address == host | (GPA & (size - 1))
    assert tr.page_size == size
    assert [lvl for lvl, _, _ in tr.entries] == list(range(levels, level - 1, -1))


def test_five_levels_use_bits_56_48():
    """With a page-walk length of 5 the PML5E is selected by bits 56:48; with 4, those bits
    take no part in the walk."""
    t = Tables(levels=5)
    a = t.leaf(1 << 48 | 0x5000, 1, host=HOST)
    assert a[5] == t.root + 8
    t4 = Tables(levels=4)
    t4.leaf(0x5000, 1, host=HOST)
    assert t4.e.translate(1 << 48 | 0x5000).host_physical_address == HOST


@pytest.mark.parametrize("memtype", [0, 1, 4, 5, 6])
@pytest.mark.parametrize("ipat", [False, True])
@pytest.mark.parametrize("level", [1, 2, 3])
def test_memory_type_and_ignore_pat_carried(memtype, ipat, level):
    """29.3.7: the EPT memory type is bits 5:3 of the entry that maps the page and bit 6 says
    whether to ignore PAT; both travel with the translation."""
    t = Tables()
    host = (1 << 30) if level == 3 else HOST
    t.leaf(GPA, level, host=host, flags=(memtype << 3) | (IPAT if ipat else 0))
    tr = t.e.translate(GPA)
    assert (tr.memory_type, tr.ignore_pat) == (memtype, ipat)


def test_rights_are_anded_across_levels():
    """The access rights of a translation are the logical AND across the entries used."""
    t = Tables()
    t.path(GPA, 1, HOST | RWX | WB, upper={3: 0b101, 2: 0b011})
    assert t.e.translate(GPA).rights == 0b001


def test_processor_access_through_unit():
    """An access made as the processor makes it returns the host-physical address."""
    t = Tables()
    t.leaf(GPA, 2, host=HOST & ~((2 << 20) - 1))
    assert t.e.access(GPA) == (HOST & ~((2 << 20) - 1)) | (GPA & ((2 << 20) - 1))
    assert t.e.fault is None


def test_enable_rejects_walk_length():
    """Only page-walk lengths 4 and 5 exist (EPTP bits 5:3 = 3 or 4); VM entry checks it, the
    unit refuses others."""
    t = Tables()
    with pytest.raises(ValueError, match="page-walk length"):
        t.e.enable(t.eptp & ~0x38 | (1 << 3))


def test_eptp_helpers():
    """EPTP (25.6.11, Table 25-9): bits 2:0 memory type, 5:3 walk length minus 1, 6 A/D enable,
    N-1:12 the PML4/PML5 table (4-KByte aligned)."""
    p = ept.make_eptp(0x5000, levels=5, ad=True)
    assert p == 0x5000 | (4 << 3) | (1 << 6) | 6
    assert ept.eptp.walk_length(p) == 5 and ept.eptp.root(p) == 0x5000
    with pytest.raises(ValueError):
        ept.make_eptp(0x5008)


def test_ps_leaf_entry_marks():
    """Bit 7 of an EPT PTE is ignored (Table 29-6): a PTE with it set still maps 4 KBytes."""
    t = Tables()
    t.path(GPA, 1, HOST | RWX | WB | PS)
    assert t.e.translate(GPA).host_physical_address == HOST | (GPA & 0xFFF)
