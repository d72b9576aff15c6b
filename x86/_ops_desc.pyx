# Descriptor-table and segment-register instructions: LGDT/LIDT/SGDT/SIDT, LLDT/LTR/SLDT/STR,
# MOV to/from Sreg, LDS/LES/LFS/LGS/LSS (SDM Vol. 2; Vol. 3A 3.4-3.5, 8.2).
from libc.stdint cimport uint16_t, uint32_t, uint64_t
from x86._defs cimport *
from x86._sysops cimport sensitive, need_cpl0, rm_read, rm_write16
from x86._mem cimport ea_of, ld, st, lin_write_slow
from x86._seg cimport load_seg, read_descriptor, unpack_descriptor
import iced_x86 as _ix
from x86 import decode as _decode


# --- descriptor tables ------------------------------------------------------------------------

cdef int h_lgdt(Cpu* c, Insn* i) noexcept:
    """LGDT/LIDT m16&32 (m16&64 in 64-bit mode); a 16-bit operand keeps 24 base bits."""
    cdef uint64_t ea, limit = 0, base = 0
    cdef int r
    if need_cpl0(c):
        return EXC
    ea = ea_of(c, i)
    if ld(c, i.seg, ea, 2, &limit) or ld(c, i.seg, (ea + 2) & size_mask(i.asz), 8 if c.mode64 else 4, &base):
        return EXC
    if c.mode64 and not canonical(c, base):
        return gp0(c)
    if not c.mode64 and i.osz == 2:
        base &= 0xFFFFFF
    r = sensitive(c, i, 0)
    if r:
        return r
    if i.mnem == _LGDT:
        c.gdtr_base = base
        c.gdtr_limit = <uint32_t>limit
    else:
        c.idtr_base = base
        c.idtr_limit = <uint32_t>limit
    return OK

cdef int h_sgdt(Cpu* c, Insn* i) noexcept:
    cdef uint64_t ea
    cdef int r
    if (c.cr4 & 0x800) and c.cpl > 0:
        return gp0(c)
    r = sensitive(c, i, 0)
    if r:
        return r
    ea = ea_of(c, i)
    if i.mnem == _SGDT:
        if st(c, i.seg, ea, 2, c.gdtr_limit) or st(c, i.seg, (ea + 2) & size_mask(i.asz), 8 if c.mode64 else 4, c.gdtr_base):
            return EXC
    else:
        if st(c, i.seg, ea, 2, c.idtr_limit) or st(c, i.seg, (ea + 2) & size_mask(i.asz), 8 if c.mode64 else 4, c.idtr_base):
            return EXC
    return OK

cdef int h_lldt_ltr(Cpu* c, Insn* i) noexcept:
    """LLDT (type 2) and LTR (available TSS, type 1/9, which LTR marks busy) (SDM Vol. 2A)."""
    cdef uint64_t sel = 0, lo = 0, hi = 0, gbase
    cdef int is_tr = i.mnem == _LTR
    cdef int t, r
    cdef Seg s
    if not (c.cr0 & 1) or (c.rflags & F_VM):
        return ud(c)
    if need_cpl0(c):
        return EXC
    if rm_read(c, i, 2, &sel):
        return EXC
    r = sensitive(c, i, sel)
    if r:
        return r
    if (sel & 0xFFFC) == 0:
        if is_tr:
            return gp0(c)
        c.seg[LDTR].sel = <uint16_t>sel
        c.seg[LDTR].attr = 0x10000
        return OK
    if sel & 4:
        return raise_exc(c, GP_VEC, 1, sel & 0xFFFC)
    if read_descriptor(c, <uint16_t>sel, &lo, &hi, GP_VEC):
        return EXC
    t = (lo >> 40) & 0x1F
    if is_tr:
        if t != 0x09 and not (t == 0x01 and not (c.efer & 0x400)):
            return raise_exc(c, GP_VEC, 1, sel & 0xFFFC)
    elif t != 0x02:
        return raise_exc(c, GP_VEC, 1, sel & 0xFFFC)
    if not ((lo >> 47) & 1):
        return raise_exc(c, NP_VEC, 1, sel & 0xFFFC)
    if (c.efer & 0x400) and ((hi >> 40) & 0x1F):
        return raise_exc(c, GP_VEC, 1, sel & 0xFFFC)
    unpack_descriptor(lo, hi, &s, <uint16_t>sel)
    if is_tr:
        gbase = c.gdtr_base + (sel & 0xFFF8) + 5
        if lin_write_slow(c, gbase, 1, ((lo >> 40) & 0xFF) | 2, ACC_W | ACC_SYS):
            return EXC
        s.attr |= 2
        c.seg[TR] = s
    else:
        c.seg[LDTR] = s
    return OK

