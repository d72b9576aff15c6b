"""SDM Vol. 3A 4.7 "Page-Fault Exceptions" (Figure 4-12) and 4.6 "Access Rights".

"P flag (bit 0): 0 = the fault was caused by a non-present page; 1 = by a page-level protection
violation. W/R (bit 1): 0 = a read, 1 = a write. U/S (bit 2): 0 = a supervisor-mode access,
1 = a user-mode access. RSVD (bit 3): 1 = a reserved bit set to 1 in some paging-structure entry.
I/D (bit 4): 1 = an instruction fetch. This flag is set only if CR4.SMEP = 1 or if both PAE
paging (or 4-level/5-level paging) is in use and IA32_EFER.NXE = 1." CR2 holds the linear address.
"""
import pytest

from x86_guest import CODE, P, RW, US, XD, PS, TARGETS, TARGET_PA, paging_machine, run

MODES = ["32bit", "pae", "4level", "5level"]
BITS = {"32bit": 32, "pae": 32, "4level": 64, "5level": 64}
ID = 0x10

# (name, access r/w/x, user, leaf flags, kwargs, expected error code or None = no fault)
CASES = [
    ("read not present", "r", False, 0, {}, 0),
    ("write not present", "w", False, 0, {}, 2),
    ("user read not present", "r", True, 0, {}, 4),
    ("user write not present", "w", True, 0, {}, 6),
    ("read", "r", False, P, {}, None),
    ("CPL0 write read-only WP=0", "w", False, P, {"wp": False}, None),
    ("CPL0 write read-only WP=1", "w", False, P, {"wp": True}, 3),
    ("CPL0 write user read-only WP=0", "w", False, P | US, {"wp": False}, None),
    ("CPL3 write read-only WP=0", "w", True, P | US, {"wp": False}, 7),
    ("CPL3 write read-only WP=1", "w", True, P | US, {"wp": True}, 7),
    ("CPL3 read supervisor", "r", True, P | RW, {}, 5),
    ("CPL3 write supervisor", "w", True, P | RW, {}, 7),
    ("CPL3 fetch supervisor", "x", True, P | RW, {}, "5+id"),
    ("CPL3 write user", "w", True, P | RW | US, {}, None),
    ("SMEP: CPL0 fetch from user page", "x", False, P | RW | US, {"smep": True}, 1 | ID),
    ("SMEP off: CPL0 fetch from user page", "x", False, P | RW | US, {}, None),
    ("SMEP: CPL0 read of user page", "r", False, P | RW | US, {"smep": True}, None),
    ("SMAP AC=0: CPL0 read of user page", "r", False, P | RW | US, {"smap": True}, 1),
    ("SMAP AC=0: CPL0 write of user page", "w", False, P | RW | US, {"smap": True}, 3),
    ("SMAP AC=1: CPL0 read of user page", "r", False, P | RW | US, {"smap": True, "ac": True}, None),
    ("SMAP AC=1: CPL0 write of user page", "w", False, P | RW | US, {"smap": True, "ac": True}, None),
    ("SMAP AC=1: CPL0 write of user read-only page WP=1", "w", False, P | US,
     {"smap": True, "ac": True}, 3),
    ("SMAP: CPL0 fetch from user page", "x", False, P | RW | US, {"smap": True}, None),
    ("SMAP: CPL3 read of user page", "r", True, P | RW | US, {"smap": True}, None),
    ("not-present fetch", "x", False, 0, {}, "0+id"),
    ("not-present fetch with SMEP", "x", False, 0, {"smep": True}, ID),
]


def expected(err, mode, kw):
    if isinstance(err, str):
        base = int(err.split("+")[0])
        nx_on = mode != "32bit" and kw.get("nxe", True)
        return base | (ID if (nx_on or kw.get("smep")) else 0)
    return err


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name,access,user,flags,kw,err", CASES, ids=[c[0] for c in CASES])
def test_error_code(mode, name, access, user, flags, kw, err):
    TARGET = TARGETS[mode]
    m, pt = paging_machine(mode, access, user=user, **kw)
    pt.map(TARGET, TARGET_PA, flags)
    r = run(m, BITS[mode])
    err = expected(err, mode, kw)
    if err is None:
        assert r["vector"] == 6, r
        return
    assert (r["vector"], r["error"], r["cr2"]) == (14, err, TARGET)
    assert r["rip"] == (TARGET if access == "x" else CODE)     # faults report the instruction


@pytest.mark.parametrize("mode", ["pae", "4level", "5level"])
@pytest.mark.parametrize("access,user,err", [("x", False, 0x11), ("x", True, 0x15), ("r", False, None)])
def test_nx(mode, access, user, err):
    """4.6.2: with IA32_EFER.NXE = 1, instructions may not be fetched from a page whose XD is 1
    (in any paging-structure entry on the path); data accesses are unaffected."""
    TARGET = TARGETS[mode]
    m, pt = paging_machine(mode, access, user=user)
    pt.map(TARGET, TARGET_PA, P | RW | US | XD)
    r = run(m, BITS[mode])
    if err is None:
        assert r["vector"] == 6
    else:
        assert (r["vector"], r["error"], r["cr2"]) == (14, err, TARGET)


