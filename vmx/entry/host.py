"""VM-entry checks on the host-state area: SDM Vol. 3C 27.2.2 "Checks on Host Control Registers,
Debug Registers, and MSRs", 27.2.3 "Checks on Host Segment and Descriptor-Table Registers",
27.2.4 "Checks Related to Address-Space Size". A failure here is VMfailValid(8).
"""
from __future__ import annotations

from typing import Optional

from vmx import profiles as P
from vmx.controls import EntryControls as En, ExitControls as Ex
from vmx.entry.context import EFER_LMA, EFER_LME, EntryContext, Failure, run, show
from vmx.fields import Field

CRS, SEGS, SIZE = "27.2.2", "27.2.3", "27.2.4"
CR4_PAE, CR4_PCIDE = 1 << 5, 1 << 17
CR0_NW_CD = (1 << 29) | (1 << 30)
PAT_TYPES = (0, 1, 4, 5, 6, 7)     # UC WC WT WP WB UC- (SDM Vol. 3A 11.12.2)


def _fail(ctx: EntryContext, section: str, rule: str) -> Failure:
    return ctx.fail("host", section, rule)


def _host_64(ctx) -> bool:
    return bool(ctx.exit_controls & Ex.HOST_ADDR_SPACE_SIZE)


def fixed_bits(ctx, section, field, value, fixed0, fixed1, name0, name1, fail):
    """Shared by host and guest CR0/CR4 checks: bits 1 in FIXED0 must be 1, bits 0 in FIXED1
    must be 0 (A.7, A.8)."""
    must1 = fixed0 & ~value
    if must1:
        return fail(ctx, section, f"{show(field, value)} clears bit(s) {_bits(must1)}, which "
                    f"{name0} = {fixed0:#x} requires to be 1")
    must0 = value & ~fixed1
    if must0:
        return fail(ctx, section, f"{show(field, value)} sets bit(s) {_bits(must0)}, which "
                    f"{name1} = {fixed1:#x} requires to be 0")
    return None


def _bits(mask: int) -> str:
    return ", ".join(str(b) for b in range(64) if mask >> b & 1)


def pat_problem(value: int) -> Optional[str]:
    for i in range(8):
        byte = (value >> (8 * i)) & 0xFF
        if byte not in PAT_TYPES:
            return (f"byte {i} is {byte:#x}; each byte must be 0 (UC), 1 (WC), 4 (WT), 5 (WP), "
                    f"6 (WB) or 7 (UC-)")
    return None


# --- 27.2.2 control registers and MSRs ------------------------------------------------------

def check_host_cr0_fixed0(ctx):
    """The CR0 field must not clear any bit that is 1 in IA32_VMX_CR0_FIXED0 (A.7); NW (bit 29)
    and CD (bit 30) are never checked (VM exit does not change them)."""
    v = ctx.read(Field.HOST_CR0) & ~CR0_NW_CD
    return fixed_bits(ctx, CRS, Field.HOST_CR0, v, ctx.profile.msr(P.IA32_VMX_CR0_FIXED0),
                      ~0, "IA32_VMX_CR0_FIXED0", "", _fail)


def check_host_cr0_fixed1(ctx):
    """The CR0 field must not set any bit that is 0 in IA32_VMX_CR0_FIXED1 (A.7); NW and CD are
    never checked."""
    v = ctx.read(Field.HOST_CR0) & ~CR0_NW_CD
    return fixed_bits(ctx, CRS, Field.HOST_CR0, v, 0, ctx.profile.msr(P.IA32_VMX_CR0_FIXED1),
                      "", "IA32_VMX_CR0_FIXED1", _fail)


def check_host_cr4_fixed0(ctx):
    """The CR4 field must not clear any bit that is 1 in IA32_VMX_CR4_FIXED0 (A.8)."""
    v = ctx.read(Field.HOST_CR4)
    return fixed_bits(ctx, CRS, Field.HOST_CR4, v, ctx.profile.msr(P.IA32_VMX_CR4_FIXED0),
                      ~0, "IA32_VMX_CR4_FIXED0", "", _fail)


