"""VM-entry checks, SDM Vol. 3C 27.3.1.2 "Checks on Guest Segment Registers" (with the
virtual-8086 and unrestricted-guest variants) and 27.3.1.3 "Checks on Guest Descriptor-Table
Registers"."""
from __future__ import annotations

from typing import Optional

from vmx.entry.context import show
from vmx.fields import Field
from vmx.entry.guest_common import (ALL_SEGMENTS, CR0_PE, DATA_SEGMENTS, SEGS, Seg, TABLES,
                                    _canonical, _fail, _ia32e, _segs, _ug, _v86)


def check_guest_tr_ti(ctx):
    """Selector fields: TR. The TI flag (bit 2) must be 0."""
    tr = Seg(ctx, "TR")
    if tr.ti:
        return _fail(ctx, SEGS, f"{tr.show('SELECTOR')} sets TI (bit 2); TR must select from "
                     f"the GDT")
    return None


def check_guest_ldtr_ti(ctx):
    """Selector fields: LDTR. If LDTR is usable, the TI flag (bit 2) must be 0."""
    ldtr = Seg(ctx, "LDTR")
    if ldtr.usable and ldtr.ti:
        return _fail(ctx, SEGS, f"{ldtr.show('SELECTOR')} sets TI (bit 2) and LDTR is usable; "
                     f"LDTR must select from the GDT")
    return None


def check_guest_ss_rpl(ctx):
    """Selector fields: SS. If the guest will not be virtual-8086 and "unrestricted guest" is 0,
    the RPL (bits 1:0) of SS must equal the RPL of CS."""
    if _v86(ctx) or _ug(ctx):
        return None
    cs, ss = Seg(ctx, "CS"), Seg(ctx, "SS")
    if ss.rpl != cs.rpl:
        return _fail(ctx, SEGS, f"{ss.show('SELECTOR')} has RPL {ss.rpl} but "
                     f"{cs.show('SELECTOR')} has RPL {cs.rpl}; they must be equal")
    return None


# -- bases --

def check_guest_v86_bases(ctx):
    """Base-address fields: if the guest will be virtual-8086, the base of CS, SS, DS, ES, FS
    and GS must be the selector shifted left 4 bits."""
    if not _v86(ctx):
        return None
    for seg in _segs(ctx):
        if seg.base != seg.selector << 4:
            return _fail(ctx, SEGS, f"{seg.show('BASE')} but {seg.show('SELECTOR')}; in "
                         f"virtual-8086 mode the base must be selector * 16 "
                         f"({seg.selector << 4:#x})")
    return None


def check_guest_tr_base(ctx):
    """Base-address fields: the base of TR must be canonical."""
    return _canonical(ctx, SEGS, Field.GUEST_TR_BASE)


def check_guest_fs_base(ctx):
    """Base-address fields: the base of FS must be canonical."""
    return _canonical(ctx, SEGS, Field.GUEST_FS_BASE)


def check_guest_gs_base(ctx):
    """Base-address fields: the base of GS must be canonical."""
    return _canonical(ctx, SEGS, Field.GUEST_GS_BASE)


def check_guest_ldtr_base(ctx):
    """Base-address fields: if LDTR is usable, its base must be canonical."""
    if Seg(ctx, "LDTR").usable:
        return _canonical(ctx, SEGS, Field.GUEST_LDTR_BASE, " and LDTR is usable")
    return None


def check_guest_cs_base(ctx):
    """Base-address fields: bits 63:32 of the CS base must be 0."""
    v = ctx.read(Field.GUEST_CS_BASE)
    if v >> 32:
        return _fail(ctx, SEGS, f"{show(Field.GUEST_CS_BASE, v)} sets bits 63:32; they must be 0")
    return None


def check_guest_ss_ds_es_bases(ctx):
    """Base-address fields: for SS, DS and ES, if the register is usable, bits 63:32 of the
    base must be 0."""
    for seg in _segs(ctx, ("SS", "DS", "ES")):
        if seg.usable and seg.base >> 32:
            return _fail(ctx, SEGS, f"{seg.show('BASE')} sets bits 63:32 and {seg.reg} is "
                         f"usable; they must be 0")
    return None


# -- limits --

def check_guest_v86_limits(ctx):
    """Limit fields: if the guest will be virtual-8086, the limit of CS, SS, DS, ES, FS and GS
    must be 0000FFFFH."""
    if not _v86(ctx):
        return None
    for seg in _segs(ctx):
        if seg.limit != 0xFFFF:
            return _fail(ctx, SEGS, f"{seg.show('LIMIT')}; in virtual-8086 mode the limit must "
                         f"be 0xffff")
    return None


# -- access rights: virtual-8086 --

