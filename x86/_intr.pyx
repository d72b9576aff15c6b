# Event delivery: real-mode IVT (SDM Vol. 3A 20.1.4), protected-mode IDT (6.10-6.12),
# IA-32e mode IDT (6.14), and the double-fault rules (6.15, Table 6-5).
from libc.stdint cimport uint16_t, uint32_t, uint64_t
from x86._defs cimport *
from x86._mem cimport lin_read_slow, lin_write_slow
from x86._seg cimport read_descriptor, unpack_descriptor, update_mode, set_seg_real
from x86._task cimport TS_IDT, new_tss_checks, task_switch


cdef int has_error_code(int vector) noexcept nogil:
    """Exceptions that push an error code (SDM Table 6-1): #DF #TS #NP #SS #GP #PF #AC #CP."""
    return vector == 8 or (10 <= vector <= 14) or vector == 17 or vector == 21


cdef inline int exc_class(int v) noexcept nogil:
    """Table 6-4: 0 benign, 1 contributory, 2 page fault, 3 double fault."""
    if v == 0 or (10 <= v <= 13):
        return 1
    if v == 14 or v == 20:
        return 2
    if v == 8:
        return 3
    return 0


cdef inline int push_sys(Cpu* c, uint64_t* sp, uint64_t base, int size, uint64_t v, int sys, uint64_t mask) noexcept:
    sp[0] = (sp[0] - <uint64_t>size) & mask
    return lin_write_slow(c, base + sp[0], size, v, ACC_W | (ACC_SYS if sys else 0))


cdef int deliver_real(Cpu* c, int vector) noexcept:
    cdef uint64_t ent = 0, sp = c.regs[RSP]
    cdef uint64_t fl = get_rflags(c)
    cdef uint64_t ssb = c.seg[SS].base
    if <uint64_t>vector * 4 + 3 > c.idtr_limit:
        return gp0(c)
    if lin_read_slow(c, c.idtr_base + <uint64_t>vector * 4, 4, &ent, ACC_R):
        return EXC
    if push_sys(c, &sp, ssb, 2, fl, 0, 0xFFFF) or push_sys(c, &sp, ssb, 2, c.seg[CS].sel, 0, 0xFFFF) \
            or push_sys(c, &sp, ssb, 2, c.rip, 0, 0xFFFF):
        return EXC
    c.regs[RSP] = (c.regs[RSP] & ~(<uint64_t>0xFFFF)) | sp
    c.rflags = fl & ~(<uint64_t>(F_IF | F_TF | F_AC | F_RF))
    c.lf_op = LF_NONE
    set_seg_real(c, CS, <uint16_t>(ent >> 16))
    c.rip = ent & 0xFFFF
    return OK


cdef int tss_stack(Cpu* c, int dpl, int ist, uint64_t* rsp, uint16_t* ss) noexcept:
    """The stack for a privilege change: TSS.RSPn / ISTn in IA-32e mode (SDM 7.7), SSn:ESPn otherwise (7.2.1)."""
    cdef uint64_t v = 0, off
    cdef Seg* tr = &c.seg[TR]
    if (c.efer >> 10) & 1:
        off = 36 + 8 * (ist - 1) if ist else 4 + 8 * dpl
        if off + 7 > tr.limit:
            return raise_exc(c, TS_VEC, 1, tr.sel & 0xFFFC)
        if lin_read_slow(c, tr.base + off, 8, &v, ACC_R | ACC_SYS):
            return EXC
        rsp[0] = v
        ss[0] = <uint16_t>dpl
        return OK
    off = 4 + 8 * dpl
    if off + 5 > tr.limit:
        return raise_exc(c, TS_VEC, 1, tr.sel & 0xFFFC)
    if lin_read_slow(c, tr.base + off, 4, &v, ACC_R | ACC_SYS):
        return EXC
    rsp[0] = v
    if lin_read_slow(c, tr.base + off + 4, 2, &v, ACC_R | ACC_SYS):
        return EXC
    ss[0] = <uint16_t>v
    return OK


