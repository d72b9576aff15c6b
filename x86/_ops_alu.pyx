# Data movement and integer arithmetic (SDM Vol. 2, one body per instruction; Vol. 1 7.3).
# Flags: add/sub/logic/inc/dec leave their operands for lazy evaluation (_defs.pxd); the
# others compute RFLAGS at once. Flags the SDM leaves undefined are set deterministically.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int64_t
from x86._defs cimport *
from x86._mem cimport ea_of, ld, st, ldw
import iced_x86 as _ix

cdef extern from *:
    """
    #include <stdint.h>
    typedef unsigned __int128 u128;
    typedef __int128 i128;
    static inline uint64_t hv_mask(int size) {
        return size >= 8 ? ~(uint64_t)0 : (((uint64_t)1 << (size * 8)) - 1);
    }
    static inline int64_t hv_sext(uint64_t v, int size) {
        int sh = 64 - size * 8;
        return sh ? (int64_t)(v << sh) >> sh : (int64_t)v;
    }
    /* unsigned size x size -> 2*size bits, split at `size` */
    static inline void hv_mul(uint64_t a, uint64_t b, int size,
                              uint64_t *lo, uint64_t *hi) {
        u128 p = (u128)(a & hv_mask(size)) * (u128)(b & hv_mask(size));
        *lo = (uint64_t)p & hv_mask(size);
        *hi = (uint64_t)(p >> (size * 8)) & hv_mask(size);
    }
    /* signed multiply; returns 1 when the product does not fit `size` (CF = OF = 1) */
    static inline int hv_imul(uint64_t a, uint64_t b, int size,
                              uint64_t *lo, uint64_t *hi) {
        i128 p = (i128)hv_sext(a, size) * (i128)hv_sext(b, size);
        *lo = (uint64_t)p & hv_mask(size);
        *hi = (uint64_t)((u128)p >> (size * 8)) & hv_mask(size);
        return (i128)hv_sext(*lo, size) != p;
    }
    /* (hi:lo) / d; returns 1 for #DE (zero divisor, quotient too wide) */
    static inline int hv_div(uint64_t hi, uint64_t lo, uint64_t d,
                             int size, uint64_t *q, uint64_t *r) {
        u128 n = ((u128)(hi & hv_mask(size)) << (size * 8)) | (lo & hv_mask(size));
        u128 qq;
        if (d == 0) return 1;
        qq = n / d;
        if (qq > (u128)hv_mask(size)) return 1;
        *q = (uint64_t)qq;
        *r = (uint64_t)(n % d);
        return 0;
    }
    static inline int hv_idiv(uint64_t hi, uint64_t lo, uint64_t d,
                              int size, uint64_t *q, uint64_t *r) {
        u128 un = ((u128)(hi & hv_mask(size)) << (size * 8)) | (lo & hv_mask(size));
        i128 n, dd = hv_sext(d, size), qq, lim = (i128)1 << (size * 8 - 1);
        if (size < 8) {   /* sign-extend the 2*size-bit dividend */
            int sh = 128 - size * 16;
            n = (i128)(un << sh) >> sh;
        } else {
            n = (i128)un;
        }
        if (dd == 0) return 1;
        if (size == 8 && dd == -1 && un == ((u128)1 << 127)) return 1;
        qq = n / dd;
        if (qq >= lim || qq < -lim) return 1;
        *q = (uint64_t)qq & hv_mask(size);
        *r = (uint64_t)(n - qq * dd) & hv_mask(size);
        return 0;
    }
    static inline int hv_popcount(uint64_t v) { return __builtin_popcountll(v); }
    static inline int hv_ctz(uint64_t v) { return __builtin_ctzll(v); }
    static inline int hv_clz(uint64_t v) { return __builtin_clzll(v); }
    """
    void hv_mul(uint64_t a, uint64_t b, int size, uint64_t* lo, uint64_t* hi) nogil
    int hv_imul(uint64_t a, uint64_t b, int size, uint64_t* lo, uint64_t* hi) nogil
    int hv_div(uint64_t hi, uint64_t lo, uint64_t d, int size, uint64_t* q, uint64_t* r) nogil
    int hv_idiv(uint64_t hi, uint64_t lo, uint64_t d, int size, uint64_t* q, uint64_t* r) nogil
    int hv_popcount(unsigned long long v) nogil
    int hv_ctz(unsigned long long v) nogil
    int hv_clz(unsigned long long v) nogil


# --- operand access -------------------------------------------------------------------------

