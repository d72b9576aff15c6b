"""VMLAUNCH and VMRESUME in C: VM entry (SDM Vol. 3C chapter 27) and VM exit (chapter 28).

The sequence, each step in the manual's order:

- 31.3 the instruction's own checks (vmx.transitions.instruction_checks, in Python, whenever
  the common case does not hold);
- 27.2 and 27.3.1 the checks on the controls, the host state and the guest state
  (vmx.checkcache; skipped as a whole when `CheckMemo.all_pass` proves they would all pass);
- 27.3.2 loading guest state and 27.4 the MSR-load list;
- 27.6 event injection and 27.7 the special features of VM entry (`_arm`);
- the guest runs; sensitive instructions and events ask the intercept hook (`_intercept`,
  which decides the simple instruction exits from vmx.nonroot's tables and asks
  vmx.nonroot.NonRoot about everything else);
- 28.2 recording the exit information, 28.3 saving guest state, 28.4 the MSR-store list,
  28.5 loading host state and 28.6 the MSR-load list (`exit_to_host`); a failing entry of
  either list is a VMX abort (28.7, vmx.abort).

State moves through compiled tables: vmx.state names each field's processor state, and
x86._state locates that state in the Cpu struct. The rare parts (event injection, the
VMX-preemption timer, MSR lists, entry failures) stay in Python (vmx.events, vmx.transfer,
vmx.transitions).
"""
from cpython.object cimport PyObject, PyTypeObject, descrsetfunc
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from x86._defs cimport *
from x86._exec cimport Core, py_intercept
from x86._mem cimport update_paging_mode, load_pdptes
from x86._seg cimport update_mode
from x86._state cimport locate, loc_get, loc_set, LOC_PYTHON
from vmx._vmcs cimport VmcsStore, VmxStateBase, CheckMemo, ready, slot_of, state_of, set_entry
from vmx._translation cimport wrap_apic, unwrap_apic, keep_vpid_mappings, restore_vpid_mappings

from vmx import events as _events, transfer as _transfer, transitions as _transitions
from vmx import nonroot as _nonroot, second_level as _second_level
from vmx.controls import (EntryControls as En, ExitControls as Ex, PinBased as Pin,
                          ProcBased as Proc, SecondaryProcBased as Sec)
from vmx.exit_record import VmExit
from vmx.fields import Field as F
from vmx.state import GUEST, GUEST_CONDITIONAL, HOST, HOST_BASES, HOST_CONDITIONAL, HOST_SELECTORS
from x86 import state as _xstate

cdef extern from "Python.h":
    PyTypeObject* Py_TYPE(object)

# --- the fields this module reads and writes, by slot ---------------------------------------------

cdef int _S(field):
    return slot_of(int(field))

cdef int S_PIN = _S(F.PIN_BASED_VM_EXEC_CONTROL), S_PROC = _S(F.CPU_BASED_VM_EXEC_CONTROL)
cdef int S_SEC = _S(F.SECONDARY_VM_EXEC_CONTROL), S_EXIT = _S(F.VM_EXIT_CONTROLS)
cdef int S_ENTRY = _S(F.VM_ENTRY_CONTROLS), S_EXC_BITMAP = _S(F.EXCEPTION_BITMAP)
cdef int S_ENTRY_INFO = _S(F.VM_ENTRY_INTR_INFO_FIELD), S_INTERRUPTIBILITY = _S(F.GUEST_INTERRUPTIBILITY_INFO)
cdef int S_ACTIVITY = _S(F.GUEST_ACTIVITY_STATE), S_TSC_OFFSET = _S(F.TSC_OFFSET)
cdef int S_TSC_MULT = _S(F.TSC_MULTIPLIER), S_ERROR = _S(F.VM_INSTRUCTION_ERROR)
cdef int S_CR0_MASK = _S(F.CR0_GUEST_HOST_MASK), S_CR0_SHADOW = _S(F.CR0_READ_SHADOW)
cdef int S_CR4_MASK = _S(F.CR4_GUEST_HOST_MASK), S_CR4_SHADOW = _S(F.CR4_READ_SHADOW)
cdef int S_GDTR_BASE = _S(F.HOST_GDTR_BASE), S_IDTR_BASE = _S(F.HOST_IDTR_BASE)
cdef int S_ENTRY_MSR_COUNT = _S(F.VM_ENTRY_MSR_LOAD_COUNT), S_EXIT_STORE_COUNT = _S(F.VM_EXIT_MSR_STORE_COUNT)
cdef int S_EXIT_LOAD_COUNT = _S(F.VM_EXIT_MSR_LOAD_COUNT), S_GUEST_RIP = _S(F.GUEST_RIP)
cdef int S_PENDING_DBG = _S(F.GUEST_PENDING_DBG_EXCEPTIONS)

