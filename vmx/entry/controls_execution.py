"""VM-entry checks on the VM-execution control fields: SDM Vol. 3C 27.2.1.1 "VM-Execution
Control Fields" (reserved bits against the capability MSRs of Appendix A.3, and the rules
that tie controls to each other and to the addresses they use). A failure is VMfailValid(7)."""
from __future__ import annotations

from typing import Optional

from x86.msr import Msr
from vmx import profiles as P
from vmx.controls import (ExitControls as Ex, PinBased as Pin, ProcBased as Proc,
                          SecondaryProcBased as Sec, TertiaryProcBased, VmFunc)
from vmx.entry.context import EntryContext, Failure, show
from vmx.fields import Field

EXEC = "27.2.1.1"


def _fail(ctx: EntryContext, section: str, rule: str) -> Failure:
    return ctx.fail("control", section, rule)

# ------------------------------------------------------------------------------------------
# Reserved bits against the capability MSRs (Appendix A.3-A.5)
# ------------------------------------------------------------------------------------------

def _msr_name(profile, index: int) -> str:
    if index in P.TRUE_OF and profile.true_controls:
        index = P.TRUE_OF[index]
    return Msr(index).name


def _bit_names(cls, mask: int) -> str:
    names = [f"{b} ({cls(1 << b).name})" if (1 << b) in [int(m) for m in cls] else str(b)
             for b in range(64) if mask >> b & 1]
    return ("bit " if len(names) == 1 else "bits ") + ", ".join(names)


def _reserved(ctx, section, field, value, msr_index, cls) -> Optional[Failure]:
    if not ctx.profile.has(msr_index):
        allowed0, allowed1 = 0, 0
        msr = Msr(msr_index).name + " (absent: no setting 1 is allowed)"
    else:
        allowed0, allowed1 = P.allowed(ctx.profile, msr_index)
        msr = _msr_name(ctx.profile, msr_index)
    must1 = allowed0 & ~value
    if must1:
        return _fail(ctx, section, f"{show(field, value)} clears {_bit_names(cls, must1)}, which "
                     f"{msr} requires to be 1 (allowed-0 = {allowed0:#x})")
    must0 = value & ~allowed1
    if must0:
        return _fail(ctx, section, f"{show(field, value)} sets {_bit_names(cls, must0)}, which "
                     f"{msr} does not allow to be 1 (allowed-1 = {allowed1:#x})")
    return None


def check_pin_based_reserved(ctx):
    """Reserved bits in the pin-based VM-execution controls must be set properly: a bit may be 0
    only if allowed-0 is 0 and 1 only if allowed-1 is 1 (IA32_VMX_PINBASED_CTLS, or
    IA32_VMX_TRUE_PINBASED_CTLS when IA32_VMX_BASIC[55] = 1; A.3.1)."""
    return _reserved(ctx, EXEC, Field.PIN_BASED_VM_EXEC_CONTROL, ctx.pin,
                     P.IA32_VMX_PINBASED_CTLS, Pin)


def check_proc_based_reserved(ctx):
    """Reserved bits in the primary processor-based VM-execution controls must be set properly
    (IA32_VMX_PROCBASED_CTLS or IA32_VMX_TRUE_PROCBASED_CTLS; A.3.2)."""
    return _reserved(ctx, EXEC, Field.CPU_BASED_VM_EXEC_CONTROL, ctx.proc,
                     P.IA32_VMX_PROCBASED_CTLS, Proc)


def check_secondary_reserved(ctx):
    """If "activate secondary controls" is 1, reserved bits in the secondary processor-based
    VM-execution controls must be cleared (IA32_VMX_PROCBASED_CTLS2; A.3.3). If it is 0, no
    checks are performed on them and the processor acts as if they were all 0."""
    if not ctx.proc & Proc.ACTIVATE_SECONDARY_CONTROLS:
        return None
    return _reserved(ctx, EXEC, Field.SECONDARY_VM_EXEC_CONTROL, ctx.secondary,
                     P.IA32_VMX_PROCBASED_CTLS2, Sec)


