"""VM-entry checks on the VMX controls: SDM Vol. 3C 27.2.1 "Checks on VMX Controls".

27.2.1.1 VM-execution control fields (in controls_execution), 27.2.1.2 VM-exit control fields
and 27.2.1.3 VM-entry control fields (event injection, MSR loading, SMM), here. A failure is
VMfailValid(7). Each check is one function, run in the SDM's order by `run_control_checks`.
"""
from __future__ import annotations

from typing import Optional

from vmx import profiles as P
from vmx.controls import (EntryControls as En, ExitControls as Ex, PinBased as Pin,
                          ProcBased as Proc, SecondaryExitControls, SecondaryProcBased as Sec)
from vmx.entry.context import EntryContext, Failure, run, show
from vmx.entry.controls_execution import EXECUTION_CHECKS, _bit_names, _fail, _reserved
from vmx.fields import Field

EXIT, ENTRY = "27.2.1.2", "27.2.1.3"


# ------------------------------------------------------------------------------------------
# 27.2.1.2 VM-exit control fields
# ------------------------------------------------------------------------------------------

def check_exit_reserved(ctx):
    """Reserved bits in the primary VM-exit controls must be set properly (IA32_VMX_EXIT_CTLS
    or IA32_VMX_TRUE_EXIT_CTLS; A.4.1)."""
    return _reserved(ctx, EXIT, Field.VM_EXIT_CONTROLS, ctx.exit_controls,
                     P.IA32_VMX_EXIT_CTLS, Ex)


def check_secondary_exit_reserved(ctx):
    """If "activate secondary controls" (VM-exit bit 31) is 1, reserved bits in the secondary
    VM-exit controls must be cleared (IA32_VMX_EXIT_CTLS2; A.4.2)."""
    if not ctx.exit_controls & Ex.ACTIVATE_SECONDARY_CONTROLS:
        return None
    return _reserved(ctx, EXIT, Field.SECONDARY_VM_EXIT_CONTROLS,
                     ctx.read(Field.SECONDARY_VM_EXIT_CONTROLS), P.IA32_VMX_EXIT_CTLS2,
                     SecondaryExitControls)


def check_save_preemption_timer(ctx):
    """If "activate VMX-preemption timer" is 0, "save VMX-preemption timer value" must be 0."""
    if ctx.exit_controls & Ex.SAVE_VMX_PREEMPTION_TIMER and not ctx.pin & Pin.VMX_PREEMPTION_TIMER:
        return _fail(ctx, EXIT, f"{show(Field.VM_EXIT_CONTROLS, ctx.exit_controls)} sets \"save "
                     f"VMX-preemption timer value\" (bit 22) while \"activate VMX-preemption "
                     f"timer\" is 0 ({show(Field.PIN_BASED_VM_EXEC_CONTROL, ctx.pin)})")
    return None


def _msr_area(ctx, section, count_field, addr_field):
    count = ctx.read(count_field)
    if count == 0:
        return None
    addr = ctx.read(addr_field)
    if addr & 0xF:
        return _fail(ctx, section, f"{show(addr_field, addr)} sets bits 3:0; with "
                     f"{show(count_field, count)} the address must be 16-byte aligned")
    if ctx.beyond_phys(addr):
        return _fail(ctx, section, f"{show(addr_field, addr)} sets bits beyond the "
                     f"physical-address width ({ctx.maxphyaddr} bits)")
    last = addr + 16 * count - 1
    if ctx.beyond_phys(last):
        return _fail(ctx, section, f"{show(addr_field, addr)} with {show(count_field, count)}: "
                     f"the last byte ({last:#x} = address + 16 * count - 1) is beyond the "
                     f"physical-address width ({ctx.maxphyaddr} bits)")
    return None


def check_exit_msr_store(ctx):
    """If the VM-exit MSR-store count is not 0, bits 3:0 of the VM-exit MSR-store address must
    be 0, and neither the address nor the address of the last byte of the area (address +
    16 * count - 1) may set bits beyond the physical-address width."""
    return _msr_area(ctx, EXIT, Field.VM_EXIT_MSR_STORE_COUNT, Field.VM_EXIT_MSR_STORE_ADDR)


def check_exit_msr_load(ctx):
    """If the VM-exit MSR-load count is not 0, bits 3:0 of the VM-exit MSR-load address must be
    0, and neither the address nor that of the area's last byte may exceed the
    physical-address width."""
    return _msr_area(ctx, EXIT, Field.VM_EXIT_MSR_LOAD_COUNT, Field.VM_EXIT_MSR_LOAD_ADDR)


# ------------------------------------------------------------------------------------------
# 27.2.1.3 VM-entry control fields
# ------------------------------------------------------------------------------------------

