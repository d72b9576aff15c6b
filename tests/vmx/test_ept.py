"""EPT under VMX (SDM Vol. 3C 27.3.2, 28.2.1 Table 28-7, 29.3.3, 29.3.6, 29.4.3, 26.5.6.3,
25.5.6), from real guest code: the EPTP at VM entry, EPT violations and misconfigurations as
VM exits with their exit information, lazy mapping by the VMM, stale guest-physical mappings
until INVEPT, page-modification logging, EPTP switching with VMFUNC, and virtualization
exceptions."""
import pytest

import ept
import vmx
from vmx import ExitReason as R, Field as F
from vmx.controls import SecondaryProcBased as Sec, ProcBased as Proc
from guest import GUEST_CODE, vm

POOL, POOL_END = 0x1000000, 0x1800000      # host pages for EPT tables
DATA = 0x600000                            # a guest-physical page the tests play with
FRAME_A, FRAME_B = 0x700000, 0x701000      # host pages behind it
PML, VE_AREA, EPTP_LIST = 0x800000, 0x801000, 0x802000


def ept_vm(source, secondary=0, map_data=True, ad=False, **controls):
    m = vm(source, secondary=Sec.ENABLE_EPT | secondary, **controls)
    b = ept.EptBuilder(m.memory, ept.BumpAllocator(m.memory, POOL, POOL_END), ad=ad)
    b.identity(4 << 20)                        # guest code, stack, page tables, the loader's area
    if map_data:
        b.map(DATA, FRAME_A, 0x1000)
    m.cpu.vmwrite(F.EPT_POINTER, b.eptp)
    m.memory.write_u64(FRAME_A, 0xAAAA)
    m.memory.write_u64(FRAME_B, 0xBBBB)
    return m, b


def test_a_guest_runs_under_ept_and_reads_through_it():
    """27.3.2: with "enable EPT" the guest's physical addresses are guest-physical: DATA reads
    the host page EPT maps it to."""
    m, _ = ept_vm(f"mov rax, [{DATA:#x}]\nvmcall")
    assert m.cpu.vmlaunch().reason == R.VMCALL
    assert m.cpu.rax == 0xAAAA


def test_a_missing_page_is_an_ept_violation_the_vmm_maps_lazily():
    """29.3.3.2: a not-present entry is an EPT violation; Table 28-7: bit 1 data write, bits 5:3
    the translation's permissions (0: not present), bit 7 linear address valid, bit 8 the access
    was to the translation (not a guest paging-structure entry); GUEST_PHYSICAL_ADDRESS and
    GUEST_LINEAR_ADDRESS hold the addresses. RIP stays at the instruction, which runs again."""
    m, b = ept_vm(f"mov qword ptr [{DATA + 8:#x}], 7\nvmcall", map_data=False)
    ex = m.cpu.vmlaunch()
    assert ex.reason == R.EPT_VIOLATION
    q = ex.qualification
    assert q.write and not q.read and not q.fetch
    assert not (q.readable or q.writable or q.executable) and q.linear_address_valid and q.translation
    assert ex.guest_physical_address == DATA + 8 and ex.guest_linear_address == DATA + 8
    assert ex.guest_rip == GUEST_CODE
    assert "EPT" in ex.explain()
    b.map(DATA, FRAME_B, 0x1000)
    assert m.cpu.vmresume().reason == R.VMCALL
    assert m.memory.read_u64(FRAME_B + 8) == 7


def test_writing_a_read_only_page_reports_its_permissions():
    m, b = ept_vm(f"mov qword ptr [{DATA:#x}], 1\nvmcall")
    b.protect(DATA, 0x1000, "r")
    ex = m.cpu.vmlaunch()
    assert ex.reason == R.EPT_VIOLATION and int(ex.qualification) & 0x3F == 0b001010


def test_fetch_from_a_non_executable_page():
    m, b = ept_vm(f"mov rax, {DATA:#x}\ncall rax\nvmcall")
    m.memory.write(FRAME_A, b"\xc3")                       # RET
    b.protect(DATA, 0x1000, "rw")
    ex = m.cpu.vmlaunch()
    assert ex.reason == R.EPT_VIOLATION and ex.qualification.fetch
    assert ex.guest_rip == DATA


def test_write_without_read_is_a_misconfiguration():
    """29.3.3.1: "bit 0 of the entry is clear and bit 1 is set" is an EPT misconfiguration
    (exit 49), reported with the guest-physical address."""
    m, b = ept_vm(f"mov rax, [{DATA:#x}]\nvmcall")
    b.protect(DATA, 0x1000, "w")
    ex = m.cpu.vmlaunch()
    assert ex.reason == R.EPT_MISCONFIG and ex.guest_physical_address == DATA