def check_host_cr4_fixed1(ctx):
    """The CR4 field must not set any bit that is 0 in IA32_VMX_CR4_FIXED1 (A.8)."""
    v = ctx.read(Field.HOST_CR4)
    return fixed_bits(ctx, CRS, Field.HOST_CR4, v, 0, ctx.profile.msr(P.IA32_VMX_CR4_FIXED1),
                      "", "IA32_VMX_CR4_FIXED1", _fail)


def check_host_cr3(ctx):
    """On processors that support Intel 64, the CR3 field must not set any bit beyond the
    processor's physical-address width."""
    v = ctx.read(Field.HOST_CR3)
    if ctx.beyond_phys(v):
        return _fail(ctx, CRS, f"{show(Field.HOST_CR3, v)} sets bits 63:{ctx.maxphyaddr}, beyond "
                     f"the physical-address width")
    return None


def _canonical(ctx, section, field, what=""):
    v = ctx.read(field)
    if not ctx.canonical(v):
        return _fail(ctx, section, f"{show(field, v)} is not canonical (bits 63:"
                     f"{ctx.linear_width - 1} must all equal bit {ctx.linear_width - 1}){what}")
    return None


def check_host_sysenter_esp(ctx):
    """The IA32_SYSENTER_ESP field must contain a canonical address."""
    return _canonical(ctx, CRS, Field.HOST_IA32_SYSENTER_ESP)


def check_host_sysenter_eip(ctx):
    """The IA32_SYSENTER_EIP field must contain a canonical address."""
    return _canonical(ctx, CRS, Field.HOST_IA32_SYSENTER_EIP)


def check_host_perf_global_ctrl(ctx):
    """If "load IA32_PERF_GLOBAL_CTRL" (VM-exit) is 1, bits reserved in IA32_PERF_GLOBAL_CTRL
    must be 0 in its field."""
    if not ctx.exit_controls & Ex.LOAD_IA32_PERF_GLOBAL_CTRL:
        return None
    v = ctx.read(Field.HOST_IA32_PERF_GLOBAL_CTRL)
    if v & ~ctx.perf_global_ctrl_valid:
        return _fail(ctx, CRS, f"{show(Field.HOST_IA32_PERF_GLOBAL_CTRL, v)} sets reserved bits "
                     f"{_bits(v & ~ctx.perf_global_ctrl_valid)} (implemented: "
                     f"{ctx.perf_global_ctrl_valid:#x})")
    return None


def check_host_pat(ctx):
    """If "load IA32_PAT" (VM-exit) is 1, the IA32_PAT field must be a value WRMSR would accept:
    each byte 0, 1, 4, 5, 6 or 7."""
    if not ctx.exit_controls & Ex.LOAD_IA32_PAT:
        return None
    v = ctx.read(Field.HOST_IA32_PAT)
    problem = pat_problem(v)
    if problem:
        return _fail(ctx, CRS, f"{show(Field.HOST_IA32_PAT, v)}: {problem}")
    return None


def check_host_efer_reserved(ctx):
    """If "load IA32_EFER" (VM-exit) is 1, bits reserved in IA32_EFER must be 0 in its field."""
    if not ctx.exit_controls & Ex.LOAD_IA32_EFER:
        return None
    v = ctx.read(Field.HOST_IA32_EFER)
    if v & ~ctx.efer_valid:
        return _fail(ctx, CRS, f"{show(Field.HOST_IA32_EFER, v)} sets reserved bits "
                     f"{_bits(v & ~ctx.efer_valid)}")
    return None


def check_host_efer_lma(ctx):
    """If "load IA32_EFER" (VM-exit) is 1, bit 10 (LMA) of its field must equal "host
    address-space size"."""
    if not ctx.exit_controls & Ex.LOAD_IA32_EFER:
        return None
    v = ctx.read(Field.HOST_IA32_EFER)
    if bool(v & EFER_LMA) != _host_64(ctx):
        return _fail(ctx, CRS, f"{show(Field.HOST_IA32_EFER, v)} has LMA (bit 10) = "
                     f"{int(bool(v & EFER_LMA))} but \"host address-space size\" = "
                     f"{int(_host_64(ctx))}; they must be equal")
    return None


