"""SDM Vol. 3C 29.3.3.1 "EPT Misconfigurations", by condition, level and page size, with the
reserved bits of 29.3.2 (Tables 29-1 to 29-6)."""
import pytest

import ept
from ept_tables import HOST, PS, RWX, WB, XU, Tables

GPA = 0x2468ACE000
LEVELS = [4, 3, 2, 1]
# reserved bits: tables (7:3, 51:N), 2-MByte PDE (20:12, 51:N), 1-GByte PDPTE (29:12, 51:N), PTE (51:N)
BEYOND = [39, 40, 45, 51]
TABLE_RSVD = [3, 4, 5, 6] + BEYOND                    # bit 7 too in a PML4E (in a PDPTE, PDE: PS)
RSVD = {("table", 4): TABLE_RSVD + [7], ("table", 3): TABLE_RSVD, ("table", 2): TABLE_RSVD,
        ("page", 3): list(range(12, 30)) + BEYOND, ("page", 2): list(range(12, 21)) + BEYOND,
        ("page", 1): BEYOND}
IGNORED = {("table", lvl): [8, 9, 10, 11, 52, 55, 62, 63] for lvl in (4, 3, 2)}
IGNORED.update({("page", 1): [7, 11, 52, 57, 60, 62, 63], ("page", 2): [11, 52, 62, 63],
                ("page", 3): [11, 52, 62, 63]})


def host_for(level):
    return 1 << 30 if level == 3 else HOST


def put(t, level, value):
    """`value` (its address bits are filled in) as the entry at `level`, the rest RWX."""
    if level == 1 or value & PS:
        t.path(GPA, level, host_for(level) | value)
    else:
        addrs = t.path(GPA, 1, HOST | RWX | WB)
        e = t.entry(addrs[level])
        t.mem.write_u64(addrs[level], (e & ~0xFFF & ~(0xFFF << 52)) | value)


def outcome(t, access="r"):
    r = t.e.access(GPA, access)
    return r if isinstance(r, ept.FaultKind) else "ok"


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("bits", [0b010, 0b110])
def test_write_without_read(level, bits):
    """"Bit 0 of the entry is clear and bit 1 is set": write-only (010b) and write/execute
    (110b) are misconfigurations at every level."""
    t = Tables()
    put(t, level, bits)
    assert outcome(t) == ept.FaultKind.MISCONFIGURATION
    f = t.e.fault
    assert f.level == level and f.qualification == 0 and f.guest_physical_address == GPA


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("supported", [False, True])
def test_execute_only(level, supported):
    """Execute-only (100b) is a misconfiguration when the processor does not support it
    (IA32_VMX_EPT_VPID_CAP bit 0); where it does, a fetch is allowed and a read is a
    violation."""
    t = Tables(execute_only=supported)
    put(t, level, 0b100 | (WB if level == 1 else 0))
    if not supported:
        assert outcome(t, "x") == ept.FaultKind.MISCONFIGURATION
    else:
        assert outcome(t, "x") == "ok"
        assert outcome(t, "r") == ept.FaultKind.VIOLATION


@pytest.mark.parametrize("supported", [False, True])
def test_user_execute_only(supported):
    """With mode-based execute control, bit 10 set with bit 0 clear is an execute-only
    translation: a misconfiguration without execute-only support."""
    t = Tables(execute_only=supported, mode_based_execute=True)
    t.path(GPA, 1, HOST | WB | XU, upper={lvl: RWX | XU for lvl in (4, 3, 2)})
    r = t.e.access(GPA, "x", user=True)
    assert r == (HOST if supported else ept.FaultKind.MISCONFIGURATION)


@pytest.mark.parametrize("kind,level", sorted(RSVD))
def test_reserved_bits(kind, level):
    """A present entry with a reserved bit set is a misconfiguration, "including the setting of
    a bit in the range 51:12 that is beyond the logical processor's physical-address width";
    which bits are reserved depends on the level and on whether the entry maps a page."""
    for bit in RSVD[(kind, level)]:
        t = Tables()
        base = RWX | ((WB | (PS if level > 1 else 0)) if kind == "page" else 0)
        put(t, level, base | (1 << bit))
        assert outcome(t) == ept.FaultKind.MISCONFIGURATION, (kind, level, bit)
        assert t.e.fault.level == level


