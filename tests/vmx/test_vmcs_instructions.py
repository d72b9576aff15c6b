"""VMCLEAR, VMPTRLD, VMPTRST, VMREAD, VMWRITE (SDM Vol. 3C 31.3) and the VMCS region (25.2)."""
import pytest

import vmx
import x86
from regions import VMCS_A, VMCS_B, VMXON_REGION

F = vmx.Field


@pytest.mark.parametrize("op", ["vmclear", "vmptrld"])
@pytest.mark.parametrize("addr,error", [(VMCS_A + 0x10, None), (1 << 45, None), (VMXON_REGION, "vmxon")])
def test_bad_operands(root, op, addr, error):
    """VMCLEAR: invalid address -> VMfail(2), VMXON pointer -> VMfail(3); VMPTRLD: 9 and 10.
    Without a current VMCS, VMfail is VMfailInvalid."""
    cpu = root.cpu
    with pytest.raises(vmx.VmFailInvalid):
        getattr(cpu, op)(addr)
    cpu.vmclear(VMCS_B)
    cpu.vmptrld(VMCS_B)
    with pytest.raises(vmx.VmFailValid) as e:
        getattr(cpu, op)(addr)
    expected = {("vmclear", None): 2, ("vmclear", "vmxon"): 3,
                ("vmptrld", None): 9, ("vmptrld", "vmxon"): 10}[op, error]
    assert e.value.error == expected
    assert cpu.vmread(F.VM_INSTRUCTION_ERROR) == expected


def test_vmptrld_wrong_revision_is_error_11(root):
    """"IF rev[30:0] != VMCS revision identifier ... THEN VMfail(VMPTRLD with incorrect VMCS
    revision identifier)" (error 11)."""
    cpu = root.cpu
    cpu.vmclear(VMCS_A)
    cpu.vmptrld(VMCS_A)
    root.memory.write_u32(VMCS_B, 0x7FFFFFFF)
    with pytest.raises(vmx.VmFailValid) as e:
        cpu.vmptrld(VMCS_B)
    assert e.value.error == 11
    assert cpu.vmptrst() == VMCS_A


def test_vmclear_of_current_vmcs_invalidates_the_pointer(root):
    """"IF operand addr = current-VMCS pointer THEN current-VMCS pointer := FFFFFFFF_FFFFFFFFH"."""
    cpu = root.cpu
    cpu.vmclear(VMCS_A)
    cpu.vmptrld(VMCS_A)
    assert cpu.vmptrst() == VMCS_A
    cpu.vmclear(VMCS_A)
    assert cpu.vmptrst() == 0xFFFFFFFFFFFFFFFF


def test_vmcs_data_survives_switching(root):
    """Each VMCS keeps its own data across VMPTRLD of another (25.1)."""
    cpu = root.cpu
    for pa, rip in ((VMCS_A, 0x1000), (VMCS_B, 0x2000)):
        cpu.vmclear(pa)
        cpu.vmptrld(pa)
        cpu.vmwrite(F.GUEST_RIP, rip)
    cpu.vmptrld(VMCS_A)
    assert cpu.vmread(F.GUEST_RIP) == 0x1000


def test_region_data_is_implementation_specific(root):
    """25.2: the region's format past the revision identifier and abort indicator is not
    architectural: after VMCLEAR the bytes tell nothing about the values written."""
    cpu = root.cpu
    cpu.vmclear(VMCS_A)
    cpu.vmptrld(VMCS_A)
    cpu.vmwrite(F.GUEST_RIP, 0x1122334455667788)
    cpu.vmclear(VMCS_A)
    region = root.memory.read(VMCS_A, 4096)
    assert region[:4] == root.profile.revision_id.to_bytes(4, "little")
    assert (0x1122334455667788).to_bytes(8, "little") not in region


