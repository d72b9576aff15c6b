"""SDM Vol. 3C 29.3.3.2 "EPT Violations" and 28.2.1 Table 28-7 "Exit Qualification for EPT
Violations": the access matrix (not present / R / RW / X-only / RWX x read / write / fetch) at
every level and page size, with the exact qualification and addresses."""
import pytest

import ept
from ept_tables import (HOST, Q_EXECUTABLE, Q_FETCH, Q_GLA_VALID, Q_NX_LA, Q_READ, Q_READABLE,
                        Q_TRANSLATION, Q_USER_EXECUTABLE, Q_USER_LA, Q_WRITABLE_LA,
                        Q_WRITE, RWX, SIZES, WB, PS, XU, Tables)

GPA = 0x7654321ABC
LA = 0xFFFF800012345ABC
PERMS = {"not present": 0, "R": 0b001, "RW": 0b011, "X-only": 0b100, "RWX": 0b111}
ACCESS_BIT = {"r": Q_READ, "w": Q_WRITE, "x": Q_FETCH}
NEED = {"r": 0b001, "w": 0b010, "x": 0b100}
# (page level, level of the entry that carries the permissions under test)
ALL = {level: RWX | XU for level in (5, 4, 3, 2)}     # tables allowing user-mode execute too
PLACES = [(page, where) for page in (1, 2, 3) for where in range(4, page - 1, -1)]


def build(page, where, perms):
    t = Tables()
    host = 1 << 30 if page == 3 else HOST
    leaf = host | WB | (PS if page > 1 else 0) | (perms if where == page else RWX)
    t.path(GPA, page, leaf, upper={where: perms} if where != page else None)
    return t, host | (GPA & (SIZES[page] - 1))


@pytest.mark.parametrize("page,where", PLACES)
@pytest.mark.parametrize("perms", PERMS)
@pytest.mark.parametrize("access", ["r", "w", "x"])
def test_access_matrix(page, where, perms, access):
    """An EPT violation occurs when an entry on the way is not present (bits 2:0 = 000b), or the
    access is a data read / data write / instruction fetch and bit 0 / 1 / 2 is clear in any
    entry used (29.3.3.2). Its qualification: bit 0/1/2 the access type, bits 3-5 the AND of
    bits 0-2 over the entries used, bit 7 guest linear address valid, bit 8 the access was to
    the translation of the linear address, bits 9-11 (advanced information) the linear address
    is user-mode / writable / execute-disable (Table 28-7). GUEST_PHYSICAL_ADDRESS and
    GUEST_LINEAR_ADDRESS are the addresses of the access."""
    bits = PERMS[perms]
    t, hpa = build(page, where, bits)
    r = t.e.access(GPA, access, linear_address=LA)
    if bits & NEED[access]:
        assert r == hpa and t.e.fault is None
        return
    assert r == ept.FaultKind.VIOLATION
    f = t.e.fault
    assert f.kind == ept.FaultKind.VIOLATION
    assert (f.guest_physical_address, f.guest_linear_address) == (GPA, LA)
    rights = bits if bits else 0          # AND with RWX elsewhere; 0 past a not-present entry
    assert f.qualification == (ACCESS_BIT[access] | rights << 3 | Q_GLA_VALID | Q_TRANSLATION
                               | Q_USER_LA | Q_WRITABLE_LA)
    # the walk stops at a not-present entry; otherwise it reaches the entry that maps the page
    assert f.level == (where if not bits else page)


def test_not_present_entry_ends_the_walk():
    """A not-present entry ends the walk: entries below it are not read."""
    t, _ = build(1, 3, 0)
    tr = t.e.translate(GPA)
    assert [lvl for lvl, _, _ in tr.entries] == [4, 3]
    assert tr.fault == ept.FaultKind.VIOLATION


def test_qualification_linear_address_rights():
    """Table 28-7 bits 9-11: 0 if the linear address is supervisor-mode, read-only, executable
    under guest paging; 1 for user-mode, read/write, execute-disable."""
    t, _ = build(1, 1, 0b001)
    t.e.access(GPA, "w", linear_address=LA, user=False, writable=False, executable=False)
    assert t.e.fault.qualification == Q_WRITE | Q_READABLE | Q_GLA_VALID | Q_TRANSLATION | Q_NX_LA


def test_no_advanced_information():
    """Without advanced VM-exit information (A.10 bit 22) bits 9-11 are not reported."""
    t = Tables(advanced_info=False)
    t.path(GPA, 1, HOST | WB | 0b001)
    t.e.access(GPA, "w", linear_address=LA)
    assert t.e.fault.qualification == Q_WRITE | Q_READABLE | Q_GLA_VALID | Q_TRANSLATION


