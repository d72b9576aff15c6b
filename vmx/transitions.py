"""VMLAUNCH and VMRESUME: VM entry (SDM Vol. 3C chapter 27) and VM exit (chapter 28).

VM entry: the instruction's own checks (31.3), then the checks on the controls and host state
(27.2, VMfailValid 7 or 8), then the guest-state checks (27.3.1; failure is a VM exit with reason
33 and bit 31 set), then loading guest state (27.3.2) and the MSR-load list (27.4; failure: exit
34), then event injection (27.6), then the guest runs until a VM exit. A VM exit records the
exit information (28.2), saves guest state (28.3), stores MSRs (28.4), loads host state (28.5)
and MSRs (28.6).
"""
from __future__ import annotations

from vmx import checkcache, events, instructions as ins
from vmx.errors import VmInstructionError as E
from vmx.exits import ExitReason as R
from vmx.fields import Field as F, field_info
from vmx.nonroot import NonRoot
from vmx.outcome import Check
from vmx.transfer import _load_guest, _load_host, _load_msr_list, _save_guest, _store_msr_list


class GuestStuck(Exception):
    """The guest can make no progress and nothing will cause a VM exit (for example HLT with
    interrupts off while "HLT exiting" is 0): on hardware the VMM would never run again."""


def _read(vmcs, field) -> int:
    return vmcs.read(field_info(field))


def _write(vmcs, field, value: int) -> None:
    vmcs.write(field_info(field), value)


def vmlaunch(cpu):
    return _vmentry(cpu, launch=True)


def vmresume(cpu):
    return _vmentry(cpu, launch=False)


def _vmentry(cpu, launch: bool):
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
    # 27.2 then 27.3.1, each check skipped while what it read is unchanged (vmx.checkcache)
    failure = checkcache.entry_checks(cpu, vmcs, launch)
    if failure is not None:
        if failure.kind != "guest":
            ins.vmfail_valid(cpu, failure.error, failure.check)
        return _entry_failure(cpu, vmcs, R.INVALID_STATE, failure.qualification, failure.check)
    _load_guest(cpu, vmcs)
    failed_at = _load_msr_list(cpu, _read(vmcs, F.VM_ENTRY_MSR_LOAD_ADDR), _read(vmcs, F.VM_ENTRY_MSR_LOAD_COUNT))
    if failed_at:
        return _entry_failure(cpu, vmcs, R.MSR_LOAD_FAIL, failed_at, Check(
            "27.4", name, f"entry {failed_at} of the VM-entry MSR-load list could not be loaded"))
    vmcs.launched = True
    cpu.vmx.root, cpu.vmx.non_root = False, True
    _write(vmcs, F.VM_INSTRUCTION_ERROR, 0)
    return _run_guest(cpu, vmcs)


# --- running the guest and the exit ---------------------------------------------------------------

def _run_guest(cpu, vmcs):
    hook = NonRoot(cpu, vmcs)
    cpu.set_hook(hook)
    try:
        events.arm(cpu, vmcs, hook)             # 27.6 event injection, 27.7 special features
        stop = cpu.run()
    finally:
        cpu.set_hook(None)
        events.disarm(cpu)
    if stop.reason != "vmexit":
        cpu.vmx.non_root, cpu.vmx.root = False, True
        what = {"hlt": "halted with nothing to wake it and \"HLT exiting\" clear",
                "shutdown": "shut down", "exit": "wrote the platform exit port"}.get(stop.reason, stop.reason)
        _exit_to_host(cpu, vmcs, {"reason": int(R.TRIPLE_FAULT) if stop.reason == "shutdown" else 0}, hook=hook)
        raise GuestStuck(f"the guest {what} at RIP {stop.rip:#x} without a VM exit")
    return _exit_to_host(cpu, vmcs, hook.exit, hook=hook)


def _exit_to_host(cpu, vmcs, info: dict, check=None, hook=None):
    """28.2-28.6: record the exit information, save the guest, load the host."""
    _write(vmcs, F.VM_EXIT_REASON, info["reason"])
    _write(vmcs, F.EXIT_QUALIFICATION, info.get("qualification", 0))
    _write(vmcs, F.GUEST_LINEAR_ADDRESS, info.get("guest_linear_address", 0))
    _write(vmcs, F.GUEST_PHYSICAL_ADDRESS, info.get("guest_physical_address", 0))
    _write(vmcs, F.VM_EXIT_INSTRUCTION_LEN, info.get("instruction_length", 0))
    _write(vmcs, F.VMX_INSTRUCTION_INFO, info.get("instruction_info", 0))
    _write(vmcs, F.VM_EXIT_INTR_INFO, info.get("interruption_info", 0))
    _write(vmcs, F.VM_EXIT_INTR_ERROR_CODE, info.get("interruption_error_code", 0))
    _write(vmcs, F.IDT_VECTORING_INFO_FIELD, info.get("idt_vectoring_info", 0))
    _write(vmcs, F.IDT_VECTORING_ERROR_CODE, info.get("idt_vectoring_error_code", 0))
    if not info["reason"] & (1 << 31):
        events.save(cpu, vmcs, hook)
        _save_guest(cpu, vmcs)
        _store_msr_list(cpu, _read(vmcs, F.VM_EXIT_MSR_STORE_ADDR), _read(vmcs, F.VM_EXIT_MSR_STORE_COUNT))
    _load_host(cpu, vmcs)
    _load_msr_list(cpu, _read(vmcs, F.VM_EXIT_MSR_LOAD_ADDR), _read(vmcs, F.VM_EXIT_MSR_LOAD_COUNT))
    cpu.vmx.non_root, cpu.vmx.root = False, True
    return _vmexit_record(vmcs, check)


def _entry_failure(cpu, vmcs, reason, qualification, check):
    """27.8: a VM-entry failure after the guest checks is a VM exit with bit 31 of the exit reason
    set; the guest state is not saved, the host state is loaded."""
    return _exit_to_host(cpu, vmcs, {"reason": int(reason) | (1 << 31), "qualification": qualification},
                         check)


def _vmexit_record(vmcs, check):
    from vmx.exit_record import VmExit
    return VmExit.from_fields(lambda f: _read(vmcs, f), check=check)
