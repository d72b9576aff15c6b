# Control transfer and the stack (SDM Vol. 1 6.2-6.4; Vol. 2 CALL, RET, JMP, Jcc, LOOP,
# PUSH, POP, ENTER, LEAVE, PUSHF, POPF, INT n, IRET, SYSCALL, SYSRET).
from libc.stdint cimport uint16_t, uint32_t, uint64_t, int64_t
from x86._defs cimport *
from x86._mem cimport ea_of, ld, st, ldw, rd_lin, wr_lin, linear
from x86._seg cimport load_seg, load_cs, update_mode, read_descriptor, unpack_descriptor, set_seg_real
from x86._task cimport TS_CALL, TS_IRET, TS_JMP, new_tss_checks, back_link, task_switch
import iced_x86 as _ix


# --- the stack ------------------------------------------------------------------------------

cdef inline uint64_t sp_mask(Cpu* c) noexcept nogil:
    return size_mask(c.stack_size)

cdef inline void set_sp(Cpu* c, uint64_t sp) noexcept nogil:
    if c.stack_size == 8:
        c.regs[RSP] = sp
    elif c.stack_size == 4:
        c.regs[RSP] = <uint32_t>sp
    else:
        c.regs[RSP] = (c.regs[RSP] & ~(<uint64_t>0xFFFF)) | (sp & 0xFFFF)

cdef inline int push(Cpu* c, int size, uint64_t v) noexcept:
    cdef uint64_t sp = (c.regs[RSP] - <uint64_t>size) & sp_mask(c)
    if st(c, SS, sp, size, v):
        return stack_fault(c)
    set_sp(c, sp)
    return OK

cdef inline int pop(Cpu* c, int size, uint64_t* v) noexcept:
    cdef uint64_t sp = c.regs[RSP] & sp_mask(c)
    if ld(c, SS, sp, size, v):
        return stack_fault(c)
    set_sp(c, sp + <uint64_t>size)
    return OK

cdef inline int peek(Cpu* c, uint64_t offset, int size, uint64_t* v) noexcept:
    if ld(c, SS, (c.regs[RSP] + offset) & sp_mask(c), size, v):
        return stack_fault(c)
    return OK

cdef inline int branch_to(Cpu* c, uint64_t target, int osz) noexcept:
    """Near transfer: the target is truncated to the operand size and checked against CS.limit
    outside 64-bit mode, or for canonical form in it (#GP(0))."""
    target &= size_mask(osz)
    if c.seg_checks:
        if target > c.seg[CS].limit:
            return gp0(c)
    elif not canonical(c, target):
        return gp0(c)
    c.rip = target
    return OK

cdef inline int rm_value(Cpu* c, Insn* i, uint64_t* v) noexcept:
    if i.k0 == K_REG:
        v[0] = rd_reg(c, i.r0, i.osz)
        return OK
    return ld(c, i.seg, ea_of(c, i), i.osz, v)

# --- near branches --------------------------------------------------------------------------

cdef int h_jmp(Cpu* c, Insn* i) noexcept:
    cdef uint64_t t = 0
    if i.k0 == K_IMM:
        return branch_to(c, c.rip + i.imm, i.osz)
    if rm_value(c, i, &t):
        return EXC
    return branch_to(c, t, i.osz)

cdef int h_jcc(Cpu* c, Insn* i) noexcept:
    if test_cond(c, i.cond):
        return branch_to(c, c.rip + i.imm, i.osz)
    return OK

cdef int h_call(Cpu* c, Insn* i) noexcept:
    cdef uint64_t t = 0, sp
    if i.k0 == K_IMM:
        t = c.rip + i.imm
    elif rm_value(c, i, &t):
        return EXC
    sp = c.regs[RSP]
    if push(c, i.osz, c.rip):
        return EXC
    if branch_to(c, t, i.osz):
        c.regs[RSP] = sp
        return EXC
    return OK

cdef int h_ret(Cpu* c, Insn* i) noexcept:
    cdef uint64_t t = 0
    if peek(c, 0, i.osz, &t):
        return EXC
    if branch_to(c, t, i.osz):
        return EXC
    set_sp(c, (c.regs[RSP] + <uint64_t>i.osz + (i.imm & 0xFFFF if i.k0 == K_IMM else 0)) & sp_mask(c))
    return OK

