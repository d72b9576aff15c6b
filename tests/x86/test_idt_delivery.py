"""SDM Vol. 3A 6.12 "Exception and Interrupt Handling" and 6.14 "Exception and Interrupt Handling
in 64-Bit Mode".

6.12.1: "If the handler procedure is going to be executed at a numerically lower privilege level,
a stack switch occurs ... the processor pushes SS, ESP, EFLAGS, CS, EIP and an error code onto
the new stack". 6.12.1.3: through an interrupt gate "the processor clears the IF flag"; through a
trap gate it does not. 6.14.2: "In 64-bit mode ... the new stack pointer is aligned on a 16-byte
boundary" and "SS:RSP is pushed unconditionally". 6.14.5: the IST field selects a stack from the TSS.
6.12.1.1: "the processor checks the DPL of the interrupt or trap gate ... for INT n, INT3 and INTO:
if CPL > gate DPL, a general-protection exception (#GP) is generated". 6.13 (Figure 6-6): the error
code of a fault referencing an IDT entry has IDT = 1 (bit 1), the index in bits 15:3, and EXT (bit 0)
set when the event was external to the program (an interrupt or an earlier exception).
"""
import pytest

from x86_guest import (CODE, IDT, K_CODE32, K_CODE64, KSTACK, P, REC, RW, STUBS, TSS, U_CODE32,
                       U_CODE64, U_DATA, USTACK, gate, install_gdt_tss, long_machine, paging_machine,
                       protected_machine, rec, run, write_gate)

MODES = [64, 32]


def machine(bits, src, user=False):
    if not user:
        return (long_machine if bits == 64 else protected_machine)(src)
    m, pt = paging_machine("4level" if bits == 64 else "32bit", "r", user=True, src=src)
    return m


@pytest.mark.parametrize("bits", MODES)
def test_fault_at_cpl0_frame(bits):
    """A fault at CPL0: no stack switch; the pushed RIP is that of the faulting instruction.
    64-bit mode pushes SS:RSP and aligns the frame; 32-bit mode pushes EFLAGS, CS, EIP only."""
    m = machine(bits, "nop\nud2")
    m.cpu.rsp = KSTACK - 8
    r = run(m, bits)
    assert r["vector"] == 6 and r["error"] is None
    assert r["rip"] == CODE + 1
    if bits == 64:
        assert r["frame"] == KSTACK - 16 - 40        # aligned down from KSTACK-8, then 5 pushes
        assert (r["cs"], r["rsp"], r["ss"]) == (K_CODE64, KSTACK - 8, 0x10)
    else:
        assert r["frame"] == KSTACK - 8 - 12
        assert r["cs"] == K_CODE32


@pytest.mark.parametrize("bits", MODES)
def test_privilege_change_uses_tss_stack(bits):
    """6.12.1 / 6.14.2: from CPL3 the handler runs at CPL0 on the stack named by TSS.(R|E)SP0,
    with the user SS:(R|E)SP, (R|E)FLAGS, CS, (R|E)IP and the error code pushed there."""
    m = machine(bits, "mov eax, [0]\nud2", user=True)     # page 0 is supervisor: #PF(U=1)
    r = run(m, bits)
    assert (r["vector"], r["error"], r["cr2"]) == (14, 5, 0)
    n = 8 if bits == 64 else 4
    assert r["frame"] == KSTACK - 5 * n              # after the error code is popped
    assert r["rsp"] == USTACK and r["ss"] == U_DATA | 3
    assert r["cs"] == (U_CODE64 if bits == 64 else U_CODE32) | 3
    assert r["rip"] == CODE
    assert m.cpu.cpl == 0
    if bits == 64:
        assert m.cpu.segment("ss").selector == 0      # SS is loaded with a null selector (6.14.4)


def test_ist_stack():
    """6.14.5: a nonzero IST field switches to TSS.ISTn even without a privilege change."""
    m = long_machine("ud2")
    install_gdt_tss(m, 64, ist={3: 0x60008})
    m.cpu.set_segment("cs", K_CODE64, 0, 0xFFFFFFFF, 0xA09B)
    write_gate(m, 64, 6, gate(64, STUBS + 32 * 6, ist=3))
    r = run(m)
    assert r["vector"] == 6
    assert r["frame"] == 0x60000 - 40          # aligned down to 16 bytes, 5 quadwords
    assert r["rsp"] == KSTACK


@pytest.mark.parametrize("bits", MODES)
@pytest.mark.parametrize("typ,if_after", [(0xE, 0), (0xF, 1)])
def test_interrupt_vs_trap_gate(bits, typ, if_after):
    """6.12.1.3: an interrupt gate clears IF, a trap gate leaves it; both clear TF, NT, RF, VM."""
    handler = 0x120000
    ax, sp = ("rax", "rsp") if bits == 64 else ("eax", "esp")
    from x86.asm import assemble
    m = machine(bits, "sti\nnop\nud2")
    m.memory.write(handler, assemble(f"pushf\npop {ax}\nmov [{REC + 0x50}], {ax}\ncli\nhlt",
                                     bits=bits, address=handler))
    write_gate(m, bits, 6, gate(bits, handler, typ=typ))
    stop = m.cpu.run(max_instructions=100)
    assert stop.reason == "hlt"
    fl = m.memory.read_u32(REC + 0x50)
    assert (fl >> 9) & 1 == if_after