cdef inline int src_val(Cpu* c, Insn* i, uint64_t* v) noexcept:
    """The second operand: register, immediate or memory."""
    if i.k1 == K_REG:
        v[0] = rd_reg(c, i.r1, i.ssz)
        return OK
    if i.k1 == K_IMM:
        v[0] = i.imm
        return OK
    return ld(c, i.seg, ea_of(c, i), i.ssz, v)


cdef inline int dst_load(Cpu* c, Insn* i, uint64_t* v, uint64_t* ea) noexcept:
    """The first operand of a read-modify-write (a memory one is checked for writing)."""
    if i.k0 == K_REG:
        v[0] = rd_reg(c, i.r0, i.osz)
        return OK
    ea[0] = ea_of(c, i)
    return ldw(c, i.seg, ea[0], i.osz, v)


cdef inline int dst_store(Cpu* c, Insn* i, uint64_t ea, uint64_t v) noexcept:
    if i.k0 == K_REG:
        wr_reg(c, i.r0, i.osz, v)
        return OK
    return st(c, i.seg, ea, i.osz, v)


cdef inline int binop(Cpu* c, Insn* i, uint64_t* a, uint64_t* b, uint64_t* ea) noexcept:
    if src_val(c, i, b):
        return EXC
    return dst_load(c, i, a, ea)


cdef inline void set_flags_eager(Cpu* c, uint64_t mask, uint64_t values) noexcept nogil:
    flush_flags(c)
    c.rflags = (c.rflags & ~mask) | (values & mask) | 2


cdef inline uint64_t szp(uint64_t r, int size) noexcept nogil:
    """ZF, SF and PF of a result."""
    cdef uint64_t f = <uint64_t>parity8(r) << 2
    if (r & size_mask(size)) == 0:
        f |= F_ZF
    if r & sign_bit(size):
        f |= F_SF
    return f


# --- ADD ADC SUB SBB CMP AND OR XOR TEST ------------------------------------------------------

cdef int h_add(Cpu* c, Insn* i) noexcept:
    cdef uint64_t a = 0, b = 0, ea = 0, r
    if binop(c, i, &a, &b, &ea):
        return EXC
    r = a + b
    set_lazy(c, LF_ADD, i.osz, a, b, r)
    return dst_store(c, i, ea, r)

cdef int h_adc(Cpu* c, Insn* i) noexcept:
    cdef uint64_t a = 0, b = 0, ea = 0, r, cin
    if binop(c, i, &a, &b, &ea):
        return EXC
    cin = lazy_cf(c)
    r = a + b + cin
    set_lazy(c, LF_ADC, i.osz, a, b, r)
    c.lf_c = <uint32_t>cin
    return dst_store(c, i, ea, r)

cdef int h_sub(Cpu* c, Insn* i) noexcept:
    cdef uint64_t a = 0, b = 0, ea = 0, r
    if binop(c, i, &a, &b, &ea):
        return EXC
    r = a - b
    set_lazy(c, LF_SUB, i.osz, a, b, r)
    return dst_store(c, i, ea, r)

cdef int h_sbb(Cpu* c, Insn* i) noexcept:
    cdef uint64_t a = 0, b = 0, ea = 0, r, cin
    if binop(c, i, &a, &b, &ea):
        return EXC
    cin = lazy_cf(c)
    r = a - b - cin
    set_lazy(c, LF_SBB, i.osz, a, b, r)
    c.lf_c = <uint32_t>cin
    return dst_store(c, i, ea, r)

cdef int h_cmp(Cpu* c, Insn* i) noexcept:
    cdef uint64_t a = 0, b = 0
    if src_val(c, i, &b):
        return EXC
    if i.k0 == K_REG:
        a = rd_reg(c, i.r0, i.osz)
    elif ld(c, i.seg, ea_of(c, i), i.osz, &a):
        return EXC
    set_lazy(c, LF_SUB, i.osz, a, b, a - b)
    return OK

cdef int h_and(Cpu* c, Insn* i) noexcept:
    cdef uint64_t a = 0, b = 0, ea = 0, r
    if binop(c, i, &a, &b, &ea):
        return EXC
    r = a & b
    set_lazy(c, LF_LOGIC, i.osz, 0, 0, r)
    return dst_store(c, i, ea, r)

cdef int h_or(Cpu* c, Insn* i) noexcept:
    cdef uint64_t a = 0, b = 0, ea = 0, r
    if binop(c, i, &a, &b, &ea):
        return EXC
    r = a | b
    set_lazy(c, LF_LOGIC, i.osz, 0, 0, r)
    return dst_store(c, i, ea, r)

cdef int h_xor(Cpu* c, Insn* i) noexcept:
    cdef uint64_t a = 0, b = 0, ea = 0, r
    if binop(c, i, &a, &b, &ea):
        return EXC
    r = a ^ b
    set_lazy(c, LF_LOGIC, i.osz, 0, 0, r)
    return dst_store(c, i, ea, r)