cdef int S_PDPTR[4]
for _i, _f in enumerate((F.GUEST_PDPTR0, F.GUEST_PDPTR1, F.GUEST_PDPTR2, F.GUEST_PDPTR3)):
    S_PDPTR[_i] = _S(_f)

# 28.2: the exit-information fields in ExitInfo's order
cdef int S_INFO[10]
for _i, _f in enumerate((F.VM_EXIT_REASON, F.EXIT_QUALIFICATION, F.GUEST_LINEAR_ADDRESS,
                         F.GUEST_PHYSICAL_ADDRESS, F.VM_EXIT_INSTRUCTION_LEN, F.VMX_INSTRUCTION_INFO,
                         F.VM_EXIT_INTR_INFO, F.VM_EXIT_INTR_ERROR_CODE, F.IDT_VECTORING_INFO_FIELD,
                         F.IDT_VECTORING_ERROR_CODE)):
    S_INFO[_i] = _S(_f)
_INFO_KEYS = ("reason", "qualification", "guest_linear_address", "guest_physical_address",
              "instruction_length", "instruction_info", "interruption_info", "interruption_error_code",
              "idt_vectoring_info", "idt_vectoring_error_code")

ctypedef struct ExitInfo:
    uint64_t f[10]          # the exit-information fields, in S_INFO's order

# control bits (plain C integers)
cdef uint64_t PROC_SECONDARY = int(Proc.ACTIVATE_SECONDARY_CONTROLS)
cdef uint64_t PROC_MTF = int(Proc.MONITOR_TRAP_FLAG), PROC_TSC_OFFSET = int(Proc.USE_TSC_OFFSETTING)
cdef uint64_t PROC_TPR_SHADOW = int(Proc.TPR_SHADOW)
cdef uint64_t PROC_INTR_WINDOW = int(Proc.INTR_WINDOW_EXITING), PROC_NMI_WINDOW = int(Proc.NMI_WINDOW_EXITING)
cdef uint64_t PIN_VIRTUAL_NMIS = int(Pin.VIRTUAL_NMIS), PIN_TIMER = int(Pin.VMX_PREEMPTION_TIMER)
cdef uint64_t PIN_NMI_EXITING = int(Pin.NMI_EXITING), SEC_PLE = int(Sec.PAUSE_LOOP_EXITING)
cdef uint64_t SEC_UNRESTRICTED = int(Sec.UNRESTRICTED_GUEST), SEC_TSC_SCALING = int(Sec.TSC_SCALING)
cdef uint64_t SEC_EPT = int(Sec.ENABLE_EPT), SEC_APIC_ACCESS = int(Sec.VIRTUALIZE_APIC_ACCESSES)
cdef uint64_t SEC_VPID = int(Sec.ENABLE_VPID)
cdef uint64_t EN_IA32E = int(En.IA32E_MODE), EN_LOAD_EFER = int(En.LOAD_IA32_EFER)
cdef uint64_t EX_HOST_64 = int(Ex.HOST_ADDR_SPACE_SIZE), EX_SAVE_DEBUG = int(Ex.SAVE_DEBUG_CONTROLS)
cdef uint64_t EX_SAVE_TIMER = int(Ex.SAVE_VMX_PREEMPTION_TIMER)

# --- compiled state tables (vmx.state -> x86._state locations) -----------------------------------

cdef enum:
    MAXOPS = 64

ctypedef struct Op:
    int kind                # LOC_* of x86._state
    Py_ssize_t offset
    int width
    int slot
    uint64_t entry_bit      # conditional ops: the VM-entry / VM-exit control that moves them
    uint64_t exit_bit

ctypedef struct Table:
    int n
    Op ops[MAXOPS]

cdef Table T_GUEST, T_GUEST_COND, T_HOST, T_HOST_COND
# the state names of each table's ops (LOC_PYTHON ops go through x86.state by name)
cdef tuple N_GUEST, N_GUEST_COND, N_HOST, N_HOST_COND


cdef tuple _compile(Table* t, rows):
    t.n = 0
    names = []
    for row in rows:
        field, name = row[0], row[1]
        if t.n >= MAXOPS:
            raise RuntimeError("vmx._transition: MAXOPS is too small for vmx.state")
        op = &t.ops[t.n]
        op.kind = locate(name, &op.offset, &op.width)
        op.slot = _S(field)
        op.entry_bit = row[2] if len(row) > 2 else 0
        op.exit_bit = row[3] if len(row) > 3 else (row[2] if len(row) == 3 else 0)
        names.append(name)
        t.n += 1
    return tuple(names)


