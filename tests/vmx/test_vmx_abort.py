"""VMX aborts (SDM Vol. 3C 28.7), from VM exits whose MSR lists fail (28.4, 28.6).

28.7: "A problem encountered during a VM exit leads to a VMX abort. A VMX abort takes a logical
processor into a shutdown state ... On a VMX abort, a logical processor saves a nonzero 32-bit
VMX-abort indicator field at byte offset 4 in the VMCS region of the VMCS whose
misconfiguration caused the failure. The following values are used: 1. There was a failure in
saving guest MSRs ... 4. There was a failure on loading host MSRs." "RESET is the only event
that wakes a logical processor from the VMX-abort shutdown state."

28.4: processing of a VM-exit MSR-store entry fails if bits 31:8 are 000008H (an x2APIC MSR),
the MSR can be read only in SMM (IA32_SMBASE), bits 63:32 are not all 0, or RDMSR of it would
#GP. 28.6: a VM-exit MSR-load entry fails for IA32_FS_BASE, IA32_GS_BASE, an x2APIC MSR,
IA32_SMM_MONITOR_CTL, bits 63:32 not all 0, or a WRMSR that would #GP. "If processing fails for
any entry, a VMX abort occurs."
"""
import pytest

import vmx
import x86
from vmx import ExitReason as R, Field as F
from guest import GUEST_CODE, VMCS, VMXON_REGION, vm

LOAD, STORE = 0x30000, 0x31000
LSTAR, EFER, FS_BASE, SMBASE = 0xC0000082, 0xC0000080, 0xC0000100, 0x9E


def msr_list(m, addr, entries):
    for i, entry in enumerate(entries):
        index, value = entry[:2]
        high = entry[2] if len(entry) > 2 else 0
        m.memory.write_u32(addr + 16 * i, index)
        m.memory.write_u32(addr + 16 * i + 4, high)
        m.memory.write_u64(addr + 16 * i + 8, value)


def with_exit_load(entries, source="vmcall"):
    m = vm(source)
    msr_list(m, LOAD, entries)
    m.cpu.vmwrite(F.VM_EXIT_MSR_LOAD_ADDR, LOAD)
    m.cpu.vmwrite(F.VM_EXIT_MSR_LOAD_COUNT, len(entries))
    return m


def with_exit_store(entries):
    m = vm("vmcall")
    msr_list(m, STORE, [(i, 0xDEAD, *rest) for i, *rest in entries])
    m.cpu.vmwrite(F.VM_EXIT_MSR_STORE_ADDR, STORE)
    m.cpu.vmwrite(F.VM_EXIT_MSR_STORE_COUNT, len(entries))
    return m


def test_a_valid_exit_msr_load_list_loads_without_abort():
    m = with_exit_load([(LSTAR, 0xFFFF800000001000)])
    assert m.cpu.vmlaunch().reason == R.VMCALL
    assert m.cpu.rdmsr(LSTAR) == 0xFFFF800000001000
    assert m.memory.read_u32(VMCS + 4) == 0


@pytest.mark.parametrize("entries,number", [
    ([(FS_BASE, 0)], 1),                                  # IA32_FS_BASE may not be loaded
    ([(LSTAR, 0xFFFF800000002000), (0xC0000101, 0)], 2),  # IA32_GS_BASE
    ([(0x808, 0)], 1),                                    # x2APIC TPR
    ([(0x9B, 0)], 1),                                     # IA32_SMM_MONITOR_CTL
    ([(LSTAR, 0, 1)], 1),                                 # bits 63:32 of the entry
    ([(LSTAR, 0xFFFF800000002000), (EFER, 1 << 9)], 2),   # WRMSR would #GP (reserved EFER bit)
    ([(0x4000_0000, 0)], 1),                              # no such MSR: WRMSR would #GP
])
def test_a_failing_exit_msr_load_entry_is_vmx_abort_4(entries, number):
    m = with_exit_load(entries)
    with pytest.raises(vmx.VmxAbort) as e:
        m.cpu.vmlaunch()
    assert e.value.indicator == 4 == vmx.VmxAbortIndicator.MSR_LOAD
    assert m.memory.read_u32(VMCS + 4) == 4
    assert e.value.check.section == "28.7" and f"entry {number} of the VM-exit MSR-load" in str(e.value)
    assert e.value.exit.reason == R.VMCALL              # the exit whose completion failed
    if number == 2:
        assert m.cpu.rdmsr(LSTAR) == 0xFFFF800000002000  # entries before the failing one loaded


@pytest.mark.parametrize("entries,number", [
    ([(0x808,)], 1), ([(LSTAR,), (SMBASE,)], 2), ([(LSTAR, 1)], 1), ([(0x4000_0000,)], 1)])
def test_a_failing_exit_msr_store_entry_is_vmx_abort_1(entries, number):
    m = with_exit_store(entries)
    with pytest.raises(vmx.VmxAbort) as e:
        m.cpu.vmlaunch()
    assert e.value.indicator == vmx.VmxAbortIndicator.MSR_STORE == 1
    assert m.memory.read_u32(VMCS + 4) == 1
    assert f"entry {number} of the VM-exit MSR-store" in str(e.value)


def test_a_vm_entry_failure_that_loads_a_bad_exit_list_also_aborts():
    """27.8: a VM-entry failure after the guest-state checks loads the VM-exit MSR-load list
    as a VM exit would: its failure is a VMX abort too."""
    m = with_exit_load([(FS_BASE, 0)])
    m.cpu.vmwrite(F.GUEST_RFLAGS, 0)                    # bit 1 must be 1: exit reason 33
    with pytest.raises(vmx.VmxAbort) as e:
        m.cpu.vmlaunch()
    assert e.value.indicator == 4 and e.value.exit.entry_failure


def test_nothing_runs_after_a_vmx_abort_until_reset():
    """The VMX-abort shutdown state: VMX instructions and guest code do not execute; RESET
    (cpu.reset()) brings the processor back, outside VMX operation."""
    m = with_exit_load([(FS_BASE, 0)])
    with pytest.raises(vmx.VmxAbort) as e:
        m.cpu.vmlaunch()
    assert "VMX-abort shutdown state" in e.value.explain() and "28.7" in e.value.explain()
    for op, args in (("vmresume", ()), ("vmlaunch", ()), ("vmread", (F.GUEST_RIP,)),
                     ("vmwrite", (F.GUEST_RIP, 0)), ("vmptrst", ()), ("vmclear", (VMCS,)),
                     ("vmxoff", ()), ("vmxon", (VMXON_REGION,))):
        with pytest.raises(vmx.VmxAbort) as e:
            getattr(m.cpu, op)(*args)
        assert e.value.indicator == 4 and "RESET" in str(e.value)
    icount = m.cpu.icount
    assert m.cpu.run().reason == "shutdown" and m.cpu.icount == icount
    m.cpu.reset()
    assert not m.cpu.vmx.in_operation and m.cpu.vmx.aborted == 0
    with pytest.raises(x86.UD):
        m.cpu.vmread(F.GUEST_RIP)                        # outside VMX operation
    vmx.enable(m.cpu)
    m.cpu.vmxon(VMXON_REGION)                           # VMX operation can start again


def test_the_processor_never_reads_the_abort_indicator():
    """28.7: "A logical processor never reads the VMX-abort indicator in a VMCS region": a VMM
    clears it (recommended) or not, VM entries go on."""
    m = vm("vmcall")
    m.memory.write_u32(VMCS + 4, 4)
    assert m.cpu.vmlaunch().reason == R.VMCALL
    assert m.memory.read_u32(VMCS + 4) == 4
