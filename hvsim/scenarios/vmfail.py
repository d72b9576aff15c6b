"""VMLAUNCH fails with VMfailValid: a VM-execution control breaks its capability MSR.

The VMM writes the pin-based VM-execution controls as 0 without consulting their capability
MSR (IA32_VMX_TRUE_PINBASED_CTLS on the default profile), whose allowed-0 settings require
bits 1, 2 and 4 (the "default1" class, SDM A.3.1). VMLAUNCH checks the controls (27.2.1.1) and fails with VMfailValid(7),
"VM entry with invalid control field(s)": the guest never starts and no VM exit happens; the
instruction's outcome carries the check.
"""
from __future__ import annotations

import vmx
from vmx import Field as F, ProcBased as Proc

from hvsim.scenarios import bench

NAME = "vmfail"
DESCRIPTION = ("VMLAUNCH with pin-based controls that ignore their capability MSR: VMfailValid(7) "
               "and the control check it broke")


def build(profile: str = "default"):
    m = bench.vmx_machine(profile)
    bench.load_guest(m, "mov eax, 1\nhlt")
    vmx.VmcsBuilder(m.cpu).controls(proc=Proc.HLT_EXITING).write(
        guest_rip=bench.GUEST_CODE, guest_rsp=bench.GUEST_STACK)
    m.cpu.vmwrite(F.PIN_BASED_VM_EXEC_CONTROL, 0)  # the mistake: bits 1, 2, 4 must be 1
    return m, vmx.Vmm(m)
