"""Task switches in VMX non-root operation (SDM Vol. 3C 26.1.2, 26.4.2; exit information 28.2.1
Table 28-2, 28.2.4, 28.2.5; guest RIP 28.3.3), from real guest code in 32-bit protected mode.

26.1.2: "Task switch. Task switches are not allowed in VMX non-root operation. Any attempt to
effect a task switch in VMX non-root operation causes a VM exit." 26.4.2: checks 1-4 (the task
gate's P bit and privilege, the new TSS selector, its descriptor: type, P bit, S bit, limit) are
made first, "possibly resulting in a fault ... Only if checks 1-4 all pass (do not generate
faults) might a VM exit occur."

Table 28-2: bits 15:0 "Selector of task-state segment (TSS) to which the guest attempted to
switch"; bits 31:30 "Source of task switch initiation: 0: CALL instruction, 1: IRET instruction,
2: JMP instruction, 3: Task gate in IDT". 28.2.5: the instruction length is saved "for VM exits
due to attempts to effect a task switch via instruction execution. These are VM exits that
produce an exit reason indicating task switch and either of the following: an exit
qualification indicating execution of CALL, IRET, or JMP instruction; an exit qualification
indicating a task gate in the IDT and an IDT-vectoring information field indicating that the
task gate was encountered during delivery of a software interrupt, privileged software
exception, or software exception." 26.4.2: "If an attempt at a task switch through a task gate
in the IDT causes a VM exit due to the task switch, information about the event whose delivery
accessed the task gate is recorded in the IDT-vectoring fields". 28.3.3: the RIP saved
references the CALL, IRET, JMP, INT n, INT3 or INTO that caused the switch; for a task gate met
for another reason, the return address the old TSS would have received.
"""
import pytest

import x86
from vmx import ExitReason as R, Field as F, PinBased as Pin
from vmx.interruption import InterruptionType as T
from vmx.qualification import TaskSwitchSource as Src
from x86.asm import assemble
from guest import GUEST_CODE, vm
from guest32 import GDT, TSS0, segment, task_gate, tss, vm32

GP, NP, TS = 13, 11, 10


def exits_to(ex, selector, source):
    q = ex.qualification
    return ex.reason == R.TASK_SWITCH and (q.selector, q.source) == (selector, source) \
        and int(q) == selector | int(source) << 30


def rip(m):
    return m.cpu.vmread(F.GUEST_RIP)


# --- CALL, JMP, IRET -----------------------------------------------------------------------------

def test_jmp_to_a_tss_exits():
    m = vm32("jmp 0x20:0x1234")
    ex = m.cpu.vmlaunch()
    assert exits_to(ex, 0x20, Src.JMP) and ex.instruction_length == 7
    assert rip(m) == GUEST_CODE and not ex.idt_vectoring_info.valid


def test_call_through_a_task_gate_exits_naming_the_tss():
    """The qualification names the TSS the gate selects (0x20), not the gate (0x28)."""
    m = vm32("nop\ncall 0x28:0")
    ex = m.cpu.vmlaunch()
    assert exits_to(ex, 0x20, Src.CALL) and ex.instruction_length == 7 and rip(m) == GUEST_CODE + 1
    assert m.cpu.vmread(F.GUEST_RSP) == 0x180000          # nothing was pushed


def test_jmp_through_a_memory_far_pointer():
    m = vm32("mov eax, 0x300000\njmp fword ptr [eax]")
    m.memory.write(0x300000, (0).to_bytes(4, "little") + (0x28).to_bytes(2, "little"))
    ex = m.cpu.vmlaunch()
    assert exits_to(ex, 0x20, Src.JMP) and ex.instruction_length == 2


def test_iret_with_nt_returns_to_the_previous_task():
    """IRET with EFLAGS.NT = 1 switches to the task in the current TSS's previous-task link,
    which must be a busy TSS."""
    m = vm32("pushfd\nor dword ptr [esp], 0x4000\npopfd\niretd")
    m.memory.write_u16(TSS0, 0x30)                        # previous-task link
    ex = m.cpu.vmlaunch()
    assert exits_to(ex, 0x30, Src.IRET) and ex.instruction_length == 1
    assert rip(m) == GUEST_CODE + 9 and m.cpu.vmread(F.GUEST_RFLAGS) & 0x4000


def test_iret_with_nt_leaves_nmi_blocking_as_the_exit_does_not_execute_it():
    m = vm32("pushfd\nor dword ptr [esp], 0x4000\npopfd\niretd")
    m.memory.write_u16(TSS0, 0x30)
    m.cpu.vmwrite(F.GUEST_INTERRUPTIBILITY_INFO, 8)
    assert m.cpu.vmlaunch().reason == R.TASK_SWITCH
    assert m.cpu.vmread(F.GUEST_INTERRUPTIBILITY_INFO) & 8


