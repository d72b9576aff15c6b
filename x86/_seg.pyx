# Segment registers and the processor mode (SDM Vol. 3A chapters 3 and 5).
from libc.stdint cimport uint16_t, uint32_t, uint64_t
from x86._defs cimport *
from x86._mem cimport lin_read_slow, lin_write_slow, tlb_flush


cdef void update_mode(Cpu* c) noexcept:
    """Derive CPL, the decode mode and the address arithmetic from CR0, EFER, RFLAGS, CS and SS."""
    cdef int lma = (c.efer >> 10) & 1
    cdef int old_user = c.tlb_user
    cdef int i
    if not (c.cr0 & 1):
        c.cpl = 0                               # real-address mode
    elif c.rflags & F_VM:
        c.cpl = 3                               # virtual-8086 mode
    else:
        c.cpl = (c.seg[SS].attr >> 5) & 3       # SDM 5.5: CPL is the DPL of SS (and RPL of CS)
    c.mode64 = lma and ((c.seg[CS].attr >> 13) & 1)
    if c.mode64:
        c.code_bits = 64
        c.stack_size = 8
    else:
        c.code_bits = 32 if (c.seg[CS].attr >> 14) & 1 else 16
        c.stack_size = 4 if (c.seg[SS].attr >> 14) & 1 else 2
    c.seg_checks = not c.mode64
    for i in range(6):
        if c.mode64 and i < FS:
            c.segbase[i] = 0                    # SDM 3.4.4: ES/CS/SS/DS bases are treated as 0
        else:
            c.segbase[i] = c.seg[i].base
    c.tlb_user = c.cpl == 3


cdef void set_seg_real(Cpu* c, int sreg, uint16_t sel) noexcept:
    """Real-address and virtual-8086 mode: the base is selector * 16 (SDM 20.1.1)."""
    c.seg[sreg].sel = sel
    c.seg[sreg].base = <uint64_t>sel << 4
    if c.rflags & F_VM:
        c.seg[sreg].limit = 0xFFFF
        c.seg[sreg].attr = 0xF3               # present, DPL 3, read/write data, accessed
    elif c.seg[sreg].attr & 0x10000:
        c.seg[sreg].attr = 0x93 if sreg != CS else 0x9B
    if sreg < 6:
        c.segbase[sreg] = 0 if (c.mode64 and sreg < FS) else c.seg[sreg].base


cdef void unpack_descriptor(uint64_t lo, uint64_t hi, Seg* s, uint16_t sel) noexcept:
    """Segment descriptor (SDM 3.4.5, Figure 3-8) to the descriptor cache (VMCS access-rights format)."""
    cdef uint32_t limit = <uint32_t>((lo & 0xFFFF) | ((lo >> 32) & 0xF0000))
    s.sel = sel
    s.base = ((lo >> 16) & 0xFFFFFF) | (((lo >> 56) & 0xFF) << 24)
    if not ((lo >> 44) & 1):
        s.base |= (hi & 0xFFFFFFFF) << 32        # 16-byte system descriptor (LDT, TSS) in IA-32e mode
    s.attr = <uint32_t>((lo >> 40) & 0xF0FF)
    if (lo >> 55) & 1:
        limit = (limit << 12) | 0xFFF
    s.limit = limit


cdef int read_descriptor(Cpu* c, uint16_t sel, uint64_t* lo, uint64_t* hi, int vec) noexcept:
    """Fetch the descriptor a selector names from the GDT or LDT (SDM 3.4.2); #vec(sel) past the limit."""
    cdef uint64_t base, limit
    cdef uint32_t idx = sel & 0xFFF8
    if sel & 4:
        if c.seg[LDTR].attr & 0x10000:
            return raise_exc(c, vec, 1, sel & 0xFFFC)
        base = c.seg[LDTR].base
        limit = c.seg[LDTR].limit
    else:
        base = c.gdtr_base
        limit = c.gdtr_limit
    if idx + 7 > limit:
        return raise_exc(c, vec, 1, sel & 0xFFFC)
    if lin_read_slow(c, base + idx, 8, lo, ACC_R | ACC_SYS):
        return EXC
    hi[0] = 0
    if c.mode64 or (c.efer >> 10) & 1:
        if not ((lo[0] >> 44) & 1):
            if idx + 15 > limit:
                return raise_exc(c, vec, 1, sel & 0xFFFC)
            if lin_read_slow(c, base + idx + 8, 8, hi, ACC_R | ACC_SYS):
                return EXC
    return OK


