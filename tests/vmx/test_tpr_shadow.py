"""The TPR shadow (SDM Vol. 3C 30.1, 30.3, 27.7.7), from real guest code.

30.3: "MOV from CR8. The instruction loads bits 7:4 of VTPR into bits 3:0 of the destination
operand and clears bits 63:4 of that operand." "MOV to CR8. The instruction stores bits 3:0 of
its source operand into bits 7:4 of VTPR; the remainder of VTPR (bits 3:0 and bits 31:8) are
cleared. Following this, the processor performs TPR virtualization." 30.1.2: "If bits 3:0 of
the TPR threshold VM-execution control field are greater than VTPR[7:4], a VM exit occurs" with
basic reason "TPR below threshold"; it is trap-like (RIP after the MOV). 27.7.7: with "use TPR
shadow" and "virtualize APIC accesses" 1, "a VM exit occurs immediately after VM entry if the
value of bits 3:0 of the TPR threshold ... is greater than the value of bits 7:4 of VTPR";
"The VM exits follow event injection if such injection is specified for VM entry."
"""
import pytest

import vmx
from vmx import ExitReason as R, Field as F
from vmx.controls import ProcBased as Proc, SecondaryProcBased as Sec
from vmx.interruption import InterruptionType as T
from guest import GUEST_CODE, vm
from events_bench import handler_address, inject, with_idt

VAPIC = 0x30000
APIC_ACCESS = 0x31000


def tpr_vm(source, vtpr=0, threshold=0, proc=0, secondary=0):
    m = vm(source, proc=Proc.TPR_SHADOW | proc, secondary=secondary)
    m.memory.write_u32(VAPIC + 0x80, vtpr)
    m.cpu.vmwrite(F.VIRTUAL_APIC_PAGE_ADDR, VAPIC)
    m.cpu.vmwrite(F.TPR_THRESHOLD, threshold)
    if secondary & Sec.VIRTUALIZE_APIC_ACCESSES:
        m.cpu.vmwrite(F.APIC_ACCESS_ADDR, APIC_ACCESS)
    return m


def test_mov_from_cr8_reads_bits_7_4_of_the_virtual_tpr():
    m = tpr_vm("mov rax, -1\nmov rax, cr8\nvmcall", vtpr=0xFFFFFF5A)
    m.cpu.set_sys_raw("cr8", 0xC)
    assert m.cpu.vmlaunch().reason == R.VMCALL
    assert m.cpu.rax == 5


def test_mov_to_cr8_writes_the_virtual_tpr_and_clears_its_other_bits():
    m = tpr_vm("mov eax, 9\nmov cr8, rax\nvmcall", vtpr=0xFFFFFFFF)
    assert m.cpu.vmlaunch().reason == R.VMCALL
    assert m.memory.read_u32(VAPIC + 0x80) == 0x90
    assert m.cpu.get_sys("cr8") == 0          # the real TPR is untouched


def test_lowering_the_virtual_tpr_below_the_threshold_is_a_trap_like_exit():
    m = tpr_vm("mov eax, 2\nmov cr8, rax\nvmcall", vtpr=0x80, threshold=4)
    ex = m.cpu.vmlaunch()
    assert ex.reason == R.TPR_BELOW_THRESHOLD and not ex.entry_failure
    assert int(ex.qualification) == 0
    assert ex.guest_rip == GUEST_CODE + 5 + 4          # after MOV EAX (5 bytes) and MOV CR8 (4)
    assert m.memory.read_u32(VAPIC + 0x80) == 0x20
    with pytest.raises(vmx.VmFailValid):         # 27.2.1.1: the VMM must lower the threshold
        m.cpu.vmresume()
    m.cpu.vmwrite(F.TPR_THRESHOLD, 2)
    assert m.cpu.vmresume().reason == R.VMCALL


def test_equal_to_the_threshold_does_not_exit():
    m = tpr_vm("mov eax, 4\nmov cr8, rax\nvmcall", vtpr=0x80, threshold=4)
    assert m.cpu.vmlaunch().reason == R.VMCALL