N_GUEST = _compile(&T_GUEST, GUEST)
N_GUEST_COND = _compile(&T_GUEST_COND, [(f, n, e, x) for f, n, e, x in GUEST_CONDITIONAL])
N_HOST = _compile(&T_HOST, HOST)
N_HOST_COND = _compile(&T_HOST_COND, [(f, n, x, x) for f, n, x in HOST_CONDITIONAL])
for _k in range(T_GUEST_COND.n):       # 28.3.1: DR7 and DEBUGCTL follow "save debug controls"
    if N_GUEST_COND[_k] in ("dr7", "debugctl"):
        T_GUEST_COND.ops[_k].exit_bit |= EX_SAVE_DEBUG

# 28.5.2: the host segments: (segment number, selector slot, base slot or -1)
cdef int N_HOST_SEGS = len(HOST_SELECTORS)
cdef int HS_SEG[8]
cdef int HS_SEL[8]
cdef int HS_BASE[8]
for _k, (_f, _seg) in enumerate(HOST_SELECTORS):
    HS_SEG[_k] = _xstate.SEGMENTS.index(_seg)
    HS_SEL[_k] = _S(_f)
    HS_BASE[_k] = _S(HOST_BASES[_seg]) if _seg in HOST_BASES else -1


cdef inline int _load(Cpu* c, VmcsStore vm, Table* t, tuple names, uint64_t entry, bint conditional, cpu) except -1:
    cdef int k
    cdef Op* op
    for k in range(t.n):
        op = &t.ops[k]
        if conditional and not (entry & op.entry_bit):
            continue
        if op.kind == LOC_PYTHON:
            _xstate.set_state(cpu, names[k], vm.v[op.slot])
        else:
            loc_set(c, op.kind, op.offset, op.width, vm.v[op.slot])


cdef inline int _save(Cpu* c, VmcsStore vm, Table* t, tuple names, uint64_t exit_ctls, bint conditional, cpu) except -1:
    cdef int k
    cdef Op* op
    for k in range(t.n):
        op = &t.ops[k]
        if conditional and not (exit_ctls & op.exit_bit):
            continue
        if op.kind == LOC_PYTHON:
            vm.put(op.slot, _xstate.get_state(cpu, names[k]))
        else:
            vm.put(op.slot, loc_get(c, op.kind, op.offset, op.width))


cdef inline void _derive_mode(Cpu* c, VmcsStore pdptes_from) noexcept:
    """What the processor derives from the loaded registers: paging mode (the TLB is flushed:
    29.4.3.1 without VPID; always allowed), CPL and decode mode, and with PAE paging the PDPTEs:
    from memory, or with EPT from the guest-state fields of `pdptes_from` (27.3.2.4)."""
    cdef int i
    update_paging_mode(c)
    update_mode(c)
    if c.pg_mode == PG_PAE:
        if pdptes_from is None:
            load_pdptes(c, c.cr3)
        else:
            for i in range(4):
                c.pdpte[i] = pdptes_from.v[S_PDPTR[i]]
    c.next_event = c.icount


cdef int load_guest(Core cpu, VmcsStore vm, VmxStateBase st) except -1:
    """27.3.2: control registers, segments, descriptor tables, RIP/RSP/RFLAGS and the MSRs the
    VM-entry controls name; the guest/host masks and read shadows (25.6.6); the CR0/CR4 bits
    fixed in VMX operation, PE and PG excepted with "unrestricted guest" (24.8)."""
    cdef Cpu* c = &cpu.c
    cdef uint64_t entry = vm.v[S_ENTRY]
    cdef uint64_t proc = vm.v[S_PROC]
    cdef uint64_t sec = vm.v[S_SEC] if proc & PROC_SECONDARY else 0
    _load(c, vm, &T_GUEST, N_GUEST, entry, False, cpu)
    _load(c, vm, &T_GUEST_COND, N_GUEST_COND, entry, True, cpu)
    if not entry & EN_LOAD_EFER:
        # 27.3.2.1: without "load IA32_EFER", LMA and LME follow "IA-32e mode guest"
        c.efer = (c.efer & ~(<uint64_t>0x500)) | (0x500 if entry & EN_IA32E else 0)
    c.cr0_read_mask = vm.v[S_CR0_MASK]
    c.cr0_read_shadow = vm.v[S_CR0_SHADOW]
    c.cr4_read_mask = vm.v[S_CR4_MASK]
    c.cr4_read_shadow = vm.v[S_CR4_SHADOW]
    c.cr0_must1 = st.cr0_must1 & ~(<uint64_t>0x80000001 if sec & SEC_UNRESTRICTED else 0)
    c.cr0_must0 = st.cr0_must0
    c.cr4_must1 = st.cr4_must1
    c.cr4_must0 = st.cr4_must0
    if sec & SEC_EPT:
        _second_level.enter(cpu, vm, sec)             # 27.3.2: the EPTP takes effect
        st.ept_on = True
    if sec & SEC_APIC_ACCESS:
        wrap_apic(cpu, vm, proc)                     # 30.4 (the TLB is flushed below)
    _derive_mode(c, vm if sec & SEC_EPT else None)
    if sec & SEC_VPID:
        restore_vpid_mappings(cpu, vm, st)
    c.halted = 1 if vm.v[S_ACTIVITY] == 1 else 0