cdef inline uint64_t count_reg(Cpu* c, Insn* i) noexcept nogil:
    return c.regs[RCX] & size_mask(i.asz)

cdef inline void set_count(Cpu* c, Insn* i, uint64_t v) noexcept nogil:
    wr_reg(c, RCX * 8, i.asz, v)

cdef int h_loop(Cpu* c, Insn* i) noexcept:
    """LOOP/LOOPE/LOOPNE: the count register is rCX of the address size; flags unchanged."""
    cdef uint64_t n = (count_reg(c, i) - 1) & size_mask(i.asz)
    cdef int take
    set_count(c, i, n)
    take = n != 0
    if i.mnem == _LOOPE:
        take = take and lazy_zf(c)
    elif i.mnem == _LOOPNE:
        take = take and not lazy_zf(c)
    if take:
        return branch_to(c, c.rip + i.imm, i.osz)
    return OK

cdef int h_jrcxz(Cpu* c, Insn* i) noexcept:
    if count_reg(c, i) == 0:
        return branch_to(c, c.rip + i.imm, i.osz)
    return OK

# --- PUSH POP ENTER LEAVE ----------------------------------------------------------------

cdef int h_push(Cpu* c, Insn* i) noexcept:
    cdef uint64_t v = 0
    if i.k0 == K_IMM:
        v = i.imm
    elif i.k0 == K_SREG:
        v = c.seg[i.r0].sel
    elif rm_value(c, i, &v):
        return EXC
    return push(c, i.osz, v)

cdef int h_pop(Cpu* c, Insn* i) noexcept:
    cdef uint64_t v = 0, old = c.regs[RSP]
    cdef int sz = i.osz
    if i.k0 == K_SREG:
        sz = 8 if c.mode64 else (2 if i.osz == 2 else 4)
    if pop(c, sz, &v):
        return EXC
    if i.k0 == K_REG:
        wr_reg(c, i.r0, i.osz, v)
        return OK
    if i.k0 == K_SREG:
        if load_seg(c, i.r0, <uint16_t>v):
            c.regs[RSP] = old
            return EXC
        if i.r0 == SS:
            c.inhibit = INHIBIT_MOVSS         # MOV SS / POP SS shadow (SDM 6.8.3)
            c.shadow_end = c.icount + 2
            c.next_event = c.icount
        return REDECODE
    # memory destination: its address is computed after rSP is incremented
    if st(c, i.seg, ea_of(c, i), i.osz, v):
        c.regs[RSP] = old
        return EXC
    return OK

cdef int h_leave(Cpu* c, Insn* i) noexcept:
    cdef uint64_t v = 0, old = c.regs[RSP]
    set_sp(c, c.regs[RBP])
    if pop(c, i.osz, &v):
        c.regs[RSP] = old
        return EXC
    wr_reg(c, RBP * 8, i.osz, v)
    return OK

cdef int h_enter(Cpu* c, Insn* i) noexcept:
    """ENTER imm16, imm8 (SDM Vol. 2A ENTER, Operation)."""
    cdef uint64_t old = c.regs[RSP], frame, v = 0, bp = c.regs[RBP]
    cdef int level = <int>(i.imm2 & 31), k
    if push(c, i.osz, bp):
        return EXC
    frame = c.regs[RSP] & sp_mask(c)
    for k in range(1, level):
        bp = (bp - <uint64_t>i.osz) & sp_mask(c)
        if ld(c, SS, bp, i.osz, &v) or push(c, i.osz, v):
            c.regs[RSP] = old
            return stack_fault(c)
    if level > 0 and push(c, i.osz, frame):
        c.regs[RSP] = old
        return EXC
    wr_reg(c, RBP * 8, c.stack_size if i.osz > c.stack_size else i.osz, frame)
    set_sp(c, (c.regs[RSP] - (i.imm & 0xFFFF)) & sp_mask(c))
    return OK

# --- RFLAGS -----------------------------------------------------------------------------------

cdef int h_pushf(Cpu* c, Insn* i) noexcept:
    """PUSHF: VM and RF are pushed as 0 (SDM Vol. 2B PUSHF)."""
    cdef uint64_t f = get_rflags(c) & ~(<uint64_t>(F_VM | F_RF))
    if (c.rflags & F_VM) and ((c.rflags >> 12) & 3) < 3:
        return gp0(c)
    return push(c, i.osz, f)

