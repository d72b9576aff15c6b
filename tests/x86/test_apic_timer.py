"""SDM Vol. 3A 11.5.4 "APIC Timer", 11.8.3 "Interrupt, Task, and Processor Priority", 11.8.5
"Signaling Interrupt Servicing Completion" (EOI).

11.5.4: "The initial-count register ... copied into the current-count register, which counts down
... When the timer reaches zero, a timer interrupt is generated. In one-shot mode the timer stays at
zero until reprogrammed; in periodic mode the current-count register is reloaded from the
initial-count register and the count-down repeats." In this model time is retired instructions
plus halted time, so every tick is exact. 11.8.3.1: "the processor will service only those
interrupts that have a priority higher than that specified in the PPR" (class = vector[7:4]).
"""
import pytest

from x86_guest import CODE, install_logging_handler, log, long_machine, arm_timer

HANDLER = 0x120000
SPIN = "sti\nspin: jmp spin"


def test_one_shot():
    m = long_machine(SPIN)
    install_logging_handler(m, 0x40, HANDLER)
    arm_timer(m, 50)
    m.cpu.run(max_instructions=1000)
    entries = log(m)
    assert len(entries) == 1
    assert entries[0][1] == 50


@pytest.mark.parametrize("period", [37, 100])
def test_periodic_exact_ticks(period):
    m = long_machine(SPIN)
    install_logging_handler(m, 0x40, HANDLER)
    arm_timer(m, period, periodic=True)
    m.cpu.run(max_instructions=10 * period + 20)
    times = [e[1] for e in log(m)]
    assert times == [period * (k + 1) for k in range(len(times))]
    assert len(times) == 10


def test_hlt_woken_by_timer_at_deadline():
    """HLT with IF = 1 waits; the timer interrupt wakes it at exactly its deadline."""
    m = long_machine("sti\nhlt\nmov ebx, 7\ncli\nhlt")
    install_logging_handler(m, 0x40, HANDLER)
    arm_timer(m, 10_000)
    stop = m.cpu.run(max_instructions=1000)
    assert stop.reason == "hlt"
    (vec, t, rip), = log(m)
    assert (vec, t, rip) == (0x40, 10_000, CODE + 2)       # the return address follows HLT
    assert m.cpu.rbx == 7


def test_hlt_waits_again_after_an_interrupt():
    """After one interrupt has been serviced (EOI written), a second HLT waits for the next tick."""
    m = long_machine("sti\nhlt\nhlt\nmov ebx, 7\ncli\nhlt")
    install_logging_handler(m, 0x40, HANDLER)
    arm_timer(m, 1000, periodic=True)
    m.cpu.run(max_instructions=1000)
    times = [e[1] for e in log(m)]
    assert times == [1000, 2000]
    assert m.cpu.rbx == 7


def test_masked_lvt():
    m = long_machine(SPIN)
    install_logging_handler(m, 0x40, HANDLER)
    m.apic.write_reg(0x3E0, 0xB)
    m.apic.write_reg(0x320, 0x40 | (1 << 16))        # masked
    m.apic.write_reg(0x380, 10)
    m.cpu.run(max_instructions=200)
    assert log(m) == []


def test_tpr_masks_lower_classes():
    """CR8 = 5: class 4 (vector 0x40) waits, class 6 (0x60) is delivered; lowering CR8 releases 0x40."""
    m = long_machine("sti\nnop\nnop\nxor eax, eax\nmov cr8, rax\nnop\nnop\ncli\nhlt")
    install_logging_handler(m, 0x40, HANDLER)
    install_logging_handler(m, 0x60, HANDLER + 0x100)
    m.cpu.cr8 = 5
    m.raise_interrupt(0x40)
    m.raise_interrupt(0x60)
    m.cpu.run(max_instructions=300)
    entries = log(m)
    assert [e[0] for e in entries] == [0x60, 0x40]
    assert entries[1][2] == CODE + 1 + 1 + 1 + 2 + 4         # right after MOV CR8


def test_isr_blocks_same_class_until_eoi():
    """11.8.3.1: PPR includes the in-service class: 0x41 waits until the 0x40 handler's EOI."""
    m = long_machine("sti\nnop\nnop\nnop\ncli\nhlt")
    install_logging_handler(m, 0x40, HANDLER, extra="mov dword ptr [0x7500], 1")
    install_logging_handler(m, 0x41, HANDLER + 0x100)
    m.raise_interrupt(0x40)
    m.cpu.run(max_instructions=5)                    # inside the 0x40 handler
    m.raise_interrupt(0x41)
    m.cpu.run(max_instructions=300)
    assert [e[0] for e in log(m)] == [0x40, 0x41]
    assert m.apic.isr == 0


def test_hlt_with_only_masked_interrupt_keeps_waiting():
    """A pending interrupt below the TPR does not wake HLT (11.8.3.1): the timer does, later."""
    m = long_machine("sti\nhlt\ncli\nhlt")
    install_logging_handler(m, 0x30, HANDLER)
    install_logging_handler(m, 0x60, HANDLER + 0x100)
    m.cpu.cr8 = 4
    m.raise_interrupt(0x30)
    arm_timer(m, 500, vector=0x60)
    m.cpu.run(max_instructions=300)
    assert [(e[0], e[1]) for e in log(m)] == [(0x60, 500)]


def test_self_ipi_x2apic():
    """x2APIC SELF IPI MSR (83FH) requests the vector on this processor (11.12.11)."""
    m = long_machine("mov ecx, 0x1b\nrdmsr\nor eax, 0xc00\nwrmsr\n"
                     "mov ecx, 0x83f\nmov eax, 0x50\nxor edx, edx\nwrmsr\nsti\nnop\ncli\nhlt")
    install_logging_handler(m, 0x50, HANDLER)
    m.cpu.run(max_instructions=300)
    assert [e[0] for e in log(m)] == [0x50]
