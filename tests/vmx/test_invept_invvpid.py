"""INVEPT and INVVPID in VMX root operation (SDM Vol. 3C 31.3), every outcome in the order of
the manual's Operation.

INVEPT: "IF IA32_VMX_EPT_VPID_CAP MSR indicates that processor does not support INVEPT_TYPE
THEN VMfail(Invalid operand to INVEPT/INVVPID)"; single-context: "IF VM entry with the 'enable
EPT' VM-execution control set to 1 would fail due to the EPTP value THEN VMfail(Invalid operand
to INVEPT/INVVPID)". INVVPID: an unsupported type, then "IF INVVPID_DESC[63:16] ≠ 0 THEN
VMfail(...)", then VPID 0 for every type but all-context, then a non-canonical linear address
for individual-address invalidation. VM-instruction error 28 (31.4).
"""
import pytest

import vmx
import x86
from vmx import InveptType as IE, InvvpidType as IV

GOOD_EPTP = 0x5000 | (3 << 3) | 6          # 4-level walk, write-back


def root(profile="default", current=True):
    m = vmx.Machine(memory_size=16 << 20, profile=profile)
    cpu = m.cpu
    vmx.enable(cpu)
    for pa in (0x10000, 0x11000):
        m.memory.write_u32(pa, m.profile.revision_id)
    cpu.vmxon(0x10000)
    if current:
        cpu.vmclear(0x11000)
        cpu.vmptrld(0x11000)
    return cpu


@pytest.mark.parametrize("kind", [IE.SINGLE_CONTEXT, IE.ALL_CONTEXT])
def test_invept_succeeds(kind):
    cpu = root()
    cpu.rflags = cpu.rflags | 0x8D5
    cpu.invept(kind, GOOD_EPTP)
    assert cpu.rflags & 0x8D5 == 0                  # VMsucceed (31.2)


@pytest.mark.parametrize("kind", [0, 3, 7, 1 << 40])
def test_invept_unsupported_type_is_error_28(kind):
    cpu = root()
    with pytest.raises(vmx.VmFailValid) as e:
        cpu.invept(kind, GOOD_EPTP)
    assert e.value.error == 28 and "type" in str(e.value.check)
    assert cpu.vmread(vmx.Field.VM_INSTRUCTION_ERROR) == 28


def test_invept_without_a_current_vmcs_is_vmfail_invalid():
    """31.2 VMfail(ErrorNumber): "IF VMCS pointer is valid THEN VMfailValid ELSE
    VMfailInvalid"."""
    cpu = root(current=False)
    with pytest.raises(vmx.VmFailInvalid):
        cpu.invept(5, GOOD_EPTP)
    assert cpu.rflags & 1


@pytest.mark.parametrize("eptp,rule", [
    (0x5000 | (3 << 3) | 1, "memory type"),       # type 1 (WC) not in IA32_VMX_EPT_VPID_CAP
    (0x5000 | (2 << 3) | 6, "page-walk length"),  # 3-level walk
    (0x5000 | (3 << 3) | 6 | 0x100, "reserved bits 11:8"),
    (0x5000 | (3 << 3) | 6 | (1 << 60), "physical-address width"),
])
def test_single_context_invept_of_an_eptp_vm_entry_would_reject(eptp, rule):
    cpu = root()
    with pytest.raises(vmx.VmFailValid) as e:
        cpu.invept(IE.SINGLE_CONTEXT, eptp)
    assert e.value.error == 28 and rule in str(e.value.check)


def test_all_context_invept_ignores_the_eptp():
    root().invept(IE.ALL_CONTEXT, 0xFFFF_FFFF_FFFF_FFFF)


def test_the_minimal_profile_lacks_5_level_walks():
    """IA32_VMX_EPT_VPID_CAP of "minimal" has bit 6 (4-level) but not bit 7 (5-level)."""
    cpu = root("minimal")
    with pytest.raises(vmx.VmFailValid):
        cpu.invept(IE.SINGLE_CONTEXT, 0x5000 | (4 << 3) | 6)
    root("default").invept(IE.SINGLE_CONTEXT, 0x5000 | (4 << 3) | 6)


@pytest.mark.parametrize("kind,vpid,la", [
    (IV.INDIVIDUAL_ADDRESS, 1, 0x7FFF_FFFF_F000), (IV.INDIVIDUAL_ADDRESS, 1, 0xFFFF_8000_0000_0000),
    (IV.SINGLE_CONTEXT, 0xFFFF, 0), (IV.ALL_CONTEXT, 0, 0),
    (IV.SINGLE_CONTEXT_RETAINING_GLOBALS, 7, 0),
])
def test_invvpid_succeeds(kind, vpid, la):
    root().invvpid(kind, vpid, la)


@pytest.mark.parametrize("kind,vpid,la,rule", [
    (4, 1, 0, "type 4"),
    (IV.SINGLE_CONTEXT, 0x1_0001, 0, "bits 63:16"),
    (IV.ALL_CONTEXT, 0x1_0000, 0, "bits 63:16"),
    (IV.INDIVIDUAL_ADDRESS, 0, 0, "VPID 0000H"),
    (IV.SINGLE_CONTEXT, 0, 0, "VPID 0000H"),
    (IV.SINGLE_CONTEXT_RETAINING_GLOBALS, 0, 0, "VPID 0000H"),
    (IV.INDIVIDUAL_ADDRESS, 1, 0x0000_8000_0000_0000, "non-canonical"),
])
def test_invvpid_failures_are_error_28(kind, vpid, la, rule):
    cpu = root()
    with pytest.raises(vmx.VmFailValid) as e:
        cpu.invvpid(kind, vpid, la)
    assert e.value.error == 28 and rule in str(e.value.check)


def test_reserved_descriptor_bits_are_checked_before_the_vpid():
    """"IF INVVPID_DESC[63:16] ≠ 0" comes before the per-type VPID check."""
    cpu = root()
    with pytest.raises(vmx.VmFailValid) as e:
        cpu.invvpid(IV.SINGLE_CONTEXT, 0x1_0000)
    assert "63:16" in str(e.value.check)


@pytest.mark.parametrize("kind", [IV.INDIVIDUAL_ADDRESS, IV.SINGLE_CONTEXT_RETAINING_GLOBALS])
def test_the_minimal_profile_supports_only_single_and_all_context_invvpid(kind):
    cpu = root("minimal")
    with pytest.raises(vmx.VmFailValid) as e:
        cpu.invvpid(kind, 1)
    assert e.value.error == 28


def test_outside_vmx_operation_both_are_ud_and_at_cpl3_gp():
    m = vmx.Machine(memory_size=16 << 20)
    with pytest.raises(x86.Fault) as e:
        m.cpu.invept(IE.ALL_CONTEXT)
    assert e.value.vector == 6
    cpu = root()
    cpu.set_segment("ss", 0x2B, 0, 0xFFFFFFFF, 0xC0F3)   # DPL 3 stack segment: CPL 3
    with pytest.raises(x86.Fault) as e:
        cpu.invvpid(IV.ALL_CONTEXT, 0)
    assert e.value.vector == 13
