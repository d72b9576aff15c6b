"""VMXON (SDM Vol. 3C 31.3 "VMXON - Enter VMX Operation") and enabling VMX (24.7, 24.8)."""
import pytest

import vmx
import x86
from regions import VMCS_A, VMXON_REGION

CF, ZF = 1, 0x40


def test_host_starts_without_vmx_enabled(machine):
    """API.md: the host starts in 64-bit mode at CPL 0 with CR4.VMXE clear and
    IA32_FEATURE_CONTROL unlocked."""
    cpu = machine.cpu
    assert cpu.code_bits == 64 and cpu.cpl == 0
    assert not cpu.cr4 & (1 << 13)
    assert cpu.rdmsr(x86.msr.IA32_FEATURE_CONTROL) == 0


def test_cpuid_reports_vmx(machine):
    """CPUID.1:ECX.VMX[bit 5] = 1 on a processor with VMX (SDM 24.6)."""
    machine.cpu.rax, machine.cpu.rcx = 1, 0
    a, b, c, d = machine.cpu._cpuid(1, 0)
    assert c & (1 << 5)
    assert not x86.Machine(memory_size=1 << 20).cpu._cpuid(1, 0)[2] & (1 << 5)


def test_vmxe_cannot_be_set_without_vmx():
    """CR4.VMXE is reserved on a processor without VMX: MOV to CR4 is #GP(0)."""
    with pytest.raises(x86.GP):
        x86.Machine(memory_size=1 << 20).cpu.cr4 = 1 << 13


def test_vmxon_with_vmxe_clear_is_ud(machine):
    """"IF ... (CR4.VMXE = 0) ... THEN #UD"."""
    with pytest.raises(x86.UD):
        machine.cpu.vmxon(VMXON_REGION)


@pytest.mark.parametrize("fc", [0, 1, 4])
def test_vmxon_needs_feature_control_locked_and_enabled(machine, fc):
    """"IF ... (bit 0 (lock bit) of IA32_FEATURE_CONTROL MSR is clear) or (outside SMX operation
    and bit 2 of IA32_FEATURE_CONTROL MSR is clear) THEN #GP(0)"."""
    cpu = machine.cpu
    if fc:
        cpu.wrmsr(x86.msr.IA32_FEATURE_CONTROL, fc)
    cpu.cr0 = cpu.cr0 | 0x20
    cpu.cr4 = cpu.cr4 | (1 << 13)
    with pytest.raises(x86.GP) as e:
        cpu.vmxon(VMXON_REGION)
    assert "IA32_FEATURE_CONTROL" in str(e.value)


def test_feature_control_is_locked_after_lock(machine):
    """IA32_FEATURE_CONTROL: a WRMSR once the lock bit is set is #GP(0) (SDM Vol. 4 Table 2-2)."""
    cpu = machine.cpu
    cpu.wrmsr(x86.msr.IA32_FEATURE_CONTROL, 5)
    with pytest.raises(x86.GP):
        cpu.wrmsr(x86.msr.IA32_FEATURE_CONTROL, 0)
    assert cpu.rdmsr(x86.msr.IA32_FEATURE_CONTROL) == 5


def test_vmxon_needs_cr0_fixed_bits(machine):
    """24.8: bits set in IA32_VMX_CR0_FIXED0 must be 1 (NE here) or VMXON is #GP(0)."""
    cpu = machine.cpu
    cpu.wrmsr(x86.msr.IA32_FEATURE_CONTROL, 5)
    cpu.cr0 = cpu.cr0 & ~0x20
    cpu.cr4 = cpu.cr4 | (1 << 13)
    with pytest.raises(x86.GP) as e:
        cpu.vmxon(VMXON_REGION)
    assert "CR0" in str(e.value) and "FIXED0" in str(e.value)