def check_tertiary_reserved(ctx):
    """If "activate tertiary controls" is 1, reserved bits in the tertiary processor-based
    VM-execution controls must be cleared (IA32_VMX_PROCBASED_CTLS3; A.3.4)."""
    if not ctx.proc & Proc.ACTIVATE_TERTIARY_CONTROLS:
        return None
    return _reserved(ctx, EXEC, Field.TERTIARY_VM_EXEC_CONTROL,
                     ctx.read(Field.TERTIARY_VM_EXEC_CONTROL), P.IA32_VMX_PROCBASED_CTLS3,
                     TertiaryProcBased)


def check_cr3_target_count(ctx):
    """The CR3-target count must not be greater than 4 (the number IA32_VMX_MISC bits 24:16
    report; A.6)."""
    count = ctx.read(Field.CR3_TARGET_COUNT)
    limit = (ctx.profile.msr(P.IA32_VMX_MISC) >> P.MISC_CR3_TARGET_SHIFT) & 0x1FF
    if count > limit:
        return _fail(ctx, EXEC, f"{show(Field.CR3_TARGET_COUNT, count)} is greater than {limit}, "
                     f"the number of CR3-target values IA32_VMX_MISC bits 24:16 report")
    return None


# ------------------------------------------------------------------------------------------
# Addresses of structures in memory
# ------------------------------------------------------------------------------------------

def _page_address(ctx, section, field, control, align_bits=12) -> Optional[Failure]:
    value = ctx.read(field)
    low = (1 << align_bits) - 1
    if value & low:
        return _fail(ctx, section, f"{show(field, value)} sets bits {align_bits - 1}:0 "
                     f"({value & low:#x}); with {control} = 1 they must be 0")
    if ctx.beyond_phys(value):
        return _fail(ctx, section, f"{show(field, value)} sets bits beyond the physical-address "
                     f"width ({ctx.maxphyaddr} bits); with {control} = 1 it must not")
    return None


def check_io_bitmap_a(ctx):
    """If "use I/O bitmaps" is 1, bits 11:0 of the address of I/O bitmap A must be 0 and it
    must not set any bits beyond the processor's physical-address width."""
    if ctx.proc & Proc.USE_IO_BITMAPS:
        return _page_address(ctx, EXEC, Field.IO_BITMAP_A, '"use I/O bitmaps"')
    return None


def check_io_bitmap_b(ctx):
    """If "use I/O bitmaps" is 1, bits 11:0 of the address of I/O bitmap B must be 0 and it
    must not set any bits beyond the processor's physical-address width."""
    if ctx.proc & Proc.USE_IO_BITMAPS:
        return _page_address(ctx, EXEC, Field.IO_BITMAP_B, '"use I/O bitmaps"')
    return None


def check_msr_bitmap(ctx):
    """If "use MSR bitmaps" is 1, bits 11:0 of the MSR-bitmap address must be 0 and it must not
    set any bits beyond the processor's physical-address width."""
    if ctx.proc & Proc.USE_MSR_BITMAPS:
        return _page_address(ctx, EXEC, Field.MSR_BITMAP, '"use MSR bitmaps"')
    return None


def check_virtual_apic_address(ctx):
    """If "use TPR shadow" is 1, the virtual-APIC address must be 4-KByte aligned (bits 11:0
    are 0) and must not set any bits beyond the processor's physical-address width."""
    if ctx.proc & Proc.TPR_SHADOW:
        return _page_address(ctx, EXEC, Field.VIRTUAL_APIC_PAGE_ADDR, '"use TPR shadow"')
    return None


