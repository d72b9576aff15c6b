"""VM-entry checks on the guest-state area: SDM Vol. 3C 27.3.1 "Checks on the Guest State Area".

27.3.1.1 control registers, debug registers and MSRs; 27.3.1.2 segment registers (with the
virtual-8086 and unrestricted-guest variants); 27.3.1.3 GDTR and IDTR; 27.3.1.4 RIP and RFLAGS;
27.3.1.5 non-register state (activity state, interruptibility state, pending debug exceptions,
VMCS link pointer); 27.3.1.6 PDPTEs. A failure is a VM exit with basic reason 33 ("VM-entry
failure due to invalid guest state") and bit 31 set; the exit qualification is 0, or 2 for the
PDPTEs, 3 for NMI injection under blocking by STI, 4 for the VMCS link pointer (27.8).
"""
from __future__ import annotations

import struct
from typing import Optional

from vmx import profiles as P
from vmx.controls import EntryControls as En, PinBased as Pin, SecondaryProcBased as Sec
from vmx.entry.context import (EFER_LMA, EFER_LME, QUAL_LINK_POINTER, QUAL_NMI_STI, QUAL_PDPTE,
                               EntryContext, Failure, run, show)
from vmx.entry.host import CR0_NW_CD, fixed_bits, pat_problem
from vmx.fields import Field
from vmx.vmcs import INVALID_POINTER

CRS, SEGS, TABLES, RIPFL, NONREG, PDPTES = ("27.3.1.1", "27.3.1.2", "27.3.1.3", "27.3.1.4",
                                             "27.3.1.5", "27.3.1.6")
CR0_PE, CR0_PG = 1 << 0, 1 << 31
CR4_PAE, CR4_PCIDE = 1 << 5, 1 << 17
RFLAGS_TF, RFLAGS_IF, RFLAGS_VM = 1 << 8, 1 << 9, 1 << 17
RFLAGS_RESERVED0 = ~((1 << 22) - 1) & ((1 << 64) - 1) | (1 << 15) | (1 << 5) | (1 << 3)
DEBUGCTL_BTF = 1 << 1

# Activity states (25.4.2) and the IA32_VMX_MISC bit that advertises each (A.6).
ACTIVE, HLT, SHUTDOWN, WAIT_FOR_SIPI = 0, 1, 2, 3
ACTIVITY_MISC_BIT = {HLT: P.MISC_ACTIVITY_HLT, SHUTDOWN: P.MISC_ACTIVITY_SHUTDOWN,
                     WAIT_FOR_SIPI: P.MISC_ACTIVITY_WAIT_SIPI}
ACTIVITY_NAME = {ACTIVE: "active", HLT: "HLT", SHUTDOWN: "shutdown",
                 WAIT_FOR_SIPI: "wait-for-SIPI"}

# Interruptibility state (25.4.2, Table 25-3).
BLOCK_STI, BLOCK_MOVSS, BLOCK_SMI, BLOCK_NMI, ENCLAVE_INTERRUPTION = 1, 2, 4, 8, 16

# Interruption types of the VM-entry interruption-information field (25.8.3).
EXTERNAL_INTERRUPT, NMI, HARDWARE_EXCEPTION = 0, 2, 3

AR_UNUSABLE = 1 << 16
DATA_SEGMENTS = ("DS", "ES", "FS", "GS")
ALL_SEGMENTS = ("CS", "SS", "DS", "ES", "FS", "GS")


def _fail(ctx: EntryContext, section: str, rule: str, qualification: int = 0) -> Failure:
    return ctx.fail("guest", section, rule, qualification)


# -- guest facts the checks share --------------------------------------------------------------

def _ug(ctx) -> bool:
    return bool(ctx.secondary & Sec.UNRESTRICTED_GUEST)


def _ia32e(ctx) -> bool:
    return bool(ctx.entry_controls & En.IA32E_MODE)


def _v86(ctx) -> bool:
    return bool(ctx.read(Field.GUEST_RFLAGS) & RFLAGS_VM)


def _f(reg: str, part: str):
    return Field[f"GUEST_{reg}_{part}"]


class Seg:
    """One guest segment register as the VMCS holds it (access rights in the VMCS format:
    3:0 type, 4 S, 6:5 DPL, 7 P, 11:8 reserved, 12 AVL, 13 L, 14 D/B, 15 G, 16 unusable,
    31:17 reserved)."""

    def __init__(self, ctx, reg: str):
        self.reg = reg
        self.selector = ctx.read(_f(reg, "SELECTOR"))
        self.base = ctx.read(_f(reg, "BASE"))
        self.limit = ctx.read(_f(reg, "LIMIT"))
        self.ar = ctx.read(_f(reg, "AR_BYTES"))

    type = property(lambda s: s.ar & 0xF)
    s = property(lambda s: s.ar >> 4 & 1)
    dpl = property(lambda s: s.ar >> 5 & 3)
    p = property(lambda s: s.ar >> 7 & 1)
    l = property(lambda s: s.ar >> 13 & 1)
    db = property(lambda s: s.ar >> 14 & 1)
    g = property(lambda s: s.ar >> 15 & 1)
    usable = property(lambda s: not s.ar & AR_UNUSABLE)
    rpl = property(lambda s: s.selector & 3)
    ti = property(lambda s: s.selector >> 2 & 1)

    def show(self, part: str) -> str:
        value = {"SELECTOR": self.selector, "BASE": self.base, "LIMIT": self.limit,
                 "AR_BYTES": self.ar}[part]
        return show(_f(self.reg, part), value)


