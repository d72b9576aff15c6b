"""VMCS storage in C (SDM Vol. 3C 25.2 "Format of the VMCS Region": the data part is
implementation-specific) and the VMX state the VMREAD/VMWRITE fast path reads."""
from libc.stdint cimport uint8_t, uint16_t, uint64_t

cdef enum:
    NSLOTS = 256          # full (non-"high") fields; checked against vmx.fields.FIELDS at import
    NWORDS = 4            # NSLOTS / 64: a bit per slot

cdef class VmcsStore:
    cdef uint64_t v[NSLOTS]
    cdef public bint dirty_controls   # a control or host-state field changed (27.2 inputs)
    cdef public bint dirty_guest      # a guest-state field changed (27.3.1 inputs)
    cdef bint recording               # note the slots read (for CheckMemo)
    cdef uint64_t rd[NWORDS]
    cdef public object memo           # CheckMemo of the VM-entry checks, or None
    cdef public bint launched         # launch state (25.1): "launched" after a VMLAUNCH
    cdef public uint64_t ctl_gen      # counts writes to control and host-state fields
    cdef public object nonroot        # the intercept hook made for this VMCS (vmx.nonroot), or None
    cdef public uint64_t nonroot_gen  # ctl_gen when it was made
    cdef inline void _mark(self, int s)
    cdef void put(self, int slot, uint64_t value) noexcept
    cpdef uint64_t read_enc(self, encoding) except? 0xFFFFFFFFFFFFFFFF
    cpdef write_enc(self, encoding, value)

cdef enum:
    MAXCHK = 256          # checks in control + host + guest lists
    MAXRD = 64            # slots one check may read and still be remembered

cdef class CheckMemo:
    cdef int nctl                     # checks before the guest checks (control + host)
    cdef bint ctl_pure                # the control/host checks read only control/host fields
    cdef uint8_t ok[MAXCHK]
    cdef uint8_t nr[MAXCHK]
    cdef uint16_t slot[MAXCHK][MAXRD]
    cdef uint64_t val[MAXCHK][MAXRD]
    cdef public object key
    cdef public object ctx
    cdef public object reader
    cdef bint _same(self, VmcsStore vm, int i)
    cdef void _remember(self, VmcsStore vm, int i, bint ctl)
    cdef int nall                     # all checks (control + host + guest)
    cdef bint passed                  # the last run found no failure, with the context below
    cdef int k_launch, k_lma
    cdef uint64_t k_vmxon
    cdef int nu                       # the slots all guest checks read, with their values when
    cdef uint16_t uslot[NSLOTS]       #   they last all passed (nu < 0: some check is not
    cdef uint64_t uval[NSLOTS]        #   remembered, so all_pass cannot know)
    cdef void _snapshot(self, VmcsStore vm)
    cdef object _run(self, VmcsStore vm, object checks, int base, bint ctl)
    cdef bint all_pass(self, VmcsStore vm, int launch, int lma, uint64_t vmxon)

cdef class VmxStateBase:
    cdef public bint root             # in VMX root operation
    cdef public bint non_root         # in VMX non-root operation (a guest is running)
    cdef public object vmxon_pointer
    cdef public object cache          # VMCS data by region address
    cdef uint64_t _current
    cdef public object cur            # the Vmcs of the current-VMCS pointer, or None (a cache)
    # CR0/CR4 bits fixed in VMX operation (IA32_VMX_CR*_FIXED*, 24.8), set at VMXON
    cdef public uint64_t cr0_must1, cr0_must0, cr4_must1, cr4_must0
    cdef public object monitor        # a debugger's guest monitor (budget/pause), or None
    cdef public bint ept_on           # EPT is in effect (between a VM entry and its VM exit)
    cdef public bint save_efer_lma    # IA32_VMX_MISC[5]: VM exits store EFER.LMA in "IA-32e mode guest"
    cdef public dict vpid_tlb         # VPID -> the TLB entries kept for it (vmx._transition)

from x86._exec cimport Core

ctypedef object (*entry_fn)(Core cpu, bint launch)

cdef class VmxCore(Core):
    cdef public VmxStateBase vmx

cdef void set_entry(entry_fn fn) noexcept
cdef VmxStateBase state_of(cpu)
cdef VmcsStore ready(cpu, VmxStateBase s)
cdef int slot_of(int encoding) noexcept
cdef uint64_t slot_mask(int slot) noexcept