cdef uint64_t popf_mask(Cpu* c, int osz) noexcept:
    """Which bits POPF/IRET may change (SDM Vol. 2B POPF, Operation)."""
    cdef uint64_t m = F_ARITH | F_TF | F_DF | F_NT | F_AC | F_ID
    cdef int iopl = (c.rflags >> 12) & 3
    if not (c.cr0 & 1) or c.cpl == 0:
        m |= F_IF | F_IOPL
    elif c.cpl <= iopl:
        m |= F_IF
    if osz == 2:
        m &= 0xFFFF
    return m

cdef int set_rflags_masked(Cpu* c, uint64_t v, uint64_t m) noexcept:
    cdef uint64_t old = get_rflags(c)
    c.rflags = ((old & ~m) | (v & m) | 2) & ~(<uint64_t>F_RF)
    c.lf_op = LF_NONE
    if (c.rflags & F_IF) and not (old & F_IF):
        c.next_event = c.icount
    if c.rflags & F_TF:
        c.next_event = c.icount
    return OK

cdef int h_popf(Cpu* c, Insn* i) noexcept:
    cdef uint64_t v = 0
    if (c.rflags & F_VM) and ((c.rflags >> 12) & 3) < 3:
        return gp0(c)
    if pop(c, i.osz, &v):
        return EXC
    set_rflags_masked(c, v, popf_mask(c, i.osz))
    c.next_event = c.icount
    return REDECODE

# --- software interrupts and IRET ------------------------------------------------------------

cdef int h_int(Cpu* c, Insn* i) noexcept:
    """INT n: a trap; the gate's DPL is checked against CPL (SDM 6.12.1.1)."""
    if (c.rflags & F_VM) and ((c.rflags >> 12) & 3) < 3:
        return gp0(c)
    raise_exc(c, <int>(i.imm & 0xFF), 0, 0)
    c.exc_trap = 1
    c.exc_soft = 1
    return EXC

cdef int h_int3(Cpu* c, Insn* i) noexcept:
    raise_exc(c, BP_VEC, 0, 0)
    c.exc_trap = 1
    c.exc_soft = 2
    return EXC

cdef int h_into(Cpu* c, Insn* i) noexcept:
    if c.mode64:
        return ud(c)
    if not lazy_of(c):
        return OK
    raise_exc(c, OF_VEC, 0, 0)
    c.exc_trap = 1
    c.exc_soft = 2
    return EXC

cdef int h_int1(Cpu* c, Insn* i) noexcept:
    raise_exc(c, DB_VEC, 0, 0)
    c.exc_trap = 1
    c.exc_soft = 3
    return EXC

cdef int h_iret(Cpu* c, Insn* i) noexcept:
    """IRET/IRETD/IRETQ. NMI blocking ends with IRET, even an IRET that faults (SDM Vol. 3A
    6.7.1), unless another layer keeps it (Cpu.iret_nmi_keep: VMX "NMI exiting" without
    "virtual NMIs", Vol. 3C 26.3). While such an IRET runs, Cpu.exc_iret_nmi says so (for a
    layer its memory accesses exit to, VMX EPT violations); a fault it raises is offered with
    EVF_IRET_NMI."""
    cdef int unblocked = c.nmi_blocked != 0 and not c.iret_nmi_keep
    cdef int st
    if unblocked:
        c.nmi_blocked = 0
        c.next_event = c.icount         # an NMI or an NMI window may be waiting
        c.exc_iret_nmi = 1
    st = iret(c, i, unblocked)
    if st != EXC:
        c.exc_iret_nmi = 0
    return st

