"""SDM Vol. 3C 29.4 "Caching Translation Information": guest-physical mappings tagged by EP4TA
(29.4.1), their use (29.4.2) and invalidation by INVEPT and by EPT violations (29.4.3.1)."""
import ept
from ept_tables import HOST, RWX, WB, Tables, guest

GPA = 0x5000
OTHER = HOST + 0x10000
READER = f"mov rax, [{0x600000}]\nhlt"


def test_stale_mapping_until_invept():
    """"A processor may use cached guest-physical mappings even if the EPT paging structures
    have changed": an edit without INVEPT leaves the old translation in use; INVEPT
    single-context for the EPTP removes it."""
    t = Tables()
    addrs = t.leaf(GPA, 1, host=HOST)
    assert t.e.access(GPA) == HOST
    t.mem.write_u64(addrs[1], OTHER | RWX | WB)
    assert t.e.access(GPA) == HOST                           # stale
    t.e.invalidate(ept.InvEptType.SINGLE_CONTEXT, t.eptp)
    assert t.e.access(GPA) == OTHER


def test_single_context_spares_other_ep4tas():
    """INVEPT single-context invalidates the mappings associated with the EP4TA of its EPTP
    only; all-context invalidates mappings of every EP4TA. Mappings are tagged: switching
    EPTPs back and forth finds the old ones."""
    t = Tables()
    addrs = t.leaf(GPA, 1, host=HOST)
    assert t.e.access(GPA) == HOST
    other = ept.EptBuilder(t.mem, t.alloc)
    other.map(GPA, OTHER, 0x1000)
    t.e.enable(other.eptp, t.cap)
    assert t.e.access(GPA) == OTHER
    t.mem.write_u64(addrs[1], (OTHER + 0x1000) | RWX | WB)
    t.e.invalidate(ept.InvEptType.SINGLE_CONTEXT, other.eptp)
    t.e.enable(t.eptp, t.cap)
    assert t.e.access(GPA) == HOST                           # still the first EP4TA's mapping
    t.e.invalidate(ept.InvEptType.ALL_CONTEXT)
    assert t.e.access(GPA) == OTHER + 0x1000


def test_violation_from_a_cached_mapping_then_retry():
    """A cached mapping may refuse an access the edited entry would allow (the processor is not
    required to walk again); the EPT violation invalidates the mappings for its guest-physical
    address, so the retry uses the edited entry."""
    t = Tables()
    addrs = t.path(GPA, 1, HOST | WB | 0b001)
    assert t.e.access(GPA, "r") == HOST
    t.mem.write_u64(addrs[1], HOST | WB | RWX)
    assert t.e.access(GPA, "w") == ept.FaultKind.VIOLATION
    assert t.e.fault.level == 0 and t.e.fault.qualification & 0x38 == 0x08     # cached: r--
    assert t.e.access(GPA, "w") == HOST


def test_disable_keeps_mappings():
    """VM exits and entries (EPT off and on again) do not invalidate guest-physical mappings."""
    t = Tables()
    addrs = t.leaf(GPA, 1, host=HOST)
    t.e.access(GPA)
    t.mem.write_u64(addrs[1], OTHER | RWX | WB)
    t.e.disable()
    t.e.enable(t.eptp, t.cap)
    assert t.e.access(GPA) == HOST


def guest_reader():
    m, b, ex = guest(READER)
    m.memory.write_u64(0x600000, 0xAAAA)
    m.memory.write_u64(0xA00000, 0xBBBB)
    return m, b, ex


def test_guest_sees_stale_translation_and_the_correct_one():
    """A VMM remaps a guest page (0x600000 -> host 0xA00000) between two runs. Without INVEPT the
    guest still reads the old host page, even after the linear and combined mappings are gone
    (the core's TLB flushed, as a VM exit and entry without VPID do); after INVEPT it reads the
    new one."""
    m, b, ex = guest_reader()
    assert m.cpu.run().reason == "hlt" and m.cpu.rax == 0xAAAA
    b.map(0x600000, 0xA00000, 0x1000)
    m.cpu.rip = 0x100000
    m.cpu.flush_tlb()
    assert m.cpu.run().reason == "hlt" and m.cpu.rax == 0xAAAA        # stale
    ept.attach(m.cpu).invalidate(ept.InvEptType.SINGLE_CONTEXT, b.eptp)
    m.cpu.rip = 0x100000
    assert m.cpu.run().reason == "hlt" and m.cpu.rax == 0xBBBB


def test_tlb_never_writable_for_a_read_only_ept_page():
    """The TLB holds combined mappings whose rights are those of both guest paging and EPT: a
    read of an EPT read-only page fills the TLB for reads; the following write still faults."""
    m, b, ex = guest("mov rax, [0x600000]\nmov [0x600000], rax\nhlt")
    b.protect(0x600000, 0x1000, "r")
    assert m.cpu.run().reason == "vmexit"
    f = ex.seen[0]["fault"]
    assert f.kind == ept.FaultKind.VIOLATION and f.qualification & 7 == 2
    assert ex.seen[0]["rip"] != 0x100000                      # the store, after the load


def test_cached_mappings_listing():
    """A guest-physical mapping holds the page frame, the ANDed rights and the memory type, tagged
    by EP4TA (29.4.1)."""
    t = Tables()
    t.leaf(GPA, 1, host=HOST)
    t.e.access(GPA, "w")
    (gfn, ep4ta, host, rights, dirty, mt, ipat, shift), = t.e.cached_mappings()
    assert (gfn, ep4ta, host, rights, mt, shift) == (GPA >> 12, t.root, HOST, RWX, 6, 12)


def test_fault_from_cached_mapping_keeps_suppress_ve():
    """A violation found from a cached mapping still reports bit 63 (suppress #VE) of the entry
    that mapped the page, which decides between a #VE and a VM exit (25.5.6.1)."""
    t = Tables()
    t.path(GPA, 1, HOST | WB | 0b001 | (1 << 63))
    assert t.e.access(GPA, "r") == HOST
    assert t.e.access(GPA, "w") == ept.FaultKind.VIOLATION
    assert t.e.fault.level == 0 and t.e.fault.suppress_ve


def test_invalidation_hook():
    """The shape vmx's INVEPT/INVVPID call: INVEPT single-context drops the EPTP's mappings,
    INVVPID drops no guest-physical mapping (they are not tagged by VPID, 29.4.1)."""
    t = Tables()
    addrs = t.leaf(GPA, 1, host=HOST)
    t.e.access(GPA)
    t.mem.write_u64(addrs[1], OTHER | RWX | WB)
    hook = t.e.translation_cache
    hook.invalidate("vpid", 2, vpid=0)
    assert t.e.access(GPA) == HOST
    hook.invalidate("ept", 1, eptp=t.eptp)
    assert t.e.access(GPA) == OTHER