cdef int set_dtr_accessed(Cpu* c, uint16_t sel, uint64_t lo) noexcept:
    """Set the accessed bit of a segment descriptor when it is loaded (SDM 3.4.5.1)."""
    cdef uint64_t base = c.seg[LDTR].base if sel & 4 else c.gdtr_base
    if (lo >> 40) & 1:
        return OK
    return lin_write_slow(c, base + (sel & 0xFFF8) + 5, 1, ((lo >> 40) & 0xFF) | 1, ACC_W | ACC_SYS)


cdef int load_seg(Cpu* c, int sreg, uint16_t sel) noexcept:
    """MOV/POP to a data or stack segment register (SDM Vol. 2B MOV, "Operation")."""
    cdef uint64_t lo = 0, hi = 0
    cdef int rpl = sel & 3, dpl, t, code
    cdef Seg s
    if not (c.cr0 & 1) or (c.rflags & F_VM):
        set_seg_real(c, sreg, sel)
        return OK
    if (sel & 0xFFFC) == 0:
        if sreg == SS and not (c.mode64 and c.cpl != 3 and rpl == c.cpl):
            return gp0(c)
        c.seg[sreg].sel = sel
        c.seg[sreg].attr = 0x10000 | ((<uint32_t>c.cpl << 5) if sreg == SS else 0)
        c.seg[sreg].base = 0
        c.seg[sreg].limit = 0
        update_mode(c)
        return OK
    if read_descriptor(c, sel, &lo, &hi, GP_VEC):
        return EXC
    dpl = (lo >> 45) & 3
    t = (lo >> 40) & 0xF
    code = t & 8
    if not ((lo >> 44) & 1):
        return raise_exc(c, GP_VEC, 1, sel & 0xFFFC)          # system descriptor
    if sreg == SS:
        if rpl != c.cpl or dpl != c.cpl or code or not (t & 2):
            return raise_exc(c, GP_VEC, 1, sel & 0xFFFC)
        if not ((lo >> 47) & 1):
            return raise_exc(c, SS_VEC, 1, sel & 0xFFFC)
    else:
        if code and not (t & 2):
            return raise_exc(c, GP_VEC, 1, sel & 0xFFFC)      # execute-only code
        if not code or not (t & 4):                          # data or non-conforming code
            if rpl > dpl or c.cpl > dpl:
                return raise_exc(c, GP_VEC, 1, sel & 0xFFFC)
        if not ((lo >> 47) & 1):
            return raise_exc(c, NP_VEC, 1, sel & 0xFFFC)
    if set_dtr_accessed(c, sel, lo):
        return EXC
    unpack_descriptor(lo | (<uint64_t>1 << 40), hi, &s, sel)
    c.seg[sreg] = s
    update_mode(c)
    return OK


cdef int load_cs(Cpu* c, uint16_t sel, int cpl) noexcept:
    """Load CS for a far transfer already checked by the caller; CS.RPL becomes the new CPL."""
    cdef uint64_t lo = 0, hi = 0
    cdef Seg s
    if not (c.cr0 & 1) or (c.rflags & F_VM):
        set_seg_real(c, CS, sel)
        update_mode(c)
        return OK
    if (sel & 0xFFFC) == 0:
        return gp0(c)
    if read_descriptor(c, sel, &lo, &hi, GP_VEC):
        return EXC
    if not ((lo >> 44) & 1) or not ((lo >> 43) & 1):
        return raise_exc(c, GP_VEC, 1, sel & 0xFFFC)
    if not ((lo >> 47) & 1):
        return raise_exc(c, NP_VEC, 1, sel & 0xFFFC)
    if set_dtr_accessed(c, sel, lo):
        return EXC
    unpack_descriptor(lo | (<uint64_t>1 << 40), 0, &s, <uint16_t>((sel & 0xFFFC) | cpl))
    c.seg[CS] = s
    update_mode(c)
    return OK