cdef int h_test(Cpu* c, Insn* i) noexcept:
    cdef uint64_t a = 0, b = 0
    if src_val(c, i, &b):
        return EXC
    if i.k0 == K_REG:
        a = rd_reg(c, i.r0, i.osz)
    elif ld(c, i.seg, ea_of(c, i), i.osz, &a):
        return EXC
    set_lazy(c, LF_LOGIC, i.osz, 0, 0, a & b)
    return OK

# --- INC DEC NEG NOT ------------------------------------------------------------------------

cdef int h_inc(Cpu* c, Insn* i) noexcept:
    """INC: CF is not affected (SDM Vol. 2A INC, Flags Affected)."""
    cdef uint64_t a = 0, ea = 0, cf = lazy_cf(c)
    if dst_load(c, i, &a, &ea):
        return EXC
    set_lazy(c, LF_INC, i.osz, a, 1, a + 1)
    c.lf_c = <uint32_t>cf
    return dst_store(c, i, ea, a + 1)

cdef int h_dec(Cpu* c, Insn* i) noexcept:
    cdef uint64_t a = 0, ea = 0, cf = lazy_cf(c)
    if dst_load(c, i, &a, &ea):
        return EXC
    set_lazy(c, LF_DEC, i.osz, a, 1, a - 1)
    c.lf_c = <uint32_t>cf
    return dst_store(c, i, ea, a - 1)

cdef int h_neg(Cpu* c, Insn* i) noexcept:
    """NEG: CF = (source != 0); the other flags as for 0 - source."""
    cdef uint64_t a = 0, ea = 0
    if dst_load(c, i, &a, &ea):
        return EXC
    set_lazy(c, LF_SUB, i.osz, 0, a, 0 - a)
    return dst_store(c, i, ea, 0 - a)

cdef int h_not(Cpu* c, Insn* i) noexcept:
    cdef uint64_t a = 0, ea = 0
    if dst_load(c, i, &a, &ea):
        return EXC
    return dst_store(c, i, ea, ~a)

# --- moves ----------------------------------------------------------------------------------

cdef int h_mov(Cpu* c, Insn* i) noexcept:
    cdef uint64_t v = 0
    if src_val(c, i, &v):
        return EXC
    if i.k0 == K_REG:
        wr_reg(c, i.r0, i.osz, v)
        return OK
    return st(c, i.seg, ea_of(c, i), i.osz, v)

cdef int h_movzx(Cpu* c, Insn* i) noexcept:
    cdef uint64_t v = 0
    if src_val(c, i, &v):
        return EXC
    wr_reg(c, i.r0, i.osz, v & size_mask(i.ssz))
    return OK

cdef int h_movsx(Cpu* c, Insn* i) noexcept:
    cdef uint64_t v = 0
    if src_val(c, i, &v):
        return EXC
    wr_reg(c, i.r0, i.osz, sext(v, i.ssz))
    return OK

cdef int h_lea(Cpu* c, Insn* i) noexcept:
    wr_reg(c, i.r0, i.osz, ea_of(c, i))
    return OK

cdef int h_xchg(Cpu* c, Insn* i) noexcept:
    """XCHG with memory is locked implicitly; one processor: a plain swap."""
    cdef uint64_t a = 0, b = 0, ea = 0
    if i.k0 == K_REG and i.k1 == K_REG:
        a = rd_reg(c, i.r0, i.osz)
        b = rd_reg(c, i.r1, i.osz)
        wr_reg(c, i.r0, i.osz, b)
        wr_reg(c, i.r1, i.osz, a)
        return OK
    # one operand is memory
    if i.k0 == K_MEM:
        ea = ea_of(c, i)
        if ldw(c, i.seg, ea, i.osz, &a):
            return EXC
        b = rd_reg(c, i.r1, i.osz)
        if st(c, i.seg, ea, i.osz, b):
            return EXC
        wr_reg(c, i.r1, i.osz, a)
    else:
        ea = ea_of(c, i)
        if ldw(c, i.seg, ea, i.osz, &a):
            return EXC
        b = rd_reg(c, i.r0, i.osz)
        if st(c, i.seg, ea, i.osz, b):
            return EXC
        wr_reg(c, i.r0, i.osz, a)
    return OK