def _segs(ctx, regs=ALL_SEGMENTS):
    return [Seg(ctx, r) for r in regs]


# ==============================================================================================
# 27.3.1.1 Checks on guest control registers, debug registers and MSRs
# ==============================================================================================

def check_guest_cr0_fixed0(ctx):
    """The CR0 field must not clear a bit that IA32_VMX_CR0_FIXED0 has as 1; PE (bit 0) and PG
    (bit 31) are not checked if "unrestricted guest" is 1, NW and CD (bits 29, 30) never."""
    fixed0 = P.cr0_fixed(ctx.profile, _ug(ctx))[0] & ~CR0_NW_CD
    v = ctx.read(Field.GUEST_CR0)
    name = "IA32_VMX_CR0_FIXED0" + (" (less PE and PG: unrestricted guest)" if _ug(ctx) else "")
    return fixed_bits(ctx, CRS, Field.GUEST_CR0, v, fixed0, ~0, name, "", _fail)


def check_guest_cr0_fixed1(ctx):
    """The CR0 field must not set a bit that IA32_VMX_CR0_FIXED1 has as 0 (NW and CD are never
    checked)."""
    v = ctx.read(Field.GUEST_CR0) & ~CR0_NW_CD
    return fixed_bits(ctx, CRS, Field.GUEST_CR0, v, 0, ctx.profile.msr(P.IA32_VMX_CR0_FIXED1),
                      "", "IA32_VMX_CR0_FIXED1", _fail)


def check_guest_cr0_pg_needs_pe(ctx):
    """If bit 31 (PG) of the CR0 field is 1, bit 0 (PE) must be 1."""
    v = ctx.read(Field.GUEST_CR0)
    if v & CR0_PG and not v & CR0_PE:
        return _fail(ctx, CRS, f"{show(Field.GUEST_CR0, v)} sets PG (bit 31) with PE (bit 0) = 0; "
                     f"paging needs protected mode")
    return None


def check_guest_cr4_fixed0(ctx):
    """The CR4 field must not clear a bit that IA32_VMX_CR4_FIXED0 has as 1."""
    v = ctx.read(Field.GUEST_CR4)
    return fixed_bits(ctx, CRS, Field.GUEST_CR4, v, ctx.profile.msr(P.IA32_VMX_CR4_FIXED0), ~0,
                      "IA32_VMX_CR4_FIXED0", "", _fail)


def check_guest_cr4_fixed1(ctx):
    """The CR4 field must not set a bit that IA32_VMX_CR4_FIXED1 has as 0."""
    v = ctx.read(Field.GUEST_CR4)
    return fixed_bits(ctx, CRS, Field.GUEST_CR4, v, 0, ctx.profile.msr(P.IA32_VMX_CR4_FIXED1),
                      "", "IA32_VMX_CR4_FIXED1", _fail)


def check_guest_debugctl(ctx):
    """If "load debug controls" is 1, bits reserved in IA32_DEBUGCTL must be 0 in its field."""
    if ctx.entry_controls & En.LOAD_DEBUG_CONTROLS:
        v = ctx.read(Field.GUEST_IA32_DEBUGCTL)
        if v & ~ctx.debugctl_valid:
            return _fail(ctx, CRS, f"{show(Field.GUEST_IA32_DEBUGCTL, v)} sets reserved bits "
                         f"({v & ~ctx.debugctl_valid:#x}; implemented: {ctx.debugctl_valid:#x}) "
                         f"with \"load debug controls\" = 1")
    return None


def check_guest_ia32e_needs_pg(ctx):
    """If "IA-32e mode guest" is 1, bit 31 (PG) of the CR0 field must be 1."""
    v = ctx.read(Field.GUEST_CR0)
    if _ia32e(ctx) and not v & CR0_PG:
        return _fail(ctx, CRS, f"{show(Field.GUEST_CR0, v)} clears PG (bit 31) while \"IA-32e "
                     f"mode guest\" is 1; IA-32e mode needs paging")
    return None


