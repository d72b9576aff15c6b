# String instructions with REP prefixes (SDM Vol. 1 7.3.9; Vol. 2 MOVS, STOS, LODS, CMPS,
# SCAS, INS, OUTS). A REP instruction retires once; a fault part-way leaves rCX, rSI and rDI
# describing the remaining work and RIP at the instruction, so it restarts where it stopped.
from libc.stdint cimport uint16_t, uint32_t, uint64_t, int64_t
from x86._defs cimport *
from x86._mem cimport ld, st
from x86._ops_io cimport io_in, io_out, io_allowed
import iced_x86 as _ix


cdef inline uint64_t areg(Cpu* c, int r, int asz) noexcept nogil:
    return c.regs[r] & size_mask(asz)

cdef inline void advance(Cpu* c, int r, int asz, int64_t delta) noexcept nogil:
    wr_reg(c, r * 8, asz, c.regs[r] + <uint64_t>delta)

cdef inline int64_t step(Cpu* c, int size) noexcept nogil:
    return -size if (c.rflags & F_DF) else size

cdef inline int rep_done(Cpu* c, Insn* i) noexcept nogil:
    return (i.pfx & (P_REP | P_REPNE)) and (c.regs[RCX] & size_mask(i.asz)) == 0

cdef inline void rep_count(Cpu* c, Insn* i) noexcept nogil:
    wr_reg(c, RCX * 8, i.asz, c.regs[RCX] - 1)

cdef int h_movs(Cpu* c, Insn* i) noexcept:
    cdef uint64_t v = 0
    cdef int sz = i.osz
    cdef int64_t d = step(c, sz)
    while not rep_done(c, i):
        if ld(c, i.seg, areg(c, RSI, i.asz), sz, &v) or st(c, ES, areg(c, RDI, i.asz), sz, v):
            return EXC
        advance(c, RSI, i.asz, d)
        advance(c, RDI, i.asz, d)
        if not (i.pfx & (P_REP | P_REPNE)):
            break
        rep_count(c, i)
    return OK

cdef int h_stos(Cpu* c, Insn* i) noexcept:
    cdef uint64_t v = rd_reg(c, 0, i.osz)
    cdef int sz = i.osz
    cdef int64_t d = step(c, sz)
    while not rep_done(c, i):
        if st(c, ES, areg(c, RDI, i.asz), sz, v):
            return EXC
        advance(c, RDI, i.asz, d)
        if not (i.pfx & (P_REP | P_REPNE)):
            break
        rep_count(c, i)
    return OK

cdef int h_lods(Cpu* c, Insn* i) noexcept:
    cdef uint64_t v = 0
    cdef int sz = i.osz
    cdef int64_t d = step(c, sz)
    while not rep_done(c, i):
        if ld(c, i.seg, areg(c, RSI, i.asz), sz, &v):
            return EXC
        wr_reg(c, 0, sz, v)
        advance(c, RSI, i.asz, d)
        if not (i.pfx & (P_REP | P_REPNE)):
            break
        rep_count(c, i)
    return OK

cdef int h_cmps(Cpu* c, Insn* i) noexcept:
    """CMPS compares [rSI] with ES:[rDI] (source minus destination); REPE/REPNE stop on ZF."""
    cdef uint64_t a = 0, b = 0
    cdef int sz = i.osz
    cdef int64_t d = step(c, sz)
    while not rep_done(c, i):
        if ld(c, i.seg, areg(c, RSI, i.asz), sz, &a) or ld(c, ES, areg(c, RDI, i.asz), sz, &b):
            return EXC
        set_lazy(c, LF_SUB, sz, a, b, a - b)
        advance(c, RSI, i.asz, d)
        advance(c, RDI, i.asz, d)
        if not (i.pfx & (P_REP | P_REPNE)):
            break
        rep_count(c, i)
        if (i.pfx & P_REP) and not lazy_zf(c):
            break
        if (i.pfx & P_REPNE) and lazy_zf(c):
            break
    return OK

cdef int h_scas(Cpu* c, Insn* i) noexcept:
    cdef uint64_t a = rd_reg(c, 0, i.osz), b = 0
    cdef int sz = i.osz
    cdef int64_t d = step(c, sz)
    while not rep_done(c, i):
        if ld(c, ES, areg(c, RDI, i.asz), sz, &b):
            return EXC
        set_lazy(c, LF_SUB, sz, a, b, a - b)
        advance(c, RDI, i.asz, d)
        if not (i.pfx & (P_REP | P_REPNE)):
            break
        rep_count(c, i)
        if (i.pfx & P_REP) and not lazy_zf(c):
            break
        if (i.pfx & P_REPNE) and lazy_zf(c):
            break
    return OK

cdef int h_ins(Cpu* c, Insn* i) noexcept:
    cdef uint64_t v = 0
    cdef int sz = i.osz, r
    cdef uint16_t port = <uint16_t>c.regs[RDX]
    cdef int64_t d = step(c, sz)
    r = io_allowed(c, port, sz)
    if r:
        return r
    while not rep_done(c, i):
        r = io_in(c, port, sz, &v, i)
        if r:
            return r
        if st(c, ES, areg(c, RDI, i.asz), sz, v):
            return EXC
        advance(c, RDI, i.asz, d)
        if not (i.pfx & (P_REP | P_REPNE)):
            break
        rep_count(c, i)
    return OK

cdef int h_outs(Cpu* c, Insn* i) noexcept:
    """OUTS DX, m: the element size is the memory operand's (operand 1)."""
    cdef uint64_t v = 0
    cdef int sz = i.ssz, r
    cdef uint16_t port = <uint16_t>c.regs[RDX]
    cdef int64_t d = step(c, sz)
    r = io_allowed(c, port, sz)
    if r:
        return r
    while not rep_done(c, i):
        if ld(c, i.seg, areg(c, RSI, i.asz), sz, &v):
            return EXC
        r = io_out(c, port, sz, v, i)
        if r:
            return r
        advance(c, RSI, i.asz, d)
        if not (i.pfx & (P_REP | P_REPNE)):
            break
        rep_count(c, i)
    return OK


cdef void register(handler_t* t) noexcept:
    M = _ix.Mnemonic
    groups = {
        <long>h_movs: ("MOVSB", "MOVSW", "MOVSD", "MOVSQ"),
        <long>h_stos: ("STOSB", "STOSW", "STOSD", "STOSQ"),
        <long>h_lods: ("LODSB", "LODSW", "LODSD", "LODSQ"),
        <long>h_cmps: ("CMPSB", "CMPSW", "CMPSD", "CMPSQ"),
        <long>h_scas: ("SCASB", "SCASW", "SCASD", "SCASQ"),
        <long>h_ins: ("INSB", "INSW", "INSD"),
        <long>h_outs: ("OUTSB", "OUTSW", "OUTSD"),
    }
    for fn, names in groups.items():
        for name in names:
            t[getattr(M, name)] = <handler_t><long>fn