def check_host_efer_lme(ctx):
    """If "load IA32_EFER" (VM-exit) is 1, bit 8 (LME) of its field must equal "host
    address-space size"."""
    if not ctx.exit_controls & Ex.LOAD_IA32_EFER:
        return None
    v = ctx.read(Field.HOST_IA32_EFER)
    if bool(v & EFER_LME) != _host_64(ctx):
        return _fail(ctx, CRS, f"{show(Field.HOST_IA32_EFER, v)} has LME (bit 8) = "
                     f"{int(bool(v & EFER_LME))} but \"host address-space size\" = "
                     f"{int(_host_64(ctx))}; they must be equal")
    return None


def check_host_pkrs(ctx):
    """If "load PKRS" (VM-exit) is 1, bits 63:32 of the IA32_PKRS field must be 0."""
    if ctx.exit_controls & Ex.LOAD_IA32_PKRS:
        v = ctx.read(Field.HOST_IA32_PKRS)
        if v >> 32:
            return _fail(ctx, CRS, f"{show(Field.HOST_IA32_PKRS, v)} sets bits 63:32")
    return None


# --- 27.2.3 segment and descriptor-table registers ------------------------------------------

SELECTORS = (Field.HOST_ES_SELECTOR, Field.HOST_CS_SELECTOR, Field.HOST_SS_SELECTOR,
             Field.HOST_DS_SELECTOR, Field.HOST_FS_SELECTOR, Field.HOST_GS_SELECTOR,
             Field.HOST_TR_SELECTOR)


def check_host_selector_rpl_ti(ctx):
    """In the selector field of each of CS, SS, DS, ES, FS, GS and TR, the RPL (bits 1:0) and
    the TI flag (bit 2) must be 0."""
    for field in SELECTORS:
        v = ctx.read(field)
        if v & 7:
            return _fail(ctx, SEGS, f"{show(field, v)} has RPL = {v & 3}, TI = {v >> 2 & 1}; "
                         f"host selectors must have RPL = 0 and TI = 0")
    return None


def check_host_cs_selector(ctx):
    """The selector field for CS cannot be 0000H."""
    if ctx.read(Field.HOST_CS_SELECTOR) == 0:
        return _fail(ctx, SEGS, f"{show(Field.HOST_CS_SELECTOR, 0)}; the host CS selector must not "
                     f"be null")
    return None


def check_host_tr_selector(ctx):
    """The selector field for TR cannot be 0000H."""
    if ctx.read(Field.HOST_TR_SELECTOR) == 0:
        return _fail(ctx, SEGS, f"{show(Field.HOST_TR_SELECTOR, 0)}; the host TR selector must not "
                     f"be null")
    return None


def check_host_ss_selector(ctx):
    """The selector field for SS cannot be 0000H if "host address-space size" is 0."""
    if not _host_64(ctx) and ctx.read(Field.HOST_SS_SELECTOR) == 0:
        return _fail(ctx, SEGS, f"{show(Field.HOST_SS_SELECTOR, 0)} with \"host address-space "
                     f"size\" = 0; only a 64-bit host may have a null SS")
    return None


def check_host_fs_base(ctx):
    """The base-address field for FS must contain a canonical address."""
    return _canonical(ctx, SEGS, Field.HOST_FS_BASE)


def check_host_gs_base(ctx):
    """The base-address field for GS must contain a canonical address."""
    return _canonical(ctx, SEGS, Field.HOST_GS_BASE)


def check_host_gdtr_base(ctx):
    """The base-address field for GDTR must contain a canonical address."""
    return _canonical(ctx, SEGS, Field.HOST_GDTR_BASE)


def check_host_idtr_base(ctx):
    """The base-address field for IDTR must contain a canonical address."""
    return _canonical(ctx, SEGS, Field.HOST_IDTR_BASE)


def check_host_tr_base(ctx):
    """The base-address field for TR must contain a canonical address."""
    return _canonical(ctx, SEGS, Field.HOST_TR_BASE)


# --- 27.2.4 address-space size ----------------------------------------------------------------