@pytest.mark.parametrize("mode", ["4level", "5level"])
def test_nx_in_upper_level(mode):
    """4.6.2: XD in a PDE applies to every page under it."""
    TARGET = TARGETS[mode]
    m, pt = paging_machine(mode, "x")
    pt.map(TARGET, TARGET_PA, P | RW)
    pt.set_upper(TARGET, 2, set_=XD)
    r = run(m, 64)
    assert (r["vector"], r["error"]) == (14, 0x11)


@pytest.mark.parametrize("mode", ["pae", "4level"])
def test_xd_reserved_without_nxe(mode):
    """Table 4-11/4-19: bit 63 (XD) is reserved when IA32_EFER.NXE = 0; I/D stays 0 (no NXE)."""
    TARGET = TARGETS[mode]
    m, pt = paging_machine(mode, "x", nxe=False)
    pt.map(TARGET, TARGET_PA, P | RW | XD)
    r = run(m, BITS[mode])
    assert (r["vector"], r["error"], r["cr2"]) == (14, 0x9, TARGET)


# reserved bits by level: (mode, level, bits to set, page size of the leaf)
RSVD = [
    ("4level", 1, 1 << 39, 4096),              # PTE: bits 51:MAXPHYADDR (MAXPHYADDR = 39)
    ("4level", 1, 1 << 51, 4096),
    ("4level", 2, 1 << 40, 4096),              # PDE pointing to a PT
    ("4level", 3, 1 << 45, 4096),              # PDPTE
    ("4level", 4, 1 << 39, 4096),              # PML4E
    ("4level", 4, PS, 4096),                   # PS is reserved in a PML4E
    ("4level", 2, 1 << 13, 2 << 20),           # 2 MiB PDE: bits 20:13
    ("4level", 2, 1 << 20, 2 << 20),
    ("4level", 3, 1 << 13, 1 << 30),           # 1 GiB PDPTE: bits 29:13
    ("4level", 3, 1 << 29, 1 << 30),
    ("5level", 5, 1 << 40, 4096),              # PML5E
    ("5level", 5, PS, 4096),
    ("pae", 1, 1 << 39, 4096),
    ("pae", 2, 1 << 13, 2 << 20),
    ("pae", 1, 1 << 62, 4096),
    ("32bit", 2, 1 << 21, 4 << 20),            # 4 MiB PDE: bit 21
]


@pytest.mark.parametrize("mode,level,bad,size", RSVD)
@pytest.mark.parametrize("access", ["r", "w"])
def test_reserved_bits(mode, level, bad, size, access):
    """4.7: RSVD = 1 and P = 1 when a reserved bit is set in any entry used for the translation."""
    TARGET = TARGETS[mode]
    m, pt = paging_machine(mode, access)
    pt.map(TARGET, 0x400000 if size > 4096 and mode != "4level" else
           (TARGET_PA if size == 4096 else (0 if size == 1 << 30 else 0x400000)), P | RW, size=size)
    if level == 1 or (level == 2 and size > 4096) or (level == 3 and size == 1 << 30):
        pt.set_leaf(TARGET, pt.leaf(TARGET, level) | bad, level)
    else:
        pt.set_upper(TARGET, level, set_=bad)
    r = run(m, BITS[mode])
    assert (r["vector"], r["error"], r["cr2"]) == (14, 9 | (2 if access == "w" else 0), TARGET)


@pytest.mark.parametrize("level", [1, 2, 3, 4])
@pytest.mark.parametrize("access,user,err", [("r", False, 0), ("w", False, 2), ("r", True, 4),
                                             ("x", False, 0x10)])
def test_not_present_each_level(level, access, user, err):
    """4.5.4: a translation whose entry at any level has P = 0 faults with P = 0 in the error code."""
    TARGET = TARGETS["4level"]
    m, pt = paging_machine("4level", access, user=user)
    pt.map(TARGET, TARGET_PA, P | RW | US)
    if level == 1:
        pt.set_leaf(TARGET, 0)
    else:
        pt.set_upper(TARGET, level, clear=P)
    r = run(m, 64)
    assert (r["vector"], r["error"], r["cr2"]) == (14, err, TARGET)


@pytest.mark.parametrize("level", [2, 3])
def test_pae_not_present(level):
    TARGET = TARGETS["pae"]
    m, pt = paging_machine("pae", "r")
    pt.map(TARGET, TARGET_PA, P | RW)
    pt.set_upper(TARGET, 2, clear=P) if level == 2 else None
    if level == 3:
        # a PDPTE with P = 0 needs a CR3 load to be seen (4.4.1)
        pt.set_upper(TARGET, 3, clear=P)
        m.cpu.cr3 = pt.root
    r = run(m, 32)
    assert (r["vector"], r["error"], r["cr2"]) == (14, 0, TARGET)