def check_entry_reserved(ctx):
    """Reserved bits in the VM-entry controls must be set properly (IA32_VMX_ENTRY_CTLS or
    IA32_VMX_TRUE_ENTRY_CTLS; A.5)."""
    return _reserved(ctx, ENTRY, Field.VM_ENTRY_CONTROLS, ctx.entry_controls,
                     P.IA32_VMX_ENTRY_CTLS, En)


# Interruption types (25.8.3, Table 25-17).
EXTERNAL_INTERRUPT, NMI, HARDWARE_EXCEPTION = 0, 2, 3
SOFTWARE_INTERRUPT, PRIVILEGED_SOFTWARE_EXCEPTION, SOFTWARE_EXCEPTION, OTHER_EVENT = 4, 5, 6, 7
ERROR_CODE_VECTORS = (8, 10, 11, 12, 13, 14, 17)    # #DF #TS #NP #SS #GP #PF #AC (#CP needs CET)
INFO = Field.VM_ENTRY_INTR_INFO_FIELD


def _injection(ctx):
    """(info, type, vector) when the valid bit is 1, else None."""
    info = ctx.read(INFO)
    if not info >> 31 & 1:
        return None
    return info, (info >> 8) & 7, info & 0xFF


def check_injection_type(ctx):
    """If the VM-entry interruption-information valid bit is 1, the interruption type (bits 10:8)
    must not be reserved: 1 is reserved, and 7 (other event) is reserved unless the processor
    supports the 1-setting of "monitor trap flag"."""
    inj = _injection(ctx)
    if inj is None:
        return None
    info, kind, _ = inj
    mtf = P.allowed_for(ctx.profile, Proc)[1] & Proc.MONITOR_TRAP_FLAG
    if kind == 1 or (kind == OTHER_EVENT and not mtf):
        why = "1 is reserved" if kind == 1 else ('7 is reserved on a processor without the '
                                                '"monitor trap flag" control')
        return _fail(ctx, ENTRY, f"{show(INFO, info)} has interruption type {kind} in bits 10:8; "
                     f"{why}")
    return None


def check_injection_vector(ctx):
    """If the valid bit is 1, the vector (bits 7:0) must fit the type: 2 for an NMI, at most 31
    for a hardware exception, 0 (pending MTF VM exit) for other event."""
    inj = _injection(ctx)
    if inj is None:
        return None
    info, kind, vector = inj
    rule = {NMI: (vector == 2, "an NMI must have vector 2"),
            HARDWARE_EXCEPTION: (vector <= 31, "a hardware exception must have a vector of at "
                                 "most 31"),
            OTHER_EVENT: (vector == 0, "other event (type 7) must have vector 0")}.get(kind)
    if rule and not rule[0]:
        return _fail(ctx, ENTRY, f"{show(INFO, info)} has type {kind} and vector {vector}; "
                     f"{rule[1]}")
    return None


def check_injection_deliver_error_code(ctx):
    """If the valid bit is 1, the deliver-error-code bit (bit 11) must be 0 unless the type is
    hardware exception and the guest will be in protected mode ("unrestricted guest" is 0 or
    guest CR0.PE is 1). If IA32_VMX_BASIC[56] is 0 it must moreover be 1 exactly for hardware
    exceptions with vectors 8, 10-14 and 17 in a protected-mode guest."""
    inj = _injection(ctx)
    if inj is None:
        return None
    info, kind, vector = inj
    deliver = bool(info >> 11 & 1)
    protected = (not ctx.secondary & Sec.UNRESTRICTED_GUEST) or ctx.read(Field.GUEST_CR0) & 1
    may = kind == HARDWARE_EXCEPTION and protected
    if ctx.profile.basic & P.BASIC_NO_HW_ERRCODE_CHECK:
        if deliver and not may:
            return _fail(ctx, ENTRY, f"{show(INFO, info)} sets deliver-error-code (bit 11) for "
                         f"{_event_text(kind, protected)}; only a hardware exception injected "
                         f"into a protected-mode guest may deliver an error code")
        return None
    must = may and vector in ERROR_CODE_VECTORS
    if deliver != must:
        verb = "sets" if deliver else "clears"
        return _fail(ctx, ENTRY, f"{show(INFO, info)} {verb} deliver-error-code (bit 11) for "
                     f"{_event_text(kind, protected)} vector {vector}; with IA32_VMX_BASIC[56] = "
                     f"0 it must be 1 exactly for hardware exceptions 8, 10-14, 17 in "
                     f"protected mode")
    return None


