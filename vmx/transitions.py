"""VMLAUNCH and VMRESUME: VM entry (SDM Vol. 3C chapter 27) and VM exit (chapter 28).

VM entry: the instruction's own checks (31.3), then the checks on the controls and host state
(27.2, VMfailValid 7 or 8), then the guest-state checks (27.3.1; failure is a VM exit with reason
33 and bit 31 set), then loading guest state (27.3.2) and the MSR-load list (27.4; failure: exit
34), then event injection (27.6), then the guest runs until a VM exit. A VM exit records the
exit information (28.2), saves guest state (28.3), stores MSRs (28.4), loads host state (28.5)
and MSRs (28.6).
"""
from __future__ import annotations

import x86
from x86 import state as xstate
from vmx import instructions as ins
from vmx import profiles
from vmx.controls import EntryControls as En, ExitControls as Ex, SecondaryProcBased as Sec, ProcBased as Proc
from vmx.errors import VmInstructionError as E
from vmx.exits import ExitReason as R
from vmx.fields import Field as F, field_info
from vmx.nonroot import NonRoot
from vmx.outcome import Check
from vmx.state import GUEST, GUEST_CONDITIONAL, HOST, HOST_BASES, HOST_CONDITIONAL, HOST_SELECTORS


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
    checks = _entry_checks()
    if checks is not None:
        ctx = checks.EntryContext(vmcs=vmcs, profile=cpu.machine.profile,
                                  read_phys=cpu.machine.memory.read, launch=launch,
                                  host_lma=bool(cpu.efer & 0x400), vmxon_pointer=cpu.vmx.vmxon_pointer)
        for run in (checks.run_control_checks, checks.run_host_checks):
            failure = run(ctx)
            if failure is not None:
                ins.vmfail_valid(cpu, failure.error, failure.check)
        failure = checks.run_guest_checks(ctx)
        if failure is not None:
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


def _entry_checks():
    try:
        from vmx import entry
    except ImportError:
        return None
    return entry if hasattr(entry, "run_guest_checks") else None


# --- loading and saving state ---------------------------------------------------------------------

def _fixed_bits(cpu, vmcs, guest: bool) -> None:
    """CR0/CR4 fixed bits: in the guest, PE and PG may be 0 with "unrestricted guest" (24.8)."""
    cpu.set_vmx_fixed_bits(True)
    if guest:
        proc = _read(vmcs, F.CPU_BASED_VM_EXEC_CONTROL)
        sec = _read(vmcs, F.SECONDARY_VM_EXEC_CONTROL) if proc & Proc.ACTIVATE_SECONDARY_CONTROLS else 0
        if sec & Sec.UNRESTRICTED_GUEST:
            cpu.set_sys_raw("cr0_must1", cpu.get_sys("cr0_must1") & ~0x80000001)


def _load_guest(cpu, vmcs) -> None:
    """27.3.2: control registers, segments, descriptor tables, RIP/RSP/RFLAGS, and the MSRs
    the VM-entry controls name; the guest/host masks become read shadows (25.6.6)."""
    entry = _read(vmcs, F.VM_ENTRY_CONTROLS)
    for field, name in GUEST:
        xstate.set_state(cpu, name, _read(vmcs, field))
    for field, name, entry_bit, _ in GUEST_CONDITIONAL:
        if entry & entry_bit:
            xstate.set_state(cpu, name, _read(vmcs, field))
    efer = cpu.get_sys("efer")
    if not entry & En.LOAD_IA32_EFER:
        # 27.3.2.1: without "load IA32_EFER", LMA and LME follow "IA-32e mode guest"
        ia32e = bool(entry & En.IA32E_MODE)
        efer = (efer & ~0x500) | (0x500 if ia32e else 0)
    cpu.set_sys_raw("efer", efer)
    cpu.set_sys_raw("cr0_read_mask", _read(vmcs, F.CR0_GUEST_HOST_MASK))
    cpu.set_sys_raw("cr0_read_shadow", _read(vmcs, F.CR0_READ_SHADOW))
    cpu.set_sys_raw("cr4_read_mask", _read(vmcs, F.CR4_GUEST_HOST_MASK))
    cpu.set_sys_raw("cr4_read_shadow", _read(vmcs, F.CR4_READ_SHADOW))
    _fixed_bits(cpu, vmcs, guest=True)
    cpu.refresh_mode()
    cpu.halted = _read(vmcs, F.GUEST_ACTIVITY_STATE) == 1