cdef int task_gate(Cpu* c, uint64_t glo, int kind, uint32_t ext) noexcept:
    """An interrupt or exception through a task gate (SDM 6.12.2): the checks on its TSS
    (x86._task), then the task switch. One that becomes a VM exit reports the instruction of a
    software interrupt or exception (INT n, INT3, INTO) as its RIP (SDM Vol. 3C 28.3.3)."""
    cdef uint16_t tss = <uint16_t>(glo >> 16)
    cdef int st
    if new_tss_checks(c, tss, TS_IDT, ext):
        return EXC
    st = task_switch(c, NULL, tss, TS_IDT)
    if st == STOP and c.stop_reason == STOP_EXIT and (kind == DK_SOFT_INT or kind == DK_SOFT_EXC):
        c.rip -= c.dv_len
    return st


cdef int deliver_protected(Cpu* c, int vector, int kind, int has_error, uint32_t error) noexcept:
    """Through an interrupt or trap gate (SDM 6.12.1, 6.14.1), or a task gate (`task_gate`)."""
    cdef int long_mode = (c.efer >> 10) & 1
    cdef int gsize = 16 if long_mode else 8
    cdef uint64_t glo = 0, ghi = 0, dlo = 0, dhi = 0
    cdef uint32_t ext = 0 if kind == DK_SOFT_INT or kind == DK_SOFT_EXC else 1
    cdef uint32_t idt_err = (<uint32_t>vector << 3) | 2 | ext
    cdef int gtype, gdpl, ist, dpl, new_cpl, osz, conforming
    cdef uint16_t sel, new_ss = 0
    cdef uint64_t offset, sp, new_sp = 0, fl, ssbase, mask
    cdef uint64_t old_ss = c.seg[SS].sel, old_sp = c.regs[RSP], old_cs = c.seg[CS].sel
    cdef Seg cs, ss
    cdef int priv_change
    if c.rflags & F_VM:
        (<object>c.owner)._unsupported("interrupt delivery from virtual-8086 mode")
        return STOP
    if <uint64_t>vector * gsize + gsize - 1 > c.idtr_limit:
        return raise_exc(c, GP_VEC, 1, idt_err)
    if lin_read_slow(c, c.idtr_base + <uint64_t>vector * gsize, 8, &glo, ACC_R | ACC_SYS):
        return EXC
    if long_mode and lin_read_slow(c, c.idtr_base + <uint64_t>vector * gsize + 8, 8, &ghi, ACC_R | ACC_SYS):
        return EXC
    gtype = (glo >> 40) & 0x1F           # S bit included: must be a system descriptor
    gdpl = (glo >> 45) & 3
    if long_mode:
        if gtype != 0xE and gtype != 0xF:
            return raise_exc(c, GP_VEC, 1, idt_err)    # a task gate too (SDM 6.14.1)
    elif gtype not in (0x5, 0x6, 0x7, 0xE, 0xF):
        return raise_exc(c, GP_VEC, 1, idt_err)
    if (kind == DK_SOFT_INT or kind == DK_SOFT_EXC) and gdpl < c.cpl:
        return raise_exc(c, GP_VEC, 1, idt_err)       # SDM 6.12.1.1
    if not ((glo >> 47) & 1):
        return raise_exc(c, NP_VEC, 1, idt_err)
    if gtype == 0x5:
        return task_gate(c, glo, kind, ext)
    sel = <uint16_t>((glo >> 16) & 0xFFFF)
    offset = (glo & 0xFFFF) | ((glo >> 32) & 0xFFFF0000)
    if long_mode:
        offset |= (ghi & 0xFFFFFFFF) << 32
    ist = <int>((glo >> 32) & 7) if long_mode else 0
    if (sel & 0xFFFC) == 0:
        return raise_exc(c, GP_VEC, 1, ext)
    if read_descriptor(c, sel, &dlo, &dhi, GP_VEC):
        c.exc_error = (sel & 0xFFFC) | ext
        return EXC
    dpl = (dlo >> 45) & 3
    conforming = (dlo >> 42) & 1
    if not ((dlo >> 44) & 1) or not ((dlo >> 43) & 1) or dpl > c.cpl:
        return raise_exc(c, GP_VEC, 1, (sel & 0xFFFC) | ext)
    if long_mode and (not ((dlo >> 53) & 1) or ((dlo >> 54) & 1)):
        return raise_exc(c, GP_VEC, 1, (sel & 0xFFFC) | ext)   # must be a 64-bit code segment
    if not ((dlo >> 47) & 1):
        return raise_exc(c, NP_VEC, 1, (sel & 0xFFFC) | ext)
    new_cpl = c.cpl if conforming else dpl
    priv_change = new_cpl < c.cpl
    fl = get_rflags(c)
    if long_mode:
        osz = 8
        mask = 0xFFFFFFFFFFFFFFFF
        if priv_change or ist:
            if tss_stack(c, new_cpl, ist, &new_sp, &new_ss):
                return EXC
            sp = new_sp
        else:
            sp = c.regs[RSP]
        sp &= ~(<uint64_t>0xF)                         # SDM 6.14.2: 16-byte aligned frame
        ssbase = 0
        if push_sys(c, &sp, 0, 8, old_ss, new_cpl < 3, mask) or push_sys(c, &sp, 0, 8, old_sp, new_cpl < 3, mask) \
                or push_sys(c, &sp, 0, 8, fl, new_cpl < 3, mask) or push_sys(c, &sp, 0, 8, old_cs, new_cpl < 3, mask) \
                or push_sys(c, &sp, 0, 8, c.rip, new_cpl < 3, mask):
            return EXC
        if has_error and push_sys(c, &sp, 0, 8, error, new_cpl < 3, mask):
            return EXC
        if priv_change:
            c.seg[SS].sel = new_cpl
            c.seg[SS].base = 0
            c.seg[SS].limit = 0
            c.seg[SS].attr = 0x10000 | (<uint32_t>new_cpl << 5)
    else:
        osz = 4 if (gtype & 8) else 2
        if priv_change:
            if tss_stack(c, new_cpl, 0, &new_sp, &new_ss):
                return EXC
            if (new_ss & 0xFFFC) == 0 or read_descriptor(c, new_ss, &dlo, &dhi, TS_VEC):
                if c.exc_vector == SLAT_FAULT_VEC and (new_ss & 0xFFFC):
                    return EXC                    # the descriptor read: a second-level fault
                return raise_exc(c, TS_VEC, 1, (new_ss & 0xFFFC) | ext)
            unpack_descriptor(dlo | (<uint64_t>1 << 40), 0, &ss, new_ss)
            mask = 0xFFFFFFFF if (ss.attr >> 14) & 1 else 0xFFFF
            sp = new_sp & mask
            ssbase = ss.base
        else:
            mask = 0xFFFFFFFF if c.stack_size == 4 else 0xFFFF
            sp = c.regs[RSP] & mask
            ssbase = c.seg[SS].base
        if priv_change:
            if push_sys(c, &sp, ssbase, osz, old_ss, 1, mask) or push_sys(c, &sp, ssbase, osz, old_sp, 1, mask):
                return EXC
        if push_sys(c, &sp, ssbase, osz, fl, new_cpl < 3, mask) or push_sys(c, &sp, ssbase, osz, old_cs, new_cpl < 3, mask) \
                or push_sys(c, &sp, ssbase, osz, c.rip, new_cpl < 3, mask):
            return EXC
        if has_error and push_sys(c, &sp, ssbase, osz, error, new_cpl < 3, mask):
            return EXC
        if priv_change:
            c.seg[SS] = ss
        if osz == 2:
            offset &= 0xFFFF
    # commit: the new CS, stack pointer and RFLAGS
    if mask == 0xFFFF:
        c.regs[RSP] = (c.regs[RSP] & ~(<uint64_t>0xFFFF)) | sp
    else:
        c.regs[RSP] = sp
    unpack_descriptor(dlo | (<uint64_t>1 << 40), 0, &cs, <uint16_t>((sel & 0xFFFC) | new_cpl))
    read_descriptor(c, sel, &dlo, &dhi, GP_VEC)
    unpack_descriptor(dlo | (<uint64_t>1 << 40), 0, &cs, <uint16_t>((sel & 0xFFFC) | new_cpl))
    c.seg[CS] = cs
    fl &= ~(<uint64_t>(F_TF | F_NT | F_RF | F_VM))
    if not (gtype & 1):
        fl &= ~(<uint64_t>F_IF)                   # interrupt gate (not a trap gate)
    c.rflags = fl
    c.lf_op = LF_NONE
    c.rip = offset
    update_mode(c)
    return OK