@pytest.mark.parametrize("ad", [False, True])
@pytest.mark.parametrize("kind", ["r", "w"])
def test_paging_structure_access(ad, kind):
    """Reads of guest paging structures are data reads and A/D updates data writes; with EPT A/D
    flags on (EPTP bit 6) every access to a guest paging-structure entry is treated as a write
    and a violation "sets both bit 0 and bit 1" (Table 28-7 note). Bit 8 is 0: the access was to
    a paging-structure entry, so bits 9-11 are not given."""
    t = Tables(ad=ad)
    t.path(GPA, 1, HOST | WB | 0b001)                      # read-only
    r = t.e.access(GPA, kind, linear_address=LA, paging_structure=True)
    if kind == "r" and not ad:
        assert r == HOST | (GPA & 0xFFF)
        return
    q = (Q_READ | Q_WRITE) if ad else Q_WRITE
    assert t.e.fault.qualification == q | Q_READABLE | Q_GLA_VALID
    assert t.e.fault.guest_linear_address == LA


@pytest.mark.parametrize("ad", [False, True])
def test_pdpte_load(ad):
    """PDPTE loads by MOV to CR (PAE paging) are reads without a linear address: bit 7 is 0
    ("valid for all EPT violations except those resulting from an attempt to load the guest
    PDPTEs") and, even with EPT A/D flags, they are reads (29.3.5)."""
    t = Tables(ad=ad)
    t.path(GPA, 1, HOST | WB | 0b100)                      # execute-only: no read
    assert t.e.access(GPA, "r", linear_address=None, paging_structure=True) == ept.FaultKind.VIOLATION
    f = t.e.fault
    assert f.qualification == Q_READ | Q_EXECUTABLE and f.guest_linear_address is None
    t.path(GPA, 1, HOST | WB | 0b001)
    t.e.invalidate(ept.InvEptType.ALL_CONTEXT)
    assert t.e.access(GPA, "r", linear_address=None, paging_structure=True) == HOST | (GPA & 0xFFF)


@pytest.mark.parametrize("user", [False, True])
@pytest.mark.parametrize("x,xu", [(0, 0), (1, 0), (0, 1), (1, 1)])
def test_mode_based_execute(user, x, xu):
    """With mode-based execute control, a fetch is prevented if the linear address is
    supervisor-mode and bit 2 is clear, or user-mode and bit 10 is clear, in any entry used
    (29.3.3.2); bit 5 of the qualification is then the AND of bit 2 and bit 6 the AND of bit 10
    (Table 28-7)."""
    t = Tables(mode_based_execute=True)
    t.path(GPA, 1, HOST | WB | 0b001 | (0b100 if x else 0) | (XU if xu else 0), upper=ALL)
    r = t.e.access(GPA, "x", linear_address=LA, user=user)
    allowed = xu if user else x
    if allowed:
        assert r == HOST | (GPA & 0xFFF)
        return
    assert t.e.fault.qualification == (Q_FETCH | Q_READABLE | (Q_EXECUTABLE if x else 0)
                                       | (Q_USER_EXECUTABLE if xu else 0) | Q_GLA_VALID
                                       | Q_TRANSLATION | (Q_USER_LA if user else 0) | Q_WRITABLE_LA)


def test_mode_based_execute_presence():
    """With mode-based execute control an entry whose bits 2:0 are 0 but bit 10 is 1 is
    present (29.3.2); without it, the same entry is not present."""
    t = Tables(mode_based_execute=True)
    t.path(GPA, 1, HOST | WB | XU, upper=ALL)
    assert t.e.access(GPA, "x", linear_address=LA, user=True) == HOST | (GPA & 0xFFF)
    t2 = Tables()
    t2.path(GPA, 1, HOST | WB | XU)
    assert t2.e.access(GPA, "x", linear_address=LA, user=True) == ept.FaultKind.VIOLATION
    assert t2.e.fault.level == 1 and t2.e.fault.qualification & 0x38 == 0


def test_fault_explanation():
    """The fault explains itself with the access type and the rights of Table 28-7 bits 0-5."""
    t, _ = build(1, 2, 0b001)
    t.e.access(GPA, "w", linear_address=LA)
    text = t.e.fault.explain()
    assert "EPT violation: data write" in text and hex(GPA) in text and "r--" in text