def check_guest_v86_access_rights(ctx):
    """Access-rights fields: if the guest will be virtual-8086, the access rights of CS, SS,
    DS, ES, FS and GS must be 000000F3H (present, DPL 3, accessed read/write data)."""
    if not _v86(ctx):
        return None
    for seg in _segs(ctx):
        if seg.ar != 0xF3:
            return _fail(ctx, SEGS, f"{seg.show('AR_BYTES')}; in virtual-8086 mode the access "
                         f"rights must be 0xf3")
    return None


# -- access rights: CS, SS, DS, ES, FS, GS outside virtual-8086 mode --

def _checked(ctx, regs=ALL_SEGMENTS):
    """The registers whose access rights are checked: not in virtual-8086 mode; CS always,
    the others only if usable."""
    if _v86(ctx):
        return []
    return [s for s in _segs(ctx, regs) if s.reg == "CS" or s.usable]


def check_guest_cs_type(ctx):
    """CS type (bits 3:0) must be 9, 11, 13 or 15 (accessed code); with "unrestricted guest" = 1
    it may also be 3 (accessed read/write data)."""
    if _v86(ctx):
        return None
    cs = Seg(ctx, "CS")
    allowed = (3, 9, 11, 13, 15) if _ug(ctx) else (9, 11, 13, 15)
    if cs.type not in allowed:
        return _fail(ctx, SEGS, f"{cs.show('AR_BYTES')} has type {cs.type}; CS must have type "
                     f"{', '.join(map(str, allowed))}")
    return None


def check_guest_ss_type(ctx):
    """SS type: if SS is usable, the type must be 3 or 7 (read/write accessed data)."""
    for ss in _checked(ctx, ("SS",)):
        if ss.type not in (3, 7):
            return _fail(ctx, SEGS, f"{ss.show('AR_BYTES')} has type {ss.type}; a usable SS must "
                         f"have type 3 or 7")
    return None


def check_guest_data_accessed(ctx):
    """DS, ES, FS, GS type: if the register is usable, bit 0 of the type (accessed) must be 1."""
    for seg in _checked(ctx, DATA_SEGMENTS):
        if not seg.type & 1:
            return _fail(ctx, SEGS, f"{seg.show('AR_BYTES')} has type {seg.type}, not accessed "
                         f"(bit 0 = 0); a usable {seg.reg} must have it set")
    return None


def check_guest_data_code_readable(ctx):
    """DS, ES, FS, GS type: if the register is usable and bit 3 of the type (code) is 1, bit 1
    (readable) must be 1."""
    for seg in _checked(ctx, DATA_SEGMENTS):
        if seg.type & 8 and not seg.type & 2:
            return _fail(ctx, SEGS, f"{seg.show('AR_BYTES')} has type {seg.type}, an execute-only "
                         f"code segment; a code segment in {seg.reg} must be readable")
    return None


def check_guest_segment_s(ctx):
    """S (bit 4): must be 1 for CS, and for SS, DS, ES, FS, GS if usable."""
    for seg in _checked(ctx):
        if not seg.s:
            return _fail(ctx, SEGS, f"{seg.show('AR_BYTES')} clears S (bit 4); {seg.reg} must "
                         f"be a code or data segment")
    return None


def check_guest_cs_dpl(ctx):
    """CS DPL (bits 6:5): 0 if the type is 3 (unrestricted guest); equal to SS DPL if the type
    is 9 or 11 (non-conforming); not greater than SS DPL if the type is 13 or 15 (conforming)."""
    if _v86(ctx):
        return None
    cs, ss = Seg(ctx, "CS"), Seg(ctx, "SS")
    if cs.type == 3 and _ug(ctx) and cs.dpl != 0:
        return _fail(ctx, SEGS, f"{cs.show('AR_BYTES')} is type 3 with DPL {cs.dpl}; a data-type "
                     f"CS (unrestricted guest) must have DPL 0")
    if cs.type in (9, 11) and cs.dpl != ss.dpl:
        return _fail(ctx, SEGS, f"{cs.show('AR_BYTES')} is non-conforming code with DPL {cs.dpl} "
                     f"but SS DPL is {ss.dpl} ({ss.show('AR_BYTES')}); they must be equal")
    if cs.type in (13, 15) and cs.dpl > ss.dpl:
        return _fail(ctx, SEGS, f"{cs.show('AR_BYTES')} is conforming code with DPL {cs.dpl}, "
                     f"greater than SS DPL {ss.dpl}")
    return None


def check_guest_ss_dpl_rpl(ctx):
    """SS DPL: if "unrestricted guest" is 0, the DPL must equal the RPL of the SS selector."""
    if _v86(ctx) or _ug(ctx):
        return None
    ss = Seg(ctx, "SS")
    if ss.dpl != ss.rpl:
        return _fail(ctx, SEGS, f"{ss.show('AR_BYTES')} has DPL {ss.dpl} but "
                     f"{ss.show('SELECTOR')} has RPL {ss.rpl}; they must be equal")
    return None


