"""Pending debug exceptions across VM entry (SDM Vol. 3C 27.7.3, 27.7.1) and VM exit (28.3.4),
and single-step traps in VMX non-root operation (26.5.2 priority; 28.1), from real guest code.

27.7.3: "There are no pending debug exceptions after VM entry if any of the following are true:
the VM entry is vectoring with one of the following interruption types: external interrupt,
non-maskable interrupt (NMI), hardware exception, or privileged software exception; the
interruptibility-state field does not indicate blocking by MOV SS and the VM entry is vectoring
with either of the following interruption type: software interrupt or software exception ...
There are valid pending debug exceptions if either the BS bit (bit 14) or the enable-breakpoint
bit (bit 12) is 1. ... If the VM entry is not vectoring, the pending debug exceptions are
treated as they would had they been encountered normally in guest execution: if the logical
processor is not blocking such exceptions (the interruptibility-state field indicates no
blocking by MOV SS), a debug exception is delivered after VM entry; if the logical processor is
blocking such exceptions (due to blocking by MOV SS), the pending debug exceptions are held
pending or lost as would normally be the case." "A pending debug exception delivered after VM
entry causes a VM exit if the bit 1 (#DB) is 1 in the exception bitmap. If it does not cause a
VM exit, it updates DR6 normally." TPR-threshold and pending MTF VM exits take priority over it.

26.5.2: "MTF VM exits take priority over debug-trap exceptions and lower priority events."
28.3.4: "The pending debug exceptions field is saved as clear for all VM exits except ... a VM
exit with basic exit reason 'TPR below threshold', 'virtualized EOI', 'APIC write', 'monitor
trap flag,' or 'VMX-preemption timer expired'; VM exits that are not caused by debug exceptions
and that occur while there is MOV-SS blocking of debug exceptions." For those, "Bit 14 (BS) is
set if RFLAGS.TF = 1 in either of the following cases: IA32_DEBUGCTL.BTF = 0 and the cause of a
pending debug exception was the execution of a single instruction ..."; bits 3:0 and 12 as
pending. 28.1: a debug exception that causes a VM exit does not update DR6; Table 28-1: the exit
qualification holds B3-B0 (3:0), BD (13), BS (14).
"""
import pytest

from vmx import ExitReason as R, Field as F, ProcBased as P
from vmx.interruption import InterruptionType as T
from guest import GUEST_CODE, vm
from events_bench import handler_address, inject, with_idt

BS, ENABLED_BP, TF = 1 << 14, 1 << 12, 1 << 8
DB = 1 << 1
READ_DR6 = "mov rax, dr6\nvmcall"


def entered(source, pending, rflags=2, interruptibility=0, exceptions=0, **controls):
    m = vm(source, **controls)
    m.cpu.vmwrite(F.GUEST_PENDING_DBG_EXCEPTIONS, pending)
    m.cpu.vmwrite(F.GUEST_RFLAGS, rflags)
    m.cpu.vmwrite(F.GUEST_INTERRUPTIBILITY_INFO, interruptibility)
    m.cpu.vmwrite(F.EXCEPTION_BITMAP, exceptions)
    return m


def is_db(ex):
    return ex.reason == R.EXCEPTION_NMI and ex.interruption_info.vector == 1 \
        and int(ex.interruption_info.type) == T.HARD_EXCEPTION


# --- VM entry (27.7.3) ---------------------------------------------------------------------------

def test_pending_bs_is_a_debug_trap_before_the_first_instruction():
    """With #DB in the exception bitmap: exit 0, qualification BS (Table 28-1), RIP at the first
    instruction (a trap on the instruction before it), DR6 unchanged (28.1)."""
    m = entered("nop\nvmcall", BS, exceptions=DB)
    dr6 = m.cpu.dr6
    icount = m.cpu.icount
    ex = m.cpu.vmlaunch()
    assert is_db(ex) and int(ex.qualification) == BS and ex.qualification.bs
    assert m.cpu.vmread(F.GUEST_RIP) == GUEST_CODE and m.cpu.icount == icount
    assert m.cpu.dr6 == dr6
    assert m.cpu.vmread(F.GUEST_PENDING_DBG_EXCEPTIONS) == 0


