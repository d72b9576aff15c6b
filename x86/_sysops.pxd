# Helpers shared by the system-instruction modules (_ops_sys, _ops_io, _ops_desc): inline,
# declared once here.
from libc.stdint cimport uint64_t
from x86._defs cimport *
from x86._mem cimport ea_of, ld, st


cdef inline int sensitive(Cpu* c, Insn* i, uint64_t detail) noexcept:
    """Offer the instruction to the intercept hook; nonzero means it became an exit."""
    if c.intercept != NULL:
        c.cur_insn = i
        return c.intercept(c, EV_INSN, i.mnem, detail)
    return OK

cdef inline int disabled(Cpu* c, Insn* i) noexcept:
    """Ask the intercept hook whether another layer disables the instruction (VMX "enable
    RDTSCP", "enable INVPCID" 0); nonzero (EXC, #UD raised) when it does."""
    if c.intercept != NULL:
        c.cur_insn = i
        return c.intercept(c, EV_DISABLED, i.mnem, 0)
    return OK

cdef inline int need_cpl0(Cpu* c) noexcept:
    if c.cpl != 0:
        return gp0(c)
    return OK

cdef inline int rm_read(Cpu* c, Insn* i, int size, uint64_t* v) noexcept:
    if i.k0 == K_REG:
        v[0] = rd_reg(c, i.r0, size)
        return OK
    return ld(c, i.seg, ea_of(c, i), size, v)

cdef inline int rm_write16(Cpu* c, Insn* i, uint64_t v) noexcept:
    """SLDT/STR/SMSW/MOV from Sreg: a register destination takes the operand size (zero-
    extended), a memory one is always 16 bits."""
    if i.k0 == K_REG:
        wr_reg(c, i.r0, i.osz if i.osz >= 2 else 2, v & 0xFFFF)
        return OK
    return st(c, i.seg, ea_of(c, i), 2, v & 0xFFFF)

