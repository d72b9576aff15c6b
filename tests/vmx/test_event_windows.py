"""Interrupt-window and NMI-window exiting (SDM Vol. 3C 26.7.5, 26.7.6) and the VM exits right
after VM entry they cause (27.7.5, 27.7.6); virtual NMIs (26.7.1), from real guest code.

26.7.5: "If the 'interrupt-window exiting' VM-execution control is 1, a VM exit occurs before
execution of any instruction if RFLAGS.IF = 1 and there is no blocking of events by STI or by MOV
SS ... Such a VM exit occurs immediately after VM entry if the above conditions are true."
"Non-maskable interrupts (NMIs) and higher priority events take priority over VM exits caused by
this control. VM exits caused by this control take priority over external interrupts."
26.7.6: "If the 'NMI-window exiting' VM-execution control is 1, a VM exit occurs before execution
of any instruction if there is no virtual-NMI blocking and there is no blocking of events by MOV
SS." VM exits caused by the VMX-preemption timer take priority over them; they take priority
over NMIs. 26.7.1 (virtual NMIs): "IRET removes any virtual-NMI blocking."
"""
import pytest

from vmx import ExitReason as R, Field as F, PinBased as Pin, ProcBased as P
from vmx.interruption import InterruptionType as T
from guest import GUEST_CODE, vm
from events_bench import handler_address, inject, with_idt

VNMI = Pin.NMI_EXITING | Pin.VIRTUAL_NMIS


def test_interrupt_window_open_at_entry_exits_before_any_instruction():
    m = vm("nop\nvmcall", proc=P.INTR_WINDOW_EXITING)
    m.cpu.vmwrite(F.GUEST_RFLAGS, 0x202)
    icount = m.cpu.icount
    ex = m.cpu.vmlaunch()
    assert ex.reason == R.INTERRUPT_WINDOW and ex.instruction_length == 0
    assert m.cpu.vmread(F.GUEST_RIP) == GUEST_CODE and m.cpu.icount == icount


def test_interrupt_window_opens_after_the_sti_shadow():
    """IF = 0 at entry: the window opens once STI has set IF and the instruction after STI has
    completed (blocking by STI)."""
    m = vm("nop\nsti\nnop\nvmcall", proc=P.INTR_WINDOW_EXITING)
    assert m.cpu.vmlaunch().reason == R.INTERRUPT_WINDOW
    assert m.cpu.vmread(F.GUEST_RIP) == GUEST_CODE + 3


@pytest.mark.parametrize("blocking", [1, 2])
def test_blocking_by_sti_or_mov_ss_at_entry_delays_the_window_one_instruction(blocking):
    m = vm("nop\nnop\nvmcall", proc=P.INTR_WINDOW_EXITING)
    m.cpu.vmwrite(F.GUEST_RFLAGS, 0x202)
    m.cpu.vmwrite(F.GUEST_INTERRUPTIBILITY_INFO, blocking)
    assert m.cpu.vmlaunch().reason == R.INTERRUPT_WINDOW
    assert m.cpu.vmread(F.GUEST_RIP) == GUEST_CODE + 1
    assert m.cpu.vmread(F.GUEST_INTERRUPTIBILITY_INFO) == 0


def test_interrupt_window_follows_event_injection():
    """27.7.5: these VM exits follow event injection: the injected interrupt is delivered (its
    interrupt gate clears IF), so the window is closed in the handler."""
    m = vm("nop", proc=P.INTR_WINDOW_EXITING)
    m.cpu.vmwrite(F.GUEST_RFLAGS, 0x202)
    with_idt(m, {0x40: "sti\nnop\nvmcall"})
    inject(m, 0x40, T.EXTERNAL_INTERRUPT)
    assert m.cpu.vmlaunch().reason == R.INTERRUPT_WINDOW
    assert m.cpu.vmread(F.GUEST_RIP) == handler_address(0x40) + 2


def test_interrupt_window_exit_wakes_a_halted_guest():
    """27.7.5: the exit wakes a logical processor entered in the HLT state."""
    m = vm("hlt\nvmcall", proc=P.INTR_WINDOW_EXITING)
    m.cpu.vmwrite(F.GUEST_RFLAGS, 0x202)
    m.cpu.vmwrite(F.GUEST_ACTIVITY_STATE, 1)
    assert m.cpu.vmlaunch().reason == R.INTERRUPT_WINDOW


def test_nmi_window_open_at_entry():
    m = vm("nop\nvmcall", pin=VNMI, proc=P.NMI_WINDOW_EXITING)
    ex = m.cpu.vmlaunch()
    assert ex.reason == R.NMI_WINDOW and m.cpu.vmread(F.GUEST_RIP) == GUEST_CODE