@pytest.mark.parametrize("info", [i for i in vmx.FIELDS if not i.read_only], ids=lambda i: i.name)
def test_vmwrite_vmread_round_trip_every_writable_field(root, info):
    """VMREAD returns what VMWRITE wrote, truncated to the field's width; "high" encodings
    access bits 63:32 of 64-bit fields (25.11.2)."""
    cpu = root.cpu
    cpu.vmclear(VMCS_A)
    cpu.vmptrld(VMCS_A)
    value = 0xFEDCBA9876543210
    cpu.vmwrite(info.encoding, value)
    width = 32 if info.high else (64 if info.width in (64, "natural") else info.width)
    assert cpu.vmread(info.encoding) == value & ((1 << width) - 1)


def test_high_access_is_the_upper_half():
    m = vmx.Machine(memory_size=16 << 20)
    for pa in (VMXON_REGION, VMCS_A):
        m.memory.write_u32(pa, m.profile.revision_id)
    vmx.enable(m.cpu)
    m.cpu.vmxon(VMXON_REGION)
    m.cpu.vmclear(VMCS_A)
    m.cpu.vmptrld(VMCS_A)
    m.cpu.vmwrite(F.IO_BITMAP_A, 0x1111111122222222)
    m.cpu.vmwrite(F.IO_BITMAP_A_HIGH, 0x33333333)
    assert m.cpu.vmread(F.IO_BITMAP_A) == 0x3333333322222222


@pytest.mark.parametrize("encoding", [0x0001, 0x9999, 0x6C40, 1 << 32])
def test_unsupported_component_is_error_12(root, encoding):
    """"IF source operand does not correspond to any VMCS field THEN VMfailValid(VMREAD/VMWRITE
    from/to unsupported VMCS component)" (error 12)."""
    cpu = root.cpu
    cpu.vmclear(VMCS_A)
    cpu.vmptrld(VMCS_A)
    for call in (lambda: cpu.vmread(encoding), lambda: cpu.vmwrite(encoding, 0)):
        with pytest.raises(vmx.VmFailValid) as e:
            call()
        assert e.value.error == 12


def test_vmwrite_to_exit_information_follows_misc_bit_29(root):
    """VMWRITE to a VM-exit information field fails with error 13 unless IA32_VMX_MISC[29]
    says the processor supports it (A.6)."""
    cpu = root.cpu
    cpu.vmclear(VMCS_A)
    cpu.vmptrld(VMCS_A)
    if root.profile.msr(x86.msr.IA32_VMX_MISC) & (1 << 29):
        cpu.vmwrite(F.VM_EXIT_REASON, 7)
        assert cpu.vmread(F.VM_EXIT_REASON) == 7
    else:
        with pytest.raises(vmx.VmFailValid) as e:
            cpu.vmwrite(F.VM_EXIT_REASON, 7)
        assert e.value.error == 13


def test_vmread_without_current_vmcs_is_vmfail_invalid(root):
    """"IF (in VMX root operation AND current-VMCS pointer is not valid) THEN VMfailInvalid"."""
    with pytest.raises(vmx.VmFailInvalid):
        root.cpu.vmread(F.GUEST_RIP)
    assert root.cpu.rflags & 1


@pytest.mark.parametrize("op,args", [("vmclear", (VMCS_A,)), ("vmptrld", (VMCS_A,)), ("vmptrst", ()),
                                     ("vmread", (0x681E,)), ("vmwrite", (0x681E, 0))])
def test_outside_vmx_operation_is_ud(machine, op, args):
    """Every VMX instruction but VMXON: "IF (not in VMX operation) ... THEN #UD"."""
    with pytest.raises(x86.UD):
        getattr(machine.cpu, op)(*args)


def test_guest_code_without_vmx_hook_gets_ud():
    """On a processor without VMX, VMX instructions executed by guest code raise #UD (the
    empty IDT turns it into a shutdown)."""
    from x86.asm import assemble
    m = x86.Machine(memory_size=1 << 24)
    m.load(assemble("vmxoff", address=0x100000), address=0x100000)
    assert m.cpu.run().reason == "shutdown"
