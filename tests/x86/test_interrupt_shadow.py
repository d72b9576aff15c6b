"""SDM Vol. 3A 6.8.3 "Masking Exceptions and Interrupts When Switching Stacks" and Vol. 2B STI.

STI: "If IF = 0, maskable hardware interrupts remain inhibited on the instruction boundary
following an execution of STI." 6.8.3: "the processor inhibits interrupts ... after a MOV to SS
... until the end of the next instruction". So an interrupt pending across STI or MOV SS is taken
after the instruction that follows it, not before.
"""
import pytest

from x86_guest import CODE, install_logging_handler, log, long_machine, arm_timer

HANDLER = 0x120000


def test_sti_shadow():
    m = long_machine("nop\nsti\nmov ecx, 1\nmov edx, 2\nnop\ncli\nhlt")
    install_logging_handler(m, 0x40, HANDLER)
    m.cpu.rcx = m.cpu.rdx = 0
    m.raise_interrupt(0x40)                          # pending from the start, IF = 0
    stop = m.cpu.run(max_instructions=200)
    assert stop.reason == "hlt"
    (vec, t, rip), = log(m)
    assert vec == 0x40
    assert rip == CODE + 1 + 1 + 5                   # after MOV ECX, before MOV EDX
    assert t == 3                                    # nop, sti, mov ecx retired


def test_sti_with_if_already_set_has_no_shadow():
    """The inhibition applies only when STI changes IF from 0 to 1."""
    m = long_machine("nop\nsti\nmov ecx, 1\nmov edx, 2\ncli\nhlt")
    install_logging_handler(m, 0x40, HANDLER)
    m.cpu.rflags = m.cpu.rflags | 0x200
    arm_timer(m, 2)                                  # due once NOP and STI have retired
    m.cpu.run(max_instructions=200)
    (vec, t, rip), = log(m)
    assert rip == CODE + 2


@pytest.mark.parametrize("shadow", [True, False])
def test_mov_ss_shadow(shadow):
    """The timer interrupt falls due right after MOV SS retires; it is taken one instruction late."""
    body = "mov eax, ss\nmov ss, eax" if shadow else "mov eax, ss\nnop"
    m = long_machine(f"sti\n{body}\nmov ecx, 1\nmov edx, 2\ncli\nhlt")
    install_logging_handler(m, 0x40, HANDLER)
    m.cpu.rcx = 0
    arm_timer(m, 3)                                  # STI, MOV EAX, MOV SS/NOP retired
    stop = m.cpu.run(max_instructions=200)
    assert stop.reason == "hlt"
    (vec, t, rip), = log(m)
    after_body = CODE + 1 + 2 + (2 if shadow else 1)
    assert rip == (after_body + 5 if shadow else after_body)


def test_nmi_not_blocked_by_if():
    """6.8.1: NMIs are not masked by IF; they are taken at the next instruction boundary."""
    m = long_machine("nop\nnop\ncli\nhlt")
    install_logging_handler(m, 2, HANDLER, eoi=False)
    m.raise_nmi()
    m.cpu.run(max_instructions=200)
    (vec, t, rip), = log(m)
    assert (vec, rip) == (2, CODE)


def test_nmi_blocked_until_iret():
    """6.7.1: while an NMI handler runs, further NMIs are held until the next IRET."""
    m = long_machine("nop\nnop\nnop\ncli\nhlt")
    install_logging_handler(m, 2, HANDLER, eoi=False)
    m.raise_nmi()
    m.cpu.run(max_instructions=3)                    # inside the handler
    m.raise_nmi()
    m.cpu.run(max_instructions=200)
    assert [e[0] for e in log(m)] == [2, 2]