def check_outside_ia32e_mode(ctx):
    """If the logical processor is outside IA-32e mode (IA32_EFER.LMA = 0) at the time of VM
    entry, "IA-32e mode guest" and "host address-space size" must both be 0."""
    if ctx.host_lma:
        return None
    bad = []
    if ctx.entry_controls & En.IA32E_MODE:
        bad.append(f"\"IA-32e mode guest\" ({show(Field.VM_ENTRY_CONTROLS, ctx.entry_controls)})")
    if _host_64(ctx):
        exit_controls = show(Field.VM_EXIT_CONTROLS, ctx.exit_controls)
        bad.append(f"\"host address-space size\" ({exit_controls})")
    if bad:
        return _fail(ctx, SIZE, " and ".join(bad) + " must be 0 when the VMM runs outside "
                     "IA-32e mode (IA32_EFER.LMA = 0)")
    return None


def check_inside_ia32e_mode(ctx):
    """If the logical processor is in IA-32e mode (IA32_EFER.LMA = 1) at the time of VM entry,
    "host address-space size" must be 1."""
    if ctx.host_lma and not _host_64(ctx):
        return _fail(ctx, SIZE, f"{show(Field.VM_EXIT_CONTROLS, ctx.exit_controls)} clears \"host "
                     f"address-space size\" (bit 9); the VMM runs in IA-32e mode "
                     f"(IA32_EFER.LMA = 1), so it must be 1")
    return None


def check_host_pcide_32bit(ctx):
    """If "host address-space size" is 0, bit 17 of the CR4 field (PCIDE) must be 0."""
    v = ctx.read(Field.HOST_CR4)
    if not _host_64(ctx) and v & CR4_PCIDE:
        return _fail(ctx, SIZE, f"{show(Field.HOST_CR4, v)} sets PCIDE (bit 17) with \"host "
                     f"address-space size\" = 0")
    return None


def check_host_rip_32bit(ctx):
    """If "host address-space size" is 0, bits 63:32 of the RIP field must be 0."""
    v = ctx.read(Field.HOST_RIP)
    if not _host_64(ctx) and v >> 32:
        return _fail(ctx, SIZE, f"{show(Field.HOST_RIP, v)} sets bits 63:32 with \"host "
                     f"address-space size\" = 0")
    return None


def check_host_pae_64bit(ctx):
    """If "host address-space size" is 1, bit 5 of the CR4 field (PAE) must be 1."""
    v = ctx.read(Field.HOST_CR4)
    if _host_64(ctx) and not v & CR4_PAE:
        return _fail(ctx, SIZE, f"{show(Field.HOST_CR4, v)} clears PAE (bit 5) with \"host "
                     f"address-space size\" = 1; a 64-bit host needs CR4.PAE = 1")
    return None


def check_host_rip_64bit(ctx):
    """If "host address-space size" is 1, the RIP field must contain a canonical address."""
    if _host_64(ctx):
        return _canonical(ctx, SIZE, Field.HOST_RIP, " with \"host address-space size\" = 1")
    return None


HOST_CHECKS = (
    # 27.2.2
    check_host_cr0_fixed0, check_host_cr0_fixed1, check_host_cr4_fixed0, check_host_cr4_fixed1,
    check_host_cr3, check_host_sysenter_esp, check_host_sysenter_eip,
    check_host_perf_global_ctrl, check_host_pat, check_host_efer_reserved,
    check_host_efer_lma, check_host_efer_lme, check_host_pkrs,
    # 27.2.3
    check_host_selector_rpl_ti, check_host_cs_selector, check_host_tr_selector,
    check_host_ss_selector, check_host_fs_base, check_host_gs_base, check_host_gdtr_base,
    check_host_idtr_base, check_host_tr_base,
    # 27.2.4
    check_outside_ia32e_mode, check_inside_ia32e_mode, check_host_pcide_32bit,
    check_host_rip_32bit, check_host_pae_64bit, check_host_rip_64bit,
)


def run_host_checks(ctx: EntryContext) -> Optional[Failure]:
    """27.2.2-27.2.4 in the SDM's order; VMfailValid(8) on failure."""
    return run(ctx, HOST_CHECKS)