@pytest.mark.parametrize("bits", MODES)
def test_idt_limit_int_n(bits):
    """6.12.1.1 / 6.13: INT n whose gate lies beyond the IDT limit: #GP(n*8+2), EXT = 0."""
    m = machine(bits, "int 0x40\nud2")
    size = 16 if bits == 64 else 8
    m.cpu.idtr = (IDT, 0x40 * size + size - 2)          # one byte short of the whole gate
    r = run(m, bits)
    assert (r["vector"], r["error"], r["rip"]) == (13, 0x40 * 8 + 2, CODE)


@pytest.mark.parametrize("bits", MODES)
def test_idt_limit_external_interrupt(bits):
    """The same for an external interrupt: EXT = 1, so #GP(n*8+3)."""
    m = machine(bits, "sti\nnop\nnop\nud2")
    size = 16 if bits == 64 else 8
    m.cpu.idtr = (IDT, 0x40 * size - 1)
    m.raise_interrupt(0x40)
    r = run(m, bits)
    assert (r["vector"], r["error"]) == (13, 0x40 * 8 + 3)


@pytest.mark.parametrize("bits", MODES)
@pytest.mark.parametrize("src,ext", [("int 0x40", 0), ("ud2", 1)])
def test_not_present_gate(bits, src, ext):
    """6.12.1.2 / Table 6-1: a gate with P = 0 raises #NP with the IDT error code."""
    m = machine(bits, src + "\nud2")
    vec = 0x40 if "int" in src else 6
    write_gate(m, bits, vec, gate(bits, STUBS, present=0))
    r = run(m, bits)
    assert (r["vector"], r["error"], r["rip"]) == (11, vec * 8 + 2 + ext, CODE)


@pytest.mark.parametrize("bits", MODES)
@pytest.mark.parametrize("dpl,delivered", [(0, False), (3, True)])
def test_int_n_gate_dpl(bits, dpl, delivered):
    """6.12.1.1: INT n from CPL3 through a gate with DPL < 3 is #GP(n*8+2)."""
    m = machine(bits, "int 0x40\nud2", user=True)
    write_gate(m, bits, 0x40, gate(bits, STUBS + 32 * 31, dpl=dpl))    # stub 31: no error code
    r = run(m, bits)
    if delivered:
        assert (r["vector"], r["error"]) == (31, None)
        assert r["rip"] == CODE + 2                   # INT n is a trap: the next instruction
    else:
        assert (r["vector"], r["error"], r["rip"]) == (13, 0x40 * 8 + 2, CODE)


@pytest.mark.parametrize("bits", MODES)
def test_gate_dpl_ignored_for_exceptions(bits):
    """6.12.1.1: the gate DPL check does not apply to processor-generated exceptions."""
    m = machine(bits, "ud2", user=True)
    write_gate(m, bits, 6, gate(bits, STUBS + 32 * 6, dpl=0))
    r = run(m, bits)
    assert r["vector"] == 6


def test_long_mode_rejects_32bit_gate_type():
    """6.14.1: in IA-32e mode only 64-bit interrupt and trap gates (type 0EH/0FH) are valid;
    anything else is #GP(vector*8+2+EXT)."""
    m = long_machine("ud2")
    write_gate(m, 64, 6, gate(64, STUBS, typ=0x6))
    r = run(m)
    assert (r["vector"], r["error"]) == (13, 6 * 8 + 3)


@pytest.mark.parametrize("bits", MODES)
def test_iret_returns(bits):
    """IRET pops the frame the delivery pushed and resumes after INT n."""
    from x86.asm import assemble
    m = machine(bits, "int 0x40\nmov ebx, 0x1234\nud2")
    handler = 0x120000
    m.memory.write(handler, assemble("mov ecx, 0x77\n" + ("iretq" if bits == 64 else "iretd"),
                                     bits=bits, address=handler))
    write_gate(m, bits, 0x40, gate(bits, handler))
    sp0 = m.cpu.rsp
    r = run(m, bits)
    assert r["vector"] == 6 and m.cpu.rbx == 0x1234 and m.cpu.rcx == 0x77


@pytest.mark.parametrize("bits", MODES)
def test_fault_storm_is_bounded(bits):
    """A handler whose first instruction faults again retires nothing, forever (hardware would
    spin); the run must still end, as a runaway guest (API.md: x86.InstructionLimit), instead of
    spinning inside the interpreter. 32-bit: DS is null, so each stub's first store is #GP, and
    ESP = 0 puts the frames in open bus above RAM. 64-bit: the #UD handler is UD2 on an IST stack."""
    import x86
    from x86.asm import assemble
    if bits == 32:
        m = machine(32, "xor eax, eax\nmov ds, eax\nud2")
        m.cpu.rsp = 0
    else:
        m = machine(64, "ud2")
        install_gdt_tss(m, 64, ist={1: 0x60000})
        m.cpu.set_segment("cs", K_CODE64, 0, 0xFFFFFFFF, 0xA09B)
        m.memory.write(0x120000, assemble("ud2"))
        write_gate(m, 64, 6, gate(64, 0x120000, ist=1))
    with pytest.raises(x86.InstructionLimit):
        m.cpu.run(max_instructions=1000)