def check_guest_ss_dpl_zero(ctx):
    """SS DPL: must be 0 if the CS type is 3 or if CR0.PE (bit 0 of the CR0 field) is 0."""
    if _v86(ctx):
        return None
    ss, cs = Seg(ctx, "SS"), Seg(ctx, "CS")
    real = not ctx.read(Field.GUEST_CR0) & CR0_PE
    if (cs.type == 3 or real) and ss.dpl != 0:
        why = "guest CR0.PE = 0" if real else "CS has type 3"
        return _fail(ctx, SEGS, f"{ss.show('AR_BYTES')} has DPL {ss.dpl}; it must be 0 when {why}")
    return None


def check_guest_data_dpl(ctx):
    """DS, ES, FS, GS DPL: if "unrestricted guest" is 0, the register is usable and its type is
    0-11 (data or non-conforming code), the DPL cannot be less than the RPL of the selector."""
    if _ug(ctx):
        return None
    for seg in _checked(ctx, DATA_SEGMENTS):
        if seg.type <= 11 and seg.dpl < seg.rpl:
            return _fail(ctx, SEGS, f"{seg.show('AR_BYTES')} has DPL {seg.dpl}, less than the RPL "
                         f"{seg.rpl} of {seg.show('SELECTOR')}")
    return None


def check_guest_segment_present(ctx):
    """P (bit 7): must be 1 for CS, and for SS, DS, ES, FS, GS if usable."""
    for seg in _checked(ctx):
        if not seg.p:
            return _fail(ctx, SEGS, f"{seg.show('AR_BYTES')} clears P (bit 7); {seg.reg} must be "
                         f"present")
    return None


def check_guest_segment_reserved_11_8(ctx):
    """Bits 11:8 (reserved): must be 0 for CS, and for the others if usable."""
    for seg in _checked(ctx):
        if seg.ar & 0xF00:
            return _fail(ctx, SEGS, f"{seg.show('AR_BYTES')} sets reserved bits 11:8")
    return None


def check_guest_cs_db(ctx):
    """CS D/B (bit 14): must be 0 if the guest will be IA-32e mode and L (bit 13) is 1."""
    if _v86(ctx):
        return None
    cs = Seg(ctx, "CS")
    if _ia32e(ctx) and cs.l and cs.db:
        return _fail(ctx, SEGS, f"{cs.show('AR_BYTES')} sets both L (bit 13) and D/B (bit 14) "
                     f"in an IA-32e mode guest; a 64-bit CS must have D/B = 0")
    return None


def _granularity(seg) -> Optional[str]:
    if seg.limit & 0xFFF != 0xFFF and seg.g:
        return (f"{seg.show('AR_BYTES')} sets G (bit 15) but {seg.show('LIMIT')} has a 0 in "
                f"bits 11:0; G must be 0")
    if seg.limit >> 20 and not seg.g:
        return (f"{seg.show('AR_BYTES')} clears G (bit 15) but {seg.show('LIMIT')} has a 1 in "
                f"bits 31:20; G must be 1")
    return None


def check_guest_segment_granularity(ctx):
    """G (bit 15), for CS and for usable SS, DS, ES, FS, GS: if any bit of the limit in 11:0 is
    0, G must be 0; if any bit in 31:20 is 1, G must be 1."""
    for seg in _checked(ctx):
        problem = _granularity(seg)
        if problem:
            return _fail(ctx, SEGS, problem)
    return None


def check_guest_segment_reserved_31_17(ctx):
    """Bits 31:17 (reserved): must be 0 for CS, and for the others if usable."""
    for seg in _checked(ctx):
        if seg.ar >> 17:
            return _fail(ctx, SEGS, f"{seg.show('AR_BYTES')} sets reserved bits 31:17")
    return None


# -- access rights: TR --

def check_guest_tr_type(ctx):
    """TR type: 11 (busy 64-bit TSS) if the guest will be IA-32e mode; 3 (busy 16-bit TSS) or
    11 (busy 32-bit TSS) otherwise."""
    tr = Seg(ctx, "TR")
    allowed = (11,) if _ia32e(ctx) else (3, 11)
    if tr.type not in allowed:
        return _fail(ctx, SEGS, f"{tr.show('AR_BYTES')} has type {tr.type}; TR must have type "
                     f"{' or '.join(map(str, allowed))}"
                     + (" in an IA-32e mode guest" if _ia32e(ctx) else ""))
    return None


def check_guest_tr_s(ctx):
    """TR S (bit 4): must be 0."""
    tr = Seg(ctx, "TR")
    if tr.s:
        return _fail(ctx, SEGS, f"{tr.show('AR_BYTES')} sets S (bit 4); TR is a system segment")
    return None


