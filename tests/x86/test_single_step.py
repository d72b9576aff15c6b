"""SDM Vol. 3A 17.3.1.4 "Single-Step Exception Condition".

"The processor generates a single-step debug exception if (while an instruction is being executed)
it detects that the TF flag in the EFLAGS register is set. The exception is a trap-class exception,
because the exception is generated after the instruction is executed. ... the BS flag in DR6 is
set." The processor clears TF before calling the handler (6.12.1.3) and IRET restores it.
"""
from x86_guest import CODE, LOG, REC, gate, long_machine, write_gate
from x86.asm import assemble

HANDLER = 0x120000


def machine(src):
    m = long_machine(src)
    h = f"""
        push rax; push rcx
        mov ecx, [{LOG - 8}]
        mov rax, [rsp + 16]
        mov [{LOG} + rcx * 8], rax
        mov rax, dr6
        mov [{REC + 0x60}], rax
        xor eax, eax
        mov dr6, rax
        pushfq
        pop rax
        mov [{REC + 0x68}], rax
        inc dword ptr [{LOG - 8}]
        pop rcx; pop rax
        iretq
    """
    m.memory.write(HANDLER, assemble(h, address=HANDLER))
    write_gate(m, 64, 1, gate(64, HANDLER))
    return m


def test_trap_after_each_instruction():
    m = machine("nop\nmov eax, 1\nadd eax, 2\nnop\nud2")
    m.cpu.rflags = m.cpu.rflags | 0x100
    stop = m.cpu.run(max_instructions=500)
    assert stop.reason == "hlt"                      # the #UD stub
    n = m.memory.read_u32(LOG - 8)
    rips = [m.memory.read_u64(LOG + 8 * i) for i in range(n)]
    assert rips == [CODE + 1, CODE + 6, CODE + 9, CODE + 10]    # each the next instruction
    assert m.memory.read_u64(REC + 0x60) & (1 << 14)             # DR6.BS
    assert not m.memory.read_u64(REC + 0x68) & 0x100              # TF clear in the handler
    assert m.cpu.rax == 3


def test_popf_setting_tf_traps_after_next_instruction():
    """17.3.1.4: when POPF sets TF, the trap follows the instruction after POPF."""
    m = machine("pushfq\nor qword ptr [rsp], 0x100\npopfq\nnop\nnop\nud2")
    m.cpu.run(max_instructions=500)
    n = m.memory.read_u32(LOG - 8)
    rips = [m.memory.read_u64(LOG + 8 * i) for i in range(n)]
    assert rips[0] == CODE + 1 + 8 + 1 + 1            # after the first NOP
    assert len(rips) == 2


def test_int_n_clears_tf_no_trap_in_handler():
    """TF is cleared by the delivery, so the handler itself is not single-stepped."""
    m = machine("nop\nud2")
    m.cpu.rflags = m.cpu.rflags | 0x100
    m.cpu.run(max_instructions=500)
    assert m.memory.read_u32(LOG - 8) == 1