def check_guest_ia32e_needs_pae(ctx):
    """If "IA-32e mode guest" is 1, bit 5 (PAE) of the CR4 field must be 1."""
    v = ctx.read(Field.GUEST_CR4)
    if _ia32e(ctx) and not v & CR4_PAE:
        return _fail(ctx, CRS, f"{show(Field.GUEST_CR4, v)} clears PAE (bit 5) while \"IA-32e "
                     f"mode guest\" is 1")
    return None


def check_guest_pcide(ctx):
    """If "IA-32e mode guest" is 0, bit 17 (PCIDE) of the CR4 field must be 0."""
    v = ctx.read(Field.GUEST_CR4)
    if not _ia32e(ctx) and v & CR4_PCIDE:
        return _fail(ctx, CRS, f"{show(Field.GUEST_CR4, v)} sets PCIDE (bit 17) while \"IA-32e "
                     f"mode guest\" is 0")
    return None


def check_guest_cr3(ctx):
    """The CR3 field must not set any bit beyond the processor's physical-address width."""
    v = ctx.read(Field.GUEST_CR3)
    if ctx.beyond_phys(v):
        return _fail(ctx, CRS, f"{show(Field.GUEST_CR3, v)} sets bits 63:{ctx.maxphyaddr}, beyond "
                     f"the physical-address width")
    return None


def check_guest_dr7(ctx):
    """If "load debug controls" is 1, bits 63:32 of the DR7 field must be 0."""
    if ctx.entry_controls & En.LOAD_DEBUG_CONTROLS:
        v = ctx.read(Field.GUEST_DR7)
        if v >> 32:
            return _fail(ctx, CRS, f"{show(Field.GUEST_DR7, v)} sets bits 63:32 with \"load debug "
                         f"controls\" = 1")
    return None


def _canonical(ctx, section, field, what=""):
    v = ctx.read(field)
    if not ctx.canonical(v):
        return _fail(ctx, section, f"{show(field, v)} is not canonical (bits 63:"
                     f"{ctx.linear_width - 1} must all equal bit {ctx.linear_width - 1}){what}")
    return None


def check_guest_sysenter_esp(ctx):
    """The IA32_SYSENTER_ESP field must contain a canonical address."""
    return _canonical(ctx, CRS, Field.GUEST_SYSENTER_ESP)


def check_guest_sysenter_eip(ctx):
    """The IA32_SYSENTER_EIP field must contain a canonical address."""
    return _canonical(ctx, CRS, Field.GUEST_SYSENTER_EIP)


def check_guest_perf_global_ctrl(ctx):
    """If "load IA32_PERF_GLOBAL_CTRL" (VM-entry) is 1, bits reserved in that MSR must be 0 in
    its field."""
    if ctx.entry_controls & En.LOAD_IA32_PERF_GLOBAL_CTRL:
        v = ctx.read(Field.GUEST_IA32_PERF_GLOBAL_CTRL)
        if v & ~ctx.perf_global_ctrl_valid:
            return _fail(ctx, CRS, f"{show(Field.GUEST_IA32_PERF_GLOBAL_CTRL, v)} sets reserved "
                         f"bits (implemented: {ctx.perf_global_ctrl_valid:#x})")
    return None


def check_guest_pat(ctx):
    """If "load IA32_PAT" (VM-entry) is 1, each byte of the IA32_PAT field must be 0, 1, 4, 5, 6
    or 7 (a value WRMSR would accept)."""
    if ctx.entry_controls & En.LOAD_IA32_PAT:
        v = ctx.read(Field.GUEST_IA32_PAT)
        problem = pat_problem(v)
        if problem:
            return _fail(ctx, CRS, f"{show(Field.GUEST_IA32_PAT, v)}: {problem}")
    return None


def check_guest_efer_reserved(ctx):
    """If "load IA32_EFER" (VM-entry) is 1, bits reserved in IA32_EFER must be 0 in its field."""
    if ctx.entry_controls & En.LOAD_IA32_EFER:
        v = ctx.read(Field.GUEST_IA32_EFER)
        if v & ~ctx.efer_valid:
            return _fail(ctx, CRS, f"{show(Field.GUEST_IA32_EFER, v)} sets reserved bits "
                         f"({v & ~ctx.efer_valid:#x})")
    return None


def check_guest_efer_lma(ctx):
    """If "load IA32_EFER" is 1, bit 10 (LMA) of its field must equal "IA-32e mode guest"."""
    if ctx.entry_controls & En.LOAD_IA32_EFER:
        v = ctx.read(Field.GUEST_IA32_EFER)
        if bool(v & EFER_LMA) != _ia32e(ctx):
            return _fail(ctx, CRS, f"{show(Field.GUEST_IA32_EFER, v)} has LMA (bit 10) = "
                         f"{int(bool(v & EFER_LMA))} but \"IA-32e mode guest\" = "
                         f"{int(_ia32e(ctx))}; they must be equal")
    return None