def test_vmxon_succeeds_and_clears_flags(machine):
    """VMsucceed: CF, PF, AF, ZF, SF and OF are cleared (31.2)."""
    cpu = machine.cpu
    vmx.enable(cpu)
    cpu.rflags = 0x8D7
    cpu.vmxon(VMXON_REGION)
    assert cpu.rflags & 0x8D5 == 0
    assert cpu.vmptrst() == 0xFFFFFFFFFFFFFFFF          # "current-VMCS pointer := FFFFFFFF_FFFFFFFFH"


@pytest.mark.parametrize("addr", [VMXON_REGION + 8, 1 << x86.MAXPHYADDR])
def test_vmxon_bad_pointer_is_vmfail_invalid(machine, addr):
    """"IF addr is not 4KB-aligned or addr sets any bits beyond the physical-address width
    THEN VMfailInvalid"."""
    cpu = machine.cpu
    vmx.enable(cpu)
    with pytest.raises(vmx.VmFailInvalid) as e:
        cpu.vmxon(addr)
    assert cpu.rflags & CF and not cpu.rflags & ZF
    assert "31.3" in str(e.value.check)


@pytest.mark.parametrize("rev_delta", [1, 1 << 31])
def test_vmxon_wrong_revision_is_vmfail_invalid(machine, rev_delta):
    """"IF rev[30:0] != VMCS revision identifier supported by processor OR rev[31] = 1 THEN
    VMfailInvalid"."""
    cpu = machine.cpu
    vmx.enable(cpu)
    machine.memory.write_u32(VMXON_REGION, machine.profile.revision_id + rev_delta)
    with pytest.raises(vmx.VmFailInvalid) as e:
        cpu.vmxon(VMXON_REGION)
    assert "revision identifier" in e.value.check.rule


def test_vmxon_in_root_is_vmfail_15(root):
    """"ELSE VMfail("VMXON executed in VMX root operation")": with a current VMCS that is
    VMfailValid(15), without one VMfailInvalid."""
    cpu = root.cpu
    with pytest.raises(vmx.VmFailInvalid):
        cpu.vmxon(VMXON_REGION)
    cpu.vmclear(VMCS_A)
    cpu.vmptrld(VMCS_A)
    with pytest.raises(vmx.VmFailValid) as e:
        cpu.vmxon(VMXON_REGION)
    assert e.value.error == 15 and cpu.rflags & 0x40 and not cpu.rflags & 1
    assert cpu.vmread(vmx.Field.VM_INSTRUCTION_ERROR) == 15


def test_cr_fixed_bits_hold_in_vmx_operation(root):
    """24.8: in VMX operation, clearing CR4.VMXE or a CR0 bit fixed to 1 is #GP(0)."""
    cpu = root.cpu
    with pytest.raises(x86.GP):
        cpu.cr4 = cpu.cr4 & ~(1 << 13)
    with pytest.raises(x86.GP):
        cpu.cr0 = cpu.cr0 & ~0x20
    cpu.vmxoff()
    cpu.cr4 = cpu.cr4 & ~(1 << 13)                      # allowed again outside VMX operation


def test_vmxoff_outside_vmx_is_ud(machine):
    """VMXOFF: "IF (not in VMX operation) ... THEN #UD"."""
    with pytest.raises(x86.UD):
        machine.cpu.vmxoff()


def test_capability_msrs_are_readable_and_read_only(machine):
    """Appendix A: the capability MSRs report the profile; WRMSR to them is #GP(0)."""
    cpu = machine.cpu
    assert cpu.rdmsr(x86.msr.IA32_VMX_BASIC) == machine.profile.basic
    with pytest.raises(x86.GP):
        cpu.wrmsr(x86.msr.IA32_VMX_BASIC, 0)
    if machine.profile.true_controls:
        cpu.rdmsr(x86.msr.IA32_VMX_TRUE_PINBASED_CTLS)
    else:
        with pytest.raises(x86.GP):
            cpu.rdmsr(x86.msr.IA32_VMX_TRUE_PINBASED_CTLS)