cdef int h_cmpxchg(Cpu* c, Insn* i) noexcept:
    """CMPXCHG: compare the accumulator with the destination (SDM Vol. 2A)."""
    cdef uint64_t d = 0, ea = 0, acc = rd_reg(c, 0, i.osz), src = rd_reg(c, i.r1, i.osz)
    if dst_load(c, i, &d, &ea):
        return EXC
    set_lazy(c, LF_SUB, i.osz, acc, d, acc - d)
    if (acc & size_mask(i.osz)) == (d & size_mask(i.osz)):
        return dst_store(c, i, ea, src)
    if i.k0 == K_MEM and dst_store(c, i, ea, d):     # the destination is always written
        return EXC
    wr_reg(c, 0, i.osz, d)
    return OK

cdef int h_xadd(Cpu* c, Insn* i) noexcept:
    cdef uint64_t d = 0, ea = 0, s = rd_reg(c, i.r1, i.osz)
    if dst_load(c, i, &d, &ea):
        return EXC
    # "TEMP <- SRC + DEST; SRC <- DEST; DEST <- TEMP": the destination is written last, so
    # XADD r, r on one register leaves the sum (SDM Vol. 2B XADD, Operation)
    if i.k0 == K_MEM and dst_store(c, i, ea, d + s):
        return EXC
    wr_reg(c, i.r1, i.osz, d)
    if i.k0 == K_REG:
        wr_reg(c, i.r0, i.osz, d + s)
    set_lazy(c, LF_ADD, i.osz, d, s, d + s)
    return OK

cdef int h_bswap(Cpu* c, Insn* i) noexcept:
    cdef uint64_t v = rd_reg(c, i.r0, i.osz), r = 0
    cdef int k
    for k in range(i.osz):
        r = (r << 8) | ((v >> (8 * k)) & 0xFF)
    wr_reg(c, i.r0, i.osz, r)
    return OK

cdef int h_cbw(Cpu* c, Insn* i) noexcept:
    """CBW/CWDE/CDQE: sign-extend the low half of the accumulator."""
    cdef int half = i.osz // 2
    wr_reg(c, 0, i.osz, sext(rd_reg(c, 0, half), half))
    return OK

cdef int h_cwd(Cpu* c, Insn* i) noexcept:
    """CWD/CDQ/CQO: rDX = the sign of rAX."""
    wr_reg(c, RDX * 8, i.osz, size_mask(i.osz) if rd_reg(c, 0, i.osz) & sign_bit(i.osz) else 0)
    return OK

cdef int h_nop(Cpu* c, Insn* i) noexcept:
    return OK

cdef int h_setcc(Cpu* c, Insn* i) noexcept:
    cdef uint64_t v = <uint64_t>test_cond(c, i.cond)
    if i.k0 == K_REG:
        wr_reg(c, i.r0, 1, v)
        return OK
    return st(c, i.seg, ea_of(c, i), 1, v)

cdef int h_cmovcc(Cpu* c, Insn* i) noexcept:
    """CMOVcc: the source is read whatever the condition; a 32-bit destination is zero-extended
    even when the condition is false (SDM Vol. 2A CMOVcc, Operation)."""
    cdef uint64_t v = 0
    if src_val(c, i, &v):
        return EXC
    if test_cond(c, i.cond):
        wr_reg(c, i.r0, i.osz, v)
    elif i.osz == 4:
        wr_reg(c, i.r0, 4, rd_reg(c, i.r0, 4))
    return OK

cdef int h_xlat(Cpu* c, Insn* i) noexcept:
    cdef uint64_t v = 0
    cdef uint64_t ea = (c.regs[RBX] + (c.regs[RAX] & 0xFF)) & size_mask(i.asz)
    if ld(c, i.seg, ea, 1, &v):
        return EXC
    wr_reg(c, 0, 1, v)
    return OK

# --- flag instructions ----------------------------------------------------------------------

cdef int h_clc(Cpu* c, Insn* i) noexcept:
    set_flags_eager(c, F_CF, 0)
    return OK

cdef int h_stc(Cpu* c, Insn* i) noexcept:
    set_flags_eager(c, F_CF, F_CF)
    return OK

cdef int h_cmc(Cpu* c, Insn* i) noexcept:
    set_flags_eager(c, F_CF, (get_rflags(c) ^ F_CF))
    return OK

cdef int h_cld(Cpu* c, Insn* i) noexcept:
    c.rflags &= ~(<uint64_t>F_DF)
    return OK

cdef int h_std(Cpu* c, Insn* i) noexcept:
    c.rflags |= F_DF
    return OK

cdef int h_lahf(Cpu* c, Insn* i) noexcept:
    wr_reg(c, 1, 1, get_rflags(c) & 0xD7 | 2)
    return OK

cdef int h_sahf(Cpu* c, Insn* i) noexcept:
    set_flags_eager(c, F_SF | F_ZF | F_AF | F_PF | F_CF, rd_reg(c, 1, 1))
    return OK

