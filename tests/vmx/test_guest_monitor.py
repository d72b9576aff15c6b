"""The guest monitor (`cpu.vmx.monitor`): a debugger stops the guest between instructions in
VMX non-root operation and continues it; the run and its VM exits are exactly those of an
unmonitored run (time is retired instructions)."""
import vmx

from tests.vmx.guest import vm

PROGRAM = """
    mov ecx, 5
1:  inc eax
    dec ecx
    jnz 1b
    cpuid
    hlt
"""


class Stepper:
    def __init__(self, n):
        self.n = n
        self.seen = []

    def budget(self, cpu):
        return self.n

    def pause(self, cpu):
        assert cpu.vmx.non_root and not cpu.vmx.root
        self.seen.append((cpu.rip, cpu.rax, cpu.icount))


def _run(monitor):
    m = vm(PROGRAM)
    m.cpu.vmx.monitor = monitor
    m.cpu.rax = 0
    ex = m.cpu.vmlaunch()
    return m, ex


def test_single_stepping_pauses_after_every_instruction_and_changes_nothing():
    """With a budget of one instruction the monitor sees every guest instruction boundary
    before the CPUID exit (1 + 3 * 5 instructions retire first), with the guest's registers."""
    plain_m, plain = _run(None)
    stepper = Stepper(1)
    m, ex = _run(stepper)
    assert ex == plain and ex.reason == vmx.ExitReason.CPUID
    assert m.cpu.rax == plain_m.cpu.rax == 5
    assert len(stepper.seen) == 16
    assert [s[1] for s in stepper.seen[1::3]] == [1, 2, 3, 4, 5]
    assert stepper.seen[-1][0] == ex.guest_rip


def test_a_larger_budget_pauses_less_often():
    stepper = Stepper(7)
    _, ex = _run(stepper)
    assert ex.reason == vmx.ExitReason.CPUID
    assert len(stepper.seen) == 2          # after 7 and 14 of the 16 instructions
