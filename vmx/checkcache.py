"""The VM-entry checks (SDM Vol. 3C 27.2, 27.3.1) at VMLAUNCH/VMRESUME, remembered per VMCS.

`entry_checks(cpu, vmcs, launch)` returns what `run_control_checks`, `run_host_checks` and then
`run_guest_checks` of `vmx.entry` would return: the first failure, or None. A check that passed
is not run again while the fields it read keep their values and it read no memory
(vmx._vmcs.CheckMemo says why that is exact); VMWRITE to a control or host-state field marks
the VMCS so that the checks of 27.2 are looked at again.
"""
from __future__ import annotations

from vmx._vmcs import CheckMemo, PhysReader


def entry_checks(cpu, vmcs, launch: bool):
    from vmx import entry
    machine = cpu.machine
    key = (machine.profile, bool(launch), bool(cpu.efer & 0x400), cpu.vmx.vmxon_pointer,
           machine.memory)
    memo = vmcs.memo
    if memo is None:
        memo = vmcs.memo = CheckMemo()
    if memo.key != key or memo.ctx is None:
        memo.reader = PhysReader(machine.memory.read)
        memo.ctx = entry.EntryContext(vmcs=vmcs, profile=machine.profile, read_phys=memo.reader,
                                      launch=bool(launch), host_lma=bool(cpu.efer & 0x400),
                                      vmxon_pointer=cpu.vmx.vmxon_pointer)
    return memo.run(vmcs, key, entry.CONTROL_CHECKS, entry.HOST_CHECKS, entry.GUEST_CHECKS,
                    bool(launch), bool(cpu.efer & 0x400), cpu.vmx.vmxon_pointer)