cdef int iret(Cpu* c, Insn* i, int unblocked) noexcept:
    """IRET (SDM Vol. 2A IRET, Operation): real mode, same-privilege and outer-privilege
    returns, IA-32e mode which always pops SS:RSP, and the task return (NT = 1) up to the
    task switch (x86._task)."""
    cdef uint64_t rip = 0, cs = 0, fl = 0, sp = 0, ss = 0, lo = 0, hi = 0
    cdef int osz = i.osz, rpl
    cdef uint64_t m
    cdef uint16_t link = 0
    cdef Seg s
    if not (c.cr0 & 1):
        if pop(c, osz, &rip) or pop(c, osz, &cs) or pop(c, osz, &fl):
            return EXC
        set_seg_real(c, CS, <uint16_t>cs)
        c.rip = rip & size_mask(osz)
        set_rflags_masked(c, fl, popf_mask(c, osz))
        c.next_event = c.icount         # an NMI or an NMI window may be waiting
        update_mode(c)
        return REDECODE
    if c.rflags & F_VM:
        (<object>c.owner)._unsupported("IRET in virtual-8086 mode")
        return STOP
    if c.rflags & F_NT:
        if (c.efer >> 10) & 1:
            return gp0(c)
        if back_link(c, &link):
            return EXC
        if unblocked:
            c.nmi_blocked = 1           # an IRET whose task switch becomes a VM exit does not execute
        return task_switch(c, i, link, TS_IRET)
    if peek(c, 0, osz, &rip) or peek(c, osz, osz, &cs) or peek(c, 2 * osz, osz, &fl):
        return EXC
    rpl = cs & 3
    if (cs & 0xFFFC) == 0:
        return gp0(c)
    if rpl < c.cpl:
        return raise_exc(c, GP_VEC, 1, cs & 0xFFFC)
    if c.mode64 or rpl > c.cpl:
        if peek(c, 3 * osz, osz, &sp) or peek(c, 4 * osz, osz, &ss):
            return EXC
    m = popf_mask(c, osz)
    if osz == 4 and c.cpl == 0 and not c.mode64:
        m |= F_VM | F_VIF | F_VIP
        if fl & F_VM:
            (<object>c.owner)._unsupported("IRET to virtual-8086 mode")
            return STOP
    if load_cs(c, <uint16_t>cs, rpl):
        return EXC
    c.rip = rip & size_mask(osz)
    set_rflags_masked(c, fl, m)
    if c.mode64 or rpl > (c.seg[SS].attr >> 5) & 3 or ((c.efer >> 10) & 1):
        if rpl == (c.seg[SS].attr >> 5) & 3 and not c.mode64 and not ((c.efer >> 10) & 1):
            set_sp(c, c.regs[RSP] + 3 * osz)
        else:
            if (ss & 0xFFFC) == 0:
                if not ((c.efer >> 10) & 1) or rpl == 3 or c.seg[CS].attr & 0x2000 == 0:
                    return gp0(c)
                c.seg[SS].sel = <uint16_t>ss
                c.seg[SS].attr = 0x10000 | (<uint32_t>rpl << 5)
                c.seg[SS].base = 0
                c.seg[SS].limit = 0
            else:
                if read_descriptor(c, <uint16_t>ss, &lo, &hi, GP_VEC):
                    return EXC
                unpack_descriptor(lo | (<uint64_t>1 << 40), 0, &s, <uint16_t>ss)
                c.seg[SS] = s
            c.regs[RSP] = sp if osz == 8 else sp & size_mask(osz)
    else:
        set_sp(c, c.regs[RSP] + 3 * osz)
    c.next_event = c.icount
    update_mode(c)
    return REDECODE

# --- far transfers ----------------------------------------------------------------------------

cdef int far_target(Cpu* c, Insn* i, uint64_t* off, uint64_t* sel) noexcept:
    cdef uint64_t ea
    if i.k0 == K_IMM:
        off[0] = i.imm
        sel[0] = i.imm2
        return OK
    ea = ea_of(c, i)
    if ld(c, i.seg, ea, i.osz, off):
        return EXC
    return ld(c, i.seg, (ea + i.osz) & size_mask(i.asz), 2, sel)

cdef int far_system(Cpu* c, Insn* i, uint16_t sel, uint64_t lo, int source) noexcept:
    """Far JMP/CALL to a system descriptor (SDM Vol. 2A JMP and CALL, "Operation"): a TSS or
    a task gate starts a task switch, after the checks of Vol. 3A 8.3 (x86._task); in IA-32e
    mode both are #GP(selector). Call gates are not modelled."""
    cdef int kind = (lo >> 40) & 0xF, dpl = (lo >> 45) & 3
    cdef uint16_t tss
    if kind == 0x4 or kind == 0xC:
        (<object>c.owner)._unsupported("far transfer through a call gate")
        return STOP
    if (c.efer >> 10) & 1 or kind not in (0x1, 0x5, 0x9):
        return raise_exc(c, GP_VEC, 1, sel & 0xFFFC)     # (a busy TSS is not available either)
    if dpl < c.cpl or dpl < (sel & 3):
        return raise_exc(c, GP_VEC, 1, sel & 0xFFFC)
    if kind == 0x5:                                     # task gate: its P bit, then its TSS
        if not ((lo >> 47) & 1):
            return raise_exc(c, NP_VEC, 1, sel & 0xFFFC)
        tss = <uint16_t>(lo >> 16)
    else:
        tss = sel
    if new_tss_checks(c, tss, source, 0):
        return EXC
    return task_switch(c, i, tss, source)

