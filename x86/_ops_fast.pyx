# Specialized bodies for the most frequent operand forms (register-register, register-
# immediate, one register, register<-memory, memory<-register). Each computes exactly what the
# general handler in _ops_alu/_ops_ctl computes for that form; the decoder picks one when the
# form matches (see Core._fill), and tests run every instruction through both paths.
from libc.stdint cimport uint64_t
from x86._defs cimport *
from x86._mem cimport ea_of, ld, st, rd_lin, wr_lin
import iced_x86 as _ix


cdef int add_rr(Cpu* c, Insn* i) noexcept:
    cdef uint64_t a = rd_reg(c, i.r0, i.osz), b = rd_reg(c, i.r1, i.osz)
    set_lazy(c, LF_ADD, i.osz, a, b, a + b)
    wr_reg(c, i.r0, i.osz, a + b)
    return OK

cdef int add_ri(Cpu* c, Insn* i) noexcept:
    cdef uint64_t a = rd_reg(c, i.r0, i.osz), b = i.imm
    set_lazy(c, LF_ADD, i.osz, a, b, a + b)
    wr_reg(c, i.r0, i.osz, a + b)
    return OK

cdef int sub_rr(Cpu* c, Insn* i) noexcept:
    cdef uint64_t a = rd_reg(c, i.r0, i.osz), b = rd_reg(c, i.r1, i.osz)
    set_lazy(c, LF_SUB, i.osz, a, b, a - b)
    wr_reg(c, i.r0, i.osz, a - b)
    return OK

cdef int sub_ri(Cpu* c, Insn* i) noexcept:
    cdef uint64_t a = rd_reg(c, i.r0, i.osz), b = i.imm
    set_lazy(c, LF_SUB, i.osz, a, b, a - b)
    wr_reg(c, i.r0, i.osz, a - b)
    return OK

cdef int cmp_rr(Cpu* c, Insn* i) noexcept:
    cdef uint64_t a = rd_reg(c, i.r0, i.osz), b = rd_reg(c, i.r1, i.osz)
    set_lazy(c, LF_SUB, i.osz, a, b, a - b)
    return OK

cdef int cmp_ri(Cpu* c, Insn* i) noexcept:
    cdef uint64_t a = rd_reg(c, i.r0, i.osz), b = i.imm
    set_lazy(c, LF_SUB, i.osz, a, b, a - b)
    return OK

cdef int and_rr(Cpu* c, Insn* i) noexcept:
    cdef uint64_t r = rd_reg(c, i.r0, i.osz) & rd_reg(c, i.r1, i.osz)
    set_lazy(c, LF_LOGIC, i.osz, 0, 0, r)
    wr_reg(c, i.r0, i.osz, r)
    return OK

cdef int and_ri(Cpu* c, Insn* i) noexcept:
    cdef uint64_t r = rd_reg(c, i.r0, i.osz) & i.imm
    set_lazy(c, LF_LOGIC, i.osz, 0, 0, r)
    wr_reg(c, i.r0, i.osz, r)
    return OK

cdef int or_rr(Cpu* c, Insn* i) noexcept:
    cdef uint64_t r = rd_reg(c, i.r0, i.osz) | rd_reg(c, i.r1, i.osz)
    set_lazy(c, LF_LOGIC, i.osz, 0, 0, r)
    wr_reg(c, i.r0, i.osz, r)
    return OK

cdef int or_ri(Cpu* c, Insn* i) noexcept:
    cdef uint64_t r = rd_reg(c, i.r0, i.osz) | i.imm
    set_lazy(c, LF_LOGIC, i.osz, 0, 0, r)
    wr_reg(c, i.r0, i.osz, r)
    return OK

cdef int xor_rr(Cpu* c, Insn* i) noexcept:
    cdef uint64_t r = rd_reg(c, i.r0, i.osz) ^ rd_reg(c, i.r1, i.osz)
    set_lazy(c, LF_LOGIC, i.osz, 0, 0, r)
    wr_reg(c, i.r0, i.osz, r)
    return OK

cdef int xor_ri(Cpu* c, Insn* i) noexcept:
    cdef uint64_t r = rd_reg(c, i.r0, i.osz) ^ i.imm
    set_lazy(c, LF_LOGIC, i.osz, 0, 0, r)
    wr_reg(c, i.r0, i.osz, r)
    return OK

cdef int test_rr(Cpu* c, Insn* i) noexcept:
    set_lazy(c, LF_LOGIC, i.osz, 0, 0, rd_reg(c, i.r0, i.osz) & rd_reg(c, i.r1, i.osz))
    return OK

cdef int test_ri(Cpu* c, Insn* i) noexcept:
    set_lazy(c, LF_LOGIC, i.osz, 0, 0, rd_reg(c, i.r0, i.osz) & i.imm)
    return OK

cdef int mov_rr(Cpu* c, Insn* i) noexcept:
    wr_reg(c, i.r0, i.osz, rd_reg(c, i.r1, i.osz))
    return OK

cdef int mov_ri(Cpu* c, Insn* i) noexcept:
    wr_reg(c, i.r0, i.osz, i.imm)
    return OK

