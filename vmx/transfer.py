"""The MSR lists of VM entry (SDM Vol. 3C 27.4) and VM exit (28.4, 28.6).

Guest and host state move in C (vmx._transition, from the tables of vmx.state); the lists,
which only some VMMs use, are read here: each entry is 16 bytes, (index, reserved, data).
"""
from __future__ import annotations

import x86
from vmx.exits import ExitReason as R
from vmx.fields import Field as F
from vmx.outcome import Check


def _load_msr_list(cpu, addr: int, count: int) -> int:
    """27.4 / 28.6: load each entry with WRMSR; returns the 1-based number of the first entry
    that fails, or 0."""
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


def store_msr_list(cpu, vmcs) -> None:
    """28.4: RDMSR of each entry's index into its data."""
    mem = cpu.machine.memory
    addr, count = vmcs.read_enc(F.VM_EXIT_MSR_STORE_ADDR), vmcs.read_enc(F.VM_EXIT_MSR_STORE_COUNT)
    for i in range(count):
        index = mem.read_u32(addr + 16 * i)
        try:
            value = cpu.rdmsr(index)
        except x86.Fault:
            break
        mem.write_u64(addr + 16 * i + 8, value)


def exit_msr_load(cpu, vmcs) -> None:
    """28.6: the VM-exit MSR-load list."""
    _load_msr_list(cpu, vmcs.read_enc(F.VM_EXIT_MSR_LOAD_ADDR), vmcs.read_enc(F.VM_EXIT_MSR_LOAD_COUNT))