def check_guest_efer_lme(ctx):
    """If "load IA32_EFER" is 1 and CR0.PG (bit 31 of the CR0 field) is 1, bit 8 (LME) of its
    field must equal bit 10 (LMA)."""
    if ctx.entry_controls & En.LOAD_IA32_EFER and ctx.read(Field.GUEST_CR0) & CR0_PG:
        v = ctx.read(Field.GUEST_IA32_EFER)
        if bool(v & EFER_LME) != bool(v & EFER_LMA):
            return _fail(ctx, CRS, f"{show(Field.GUEST_IA32_EFER, v)} has LME (bit 8) != LMA "
                         f"(bit 10) while guest CR0.PG = 1")
    return None


def check_guest_bndcfgs(ctx):
    """If "load IA32_BNDCFGS" is 1, reserved bits 11:2 of its field must be 0 and bits 63:12
    (the base of the bound directory) must be canonical."""
    if ctx.entry_controls & En.LOAD_BNDCFGS:
        v = ctx.read(Field.GUEST_BNDCFGS)
        if v & 0xFFC:
            return _fail(ctx, CRS, f"{show(Field.GUEST_BNDCFGS, v)} sets reserved bits 11:2")
        if not ctx.canonical(v & ~0xFFF):
            return _fail(ctx, CRS, f"{show(Field.GUEST_BNDCFGS, v)}: the base in bits 63:12 is "
                         f"not canonical")
    return None


def check_guest_pkrs(ctx):
    """If "load PKRS" (VM-entry) is 1, bits 63:32 of the IA32_PKRS field must be 0."""
    if ctx.entry_controls & En.LOAD_IA32_PKRS:
        v = ctx.read(Field.GUEST_IA32_PKRS)
        if v >> 32:
            return _fail(ctx, CRS, f"{show(Field.GUEST_IA32_PKRS, v)} sets bits 63:32")
    return None


# ==============================================================================================
# 27.3.1.2 Checks on guest segment registers
# ==============================================================================================

# -- selectors --

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


# ==============================================================================================
# 27.3.1.4 Checks on guest RIP, RFLAGS and SSP
# ==============================================================================================

def _64bit_code(ctx) -> bool:
    return _ia32e(ctx) and bool(Seg(ctx, "CS").l)


def check_guest_rip_high(ctx):
    """Bits 63:32 of the RIP field must be 0 if "IA-32e mode guest" is 0 or the L bit of the CS
    access rights is 0."""
    v = ctx.read(Field.GUEST_RIP)
    if not _64bit_code(ctx) and v >> 32:
        return _fail(ctx, RIPFL, f"{show(Field.GUEST_RIP, v)} sets bits 63:32 but the guest will "
                     f"not run 64-bit code (IA-32e mode guest = {int(_ia32e(ctx))}, CS.L = "
                     f"{Seg(ctx, 'CS').l})")
    return None


def check_guest_rip_canonical(ctx):
    """If "IA-32e mode guest" is 1 and CS.L is 1, bits 63:N of RIP (N = linear-address width)
    must be identical."""
    if _64bit_code(ctx):
        return _canonical(ctx, RIPFL, Field.GUEST_RIP, " for 64-bit guest code")
    return None


def check_guest_rflags_reserved(ctx):
    """RFLAGS: reserved bits 63:22, 15, 5 and 3 must be 0."""
    v = ctx.read(Field.GUEST_RFLAGS)
    if v & RFLAGS_RESERVED0:
        return _fail(ctx, RIPFL, f"{show(Field.GUEST_RFLAGS, v)} sets reserved bits "
                     f"({v & RFLAGS_RESERVED0:#x}); bits 63:22, 15, 5 and 3 must be 0")
    return None


def check_guest_rflags_bit1(ctx):
    """RFLAGS: reserved bit 1 must be 1."""
    v = ctx.read(Field.GUEST_RFLAGS)
    if not v & 2:
        return _fail(ctx, RIPFL, f"{show(Field.GUEST_RFLAGS, v)} clears bit 1, which is always 1")
    return None


def check_guest_rflags_vm(ctx):
    """RFLAGS: VM (bit 17) must be 0 if "IA-32e mode guest" is 1 or CR0.PE is 0."""
    v = ctx.read(Field.GUEST_RFLAGS)
    real = not ctx.read(Field.GUEST_CR0) & CR0_PE
    if v & RFLAGS_VM and (_ia32e(ctx) or real):
        why = "\"IA-32e mode guest\" is 1" if _ia32e(ctx) else "guest CR0.PE is 0"
        return _fail(ctx, RIPFL, f"{show(Field.GUEST_RFLAGS, v)} sets VM (bit 17) but {why}")
    return None


def _injection(ctx):
    info = ctx.read(Field.VM_ENTRY_INTR_INFO_FIELD)
    if not info >> 31:
        return None
    return (info >> 8) & 7, info & 0xFF


