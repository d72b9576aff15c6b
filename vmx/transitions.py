"""VMLAUNCH and VMRESUME: VM entry (SDM Vol. 3C chapter 27) and VM exit (chapter 28).

The sequence runs in C (vmx._transition, whose docstring lists its steps). This module holds
its Python parts: the instruction's own checks (31.3), the VM-entry checks (27.2, 27.3.1,
through vmx.checkcache) and what their failures produce, and a guest that stops without a VM
exit.
"""
from __future__ import annotations

from vmx import checkcache, instructions as ins
from vmx.errors import VmInstructionError as E
from vmx.exits import ExitReason as R
from vmx.outcome import Check


class GuestStuck(Exception):
    """The guest can make no progress and nothing will cause a VM exit (for example HLT with
    interrupts off while "HLT exiting" is 0): on hardware the VMM would never run again."""


def vmlaunch(cpu):
    from vmx import _transition
    return _transition.vmentry(cpu, True)


def vmresume(cpu):
    from vmx import _transition
    return _transition.vmentry(cpu, False)


def instruction_checks(cpu, launch: bool):
    """31.3, VMLAUNCH/VMRESUME "Operation" up to the VM-entry checks: #UD, #GP, VMfailInvalid
    without a current VMCS, VMfailValid 4 / 5 for the wrong launch state. Returns the VMCS."""
    name = "VMLAUNCH" if launch else "VMRESUME"
    ins._mode_checks(cpu, name)
    ins._cpl0(cpu, name)
    vmcs = cpu.vmx.current_vmcs()
    if vmcs is None:
        ins.vmfail_invalid(cpu, Check("31.3", name, "the current-VMCS pointer is not valid (no VMPTRLD)"))
    if launch and vmcs.launched:
        ins.vmfail_valid(cpu, E.VMLAUNCH_NONCLEAR_VMCS, Check(
            "31.3", name, "the launch state of the current VMCS is \"launched\", not \"clear\" "
            "(VMCLEAR it first, or use VMRESUME)"))
    if not launch and not vmcs.launched:
        ins.vmfail_valid(cpu, E.VMRESUME_NONLAUNCHED_VMCS, Check(
            "31.3", name, "the launch state of the current VMCS is \"clear\": use VMLAUNCH first"))
    return vmcs


def entry_checks(cpu, vmcs, launch: bool):
    """27.2 then 27.3.1: the first failing check, or None (each check skipped while what it
    read is unchanged, vmx.checkcache)."""
    return checkcache.entry_checks(cpu, vmcs, launch)


def entry_check_failed(cpu, vmcs, failure):
    """A failed check on the controls or host state is VMfailValid 7 or 8 (27.2); on the guest
    state, a VM exit with reason 33 and bit 31 set (27.8)."""
    from vmx import _transition
    if failure.kind != "guest":
        ins.vmfail_valid(cpu, failure.error, failure.check)
    return _transition.entry_failure_exit(cpu, vmcs, int(R.INVALID_STATE), failure.qualification,
                                          failure.check)


_STOPPED = {1: "halted with nothing to wake it and \"HLT exiting\" clear", 2: "shut down",
            3: "wrote the platform exit port"}


def guest_stuck(cpu, vmcs, hook, code: int):
    """The guest stopped without a VM exit: back to the host (a triple fault as exit 2, anything
    else as reason 0) and raise GuestStuck."""
    from vmx import _transition
    what = _STOPPED.get(code, f"stopped (core stop code {code})")
    message = f"the guest {what} at RIP {cpu.rip:#x} without a VM exit"
    _transition.guest_stopped_exit(cpu, vmcs, int(R.TRIPLE_FAULT) if code == 2 else 0, hook)
    raise GuestStuck(message)
