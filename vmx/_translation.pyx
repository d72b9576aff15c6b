"""Address translation around VM entry and VM exit (SDM Vol. 3C 29.4.3, 30.4), for
vmx._transition: the TLB entries kept with a VPID across a VM exit, and the wrapping of the
second-level translation in effect that makes the APIC-access page exit or virtualize."""
from cpython.bytes cimport PyBytes_FromStringAndSize
from libc.stdint cimport uint16_t, uint64_t
from x86._defs cimport *
from x86._exec cimport Core
from x86._mem cimport tlb_export, tlb_import
from vmx._vmcs cimport VmcsStore, VmxStateBase, slot_of

from vmx.controls import ProcBased as Proc, SecondaryProcBased as Sec
from vmx.fields import Field as F

cdef int S_PROC = slot_of(int(F.CPU_BASED_VM_EXEC_CONTROL)), S_SEC = slot_of(int(F.SECONDARY_VM_EXEC_CONTROL))
cdef int S_APIC_ACCESS = slot_of(int(F.APIC_ACCESS_ADDR)), S_VAPIC = slot_of(int(F.VIRTUAL_APIC_PAGE_ADDR))
cdef int S_VPID = slot_of(int(F.VIRTUAL_PROCESSOR_ID)), S_EPTP = slot_of(int(F.EPT_POINTER))
cdef uint64_t PROC_SECONDARY = int(Proc.ACTIVATE_SECONDARY_CONTROLS), PROC_TPR_SHADOW = int(Proc.TPR_SHADOW)
cdef uint64_t SEC_EPT = int(Sec.ENABLE_EPT), SEC_VPID = int(Sec.ENABLE_VPID)


# --- VPIDs (29.1, 29.4.3) ----------------------------------------------------------------------------
# Without VPID, VM entries and VM exits invalidate the linear and combined mappings of VPID
# 0000H: the TLB is flushed at both (it is flushed anyway when the paging mode is derived).
# With VPID, a guest's mappings may survive: at the VM exit the entries it filled are kept with
# its VPID (and the EP4TA they were combined with), and the next VM entry with that VPID and
# EPTP puts them back, so a guest that changes a paging-structure entry without INVLPG may
# still use the old translation after a VM exit and entry, as on hardware. INVVPID and INVEPT
# drop what they name (VmxState.invalidate); keeping fewer entries is always allowed.

cdef TlbEntry V_BUF[64]
cdef uint16_t V_WHERE[64]


cdef int _vpid_of(VmcsStore vm) noexcept:
    cdef uint64_t proc = vm.v[S_PROC]
    if not (proc & PROC_SECONDARY and vm.v[S_SEC] & SEC_VPID):
        return 0
    return <int>(vm.v[S_VPID] & 0xFFFF)


cdef object _vpid_tag(Core cpu, VmcsStore vm):
    """What the kept mappings are combined with: the EP4TA in effect, or None without EPT."""
    if not (vm.v[S_PROC] & PROC_SECONDARY and vm.v[S_SEC] & SEC_EPT):
        return None
    return vm.v[S_EPTP] & 0x000FFFFFFFFFF000


cdef int keep_vpid_mappings(Core cpu, VmcsStore vm, VmxStateBase st) except -1:
    cdef int vpid = _vpid_of(vm)
    cdef int n
    if vpid == 0:
        return 0
    n = tlb_export(&cpu.c, V_BUF, V_WHERE)
    if n < 0:
        st.vpid_tlb.pop(vpid, None)
        return 0
    st.vpid_tlb[vpid] = (_vpid_tag(cpu, vm), PyBytes_FromStringAndSize(<char*>V_BUF, n * sizeof(TlbEntry)),
                         PyBytes_FromStringAndSize(<char*>V_WHERE, n * sizeof(uint16_t)), n)
    return 0


cdef int restore_vpid_mappings(Core cpu, VmcsStore vm, VmxStateBase st) except -1:
    cdef int vpid = _vpid_of(vm)
    cdef const char* entries
    cdef const char* where
    if vpid == 0 or not st.vpid_tlb:
        return 0
    kept = st.vpid_tlb.get(vpid)
    if kept is None or kept[0] != _vpid_tag(cpu, vm):
        return 0
    entries = kept[1]
    where = kept[2]
    tlb_import(&cpu.c, <const TlbEntry*>entries, <const uint16_t*>where, kept[3])
    return 0


