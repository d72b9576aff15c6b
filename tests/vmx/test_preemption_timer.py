"""The VMX-preemption timer (SDM Vol. 3C 26.5.1, 27.7.4, 28.3.4), from real guest code. Time is
deterministic here: retired instructions plus halted time, which is also the TSC.

26.5.1: "the VMX-preemption timer counts down (from the value loaded by VM entry) in VMX non-root
operation. When the timer counts down to zero, it stops counting down and a VM exit occurs."
"The timer counts down by 1 every time bit X in the TSC changes due to a TSC increment. The value
of X is in the range 0-31 and can be determined by consulting IA32_VMX_MISC." 27.7.4: "If the
value is zero at VM entry, a VM exit occurs before execution of any instruction following VM
entry ... with its normal priority after any event injection." 28.3.4: with "save
VMX-preemption timer value" the value at the exit is saved (0 for a timer exit).
"""
import pytest

from vmx import ExitControls as Ex, ExitReason as R, Field as F, PinBased as Pin, ProcBased as P
from vmx.interruption import InterruptionType as T
from guest import GUEST_CODE, vm
from events_bench import handler_address, inject, with_idt

SPIN = "2:\njmp 2b"


def rate(m) -> int:
    return m.profile.msr(0x485) & 0x1F


def tsc(m) -> int:
    return m.cpu.time + m.cpu.get_sys("tsc_offset")


def test_value_zero_exits_before_any_instruction():
    m = vm("nop", pin=Pin.VMX_PREEMPTION_TIMER)
    m.cpu.vmwrite(F.VMX_PREEMPTION_TIMER_VALUE, 0)
    icount = m.cpu.icount
    ex = m.cpu.vmlaunch()
    assert ex.reason == R.PREEMPTION_TIMER and ex.instruction_length == 0
    assert m.cpu.icount == icount and m.cpu.vmread(F.GUEST_RIP) == GUEST_CODE


@pytest.mark.parametrize("value", [1, 2, 7, 40])
def test_counts_down_once_per_change_of_tsc_bit_x(value):
    m = vm(SPIN, pin=Pin.VMX_PREEMPTION_TIMER, exit=Ex.SAVE_VMX_PREEMPTION_TIMER)
    m.cpu.vmwrite(F.VMX_PREEMPTION_TIMER_VALUE, value)
    x = rate(m)
    start = tsc(m)
    assert m.cpu.vmlaunch().reason == R.PREEMPTION_TIMER
    assert tsc(m) == ((start >> x) + value) << x                  # the value-th change of bit X
    assert m.cpu.vmread(F.VMX_PREEMPTION_TIMER_VALUE) == 0


def test_value_saved_at_another_exit():
    m = vm("nop\n" * 100 + "cpuid", pin=Pin.VMX_PREEMPTION_TIMER, exit=Ex.SAVE_VMX_PREEMPTION_TIMER)
    m.cpu.vmwrite(F.VMX_PREEMPTION_TIMER_VALUE, 1000)
    x = rate(m)
    start = tsc(m)
    assert m.cpu.vmlaunch().reason == R.CPUID
    ticks = (tsc(m) >> x) - (start >> x)
    assert m.cpu.vmread(F.VMX_PREEMPTION_TIMER_VALUE) == 1000 - ticks
    assert ticks >= 100 >> x


def test_value_not_saved_without_the_exit_control():
    m = vm("nop\n" * 100 + "cpuid", pin=Pin.VMX_PREEMPTION_TIMER)
    m.cpu.vmwrite(F.VMX_PREEMPTION_TIMER_VALUE, 1000)
    m.cpu.vmlaunch()
    assert m.cpu.vmread(F.VMX_PREEMPTION_TIMER_VALUE) == 1000


def test_resuming_with_the_saved_value_continues_the_count():
    """A VMM that resumes with the saved value lets the timer run out over several entries."""
    m = vm("cpuid\n" + SPIN, pin=Pin.VMX_PREEMPTION_TIMER, exit=Ex.SAVE_VMX_PREEMPTION_TIMER)
    m.cpu.vmwrite(F.VMX_PREEMPTION_TIMER_VALUE, 5)
    assert m.cpu.vmlaunch().reason == R.CPUID
    m.cpu.vmwrite(F.GUEST_RIP, m.cpu.vmread(F.GUEST_RIP) + 2)
    assert m.cpu.vmresume().reason == R.PREEMPTION_TIMER


def test_timer_inactive_without_the_pin_control():
    m = vm("nop\n" * 50 + "cpuid")
    m.cpu.vmwrite(F.VMX_PREEMPTION_TIMER_VALUE, 0)
    assert m.cpu.vmlaunch().reason == R.CPUID


def test_zero_value_exit_follows_event_injection():
    """27.7.4: the exit comes after the injected event is delivered (RIP at the handler)."""
    m = vm("nop", pin=Pin.VMX_PREEMPTION_TIMER)
    m.cpu.vmwrite(F.VMX_PREEMPTION_TIMER_VALUE, 0)
    with_idt(m, {6: "vmcall"})
    inject(m, 6, T.HARD_EXCEPTION)
    assert m.cpu.vmlaunch().reason == R.PREEMPTION_TIMER
    assert m.cpu.vmread(F.GUEST_RIP) == handler_address(6)


def test_instruction_exits_still_happen_before_the_deadline():
    m = vm("cpuid", pin=Pin.VMX_PREEMPTION_TIMER)
    m.cpu.vmwrite(F.VMX_PREEMPTION_TIMER_VALUE, 3)
    assert m.cpu.vmlaunch().reason == R.CPUID


def test_deadline_is_disarmed_after_the_exit():
    """The timer belongs to non-root operation: the host's own run is not interrupted."""
    m = vm("nop", pin=Pin.VMX_PREEMPTION_TIMER, proc=P.HLT_EXITING)
    m.cpu.vmwrite(F.VMX_PREEMPTION_TIMER_VALUE, 0)
    m.cpu.vmlaunch()
    assert m.cpu.hook is None