cdef int save_guest(Core cpu, VmcsStore vm, VmxStateBase st) except -1:
    """28.3: guest state is saved; the MSRs per the VM-exit controls; the activity state; with
    IA32_VMX_MISC[5], IA32_EFER.LMA into the "IA-32e mode guest" VM-entry control (A.6: an
    unrestricted guest may have entered or left IA-32e mode)."""
    cdef Cpu* c = &cpu.c
    cdef uint64_t exit_ctls = vm.v[S_EXIT]
    if st.save_efer_lma:
        vm.put(S_ENTRY, (vm.v[S_ENTRY] & ~EN_IA32E) | (EN_IA32E if (c.efer >> 10) & 1 else 0))
    cdef int i
    _save(c, vm, &T_GUEST, N_GUEST, exit_ctls, False, cpu)
    _save(c, vm, &T_GUEST_COND, N_GUEST_COND, exit_ctls, True, cpu)
    if c.slat != NULL and c.pg_mode == PG_PAE:
        for i in range(4):                             # 28.3.4: EPT with PAE paging
            vm.put(S_PDPTR[i], c.pdpte[i])
    vm.put(S_ACTIVITY, 1 if c.halted else 0)


cdef int load_host(Core cpu, VmcsStore vm, VmxStateBase st) except -1:
    """28.5: host control registers, RSP, RIP, the segments from their selectors and bases
    (28.5.2), GDTR/IDTR with limits FFFFH, LDTR unusable, RFLAGS = 2, DR7 = 400H,
    EFER.LMA/LME = "host address-space size"."""
    cdef Cpu* c = &cpu.c
    cdef uint64_t exit_ctls = vm.v[S_EXIT]
    cdef bint long_host = (exit_ctls & EX_HOST_64) != 0
    cdef int k, i
    cdef uint16_t sel
    cdef Seg* s
    _load(c, vm, &T_HOST, N_HOST, exit_ctls, False, cpu)
    _load(c, vm, &T_HOST_COND, N_HOST_COND, exit_ctls, True, cpu)
    for k in range(N_HOST_SEGS):
        i = HS_SEG[k]
        s = &c.seg[i]
        sel = <uint16_t>vm.v[HS_SEL[k]]
        s.sel = sel
        s.base = vm.v[HS_BASE[k]] if HS_BASE[k] >= 0 else 0
        if i == CS:
            s.attr = 0xA09B if long_host else 0xC09B
        elif i == TR:
            s.attr = 0x8B
        elif sel == 0:
            s.attr = 0x10093
        else:
            s.attr = 0xC093
        s.limit = 0x67 if i == TR else 0xFFFFFFFF
    c.seg[LDTR].sel = 0
    c.seg[LDTR].base = 0
    c.seg[LDTR].limit = 0
    c.seg[LDTR].attr = 0x10000
    c.gdtr_limit = 0xFFFF
    c.idtr_limit = 0xFFFF
    c.efer = (c.efer & ~(<uint64_t>0x500)) | (0x500 if long_host else 0)
    c.dr[7] = 0x400
    c.cr0_read_mask = c.cr0_read_shadow = c.cr4_read_mask = c.cr4_read_shadow = 0
    c.rflags = 2
    c.lf_op = LF_NONE
    c.halted = 0
    c.cr0_must1 = st.cr0_must1
    c.cr0_must0 = st.cr0_must0
    c.cr4_must1 = st.cr4_must1
    c.cr4_must0 = st.cr4_must0
    _derive_mode(c, None)


# --- 27.6, 27.7: events at VM entry; 28.2.1, 28.3.4 at VM exit ----------------------------------

cdef enum:
    BLOCK_STI = 1
    BLOCK_MOV_SS = 2
    BLOCK_NMI = 8


cdef inline int _interruptibility(Cpu* c) noexcept:
    """Blocking by STI, by MOV SS, by NMI in the layout of Table 25-3."""
    cdef int v = BLOCK_NMI if c.nmi_blocked else 0
    if c.inhibit and c.icount < c.shadow_end:
        v |= BLOCK_STI if c.inhibit == INHIBIT_STI else BLOCK_MOV_SS
    return v