def test_nmi_window_is_not_blocked_by_rflags_if_or_sti():
    m = vm("nop\nvmcall", pin=VNMI, proc=P.NMI_WINDOW_EXITING)
    m.cpu.vmwrite(F.GUEST_RFLAGS, 0x202)
    m.cpu.vmwrite(F.GUEST_INTERRUPTIBILITY_INFO, 1)
    assert m.cpu.vmlaunch().reason == R.NMI_WINDOW
    assert m.cpu.vmread(F.GUEST_RIP) == GUEST_CODE


def test_nmi_window_is_blocked_by_mov_ss():
    m = vm("nop\nvmcall", pin=VNMI, proc=P.NMI_WINDOW_EXITING)
    m.cpu.vmwrite(F.GUEST_INTERRUPTIBILITY_INFO, 2)
    assert m.cpu.vmlaunch().reason == R.NMI_WINDOW
    assert m.cpu.vmread(F.GUEST_RIP) == GUEST_CODE + 1


def iret_to_next(m) -> str:
    ss, cs = m.cpu.vmread(F.GUEST_SS_SELECTOR), m.cpu.vmread(F.GUEST_CS_SELECTOR)
    return (f"mov rdx, rsp\npush {ss}\npush rdx\npushfq\npush {cs}\nlea rax, [rip + 2f]\n"
            "push rax\niretq\n2:\nnop\nvmcall")


def test_virtual_nmi_blocking_ends_with_iret():
    """26.7.1: with virtual NMIs, IRET removes virtual-NMI blocking: the NMI window opens at the
    instruction after IRET."""
    m = vm("nop", pin=VNMI, proc=P.NMI_WINDOW_EXITING)
    src = iret_to_next(m)
    m = vm(src, pin=VNMI, proc=P.NMI_WINDOW_EXITING)
    m.cpu.vmwrite(F.GUEST_INTERRUPTIBILITY_INFO, 8)
    ex = m.cpu.vmlaunch()
    assert ex.reason == R.NMI_WINDOW
    rip = m.cpu.vmread(F.GUEST_RIP)
    assert m.memory.read(rip, 1) == b"\x90"                   # the NOP after IRET
    assert m.cpu.vmread(F.GUEST_INTERRUPTIBILITY_INFO) & 8 == 0


def test_injected_virtual_nmi_sets_virtual_nmi_blocking():
    """26.7.1 / 27.6.1.2: injecting an NMI with virtual NMIs sets virtual-NMI blocking: the NMI
    window stays closed in the handler until its IRET."""
    m = vm("nop", pin=VNMI, proc=P.NMI_WINDOW_EXITING)
    with_idt(m, {2: "nop\nnop\nvmcall"})
    inject(m, 2, T.NMI)
    assert m.cpu.vmlaunch().reason == R.VMCALL
    assert m.cpu.vmread(F.GUEST_INTERRUPTIBILITY_INFO) & 8


def test_nmi_window_has_priority_over_interrupt_window():
    m = vm("nop", pin=VNMI, proc=P.NMI_WINDOW_EXITING | P.INTR_WINDOW_EXITING)
    m.cpu.vmwrite(F.GUEST_RFLAGS, 0x202)
    assert m.cpu.vmlaunch().reason == R.NMI_WINDOW


def test_preemption_timer_has_priority_over_nmi_window():
    m = vm("nop", pin=VNMI | Pin.VMX_PREEMPTION_TIMER, proc=P.NMI_WINDOW_EXITING)
    m.cpu.vmwrite(F.VMX_PREEMPTION_TIMER_VALUE, 0)
    assert m.cpu.vmlaunch().reason == R.PREEMPTION_TIMER


def test_real_nmi_exits_despite_virtual_nmi_blocking():
    """26.7.1: with "virtual NMIs", the guest's NMI blocking is virtual-NMI blocking; a real NMI
    still causes a VM exit ("NMI exiting" is 1): exit reason 0 with an NMI interruption type."""
    m = vm("nop\nvmcall", pin=VNMI)
    m.cpu.vmwrite(F.GUEST_INTERRUPTIBILITY_INFO, 8)
    m.cpu.request_nmi()
    ex = m.cpu.vmlaunch()
    assert ex.reason == R.EXCEPTION_NMI
    assert m.cpu.vmread(F.VM_EXIT_INTR_INFO) == 0x80000202
    assert m.cpu.vmread(F.GUEST_RIP) == GUEST_CODE


def test_real_nmi_is_held_by_blocking_by_nmi_without_virtual_nmis():
    """Without "virtual NMIs" the bit is blocking by NMI: a real NMI waits (the guest runs on)."""
    m = vm("nop\nvmcall", pin=Pin.NMI_EXITING)
    m.cpu.vmwrite(F.GUEST_INTERRUPTIBILITY_INFO, 8)
    m.cpu.request_nmi()
    assert m.cpu.vmlaunch().reason == R.VMCALL
