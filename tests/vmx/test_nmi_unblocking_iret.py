"""NMI unblocking due to IRET (SDM Vol. 3C 28.2.3, 28.1, 26.3; Vol. 3A 6.7.1), from real guest
code: an IRET that faults after ending NMI blocking.

Vol. 3A 6.7.1: "An execution of the IRET instruction unblocks NMIs even if the instruction
causes a fault." 26.3, IRET: "If the 'NMI exiting' VM-execution control is 0, IRET operates
normally and unblocks NMIs ... If the 'NMI exiting' VM-execution control is 1, IRET does not
affect blocking of NMIs. If, in addition, the 'virtual NMIs' VM-execution control is 1, the
logical processor tracks virtual-NMI blocking. In this case, IRET removes any virtual-NMI
blocking. The unblocking of NMIs or virtual NMIs specified above occurs even if IRET causes a
fault."

28.1: "If a VM exit results from a fault ... encountered during execution of IRET and the 'NMI
exiting' VM-execution control is 0, any blocking by NMI is cleared before the VM exit
commences. However, the previous state of blocking by NMI may be recorded in the exit
qualification or in the VM-exit interruption-information field" (and likewise virtual-NMI
blocking with "virtual NMIs" 1).

28.2.3 (bit 12 of the VM-exit interruption information): "If the 'virtual NMIs' VM-execution
control is 0, the VM exit is due to a fault on the IRET instruction ..., and blocking by NMI was
in effect before execution of IRET, bit 12 is set to 1. If the 'virtual NMIs' VM-execution
control is 1, ... and virtual-NMI blocking was in effect before execution of IRET, bit 12 is
set to 1. For all other relevant VM exits, bit 12 is cleared to 0." It is undefined with "NMI
exiting" 1 and "virtual NMIs" 0, when the IDT-vectoring information is valid, and for #DF.
The interruptibility state saved (28.3.4) is the state at the VM exit.
"""
import pytest

from vmx import ExitReason as R, Field as F, PinBased as Pin
from guest import vm
from events_bench import with_idt

# IRETQ pops RIP, CS, RFLAGS, RSP, SS: a null CS selector is #GP(0)
IRET_GP = "mov rax, rsp\npush 0x10\npush rax\npushfq\npush 0\nlea rax, [rip + 1f]\npush rax\niretq\n1: vmcall"
IRET_PF = "mov rsp, 0x8000000000\niretq"             # the frame is on a page that is not present
IRET_OK = "mov rax, rsp\npush 0x10\npush rax\npushfq\npush 0x18\nlea rax, [rip + 1f]\npush rax\niretq\n1: vmcall"
BLOCK_NMI = 8
VNMI = Pin.NMI_EXITING | Pin.VIRTUAL_NMIS


def run(source, pin=0, blocked=True, exceptions=(1 << 13) | (1 << 14)):
    m = vm(source, pin=pin)
    m.cpu.vmwrite(F.GUEST_INTERRUPTIBILITY_INFO, BLOCK_NMI if blocked else 0)
    m.cpu.vmwrite(F.EXCEPTION_BITMAP, exceptions)
    return m, m.cpu.vmlaunch()


@pytest.mark.parametrize("source,vector", [(IRET_GP, 13), (IRET_PF, 14)])
@pytest.mark.parametrize("pin", [0, VNMI])
def test_a_fault_on_iret_that_ended_nmi_blocking_sets_bit_12(source, vector, pin):
    """Blocking by NMI (or virtual-NMI blocking) before the IRET: bit 12 is 1 and the blocking
    saved in the interruptibility state is cleared."""
    m, ex = run(source, pin)
    assert ex.reason == R.EXCEPTION_NMI and ex.interruption_info.vector == vector
    assert ex.interruption_info.nmi_unblocking and int(ex.raw_interruption_info) >> 12 & 1
    assert ex.interruption_info.valid and not ex.idt_vectoring_info.valid
    assert m.cpu.vmread(F.GUEST_INTERRUPTIBILITY_INFO) & BLOCK_NMI == 0


@pytest.mark.parametrize("pin", [0, VNMI])
def test_without_blocking_before_the_iret_bit_12_is_0(pin):
    m, ex = run(IRET_GP, pin, blocked=False)
    assert ex.interruption_info.vector == 13 and not ex.interruption_info.nmi_unblocking


def test_with_nmi_exiting_and_no_virtual_nmis_iret_leaves_nmi_blocking():
    """26.3: IRET does not affect blocking of NMIs, faulting or not: the blocking is saved."""
    m, ex = run(IRET_GP, Pin.NMI_EXITING)
    assert ex.interruption_info.vector == 13 and not ex.interruption_info.nmi_unblocking
    assert m.cpu.vmread(F.GUEST_INTERRUPTIBILITY_INFO) & BLOCK_NMI
    m, ex = run(IRET_OK, Pin.NMI_EXITING)
    assert ex.reason == R.VMCALL and m.cpu.vmread(F.GUEST_INTERRUPTIBILITY_INFO) & BLOCK_NMI


@pytest.mark.parametrize("pin", [0, VNMI])
def test_an_iret_that_completes_ends_blocking(pin):
    m, ex = run(IRET_OK, pin)
    assert ex.reason == R.VMCALL and not m.cpu.vmread(F.GUEST_INTERRUPTIBILITY_INFO) & BLOCK_NMI


def test_a_fault_of_another_instruction_after_an_iret_sets_no_bit_12():
    m, ex = run(IRET_OK.replace("1: vmcall", "1: mov rax, 0x8000000000\nmov rax, [rax]"))
    assert ex.interruption_info.vector == 14 and not ex.interruption_info.nmi_unblocking


def test_the_iret_fault_delivered_to_the_guest_leaves_nmis_unblocked():
    """Vol. 3A 6.7.1 with "NMI exiting" 0: the #GP of the IRET reaches the guest's handler with
    NMIs already unblocked (here the handler's VMCALL shows the state)."""
    m = vm(IRET_GP)
    with_idt(m, {13: "vmcall"})
    m.cpu.vmwrite(F.GUEST_INTERRUPTIBILITY_INFO, BLOCK_NMI)
    assert m.cpu.vmlaunch().reason == R.VMCALL
    assert not m.cpu.vmread(F.GUEST_INTERRUPTIBILITY_INFO) & BLOCK_NMI


def test_bit_12_is_not_set_when_the_exit_records_idt_vectoring():
    """The IRET's #GP is delivered; its delivery faults (#NP: the gate is not present), and that
    nested exception exits: the IDT-vectoring information is valid, bit 12 stays 0."""
    m = vm(IRET_GP)
    with_idt(m, {13: "vmcall"}, present=False)
    m.cpu.vmwrite(F.GUEST_INTERRUPTIBILITY_INFO, BLOCK_NMI)
    m.cpu.vmwrite(F.EXCEPTION_BITMAP, 1 << 11)
    ex = m.cpu.vmlaunch()
    assert ex.interruption_info.vector == 11 and ex.idt_vectoring_info.valid
    assert not ex.interruption_info.nmi_unblocking