def check_tpr_threshold_reserved(ctx):
    """If "use TPR shadow" is 1 and "virtual-interrupt delivery" is 0, bits 31:4 of the TPR
    threshold must be 0."""
    if ctx.proc & Proc.TPR_SHADOW and not ctx.secondary & Sec.VIRTUAL_INTR_DELIVERY:
        value = ctx.read(Field.TPR_THRESHOLD)
        if value & ~0xF:
            return _fail(ctx, EXEC, f"{show(Field.TPR_THRESHOLD, value)} sets bits 31:4; with "
                         f'"use TPR shadow" = 1 and "virtual-interrupt delivery" = 0 they must '
                         f"be 0")
    return None


VTPR_OFFSET = 0x80


def check_tpr_threshold_vs_vtpr(ctx):
    """If "use TPR shadow" is 1, "virtual-interrupt delivery" is 0 and "virtualize APIC
    accesses" is 0, bits 3:0 of the TPR threshold must not be greater than bits 7:4 of VTPR
    (byte 80H of the virtual-APIC page)."""
    sec = ctx.secondary
    if (ctx.proc & Proc.TPR_SHADOW and not sec & Sec.VIRTUAL_INTR_DELIVERY
            and not sec & Sec.VIRTUALIZE_APIC_ACCESSES):
        value = ctx.read(Field.TPR_THRESHOLD)
        vtpr = ctx.read_phys(ctx.read(Field.VIRTUAL_APIC_PAGE_ADDR) + VTPR_OFFSET, 1)[0]
        if value & 0xF > vtpr >> 4:
            return _fail(ctx, EXEC, f"{show(Field.TPR_THRESHOLD, value)} is greater than VTPR "
                         f"bits 7:4 ({vtpr >> 4:#x}, VTPR = {vtpr:#x} at offset 80H of the "
                         f"virtual-APIC page); it must not be")
    return None


def check_virtual_nmis_need_nmi_exiting(ctx):
    """If "NMI exiting" is 0, "virtual NMIs" must be 0."""
    pin = ctx.pin
    if pin & Pin.VIRTUAL_NMIS and not pin & Pin.NMI_EXITING:
        return _fail(ctx, EXEC, f"{show(Field.PIN_BASED_VM_EXEC_CONTROL, pin)} sets \"virtual "
                     f"NMIs\" (bit 5) with \"NMI exiting\" (bit 3) = 0; virtual NMIs need NMI "
                     f"exiting")
    return None


def check_nmi_window_needs_virtual_nmis(ctx):
    """If "virtual NMIs" is 0, "NMI-window exiting" must be 0."""
    if ctx.proc & Proc.NMI_WINDOW_EXITING and not ctx.pin & Pin.VIRTUAL_NMIS:
        return _fail(ctx, EXEC, f"{show(Field.CPU_BASED_VM_EXEC_CONTROL, ctx.proc)} sets "
                     f"\"NMI-window exiting\" (bit 22) while \"virtual NMIs\" is 0 "
                     f"({show(Field.PIN_BASED_VM_EXEC_CONTROL, ctx.pin)}); it needs virtual NMIs")
    return None


def check_apic_access_address(ctx):
    """If "virtualize APIC accesses" is 1, the APIC-access address must be 4-KByte aligned and
    must not set any bits beyond the processor's physical-address width."""
    if ctx.secondary & Sec.VIRTUALIZE_APIC_ACCESSES:
        return _page_address(ctx, EXEC, Field.APIC_ACCESS_ADDR, '"virtualize APIC accesses"')
    return None


def check_apic_virtualization_needs_tpr_shadow(ctx):
    """If "use TPR shadow" is 0, "virtualize x2APIC mode", "APIC-register virtualization" and
    "virtual-interrupt delivery" must all be 0."""
    need = Sec.VIRTUALIZE_X2APIC_MODE | Sec.APIC_REGISTER_VIRT | Sec.VIRTUAL_INTR_DELIVERY
    sec = ctx.secondary
    if sec & need and not ctx.proc & Proc.TPR_SHADOW:
        return _fail(ctx, EXEC, f"{show(Field.SECONDARY_VM_EXEC_CONTROL, sec)} sets "
                     f"{_bit_names(Sec, sec & need)} while \"use TPR shadow\" is 0; these "
                     f"controls need the TPR shadow")
    return None


