"""PAUSE-loop exiting (SDM Vol. 3C 26.1.3 "PAUSE", 25.6.13 "Controls for PAUSE-Loop Exiting"),
from real guest code.

26.1.3, CPL = 0: "If the 'PAUSE exiting' VM-execution control is 0 and the 'PAUSE-loop
exiting' VM-execution control is 1 ... The processor determines the amount of time between
this execution of PAUSE and the previous execution of PAUSE at CPL 0. If this amount of time
exceeds the value of the VM-execution control field PLE_Gap, the processor considers this
execution to be the first execution of PAUSE in a loop. (It also does so for the first
execution of PAUSE at CPL 0 after VM entry.) Otherwise, the processor determines the amount of
time since the most recent execution of PAUSE that was considered to be the first in a loop. If
this amount of time exceeds the value of the VM-execution control field PLE_Window, a VM exit
occurs. For purposes of these computations, time is measured based on a counter that runs at
the same rate as the timestamp counter (TSC)." "If the 'PAUSE exiting' VM-execution control is
1, the PAUSE instruction causes a VM exit (the 'PAUSE-loop exiting' VM-execution control is
ignored if CPL = 0 and the 'PAUSE exiting' VM-execution control is 1)." CPL > 0: "The
'PAUSE-loop exiting' VM-execution control is ignored if CPL > 0."

Time here is deterministic: retired instructions plus halted time, so a loop of n instructions
executes PAUSE every n units.
"""
import pytest

from vmx import ExitReason as R, Field as F, ProcBased as P, SecondaryProcBased as S
from guest import GUEST_CODE, user_mode, vm

PLE = S.PAUSE_LOOP_EXITING
LOOP = "xor ebx, ebx\n1: inc ebx\npause\njmp 1b"          # PAUSE every 3 time units
PAUSE_AT = GUEST_CODE + 4                               # xor ebx, ebx (2) + inc ebx (2)


def run(source, gap, window, **controls):
    m = vm(source, secondary=controls.pop("secondary", 0) | PLE, **controls)
    m.cpu.vmwrite(F.PLE_GAP, gap)
    m.cpu.vmwrite(F.PLE_WINDOW, window)
    return m, m.cpu.vmlaunch()


@pytest.mark.parametrize("window,iterations", [(0, 2), (2, 2), (3, 3), (100, 35), (101, 35), (102, 36)])
def test_a_pause_loop_exits_once_the_window_is_exceeded(window, iterations):
    """The first PAUSE starts the loop (0); the k-th after it is 3k later: the exit happens at
    the first k with 3k > PLE_Window, with reason 40, the instruction length, RIP at PAUSE."""
    m, ex = run(LOOP, gap=10, window=window)
    assert ex.reason == R.PAUSE_INSTRUCTION and ex.instruction_length == 2
    assert m.cpu.vmread(F.GUEST_RIP) == PAUSE_AT
    assert m.cpu.rbx == iterations


@pytest.mark.parametrize("gap,exits", [(2, False), (3, True), (1000, True)])
def test_pauses_further_apart_than_the_gap_never_make_a_loop(gap, exits):
    """PAUSEs 3 apart: with PLE_Gap < 3 each PAUSE is the first of a new loop and no VM exit
    occurs; 3 does not exceed a gap of 3, so the loop goes on and exits after the window."""
    m, ex = run("mov ecx, 200\n1: pause\nnop\nloop 1b\nvmcall", gap=gap, window=30)
    assert ex.reason == (R.PAUSE_INSTRUCTION if exits else R.VMCALL)
    if exits:
        assert 200 - m.cpu.rcx == 11                   # the 11th PAUSE is 33 > 30 after the first


def test_the_gap_is_measured_from_the_previous_pause_whatever_ran_between():
    """PAUSEs at 0, 3, 6 (not beyond PLE_Window 6), then one 50 later (beyond PLE_Gap 20): that
    one starts a new loop, so the next PAUSE, 59 after the very first, is only 3 into it."""
    m, ex = run("pause\nnop\nnop\npause\nnop\nnop\npause\n" + "nop\n" * 49 + "pause\nnop\nnop\npause\nvmcall",
                gap=20, window=6)
    assert ex.reason == R.VMCALL
    m, ex = run("pause\nnop\nnop\npause\nnop\nnop\npause\nnop\nnop\npause\nvmcall", gap=20, window=6)
    assert ex.reason == R.PAUSE_INSTRUCTION and m.cpu.vmread(F.GUEST_RIP) == GUEST_CODE + 3 * 4


def test_the_first_pause_after_vm_entry_starts_a_loop():
    """Each VM entry starts afresh: after an exit in the loop and VMRESUME, the next PAUSE is
    the first of a loop, so the guest runs the whole window again."""
    m, ex = run(LOOP, gap=10, window=30)
    assert ex.reason == R.PAUSE_INSTRUCTION and m.cpu.rbx == 12
    m.cpu.vmwrite(F.GUEST_RIP, m.cpu.vmread(F.GUEST_RIP) + 2)     # skip the PAUSE
    assert m.cpu.vmresume().reason == R.PAUSE_INSTRUCTION
    assert m.cpu.rbx == 24


def test_the_tsc_offset_and_scaling_do_not_change_the_measure():
    """The counter runs at the TSC's rate: differences of time, whatever the guest's TSC reads."""
    m, ex = run(LOOP, gap=10, window=100, proc=P.USE_TSC_OFFSETTING, secondary=S.TSC_SCALING)
    assert ex.reason == R.PAUSE_INSTRUCTION and m.cpu.rbx == 35


def test_pause_exiting_takes_precedence():
    """With "PAUSE exiting" 1 the first PAUSE exits, PAUSE-loop exiting is ignored."""
    m, ex = run(LOOP, gap=10, window=1000, proc=P.PAUSE_EXITING)
    assert ex.reason == R.PAUSE_INSTRUCTION and m.cpu.rbx == 1


def test_without_pause_loop_exiting_pause_executes():
    m = vm("mov ecx, 100\n1: pause\nloop 1b\nvmcall")
    m.cpu.vmwrite(F.PLE_WINDOW, 0)
    assert m.cpu.vmlaunch().reason == R.VMCALL


# --- CPL > 0 ----------------------------------------------------------------------------------

def test_pause_loop_exiting_is_ignored_at_cpl_3():
    m = vm("mov ecx, 200\n1: pause\nloop 1b\nvmcall", secondary=PLE)
    user_mode(m)
    m.cpu.vmwrite(F.PLE_GAP, 10)
    m.cpu.vmwrite(F.PLE_WINDOW, 0)
    assert m.cpu.vmlaunch().reason == R.VMCALL


def test_pause_exiting_applies_at_cpl_3():
    m = vm(LOOP, proc=P.PAUSE_EXITING, secondary=PLE)
    user_mode(m)
    ex = m.cpu.vmlaunch()
    assert ex.reason == R.PAUSE_INSTRUCTION and m.cpu.rbx == 1