def check_guest_rflags_if(ctx):
    """RFLAGS: IF (bit 9) must be 1 if the VM-entry interruption information is valid and its
    type is external interrupt."""
    inj = _injection(ctx)
    v = ctx.read(Field.GUEST_RFLAGS)
    if inj and inj[0] == EXTERNAL_INTERRUPT and not v & RFLAGS_IF:
        return _fail(ctx, RIPFL, f"{show(Field.GUEST_RFLAGS, v)} clears IF (bit 9) while an "
                     f"external interrupt is being injected")
    return None


# ==============================================================================================
# 27.3.1.5 Checks on guest non-register state
# ==============================================================================================

ACT, INTR, PDBG, LINK = (Field.GUEST_ACTIVITY_STATE, Field.GUEST_INTERRUPTIBILITY_INFO,
                         Field.GUEST_PENDING_DBG_EXCEPTIONS, Field.VMCS_LINK_POINTER)


def check_guest_activity_supported(ctx):
    """Activity state: the field must hold a state the processor supports: 0 (active), or 1-3
    (HLT, shutdown, wait-for-SIPI) if IA32_VMX_MISC bits 6, 7, 8 say so."""
    v = ctx.read(ACT)
    misc = ctx.profile.msr(P.IA32_VMX_MISC)
    if v != ACTIVE and not misc & ACTIVITY_MISC_BIT.get(v, 0):
        return _fail(ctx, NONREG, f"{show(ACT, v)} is not an activity state this processor "
                     f"supports (IA32_VMX_MISC bits 8:6 = {misc >> 6 & 7:#05b})")
    return None


def check_guest_activity_hlt_dpl(ctx):
    """Activity state: must not be HLT if the DPL of SS is not 0."""
    if ctx.read(ACT) == HLT:
        ss = Seg(ctx, "SS")
        if ss.dpl:
            return _fail(ctx, NONREG, f"{show(ACT, HLT)} (HLT) with SS DPL {ss.dpl} "
                         f"({ss.show('AR_BYTES')}); HLT needs CPL 0")
    return None


def check_guest_activity_blocking(ctx):
    """Activity state: must be active if the interruptibility state shows blocking by STI or by
    MOV SS (bit 0 or 1)."""
    act, intr = ctx.read(ACT), ctx.read(INTR)
    if act != ACTIVE and intr & (BLOCK_STI | BLOCK_MOVSS):
        return _fail(ctx, NONREG, f"{show(ACT, act)} ({ACTIVITY_NAME.get(act, '?')}) with "
                     f"{show(INTR, intr)} blocking by STI or MOV SS; that needs the active state")
    return None


def check_guest_activity_injection(ctx):
    """Activity state: an injected event must not be one that the activity state blocks: none in
    wait-for-SIPI; only NMI or machine check (#MC) in shutdown."""
    inj = _injection(ctx)
    act = ctx.read(ACT)
    if not inj:
        return None
    kind, vector = inj
    if act == WAIT_FOR_SIPI:
        return _fail(ctx, NONREG, f"{show(ACT, act)} (wait-for-SIPI) while injecting an event "
                     f"(type {kind}, vector {vector}); that state blocks all events")
    if act == SHUTDOWN and not (kind == NMI or (kind == HARDWARE_EXCEPTION and vector == 18)):
        return _fail(ctx, NONREG, f"{show(ACT, act)} (shutdown) while injecting type {kind} "
                     f"vector {vector}; only an NMI or a machine check may be injected")
    return None


def check_guest_activity_smm(ctx):
    """Activity state: must not be wait-for-SIPI if "entry to SMM" is 1."""
    if ctx.entry_controls & En.SMM and ctx.read(ACT) == WAIT_FOR_SIPI:
        return _fail(ctx, NONREG, f"{show(ACT, WAIT_FOR_SIPI)} (wait-for-SIPI) with \"entry to "
                     f"SMM\" = 1")
    return None


def check_guest_interruptibility_reserved(ctx):
    """Interruptibility state: reserved bits 31:5 must be 0; bit 4 (enclave interruption) must
    be 0 on a processor without SGX (this one) and if blocking by MOV SS is 1."""
    v = ctx.read(INTR)
    if v & ~0x1F:
        return _fail(ctx, NONREG, f"{show(INTR, v)} sets reserved bits 31:5")
    if v & ENCLAVE_INTERRUPTION:
        return _fail(ctx, NONREG, f"{show(INTR, v)} sets enclave interruption (bit 4); the "
                     f"processor does not support SGX")
    return None


def check_guest_interruptibility_sti_movss(ctx):
    """Interruptibility state: bits 0 (blocking by STI) and 1 (blocking by MOV SS) cannot both
    be 1."""
    v = ctx.read(INTR)
    if v & 3 == 3:
        return _fail(ctx, NONREG, f"{show(INTR, v)} sets both blocking by STI and by MOV SS")
    return None