def check_x2apic_excludes_apic_accesses(ctx):
    """If "virtualize x2APIC mode" is 1, "virtualize APIC accesses" must be 0."""
    sec = ctx.secondary
    if sec & Sec.VIRTUALIZE_X2APIC_MODE and sec & Sec.VIRTUALIZE_APIC_ACCESSES:
        return _fail(ctx, EXEC, f"{show(Field.SECONDARY_VM_EXEC_CONTROL, sec)} sets both "
                     f"\"virtualize x2APIC mode\" (bit 4) and \"virtualize APIC accesses\" "
                     f"(bit 0); at most one may be 1")
    return None


def check_vid_needs_external_interrupt_exiting(ctx):
    """If "virtual-interrupt delivery" is 1, "external-interrupt exiting" must be 1."""
    if ctx.secondary & Sec.VIRTUAL_INTR_DELIVERY and not ctx.pin & Pin.EXT_INTR_MASK:
        return _fail(ctx, EXEC, f"{show(Field.PIN_BASED_VM_EXEC_CONTROL, ctx.pin)} clears "
                     f"\"external-interrupt exiting\" (bit 0), which \"virtual-interrupt "
                     f"delivery\" requires to be 1")
    return None


def check_posted_interrupts_need_vid(ctx):
    """If "process posted interrupts" is 1, "virtual-interrupt delivery" must be 1."""
    if ctx.pin & Pin.POSTED_INTR and not ctx.secondary & Sec.VIRTUAL_INTR_DELIVERY:
        return _fail(ctx, EXEC, f"{show(Field.PIN_BASED_VM_EXEC_CONTROL, ctx.pin)} sets "
                     f"\"process posted interrupts\" (bit 7), which requires \"virtual-interrupt "
                     f"delivery\" to be 1 (it is 0)")
    return None


def check_posted_interrupts_need_ack(ctx):
    """If "process posted interrupts" is 1, "acknowledge interrupt on exit" must be 1."""
    if ctx.pin & Pin.POSTED_INTR and not ctx.exit_controls & Ex.ACK_INTR_ON_EXIT:
        return _fail(ctx, EXEC, f"{show(Field.VM_EXIT_CONTROLS, ctx.exit_controls)} clears "
                     f"\"acknowledge interrupt on exit\" (bit 15), which \"process posted "
                     f"interrupts\" requires to be 1")
    return None


def check_posted_interrupt_vector(ctx):
    """If "process posted interrupts" is 1, bits 15:8 of the posted-interrupt notification
    vector must be 0."""
    if ctx.pin & Pin.POSTED_INTR:
        value = ctx.read(Field.POSTED_INTR_NV)
        if value & 0xFF00:
            return _fail(ctx, EXEC, f"{show(Field.POSTED_INTR_NV, value)} sets bits 15:8; with "
                         f"\"process posted interrupts\" = 1 they must be 0")
    return None


def check_posted_interrupt_descriptor(ctx):
    """If "process posted interrupts" is 1, bits 5:0 of the posted-interrupt descriptor address
    must be 0 and it must not set any bits beyond the physical-address width."""
    if ctx.pin & Pin.POSTED_INTR:
        return _page_address(ctx, EXEC, Field.POSTED_INTR_DESC_ADDR,
                             '"process posted interrupts"', align_bits=6)
    return None


def check_vpid_nonzero(ctx):
    """If "enable VPID" is 1, the VPID must not be 0000H."""
    if ctx.secondary & Sec.ENABLE_VPID and ctx.read(Field.VIRTUAL_PROCESSOR_ID) == 0:
        return _fail(ctx, EXEC, f"{show(Field.VIRTUAL_PROCESSOR_ID, 0)}; with \"enable VPID\" "
                     f"= 1 the VPID must not be 0 (VPID 0 belongs to the VMM)")
    return None


