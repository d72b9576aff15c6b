"""VM-entry checks, SDM Vol. 3C 27.3.1.1 "Checks on Guest Control Registers, Debug Registers,
and MSRs"."""
from __future__ import annotations

from vmx import profiles as P
from vmx.controls import EntryControls as En

from vmx.entry.context import EFER_LMA, EFER_LME, show
from vmx.entry.host import CR0_NW_CD, fixed_bits, pat_problem
from vmx.fields import Field
from vmx.entry.guest_common import (CR0_PE, CR0_PG, CR4_PAE, CR4_PCIDE, CRS, _canonical, _fail,
                                    _ia32e, _ug)


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
