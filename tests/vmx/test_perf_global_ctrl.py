"""IA32_PERF_GLOBAL_CTRL at VM entry and VM exit (SDM Vol. 3C 27.3.2.1, 28.5.1; checks 27.3.1.1,
27.2.2), from real guest code.

27.3.2.1: "If the 'load IA32_PERF_GLOBAL_CTRL' VM-entry control is 1, the IA32_PERF_GLOBAL_CTRL
MSR is loaded from the IA32_PERF_GLOBAL_CTRL field." 28.5.1: "If the 'load
IA32_PERF_GLOBAL_CTRL' VM-exit control is 1, the IA32_PERF_GLOBAL_CTRL MSR is loaded from the
IA32_PERF_GLOBAL_CTRL field." 27.3.1.1 / 27.2.2: "bits reserved in the IA32_PERF_GLOBAL_CTRL MSR
must be 0 in the field for that register".

The simulated processor reports architectural performance monitoring version 2 with no
general-purpose and no fixed-function counters (CPUID.0AH), so IA32_PERF_GLOBAL_CTRL (38FH)
exists and every one of its bits is reserved: 0 is the only value WRMSR, VM entry or VM exit
can load.
"""
import pytest

import x86
import x86.state
from vmx import EntryControls as En, ExitControls as Ex, ExitReason as R, Field as F, ProcBased as P
import vmx
from guest import MSR_BITMAP, vm

MSR = 0x38F


def test_the_msr_exists_with_every_bit_reserved():
    m = vmx.Machine(memory_size=16 << 20)
    eax, _, _, edx = m.cpu.cpuid_table.query(0xA, 0)
    assert (eax & 0xFF, (eax >> 8) & 0xFF, edx & 0x1F) == (2, 0, 0)
    assert m.cpu.rdmsr(MSR) == 0
    m.cpu.wrmsr(MSR, 0)
    for bit in (0, 1, 31, 32, 34, 63):
        with pytest.raises(x86.GP):
            m.cpu.wrmsr(MSR, 1 << bit)


def test_guest_code_reads_and_writes_it():
    """Through an MSR bitmap with its bits clear: RDMSR reads 0, WRMSR of 0 is accepted, WRMSR
    of a reserved bit is #GP(0)."""
    m = vm("mov ecx, 0x38f\nmov eax, 5\nrdmsr\nmov rbx, rax\nxor eax, eax\nxor edx, edx\nwrmsr\n"
           "inc eax\nwrmsr\nvmcall", proc=P.USE_MSR_BITMAPS)
    m.cpu.vmwrite(F.MSR_BITMAP, MSR_BITMAP)
    m.cpu.vmwrite(F.EXCEPTION_BITMAP, 1 << 13)
    ex = m.cpu.vmlaunch()
    assert ex.reason == R.EXCEPTION_NMI and ex.interruption_info.vector == 13
    assert m.cpu.rbx == 0 and m.cpu.rax == 1


@pytest.fixture
def loads(monkeypatch):
    """The state VM entry and VM exit load by name (x86.state), in order."""
    seen = []
    original = x86.state.set_state

    def spy(cpu, name, value):
        seen.append((name, value))
        original(cpu, name, value)
    monkeypatch.setattr(x86.state, "set_state", spy)
    return seen


@pytest.mark.parametrize("entry,exit", [(True, True), (True, False), (False, True), (False, False)])
def test_entry_and_exit_load_it_by_their_controls(loads, entry, exit):
    m = vm("vmcall", entry=En.LOAD_IA32_PERF_GLOBAL_CTRL if entry else 0,
           exit=Ex.LOAD_IA32_PERF_GLOBAL_CTRL if exit else 0)
    assert m.cpu.vmlaunch().reason == R.VMCALL
    got = [v for n, v in loads if n == "perf_global_ctrl"]
    assert got == [0] * (entry + exit)
    assert m.cpu.rdmsr(MSR) == 0


def test_reserved_bits_in_the_guest_field_fail_vm_entry():
    """27.3.1.1: a VM-entry failure, exit reason 33 naming the field."""
    m = vm("vmcall", entry=En.LOAD_IA32_PERF_GLOBAL_CTRL)
    m.cpu.vmwrite(F.GUEST_IA32_PERF_GLOBAL_CTRL, 1)
    ex = m.cpu.vmlaunch()
    assert ex.entry_failure and ex.reason == R.INVALID_STATE
    assert "GUEST_IA32_PERF_GLOBAL_CTRL" in ex.explain()


def test_reserved_bits_in_the_host_field_fail_vm_entry():
    """27.2.2: VMfailValid(8), invalid host-state field."""
    m = vm("vmcall", exit=Ex.LOAD_IA32_PERF_GLOBAL_CTRL)
    m.cpu.vmwrite(F.HOST_IA32_PERF_GLOBAL_CTRL, 1 << 32)
    with pytest.raises(vmx.VmFailValid) as e:
        m.cpu.vmlaunch()
    assert e.value.error == 8 and "HOST_IA32_PERF_GLOBAL_CTRL" in e.value.check.rule