# --- EPTP (25.6.11, A.10) ---------------------------------------------------------------

def _ept_cap(ctx) -> int:
    return ctx.profile.ept_vpid_cap


def _ept_on(ctx) -> bool:
    return bool(ctx.secondary & Sec.ENABLE_EPT)


def check_eptp_memory_type(ctx):
    """If "enable EPT" is 1, the EPT memory type (EPTP bits 2:0) must be a value the processor
    supports: 0 (UC) if IA32_VMX_EPT_VPID_CAP bit 8 is 1, 6 (WB) if bit 14 is 1."""
    if not _ept_on(ctx):
        return None
    eptp, cap = ctx.read(Field.EPT_POINTER), _ept_cap(ctx)
    mt = eptp & 7
    ok = {0: cap & P.EPT_MEMTYPE_UC, 6: cap & P.EPT_MEMTYPE_WB}.get(mt, 0)
    if not ok:
        return _fail(ctx, EXEC, f"{show(Field.EPT_POINTER, eptp)} has memory type {mt} in bits "
                     f"2:0; IA32_VMX_EPT_VPID_CAP = {cap:#x} allows only "
                     f"{_supported_memtypes(cap)}")
    return None


def _supported_memtypes(cap: int) -> str:
    names = [n for n, bit in (("0 (UC)", P.EPT_MEMTYPE_UC), ("6 (WB)", P.EPT_MEMTYPE_WB))
             if cap & bit]
    return " or ".join(names) or "none"


def check_eptp_walk_length(ctx):
    """If "enable EPT" is 1, EPTP bits 5:3 (page-walk length minus 1) must be 3 (4-level) when
    IA32_VMX_EPT_VPID_CAP bit 6 is 1, or 4 (5-level) when bit 7 is 1."""
    if not _ept_on(ctx):
        return None
    eptp, cap = ctx.read(Field.EPT_POINTER), _ept_cap(ctx)
    walk = (eptp >> 3) & 7
    ok = (walk == 3 and cap & P.EPT_PAGE_WALK_4) or (walk == 4 and cap & P.EPT_PAGE_WALK_5)
    if not ok:
        allowed = [str(v) for v, bit in ((3, P.EPT_PAGE_WALK_4), (4, P.EPT_PAGE_WALK_5))
                   if cap & bit]
        return _fail(ctx, EXEC, f"{show(Field.EPT_POINTER, eptp)} has {walk} in bits 5:3 "
                     f"(page-walk length {walk + 1}); IA32_VMX_EPT_VPID_CAP = {cap:#x} allows "
                     f"only {' or '.join(allowed) or 'none'}")
    return None


def check_eptp_accessed_dirty(ctx):
    """If "enable EPT" is 1, EPTP bit 6 (enable accessed and dirty flags) must be 0 if
    IA32_VMX_EPT_VPID_CAP bit 21 is 0."""
    if not _ept_on(ctx):
        return None
    eptp, cap = ctx.read(Field.EPT_POINTER), _ept_cap(ctx)
    if eptp & (1 << 6) and not cap & P.EPT_AD:
        return _fail(ctx, EXEC, f"{show(Field.EPT_POINTER, eptp)} sets bit 6 (accessed and dirty "
                     f"flags), which IA32_VMX_EPT_VPID_CAP bit 21 = 0 does not support")
    return None


