"""The monitor trap flag (SDM Vol. 3C 26.5.2, 27.7.2), from real guest code.

26.5.2: "If the 'monitor trap flag' VM-execution control is 1 and VM entry is injecting a vectored
event, an MTF VM exit is pending on the instruction boundary before the first instruction
following the VM entry. If VM entry is injecting a pending MTF VM exit, an MTF VM exit is pending
on the instruction boundary before the first instruction following the VM entry. This is the case
even if the 'monitor trap flag' VM-execution control is 0. If the control is 1, VM entry is not
injecting an event, and ... the first instruction following VM entry completes (or encounters a
fault that is delivered), an MTF VM exit is pending on the instruction boundary following it."
Priority (26.5.2): "MTF VM exits take priority over debug-trap exceptions and lower priority
events" (the VMX-preemption timer, the NMI and interrupt windows, NMIs, external interrupts); a
single-step trap pending at an MTF exit is saved in the pending debug exceptions
(test_pending_debug_exceptions).
"""
import pytest

from vmx import ExitReason as R, Field as F, PinBased as Pin, ProcBased as P
from vmx.interruption import InterruptionType as T
from guest import GUEST_CODE, vm
from events_bench import handler_address, inject, with_idt

MTF = P.MONITOR_TRAP_FLAG


@pytest.mark.parametrize("source,length", [("nop", 1), ("mov rax, 0x1122334455667788", 10),
                                           ("add rax, 1", 4), ("jmp 2f\nnop\n2:", 2)])
def test_exit_after_the_first_instruction(source, length):
    m = vm(source + "\nvmcall", proc=MTF)
    icount = m.cpu.icount
    ex = m.cpu.vmlaunch()
    assert ex.reason == R.MONITOR_TRAP_FLAG and ex.instruction_length == 0
    assert m.cpu.icount == icount + 1
    rip = m.cpu.vmread(F.GUEST_RIP)
    assert rip == GUEST_CODE + length or source.startswith("jmp")


def test_single_stepping_with_resume():
    """A VMM steps a guest by resuming with MTF set: one exit per instruction."""
    m = vm("nop\nnop\nnop\nvmcall", proc=MTF)
    rips = []
    ex = m.cpu.vmlaunch()
    while ex.reason == R.MONITOR_TRAP_FLAG:
        rips.append(m.cpu.vmread(F.GUEST_RIP))
        ex = m.cpu.vmresume()
    assert rips == [GUEST_CODE + 1, GUEST_CODE + 2, GUEST_CODE + 3] and ex.reason == R.VMCALL


def test_exit_after_injected_event_before_the_handler_runs():
    m = vm("nop", proc=MTF)
    with_idt(m, {0x30: "nop\nvmcall"})
    m.cpu.vmwrite(F.GUEST_RFLAGS, 0x202)
    inject(m, 0x30, T.EXTERNAL_INTERRUPT)
    icount = m.cpu.icount
    assert m.cpu.vmlaunch().reason == R.MONITOR_TRAP_FLAG
    assert m.cpu.vmread(F.GUEST_RIP) == handler_address(0x30) and m.cpu.icount == icount


def test_faulting_instruction_exit_after_the_fault_is_delivered():
    m = vm("ud2", proc=MTF)
    with_idt(m, {6: "vmcall"})
    assert m.cpu.vmlaunch().reason == R.MONITOR_TRAP_FLAG
    assert m.cpu.vmread(F.GUEST_RIP) == handler_address(6)


def test_pending_mtf_injection_exits_at_once_without_the_control():
    """27.6.2 / 26.5.2: interruption type 7 (other event), vector 0 injects a pending MTF VM
    exit, even with the control 0."""
    m = vm("nop\nvmcall")
    inject(m, 0, T.OTHER_EVENT)
    icount = m.cpu.icount
    assert m.cpu.vmlaunch().reason == R.MONITOR_TRAP_FLAG
    assert m.cpu.vmread(F.GUEST_RIP) == GUEST_CODE and m.cpu.icount == icount


def test_instruction_exits_take_the_instruction_itself():
    m = vm("cpuid", proc=MTF)
    assert m.cpu.vmlaunch().reason == R.CPUID


def test_mtf_after_hlt_leaves_the_hlt_state_saved():
    m = vm("hlt", proc=MTF)
    assert m.cpu.vmlaunch().reason == R.MONITOR_TRAP_FLAG
    assert m.cpu.vmread(F.GUEST_ACTIVITY_STATE) == 1
    assert m.cpu.vmread(F.GUEST_RIP) == GUEST_CODE + 1


def test_mtf_has_priority_over_the_preemption_timer_and_windows():
    m = vm("nop", proc=MTF | P.INTR_WINDOW_EXITING, pin=Pin.VMX_PREEMPTION_TIMER)
    m.cpu.vmwrite(F.VMX_PREEMPTION_TIMER_VALUE, 0)
    m.cpu.vmwrite(F.GUEST_RFLAGS, 0x202)
    with_idt(m, {0x30: "nop"})
    inject(m, 0x30, T.EXTERNAL_INTERRUPT)
    assert m.cpu.vmlaunch().reason == R.MONITOR_TRAP_FLAG


def test_without_the_control_no_mtf_exit():
    m = vm("nop\nnop\nvmcall")
    assert m.cpu.vmlaunch().reason == R.VMCALL
