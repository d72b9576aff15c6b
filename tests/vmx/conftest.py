import pytest

import vmx

from regions import VMCS_A, VMCS_B, VMXON_REGION


@pytest.fixture(params=["default", "minimal", "no-true"])
def machine(request):
    m = vmx.Machine(memory_size=16 << 20, profile=request.param)
    for pa in (VMXON_REGION, VMCS_A, VMCS_B):
        m.memory.write_u32(pa, m.profile.revision_id)
    return m


@pytest.fixture
def root(machine):
    """A processor in VMX root operation with no current VMCS."""
    vmx.enable(machine.cpu)
    machine.cpu.vmxon(VMXON_REGION)
    return machine