# --- the APIC-access page (30.4) --------------------------------------------------------------------
# With "virtualize APIC accesses", the second-level translation in effect (EPT's, or none) is
# wrapped: an access whose (guest-)physical address falls in the APIC-access page is an
# APIC-access VM exit (28.2.1 Table 28-6), except the TPR accesses "use TPR shadow" virtualizes
# (30.4.2, 30.4.3.1: offset 080H reads and writes go to the virtual-APIC page, and a write is
# followed by TPR virtualization at the instruction boundary). Nothing on that page is cached
# in the TLB, so every access to it comes here.

cdef enum:
    APIC_ACCESS_FAULT = 0x44        # the fault code EV_SLAT_FAULT carries for it

cdef slat_t A_INNER = NULL          # the translation it wraps (NULL: guest-physical = physical)
cdef uint64_t A_PAGE = U64_MAX      # the APIC-access page; U64_MAX: not wrapping
cdef uint64_t A_VAPIC = 0           # the virtual-APIC page ("use TPR shadow"), or U64_MAX
cdef uint64_t A_QUAL = 0            # the last APIC-access exit's qualification
cdef bint A_TPR_WRITTEN = False     # a virtualized TPR write awaits TPR virtualization


cdef int apic_slat(Cpu* c, uint64_t gpa, int acc, uint64_t* hpa, uint32_t* rights) noexcept:
    global A_QUAL, A_TPR_WRITTEN
    cdef int st, kind = acc & 3
    cdef uint64_t off, typ
    cdef bint linear = not (acc & (ACC_PT | ACC_NOLA))
    if A_INNER != NULL:
        st = A_INNER(c, gpa, acc, hpa, rights)
        if st:
            return st
    else:
        hpa[0] = gpa
        rights[0] = SLAT_R | SLAT_W | SLAT_X
    if (hpa[0] & ~(<uint64_t>0xFFF)) != A_PAGE:
        return 0
    off = hpa[0] & 0xFFF
    rights[0] = 0
    if linear and A_VAPIC != U64_MAX and kind != ACC_X and 0x80 <= off <= 0x83:
        hpa[0] = A_VAPIC + off                       # 30.4.2 / 30.4.3.1: the VTPR
        if kind == ACC_W:
            A_TPR_WRITTEN = True                     # TPR virtualization after the write
            c.step_exit = 1
            c.step_icount = c.icount
            c.step_due = 0
            c.next_event = c.icount
        return 0
    if linear:
        typ = 3 if c.delivering >= 0 else (2 if kind == ACC_X else (1 if kind == ACC_W else 0))
        A_QUAL = off | (typ << 12)
    else:
        A_QUAL = (<uint64_t>(10 if c.delivering >= 0 else 15)) << 12
    return APIC_ACCESS_FAULT


cdef void wrap_apic(Core cpu, VmcsStore vm, uint64_t proc) noexcept:
    global A_INNER, A_PAGE, A_VAPIC, A_TPR_WRITTEN
    A_INNER = cpu.c.slat
    A_PAGE = vm.v[S_APIC_ACCESS] & ~(<uint64_t>0xFFF)
    A_VAPIC = (vm.v[S_VAPIC] & ~(<uint64_t>0xFFF)) if proc & PROC_TPR_SHADOW else U64_MAX
    A_TPR_WRITTEN = False
    cpu.c.slat = apic_slat


cdef void unwrap_apic(Core cpu) noexcept:
    global A_PAGE
    if A_PAGE != U64_MAX:
        if cpu.c.slat == apic_slat:
            cpu.c.slat = A_INNER
        A_PAGE = U64_MAX


def rewrap_apic(Core cpu):
    """After the second-level translation changed under a running guest (VMFUNC EPTP
    switching): wrap the new one."""
    global A_INNER
    if A_PAGE != U64_MAX and cpu.c.slat != apic_slat:
        A_INNER = cpu.c.slat
        cpu.c.slat = apic_slat


def apic_access():
    """(is it the APIC-access fault code, its qualification) for EV_SLAT_FAULT's code."""
    return APIC_ACCESS_FAULT, A_QUAL


def take_tpr_write() -> bool:
    """Whether a virtualized TPR write happened since the last call (TPR virtualization due)."""
    global A_TPR_WRITTEN
    r = A_TPR_WRITTEN
    A_TPR_WRITTEN = False
    return r