# --- shifts and rotates (SDM Vol. 2B SAL/SAR/SHL/SHR, RCL/RCR/ROL/ROR) ----------------------

cdef inline int shift_count(Cpu* c, Insn* i) noexcept:
    cdef uint64_t n
    if i.nops < 2:
        n = 1
    elif i.k1 == K_IMM:
        n = i.imm
    else:
        n = c.regs[RCX]
    return <int>(n & (0x3F if i.osz == 8 else 0x1F))

cdef inline int no_shift(Cpu* c, Insn* i, uint64_t a) noexcept nogil:
    """A count of 0 changes no flags, but a 32-bit register destination is still written, so its
    upper half is cleared (SDM Vol. 1 3.4.1.1; as processors do for SHL r32, 0)."""
    if i.k0 == K_REG and i.osz == 4:
        wr_reg(c, i.r0, 4, a)
    return OK

cdef int h_shift(Cpu* c, Insn* i) noexcept:
    """SHL/SAL/SHR/SAR: a masked count of 0 changes no flags; OF is defined for a count of 1
    and left as the 1-bit rule gives for larger counts (undefined in the SDM)."""
    cdef uint64_t a = 0, ea = 0, r, m = size_mask(i.osz), sb = sign_bit(i.osz), f
    cdef int n = shift_count(c, i), bits = i.osz * 8
    cdef uint64_t cf
    if dst_load(c, i, &a, &ea):
        return EXC
    if n == 0:
        return no_shift(c, i, a)
    a &= m
    if i.mnem == _SHL or i.mnem == _SAL:
        r = (a << n) & m if n < 64 else 0
        cf = (a >> (bits - n)) & 1 if n <= bits else 0
        f = cf | szp(r, i.osz)
        if ((r & sb) != 0) != (cf != 0):
            f |= F_OF
    elif i.mnem == _SHR:
        r = a >> n if n < 64 else 0
        cf = (a >> (n - 1)) & 1
        f = cf | szp(r, i.osz)
        if a & sb:
            f |= F_OF if n == 1 else 0
    else:  # SAR
        r = (sext(a, i.osz) >> 0)
        r = <uint64_t>((<int64_t>r) >> (n if n < 64 else 63)) & m
        cf = (<uint64_t>((<int64_t>sext(a, i.osz)) >> (n - 1))) & 1
        f = cf | szp(r, i.osz)
    set_flags_eager(c, F_CF | F_PF | F_ZF | F_SF | F_OF | F_AF, f)
    return dst_store(c, i, ea, r)

cdef int h_rotate(Cpu* c, Insn* i) noexcept:
    """ROL/ROR/RCL/RCR: only CF and OF change; OF is defined for 1-bit rotates."""
    cdef uint64_t a = 0, ea = 0, r, m = size_mask(i.osz), cf, fl
    cdef int n = shift_count(c, i), bits = i.osz * 8, k
    if dst_load(c, i, &a, &ea):
        return EXC
    a &= m
    fl = get_rflags(c)
    cf = fl & 1
    r = a
    if i.mnem == _ROL or i.mnem == _ROR:
        if n == 0:
            return no_shift(c, i, a)
        n = n % bits
        if i.mnem == _ROL:
            r = ((a << n) | (a >> (bits - n))) & m if n else a
            cf = r & 1
            fl = (fl & ~(<uint64_t>(F_CF | F_OF))) | cf
            if ((r >> (bits - 1)) & 1) ^ cf:
                fl |= F_OF
        else:
            r = ((a >> n) | (a << (bits - n))) & m if n else a
            cf = (r >> (bits - 1)) & 1
            fl = (fl & ~(<uint64_t>(F_CF | F_OF))) | cf
            if ((r >> (bits - 1)) ^ (r >> (bits - 2))) & 1:
                fl |= F_OF
    else:
        if i.osz == 1:
            n = n % 9
        elif i.osz == 2:
            n = n % 17
        if n == 0:
            return no_shift(c, i, a)
        for k in range(n):
            if i.mnem == _RCL:
                r2 = ((r << 1) | cf) & m
                cf = (r >> (bits - 1)) & 1
                r = r2
            else:
                r2 = (r >> 1) | (cf << (bits - 1))
                cf = r & 1
                r = r2 & m
        fl = (fl & ~(<uint64_t>(F_CF | F_OF))) | cf
        if i.mnem == _RCL:
            if ((r >> (bits - 1)) & 1) ^ cf:
                fl |= F_OF
        elif ((r >> (bits - 1)) ^ (r >> (bits - 2))) & 1:
            fl |= F_OF
    c.rflags = fl
    c.lf_op = LF_NONE
    return dst_store(c, i, ea, r)