def check_guest_tr_present(ctx):
    """TR P (bit 7): must be 1."""
    tr = Seg(ctx, "TR")
    if not tr.p:
        return _fail(ctx, SEGS, f"{tr.show('AR_BYTES')} clears P (bit 7); TR must be present")
    return None


def check_guest_tr_reserved_11_8(ctx):
    """TR bits 11:8 (reserved): must be 0."""
    tr = Seg(ctx, "TR")
    if tr.ar & 0xF00:
        return _fail(ctx, SEGS, f"{tr.show('AR_BYTES')} sets reserved bits 11:8")
    return None


def check_guest_tr_granularity(ctx):
    """TR G (bit 15): if any limit bit in 11:0 is 0, G must be 0; if any in 31:20 is 1, G must
    be 1."""
    problem = _granularity(Seg(ctx, "TR"))
    return _fail(ctx, SEGS, problem) if problem else None


def check_guest_tr_usable(ctx):
    """TR bit 16 (unusable): must be 0."""
    tr = Seg(ctx, "TR")
    if not tr.usable:
        return _fail(ctx, SEGS, f"{tr.show('AR_BYTES')} sets unusable (bit 16); TR must be usable")
    return None


def check_guest_tr_reserved_31_17(ctx):
    """TR bits 31:17 (reserved): must be 0."""
    tr = Seg(ctx, "TR")
    if tr.ar >> 17:
        return _fail(ctx, SEGS, f"{tr.show('AR_BYTES')} sets reserved bits 31:17")
    return None


# -- access rights: LDTR (only if usable) --

def _ldtr(ctx):
    ldtr = Seg(ctx, "LDTR")
    return ldtr if ldtr.usable else None


def check_guest_ldtr_type(ctx):
    """LDTR type (if usable): must be 2 (LDT)."""
    ldtr = _ldtr(ctx)
    if ldtr and ldtr.type != 2:
        return _fail(ctx, SEGS, f"{ldtr.show('AR_BYTES')} has type {ldtr.type}; a usable LDTR "
                     f"must have type 2 (LDT)")
    return None


def check_guest_ldtr_s(ctx):
    """LDTR S (if usable): must be 0."""
    ldtr = _ldtr(ctx)
    if ldtr and ldtr.s:
        return _fail(ctx, SEGS, f"{ldtr.show('AR_BYTES')} sets S (bit 4); LDTR is a system segment")
    return None


def check_guest_ldtr_present(ctx):
    """LDTR P (if usable): must be 1."""
    ldtr = _ldtr(ctx)
    if ldtr and not ldtr.p:
        return _fail(ctx, SEGS, f"{ldtr.show('AR_BYTES')} clears P (bit 7) and LDTR is usable")
    return None


def check_guest_ldtr_reserved_11_8(ctx):
    """LDTR bits 11:8 (if usable): must be 0."""
    ldtr = _ldtr(ctx)
    if ldtr and ldtr.ar & 0xF00:
        return _fail(ctx, SEGS, f"{ldtr.show('AR_BYTES')} sets reserved bits 11:8")
    return None


def check_guest_ldtr_granularity(ctx):
    """LDTR G (if usable): consistent with the limit as for the other registers."""
    ldtr = _ldtr(ctx)
    problem = ldtr and _granularity(ldtr)
    return _fail(ctx, SEGS, problem) if problem else None


def check_guest_ldtr_reserved_31_17(ctx):
    """LDTR bits 31:17 (if usable): must be 0."""
    ldtr = _ldtr(ctx)
    if ldtr and ldtr.ar >> 17:
        return _fail(ctx, SEGS, f"{ldtr.show('AR_BYTES')} sets reserved bits 31:17")
    return None


# ==============================================================================================
# 27.3.1.3 Checks on guest descriptor-table registers
# ==============================================================================================

def check_guest_gdtr_base(ctx):
    """The GDTR base must be canonical."""
    return _canonical(ctx, TABLES, Field.GUEST_GDTR_BASE)


def check_guest_idtr_base(ctx):
    """The IDTR base must be canonical."""
    return _canonical(ctx, TABLES, Field.GUEST_IDTR_BASE)


def check_guest_gdtr_limit(ctx):
    """Bits 31:16 of the GDTR limit must be 0."""
    v = ctx.read(Field.GUEST_GDTR_LIMIT)
    if v >> 16:
        return _fail(ctx, TABLES, f"{show(Field.GUEST_GDTR_LIMIT, v)} sets bits 31:16")
    return None


def check_guest_idtr_limit(ctx):
    """Bits 31:16 of the IDTR limit must be 0."""
    v = ctx.read(Field.GUEST_IDTR_LIMIT)
    if v >> 16:
        return _fail(ctx, TABLES, f"{show(Field.GUEST_IDTR_LIMIT, v)} sets bits 31:16")
    return None