def test_a_changed_entry_is_stale_until_invept():
    """29.4.3.1: guest-physical mappings are cached by EP4TA across VM exits and entries; a VMM
    that changes an EPT entry must execute INVEPT: before it the guest may still see the old
    page, after it the new one."""
    m, b = ept_vm(f"mov rax, [{DATA:#x}]\nvmcall\nmov rax, [{DATA:#x}]\nvmcall\nmov rax, [{DATA:#x}]\nvmcall")
    assert m.cpu.vmlaunch().reason == R.VMCALL and m.cpu.rax == 0xAAAA
    b.map(DATA, FRAME_B, 0x1000)
    m.cpu.vmwrite(F.GUEST_RIP, m.cpu.vmread(F.GUEST_RIP) + 3)
    assert m.cpu.vmresume().reason == R.VMCALL and m.cpu.rax == 0xAAAA      # stale
    m.cpu.invept(vmx.InveptType.SINGLE_CONTEXT, b.eptp)
    m.cpu.vmwrite(F.GUEST_RIP, m.cpu.vmread(F.GUEST_RIP) + 3)
    assert m.cpu.vmresume().reason == R.VMCALL and m.cpu.rax == 0xBBBB


def test_an_ept_violation_during_event_delivery_reports_idt_vectoring_information():
    """28.2.4: an EPT violation while delivering an event records the event in the
    IDT-vectoring information field."""
    m, b = ept_vm("ud2\nvmcall")
    m.cpu.vmwrite(F.GUEST_IDTR_BASE, DATA)
    m.cpu.vmwrite(F.GUEST_IDTR_LIMIT, 0xFFF)
    b.unmap(DATA, 0x1000)
    ex = m.cpu.vmlaunch()
    assert ex.reason == R.EPT_VIOLATION and ex.guest_physical_address == DATA + 6 * 16
    assert ex.idt_vectoring_info.valid and ex.idt_vectoring_info.vector == 6


def test_page_modification_logging_and_the_full_log():
    """29.3.6: with "enable PML", setting a dirty flag logs the guest-physical page at the PML
    index, which then decrements (guest paging-structure A/D updates count as writes, so the
    guest's page tables are logged too); when the index is outside 0-511 a page-modification-
    log-full VM exit (62) happens instead of the write."""
    m, b = ept_vm(f"mov qword ptr [{DATA:#x}], 1\nvmcall\nmov qword ptr [{DATA + 0x1000:#x}], 2\nvmcall",
                  secondary=Sec.ENABLE_PML, ad=True)
    b.map(DATA + 0x1000, FRAME_B, 0x1000)
    m.cpu.vmwrite(F.EPT_POINTER, b.eptp)
    m.cpu.vmwrite(F.PML_ADDRESS, PML)
    m.cpu.vmwrite(F.GUEST_PML_INDEX, 511)
    assert m.cpu.vmlaunch().reason == R.VMCALL
    index = m.cpu.vmread(F.GUEST_PML_INDEX)
    logged = [m.memory.read_u64(PML + 8 * i) for i in range(511, index, -1)]
    assert DATA in logged and len(logged) == len(set(logged))
    m.cpu.vmwrite(F.GUEST_PML_INDEX, 0xFFFF)               # full
    m.cpu.vmwrite(F.GUEST_RIP, m.cpu.vmread(F.GUEST_RIP) + 3)
    ex = m.cpu.vmresume()
    assert ex.reason == R.PML_FULL and ex.guest_rip == GUEST_CODE + 12 + 3     # at the second MOV
    assert m.memory.read_u64(FRAME_B) == 0xBBBB             # the write did not happen
    m.cpu.vmwrite(F.GUEST_PML_INDEX, 511)
    assert m.cpu.vmresume().reason == R.VMCALL
    assert m.memory.read_u64(PML + 8 * 511) == DATA + 0x1000 and m.memory.read_u64(FRAME_B) == 2


def _two_epts(m, b):
    b2 = ept.EptBuilder(m.memory, b.allocator)
    b2.identity(4 << 20)
    b2.map(DATA, FRAME_B, 0x1000)
    m.memory.write_u64(EPTP_LIST, b.eptp)
    m.memory.write_u64(EPTP_LIST + 8, b2.eptp)
    m.memory.write_u64(EPTP_LIST + 16, 0x5000)             # page-walk length 1: invalid
    m.cpu.vmwrite(F.EPTP_LIST_ADDRESS, EPTP_LIST)
    m.cpu.vmwrite(F.VM_FUNCTION_CONTROL, 1)
    return b2