# --- task gates in the IDT -----------------------------------------------------------------------

@pytest.mark.parametrize("source,vector,kind,length", [
    ("int 0x40", 0x40, T.SOFT_INTERRUPT, 2),
    ("int3", 3, T.SOFT_EXCEPTION, 1),
])
def test_a_software_interrupt_through_a_task_gate(source, vector, kind, length):
    """Source 3; the IDT-vectoring information names the INT n / INT3; the instruction length
    is its length; RIP references the instruction (28.3.3)."""
    m = vm32("nop\n" + source, idt={vector: task_gate(0x20, dpl=3)})
    ex = m.cpu.vmlaunch()
    assert exits_to(ex, 0x20, Src.TASK_GATE)
    vec = ex.idt_vectoring_info
    assert vec.valid and (vec.vector, vec.type, vec.error_code_valid) == (vector, kind, False)
    assert ex.instruction_length == length and rip(m) == GUEST_CODE + 1


def test_a_fault_through_a_task_gate_reports_its_error_code_and_return_address():
    """#GP(0) from a null-selector load delivered through a task gate: IDT-vectoring
    information with the error code; RIP is the faulting instruction (the return address)."""
    m = vm32("xor eax, eax\nmov ss, ax", idt={GP: task_gate(0x20)})
    ex = m.cpu.vmlaunch()
    assert exits_to(ex, 0x20, Src.TASK_GATE)
    vec = ex.idt_vectoring_info
    assert (vec.vector, vec.type, vec.error_code_valid) == (GP, T.HARD_EXCEPTION, True)
    assert ex.idt_vectoring_error_code == 0 and rip(m) == GUEST_CODE + 2


def test_an_external_interrupt_through_a_task_gate():
    m = vm32("sti\n1: jmp 1b", idt={0x41: task_gate(0x20)})
    m.raise_interrupt(0x41)
    ex = m.cpu.vmlaunch()
    assert exits_to(ex, 0x20, Src.TASK_GATE)
    assert (ex.idt_vectoring_info.vector, ex.idt_vectoring_info.type) == (0x41, T.EXTERNAL_INTERRUPT)


def test_an_injected_event_through_a_task_gate():
    """An event injected by VM entry meets the task gate: the exit records it as IDT vectoring,
    with the VM-entry instruction length for a software interrupt (28.2.5)."""
    m = vm32("nop", idt={0x42: task_gate(0x20)})
    m.cpu.vmwrite(F.VM_ENTRY_INTR_INFO_FIELD, 0x42 | (T.SOFT_INTERRUPT << 8) | (1 << 31))
    m.cpu.vmwrite(F.VM_ENTRY_INSTRUCTION_LEN, 2)
    ex = m.cpu.vmlaunch()
    assert exits_to(ex, 0x20, Src.TASK_GATE) and ex.instruction_length == 2
    assert ex.idt_vectoring_info.vector == 0x42 and rip(m) == GUEST_CODE


# --- the checks made before the exit (26.4.2) -----------------------------------------------------

@pytest.mark.parametrize("source,gdt,vector,error", [
    ("jmp 0x30:0", {}, GP, 0x30),                                   # a busy TSS
    ("jmp 0x38:0", {0x38: tss(0x52000, limit=0x20)}, TS, 0x38),     # limit below 67H
    ("jmp 0x38:0", {0x38: tss(0x52000, present=False)}, NP, 0x38),  # TSS not present
    ("call 0x38:0", {0x38: task_gate(0x20, present=False)}, NP, 0x38),   # gate not present
    ("call 0x38:0", {0x38: task_gate(0x30)}, GP, 0x30),             # gate to a busy TSS
    ("call 0x38:0", {0x38: task_gate(0x3C)}, GP, 0x3C),             # TSS selector names the LDT
    ("call 0x38:0", {0x38: task_gate(0x10)}, GP, 0x10),             # not a TSS
    ("jmp 0x3B:0", {0x38: tss(0x52000, dpl=2)}, GP, 0x38),          # TSS DPL 2 < RPL 3
])
def test_faults_before_the_switch_come_first(source, gdt, vector, error):
    m = vm32(source, gdt=gdt)
    m.cpu.vmwrite(F.EXCEPTION_BITMAP, 1 << vector)
    ex = m.cpu.vmlaunch()
    assert ex.reason == R.EXCEPTION_NMI and ex.interruption_info.vector == vector
    assert ex.interruption_error_code == error and rip(m) == GUEST_CODE