cdef int mov_rm(Cpu* c, Insn* i) noexcept:
    cdef uint64_t v = 0
    if ld(c, i.seg, ea_of(c, i), i.osz, &v):
        return EXC
    wr_reg(c, i.r0, i.osz, v)
    return OK

cdef int mov_mr(Cpu* c, Insn* i) noexcept:
    return st(c, i.seg, ea_of(c, i), i.osz, rd_reg(c, i.r1, i.osz))

cdef int inc_r(Cpu* c, Insn* i) noexcept:
    cdef uint64_t a = rd_reg(c, i.r0, i.osz), cf = lazy_cf(c)
    set_lazy(c, LF_INC, i.osz, a, 1, a + 1)
    c.lf_c = <uint32_t>cf
    wr_reg(c, i.r0, i.osz, a + 1)
    return OK

cdef int dec_r(Cpu* c, Insn* i) noexcept:
    cdef uint64_t a = rd_reg(c, i.r0, i.osz), cf = lazy_cf(c)
    set_lazy(c, LF_DEC, i.osz, a, 1, a - 1)
    c.lf_c = <uint32_t>cf
    wr_reg(c, i.r0, i.osz, a - 1)
    return OK


# --- 64-bit stack and branches: SS.base is 0 and the stack is 8 bytes wide (SDM Vol. 1 6.2.3) --

cdef int push_r64(Cpu* c, Insn* i) noexcept:
    cdef uint64_t sp = c.regs[RSP] - 8
    if wr_lin(c, sp, 8, rd_reg(c, i.r0, 8)):
        return stack_fault(c)
    c.regs[RSP] = sp
    return OK

cdef int pop_r64(Cpu* c, Insn* i) noexcept:
    cdef uint64_t v = 0
    if rd_lin(c, c.regs[RSP], 8, &v):
        return stack_fault(c)
    c.regs[RSP] += 8
    wr_reg(c, i.r0, 8, v)
    return OK

cdef int call_rel64(Cpu* c, Insn* i) noexcept:
    cdef uint64_t sp = c.regs[RSP] - 8, t = c.rip + i.imm
    if not canonical(c, t):
        return gp0(c)
    if wr_lin(c, sp, 8, c.rip):
        return stack_fault(c)
    c.regs[RSP] = sp
    c.rip = t
    return OK

cdef int ret64(Cpu* c, Insn* i) noexcept:
    cdef uint64_t t = 0
    if rd_lin(c, c.regs[RSP], 8, &t):
        return stack_fault(c)
    if not canonical(c, t):
        return gp0(c)
    c.regs[RSP] += 8
    c.rip = t
    return OK

cdef int jz64(Cpu* c, Insn* i) noexcept:
    """JZ/JNZ (cc 4/5): only ZF is needed; 64-bit targets need only the canonical check."""
    cdef uint64_t t
    if <int>lazy_zf(c) ^ (i.cond & 1):
        t = c.rip + i.imm
        if not canonical(c, t):
            return gp0(c)
        c.rip = t
    return OK

cdef int jcc64(Cpu* c, Insn* i) noexcept:
    cdef uint64_t t
    if test_cond(c, i.cond):
        t = c.rip + i.imm
        if not canonical(c, t):
            return gp0(c)
        c.rip = t
    return OK

cdef int jmp_rel64(Cpu* c, Insn* i) noexcept:
    cdef uint64_t t = c.rip + i.imm
    if not canonical(c, t):
        return gp0(c)
    c.rip = t
    return OK


cdef void register_64(handler_t* r1, handler_t* i1, handler_t* none) noexcept:
    """Forms valid only with 64-bit operand size in 64-bit mode (Core._fill checks osz == 8)."""
    M = _ix.Mnemonic
    r1[M.PUSH] = push_r64
    r1[M.POP] = pop_r64
    i1[M.CALL] = call_rel64
    i1[M.JMP] = jmp_rel64
    none[M.RET] = ret64
    for name in ("JO", "JNO", "JB", "JAE", "JBE", "JA", "JS", "JNS", "JP", "JNP", "JL", "JGE", "JLE", "JG"):
        i1[getattr(M, name)] = jcc64
    i1[M.JE] = jz64
    i1[M.JNE] = jz64


cdef void register(handler_t* rr, handler_t* ri, handler_t* r1, handler_t* rm, handler_t* mr) noexcept:
    M = _ix.Mnemonic
    for name, f_rr, f_ri in (
            ("ADD", <long>add_rr, <long>add_ri), ("SUB", <long>sub_rr, <long>sub_ri),
            ("CMP", <long>cmp_rr, <long>cmp_ri), ("AND", <long>and_rr, <long>and_ri),
            ("OR", <long>or_rr, <long>or_ri), ("XOR", <long>xor_rr, <long>xor_ri),
            ("TEST", <long>test_rr, <long>test_ri), ("MOV", <long>mov_rr, <long>mov_ri)):
        rr[getattr(M, name)] = <handler_t><long>f_rr
        ri[getattr(M, name)] = <handler_t><long>f_ri
    r1[M.INC] = inc_r
    r1[M.DEC] = dec_r
    rm[M.MOV] = mov_rm
    mr[M.MOV] = mov_mr