cdef inline void _set_interruptibility(Cpu* c, int v) noexcept:
    """A shadow lasts until the first guest instruction retires (27.3.2.5)."""
    c.nmi_blocked = 1 if v & BLOCK_NMI else 0
    if v & (BLOCK_STI | BLOCK_MOV_SS):
        c.inhibit = INHIBIT_MOVSS if v & BLOCK_MOV_SS else INHIBIT_STI
        c.shadow_end = c.icount + 1
    else:
        c.inhibit = 0
    c.next_event = c.icount


cdef int _arm(Core cpu, VmcsStore vm, hook) except -1:
    """27.7 and 27.6, in the manual's order: interruptibility, the event to inject, then the
    controls that act at instruction boundaries."""
    cdef Cpu* c = &cpu.c
    cdef uint64_t pin = vm.v[S_PIN], proc = vm.v[S_PROC]
    cdef uint64_t sec = vm.v[S_SEC] if proc & PROC_SECONDARY else 0
    cdef bint pending_mtf = False
    _set_interruptibility(c, <int>(vm.v[S_INTERRUPTIBILITY] & (BLOCK_STI | BLOCK_MOV_SS | BLOCK_NMI)))
    # 26.7.1: with "virtual NMIs" the blocking bit is virtual-NMI blocking
    c.nmi_block_virtual = 1 if pin & PIN_VIRTUAL_NMIS else 0
    if vm.v[S_ENTRY_INFO] >> 31 & 1:
        pending_mtf = _events.inject(cpu, vm)          # 27.6
    if proc & PROC_TPR_SHADOW:
        hook.arm_tpr_threshold(cpu)                    # 27.7.7 (after injection, before MTF)
    # 26.5.2 / 27.7.2: the monitor trap flag (or a pending MTF VM exit: at once)
    if (pending_mtf or proc & PROC_MTF) and not c.step_exit:
        c.step_exit = 1
        c.step_icount = c.icount
        c.step_due = 1 if pending_mtf else 0
    # 26.7.5 / 26.7.6
    c.window_exits = (WIN_INTR if proc & PROC_INTR_WINDOW else 0) | (WIN_NMI if proc & PROC_NMI_WINDOW else 0)
    # 27.7.4: the VMX-preemption timer starts with the value in the VMCS
    if pin & PIN_TIMER:
        _events.arm_timer(cpu, vm, hook)
    # 26.3: RDTSC, RDTSCP and RDMSR of IA32_TSC see the offset (and the scaled TSC)
    if proc & PROC_TSC_OFFSET:
        c.tsc_mult = vm.v[S_TSC_MULT] if sec & SEC_TSC_SCALING else 0
        c.tsc_shift = _events.TSC_MULTIPLIER_SHIFT if sec & SEC_TSC_SCALING else 0
        c.tsc_add = vm.v[S_TSC_OFFSET]
    c.next_event = c.icount


# 27.7.3 / 28.3.4: pending debug exceptions (Table 25-4): B3-B0, enabled breakpoint, BS
cdef enum:
    DBG_B = 0xF
    DBG_ENABLED_BP = 1 << 12
    DBG_BS = 1 << 14

cdef uint64_t E_ICOUNT                # icount at the last VM entry


cdef int _arm_debug_nmi(Core cpu, VmcsStore vm, hook) except -1:
    """After _arm: what VM entry establishes for debug exceptions and NMI blocking.

    27.7.3: the pending debug exceptions field (valid when BS or the enabled-breakpoint bit is
    1) becomes a debug trap delivered after VM entry (with the priority of "traps on the
    previous instruction", held back by blocking by MOV SS), unless the entry is vectoring
    with an external interrupt, NMI, hardware exception or privileged software exception, or
    with a software interrupt or exception and no blocking by MOV SS. (The activity states
    shutdown and wait-for-SIPI, which also discard them, are not offered.)
    27.7.1: after a vectoring VM entry there is no blocking by STI or by MOV SS.
    26.3: with "NMI exiting" 1 and "virtual NMIs" 0, IRET does not affect NMI blocking.
    25.6.13: each VM entry starts PAUSE-loop detection afresh (26.1.3)."""
    global E_ICOUNT
    cdef Cpu* c = &cpu.c
    cdef uint64_t pin = vm.v[S_PIN], info = vm.v[S_ENTRY_INFO], pending = vm.v[S_PENDING_DBG]
    cdef int kind = (info >> 8) & 7
    cdef bint vectoring = (info >> 31) & 1 and kind != 7
    c.iret_nmi_keep = 1 if (pin & PIN_NMI_EXITING) and not (pin & PIN_VIRTUAL_NMIS) else 0
    if vectoring:
        c.inhibit = 0                    # 27.7.1: no blocking by STI or MOV SS after a vectoring entry
    if H_SEC & SEC_PLE:
        hook.ple_last = None
    E_ICOUNT = c.icount
    c.tf_armed = 0
    c.db_status = 0
    if not pending & (DBG_ENABLED_BP | DBG_BS):
        return 0
    if vectoring and not ((kind == 4 or kind == 6) and vm.v[S_INTERRUPTIBILITY] & BLOCK_MOV_SS):
        return 0
    c.db_status = <uint32_t>(pending & (DBG_B | DBG_ENABLED_BP | DBG_BS))
    c.next_event = c.icount