@pytest.mark.parametrize("pending,dr6_bits", [(BS, BS), (ENABLED_BP | 0b0101, 0b0101), (ENABLED_BP, 0),
                                              (BS | 0b1000, BS | 0b1000)])
def test_pending_debug_exceptions_reach_the_guest_handler_and_dr6(pending, dr6_bits):
    """Without the exit, the #DB is delivered to the guest's handler and DR6 gets B3-B0 and BS
    ("it updates DR6 normally"); the handler sees the return address of the first instruction."""
    m = entered("nop\nvmcall", pending)
    with_idt(m, {1: READ_DR6})
    dr6 = m.cpu.dr6
    ex = m.cpu.vmlaunch()
    assert ex.reason == R.VMCALL and m.cpu.vmread(F.GUEST_RIP) == handler_address(1) + 3
    assert m.cpu.rax == dr6 | dr6_bits
    assert m.memory.read_u64(m.cpu.vmread(F.GUEST_RSP)) == GUEST_CODE     # pushed RIP


def test_only_bit_12_or_bs_make_them_valid():
    """B3-B0 alone are not valid pending debug exceptions: nothing is delivered."""
    m = entered("vmcall", 0b0011, exceptions=DB)
    assert m.cpu.vmlaunch().reason == R.VMCALL


def test_blocking_by_mov_ss_holds_them_until_after_the_first_instruction():
    """MOV-SS blocking (with RFLAGS.TF = 1, BS = 1 as 27.3.1.5 requires): the #DB comes after
    the first instruction, with BS; its exit saves no pending debug exceptions."""
    m = entered("nop\nvmcall", BS, rflags=2 | TF, interruptibility=2, exceptions=DB)
    ex = m.cpu.vmlaunch()
    assert is_db(ex) and int(ex.qualification) == BS
    assert m.cpu.vmread(F.GUEST_RIP) == GUEST_CODE + 1
    assert m.cpu.vmread(F.GUEST_PENDING_DBG_EXCEPTIONS) == 0


@pytest.mark.parametrize("kind,vector", [(T.EXTERNAL_INTERRUPT, 0x30), (T.HARD_EXCEPTION, 6),
                                         (T.PRIV_SW_EXCEPTION, 1), (T.SOFT_INTERRUPT, 0x31),
                                         (T.NMI, 2)])
def test_a_vectoring_entry_discards_them(kind, vector):
    """Vectoring with an external interrupt, NMI, hardware or privileged software exception, or
    with a software interrupt/exception and no MOV-SS blocking: no #DB follows."""
    m = entered("nop", BS, rflags=0x202, exceptions=DB if vector != 1 else 0)
    with_idt(m, {vector: "vmcall"})
    inject(m, vector, kind, length=2 if kind in (T.SOFT_INTERRUPT, T.PRIV_SW_EXCEPTION) else 0)
    ex = m.cpu.vmlaunch()
    assert ex.reason == R.VMCALL and m.cpu.vmread(F.GUEST_RIP) == handler_address(vector)


def test_a_software_interrupt_injected_in_a_mov_ss_shadow_keeps_them():
    """27.7.3: injection of a software interrupt with blocking by MOV SS: treated as if INT n
    were executed after a MOV SS that encountered a debug trap: the #DB follows the INT n,
    before its handler's first instruction (27.7.1: no blocking remains after the entry)."""
    m = entered("nop", BS, rflags=2 | TF, interruptibility=2, exceptions=DB)
    with_idt(m, {0x31: "vmcall"})
    inject(m, 0x31, T.SOFT_INTERRUPT, length=2)
    ex = m.cpu.vmlaunch()
    assert is_db(ex) and m.cpu.vmread(F.GUEST_RIP) == handler_address(0x31)


