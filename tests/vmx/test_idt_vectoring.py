"""Information for VM exits during event delivery (SDM Vol. 3C 28.2.4, "IDT-vectoring
information"), from real guest code.

28.2.4: "If a VM exit occurs during delivery of an event through the IDT, the IDT-vectoring
information field receives the vector, type and error-code validity of that event, and the
IDT-vectoring error-code field its error code ... This is also the case for a VM exit that occurs
during the delivery of an event injected as part of VM entry." Otherwise bit 31 of the field is
cleared. 28.2.5: for a VM exit during delivery of a software interrupt or software exception,
the VM-exit instruction-length field receives the length of the instruction (for an injected
event, the VM-entry instruction length).
"""
import pytest

from vmx import ExitReason as R, Field as F
from vmx.interruption import InterruptionType as T
from guest import GUEST_CODE, vm
from events_bench import handler_address, inject, with_idt

UNMAPPED_STACK = 0x8000001000          # the page below it is not mapped by the guest page tables
NP = 11


def vectoring(m):
    return m.cpu.vmread(F.IDT_VECTORING_INFO_FIELD), m.cpu.vmread(F.IDT_VECTORING_ERROR_CODE)


def test_exception_during_delivery_of_an_injected_exception_records_it():
    """An injected #GP whose gate is not present raises #NP (error code: IDT, EXT); with #NP in
    the exception bitmap the exit reports #NP and the injected #GP as IDT-vectoring information."""
    m = vm("nop\nvmcall")
    m.cpu.vmwrite(F.EXCEPTION_BITMAP, 1 << NP)
    with_idt(m, {13: "vmcall"}, present=False)
    inject(m, 13, T.HARD_EXCEPTION, error=0x55)
    ex = m.cpu.vmlaunch()
    assert ex.reason == R.EXCEPTION_NMI
    assert m.cpu.vmread(F.VM_EXIT_INTR_INFO) == 0x80000B00 | NP
    assert m.cpu.vmread(F.VM_EXIT_INTR_ERROR_CODE) == (13 << 3) | 2 | 1
    assert vectoring(m) == (0x80000B00 | 13, 0x55)
    assert m.cpu.vmread(F.GUEST_RIP) == GUEST_CODE


def test_page_fault_on_the_stack_while_delivering_a_guest_exception():
    """UD2 with RSP pointing at an unmapped page: pushing the #UD frame raises #PF; with #PF
    exiting the exit is a #PF (qualification = the faulting address) during delivery of #UD,
    and RIP still points at UD2."""
    m = vm("ud2")
    m.cpu.vmwrite(F.GUEST_RSP, UNMAPPED_STACK)
    m.cpu.vmwrite(F.EXCEPTION_BITMAP, 1 << 14)
    with_idt(m, {6: "vmcall"})
    ex = m.cpu.vmlaunch()
    assert ex.reason == R.EXCEPTION_NMI
    assert m.cpu.vmread(F.VM_EXIT_INTR_INFO) & 0xFFF == 0xB00 | 14
    assert m.cpu.vmread(F.EXIT_QUALIFICATION) == UNMAPPED_STACK - 8
    assert vectoring(m)[0] == 0x80000300 | 6
    assert m.cpu.vmread(F.GUEST_RIP) == GUEST_CODE


def test_software_interrupt_in_the_guest_reports_its_length():
    """INT 0x21 through a gate that is not present: the exit during its delivery records type 4
    (software interrupt) and the instruction length 2; RIP is the INT instruction."""
    m = vm("int 0x21")
    m.cpu.vmwrite(F.EXCEPTION_BITMAP, 1 << NP)
    with_idt(m, {0x21: "vmcall"}, present=False)
    ex = m.cpu.vmlaunch()
    assert vectoring(m)[0] == 0x80000400 | 0x21
    assert ex.instruction_length == 2
    assert m.cpu.vmread(F.GUEST_RIP) == GUEST_CODE


@pytest.mark.parametrize("vector,type,length", [(0x80, T.SOFT_INTERRUPT, 3), (3, T.SOFT_EXCEPTION, 1)])
def test_injected_software_event_reports_the_entry_instruction_length(vector, type, length):
    m = vm("nop\nvmcall")
    m.cpu.vmwrite(F.EXCEPTION_BITMAP, 1 << NP)
    with_idt(m, {vector: "vmcall"}, present=False)
    inject(m, vector, type, length=length)
    ex = m.cpu.vmlaunch()
    assert vectoring(m)[0] == 0x80000000 | (type << 8) | vector
    assert ex.instruction_length == length
    assert m.cpu.vmread(F.GUEST_RIP) == GUEST_CODE


