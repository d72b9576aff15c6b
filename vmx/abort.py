"""VMX aborts (SDM Vol. 3C 28.7 "VMX Aborts").

A problem during a VM exit that the VM exit cannot report as an exit leads to a VMX abort: the
logical processor writes a nonzero 32-bit VMX-abort indicator at byte offset 4 of the region of
the VMCS whose misconfiguration caused it, and enters the VMX-abort shutdown state, from which
only RESET wakes it (machine checks, INIT, external interrupts, NMIs, SIPIs and SMIs do not).
A VMX abort does not modify the VMCS data in the region of any active VMCS.

Here the VMM sees `VmxAbort` raised by the `vmlaunch`/`vmresume` whose VM exit aborted; the
processor then executes nothing (`cpu.run` returns a shutdown stop, every VMX instruction
raises `VmxAbort` again) until `cpu.reset()`.
"""
from __future__ import annotations

import enum

from vmx.outcome import Check


class VmxAbortIndicator(enum.IntEnum):
    """The VMX-abort indicator values of 28.7 (in our words)."""
    MSR_STORE = 1            # saving guest MSRs failed (28.4)
    HOST_PDPTE = 2           # host checking of the PDPTEs failed (28.5.4)
    VMCS_CORRUPT = 3         # the current VMCS was corrupted through its region
    MSR_LOAD = 4             # loading host MSRs failed (28.6)
    MACHINE_CHECK = 5        # a machine-check event during the VM exit (28.8)
    HOST_NOT_64 = 6          # IA-32e mode before the VM exit, "host address-space size" 0


_TEXT = {
    VmxAbortIndicator.MSR_STORE: "there was a failure in saving guest MSRs (28.4)",
    VmxAbortIndicator.HOST_PDPTE: "host checking of the page-directory-pointer-table entries failed "
                                  "(28.5.4)",
    VmxAbortIndicator.VMCS_CORRUPT: "the current VMCS was corrupted through writes to its region",
    VmxAbortIndicator.MSR_LOAD: "there was a failure on loading host MSRs (28.6)",
    VmxAbortIndicator.MACHINE_CHECK: "there was a machine-check event during the VM exit (28.8)",
    VmxAbortIndicator.HOST_NOT_64: "the processor was in IA-32e mode before the VM exit and the "
                                   "\"host address-space size\" VM-exit control was 0 (28.5)",
}
ABORT_INDICATOR_OFFSET = 4          # byte offset in the VMCS region (25.2)


def describe(indicator: int) -> str:
    return _TEXT.get(indicator, f"VMX-abort indicator {indicator}")


class VmxAbort(Exception):
    """A VM exit ended in a VMX abort (28.7). `.indicator` is the VMX-abort indicator written at
    offset 4 of the VMCS region, `.check` the rule, `.exit` the `VmExit` whose completion
    failed (its information fields as the processor recorded them). The processor is in the
    VMX-abort shutdown state until `cpu.reset()`."""

    def __init__(self, indicator: int, check: Check, exit=None):
        self.indicator = VmxAbortIndicator(indicator)
        self.check = check
        self.exit = exit
        super().__init__(str(check))

    def explain(self) -> str:
        return (f"VMX abort, indicator {int(self.indicator)}: {self.check}. The logical "
                f"processor is in the VMX-abort shutdown state; only RESET (cpu.reset()) wakes it "
                f"(SDM Vol. 3C 28.7)")


def vmx_abort(cpu, vmcs, indicator: int, detail: str, exit=None) -> VmxAbort:
    """28.7: write the VMX-abort indicator into the VMCS region, enter the VMX-abort shutdown
    state; returns the exception for the VMM."""
    cpu.machine.memory.write_u32(vmcs.address + ABORT_INDICATOR_OFFSET, int(indicator))
    st = cpu.vmx
    st.root = st.non_root = False
    st.aborted = int(indicator)
    cpu.halted = True
    return VmxAbort(indicator, Check("28.7", "VM exit", f"{describe(indicator)}: {detail}"), exit)


def aborted_check(cpu, what: str) -> VmxAbort:
    """The outcome of anything the VMM asks of a processor in the VMX-abort shutdown state."""
    ind = cpu.vmx.aborted
    return VmxAbort(ind, Check("28.7", what, f"the logical processor is in the VMX-abort shutdown "
                                            f"state (VMX abort {ind}: {describe(ind)}); only RESET "
                                            f"(cpu.reset()) wakes it"))