def test_tf_without_pending_bs_traps_after_the_first_instruction():
    m = entered("nop\nnop\nvmcall", 0, rflags=2 | TF, exceptions=DB)
    ex = m.cpu.vmlaunch()
    assert is_db(ex) and int(ex.qualification) == BS
    assert m.cpu.vmread(F.GUEST_RIP) == GUEST_CODE + 1


def test_a_pending_mtf_exit_goes_before_them_and_saves_them():
    """Injecting a pending MTF VM exit (type 7): the MTF exit comes first, at once, and the
    pending debug exceptions saved are those loaded."""
    m = entered("nop\nvmcall", BS | 0b0010, exceptions=DB)
    inject(m, 0, T.OTHER_EVENT)
    ex = m.cpu.vmlaunch()
    assert ex.reason == R.MONITOR_TRAP_FLAG and m.cpu.vmread(F.GUEST_RIP) == GUEST_CODE
    assert m.cpu.vmread(F.GUEST_PENDING_DBG_EXCEPTIONS) == BS | 0b0010
    ex = m.cpu.vmresume()                                # delivered after this entry
    assert is_db(ex) and int(ex.qualification) == BS | 0b0010


# --- VM exit (28.3.4) ----------------------------------------------------------------------------

def test_an_mtf_exit_saves_a_pending_single_step_trap():
    """Monitor trap flag and RFLAGS.TF: the MTF exit goes before the single-step trap, which is
    saved as BS; resuming delivers it."""
    m = entered("nop\nnop\nvmcall", 0, rflags=2 | TF, exceptions=DB, proc=P.MONITOR_TRAP_FLAG)
    ex = m.cpu.vmlaunch()
    assert ex.reason == R.MONITOR_TRAP_FLAG and m.cpu.vmread(F.GUEST_RIP) == GUEST_CODE + 1
    assert m.cpu.vmread(F.GUEST_PENDING_DBG_EXCEPTIONS) == BS
    m.cpu.vmwrite(F.CPU_BASED_VM_EXEC_CONTROL,
                  m.cpu.vmread(F.CPU_BASED_VM_EXEC_CONTROL) & ~P.MONITOR_TRAP_FLAG)
    ex = m.cpu.vmresume()
    assert is_db(ex) and int(ex.qualification) == BS and m.cpu.vmread(F.GUEST_RIP) == GUEST_CODE + 1


def test_an_mtf_exit_without_tf_saves_nothing():
    m = entered("nop\nvmcall", 0, proc=P.MONITOR_TRAP_FLAG)
    assert m.cpu.vmlaunch().reason == R.MONITOR_TRAP_FLAG
    assert m.cpu.vmread(F.GUEST_PENDING_DBG_EXCEPTIONS) == 0


def test_an_exit_in_a_mov_ss_shadow_saves_the_held_trap():
    """MOV SS with TF = 1, then CPUID (which exits) in its shadow: the single-step trap of the
    MOV SS is held by the MOV-SS blocking and saved with the CPUID exit."""
    m = entered("mov ax, ss\nmov ss, ax\ncpuid", 0, rflags=2 | TF, exceptions=DB)
    ex = m.cpu.vmlaunch()
    assert is_db(ex) and int(ex.qualification) == BS        # after MOV AX, SS
    assert m.cpu.vmread(F.GUEST_RIP) == GUEST_CODE + 3
    ex = m.cpu.vmresume()                                  # MOV SS: trap held by its own shadow
    assert ex.reason == R.CPUID and m.cpu.vmread(F.GUEST_INTERRUPTIBILITY_INFO) & 2
    assert m.cpu.vmread(F.GUEST_PENDING_DBG_EXCEPTIONS) == BS


@pytest.mark.parametrize("source", ["cpuid", "nop\ncpuid"])
def test_other_exits_save_the_field_clear(source):
    m = entered(source, 0, rflags=2 | TF, exceptions=0)
    with_idt(m, {1: "iretq"})
    assert m.cpu.vmlaunch().reason == R.CPUID
    assert m.cpu.vmread(F.GUEST_PENDING_DBG_EXCEPTIONS) == 0