cdef int _save_pending_debug(Core cpu, VmcsStore vm, ExitInfo* x) except -1:
    """28.3.4: the pending debug exceptions field is saved clear, except for VM exits with
    basic reason TPR below threshold, virtualized EOI, APIC write, monitor trap flag or
    VMX-preemption timer expired, and VM exits not caused by a debug exception while there is
    blocking by MOV SS (INIT, SMI and machine checks are not modelled). Those save the debug
    exceptions pending at the exit: B3-B0 and the enabled-breakpoint bit as VM entry loaded
    them, BS for a single-step trap with RFLAGS.TF = 1 (or as loaded, right after VM entry).
    After any VM exit no debug exception is pending (28.5)."""
    cdef Cpu* c = &cpu.c
    cdef uint64_t reason = x.f[0] & 0xFFFF, status = c.db_status, v = 0
    cdef bint movss = c.inhibit == INHIBIT_MOVSS and c.icount < c.shadow_end
    cdef bint debug_exit = reason == 0 and (x.f[6] & 0x800000FF) == 0x80000001
    if reason == 43 and c.tf_armed:
        status |= DBG_BS                 # a trap-like exit after an instruction single-stepped
    if reason in (37, 43, 45, 52, 56) or (movss and not debug_exit):
        v = status & (DBG_B | DBG_ENABLED_BP)
        if status & DBG_BS and ((get_rflags(c) & F_TF) or c.icount == E_ICOUNT):
            v |= DBG_BS
    vm.put(S_PENDING_DBG, v)
    c.db_status = 0
    c.tf_armed = 0


cdef void _disarm(Core cpu) noexcept:
    """What the hook armed ends with the guest (x86 Core.set_hook(None)); TSC reads are plain."""
    cpu.attach_hook(None, NULL)
    cpu.c.tsc_mult = 0
    cpu.c.tsc_shift = 0
    cpu.c.tsc_add = 0


cdef int _save_events(Core cpu, VmcsStore vm, hook, ExitInfo* x) except -1:
    """28.2.1: the valid bit of the VM-entry interruption-information field is cleared; 28.3.4:
    interruptibility state and the VMX-preemption timer value are saved. The guest's shadows end
    with it; virtual-NMI blocking is guest state only; an NMI that caused the exit leaves NMIs
    blocked in the host."""
    cdef Cpu* c = &cpu.c
    cdef uint64_t pin = vm.v[S_PIN]
    cdef bint nmi_exit, virtual
    vm.put(S_ENTRY_INFO, vm.v[S_ENTRY_INFO] & ~(<uint64_t>1 << 31))
    vm.put(S_INTERRUPTIBILITY, (vm.v[S_INTERRUPTIBILITY] & ~(<uint64_t>(BLOCK_STI | BLOCK_MOV_SS | BLOCK_NMI)))
           | <uint64_t>_interruptibility(c))
    if hook is not None and hook.timer is not None and vm.v[S_EXIT] & EX_SAVE_TIMER:
        _events.save_timer(vm, hook, x.f[0] == 52)
    nmi_exit = x.f[0] == 0 and (x.f[6] >> 31) & 1 and ((x.f[6] >> 8) & 7) == 2
    virtual = (pin & PIN_VIRTUAL_NMIS) != 0
    _set_interruptibility(c, BLOCK_NMI if nmi_exit or (not virtual and c.nmi_blocked) else 0)


# --- the intercept hook ---------------------------------------------------------------------------

cdef enum:
    NMNEM = 2048

cdef uint8_t FAST_KIND[NMNEM]        # 0: ask NonRoot; 1: always exits; 2: primary control; 3: secondary
cdef uint64_t FAST_BIT[NMNEM]
cdef uint16_t FAST_REASON[NMNEM]
cdef uint8_t FAST_DETAIL[NMNEM]      # the qualification is the instruction's detail (INVLPG)
cdef uint64_t FAST_ASK[NMNEM]        # secondary control: not exiting by its own, ask NonRoot (PLE)
for _m, _word, _bit, _reason, _detail, _ask in _nonroot.simple_instruction_exits():
    FAST_KIND[_m] = _word + 1
    FAST_BIT[_m] = _bit
    FAST_REASON[_m] = _reason
    FAST_DETAIL[_m] = _detail
    FAST_ASK[_m] = _ask