def check_guest_interruptibility_sti_if(ctx):
    """Interruptibility state: bit 0 (blocking by STI) must be 0 if RFLAGS.IF is 0."""
    v = ctx.read(INTR)
    if v & BLOCK_STI and not ctx.read(Field.GUEST_RFLAGS) & RFLAGS_IF:
        return _fail(ctx, NONREG, f"{show(INTR, v)} sets blocking by STI while guest RFLAGS.IF "
                     f"= 0 ({show(Field.GUEST_RFLAGS, ctx.read(Field.GUEST_RFLAGS))})")
    return None


def check_guest_interruptibility_external_interrupt(ctx):
    """Interruptibility state: bits 0 and 1 must both be 0 if an external interrupt is being
    injected."""
    inj, v = _injection(ctx), ctx.read(INTR)
    if inj and inj[0] == EXTERNAL_INTERRUPT and v & 3:
        return _fail(ctx, NONREG, f"{show(INTR, v)} blocks by STI or MOV SS while an external "
                     f"interrupt is being injected")
    return None


def check_guest_interruptibility_nmi_movss(ctx):
    """Interruptibility state: bit 1 (blocking by MOV SS) must be 0 if an NMI is being
    injected."""
    inj, v = _injection(ctx), ctx.read(INTR)
    if inj and inj[0] == NMI and v & BLOCK_MOVSS:
        return _fail(ctx, NONREG, f"{show(INTR, v)} blocks by MOV SS while an NMI is being "
                     f"injected")
    return None


def check_guest_interruptibility_nmi_sti(ctx):
    """Interruptibility state: bit 0 (blocking by STI) must be 0 if an NMI is being injected.
    The SDM lets processors skip this check; this one performs it, and the failure has exit
    qualification 3 (27.8)."""
    inj, v = _injection(ctx), ctx.read(INTR)
    if inj and inj[0] == NMI and v & BLOCK_STI:
        return _fail(ctx, NONREG, f"{show(INTR, v)} blocks by STI while an NMI is being injected",
                     QUAL_NMI_STI)
    return None


def check_guest_interruptibility_smi(ctx):
    """Interruptibility state: bit 2 (blocking by SMI) must be 0 if the processor is not in
    SMM, and must be 1 if "entry to SMM" is 1."""
    v = ctx.read(INTR)
    if v & BLOCK_SMI and not ctx.in_smm:
        return _fail(ctx, NONREG, f"{show(INTR, v)} sets blocking by SMI (bit 2) outside SMM")
    if ctx.entry_controls & En.SMM and not v & BLOCK_SMI:
        return _fail(ctx, NONREG, f"{show(INTR, v)} clears blocking by SMI (bit 2) with \"entry "
                     f"to SMM\" = 1")
    return None


def check_guest_interruptibility_virtual_nmi(ctx):
    """Interruptibility state: bit 3 (blocking by NMI) must be 0 if "virtual NMIs" is 1 and an
    NMI is being injected."""
    inj, v = _injection(ctx), ctx.read(INTR)
    if inj and inj[0] == NMI and ctx.pin & Pin.VIRTUAL_NMIS and v & BLOCK_NMI:
        return _fail(ctx, NONREG, f"{show(INTR, v)} sets blocking by NMI (bit 3) while a virtual "
                     f"NMI is being injected (\"virtual NMIs\" = 1)")
    return None


PDBG_RESERVED = ~(0xF | (1 << 12) | (1 << 14)) & ((1 << 64) - 1)   # RTM (bit 16) unsupported


def check_guest_pending_debug_reserved(ctx):
    """Pending debug exceptions: bits 11:4, 13, 15 and 63:17 must be 0, and bit 16 (RTM) too on
    a processor without RTM (this one)."""
    v = ctx.read(PDBG)
    if v & PDBG_RESERVED:
        return _fail(ctx, NONREG, f"{show(PDBG, v)} sets reserved bits ({v & PDBG_RESERVED:#x}); "
                     f"only B3-B0 (3:0), enabled breakpoint (12) and BS (14) may be 1")
    return None


def check_guest_pending_debug_bs(ctx):
    """Pending debug exceptions, if blocking by STI or MOV SS is 1 or the activity state is HLT:
    BS (bit 14) must be 1 if RFLAGS.TF is 1 and IA32_DEBUGCTL.BTF is 0, and must be 0 if TF
    is 0 or BTF is 1."""
    if not (ctx.read(INTR) & 3 or ctx.read(ACT) == HLT):
        return None
    v = ctx.read(PDBG)
    tf = bool(ctx.read(Field.GUEST_RFLAGS) & RFLAGS_TF)
    btf = bool(ctx.read(Field.GUEST_IA32_DEBUGCTL) & DEBUGCTL_BTF)
    bs = bool(v >> 14 & 1)
    want = tf and not btf
    if bs != want:
        return _fail(ctx, NONREG, f"{show(PDBG, v)} has BS (bit 14) = {int(bs)} but RFLAGS.TF = "
                     f"{int(tf)} and IA32_DEBUGCTL.BTF = {int(btf)} with blocking by STI/MOV SS "
                     f"or HLT; BS must be {int(want)}")
    return None