# An event storm: a handler whose first instruction faults again (a null DS, an unmapped handler
# page, a stack that wraps) delivers exceptions forever without retiring an instruction, so the
# instruction limit alone would never end the run. After STORM_MAX deliveries in a row with no
# instruction retired, the run ends as a runaway guest (x86.InstructionLimit, API.md).
cdef enum:
    STORM_MAX = 1 << 16


cdef int deliver_event(Cpu* c, int vector, int kind, int has_error, uint32_t error) noexcept:
    return deliver_event_at(c, vector, kind, has_error, error, c.rip)


cdef int slat_fault_event(Cpu* c) noexcept:
    """A second-level translation fault (raise_slat_fault, _defs.pxd) ends the instruction or the
    event delivery that made the access, with RIP where a fault would leave it. It is offered to
    the intercept hook as EV_SLAT_FAULT (a = guest-physical address, b = the slat's fault code);
    it is not an exception of the guest, so a hook that does not take it leaves the model with
    nothing it could deliver: the run stops as unsupported, naming it."""
    cdef int st
    if c.exit_request == 2:
        return PYERR            # a second-level translation written in Python raised
    if c.intercept != NULL:
        # while it is asked, Cpu.exc_iret_nmi says whether the access belonged to an IRET that
        # ended NMI blocking (VMX: bit 12 of the EPT-violation qualification)
        st = c.intercept(c, EV_SLAT_FAULT, c.slat_gpa, c.slat_code)
        c.exc_iret_nmi = 0
        if st == EXC and c.exc_vector != SLAT_FAULT_VEC:
            return deliver_pending_exception(c)    # the hook made it an exception (VMX #VE)
        if st:
            return st
    c.exc_iret_nmi = 0
    (<object>c.owner)._unsupported(
        f"a second-level translation fault (EV_SLAT_FAULT: guest-physical address {c.slat_gpa:#x}, "
        f"fault code {c.slat_code}) that no intercept hook took")
    return STOP