def _save_guest(cpu, vmcs) -> None:
    """28.3: guest state is saved; the MSRs per the VM-exit controls."""
    exit_ctls = _read(vmcs, F.VM_EXIT_CONTROLS)
    for field, name in GUEST:
        _write(vmcs, field, xstate.get_state(cpu, name))
    for field, name, _, exit_bit in GUEST_CONDITIONAL:
        if exit_ctls & exit_bit or (field == F.GUEST_DR7 or field == F.GUEST_IA32_DEBUGCTL) and exit_ctls & Ex.SAVE_DEBUG_CONTROLS:
            _write(vmcs, field, xstate.get_state(cpu, name))
    _write(vmcs, F.GUEST_ACTIVITY_STATE, 1 if cpu.halted else 0)


def _load_host(cpu, vmcs) -> None:
    """28.5: host control registers, RSP, RIP, flat segments from the selectors and bases, RFLAGS
    = 2, DR7 = 400H, EFER.LMA/LME = "host address-space size"."""
    exit_ctls = _read(vmcs, F.VM_EXIT_CONTROLS)
    for field, name in HOST:
        xstate.set_state(cpu, name, _read(vmcs, field))
    for field, name, bit in HOST_CONDITIONAL:
        if exit_ctls & bit:
            xstate.set_state(cpu, name, _read(vmcs, field))
    long_host = bool(exit_ctls & Ex.HOST_ADDR_SPACE_SIZE)
    for field, seg in HOST_SELECTORS:
        sel = _read(vmcs, field)
        base = _read(vmcs, HOST_BASES[seg]) if seg in HOST_BASES else 0
        if seg == "cs":
            attr = 0xA09B if long_host else 0xC09B
        elif seg == "tr":
            attr = 0x8B
        elif sel == 0:
            attr = 0x10000 | (0x93 if seg != "ss" else 0x93)
        else:
            attr = 0xC093
        limit = 0x67 if seg == "tr" else 0xFFFFFFFF
        cpu.set_seg(xstate.SEGMENTS.index(seg), sel, base, limit, attr)
    cpu.set_seg(xstate.SEGMENTS.index("ldtr"), 0, 0, 0, 0x10000)
    cpu.set_dtr(0, _read(vmcs, F.HOST_GDTR_BASE), 0xFFFF)
    cpu.set_dtr(1, _read(vmcs, F.HOST_IDTR_BASE), 0xFFFF)
    efer = cpu.get_sys("efer")
    efer = (efer & ~0x500) | (0x500 if long_host else 0)
    cpu.set_sys_raw("efer", efer)
    cpu.set_sys_raw("dr7", 0x400)
    for n in ("cr0_read_mask", "cr0_read_shadow", "cr4_read_mask", "cr4_read_shadow"):
        cpu.set_sys_raw(n, 0)
    cpu.rflags = 2
    cpu.halted = False
    _fixed_bits(cpu, vmcs, guest=False)
    cpu.refresh_mode()


def _load_msr_list(cpu, addr: int, count: int) -> int:
    """27.4 / 28.6: each 16-byte entry is (index, reserved, data); returns the 1-based number of
    the first entry that fails, or 0."""
    mem = cpu.machine.memory
    for i in range(count):
        index = mem.read_u32(addr + 16 * i)
        value = mem.read_u64(addr + 16 * i + 8)
        # 27.4: bits 63:32 of the entry reserved, x2APIC MSRs (index 31:8 = 000008H),
        # IA32_SMM_MONITOR_CTL and IA32_SMBASE may not be loaded
        if mem.read_u32(addr + 16 * i + 4) or index >> 8 == 0x8 or index in (0x9B, 0x9E):
            return i + 1
        try:
            cpu.wrmsr(index, value)
        except x86.Fault:
            return i + 1
    return 0


def _store_msr_list(cpu, addr: int, count: int) -> None:
    mem = cpu.machine.memory
    for i in range(count):
        index = mem.read_u32(addr + 16 * i)
        try:
            mem.write_u64(addr + 16 * i + 8, cpu.rdmsr(index))
        except x86.Fault:
            break


# --- running the guest and the exit ---------------------------------------------------------------

def _run_guest(cpu, vmcs):
    hook = NonRoot(cpu, vmcs)
    cpu.set_hook(hook)
    try:
        stop = cpu.run()
    finally:
        cpu.set_hook(None)
    if stop.reason != "vmexit":
        cpu.vmx.non_root, cpu.vmx.root = False, True
        what = {"hlt": "halted with nothing to wake it and \"HLT exiting\" clear",
                "shutdown": "shut down", "exit": "wrote the platform exit port"}.get(stop.reason, stop.reason)
        _exit_to_host(cpu, vmcs, {"reason": int(R.TRIPLE_FAULT) if stop.reason == "shutdown" else 0})
        raise GuestStuck(f"the guest {what} at RIP {stop.rip:#x} without a VM exit")
    return _exit_to_host(cpu, vmcs, hook.exit)


def _exit_to_host(cpu, vmcs, info: dict, check=None):
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