def test_reserved_bits_in_the_source_fault_before_virtualization():
    """30.3 / SDM Vol. 2 MOV CR: bits 63:4 of the source set is #GP(0)."""
    m = tpr_vm("mov eax, 0x10\nmov cr8, rax\nvmcall", vtpr=0x80)
    m.cpu.vmwrite(F.EXCEPTION_BITMAP, 1 << 13)
    ex = m.cpu.vmlaunch()
    assert ex.reason == R.EXCEPTION_NMI and ex.interruption_info.vector == 13
    assert m.memory.read_u32(VAPIC + 0x80) == 0x80


@pytest.mark.parametrize("control,source", [(Proc.CR8_LOAD_EXITING, "mov cr8, rax"),
                                            (Proc.CR8_STORE_EXITING, "mov rax, cr8")])
def test_cr8_exiting_takes_precedence_over_the_shadow(control, source):
    """26.1.3: MOV to/from CR8 exits when "CR8-load/store exiting" is 1, whatever the TPR
    shadow; the VTPR is not touched."""
    m = tpr_vm(f"xor eax, eax\n{source}\nvmcall", vtpr=0x70, threshold=0, proc=control)
    ex = m.cpu.vmlaunch()
    assert ex.reason == R.CR_ACCESS and ex.qualification.cr == 8
    assert m.memory.read_u32(VAPIC + 0x80) == 0x70


def test_vm_entry_exits_at_once_when_the_threshold_exceeds_the_virtual_tpr():
    m = tpr_vm("nop\nvmcall", vtpr=0x20, threshold=5, secondary=Sec.VIRTUALIZE_APIC_ACCESSES)
    ex = m.cpu.vmlaunch()
    assert ex.reason == R.TPR_BELOW_THRESHOLD and not ex.entry_failure
    assert ex.guest_rip == GUEST_CODE and m.cpu.icount >= 0


def test_without_apic_access_virtualization_the_same_state_fails_the_entry_checks():
    """27.2.1.1: with "use TPR shadow" 1 and "virtualize APIC accesses" 0, TPR threshold[3:0]
    must not exceed VTPR[7:4]: VMfailValid(7)."""
    m = tpr_vm("nop\nvmcall", vtpr=0x20, threshold=5)
    with pytest.raises(vmx.VmFailValid) as e:
        m.cpu.vmlaunch()
    assert e.value.error == 7


def test_the_exit_after_vm_entry_follows_event_injection():
    m = tpr_vm("nop\nvmcall", vtpr=0x20, threshold=5, secondary=Sec.VIRTUALIZE_APIC_ACCESSES)
    m.cpu.vmwrite(F.GUEST_RFLAGS, 0x202)
    with_idt(m, {0x40: "vmcall"})
    inject(m, 0x40, T.EXTERNAL_INTERRUPT)
    ex = m.cpu.vmlaunch()
    assert ex.reason == R.TPR_BELOW_THRESHOLD
    assert ex.guest_rip == handler_address(0x40)
    assert not ex.idt_vectoring_info.valid


def test_the_exit_after_vm_entry_comes_before_a_monitor_trap_flag_exit():
    m = tpr_vm("nop\nvmcall", vtpr=0x20, threshold=5, proc=Proc.MONITOR_TRAP_FLAG,
               secondary=Sec.VIRTUALIZE_APIC_ACCESSES)
    assert m.cpu.vmlaunch().reason == R.TPR_BELOW_THRESHOLD
    m.memory.write_u32(VAPIC + 0x80, 0x50)
    ex = m.cpu.vmresume()
    assert ex.reason == R.MONITOR_TRAP_FLAG and ex.guest_rip == GUEST_CODE + 1


def test_the_exit_after_vm_entry_wakes_a_guest_entered_in_hlt():
    """27.7.7: "These VM exits wake the logical processor if it just entered the HLT state as
    part of a VM entry"."""
    m = tpr_vm("hlt\nvmcall", vtpr=0x20, threshold=5, secondary=Sec.VIRTUALIZE_APIC_ACCESSES)
    m.cpu.vmwrite(F.GUEST_ACTIVITY_STATE, 1)
    ex = m.cpu.vmlaunch()
    assert ex.reason == R.TPR_BELOW_THRESHOLD
    assert m.cpu.vmread(F.GUEST_ACTIVITY_STATE) == 0