def _link(ctx):
    v = ctx.read(LINK)
    return None if v == INVALID_POINTER else v


def check_guest_link_pointer_alignment(ctx):
    """VMCS link pointer (if not FFFFFFFF_FFFFFFFFH): bits 11:0 must be 0."""
    v = _link(ctx)
    if v is not None and v & 0xFFF:
        return _fail(ctx, NONREG, f"{show(LINK, v)} sets bits 11:0; the VMCS link pointer must be "
                     f"FFFFFFFF_FFFFFFFFH or 4-KByte aligned", QUAL_LINK_POINTER)
    return None


def check_guest_link_pointer_width(ctx):
    """VMCS link pointer (if not all ones): bits beyond the physical-address width must be 0."""
    v = _link(ctx)
    if v is not None and ctx.beyond_phys(v):
        return _fail(ctx, NONREG, f"{show(LINK, v)} sets bits beyond the physical-address width "
                     f"({ctx.maxphyaddr} bits)", QUAL_LINK_POINTER)
    return None


def check_guest_link_pointer_revision(ctx):
    """VMCS link pointer (if not all ones): bits 30:0 of the 4 bytes it references must hold the
    processor's VMCS revision identifier, and bit 31 must equal "VMCS shadowing"."""
    v = _link(ctx)
    if v is None:
        return None
    word = struct.unpack("<I", bytes(ctx.read_phys(v, 4)))[0]
    rev, shadow = word & P.BASIC_REVISION_MASK, word >> 31
    want_shadow = int(bool(ctx.secondary & Sec.SHADOW_VMCS))
    if rev != ctx.profile.revision_id:
        return _fail(ctx, NONREG, f"{show(LINK, v)} references a region whose revision "
                     f"identifier is {rev:#x}; the processor's is {ctx.profile.revision_id:#x}",
                     QUAL_LINK_POINTER)
    if shadow != want_shadow:
        return _fail(ctx, NONREG, f"{show(LINK, v)} references a region with shadow-VMCS "
                     f"indicator (bit 31) = {shadow} but \"VMCS shadowing\" = {want_shadow}; "
                     f"they must be equal", QUAL_LINK_POINTER)
    return None


def check_guest_link_pointer_not_current(ctx):
    """VMCS link pointer (if not all ones): if the processor is not in SMM or "entry to SMM" is
    1, it must not be the current-VMCS pointer; in SMM with "entry to SMM" 0, it must differ
    from the executive-VMCS pointer."""
    v = _link(ctx)
    if v is None:
        return None
    if not ctx.in_smm or ctx.entry_controls & En.SMM:
        current = getattr(ctx.vmcs, "address", None)
        if v == current:
            return _fail(ctx, NONREG, f"{show(LINK, v)} is the current-VMCS pointer",
                         QUAL_LINK_POINTER)
    elif v == ctx.read(Field.EXECUTIVE_VMCS_POINTER):
        return _fail(ctx, NONREG, f"{show(LINK, v)} is the executive-VMCS pointer",
                     QUAL_LINK_POINTER)
    return None


# ==============================================================================================
# 27.3.1.6 Checks on guest page-directory-pointer-table entries
# ==============================================================================================

def pdpte_problem(ctx, index: int, value: int) -> Optional[str]:
    """A present PAE PDPTE must have bits 2:1, 8:5 and 63:MAXPHYADDR clear (Vol. 3A 4.4.1)."""
    if not value & 1:
        return None
    reserved = 0x1E6 | (((1 << 64) - 1) >> ctx.maxphyaddr << ctx.maxphyaddr)
    if value & reserved:
        return f"PDPTE{index} = {value:#x} is present and sets reserved bits {value & reserved:#x}"
    return None


def _pae_paging(ctx) -> bool:
    return (bool(ctx.read(Field.GUEST_CR0) & CR0_PG) and bool(ctx.read(Field.GUEST_CR4) & CR4_PAE)
            and not _ia32e(ctx))


def check_guest_pdptes_ept(ctx):
    """If CR0.PG = 1, CR4.PAE = 1, "IA-32e mode guest" = 0 and "enable EPT" = 1, the PDPTE
    fields (GUEST_PDPTR0-3) must not set reserved bits in present entries."""
    if not (_pae_paging(ctx) and ctx.secondary & Sec.ENABLE_EPT):
        return None
    for i in range(4):
        field = Field[f"GUEST_PDPTR{i}"]
        problem = pdpte_problem(ctx, i, ctx.read(field))
        if problem:
            return _fail(ctx, PDPTES, f"{show(field, ctx.read(field))}: {problem}", QUAL_PDPTE)
    return None


