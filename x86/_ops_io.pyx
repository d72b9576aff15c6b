# I/O instructions IN and OUT and the I/O permission checks shared with INS/OUTS
# (SDM Vol. 1 chapter 19; Vol. 2 IN, OUT). The intercept hook sees every port access first.
from libc.stdint cimport uint16_t, uint32_t, uint64_t
from x86._defs cimport *
from x86._sysops cimport sensitive, need_cpl0, rm_read, rm_write16
from x86._mem cimport lin_read_slow
import iced_x86 as _ix


# --- I/O (SDM Vol. 1 chapter 19) -----------------------------------------------------------

cdef int io_allowed(Cpu* c, uint16_t port, int size) noexcept:
    """Protected mode with CPL > IOPL (or virtual-8086 mode) consults the TSS I/O permission
    bitmap: every bit for the accessed ports must be 0 (SDM Vol. 1 19.5.2)."""
    cdef uint64_t base = 0, bits = 0
    cdef Seg* tr = &c.seg[TR]
    if not (c.cr0 & 1):
        return OK
    if c.cpl <= ((c.rflags >> 12) & 3) and not (c.rflags & F_VM):
        return OK
    if (tr.attr & 0x10000) or (tr.attr & 0xD) != 0x9 or tr.limit < 0x67:
        return gp0(c)
    if lin_read_slow(c, tr.base + 0x66, 2, &base, ACC_R | ACC_SYS):
        return EXC
    base = base + (port >> 3)
    if base + 1 > tr.limit:
        return gp0(c)
    if lin_read_slow(c, tr.base + base, 2, &bits, ACC_R | ACC_SYS):
        return EXC
    if (bits >> (port & 7)) & ((1 << size) - 1):
        return gp0(c)
    return OK

cdef int io_in(Cpu* c, uint16_t port, int size, uint64_t* v, Insn* i) noexcept:
    cdef int r
    if c.intercept != NULL:
        c.cur_insn = i
        r = c.intercept(c, EV_IO, <uint64_t>port | (<uint64_t>size << 16) | (<uint64_t>1 << 24), 0)
        if r:
            return r
    try:
        v[0] = <uint64_t>(<object>c.owner)._io_read(port, size) & size_mask(size)
    except BaseException as e:
        (<object>c.owner)._defer_error(e)
        return PYERR
    return STOP if c.exit_request else OK

cdef int io_out(Cpu* c, uint16_t port, int size, uint64_t v, Insn* i) noexcept:
    cdef int r
    if c.intercept != NULL:
        c.cur_insn = i
        r = c.intercept(c, EV_IO, <uint64_t>port | (<uint64_t>size << 16), v)
        if r:
            return r
    try:
        (<object>c.owner)._io_write(port, size, v & size_mask(size))
    except BaseException as e:
        (<object>c.owner)._defer_error(e)
        return PYERR
    if c.exit_request:
        c.stop_retired = 1
        return STOP
    return OK

cdef int h_in(Cpu* c, Insn* i) noexcept:
    cdef uint16_t port = <uint16_t>(i.imm if i.k1 == K_IMM else c.regs[RDX])
    cdef uint64_t v = 0
    cdef int r = io_allowed(c, port, i.osz)
    if r:
        return r
    r = io_in(c, port, i.osz, &v, i)
    if r and r != STOP:
        return r
    wr_reg(c, 0, i.osz, v)
    if r == STOP:
        c.stop_retired = 1
    return r

cdef int h_out(Cpu* c, Insn* i) noexcept:
    cdef uint16_t port = <uint16_t>(i.imm if i.k0 == K_IMM else c.regs[RDX])
    cdef int size = i.ssz
    cdef int r = io_allowed(c, port, size)
    if r:
        return r
    return io_out(c, port, size, rd_reg(c, 0, size), i)


cdef void register(handler_t* t) noexcept:
    M = _ix.Mnemonic
    t[M.IN] = h_in
    t[M.OUT] = h_out
