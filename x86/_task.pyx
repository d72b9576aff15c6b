# Task switching (SDM Vol. 3A 8.3 "Task Switching", Vol. 2 JMP / CALL / INT n / IRET
# "Operation"): every check the processor makes on the new task's TSS before it switches, with
# its fault. The switch itself (saving the old task, loading the new one) is not modelled: once
# the checks pass it is offered to the intercept hook (EV_TASK_SWITCH: under VMX a task switch
# is a VM exit, SDM Vol. 3C 26.4.2), and without one that takes it the run stops with
# x86.Unsupported naming it.
from libc.stdint cimport uint16_t, uint32_t, uint64_t
from x86._defs cimport *
from x86._mem cimport lin_read_slow
from x86._seg cimport read_descriptor

cdef tuple _SOURCE = ("CALL", "IRET", "JMP", "a task gate in the IDT")


cdef int new_tss_checks(Cpu* c, uint16_t sel, int source, uint32_t ext) noexcept:
    """The new TSS descriptor (Vol. 3A 8.3 steps 2-4, Tables 6-6 and 8-1): the selector names
    the GDT within its limit, the descriptor is a TSS that is available (busy for an IRET
    return), present, and large enough (limit 67H for a 32-bit TSS, 2BH for a 16-bit one).
    IRET reports the selector problems as #TS, JMP, CALL and the IDT as #GP; `ext` is the
    EXT bit of the error code (an event external to the program, Vol. 3A 6.13)."""
    cdef int vec = TS_VEC if source == TS_IRET else GP_VEC
    cdef uint32_t err = (sel & 0xFFFC) | ext
    cdef uint64_t lo = 0, hi = 0, limit
    cdef int kind
    if sel & 4:
        return raise_exc(c, vec, 1, err)               # the TI flag names the LDT
    if source == TS_IRET and (sel & 0xFFFC) == 0:
        return raise_exc(c, TS_VEC, 1, ext)            # a null back link
    if read_descriptor(c, sel, &lo, &hi, vec):
        if c.exc_vector == vec:
            c.exc_error = err                          # beyond the GDT limit
        return EXC
    kind = (lo >> 40) & 0x1F                           # type with the S bit: a system descriptor
    if source == TS_IRET:
        if kind != 0x3 and kind != 0xB:
            return raise_exc(c, TS_VEC, 1, err)        # IRET returns to a busy task
    elif kind != 0x1 and kind != 0x9:
        return raise_exc(c, GP_VEC, 1, err)            # JMP, CALL, interrupts: an available TSS
    if not ((lo >> 47) & 1):
        return raise_exc(c, NP_VEC, 1, err)
    limit = (lo & 0xFFFF) | ((lo >> 32) & 0xF0000)
    if (lo >> 55) & 1:
        limit = (limit << 12) | 0xFFF
    if limit < (0x67 if kind & 8 else 0x2B):
        return raise_exc(c, TS_VEC, 1, err)
    return OK


cdef int back_link(Cpu* c, uint16_t* sel) noexcept:
    """IRET with NT = 1 returns to the task named by the previous-task link of the current
    TSS (offset 0, Vol. 3A 8.2.1); the link is then checked as a new TSS (busy, #TS)."""
    cdef uint64_t v = 0
    if c.seg[TR].limit < 1:
        return raise_exc(c, TS_VEC, 1, c.seg[TR].sel & 0xFFFC)
    if lin_read_slow(c, c.seg[TR].base, 2, &v, ACC_R | ACC_SYS):
        return EXC
    sel[0] = <uint16_t>v
    return new_tss_checks(c, sel[0], TS_IRET, 0)


cdef int task_switch(Cpu* c, Insn* i, uint16_t sel, int source) noexcept:
    """The checks passed: offer the switch to the intercept hook; an instruction that starts a
    switch which becomes an exit does not execute (RIP stays at it). `i` is the instruction
    (NULL for a task gate in the IDT)."""
    cdef int st
    if c.intercept != NULL:
        if i != NULL:
            c.cur_insn = i
        st = c.intercept(c, EV_TASK_SWITCH, sel, <uint64_t>source)
        if st:
            if i != NULL and st == STOP:
                c.rip = c.rip_start
            return st
    if i != NULL:
        c.rip = c.rip_start
    (<object>c.owner)._unsupported(f"task switch to TSS selector {sel:#06x} by {_SOURCE[source]} "
                                   f"(task switching is not modelled)")
    return STOP