def check_guest_pdptes_memory(ctx):
    """If CR0.PG = 1, CR4.PAE = 1, "IA-32e mode guest" = 0 and "enable EPT" = 0, the four PDPTEs
    at the 32-byte aligned address in CR3 are loaded and must not set reserved bits in present
    entries (a failure after the other guest checks: exit qualification 2)."""
    if not _pae_paging(ctx) or ctx.secondary & Sec.ENABLE_EPT:
        return None
    cr3 = ctx.read(Field.GUEST_CR3)
    base = cr3 & 0xFFFFFFE0
    data = bytes(ctx.read_phys(base, 32))
    for i in range(4):
        value = struct.unpack_from("<Q", data, 8 * i)[0]
        problem = pdpte_problem(ctx, i, value)
        if problem:
            return _fail(ctx, PDPTES, f"{show(Field.GUEST_CR3, cr3)}: {problem} (read at "
                         f"{base + 8 * i:#x})", QUAL_PDPTE)
    return None


REGISTER_CHECKS = (
    check_guest_cr0_fixed0, check_guest_cr0_fixed1, check_guest_cr0_pg_needs_pe,
    check_guest_cr4_fixed0, check_guest_cr4_fixed1, check_guest_debugctl,
    check_guest_ia32e_needs_pg, check_guest_ia32e_needs_pae, check_guest_pcide, check_guest_cr3,
    check_guest_dr7, check_guest_sysenter_esp, check_guest_sysenter_eip,
    check_guest_perf_global_ctrl, check_guest_pat, check_guest_efer_reserved,
    check_guest_efer_lma, check_guest_efer_lme, check_guest_bndcfgs, check_guest_pkrs,
)
SEGMENT_CHECKS = (
    check_guest_tr_ti, check_guest_ldtr_ti, check_guest_ss_rpl,
    check_guest_v86_bases, check_guest_tr_base, check_guest_fs_base, check_guest_gs_base,
    check_guest_ldtr_base, check_guest_cs_base, check_guest_ss_ds_es_bases,
    check_guest_v86_limits, check_guest_v86_access_rights,
    check_guest_cs_type, check_guest_ss_type, check_guest_data_accessed,
    check_guest_data_code_readable, check_guest_segment_s, check_guest_cs_dpl,
    check_guest_ss_dpl_rpl, check_guest_ss_dpl_zero, check_guest_data_dpl,
    check_guest_segment_present, check_guest_segment_reserved_11_8, check_guest_cs_db,
    check_guest_segment_granularity, check_guest_segment_reserved_31_17,
    check_guest_tr_type, check_guest_tr_s, check_guest_tr_present, check_guest_tr_reserved_11_8,
    check_guest_tr_granularity, check_guest_tr_usable, check_guest_tr_reserved_31_17,
    check_guest_ldtr_type, check_guest_ldtr_s, check_guest_ldtr_present,
    check_guest_ldtr_reserved_11_8, check_guest_ldtr_granularity,
    check_guest_ldtr_reserved_31_17,
)
TABLE_CHECKS = (check_guest_gdtr_base, check_guest_idtr_base, check_guest_gdtr_limit,
                check_guest_idtr_limit)
RIP_RFLAGS_CHECKS = (check_guest_rip_high, check_guest_rip_canonical, check_guest_rflags_reserved,
                     check_guest_rflags_bit1, check_guest_rflags_vm, check_guest_rflags_if)
NON_REGISTER_CHECKS = (
    check_guest_activity_supported, check_guest_activity_hlt_dpl, check_guest_activity_blocking,
    check_guest_activity_injection, check_guest_activity_smm,
    check_guest_interruptibility_reserved, check_guest_interruptibility_sti_movss,
    check_guest_interruptibility_sti_if, check_guest_interruptibility_external_interrupt,
    check_guest_interruptibility_nmi_movss, check_guest_interruptibility_nmi_sti,
    check_guest_interruptibility_smi, check_guest_interruptibility_virtual_nmi,
    check_guest_pending_debug_reserved, check_guest_pending_debug_bs,
    check_guest_link_pointer_alignment, check_guest_link_pointer_width,
    check_guest_link_pointer_revision, check_guest_link_pointer_not_current,
)
PDPTE_CHECKS = (check_guest_pdptes_ept, check_guest_pdptes_memory)
GUEST_CHECKS = (REGISTER_CHECKS + SEGMENT_CHECKS + TABLE_CHECKS + RIP_RFLAGS_CHECKS
                + NON_REGISTER_CHECKS + PDPTE_CHECKS)


def run_guest_checks(ctx: EntryContext) -> Optional[Failure]:
    """27.3.1.1-27.3.1.6 in the SDM's order; a VM exit (reason 33) on failure."""
    return run(ctx, GUEST_CHECKS)