cdef int h_sldt_str(Cpu* c, Insn* i) noexcept:
    cdef int r
    if not (c.cr0 & 1) or (c.rflags & F_VM):
        return ud(c)
    if (c.cr4 & 0x800) and c.cpl > 0:
        return gp0(c)
    r = sensitive(c, i, 0)
    if r:
        return r
    return rm_write16(c, i, c.seg[TR].sel if i.mnem == _STR else c.seg[LDTR].sel)

# --- segment registers ------------------------------------------------------------------------

cdef int h_mov_sreg(Cpu* c, Insn* i) noexcept:
    """MOV Sreg, r/m16: MOV to CS is #UD; MOV to SS blocks interrupts for one instruction."""
    cdef uint64_t v = 0
    if i.r0 == CS:
        return ud(c)
    if i.k1 == K_REG:
        v = rd_reg(c, i.r1, 2)
    elif ld(c, i.seg, ea_of(c, i), 2, &v):
        return EXC
    if load_seg(c, i.r0, <uint16_t>v):
        return EXC
    if i.r0 == SS:
        c.inhibit = INHIBIT_MOVSS
        c.shadow_end = c.icount + 2
        c.next_event = c.icount
    return REDECODE

cdef int h_mov_from_sreg(Cpu* c, Insn* i) noexcept:
    return rm_write16(c, i, c.seg[i.r1].sel)

cdef int h_load_far(Cpu* c, Insn* i) noexcept:
    """LDS/LES/LFS/LGS/LSS r, m16:16/32/64."""
    cdef uint64_t off = 0, sel = 0, ea = ea_of(c, i)
    cdef int sreg
    if ld(c, i.seg, ea, i.ssz, &off) or ld(c, i.seg, (ea + i.ssz) & size_mask(i.asz), 2, &sel):
        return EXC
    sreg = DS if i.mnem == _LDS else ES if i.mnem == _LES else FS if i.mnem == _LFS else \
        GS if i.mnem == _LGS else SS
    if load_seg(c, sreg, <uint16_t>sel):
        return EXC
    wr_reg(c, i.r0, i.osz, off)
    return REDECODE


cdef uint16_t _LGDT, _SGDT, _LTR, _STR, _LDS, _LES, _LFS, _LGS

cdef void register(handler_t* t) noexcept:
    global _LGDT, _SGDT, _LTR, _STR, _LDS, _LES, _LFS, _LGS
    M = _ix.Mnemonic
    _LGDT, _SGDT, _LTR, _STR = M.LGDT, M.SGDT, M.LTR, M.STR
    _LDS, _LES, _LFS, _LGS = M.LDS, M.LES, M.LFS, M.LGS
    table = {
        "LGDT": <long>h_lgdt, "LIDT": <long>h_lgdt, "SGDT": <long>h_sgdt, "SIDT": <long>h_sgdt,
        "LLDT": <long>h_lldt_ltr, "LTR": <long>h_lldt_ltr, "SLDT": <long>h_sldt_str, "STR": <long>h_sldt_str,
        "LDS": <long>h_load_far, "LES": <long>h_load_far, "LFS": <long>h_load_far,
        "LGS": <long>h_load_far, "LSS": <long>h_load_far,
    }
    for name, fn in table.items():
        t[getattr(M, name)] = <handler_t><long>fn
    t[_decode.MOV_SREG] = h_mov_sreg
    t[_decode.MOV_FROM_SREG] = h_mov_from_sreg