cdef int h_shld(Cpu* c, Insn* i) noexcept:
    """SHLD/SHRD: double-precision shift; a count above the operand size is undefined (the
    result here is what the 2*size-bit shift gives)."""
    cdef uint64_t a = 0, ea = 0, b = rd_reg(c, i.r1, i.osz), m = size_mask(i.osz), r, cf
    cdef int bits = i.osz * 8
    cdef int n = <int>((i.imm if i.k2 == K_IMM else c.regs[RCX]) & (0x3F if i.osz == 8 else 0x1F))
    cdef uint64_t f
    if dst_load(c, i, &a, &ea):
        return EXC
    if n == 0:
        return no_shift(c, i, a)
    a &= m
    if n > bits:
        n = n % bits if n % bits else bits
    if i.mnem == _SHLD:
        r = ((a << n) | (b >> (bits - n))) & m if n < bits else b & m
        cf = (a >> (bits - n)) & 1
    else:
        r = ((a >> n) | (b << (bits - n))) & m if n < bits else b & m
        cf = (a >> (n - 1)) & 1
    f = cf | szp(r, i.osz)
    if ((r ^ a) & sign_bit(i.osz)):
        f |= F_OF
    set_flags_eager(c, F_CF | F_PF | F_ZF | F_SF | F_OF | F_AF, f)
    return dst_store(c, i, ea, r)

# --- multiply and divide (SDM Vol. 2A MUL, IMUL, DIV, IDIV) -----------------------------------
# The double-width arithmetic is C (hv_* above): Cython has no 128-bit type of its own.

cdef inline int src_val_rm(Cpu* c, Insn* i, uint64_t* v) noexcept:
    """The r/m operand of one-operand MUL/IMUL/DIV/IDIV (operand 0)."""
    if i.k0 == K_REG:
        v[0] = rd_reg(c, i.r0, i.osz)
        return OK
    return ld(c, i.seg, ea_of(c, i), i.osz, v)

cdef inline void store_double(Cpu* c, int size, uint64_t lo, uint64_t hi) noexcept:
    """AX = AH:AL for byte forms; rDX:rAX otherwise."""
    if size == 1:
        wr_reg(c, 0, 2, ((hi & 0xFF) << 8) | (lo & 0xFF))
    else:
        wr_reg(c, 0, size, lo)
        wr_reg(c, RDX * 8, size, hi)

cdef inline void dividend(Cpu* c, int size, uint64_t* hi, uint64_t* lo) noexcept:
    if size == 1:
        hi[0] = (c.regs[RAX] >> 8) & 0xFF
        lo[0] = c.regs[RAX] & 0xFF
    else:
        hi[0] = rd_reg(c, RDX * 8, size)
        lo[0] = rd_reg(c, 0, size)

cdef int h_mul(Cpu* c, Insn* i) noexcept:
    """MUL: rDX:rAX = rAX * r/m; CF = OF = (upper half != 0); SF ZF AF PF undefined."""
    cdef uint64_t s = 0, lo = 0, hi = 0, f
    if src_val_rm(c, i, &s):
        return EXC
    hv_mul(rd_reg(c, 0, i.osz), s & size_mask(i.osz), i.osz, &lo, &hi)
    store_double(c, i.osz, lo, hi)
    f = szp(lo, i.osz)
    if hi:
        f |= F_CF | F_OF
    set_flags_eager(c, F_CF | F_OF | F_SF | F_ZF | F_PF | F_AF, f)
    return OK

cdef int h_imul(Cpu* c, Insn* i) noexcept:
    """IMUL: CF = OF = (the signed result does not fit the destination size)."""
    cdef uint64_t s = 0, a = 0, lo = 0, hi = 0, f
    cdef int overflow
    if i.nops == 1:
        if src_val_rm(c, i, &s):
            return EXC
        overflow = hv_imul(rd_reg(c, 0, i.osz), s, i.osz, &lo, &hi)
        store_double(c, i.osz, lo, hi)
    else:
        if i.nops == 2:
            if src_val(c, i, &s):
                return EXC
            a = rd_reg(c, i.r0, i.osz)
        else:
            if src_val(c, i, &a):
                return EXC
            s = i.imm
        overflow = hv_imul(a, s, i.osz, &lo, &hi)
        wr_reg(c, i.r0, i.osz, lo)
    f = szp(lo, i.osz)
    if overflow:
        f |= F_CF | F_OF
    set_flags_eager(c, F_CF | F_OF | F_SF | F_ZF | F_PF | F_AF, f)
    return OK