def _event_text(kind, protected) -> str:
    mode = "protected-mode" if protected else "real-mode (unrestricted, CR0.PE = 0)"
    return f"type {kind} into a {mode} guest"


def check_injection_reserved_bits(ctx):
    """If the valid bit is 1, reserved bits 30:12 of the interruption-information field must
    be 0."""
    inj = _injection(ctx)
    if inj is None:
        return None
    info = inj[0]
    if info & 0x7FFFF000:
        return _fail(ctx, ENTRY, f"{show(INFO, info)} sets reserved bits 30:12 "
                     f"({info & 0x7FFFF000:#x}); they must be 0")
    return None


def check_injection_error_code(ctx):
    """If the valid bit and the deliver-error-code bit are 1, bits 31:16 of the VM-entry
    exception error code must be 0."""
    inj = _injection(ctx)
    if inj is None or not inj[0] >> 11 & 1:
        return None
    code = ctx.read(Field.VM_ENTRY_EXCEPTION_ERROR_CODE)
    if code & 0xFFFF0000:
        return _fail(ctx, ENTRY, f"{show(Field.VM_ENTRY_EXCEPTION_ERROR_CODE, code)} sets bits "
                     f"31:16; an injected error code must fit in 16 bits")
    return None


def check_injection_instruction_length(ctx):
    """If the valid bit is 1 and the type is software interrupt, software exception or
    privileged software exception, the VM-entry instruction length must be in the range 0-15,
    and may be 0 only if IA32_VMX_MISC[30] is 1."""
    inj = _injection(ctx)
    if inj is None or inj[1] not in (SOFTWARE_INTERRUPT, PRIVILEGED_SOFTWARE_EXCEPTION,
                                     SOFTWARE_EXCEPTION):
        return None
    length = ctx.read(Field.VM_ENTRY_INSTRUCTION_LEN)
    zero_ok = bool(ctx.profile.msr(P.IA32_VMX_MISC) & P.MISC_ZERO_LEN_INJECTION)
    low = 0 if zero_ok else 1
    if not low <= length <= 15:
        return _fail(ctx, ENTRY, f"{show(Field.VM_ENTRY_INSTRUCTION_LEN, length)} for an injected "
                     f"event of type {inj[1]}; it must be in {low}..15"
                     + ("" if zero_ok else " (0 needs IA32_VMX_MISC bit 30, which is 0)"))
    return None


def check_entry_msr_load(ctx):
    """If the VM-entry MSR-load count is not 0, bits 3:0 of the VM-entry MSR-load address must
    be 0, and neither the address nor that of the area's last byte may exceed the
    physical-address width."""
    return _msr_area(ctx, ENTRY, Field.VM_ENTRY_MSR_LOAD_COUNT, Field.VM_ENTRY_MSR_LOAD_ADDR)


def check_smm_controls_outside_smm(ctx):
    """If the processor is not in SMM, "entry to SMM" and "deactivate dual-monitor treatment"
    must be 0."""
    bad = ctx.entry_controls & (En.SMM | En.DEACT_DUAL_MONITOR)
    if bad and not ctx.in_smm:
        return _fail(ctx, ENTRY, f"{show(Field.VM_ENTRY_CONTROLS, ctx.entry_controls)} sets "
                     f"{_bit_names(En, bad)} outside SMM; they must be 0 there")
    return None


def check_smm_and_dual_monitor(ctx):
    """"entry to SMM" and "deactivate dual-monitor treatment" cannot both be 1."""
    both = En.SMM | En.DEACT_DUAL_MONITOR
    if ctx.entry_controls & both == both:
        return _fail(ctx, ENTRY, f"{show(Field.VM_ENTRY_CONTROLS, ctx.entry_controls)} sets both "
                     f"\"entry to SMM\" (bit 10) and \"deactivate dual-monitor treatment\" "
                     f"(bit 11)")
    return None


EXIT_CHECKS = (check_exit_reserved, check_secondary_exit_reserved, check_save_preemption_timer,
               check_exit_msr_store, check_exit_msr_load)
ENTRY_CHECKS = (
    check_entry_reserved, check_injection_type, check_injection_vector,
    check_injection_deliver_error_code, check_injection_reserved_bits,
    check_injection_error_code, check_injection_instruction_length, check_entry_msr_load,
    check_smm_controls_outside_smm, check_smm_and_dual_monitor,
)
CONTROL_CHECKS = EXECUTION_CHECKS + EXIT_CHECKS + ENTRY_CHECKS


def run_control_checks(ctx: EntryContext) -> Optional[Failure]:
    """27.2.1: the checks on the VMX controls, in the SDM's order; VMfailValid(7) on failure."""
    return run(ctx, CONTROL_CHECKS)