cdef uint64_t ENABLED_BY[NMNEM]      # 26.3: the secondary control without which it is #UD
for _m, _bit in _nonroot.ENABLED_BY.items():
    ENABLED_BY[_m] = int(_bit)

cdef ExitInfo X                      # the exit being recorded (one VM entry runs at a time)
cdef bint X_SET                      # X holds an exit recorded in C
cdef uint64_t H_PROC, H_SEC          # the controls of the running guest
cdef uint32_t H_EXC_BITMAP


cdef int _intercept(Cpu* c, int event, uint64_t a, uint64_t b) noexcept:
    """26.1: the simple instruction exits in C; everything else asks NonRoot (vmx.nonroot)."""
    global X_SET
    cdef int kind
    cdef bint exits
    cdef int k
    if event == EV_INSN and a < NMNEM and FAST_KIND[a] and c.delivering < 0:
        kind = FAST_KIND[a]
        exits = kind == 1 or (kind == 2 and (H_PROC & FAST_BIT[a])) or (kind == 3 and (H_SEC & FAST_BIT[a]))
        if not exits:
            return py_intercept(c, event, a, b) if H_SEC & FAST_ASK[a] else OK
        for k in range(10):
            X.f[k] = 0
        X.f[0] = FAST_REASON[a]
        X.f[1] = b if FAST_DETAIL[a] else 0
        X.f[4] = c.cur_insn.len
        X_SET = True
        c.rip = c.rip_start              # an instruction that exits does not execute
        c.stop_reason = STOP_EXIT
        c.stop_retired = 0
        return STOP
    if event == EV_DISABLED and a < NMNEM and ENABLED_BY[a]:
        return OK if H_SEC & ENABLED_BY[a] else ud(c)
    if event == EV_EXCEPTION and ((b >> 32) & 0xFF) != DK_NMI and a != 14 and a < 32 and not (H_EXC_BITMAP >> a) & 1:
        return OK                        # 25.6.3: a clear bit in the exception bitmap
    return py_intercept(c, event, a, b)


# --- VM exit --------------------------------------------------------------------------------------

cdef int _record_from_dict(dict info) except -1:
    cdef int k
    for k in range(10):
        X.f[k] = <uint64_t>info.get(_INFO_KEYS[k], 0)


cdef object _exit_to_host(Core cpu, VmcsStore vm, VmxStateBase st, hook, check):
    """28.2-28.6: record the exit information (X), save the guest (unless this is a VM-entry
    failure, 27.8), load the host."""
    cdef int k, failed
    for k in range(10):
        vm.put(S_INFO[k], X.f[k])
    if not X.f[0] >> 31 & 1:
        _save_pending_debug(cpu, vm, &X)
        _save_events(cpu, vm, hook, &X)
        save_guest(cpu, vm, st)
        if vm.v[S_EXIT_STORE_COUNT]:
            failed = _transfer.store_msr_list(cpu, vm)          # 28.4
            if failed:
                raise _transfer.vmx_abort(cpu, vm, 1, failed, _record(vm, check))
    unwrap_apic(cpu)
    if not X.f[0] >> 31 & 1:
        keep_vpid_mappings(cpu, vm, st)
    if st.ept_on:
        st.ept_on = False
        _second_level.leave(cpu, vm, vm.v[S_SEC], not X.f[0] >> 31 & 1)
    load_host(cpu, vm, st)
    if vm.v[S_EXIT_LOAD_COUNT]:
        failed = _transfer.exit_msr_load(cpu, vm)               # 28.6
        if failed:
            raise _transfer.vmx_abort(cpu, vm, 4, failed, _record(vm, check))
    st.non_root = False
    st.root = True
    return _record(vm, check)


# VmExit is a frozen attrs record; it is built here without its __init__ (which would convert
# each field in Python): each slot is set through its member descriptor, as attrs's own
# frozen __init__ does with object.__setattr__.
cdef list _SLOTS = []
for _name in ("raw_reason", "raw_qualification", "guest_linear_address", "guest_physical_address",
              "instruction_length", "raw_instruction_info", "raw_interruption_info",
              "interruption_error_code", "raw_idt_vectoring_info", "idt_vectoring_error_code"):
    _SLOTS.append(VmExit.__dict__[_name])
cdef object _RIP_SLOT = VmExit.__dict__["guest_rip"]
cdef object _CHECK_SLOT = VmExit.__dict__["check"]


cdef inline int _set(object desc, object obj, object value) except -1:
    Py_TYPE(desc).tp_descr_set(desc, obj, value)