cdef int h_div(Cpu* c, Insn* i) noexcept:
    """DIV: #DE when the divisor is 0 or the quotient does not fit the destination."""
    cdef uint64_t s = 0, hi = 0, lo = 0, q = 0, r = 0
    if src_val_rm(c, i, &s):
        return EXC
    dividend(c, i.osz, &hi, &lo)
    if hv_div(hi, lo, s & size_mask(i.osz), i.osz, &q, &r):
        return raise_exc(c, DE_VEC, 0, 0)
    store_double(c, i.osz, q, r)
    return OK

cdef int h_idiv(Cpu* c, Insn* i) noexcept:
    """IDIV: the quotient truncates toward zero; #DE for a zero divisor or a quotient outside
    the signed range of the destination."""
    cdef uint64_t s = 0, hi = 0, lo = 0, q = 0, r = 0
    if src_val_rm(c, i, &s):
        return EXC
    dividend(c, i.osz, &hi, &lo)
    if hv_idiv(hi, lo, s, i.osz, &q, &r):
        return raise_exc(c, DE_VEC, 0, 0)
    store_double(c, i.osz, q, r)
    return OK

# --- bit test and scan ------------------------------------------------------------------------

cdef int h_bt(Cpu* c, Insn* i) noexcept:
    """BT/BTS/BTR/BTC: with a register bit offset and a memory operand, the offset addresses
    bits beyond the operand (SDM Vol. 2A BT, "bit string")."""
    cdef uint64_t off, a = 0, ea = 0, bit, r
    cdef int64_t soff
    cdef int bits = i.osz * 8
    if i.k1 == K_IMM:
        off = i.imm & (bits - 1)
    else:
        off = rd_reg(c, i.r1, i.osz)
    if i.k0 == K_REG:
        a = rd_reg(c, i.r0, i.osz)
        off &= bits - 1
    else:
        ea = ea_of(c, i)
        if i.k1 != K_IMM:
            soff = <int64_t>sext(off, i.osz)
            ea = (ea + <uint64_t>((soff >> 3) & ~(<int64_t>(i.osz - 1)))) & size_mask(i.asz)
            off = <uint64_t>soff & (bits - 1)
        if i.mnem == _BT:
            if ld(c, i.seg, ea, i.osz, &a):
                return EXC
        elif ldw(c, i.seg, ea, i.osz, &a):
            return EXC
    bit = (a >> off) & 1
    set_flags_eager(c, F_CF, bit)
    if i.mnem == _BT:
        return OK
    if i.mnem == _BTS:
        r = a | (<uint64_t>1 << off)
    elif i.mnem == _BTR:
        r = a & ~(<uint64_t>1 << off)
    else:
        r = a ^ (<uint64_t>1 << off)
    if i.k0 == K_REG:
        wr_reg(c, i.r0, i.osz, r)
        return OK
    return st(c, i.seg, ea, i.osz, r)

cdef int h_bsf(Cpu* c, Insn* i) noexcept:
    """BSF/BSR: a zero source sets ZF and leaves the destination unchanged (as processors do).
    TZCNT and LZCNT run here too: CPUID does not advertise BMI1/LZCNT, and "on processors that do
    not support TZCNT, the instruction byte encoding is executed as BSF" (SDM Vol. 2B TZCNT;
    likewise LZCNT as BSR). gcc emits that encoding (REP BSF) for __builtin_ctz."""
    cdef uint64_t s = 0
    if src_val(c, i, &s):
        return EXC
    s &= size_mask(i.osz)
    if s == 0:
        set_flags_eager(c, F_ZF | F_CF | F_OF | F_SF | F_AF | F_PF, F_ZF | F_PF)
        return OK
    if i.mnem == _BSF or i.mnem == _TZCNT:
        wr_reg(c, i.r0, i.osz, <uint64_t>hv_ctz(s))
    else:
        wr_reg(c, i.r0, i.osz, <uint64_t>(63 - hv_clz(s)))
    set_flags_eager(c, F_ZF | F_CF | F_OF | F_SF | F_AF | F_PF, 0)
    return OK