@pytest.mark.parametrize("kind,level", sorted(IGNORED))
def test_ignored_bits(kind, level):
    """Ignored bits (A/D positions without A/D, 11, 63:52 but the named ones) do not make a
    misconfiguration; bit 7 of an EPT PTE is ignored."""
    for bit in IGNORED[(kind, level)]:
        t = Tables()
        base = RWX | ((WB | (PS if level > 1 else 0)) if kind == "page" else 0)
        put(t, level, base | (1 << bit))
        assert outcome(t) == "ok", (kind, level, bit)


@pytest.mark.parametrize("level", [1, 2, 3])
@pytest.mark.parametrize("memtype", range(8))
def test_memory_type(level, memtype):
    """"The entry is the last one used to translate a guest physical address (either an EPT PDE
    with bit 7 set to 1 or an EPT PTE) and the value of bits 5:3 (EPT memory type) is 2, 3, or
    7": a misconfiguration (the same holds for a 1-GByte PDPTE)."""
    t = Tables()
    put(t, level, RWX | memtype << 3 | (PS if level > 1 else 0))
    expected = ept.FaultKind.MISCONFIGURATION if memtype in (2, 3, 7) else "ok"
    assert outcome(t) == expected


@pytest.mark.parametrize("level,cap", [(2, "pages_2m"), (3, "pages_1g")])
def test_large_page_not_supported(level, cap):
    """Bit 7 of an EPT PDE / PDPTE may be 1 only where 2-MByte / 1-GByte pages are supported
    (A.10 bits 16, 17); otherwise it is a reserved bit."""
    t = Tables(**{cap: False})
    put(t, level, RWX | WB | PS)
    assert outcome(t) == ept.FaultKind.MISCONFIGURATION


@pytest.mark.parametrize("levels", [4, 5])
def test_ps_in_top_levels(levels):
    """Bit 7 is within the reserved bits 7:3 of an EPT PML4E and PML5E: no 512-GByte pages."""
    t = Tables(levels=levels)
    t.path(GPA, levels, RWX | WB | PS)
    assert outcome(t) == ept.FaultKind.MISCONFIGURATION


@pytest.mark.parametrize("level", LEVELS)
def test_not_present_with_reserved_bits_is_a_violation(level):
    """Misconfigurations concern present entries ("the value of bits 2:0 ... is not 000b");
    an entry whose bits 2:0 are 000b is not present whatever its other bits: a violation."""
    t = Tables()
    put(t, level, 0xF8 | (1 << 45) | (3 << 3) | PS)
    assert outcome(t) == ept.FaultKind.VIOLATION


def test_first_misconfigured_entry_wins_over_lower_not_present():
    """The walk meets a misconfigured PDPTE before the not-present PTE below it."""
    t = Tables()
    addrs = t.path(GPA, 1, 0)
    t.mem.write_u64(addrs[3], t.entry(addrs[3]) | (1 << 5))
    assert outcome(t) == ept.FaultKind.MISCONFIGURATION and t.e.fault.level == 3


def test_misconfiguration_beats_missing_permission_above():
    """"An EPT violation occurs when there is no EPT misconfiguration": a PML4E without write
    permission above a misconfigured PTE gives a misconfiguration for a write."""
    t = Tables()
    t.path(GPA, 1, HOST | RWX | (2 << 3), upper={4: 0b101})
    assert outcome(t, "w") == ept.FaultKind.MISCONFIGURATION


def test_explanation_names_the_entry():
    """The fault record names the entry whose contents the manual reserves (29.3.3.1)."""
    t = Tables()
    put(t, 2, RWX | WB | PS | (1 << 13))
    assert t.e.access(GPA) == ept.FaultKind.MISCONFIGURATION
    text = t.e.fault.explain()
    assert "EPT misconfiguration" in text and "EPT PDE" in text
