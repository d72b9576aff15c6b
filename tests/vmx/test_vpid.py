"""VPIDs and what VM entries and VM exits invalidate (SDM Vol. 3C 29.1, 29.4.3), from real guest
code.

29.4.3.1: "If the 'enable VPID' VM-execution control is 0, VM entries and VM exits invalidate
linear mappings and combined mappings associated with VPID 0000H." With VPID 1, mappings are
tagged with the guest's VPID and may survive VM exits and entries: a guest that changes a
paging-structure entry without INVLPG may keep using the old translation, until it invalidates
it or the VMM executes INVVPID (29.4.3.3) or INVEPT for combined mappings (29.4.3.1).

The guest maps linear 0x7F000000 to page OLD with its own page tables, reads it, rewrites the
PTE to point to NEW (no INVLPG), exits with VMCALL, and reads again after VMRESUME.
"""
import pytest

import ept
import vmx
from vmx import ExitReason as R, Field as F
from vmx.controls import SecondaryProcBased as Sec
from guest import vm

PML4, PDPT, PD, PT = 0x40000, 0x41000, 0x42000, 0x43000
LA = 0x7F000000
OLD, NEW = 0x300000, 0x301000

GUEST = f"""
    mov rax, [{LA:#x}]
    mov qword ptr [{PT + 8 * ((LA >> 12) & 511):#x}], {NEW | 3:#x}
    vmcall
    mov rbx, [{LA:#x}]
    vmcall
"""


def paged_vm(secondary=0, vpid=1):
    m = vm(GUEST, secondary=secondary)
    mem = m.memory
    mem.write_u64(PML4, PDPT | 3)
    mem.write_u64(PDPT, 0x83)                              # 0-1 GiB: one 1-GiB page (code, data)
    mem.write_u64(PDPT + 8 * ((LA >> 30) & 511), PD | 3)   # ... except LA's GiB
    mem.write_u64(PDPT, 0x83)
    for i in range(512):
        mem.write_u64(PD + 8 * i, (i << 21) | 0x83)
    mem.write_u64(PD + 8 * ((LA >> 21) & 511), PT | 3)
    mem.write_u64(PT + 8 * ((LA >> 12) & 511), OLD | 3)
    mem.write_u64(OLD, 0x01D)
    mem.write_u64(NEW, 0x2E2)
    m.cpu.vmwrite(F.GUEST_CR3, PML4)
    if secondary & Sec.ENABLE_VPID:
        m.cpu.vmwrite(F.VIRTUAL_PROCESSOR_ID, vpid)
    return m


def second_read(m, between=None):
    assert m.cpu.vmlaunch().reason == R.VMCALL and m.cpu.rax == 0x01D
    if between:
        between(m)
    m.cpu.vmwrite(F.GUEST_RIP, m.cpu.vmread(F.GUEST_RIP) + 3)
    assert m.cpu.vmresume().reason == R.VMCALL
    return m.cpu.rbx


def test_without_vpid_the_exit_and_entry_flush_the_old_translation():
    assert second_read(paged_vm()) == 0x2E2


def test_with_vpid_the_old_translation_may_survive():
    assert second_read(paged_vm(Sec.ENABLE_VPID)) == 0x01D


@pytest.mark.parametrize("kind,vpid", [(vmx.InvvpidType.SINGLE_CONTEXT, 1), (vmx.InvvpidType.ALL_CONTEXT, 0),
                                       (vmx.InvvpidType.INDIVIDUAL_ADDRESS, 1)])
def test_invvpid_drops_it(kind, vpid):
    read = second_read(paged_vm(Sec.ENABLE_VPID), lambda m: m.cpu.invvpid(kind, vpid, LA))
    assert read == 0x2E2


def test_invvpid_of_another_vpid_leaves_it():
    read = second_read(paged_vm(Sec.ENABLE_VPID), lambda m: m.cpu.invvpid(vmx.InvvpidType.SINGLE_CONTEXT, 2))
    assert read == 0x01D


def test_another_vpid_does_not_see_it():
    def switch(m):
        m.cpu.vmwrite(F.VIRTUAL_PROCESSOR_ID, 2)
    assert second_read(paged_vm(Sec.ENABLE_VPID), switch) == 0x2E2


def test_with_ept_invept_drops_the_combined_mappings():
    """29.4.3.1: INVEPT single-context invalidates the combined mappings for its EP4TA."""
    m = paged_vm(Sec.ENABLE_VPID | Sec.ENABLE_EPT)
    b = ept.EptBuilder(m.memory, ept.BumpAllocator(m.memory, 0x1000000, 0x1800000))
    m.cpu.vmwrite(F.EPT_POINTER, b.identity(8 << 20))
    assert second_read(m) == 0x01D
    m = paged_vm(Sec.ENABLE_VPID | Sec.ENABLE_EPT)
    b = ept.EptBuilder(m.memory, ept.BumpAllocator(m.memory, 0x1000000, 0x1800000))
    m.cpu.vmwrite(F.EPT_POINTER, b.identity(8 << 20))
    assert second_read(m, lambda m: m.cpu.invept(vmx.InveptType.SINGLE_CONTEXT, b.eptp)) == 0x2E2
