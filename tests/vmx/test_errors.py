"""SDM Vol. 3C 31.4 "VM Instruction Error Numbers" (Table 31-1). Numbers typed from the
manual; names as Linux's enum vm_instruction_error_number."""
import pytest

import vmx
from vmx import errors

EXPECTED = {
    1: "VMCALL_IN_VMX_ROOT_OPERATION",
    2: "VMCLEAR_INVALID_ADDRESS",
    3: "VMCLEAR_VMXON_POINTER",
    4: "VMLAUNCH_NONCLEAR_VMCS",
    5: "VMRESUME_NONLAUNCHED_VMCS",
    6: "VMRESUME_AFTER_VMXOFF",
    7: "ENTRY_INVALID_CONTROL_FIELD",
    8: "ENTRY_INVALID_HOST_STATE_FIELD",
    9: "VMPTRLD_INVALID_ADDRESS",
    10: "VMPTRLD_VMXON_POINTER",
    11: "VMPTRLD_INCORRECT_VMCS_REVISION_ID",
    12: "UNSUPPORTED_VMCS_COMPONENT",
    13: "VMWRITE_READ_ONLY_VMCS_COMPONENT",
    15: "VMXON_IN_VMX_ROOT_OPERATION",
    16: "ENTRY_INVALID_EXECUTIVE_VMCS_POINTER",
    17: "ENTRY_NONLAUNCHED_EXECUTIVE_VMCS",
    18: "ENTRY_EXECUTIVE_VMCS_POINTER_NOT_VMXON_POINTER",
    19: "VMCALL_NONCLEAR_VMCS",
    20: "VMCALL_INVALID_VM_EXIT_CONTROL_FIELDS",
    22: "VMCALL_INCORRECT_MSEG_REVISION_ID",
    23: "VMXOFF_UNDER_DUAL_MONITOR_TREATMENT_OF_SMIS_AND_SMM",
    24: "VMCALL_INVALID_SMM_MONITOR_FEATURES",
    25: "ENTRY_INVALID_VM_EXECUTION_CONTROL_FIELDS_IN_EXECUTIVE_VMCS",
    26: "ENTRY_EVENTS_BLOCKED_BY_MOV_SS",
    28: "INVALID_OPERAND_TO_INVEPT_INVVPID",
}


@pytest.mark.parametrize("number,name", sorted(EXPECTED.items()))
def test_error_number(number, name):
    """Table 31-1: each error has the manual's number and a meaning."""
    assert vmx.VmInstructionError[name] == number
    assert getattr(errors, "VMXERR_" + name) == number
    assert errors.describe(number)


def test_numbers_1_to_28():
    """Table 31-1 uses 1-28 except 14, 21 and 27."""
    assert sorted(int(e) for e in vmx.VmInstructionError) == sorted(EXPECTED)
    assert set(range(1, 29)) - set(EXPECTED) == {14, 21, 27}
    for unused in (0, 14, 21, 27, 29):
        with pytest.raises(ValueError):
            vmx.VmInstructionError(unused)