def test_vmfunc_0_switches_the_eptp_without_an_exit():
    """26.5.6.3: EPTP switching loads EPTP list entry ECX into the EPTP (and the EPTP index)
    and VMFUNC completes: the same guest-physical page now reads another host page."""
    m, b = ept_vm(f"mov rbx, [{DATA:#x}]\nxor eax, eax\nmov ecx, 1\nvmfunc\nmov rdx, [{DATA:#x}]\nvmcall",
                  secondary=Sec.ENABLE_VMFUNC)
    b2 = _two_epts(m, b)
    assert m.cpu.vmlaunch().reason == R.VMCALL
    assert (m.cpu.rbx, m.cpu.rdx) == (0xAAAA, 0xBBBB)
    assert m.cpu.vmread(F.EPT_POINTER) == b2.eptp and m.cpu.vmread(F.EPTP_INDEX) == 1


@pytest.mark.parametrize("eax,ecx", [(1, 0), (64, 0), (0, 512), (0, 2)])
def test_vmfunc_exits_for_a_disabled_function_or_a_bad_entry(eax, ecx):
    """31.3 VMFUNC / 26.5.6.3: a function whose VM-function control is 0 (or EAX >= 64), ECX
    >= 512, or an EPTP that VM entry would reject cause VM exit 59."""
    m, b = ept_vm(f"mov eax, {eax}\nmov ecx, {ecx}\nvmfunc\nvmcall", secondary=Sec.ENABLE_VMFUNC)
    _two_epts(m, b)
    ex = m.cpu.vmlaunch()
    assert ex.reason == R.VMFUNC and ex.instruction_length == 3
    assert m.cpu.vmread(F.EPT_POINTER) == b.eptp


def test_vmfunc_without_enable_vm_functions_is_ud():
    m, b = ept_vm("xor eax, eax\nxor ecx, ecx\nvmfunc\nvmcall")
    m.cpu.vmwrite(F.EXCEPTION_BITMAP, 1 << 6)
    ex = m.cpu.vmlaunch()
    assert ex.reason == R.EXCEPTION_NMI and ex.interruption_info.vector == 6


def _ve_setup(m, b, suppress=False):
    b.unmap(DATA, 0x1000)
    if suppress:
        b.map(DATA, FRAME_A, 0x1000, perms="", suppress_ve=True)
    m.cpu.vmwrite(F.VE_INFORMATION_ADDRESS, VE_AREA)


def test_a_convertible_violation_becomes_a_virtualization_exception():
    """25.5.6: with "EPT-violation #VE", a convertible EPT violation (suppress #VE = 0, CR0.PE
    = 1, no event delivery, offset 4 of the information area 0) is a #VE (vector 20); Table
    25-1: the area holds reason 48, FFFFFFFFH, the qualification, the linear and physical
    addresses; 25.5.6.3: bit 20 of the exception bitmap makes it a VM exit."""
    m, b = ept_vm(f"mov rax, [{DATA + 0x10:#x}]\nvmcall", secondary=Sec.EPT_VIOLATION_VE)
    _ve_setup(m, b)
    m.cpu.vmwrite(F.EXCEPTION_BITMAP, 1 << 20)
    ex = m.cpu.vmlaunch()
    assert ex.reason == R.EXCEPTION_NMI and ex.interruption_info.vector == 20
    assert not ex.interruption_info.error_code_valid
    mem = m.memory
    assert (mem.read_u32(VE_AREA), mem.read_u32(VE_AREA + 4)) == (48, 0xFFFFFFFF)
    assert mem.read_u64(VE_AREA + 8) & 7 == 1                      # a data read
    assert (mem.read_u64(VE_AREA + 16), mem.read_u64(VE_AREA + 24)) == (DATA + 0x10, DATA + 0x10)
    # the area is busy (offset 4 not 0): the next violation is a VM exit
    ex = m.cpu.vmresume()
    assert ex.reason == R.EPT_VIOLATION


def test_suppress_ve_keeps_the_vm_exit():
    m, b = ept_vm(f"mov rax, [{DATA:#x}]\nvmcall", secondary=Sec.EPT_VIOLATION_VE)
    _ve_setup(m, b, suppress=True)
    assert m.cpu.vmlaunch().reason == R.EPT_VIOLATION