def test_nested_exception_is_checked_against_the_bitmap_before_it_becomes_a_double_fault():
    """#NP during #GP delivery would be a #DF (both contributory, SDM Vol. 3A Table 6-5), but
    the #NP is checked against the exception bitmap first: it exits as itself."""
    m = vm("nop\nvmcall")
    m.cpu.vmwrite(F.EXCEPTION_BITMAP, (1 << NP) | (1 << 8))
    with_idt(m, {13: "vmcall", 8: "vmcall"}, present=False)
    inject(m, 13, T.HARD_EXCEPTION, error=0)
    m.cpu.vmlaunch()
    assert m.cpu.vmread(F.VM_EXIT_INTR_INFO) & 0xFF == NP


def test_double_fault_delivered_when_nothing_exits():
    m = vm("nop\nvmcall")
    with_idt(m, {8: "vmcall"})
    m.memory.write_u64(0x2F0000 + 16 * 13, 0)                    # #GP: no gate
    inject(m, 13, T.HARD_EXCEPTION, error=0)
    assert m.cpu.vmlaunch().reason == R.VMCALL
    assert m.cpu.vmread(F.GUEST_RIP) == handler_address(8)
    assert vectoring(m)[0] >> 31 == 0


@pytest.mark.parametrize("source", ["cpuid", "ud2"])
def test_no_vectoring_information_outside_delivery(source):
    """An exit that does not interrupt an event delivery clears the valid bit."""
    m = vm(source)
    m.cpu.vmwrite(F.EXCEPTION_BITMAP, 1 << 6)
    m.cpu.vmlaunch()
    assert vectoring(m)[0] >> 31 == 0


def test_a_double_fault_that_exits_directly_is_not_during_delivery():
    """28.2.4: "A VM exit is not considered to occur during event delivery" when "the original
    event results in a double-fault exception that causes the VM exit directly"."""
    m = vm("nop\nvmcall")
    m.cpu.vmwrite(F.EXCEPTION_BITMAP, 1 << 8)
    with_idt(m, {13: "vmcall"}, present=False)
    inject(m, 13, T.HARD_EXCEPTION, error=0)
    ex = m.cpu.vmlaunch()
    assert m.cpu.vmread(F.VM_EXIT_INTR_INFO) == 0x80000B08
    assert vectoring(m)[0] >> 31 == 0 and ex.reason == R.EXCEPTION_NMI


def test_exception_while_delivering_a_double_fault_reports_the_double_fault():
    """#NP while delivering #DF (its gate is not present either) exits as #NP with #DF as the
    event being delivered (error code 0)."""
    m = vm("nop\nvmcall")
    m.cpu.vmwrite(F.EXCEPTION_BITMAP, 1 << NP)
    with_idt(m, {13: "vmcall", 8: "vmcall"}, present=False)
    # the #NP raised by the injected #GP would itself exit: make #GP's gate present but bad
    # (a null code selector: #GP(EXT) -> #DF), then #DF finds no gate -> #NP
    m.memory.write_u64(0x2F0000 + 16 * 13, (0xE << 40) | (1 << 47))
    m.cpu.vmwrite(F.EXCEPTION_BITMAP, 1 << NP)
    inject(m, 13, T.HARD_EXCEPTION, error=0)
    m.cpu.vmlaunch()
    assert m.cpu.vmread(F.VM_EXIT_INTR_INFO) & 0xFF == NP
    assert vectoring(m) == (0x80000B08, 0)


def test_no_vectoring_information_for_a_triple_fault():
    m = vm("nop\nvmcall")
    m.cpu.vmwrite(F.GUEST_IDTR_LIMIT, 0)
    inject(m, 13, T.HARD_EXCEPTION, error=0)
    assert m.cpu.vmlaunch().reason == R.TRIPLE_FAULT
    assert vectoring(m)[0] >> 31 == 0


def test_external_interrupt_delivered_by_the_guest_records_type_0():
    """An external interrupt taken in the guest (external-interrupt exiting 0) whose gate is not
    present: the #NP exit records the interrupt (type 0, no error code) and RIP is where the
    interrupt arrived."""
    m = vm("nop\nnop\nvmcall")
    m.cpu.vmwrite(F.GUEST_RFLAGS, 0x202)
    m.cpu.vmwrite(F.EXCEPTION_BITMAP, 1 << NP)
    with_idt(m, {0x40: "vmcall"}, present=False)
    m.apic.request(0x40)
    m.cpu.vmlaunch()
    assert m.cpu.vmread(F.VM_EXIT_INTR_INFO) & 0xFF == NP
    assert vectoring(m)[0] == 0x80000040
    assert m.cpu.vmread(F.GUEST_RIP) == GUEST_CODE