cdef inline int event_storm(Cpu* c) noexcept:
    if c.icount == c.storm_icount:
        c.storm_count += 1
        if c.storm_count >= STORM_MAX:
            c.storm_count = 0
            c.stop_reason = STOP_STORM
            return 1
        return 0
    c.storm_icount = c.icount
    c.storm_count = 0
    return 0


cdef int deliver_event_at(Cpu* c, int vector, int kind, int has_error, uint32_t error,
                          uint64_t restart_rip) noexcept:
    return deliver_event_ex(c, vector, kind, has_error, error, restart_rip, 0)


cdef inline int soft_kind(int kind) noexcept nogil:
    return kind == DK_SOFT_INT or kind == DK_SOFT_EXC or kind == DK_PRIV_SOFT


cdef int deliver_event_ex(Cpu* c, int vector, int kind, int has_error, uint32_t error,
                          uint64_t restart_rip, int injected) noexcept:
    """Deliver one event, applying the double-fault rules to exceptions raised while delivering.
    An exception raised while delivering is a fault: its saved RIP is `restart_rip` (for INT n,
    INT3, INTO and INT1 that is the instruction itself, SDM 6.5 and 6.12.1.1).

    SDM 6.15 Table 6-5: benign then anything -> the second is handled serially; contributory
    then contributory -> #DF; page fault then contributory or page fault -> #DF; a
    contributory or page fault while delivering #DF -> triple fault (shutdown).

    The intercept hook is asked about each exception before it is delivered; a nested exception
    is asked about as itself (before any #DF it would combine into) while `c.delivering` still
    names the event whose delivery it interrupted. An `injected` event is not asked about (the
    layer that injects it has decided), its nested exceptions are."""
    cdef int st, first = -1, second, depth = 0
    cdef int offer = not injected
    cdef uint64_t saved_rip = restart_rip
    # a fault of an IRET that ended NMI blocking says so when it is offered (EVF_IRET_NMI)
    cdef uint64_t flags = (<uint64_t>EVF_IRET_NMI << 32) if c.exc_iret_nmi else 0
    c.exc_iret_nmi = 0
    # an event ends the instruction (a fault: it did not complete) and clears TF: no
    # single-step trap is left pending for it (SDM 17.3.1.4, 6.12.1.3)
    c.tf_armed = 0
    if event_storm(c):
        return STOP
    while True:
        if offer and c.intercept != NULL and (kind == DK_EXCEPTION or kind == DK_SOFT_EXC or kind == DK_NMI):
            # b: the error code (0xFFFFFFFF: none) and the delivery kind in bits 39:32
            st = c.intercept(c, EV_EXCEPTION, vector,
                             (error if has_error else 0xFFFFFFFF) | (<uint64_t>kind << 32) | flags)
            if st:
                c.delivering = -1
                if vector == DB_VEC:
                    c.db_status = 0        # the #DB became an exit: DR6 is left as it was
                return st
        offer = 1
        flags = 0
        if first >= 0:
            # an exception while delivering: classify (Table 6-5)
            second = exc_class(vector)
            if first == 3 and second != 0 or depth > 3:
                c.delivering = -1
                c.stop_reason = STOP_SHUTDOWN
                if c.intercept != NULL:
                    st = c.intercept(c, EV_TRIPLE_FAULT, 0, 0)
                    if st:
                        return st
                return STOP
            if (first == 1 and second == 1) or (first == 2 and second != 0):
                vector, kind, has_error, error = DF_VEC, DK_EXCEPTION, 1, 0
                c.delivering = -1          # #DF replaces the event it interrupted
                if c.intercept != NULL:
                    st = c.intercept(c, EV_EXCEPTION, DF_VEC, <uint64_t>DK_EXCEPTION << 32)
                    if st:
                        return st
        if vector == PF_VEC and kind == DK_EXCEPTION:
            c.cr2 = c.pf_addr               # SDM 6.15 #PF: CR2 holds the faulting linear address
        elif vector == DB_VEC and kind == DK_EXCEPTION:
            # SDM 18.2.3: the #DB's status bits reach DR6 as it is delivered (bit 12 has none)
            c.dr6 |= c.db_status & 0xE00F
            c.db_status = 0
        c.halted = 0
        c.delivering = vector
        c.dv_kind = kind
        c.dv_has_error = has_error
        c.dv_error = error
        c.dv_len = <uint32_t>(c.rip - saved_rip) if soft_kind(kind) else 0
        if not (c.cr0 & 1):
            st = deliver_real(c, vector)
        else:
            st = deliver_protected(c, vector, kind, has_error, error)
        if st == EXC and c.exc_vector == SLAT_FAULT_VEC:
            # a second-level fault on an IDT, GDT, TSS or stack access: the event is not
            # delivered and no double-fault rule applies (it is not an exception); the hook sees
            # `delivering` (VMX IDT-vectoring information, SVM EXITINTINFO) and RIP where the
            # event would restart
            c.rip = saved_rip
            st = slat_fault_event(c)
            c.delivering = -1
            return st
        if st != EXC:
            c.delivering = -1
            if st == OK:
                c.step_due = 1              # an event delivered completes a step (EV_STEP)
                if c.step_exit:
                    c.next_event = c.icount
                if vector == NMI_VEC and kind == DK_NMI:
                    c.nmi_blocked = 1
            return st
        first = exc_class(vector) if (kind == DK_EXCEPTION) else 0
        depth += 1
        c.rip = saved_rip
        vector, kind, has_error, error = c.exc_vector, DK_EXCEPTION, c.exc_has_error, c.exc_error


cdef int deliver_pending_exception(Cpu* c) noexcept:
    """The loop calls this after a handler returned EXC."""
    cdef int kind = DK_EXCEPTION
    if c.exc_vector == SLAT_FAULT_VEC:
        c.rip = c.rip_start         # the instruction made no architectural progress
        return slat_fault_event(c)
    if c.exc_soft == 1:
        kind = DK_SOFT_INT
    elif c.exc_soft == 2:
        kind = DK_SOFT_EXC
    elif c.exc_soft == 3:
        kind = DK_PRIV_SOFT
    if not c.exc_trap:
        c.rip = c.rip_start
    if kind != DK_EXCEPTION:
        # a software interrupt whose delivery faults reports the INT instruction itself
        return deliver_event_at(c, c.exc_vector, kind, c.exc_has_error, c.exc_error, c.rip_start)
    return deliver_event_at(c, c.exc_vector, kind, c.exc_has_error, c.exc_error, c.rip)