@pytest.mark.parametrize("source,vector,kind,ext", [("int 0x40", 0x40, T.SOFT_INTERRUPT, 0),
                                                    ("ud2", 6, T.HARD_EXCEPTION, 1)])
def test_a_fault_in_the_checks_of_an_idt_task_gate_records_the_event(source, vector, kind, ext):
    """26.4.2: "If an attempt at a task switch through a task gate in the IDT causes an
    exception (before generating a VM exit due to the task switch) and that exception causes a
    VM exit, information about the event whose delivery that accessed the task gate is recorded
    in the IDT-vectoring information fields". Here the gate names a busy TSS: #GP(TSS selector,
    with EXT for an event external to the program)."""
    m = vm32(source, idt={vector: task_gate(0x30, dpl=3)})
    m.cpu.vmwrite(F.EXCEPTION_BITMAP, 1 << GP)
    ex = m.cpu.vmlaunch()
    assert ex.reason == R.EXCEPTION_NMI and ex.interruption_info.vector == GP
    assert ex.interruption_error_code == 0x30 | ext
    assert (ex.idt_vectoring_info.vector, ex.idt_vectoring_info.type) == (vector, kind)


@pytest.mark.parametrize("link,vector,error", [(0x20, TS, 0x20), (0, TS, 0), (0x80, TS, 0x80)])
def test_iret_checks_the_previous_task_link(link, vector, error):
    """A task return needs a busy TSS in the GDT: an available one, a null link or one beyond
    the GDT limit is #TS."""
    m = vm32("pushfd\nor dword ptr [esp], 0x4000\npopfd\niretd")
    m.memory.write_u16(TSS0, link)
    m.cpu.vmwrite(F.EXCEPTION_BITMAP, 1 << vector)
    ex = m.cpu.vmlaunch()
    assert ex.interruption_info.vector == vector and ex.interruption_error_code == error


def test_int_n_checks_the_task_gate_dpl():
    """INT n through a task gate of DPL 0 from CPL 3 is #GP(vector * 8 + 2) (26.4.2 b)."""
    m = vm32("int 0x40", idt={0x40: task_gate(0x20, dpl=0)})
    m.cpu.vmwrite(F.GUEST_CS_AR_BYTES, 0xC0FB)
    m.cpu.vmwrite(F.GUEST_CS_SELECTOR, 0x08 | 3)
    for seg in ("SS", "DS", "ES", "FS", "GS"):
        m.cpu.vmwrite(F[f"GUEST_{seg}_AR_BYTES"], 0xC0F3)
        m.cpu.vmwrite(F[f"GUEST_{seg}_SELECTOR"], 0x10 | 3)
    for i in range(16):
        m.memory.write_u32(0x55000 + 4 * i, (i << 22) | 0x87)     # user pages
    m.cpu.vmwrite(F.EXCEPTION_BITMAP, 1 << GP)
    ex = m.cpu.vmlaunch()
    assert ex.interruption_info.vector == GP and ex.interruption_error_code == 0x40 * 8 + 2


def test_in_ia32e_mode_a_tss_or_task_gate_is_gp():
    """26.4.2 c: CALL or JMP to a TSS descriptor in IA-32e mode is #GP(selector), no exit."""
    m = vm("jmp fword ptr [rip + 1f]\n1: .long 0\n.word 0x28")
    m.memory.write_u64(GDT + 0x28, task_gate(0x20))
    m.cpu.vmwrite(F.GUEST_GDTR_BASE, GDT)
    m.cpu.vmwrite(F.GUEST_GDTR_LIMIT, 0x7F)
    m.cpu.vmwrite(F.EXCEPTION_BITMAP, 1 << GP)
    ex = m.cpu.vmlaunch()
    assert ex.interruption_info.vector == GP and ex.interruption_error_code == 0x28


def test_without_vmx_a_task_switch_is_unsupported():
    """The processor does not model task switching itself: outside VMX non-root operation the
    switch, once its checks pass, is x86.Unsupported naming it."""
    m = x86.Machine(memory_size=16 << 20)
    m.load(assemble("jmp 0x20:0", bits=32, address=0x100000), address=0x100000, mode="protected")
    m.memory.write_u64(0x500 + 0x20, tss(0x52000))
    m.cpu.gdtr = (0x500, 0x27)
    with pytest.raises(x86.Unsupported, match="task switch to TSS selector 0x0020 by JMP"):
        m.cpu.run()
