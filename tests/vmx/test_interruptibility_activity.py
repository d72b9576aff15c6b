"""Guest interruptibility state and activity state across VM entry (SDM Vol. 3C 27.3.2.5, 27.7.1)
and VM exit (28.3.4), and HLT in the guest without "HLT exiting" (26.1.3), from real guest code.

28.3.4: "Interruptibility state ... blocking by STI, blocking by MOV SS ... are saved"; "blocking
by NMI is saved as 1 if NMIs are blocked" (virtual-NMI blocking with 'virtual NMIs'). The
activity state is saved: HLT if the logical processor is in the HLT state. 27.7.1: a VM entry
with the HLT activity state leaves the processor in HLT, waiting for an event that ends it.
"""
import pytest

import vmx
from vmx import ExitReason as R, Field as F, PinBased as Pin
from vmx.transitions import GuestStuck
from guest import GUEST_CODE, vm


@pytest.mark.parametrize("source,saved", [
    ("sti\ncpuid", 1),                    # CPUID in the STI shadow
    ("mov ax, ss\nmov ss, ax\ncpuid", 2),  # CPUID in the MOV SS shadow
    ("sti\nnop\ncpuid", 0),
    ("cpuid", 0),
])
def test_blocking_by_sti_and_mov_ss_is_saved(source, saved):
    m = vm(source)
    assert m.cpu.vmlaunch().reason == R.CPUID
    assert m.cpu.vmread(F.GUEST_INTERRUPTIBILITY_INFO) & 3 == saved


@pytest.mark.parametrize("blocking", [1, 2])
def test_blocking_loaded_at_entry_survives_an_exit_before_an_instruction_retires(blocking):
    m = vm("cpuid")
    m.cpu.vmwrite(F.GUEST_RFLAGS, 0x202)
    m.cpu.vmwrite(F.GUEST_INTERRUPTIBILITY_INFO, blocking)
    m.cpu.vmlaunch()
    assert m.cpu.vmread(F.GUEST_INTERRUPTIBILITY_INFO) == blocking


@pytest.mark.parametrize("pin", [0, Pin.NMI_EXITING | Pin.VIRTUAL_NMIS])
def test_nmi_blocking_is_loaded_and_saved(pin):
    m = vm("cpuid", pin=pin)
    m.cpu.vmwrite(F.GUEST_INTERRUPTIBILITY_INFO, 8)
    m.cpu.vmlaunch()
    assert m.cpu.vmread(F.GUEST_INTERRUPTIBILITY_INFO) == 8


def test_virtual_nmi_blocking_does_not_stay_with_the_host():
    m = vm("cpuid", pin=Pin.NMI_EXITING | Pin.VIRTUAL_NMIS)
    m.cpu.vmwrite(F.GUEST_INTERRUPTIBILITY_INFO, 8)
    m.cpu.vmlaunch()
    assert m.cpu.interruptibility == 0


def test_hlt_without_hlt_exiting_waits_until_an_exit_causing_event():
    """HLT does not exit: the guest waits (time passes without instructions) until the
    VMX-preemption timer ends the wait; the activity state is saved as HLT, RIP after HLT."""
    m = vm("hlt\nvmcall", pin=Pin.VMX_PREEMPTION_TIMER)
    m.cpu.vmwrite(F.VMX_PREEMPTION_TIMER_VALUE, 10)
    start_icount = m.cpu.icount
    assert m.cpu.vmlaunch().reason == R.PREEMPTION_TIMER
    assert m.cpu.vmread(F.GUEST_ACTIVITY_STATE) == 1
    assert m.cpu.vmread(F.GUEST_RIP) == GUEST_CODE + 1
    assert m.cpu.icount == start_icount + 1                       # only HLT retired


def test_entry_in_hlt_state_waits_without_executing():
    m = vm("vmcall", pin=Pin.VMX_PREEMPTION_TIMER)
    m.cpu.vmwrite(F.GUEST_ACTIVITY_STATE, 1)
    m.cpu.vmwrite(F.VMX_PREEMPTION_TIMER_VALUE, 3)
    assert m.cpu.vmlaunch().reason == R.PREEMPTION_TIMER
    assert m.cpu.vmread(F.GUEST_ACTIVITY_STATE) == 1
    assert m.cpu.vmread(F.GUEST_RIP) == GUEST_CODE


def test_hlt_with_nothing_to_wake_it_is_a_stuck_guest():
    m = vm("hlt")
    with pytest.raises(GuestStuck):
        m.cpu.vmlaunch()


def test_hlt_exiting_takes_precedence():
    m = vm("hlt", proc=vmx.ProcBased.HLT_EXITING)
    assert m.cpu.vmlaunch().reason == R.HLT
    assert m.cpu.vmread(F.GUEST_ACTIVITY_STATE) == 0
