"""SDM Vol. 3A 20.1.4 "Interrupt and Exception Handling" (real-address mode).

"the processor ... (1) pushes the current values of the CS and EIP registers onto the stack
(FLAGS first); (2) clears the IF flag ... also clears TF and AC; (3) loads the segment selector and
offset of the handler from the interrupt vector table: each entry is 4 bytes, offset then segment,
at IDTR.base + vector * 4." Faults (#DE) push the address of the faulting instruction; INT n pushes
the address of the next one. IRET pops IP, CS and FLAGS.
"""
import pytest

import x86
from x86.asm import assemble

ENTRY = 0x7C00
HANDLER_SEG, HANDLER_OFF = 0x0800, 0x0010        # physical 0x8010


def machine(src, vector, handler_src="mov bp, sp\nhlt"):
    m = x86.Machine(memory_size=4 << 20)
    m.load(assemble(src, bits=16, address=ENTRY), address=ENTRY, mode="real")
    m.memory.write(HANDLER_SEG * 16 + HANDLER_OFF,
                   assemble(handler_src, bits=16, address=HANDLER_OFF))
    m.memory.write_u32(vector * 4, (HANDLER_SEG << 16) | HANDLER_OFF)
    return m


@pytest.mark.parametrize("src,vector,ret_ip", [
    ("int 0x21", 0x21, ENTRY + 2),                  # INT n: the next instruction
    ("int3", 3, ENTRY + 1),
    ("xor cx, cx\ndiv cx", 0, ENTRY + 2),            # #DE: a fault, the DIV itself
    ("ud2", 6, ENTRY),
])
def test_ivt_delivery(src, vector, ret_ip):
    m = machine("sti\n" + src + "\nhlt", vector)
    ret_ip += 1                                      # after the STI
    m.cpu.rflags = m.cpu.rflags | (1 << 18)          # AC, cleared by delivery
    stop = m.cpu.run(max_instructions=50)
    assert stop.reason == "hlt"
    cpu = m.cpu
    assert cpu.segment("cs").selector == HANDLER_SEG and cpu.segment("cs").base == HANDLER_SEG * 16
    sp = cpu.rbp & 0xFFFF
    assert sp == 0x7C00 - 6
    ip, cs, fl = (m.memory.read_u16(sp + k) for k in (0, 2, 4))
    assert (ip, cs) == (ret_ip, 0)
    assert fl & (1 << 9)                              # the pushed FLAGS still hold IF
    assert not cpu.rflags & ((1 << 9) | (1 << 8) | (1 << 18))     # IF, TF, AC cleared


def test_iret_round_trip():
    m = machine("int 0x30\nmov bx, 0x55\nhlt", 0x30, handler_src="mov cx, 0x66\niret")
    stop = m.cpu.run(max_instructions=50)
    assert stop.reason == "hlt"
    assert (m.cpu.rbx & 0xFFFF, m.cpu.rcx & 0xFFFF, m.cpu.rsp & 0xFFFF) == (0x55, 0x66, 0x7C00)


def test_relocated_ivt():
    """LIDT moves the IVT in real mode too (20.1.4: "the IDTR ... base and limit")."""
    m = machine("lidt [table]\nint 0x21\nhlt\ntable: .word 0x3ff\n.long 0x9000", 0x21)
    m.memory.write_u32(0x9000 + 0x21 * 4, (HANDLER_SEG << 16) | HANDLER_OFF)
    m.memory.write_u32(0x21 * 4, 0)                  # the old table's entry would go to 0:0
    stop = m.cpu.run(max_instructions=50)
    assert stop.reason == "hlt" and m.cpu.segment("cs").selector == HANDLER_SEG


def test_real_mode_segment_wrap_stack():
    """Pushes wrap within the 64-KByte stack segment (SP is 16 bits)."""
    m = machine("mov sp, 2\nint 0x21", 0x21)
    stop = m.cpu.run(max_instructions=50)
    assert stop.reason == "hlt"
    assert m.cpu.rbp & 0xFFFF == 0xFFFC
