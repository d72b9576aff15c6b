"""VM-instruction error numbers: SDM Vol. 3C 31.4 "VM Instruction Error Numbers" (Table 31-1).

A VMfailValid stores one of these numbers in the VM-instruction error field
(VM_INSTRUCTION_ERROR, encoding 4400H). Names follow Linux's `enum vm_instruction_error_number`
(asm/vmx.h) without the VMXERR_ prefix; the module also exports the prefixed spellings.
Numbers 14, 21 and 27 are not used by the SDM.
"""
from __future__ import annotations

import enum

_ROWS = (
    (1, "VMCALL_IN_VMX_ROOT_OPERATION", "VMCALL executed in VMX root operation"),
    (2, "VMCLEAR_INVALID_ADDRESS", "VMCLEAR with an invalid physical address"),
    (3, "VMCLEAR_VMXON_POINTER", "VMCLEAR with the VMXON pointer"),
    (4, "VMLAUNCH_NONCLEAR_VMCS", "VMLAUNCH of a VMCS whose launch state is not clear"),
    (5, "VMRESUME_NONLAUNCHED_VMCS", "VMRESUME of a VMCS whose launch state is not launched"),
    (6, "VMRESUME_AFTER_VMXOFF", "VMRESUME after VMXOFF (VMXOFF and VMXON between VMLAUNCH and "
        "VMRESUME)"),
    (7, "ENTRY_INVALID_CONTROL_FIELD", "VM entry with invalid control field(s)"),
    (8, "ENTRY_INVALID_HOST_STATE_FIELD", "VM entry with invalid host-state field(s)"),
    (9, "VMPTRLD_INVALID_ADDRESS", "VMPTRLD with an invalid physical address"),
    (10, "VMPTRLD_VMXON_POINTER", "VMPTRLD with the VMXON pointer"),
    (11, "VMPTRLD_INCORRECT_VMCS_REVISION_ID", "VMPTRLD of a VMCS whose revision identifier is "
         "not the processor's"),
    (12, "UNSUPPORTED_VMCS_COMPONENT", "VMREAD or VMWRITE of a field the processor does not "
         "support"),
    (13, "VMWRITE_READ_ONLY_VMCS_COMPONENT", "VMWRITE to a read-only (VM-exit information) field"),
    (15, "VMXON_IN_VMX_ROOT_OPERATION", "VMXON executed in VMX root operation"),
    (16, "ENTRY_INVALID_EXECUTIVE_VMCS_POINTER", "VM entry with an invalid executive-VMCS "
         "pointer"),
    (17, "ENTRY_NONLAUNCHED_EXECUTIVE_VMCS", "VM entry with a non-launched executive VMCS"),
    (18, "ENTRY_EXECUTIVE_VMCS_POINTER_NOT_VMXON_POINTER", "VM entry whose executive-VMCS "
         "pointer is not the VMXON pointer (deactivating the dual-monitor treatment)"),
    (19, "VMCALL_NONCLEAR_VMCS", "VMCALL with a VMCS that is not clear (activating the "
         "dual-monitor treatment)"),
    (20, "VMCALL_INVALID_VM_EXIT_CONTROL_FIELDS", "VMCALL with invalid VM-exit control fields"),
    (22, "VMCALL_INCORRECT_MSEG_REVISION_ID", "VMCALL with an incorrect MSEG revision identifier"),
    (23, "VMXOFF_UNDER_DUAL_MONITOR_TREATMENT_OF_SMIS_AND_SMM", "VMXOFF while the dual-monitor "
         "treatment of SMIs and SMM is active"),
    (24, "VMCALL_INVALID_SMM_MONITOR_FEATURES", "VMCALL with invalid SMM-monitor features"),
    (25, "ENTRY_INVALID_VM_EXECUTION_CONTROL_FIELDS_IN_EXECUTIVE_VMCS", "VM entry with invalid "
         "VM-execution control fields in the executive VMCS"),
    (26, "ENTRY_EVENTS_BLOCKED_BY_MOV_SS", "VM entry while events are blocked by MOV SS"),
    (28, "INVALID_OPERAND_TO_INVEPT_INVVPID", "invalid operand to INVEPT or INVVPID"),
)

VmInstructionError = enum.IntEnum("VmInstructionError", [(name, n) for n, name, _ in _ROWS],
                                  module=__name__)
VmInstructionError.__doc__ = "VM-instruction error numbers (SDM Vol. 3C 31.4, Table 31-1)."

_DESCRIPTION = {n: text for n, _, text in _ROWS}


def describe(error) -> str:
    """What a VM-instruction error number means (Table 31-1, in our words)."""
    return _DESCRIPTION[int(error)]


# Linux's prefixed names, VMXERR_*.
globals().update({"VMXERR_" + e.name: e for e in VmInstructionError})