cdef object _record(VmcsStore vm, check):
    cdef object e = VmExit.__new__(VmExit)
    cdef int k
    for k in range(10):
        _set(_SLOTS[k], e, X.f[k])
    _set(_RIP_SLOT, e, vm.v[S_GUEST_RIP])
    _set(_CHECK_SLOT, e, check)
    return e


def entry_failure_exit(Core cpu, VmcsStore vm, uint64_t reason, uint64_t qualification, check):
    """27.8: a VM-entry failure after the guest-state checks is a VM exit with bit 31 of the
    exit reason set; the guest state is not saved, the host state is loaded."""
    cdef int k
    for k in range(10):
        X.f[k] = 0
    X.f[0] = reason | (<uint64_t>1 << 31)
    X.f[1] = qualification
    return _exit_to_host(cpu, vm, <VmxStateBase>cpu.vmx, None, check)


def guest_stopped_exit(Core cpu, VmcsStore vm, uint64_t reason, hook):
    """The guest stopped without a VM exit (vmx.transitions.GuestStuck): the processor returns
    to the host as if exit `reason` happened, so that the VMM can go on."""
    cdef int k
    for k in range(10):
        X.f[k] = 0
    X.f[0] = reason
    return _exit_to_host(cpu, vm, <VmxStateBase>cpu.vmx, hook, None)


# --- VM entry -------------------------------------------------------------------------------------

cdef object _hook_for(Core cpu, VmcsStore vm):
    """The NonRoot hook of this VMCS, made again only when a control field was written."""
    hook = vm.nonroot
    if hook is None or vm.nonroot_gen != vm.ctl_gen:
        hook = _nonroot.NonRoot(cpu, vm)
        vm.nonroot = hook
        vm.nonroot_gen = vm.ctl_gen
    elif hook.exit is not None or hook.timer is not None:
        hook.reset()
    return hook


cdef object _run_guest(Core cpu, VmcsStore vm, VmxStateBase st):
    global X_SET, H_PROC, H_SEC, H_EXC_BITMAP
    cdef Cpu* c = &cpu.c
    cdef int code
    hook = _hook_for(cpu, vm)
    H_PROC = vm.v[S_PROC]
    H_SEC = vm.v[S_SEC] if H_PROC & PROC_SECONDARY else 0
    H_EXC_BITMAP = <uint32_t>vm.v[S_EXC_BITMAP]
    X_SET = False
    cpu.attach_hook(hook, _intercept)
    monitor = st.monitor
    try:
        _arm(cpu, vm, hook)
        _arm_debug_nmi(cpu, vm, hook)
        c.hard_limit = c.icount + <uint64_t>cpu.machine.instruction_limit
        while True:
            budget = monitor.budget(cpu) if monitor is not None else None
            cpu.run_native(U64_MAX if budget is None else <uint64_t>budget)
            code = c.stop_reason
            if code == STOP_MAX_INSNS and monitor is not None:
                monitor.pause(cpu)
                continue
            break
        if code != STOP_EXIT:
            cpu.stop_error(code)
    finally:
        _disarm(cpu)
    if code != STOP_EXIT:
        return _transitions.guest_stuck(cpu, vm, hook, code)
    if not X_SET:
        _record_from_dict(hook.exit)
    return _exit_to_host(cpu, vm, st, hook, None)


def vmentry(Core cpu, bint launch):
    """VMLAUNCH (`launch`) or VMRESUME: the VM exit that ends the guest's run, as a VmExit."""
    return _vmentry(cpu, launch)


cdef object _vmentry(Core cpu, bint launch):
    cdef Cpu* c = &cpu.c
    cdef VmxStateBase st = state_of(cpu)
    cdef VmcsStore vm = ready(cpu, st)
    cdef CheckMemo memo
    if vm is None or vm.launched != (not launch):
        vm = _transitions.instruction_checks(cpu, launch)     # raises the outcome (31.3)
        st = <VmxStateBase>cpu.vmx
    # 27.2 then 27.3.1
    memo = vm.memo
    if memo is None or not memo.all_pass(vm, launch, (c.efer >> 10) & 1, <uint64_t>st.vmxon_pointer):
        failure = _transitions.entry_checks(cpu, vm, launch)
        if failure is not None:
            return _transitions.entry_check_failed(cpu, vm, failure)
    load_guest(cpu, vm, st)
    if vm.v[S_ENTRY_MSR_COUNT]:
        failed = _transfer.entry_msr_load(cpu, vm)              # 27.4
        if failed is not None:
            return failed
    vm.launched = True
    st.root = False
    st.non_root = True
    vm.put(S_ERROR, 0)
    return _run_guest(cpu, vm, st)


set_entry(_vmentry)      # vmx._vmcs.VmxCore.vmlaunch / vmresume