cdef int far_cs_check(Cpu* c, Insn* i, uint16_t sel, int source) noexcept:
    """Same-privilege far JMP/CALL to a code segment (SDM Vol. 2A JMP, "Operation"), or to a
    TSS or task gate (`far_system`)."""
    cdef uint64_t lo = 0, hi = 0
    cdef int dpl
    if not (c.cr0 & 1) or (c.rflags & F_VM):
        return OK
    if (sel & 0xFFFC) == 0:
        return gp0(c)
    if read_descriptor(c, sel, &lo, &hi, GP_VEC):
        return EXC
    if not ((lo >> 44) & 1):
        return far_system(c, i, sel, lo, source)
    if not ((lo >> 43) & 1):
        return raise_exc(c, GP_VEC, 1, sel & 0xFFFC)
    dpl = (lo >> 45) & 3
    if (lo >> 42) & 1:
        if dpl > c.cpl:
            return raise_exc(c, GP_VEC, 1, sel & 0xFFFC)
    elif (sel & 3) > c.cpl or dpl != c.cpl:
        return raise_exc(c, GP_VEC, 1, sel & 0xFFFC)
    return OK

cdef int h_jmp_far(Cpu* c, Insn* i) noexcept:
    cdef uint64_t off = 0, sel = 0
    cdef int r
    if far_target(c, i, &off, &sel):
        return EXC
    r = far_cs_check(c, i, <uint16_t>sel, TS_JMP)
    if r:
        return r
    if load_cs(c, <uint16_t>sel, c.cpl):
        return EXC
    c.rip = off & size_mask(i.osz)
    return REDECODE

cdef int h_call_far(Cpu* c, Insn* i) noexcept:
    cdef uint64_t off = 0, sel = 0, old_sp = c.regs[RSP], old_cs = c.seg[CS].sel
    cdef int r
    if far_target(c, i, &off, &sel):
        return EXC
    r = far_cs_check(c, i, <uint16_t>sel, TS_CALL)
    if r:
        return r
    if push(c, i.osz, old_cs) or push(c, i.osz, c.rip):
        c.regs[RSP] = old_sp
        return EXC
    if load_cs(c, <uint16_t>sel, c.cpl):
        c.regs[RSP] = old_sp
        return EXC
    c.rip = off & size_mask(i.osz)
    return REDECODE

cdef int h_retf(Cpu* c, Insn* i) noexcept:
    """RETF to the same privilege level (an outer-level return pops SS:rSP too)."""
    cdef uint64_t off = 0, sel = 0, sp = 0, ss = 0, lo = 0, hi = 0
    cdef uint64_t extra = i.imm & 0xFFFF if i.k0 == K_IMM else 0
    cdef int rpl
    cdef Seg s
    if peek(c, 0, i.osz, &off) or peek(c, i.osz, i.osz, &sel):
        return EXC
    rpl = sel & 3
    if (c.cr0 & 1) and not (c.rflags & F_VM) and rpl < c.cpl:
        return raise_exc(c, GP_VEC, 1, sel & 0xFFFC)
    if (c.cr0 & 1) and not (c.rflags & F_VM) and rpl > c.cpl:
        if peek(c, 2 * i.osz + extra, i.osz, &sp) or peek(c, 3 * i.osz + extra, i.osz, &ss):
            return EXC
        if load_cs(c, <uint16_t>sel, rpl):
            return EXC
        if read_descriptor(c, <uint16_t>ss, &lo, &hi, GP_VEC):
            return EXC
        unpack_descriptor(lo | (<uint64_t>1 << 40), 0, &s, <uint16_t>ss)
        c.seg[SS] = s
        update_mode(c)
        set_sp(c, sp + extra)
    else:
        if load_cs(c, <uint16_t>sel, c.cpl if (c.cr0 & 1) else 0):
            return EXC
        set_sp(c, c.regs[RSP] + 2 * i.osz + extra)
    c.rip = off & size_mask(i.osz)
    return REDECODE

# --- SYSCALL / SYSRET (SDM Vol. 2B) -----------------------------------------------------------