cdef int h_cmpxchg8b(Cpu* c, Insn* i) noexcept:
    """CMPXCHG8B/CMPXCHG16B m64/m128: compare EDX:EAX (RDX:RAX) with the operand; equal: ZF = 1
    and the operand := ECX:EBX (RCX:RBX); else ZF = 0 and EDX:EAX := the operand, which is
    written back unchanged. Only ZF changes. CMPXCHG16B needs a 16-byte aligned operand: #GP(0)
    (SDM Vol. 2A CMPXCHG8B/CMPXCHG16B)."""
    cdef int half = 8 if i.mnem == _CMPXCHG16B else 4
    cdef uint64_t ea = ea_of(c, i), lo = 0, hi = 0
    cdef uint64_t ea2 = (ea + <uint64_t>half) & size_mask(i.asz)
    if half == 8 and (ea & 15):
        return gp0(c)
    if ldw(c, i.seg, ea, half, &lo) or ldw(c, i.seg, ea2, half, &hi):
        return EXC
    if lo == rd_reg(c, RAX * 8, half) and hi == rd_reg(c, RDX * 8, half):
        if st(c, i.seg, ea, half, rd_reg(c, RBX * 8, half)) or \
                st(c, i.seg, ea2, half, rd_reg(c, RCX * 8, half)):
            return EXC
        set_flags_eager(c, F_ZF, F_ZF)
        return OK
    if st(c, i.seg, ea, half, lo) or st(c, i.seg, ea2, half, hi):
        return EXC
    wr_reg(c, RAX * 8, half, lo)
    wr_reg(c, RDX * 8, half, hi)
    set_flags_eager(c, F_ZF, 0)
    return OK


cdef uint16_t _SHL, _SAL, _SHR, _ROL, _ROR, _RCL, _SHLD, _BT, _BTS, _BTR, _BSF, _TZCNT, _CMPXCHG16B

cdef void register(handler_t* t) noexcept:
    global _SHL, _SAL, _SHR, _ROL, _ROR, _RCL, _SHLD, _BT, _BTS, _BTR, _BSF, _TZCNT, _CMPXCHG16B
    _TZCNT, _CMPXCHG16B = _ix.Mnemonic.TZCNT, _ix.Mnemonic.CMPXCHG16B
    M = _ix.Mnemonic
    _SHL, _SAL, _SHR = M.SHL, M.SAL, M.SHR
    _ROL, _ROR, _RCL = M.ROL, M.ROR, M.RCL
    _SHLD, _BT, _BTS, _BTR, _BSF = M.SHLD, M.BT, M.BTS, M.BTR, M.BSF
    table = {
        "ADD": <long>h_add, "ADC": <long>h_adc, "SUB": <long>h_sub, "SBB": <long>h_sbb,
        "CMP": <long>h_cmp, "AND": <long>h_and, "OR": <long>h_or, "XOR": <long>h_xor,
        "TEST": <long>h_test, "INC": <long>h_inc, "DEC": <long>h_dec, "NEG": <long>h_neg,
        "NOT": <long>h_not, "MOV": <long>h_mov, "MOVZX": <long>h_movzx, "MOVSX": <long>h_movsx,
        "MOVSXD": <long>h_movsx, "LEA": <long>h_lea, "XCHG": <long>h_xchg,
        "CMPXCHG": <long>h_cmpxchg, "XADD": <long>h_xadd, "BSWAP": <long>h_bswap,
        "CBW": <long>h_cbw, "CWDE": <long>h_cbw, "CDQE": <long>h_cbw,
        "CWD": <long>h_cwd, "CDQ": <long>h_cwd, "CQO": <long>h_cwd,
        "NOP": <long>h_nop, "ENDBR64": <long>h_nop, "ENDBR32": <long>h_nop,
        "XLATB": <long>h_xlat, "CLC": <long>h_clc, "STC": <long>h_stc, "CMC": <long>h_cmc,
        "CLD": <long>h_cld, "STD": <long>h_std, "LAHF": <long>h_lahf, "SAHF": <long>h_sahf,
        "SHL": <long>h_shift, "SAL": <long>h_shift, "SHR": <long>h_shift, "SAR": <long>h_shift,
        "ROL": <long>h_rotate, "ROR": <long>h_rotate, "RCL": <long>h_rotate, "RCR": <long>h_rotate,
        "SHLD": <long>h_shld, "SHRD": <long>h_shld,
        "MUL": <long>h_mul, "IMUL": <long>h_imul, "DIV": <long>h_div, "IDIV": <long>h_idiv,
        "BT": <long>h_bt, "BTS": <long>h_bt, "BTR": <long>h_bt, "BTC": <long>h_bt,
        "BSF": <long>h_bsf, "BSR": <long>h_bsf, "TZCNT": <long>h_bsf, "LZCNT": <long>h_bsf,
        "CMPXCHG8B": <long>h_cmpxchg8b, "CMPXCHG16B": <long>h_cmpxchg8b,
    }
    for name in ("O", "NO", "B", "AE", "E", "NE", "BE", "A", "S", "NS", "P", "NP", "L", "GE", "LE", "G"):
        table["SET" + name] = <long>h_setcc
        table["CMOV" + name] = <long>h_cmovcc
    for name, fn in table.items():
        t[getattr(M, name)] = <handler_t><long>fn
