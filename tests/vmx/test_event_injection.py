"""VM-entry event injection (SDM Vol. 3C 27.6), from real guest code.

27.6: "If the valid bit in the VM-entry interruption-information field is 1, VM entry causes an
event to be delivered (or made pending) after all components of guest state are loaded ... The
event is delivered using the vector in that field to select a descriptor in the IDT." 27.6.1.1:
for software interrupts and exceptions "the RIP pushed is the guest RIP plus the VM-entry
instruction length". 27.6.1.2: "event injection is not subject to the exception bitmap" (26.2:
"an event injected by VM entry ... does not cause a VM exit"). 28.2.1 (VM-exit information):
"VM exits clear the valid bit (bit 31) in the VM-entry interruption-information field."
"""
import pytest

from vmx import ExitReason as R, Field as F
from vmx.interruption import InterruptionType as T
from guest import GUEST_CODE, GUEST_STACK, vm
from events_bench import handler_address, inject, stack, with_idt


def test_hardware_exception_with_error_code_goes_through_the_guest_idt():
    """27.6.1.2: a hardware exception pushes the error code from the VM-entry exception
    error-code field; the saved RIP is the guest RIP (the event happens before it)."""
    m = vm("nop\nvmcall")
    with_idt(m, {13: "vmcall"})
    inject(m, 13, T.HARD_EXCEPTION, error=0x1234)
    ex = m.cpu.vmlaunch()
    assert ex.reason == R.VMCALL and m.cpu.vmread(F.GUEST_RIP) == handler_address(13)
    err, rip, cs, rflags, rsp, ss = stack(m, 6)
    assert (err, rip, rsp) == (0x1234, GUEST_CODE, GUEST_STACK)


def test_external_interrupt_clears_if_through_an_interrupt_gate():
    m = vm("nop\nvmcall")
    m.cpu.vmwrite(F.GUEST_RFLAGS, 0x202)
    with_idt(m, {0x40: "vmcall"})
    inject(m, 0x40, T.EXTERNAL_INTERRUPT)
    assert m.cpu.vmlaunch().reason == R.VMCALL
    rip, cs, rflags = stack(m, 3)
    assert rip == GUEST_CODE and rflags & 0x200
    assert not m.cpu.vmread(F.GUEST_RFLAGS) & 0x200
    assert m.cpu.vmread(F.GUEST_RSP) == GUEST_STACK - 40          # no error code


@pytest.mark.parametrize("vector,type,length", [
    (0x80, T.SOFT_INTERRUPT, 2), (3, T.SOFT_EXCEPTION, 1), (4, T.SOFT_EXCEPTION, 1),
    (1, T.PRIV_SW_EXCEPTION, 1), (0x21, T.SOFT_INTERRUPT, 3),
])
def test_software_types_push_rip_plus_the_instruction_length(vector, type, length):
    """27.6.1.1: software interrupts, software exceptions and privileged software exceptions
    push guest RIP + VM-entry instruction length."""
    m = vm("int3\nvmcall")
    with_idt(m, {vector: "vmcall"})
    inject(m, vector, type, length=length)
    assert m.cpu.vmlaunch().reason == R.VMCALL
    assert stack(m, 1)[0] == GUEST_CODE + length


def test_hardware_exception_ignores_the_instruction_length():
    m = vm("nop\nvmcall")
    with_idt(m, {6: "vmcall"})
    inject(m, 6, T.HARD_EXCEPTION, length=5)
    m.cpu.vmlaunch()
    assert stack(m, 1)[0] == GUEST_CODE


@pytest.mark.parametrize("vector,type", [(6, T.HARD_EXCEPTION), (3, T.SOFT_EXCEPTION), (14, T.HARD_EXCEPTION)])
def test_injected_events_are_not_subject_to_the_exception_bitmap(vector, type):
    """26.2 / 27.6: the exception bitmap does not apply to the injected event itself."""
    m = vm("nop\nvmcall")
    m.cpu.vmwrite(F.EXCEPTION_BITMAP, 0xFFFFFFFF)
    m.cpu.vmwrite(F.PAGE_FAULT_ERROR_CODE_MASK, 0)
    m.cpu.vmwrite(F.PAGE_FAULT_ERROR_CODE_MATCH, 0)
    with_idt(m, {vector: "vmcall"})
    inject(m, vector, type, error=2 if vector == 14 else None, length=1 if type == T.SOFT_EXCEPTION else 0)
    ex = m.cpu.vmlaunch()
    assert ex.reason == R.VMCALL and m.cpu.vmread(F.GUEST_RIP) == handler_address(vector)


def test_injected_page_fault_does_not_write_cr2():
    """27.6.1.2: injecting #PF does not load CR2 (the VMM sets CR2 itself)."""
    m = vm("nop\nvmcall")
    with_idt(m, {14: "mov rax, cr2\nvmcall"})
    m.cpu.rax = 0
    inject(m, 14, T.HARD_EXCEPTION, error=2)
    m.cpu.vmlaunch()
    assert stack(m, 2) == [2, GUEST_CODE]


def test_valid_bit_is_cleared_by_the_vm_exit():
    """28.2.1: every VM exit clears bit 31 of the VM-entry interruption-information field; the
    other bits are left; a VMRESUME after it injects nothing."""
    m = vm("nop\nvmcall")
    m.cpu.vmwrite(F.GUEST_RFLAGS, 0x202)              # 27.3.1.4: external interrupts need IF = 1
    with_idt(m, {0x40: "vmcall\nvmcall"})
    inject(m, 0x40, T.EXTERNAL_INTERRUPT)
    m.cpu.vmlaunch()
    assert m.cpu.vmread(F.VM_ENTRY_INTR_INFO_FIELD) == 0x40
    rsp = m.cpu.vmread(F.GUEST_RSP)
    m.cpu.vmwrite(F.GUEST_RIP, m.cpu.vmread(F.GUEST_RIP) + 3)
    assert m.cpu.vmresume().reason == R.VMCALL
    assert m.cpu.vmread(F.GUEST_RSP) == rsp                       # nothing delivered again


def test_injected_nmi_blocks_nmis():
    """27.6.1.2 / 28.3.4: delivering an injected NMI blocks further NMIs (interruptibility bit 3
    saved at the next exit)."""
    m = vm("nop\nvmcall")
    with_idt(m, {2: "vmcall"})
    inject(m, 2, T.NMI)
    assert m.cpu.vmlaunch().reason == R.VMCALL
    assert m.cpu.vmread(F.GUEST_INTERRUPTIBILITY_INFO) & 8


def test_injection_wakes_a_guest_entered_in_hlt_state():
    """27.6.1.1 / 27.7.1: an event injected into a guest entered in the HLT activity state is
    delivered, and the logical processor is then active."""
    m = vm("nop\nvmcall")
    m.cpu.vmwrite(F.GUEST_ACTIVITY_STATE, 1)
    m.cpu.vmwrite(F.GUEST_RFLAGS, 0x202)
    with_idt(m, {0x30: "vmcall"})
    inject(m, 0x30, T.EXTERNAL_INTERRUPT)
    assert m.cpu.vmlaunch().reason == R.VMCALL
    assert m.cpu.vmread(F.GUEST_ACTIVITY_STATE) == 0
    assert stack(m, 1)[0] == GUEST_CODE
