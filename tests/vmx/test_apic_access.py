"""The APIC-access page (SDM Vol. 3C 30.4; exit qualification Table 28-6), from real guest code.

30.4: with "virtualize APIC accesses" 1, an access to the APIC-access page causes an APIC-access
VM exit (reason 44) unless it is virtualized. Table 28-6: bits 11:0 "the offset of access within
the APIC page" (linear accesses); bits 15:12 the access type: "0 = linear access for a data read
during instruction execution, 1 = ... data write ..., 2 = linear access for an instruction
fetch, 3 = linear access (read or write) during event delivery, 10 = guest-physical access
during event delivery, 15 = guest-physical access for an instruction fetch or during
instruction execution". 28.2.4: IDT-vectoring information is valid iff the type is 3 or 10.
With "use TPR shadow" (and no APIC-register virtualization) reads and writes of the TPR at
offset 080H are virtualized: they use VTPR on the virtual-APIC page (30.4.2, 30.4.3.1), and a
write is followed by TPR virtualization (30.1.2).
"""
import pytest

import ept
from vmx import ExitReason as R, Field as F
from vmx.controls import ProcBased as Proc, SecondaryProcBased as Sec
from guest import GUEST_CODE, vm

APIC_PAGE = 0x300000          # the APIC-access page (host-physical; guest-physical without EPT)
VAPIC = 0x301000


def apic_vm(source, proc=0, secondary=0, threshold=0, vtpr=0):
    m = vm(source, proc=proc, secondary=Sec.VIRTUALIZE_APIC_ACCESSES | secondary)
    m.cpu.vmwrite(F.APIC_ACCESS_ADDR, APIC_PAGE)
    if proc & Proc.TPR_SHADOW:
        m.cpu.vmwrite(F.VIRTUAL_APIC_PAGE_ADDR, VAPIC)
        m.cpu.vmwrite(F.TPR_THRESHOLD, threshold)
        m.memory.write_u32(VAPIC + 0x80, vtpr)
    return m


@pytest.mark.parametrize("source,offset,kind", [
    (f"mov eax, [{APIC_PAGE + 0x300:#x}]", 0x300, 0),
    (f"mov dword ptr [{APIC_PAGE + 0xB0:#x}], 0", 0xB0, 1),
    (f"mov rax, {APIC_PAGE + 0x10:#x}\ncall rax", 0x10, 2),
])
def test_linear_accesses_exit_with_offset_and_type(source, offset, kind):
    m = apic_vm(source + "\nvmcall")
    ex = m.cpu.vmlaunch()
    assert ex.reason == R.APIC_ACCESS
    assert int(ex.qualification) == offset | kind << 12
    assert not ex.idt_vectoring_info.valid
    assert ex.guest_rip == (APIC_PAGE + 0x10 if kind == 2 else GUEST_CODE)


def test_other_pages_are_plain_memory():
    m = apic_vm(f"mov eax, [{APIC_PAGE + 0x1000:#x}]\nvmcall")
    m.memory.write_u32(APIC_PAGE + 0x1000, 77)
    assert m.cpu.vmlaunch().reason == R.VMCALL and m.cpu.rax == 77


def test_an_access_during_event_delivery_is_type_3_with_idt_vectoring_information():
    m = apic_vm("ud2\nvmcall")
    m.cpu.vmwrite(F.GUEST_IDTR_BASE, APIC_PAGE)
    m.cpu.vmwrite(F.GUEST_IDTR_LIMIT, 0xFFF)
    ex = m.cpu.vmlaunch()
    assert ex.reason == R.APIC_ACCESS and int(ex.qualification) == 6 * 16 | 3 << 12
    assert ex.idt_vectoring_info.valid and ex.idt_vectoring_info.vector == 6


def test_a_guest_paging_structure_in_the_page_is_a_guest_physical_access():
    """Type 15: the processor reads a guest paging-structure entry from the APIC-access page."""
    m = apic_vm("mov rax, [0x8000000000]\nvmcall")
    m.memory.write_u64(0x1000 + 8, APIC_PAGE | 3)          # guest PML4E 1 -> a PDPT in the page
    ex = m.cpu.vmlaunch()
    assert ex.reason == R.APIC_ACCESS and int(ex.qualification) >> 12 == 15


def test_with_ept_the_page_is_recognized_by_its_host_physical_address():
    """30.4.6.1 with EPT: an access is to the APIC-access page when its guest-physical address
    translates to it."""
    m = apic_vm("mov eax, [0x600080]\nvmcall", secondary=Sec.ENABLE_EPT)
    b = ept.EptBuilder(m.memory, ept.BumpAllocator(m.memory, 0x1000000, 0x1800000))
    b.identity(4 << 20)
    b.map(0x600000, APIC_PAGE, 0x1000)
    m.cpu.vmwrite(F.EPT_POINTER, b.eptp)
    ex = m.cpu.vmlaunch()
    assert ex.reason == R.APIC_ACCESS and int(ex.qualification) == 0x80


def test_tpr_reads_and_writes_use_the_virtual_tpr():
    m = apic_vm(f"mov eax, [{APIC_PAGE + 0x80:#x}]\nmov dword ptr [{APIC_PAGE + 0x80:#x}], 0x70\nvmcall",
                proc=Proc.TPR_SHADOW, vtpr=0x50)
    assert m.cpu.vmlaunch().reason == R.VMCALL
    assert m.cpu.rax == 0x50 and m.memory.read_u32(VAPIC + 0x80) == 0x70
    assert m.memory.read_u32(APIC_PAGE + 0x80) == 0


def test_a_tpr_write_below_the_threshold_is_a_trap_like_exit():
    m = apic_vm(f"mov dword ptr [{APIC_PAGE + 0x80:#x}], 0x10\nvmcall", proc=Proc.TPR_SHADOW,
                threshold=3, vtpr=0x50)
    ex = m.cpu.vmlaunch()
    assert ex.reason == R.TPR_BELOW_THRESHOLD and ex.guest_rip == GUEST_CODE + 11
    assert m.memory.read_u32(VAPIC + 0x80) == 0x10


def test_other_registers_still_exit_with_a_tpr_shadow():
    m = apic_vm(f"mov eax, [{APIC_PAGE + 0xB0:#x}]\nvmcall", proc=Proc.TPR_SHADOW)
    assert m.cpu.vmlaunch().reason == R.APIC_ACCESS
