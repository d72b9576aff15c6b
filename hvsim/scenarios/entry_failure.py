"""A VM entry that fails its guest-state checks: the VMM forgot the VMCS link pointer.

VmcsBuilder writes the VMCS link pointer as FFFFFFFF_FFFFFFFFH, the value that means "no shadow
VMCS"; this VMM then clears it, a classic first-VMM mistake. VMLAUNCH passes the checks on the
controls and the host state (27.2), fails the guest-state check on the link pointer (27.3.1.5)
and reports it as a VM exit with reason 33 ("VM-entry failure due to invalid guest state") and
bit 31 set. The VMM prints the explanation and stops.
"""
from __future__ import annotations

import vmx
from vmx import Field as F, ProcBased as Proc

from hvsim.scenarios import bench

NAME = "entry-failure"
DESCRIPTION = ("VMLAUNCH with the VMCS link pointer left at 0: a VM-entry failure (exit reason 33) "
               "and the guest-state check it broke")


class ForgetfulVmm(vmx.Vmm):
    def on_invalid_state(self, ex):
        self.failure = ex.explain()
        return self.STOP


def build(profile: str = "default"):
    m = bench.vmx_machine(profile)
    bench.load_guest(m, "mov eax, 1\nhlt")
    vmx.VmcsBuilder(m.cpu).controls(proc=Proc.HLT_EXITING).write(
        guest_rip=bench.GUEST_CODE, guest_rsp=bench.GUEST_STACK)
    m.cpu.vmwrite(F.VMCS_LINK_POINTER, 0)          # the mistake
    return m, ForgetfulVmm(m)
