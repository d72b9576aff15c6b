"""SDM Vol. 3C 25.9 "VM-Exit Information Fields" and 25.9.1 Table 25-18 "Format of Exit Reason":
"15:0 Basic exit reason ... 31 VM-entry failure (0 = true VM exit; 1 = VM-entry failure)"."""
import attrs
import pytest

from vmx import ExitReason, Field
from vmx.exit_record import EXIT_INFORMATION_FIELDS, VmExit
from vmx.instruction_info import DescriptorTable, InstructionInfo, InsOuts
from vmx.interruption import InterruptionType
from vmx.outcome import Check
from vmx.qualification import CrAccess, DebugException, EptViolation, LinearAddress


def vmcs(**values):
    """A `read(Field)` over a dict of exit-information fields (others read 0)."""
    fields = {Field[name]: value for name, value in values.items()}
    return lambda field: fields.get(field, 0)


def test_fields_read_are_the_exit_information_fields():
    assert set(EXIT_INFORMATION_FIELDS.values()) == {
        Field.VM_EXIT_REASON, Field.EXIT_QUALIFICATION, Field.GUEST_LINEAR_ADDRESS,
        Field.GUEST_PHYSICAL_ADDRESS, Field.VM_EXIT_INSTRUCTION_LEN, Field.VMX_INSTRUCTION_INFO,
        Field.VM_EXIT_INTR_INFO, Field.VM_EXIT_INTR_ERROR_CODE, Field.IDT_VECTORING_INFO_FIELD,
        Field.IDT_VECTORING_ERROR_CODE, Field.GUEST_RIP}


def test_cr_access_exit():
    e = VmExit.from_fields(vmcs(VM_EXIT_REASON=28, EXIT_QUALIFICATION=0x104, GUEST_RIP=0x1234,
                                VM_EXIT_INSTRUCTION_LEN=3))
    assert e.reason is ExitReason.CR_ACCESS and not e.entry_failure
    assert isinstance(e.qualification, CrAccess) and e.qualification == 0x104
    assert e.instruction_length == 3
    assert e.explain() == "VM exit 28 CR_ACCESS at guest RIP 0x1234: MOV to CR4 from RCX."


def test_entry_failure_bit_31():
    """Bit 31 set, basic reason 33: VM-entry failure due to invalid guest state."""
    check = Check("27.3.1.1", "VMLAUNCH", "CR0.PG (bit 31) is 1 but CR0.PE (bit 0) is 0")
    e = VmExit.from_fields(vmcs(VM_EXIT_REASON=0x8000_0021), check=check)
    assert e.entry_failure and e.reason is ExitReason.INVALID_STATE
    assert e.raw_reason == 0x8000_0021
    assert e.explain() == ("VM-entry failure (exit reason 33, INVALID_STATE, qualification 0): "
                           f"{check}.")


def test_entry_failure_without_check():
    e = VmExit(raw_reason=0x8000_0022, qualification=1)
    assert e.reason is ExitReason.MSR_LOAD_FAIL
    assert e.explain().startswith("VM-entry failure (exit reason 34, MSR_LOAD_FAIL, "
                                  "qualification 1): ")


def test_page_fault_exit():
    """28.2.1: for a #PF the qualification is the faulting linear address; the error code is in
    the VM-exit interruption error code."""
    e = VmExit.from_fields(vmcs(VM_EXIT_REASON=0, VM_EXIT_INTR_INFO=0x8000_0B0E,
                                VM_EXIT_INTR_ERROR_CODE=0x2, EXIT_QUALIFICATION=0xDEAD000,
                                GUEST_RIP=0x40))
    assert isinstance(e.qualification, LinearAddress)
    assert e.interruption_info.type == InterruptionType.HARD_EXCEPTION
    assert e.explain() == ("VM exit 0 EXCEPTION_NMI at guest RIP 0x40: hardware exception #PF "
                           "(vector 14) with an error code 0x2 (linear address 0xdead000).")


def test_debug_exception_exit():
    e = VmExit(raw_reason=0, interruption_info=0x8000_0301, qualification=0x4000)
    assert isinstance(e.qualification, DebugException) and e.qualification.bs


def test_ept_violation_during_event_delivery():
    e = VmExit.from_fields(vmcs(VM_EXIT_REASON=48, EXIT_QUALIFICATION=0x18A,
                                GUEST_PHYSICAL_ADDRESS=0x5000, GUEST_LINEAR_ADDRESS=0x7000,
                                IDT_VECTORING_INFO_FIELD=0x8000_0020, GUEST_RIP=0x10))
    assert isinstance(e.qualification, EptViolation)
    assert e.idt_vectoring_info.valid and e.idt_vectoring_info.vector == 0x20
    text = e.explain()
    assert text.startswith("VM exit 48 EPT_VIOLATION at guest RIP 0x10: EPT violation: write")
    assert "guest-physical address 0x5000" in text and "guest linear address 0x7000" in text
    assert text.endswith("during delivery of external interrupt vector 0x20.")


def test_instruction_information_and_displacement():
    """LGDT [rbx+8]: the displacement is the qualification, the operand is in instruction
    information."""
    info = (2 << 28) | (1 << 22) | (3 << 23) | (3 << 15) | (2 << 7)
    e = VmExit(raw_reason=46, qualification=8, instruction_info=info, guest_rip=0x2000)
    assert isinstance(e.instruction_info, DescriptorTable)
    assert e.explain() == ("VM exit 46 GDTR_IDTR at guest RIP 0x2000: "
                           "LGDT ds:[rbx+0x8] (64-bit address).")


def test_io_instruction_info_only_for_string_io():
    """Instruction information is defined for INS/OUTS, not for IN/OUT."""
    plain = VmExit(raw_reason=30, qualification=0x600048, instruction_info=0x180)
    assert type(plain.instruction_info) is InstructionInfo
    outs = VmExit(raw_reason=30, qualification=0x3F8_0010, instruction_info=0x180)
    assert type(outs.instruction_info) is InsOuts


def test_reason_without_qualification_uses_table_c1():
    e = VmExit(raw_reason=10, guest_rip=0x100)
    assert e.explain() == "VM exit 10 CPUID at guest RIP 0x100: the guest executed CPUID."


def test_unused_reason_number_does_not_raise():
    e = VmExit(raw_reason=35)
    assert e.reason == 35 and e.explain()


def test_record_is_frozen():
    e = VmExit(raw_reason=12)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        e.guest_rip = 1
    assert e == VmExit(raw_reason=12)