def check_eptp_reserved(ctx):
    """If "enable EPT" is 1, EPTP bit 7 (supervisor shadow-stack control) must be 0 unless
    IA32_VMX_EPT_VPID_CAP bit 23 is 1, and reserved bits 11:8 and 63:N (N = physical-address
    width) must be 0."""
    if not _ept_on(ctx):
        return None
    eptp, cap = ctx.read(Field.EPT_POINTER), _ept_cap(ctx)
    if eptp & (1 << 7) and not cap & P.EPT_SUPERVISOR_SHADOW_STACK:
        return _fail(ctx, EXEC, f"{show(Field.EPT_POINTER, eptp)} sets bit 7 (supervisor "
                     f"shadow-stack control), which IA32_VMX_EPT_VPID_CAP bit 23 = 0 does not "
                     f"support")
    if eptp & 0xF00:
        return _fail(ctx, EXEC, f"{show(Field.EPT_POINTER, eptp)} sets reserved bits 11:8")
    if ctx.beyond_phys(eptp):
        return _fail(ctx, EXEC, f"{show(Field.EPT_POINTER, eptp)} sets bits 63:{ctx.maxphyaddr} "
                     f"(beyond the physical-address width); they must be 0")
    return None


# the checks of an EPTP value alone (INVEPT single-context reuses them, 31.3)
EPTP_CHECKS = (check_eptp_memory_type, check_eptp_walk_length, check_eptp_accessed_dirty,
               check_eptp_reserved)


def check_pml_needs_ept(ctx):
    """If "enable PML" is 1, "enable EPT" must be 1."""
    if ctx.secondary & Sec.ENABLE_PML and not _ept_on(ctx):
        return _fail(ctx, EXEC, f"{show(Field.SECONDARY_VM_EXEC_CONTROL, ctx.secondary)} sets "
                     f"\"enable PML\" (bit 17) with \"enable EPT\" (bit 1) = 0; PML needs EPT")
    return None


def check_pml_address(ctx):
    """If "enable PML" is 1, the PML address must be 4-KByte aligned and must not set bits
    beyond the physical-address width."""
    if ctx.secondary & Sec.ENABLE_PML:
        return _page_address(ctx, EXEC, Field.PML_ADDRESS, '"enable PML"')
    return None


def check_unrestricted_guest_needs_ept(ctx):
    """If "unrestricted guest" is 1 (or "mode-based execute control for EPT" is 1), "enable EPT"
    must be 1."""
    sec = ctx.secondary
    need = sec & (Sec.UNRESTRICTED_GUEST | Sec.MODE_BASED_EPT_EXEC)
    if need and not _ept_on(ctx):
        return _fail(ctx, EXEC, f"{show(Field.SECONDARY_VM_EXEC_CONTROL, sec)} sets "
                     f"{_bit_names(Sec, need)} with \"enable EPT\" (bit 1) = 0; it needs EPT")
    return None


def check_spp_needs_ept(ctx):
    """If "sub-page write permissions for EPT" is 1, "enable EPT" must be 1."""
    if ctx.secondary & Sec.SPP and not _ept_on(ctx):
        return _fail(ctx, EXEC, f"{show(Field.SECONDARY_VM_EXEC_CONTROL, ctx.secondary)} sets "
                     f"\"sub-page write permissions for EPT\" (bit 23) with \"enable EPT\" = 0")
    return None


def check_spp_table_pointer(ctx):
    """If "sub-page write permissions for EPT" is 1, bits 11:0 of the SPPTP must be 0 and it
    must not set bits beyond the physical-address width."""
    if ctx.secondary & Sec.SPP:
        return _page_address(ctx, EXEC, Field.SPPT_POINTER,
                             '"sub-page write permissions for EPT"')
    return None


def check_vmfunc_reserved(ctx):
    """If "enable VM functions" is 1, reserved bits in the VM-function controls must be clear
    (a bit may be 1 only if it is 1 in IA32_VMX_VMFUNC; A.11)."""
    if not ctx.secondary & Sec.ENABLE_VMFUNC:
        return None
    value = ctx.read(Field.VM_FUNCTION_CONTROL)
    allowed = ctx.profile.msr(P.IA32_VMX_VMFUNC) if ctx.profile.has(P.IA32_VMX_VMFUNC) else 0
    if value & ~allowed:
        return _fail(ctx, EXEC, f"{show(Field.VM_FUNCTION_CONTROL, value)} sets "
                     f"{_bit_names(VmFunc, value & ~allowed)}, which IA32_VMX_VMFUNC = "
                     f"{allowed:#x} does not allow")
    return None


