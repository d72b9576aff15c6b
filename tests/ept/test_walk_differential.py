"""The compiled EPT walker (ept/_walk.pyx) against the reference walker written from the SDM's
text (ept/reference.py), on hypothesis-generated EPT paging structures: random entries with
reserved and ignored bits, large pages, missing permissions, random capabilities, A/D flags
and PML. For every access both give the same outcome (host-physical address, memory type,
ignore-PAT and page size; or the kind of fault and the Table 28-7 qualification), read the
same entries, and leave memory the same (accessed/dirty flags, PML entries and index).

SDM Vol. 3C 29.3.2 "EPT Translation Mechanism", 29.3.3 "EPT-Induced VM Exits", 29.3.5
"Accessed and Dirty Flags for EPT", 29.3.6 "Page-Modification Logging", Table 28-7.
"""
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import x86
import ept
from ept import reference

MEMORY = 8 << 20
POOL = 0x100000                  # EPT tables
PML = 0x7000
PHYS_LIMIT = 1 << x86.MAXPHYADDR
OUTCOME = {None: reference.OK, ept.FaultKind.VIOLATION: reference.VIOLATION,
           ept.FaultKind.MISCONFIGURATION: reference.MISCONFIGURATION,
           ept.FaultKind.PML_FULL: reference.PML_FULL}

RIGHTS = st.sampled_from([7] * 24 + [3, 3, 1, 5, 4, 0, 2, 6])
NOISE = st.sampled_from([0] * 72 + [1 << b for b in (3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 20, 21, 29,
                                                     30, 38, 39, 45, 51, 52, 57, 60, 62, 63)])
KINDS = st.sampled_from(["table"] * 8 + ["page"] * 4 + ["absent", "raw"])


@st.composite
def entry(draw, level, new_table):
    """One entry for `level`: ("table", value) pointing at a fresh table, or a final one."""
    kind = draw(KINDS)
    rights = draw(RIGHTS) | (draw(st.sampled_from([0, 0, 1 << 10])))
    noise = draw(NOISE)
    if level > 3 and kind == "page" and draw(st.integers(0, 5)):
        kind = "table"                   # a PML4E / PML5E cannot map a page: mostly a table
    if kind == "table" and level > 1:
        return "table", new_table | rights | noise
    if kind == "absent":
        return "final", draw(st.integers(0, 2 ** 64 - 1)) & ~7 & ~draw(st.sampled_from([0, 1 << 10]))
    if kind == "raw":
        return "final", draw(st.integers(0, 2 ** 64 - 1))
    size = 1 << (12 + 9 * (level - 1))
    host = draw(st.integers(0, PHYS_LIMIT - 1)) & ~(size - 1)
    memtype = draw(st.sampled_from([6, 6, 0, 1, 4, 5, 2, 3, 7]))
    flags = draw(st.sampled_from([0, 0, 1 << 6, 1 << 8, 1 << 9, 3 << 8]))      # IPAT, A, D
    ps = (1 << 7) if level > 1 and draw(st.integers(0, 4)) else 0
    return "final", host | rights | memtype << 3 | flags | ps | noise


@st.composite
def scenario(draw):
    levels = draw(st.sampled_from([4, 5]))
    caps = reference.Capabilities(
        execute_only=draw(st.booleans()), pages_2m=draw(st.integers(0, 4)) > 0,
        pages_1g=draw(st.integers(0, 4)) > 0, advanced_info=draw(st.booleans()),
        mode_based_execute=draw(st.booleans()))
    ad = draw(st.booleans())
    pml = draw(st.one_of(st.none(), st.sampled_from([511, 2, 1, 0, 0xFFFF, 512])))
    gpa_bits = 57 if levels == 5 else 48
    gpas = draw(st.lists(st.integers(0, (1 << gpa_bits) - 1), min_size=1, max_size=4))
    memory, tables = {}, [POOL]
    for gpa in gpas:
        table = POOL
        for level in range(levels, 0, -1):
            address = table + ((gpa >> (12 + 9 * (level - 1))) & 0x1FF) * 8
            if address in memory:
                value, kind = memory[address]
                if kind != "table":
                    break
                table = value & ((1 << x86.MAXPHYADDR) - 1) & ~0xFFF
                continue
            new_table = POOL + 0x1000 * len(tables)
            kind, value = draw(entry(level, new_table))
            memory[address] = (value, kind)
            if kind != "table":
                break
            tables.append(new_table)
            table = new_table
    accesses = draw(st.lists(st.tuples(
        st.sampled_from(range(len(gpas))), st.integers(0, 0xFFF), st.sampled_from("rwx"),
        st.sampled_from([False, False, True]), st.sampled_from([False] * 5 + [True]),
        st.booleans(), st.booleans(), st.booleans()), min_size=1, max_size=8))
    return levels, caps, ad, pml, gpas, memory, accesses


def enable_args(caps):
    cap = (ept.eptp.EPT_PAGE_WALK_4 | ept.eptp.EPT_PAGE_WALK_5
           | (ept.eptp.EPT_EXECUTE_ONLY if caps.execute_only else 0)
           | (ept.eptp.EPT_2MB_PAGE if caps.pages_2m else 0)
           | (ept.eptp.EPT_1GB_PAGE if caps.pages_1g else 0)
           | (ept.eptp.EPT_ADVANCED_EXIT_INFO if caps.advanced_info else 0))
    return dict(ept_vpid_cap=cap, mode_based_execute=caps.mode_based_execute)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario())
def test_compiled_walker_matches_reference(s):
    """For every generated structure and access, the compiled walker and the reference agree
    on the outcome, the qualification, the entries read and every write to memory."""
    levels, caps, ad, pml, gpas, memory, accesses = s
    m = x86.Machine(memory_size=MEMORY)
    for address, (value, _) in memory.items():
        m.memory.write_u64(address, value)
    eptp = ept.make_eptp(POOL, levels, ad)
    unit = ept.attach(m.cpu)
    unit.enable(eptp, **enable_args(caps))
    if pml is not None:
        unit.set_pml(PML, pml)
    for which, offset, kind, pt, nola, user, writable, executable in accesses:
        gpa = (gpas[which] & ~0xFFF) | offset
        linear = None if (pt and nola) else 0x1234000 | offset
        acc = reference.Access(kind, pt, linear, user, writable, executable)
        want = reference.translate(m.memory.read_u64, eptp, gpa, acc, caps,
                                   (PML, unit.pml_index) if pml is not None else None)
        got = unit.translate(gpa, kind, linear_address=linear, paging_structure=pt, user=user,
                             writable=writable, executable=executable, update=True)
        context = (hex(gpa), kind, pt, linear, want.reason)
        assert OUTCOME[got.fault] == want.outcome, context
        assert [(lvl, a) for lvl, a, _ in got.entries] == \
            [(step.level, step.address) for step in want.steps], context
        assert got.rights == want.rights, context
        if want.outcome == reference.VIOLATION:
            assert got.qualification == want.qualification, context
        if want.outcome == reference.OK:
            assert (got.host_physical_address, got.memory_type, got.ignore_pat, got.page_size) == \
                (want.hpa, want.memory_type, want.ignore_pat, want.page_size), context
        written = dict(want.writes)       # the last write to an entry read at two levels wins
        for address, value in written.items():
            assert m.memory.read_u64(address) == value, (context, hex(address))
        for step in want.steps:
            if step.address not in written:
                assert m.memory.read_u64(step.address) == step.value, context
        if pml is not None and want.pml_index is not None:
            assert unit.pml_index == want.pml_index, context
