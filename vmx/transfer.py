"""The MSR lists of VM entry (SDM Vol. 3C 27.4) and VM exit (28.4, 28.6), and the VMX abort
(28.7) a failing VM-exit list leads to.

Guest and host state move in C (vmx._transition, from the tables of vmx.state); the lists,
which only some VMMs use, are read here: each entry is 16 bytes, (index, reserved, data).
"""
from __future__ import annotations

import x86
from vmx.exits import ExitReason as R
from vmx.fields import Field as F
from vmx.outcome import Check


IA32_SMM_MONITOR_CTL, IA32_SMBASE, IA32_FS_BASE, IA32_GS_BASE = 0x9B, 0x9E, 0xC0000100, 0xC0000101
# MSRs a list may not name besides the x2APIC MSRs (index 31:8 = 000008H): 27.4 (VM entry:
# IA32_SMM_MONITOR_CTL, written only in SMM, and IA32_SMBASE), 28.6 (VM exit: IA32_FS_BASE,
# IA32_GS_BASE, IA32_SMM_MONITOR_CTL), 28.4 (MSR store: IA32_SMBASE, read only in SMM)
ENTRY_LOAD_REFUSED = (IA32_SMM_MONITOR_CTL, IA32_SMBASE)
EXIT_LOAD_REFUSED = (IA32_FS_BASE, IA32_GS_BASE, IA32_SMM_MONITOR_CTL)
EXIT_STORE_REFUSED = (IA32_SMBASE,)


def _refused(mem, entry: int, index: int, refused) -> bool:
    """Bits 63:32 of the entry not 0, an x2APIC MSR, or an MSR the list may not name."""
    return bool(mem.read_u32(entry + 4)) or index >> 8 == 0x8 or index in refused


def _load_msr_list(cpu, addr: int, count: int, refused=ENTRY_LOAD_REFUSED) -> int:
    """27.4 / 28.6: load each entry with WRMSR; returns the 1-based number of the first entry
    that fails, or 0."""
    mem = cpu.machine.memory
    for i in range(count):
        index = mem.read_u32(addr + 16 * i)
        value = mem.read_u64(addr + 16 * i + 8)
        if _refused(mem, addr + 16 * i, index, refused):
            return i + 1
        try:
            cpu.wrmsr(index, value)
        except x86.Fault:
            return i + 1
    return 0


def entry_msr_load(cpu, vmcs):
    """27.4: the VM-entry MSR-load list; a failing entry ends VM entry with exit reason 34 and
    the entry's number as qualification (27.8). Returns that VmExit, or None."""
    from vmx import _transition
    failed_at = _load_msr_list(cpu, vmcs.read_enc(F.VM_ENTRY_MSR_LOAD_ADDR),
                               vmcs.read_enc(F.VM_ENTRY_MSR_LOAD_COUNT))
    if not failed_at:
        return None
    return _transition.entry_failure_exit(cpu, vmcs, int(R.MSR_LOAD_FAIL), failed_at, Check(
        "27.4", "VM entry", f"entry {failed_at} of the VM-entry MSR-load list could not be loaded"))


def store_msr_list(cpu, vmcs) -> int:
    """28.4: RDMSR of each entry's index into its data. An entry fails when bits 63:32 of its
    first 8 bytes are not 0, it names an x2APIC MSR or IA32_SMBASE, or RDMSR of it would
    #GP at CPL 0; returns the 1-based number of the failing entry (a VMX abort), or 0."""
    mem = cpu.machine.memory
    addr, count = vmcs.read_enc(F.VM_EXIT_MSR_STORE_ADDR), vmcs.read_enc(F.VM_EXIT_MSR_STORE_COUNT)
    for i in range(count):
        index = mem.read_u32(addr + 16 * i)
        if _refused(mem, addr + 16 * i, index, EXIT_STORE_REFUSED):
            return i + 1
        try:
            value = cpu.rdmsr(index)
        except x86.Fault:
            return i + 1
        mem.write_u64(addr + 16 * i + 8, value)
    return 0


def exit_msr_load(cpu, vmcs) -> int:
    """28.6: the VM-exit MSR-load list; returns the 1-based number of the first entry that
    fails (a VMX abort), or 0."""
    return _load_msr_list(cpu, vmcs.read_enc(F.VM_EXIT_MSR_LOAD_ADDR),
                          vmcs.read_enc(F.VM_EXIT_MSR_LOAD_COUNT), EXIT_LOAD_REFUSED)


def vmx_abort(cpu, vmcs, indicator: int, entry: int, exit):
    """28.7: a failing entry of the VM-exit MSR-store list (indicator 1) or MSR-load list (4)
    aborts the VM exit; returns the `vmx.VmxAbort` to raise."""
    from vmx import abort
    store = indicator == abort.VmxAbortIndicator.MSR_STORE
    which, section = ("VM-exit MSR-store", "28.4") if store else ("VM-exit MSR-load", "28.6")
    addr = vmcs.read_enc(F.VM_EXIT_MSR_STORE_ADDR if store else F.VM_EXIT_MSR_LOAD_ADDR) + 16 * (entry - 1)
    mem = cpu.machine.memory
    index, high = mem.read_u32(addr), mem.read_u32(addr + 4)
    if high:
        why = f"bits 63:32 of the entry are {high:#x}, not 0"
    elif index >> 8 == 0x8:
        why = "it is an x2APIC MSR (bits 31:8 = 000008H)"
    elif index in (EXIT_STORE_REFUSED if store else EXIT_LOAD_REFUSED):
        why = f"{section} does not allow this MSR in the list"
    else:
        why = ("RDMSR of it would cause #GP(0) at CPL 0" if store else
               f"WRMSR of {mem.read_u64(addr + 8):#x} to it would cause #GP(0) at CPL 0")
    detail = f"entry {entry} of the {which} list (at {addr:#x}) names MSR {index:#x}: {why}"
    return abort.vmx_abort(cpu, vmcs, indicator, detail, exit)