def _eptp_switching(ctx) -> bool:
    return bool(ctx.secondary & Sec.ENABLE_VMFUNC
                and ctx.read(Field.VM_FUNCTION_CONTROL) & VmFunc.EPTP_SWITCHING)


def check_eptp_switching_needs_ept(ctx):
    """If "enable VM functions" is 1 and "EPTP switching" (VM function 0) is 1, "enable EPT"
    must be 1."""
    if _eptp_switching(ctx) and not _ept_on(ctx):
        value = ctx.read(Field.VM_FUNCTION_CONTROL)
        return _fail(ctx, EXEC, f"{show(Field.VM_FUNCTION_CONTROL, value)} enables EPTP switching "
                     f"(bit 0) while \"enable EPT\" is 0")
    return None


def check_eptp_list_address(ctx):
    """If "EPTP switching" is 1, the EPTP-list address must be 4-KByte aligned and must not set
    bits beyond the physical-address width."""
    if _eptp_switching(ctx):
        return _page_address(ctx, EXEC, Field.EPTP_LIST_ADDRESS, '"EPTP switching"')
    return None


def check_vmread_bitmap(ctx):
    """If "VMCS shadowing" is 1, the VMREAD-bitmap address must be 4-KByte aligned and must not
    set bits beyond the physical-address width."""
    if ctx.secondary & Sec.SHADOW_VMCS:
        return _page_address(ctx, EXEC, Field.VMREAD_BITMAP, '"VMCS shadowing"')
    return None


def check_vmwrite_bitmap(ctx):
    """If "VMCS shadowing" is 1, the VMWRITE-bitmap address must be 4-KByte aligned and must
    not set bits beyond the physical-address width."""
    if ctx.secondary & Sec.SHADOW_VMCS:
        return _page_address(ctx, EXEC, Field.VMWRITE_BITMAP, '"VMCS shadowing"')
    return None


def check_ve_information_address(ctx):
    """If "EPT-violation #VE" is 1, the virtualization-exception information address must be
    4-KByte aligned and must not set bits beyond the physical-address width."""
    if ctx.secondary & Sec.EPT_VIOLATION_VE:
        return _page_address(ctx, EXEC, Field.VE_INFORMATION_ADDRESS, '"EPT-violation #VE"')
    return None


EXECUTION_CHECKS = (
    check_pin_based_reserved, check_proc_based_reserved, check_secondary_reserved,
    check_tertiary_reserved, check_cr3_target_count, check_io_bitmap_a, check_io_bitmap_b,
    check_msr_bitmap, check_virtual_apic_address, check_tpr_threshold_reserved,
    check_tpr_threshold_vs_vtpr, check_virtual_nmis_need_nmi_exiting,
    check_nmi_window_needs_virtual_nmis, check_apic_access_address,
    check_apic_virtualization_needs_tpr_shadow, check_x2apic_excludes_apic_accesses,
    check_vid_needs_external_interrupt_exiting, check_posted_interrupts_need_vid,
    check_posted_interrupts_need_ack, check_posted_interrupt_vector,
    check_posted_interrupt_descriptor, check_vpid_nonzero, check_eptp_memory_type,
    check_eptp_walk_length, check_eptp_accessed_dirty, check_eptp_reserved,
    check_pml_needs_ept, check_pml_address, check_unrestricted_guest_needs_ept,
    check_spp_needs_ept, check_spp_table_pointer, check_vmfunc_reserved,
    check_eptp_switching_needs_ept, check_eptp_list_address, check_vmread_bitmap,
    check_vmwrite_bitmap, check_ve_information_address,
)