cdef int h_syscall(Cpu* c, Insn* i) noexcept:
    if not c.mode64 or not (c.efer & 1):
        return ud(c)
    c.regs[RCX] = c.rip
    c.regs[11] = get_rflags(c) & ~(<uint64_t>F_RF)
    c.rflags = (get_rflags(c) & ~c.fmask & ~(<uint64_t>F_RF)) | 2
    c.lf_op = LF_NONE
    c.seg[CS].sel = <uint16_t>((c.star >> 32) & 0xFFFC)
    c.seg[CS].base = 0
    c.seg[CS].limit = 0xFFFFFFFF
    c.seg[CS].attr = 0xA09B                      # 64-bit code, DPL 0, present, G
    c.seg[SS].sel = <uint16_t>(((c.star >> 32) + 8) & 0xFFFC)
    c.seg[SS].base = 0
    c.seg[SS].limit = 0xFFFFFFFF
    c.seg[SS].attr = 0xC093                      # data, DPL 0, B, G
    c.rip = c.lstar
    update_mode(c)
    return REDECODE

cdef int h_sysret(Cpu* c, Insn* i) noexcept:
    cdef uint16_t base = <uint16_t>(c.star >> 48)
    if not (c.efer & 1) or not c.mode64:
        return ud(c)
    if c.cpl != 0:
        return gp0(c)
    if i.osz == 8:
        if not canonical(c, c.regs[RCX]):
            return gp0(c)                        # Intel: non-canonical RCX faults in ring 0
        c.seg[CS].sel = (base + 16) | 3
        c.seg[CS].attr = 0xA0FB                  # 64-bit code, DPL 3
        c.rip = c.regs[RCX]
    else:
        c.seg[CS].sel = base | 3
        c.seg[CS].attr = 0xC0FB                  # 32-bit code, DPL 3
        c.rip = <uint32_t>c.regs[RCX]
    c.seg[CS].base = 0
    c.seg[CS].limit = 0xFFFFFFFF
    c.seg[SS].sel = (base + 8) | 3
    c.seg[SS].attr = (c.seg[SS].attr & ~(<uint32_t>0x10060)) | 0x60 | 0x93
    c.rflags = (c.regs[11] & 0x3C7FD7) | 2
    c.lf_op = LF_NONE
    update_mode(c)
    c.next_event = c.icount
    return REDECODE


cdef uint16_t _LOOPE, _LOOPNE

cdef void register(handler_t* t) noexcept:
    global _LOOPE, _LOOPNE
    M = _ix.Mnemonic
    _LOOPE, _LOOPNE = M.LOOPE, M.LOOPNE
    table = {
        "JMP": <long>h_jmp, "CALL": <long>h_call, "RET": <long>h_ret,
        "LOOP": <long>h_loop, "LOOPE": <long>h_loop, "LOOPNE": <long>h_loop,
        "JCXZ": <long>h_jrcxz, "JECXZ": <long>h_jrcxz, "JRCXZ": <long>h_jrcxz,
        "PUSH": <long>h_push, "POP": <long>h_pop, "LEAVE": <long>h_leave, "ENTER": <long>h_enter,
        "PUSHF": <long>h_pushf, "PUSHFD": <long>h_pushf, "PUSHFQ": <long>h_pushf,
        "POPF": <long>h_popf, "POPFD": <long>h_popf, "POPFQ": <long>h_popf,
        "INT": <long>h_int, "INT3": <long>h_int3, "INTO": <long>h_into, "INT1": <long>h_int1,
        "IRET": <long>h_iret, "IRETD": <long>h_iret, "IRETQ": <long>h_iret,
        "RETF": <long>h_retf, "SYSCALL": <long>h_syscall, "SYSRETQ": <long>h_sysret,
        "SYSRETD": <long>h_sysret, "SYSRET": <long>h_sysret,
    }
    for name in ("O", "NO", "B", "AE", "E", "NE", "BE", "A", "S", "NS", "P", "NP", "L", "GE", "LE", "G"):
        table["J" + name] = <long>h_jcc
    for name, fn in table.items():
        if hasattr(M, name):
            t[getattr(M, name)] = <handler_t><long>fn
    # far JMP/CALL share the mnemonic with near ones: the decoder marks them by code
    from x86 import decode as D
    t[D.FAR_JMP] = h_jmp_far
    t[D.FAR_CALL] = h_call_far
