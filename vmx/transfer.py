"""Moving state between the processor and the VMCS at VM entry (SDM Vol. 3C 27.3.2, 27.4) and
VM exit (28.3-28.6): guest state, host state and the MSR lists."""
from __future__ import annotations

from types import SimpleNamespace

import x86
from x86 import state as xstate
from vmx import _vmcs
from vmx.controls import EntryControls as En, ExitControls as Ex, SecondaryProcBased as Sec, ProcBased as Proc
from vmx.fields import Field as F
from vmx.state import GUEST, GUEST_CONDITIONAL, HOST, HOST_BASES, HOST_CONDITIONAL, HOST_SELECTORS


def _read(vmcs, field) -> int:
    return vmcs.read_enc(field)


def _write(vmcs, field, value: int) -> None:
    vmcs.write_enc(field, value)


def _compile(pairs) -> tuple:
    """vmx.state's (field, state name) pairs as ops for vmx._vmcs.load/save: one op per control
    register or property, one per segment (all four parts) and per descriptor table (base and
    limit), one per MSR x86.state reads with RDMSR/WRMSR; anything else by x86.state's name."""
    ops, seen = [], {}
    for field, name in pairs:
        reg, _, part = name.partition(".")
        if part:
            seen.setdefault(reg, {})[part] = int(field)
        elif name in xstate._RAW:
            ops.append((_vmcs.OP_SYS, name, int(field)))
        elif name in ("rsp", "rip", "rflags"):
            ops.append((_vmcs.OP_ATTR, name, int(field)))
        elif name in xstate._MSRS:
            ops.append((_vmcs.OP_MSR, xstate._MSRS[name], int(field)))
        else:
            ops.append((_vmcs.OP_STATE, name, int(field)))
    for reg, parts in seen.items():
        if reg in xstate.SEGMENTS and len(parts) == 4:
            ops.append((_vmcs.OP_SEG, xstate.SEGMENTS.index(reg), parts["selector"], parts["base"],
                        parts["limit"], parts["attr"]))
        elif reg in ("gdtr", "idtr") and len(parts) == 2:
            ops.append((_vmcs.OP_DTR, int(reg == "idtr"), parts["base"], parts["limit"]))
        else:
            ops += [(_vmcs.OP_STATE, f"{reg}.{part}", enc) for part, enc in parts.items()]
    return tuple(ops)


# Plain ints for the fields and control bits used below (IntEnum/IntFlag arithmetic is slow).
_F = SimpleNamespace(**{k: int(f) for k, f in F.__members__.items()})
_En, _Ex, _Proc, _Sec = (SimpleNamespace(**{k: int(m) for k, m in c.__members__.items()})
                         for c in (En, Ex, Proc, Sec))
# 28.5: the host segments as (segment number, selector field, base field or None)
_HOST_SEGS = tuple((xstate.SEGMENTS.index(seg), int(field), int(HOST_BASES[seg]) if seg in HOST_BASES else None, seg)
                   for field, seg in HOST_SELECTORS)
_LDTR = xstate.SEGMENTS.index("ldtr")

# vmx.state's tables, compiled once (the order of groups: registers, then segments, then tables)
_GUEST_OPS = _compile(GUEST)
_HOST_OPS = _compile(HOST)


def _fixed_bits(cpu, vmcs, guest: bool) -> None:
    """CR0/CR4 fixed bits: in the guest, PE and PG may be 0 with "unrestricted guest" (24.8)."""
    cpu.set_vmx_fixed_bits(True)
    if guest:
        proc = _read(vmcs, _F.CPU_BASED_VM_EXEC_CONTROL)
        sec = _read(vmcs, _F.SECONDARY_VM_EXEC_CONTROL) if proc & _Proc.ACTIVATE_SECONDARY_CONTROLS else 0
        if sec & _Sec.UNRESTRICTED_GUEST:
            cpu.set_sys_raw("cr0_must1", cpu.get_sys("cr0_must1") & ~0x80000001)


def _load_guest(cpu, vmcs) -> None:
    """27.3.2: control registers, segments, descriptor tables, RIP/RSP/RFLAGS, and the MSRs
    the VM-entry controls name; the guest/host masks become read shadows (25.6.6)."""
    entry = _read(vmcs, _F.VM_ENTRY_CONTROLS)
    _vmcs.load(cpu, vmcs, _GUEST_OPS)
    for field, name, entry_bit, _ in GUEST_CONDITIONAL:
        if entry & entry_bit:
            xstate.set_state(cpu, name, _read(vmcs, field))
    efer = cpu.get_sys("efer")
    if not entry & _En.LOAD_IA32_EFER:
        # 27.3.2.1: without "load IA32_EFER", LMA and LME follow "IA-32e mode guest"
        ia32e = bool(entry & _En.IA32E_MODE)
        efer = (efer & ~0x500) | (0x500 if ia32e else 0)
    cpu.set_sys_raw("efer", efer)
    cpu.set_sys_raw("cr0_read_mask", _read(vmcs, _F.CR0_GUEST_HOST_MASK))
    cpu.set_sys_raw("cr0_read_shadow", _read(vmcs, _F.CR0_READ_SHADOW))
    cpu.set_sys_raw("cr4_read_mask", _read(vmcs, _F.CR4_GUEST_HOST_MASK))
    cpu.set_sys_raw("cr4_read_shadow", _read(vmcs, _F.CR4_READ_SHADOW))
    _fixed_bits(cpu, vmcs, guest=True)
    cpu.refresh_mode()
    cpu.halted = _read(vmcs, _F.GUEST_ACTIVITY_STATE) == 1


def _save_guest(cpu, vmcs) -> None:
    """28.3: guest state is saved; the MSRs per the VM-exit controls."""
    exit_ctls = _read(vmcs, _F.VM_EXIT_CONTROLS)
    _vmcs.save(cpu, vmcs, _GUEST_OPS)
    for field, name, _, exit_bit in GUEST_CONDITIONAL:
        if exit_ctls & exit_bit or (field == _F.GUEST_DR7 or field == _F.GUEST_IA32_DEBUGCTL) and exit_ctls & _Ex.SAVE_DEBUG_CONTROLS:
            _write(vmcs, field, xstate.get_state(cpu, name))
    _write(vmcs, _F.GUEST_ACTIVITY_STATE, 1 if cpu.halted else 0)


def _load_host(cpu, vmcs) -> None:
    """28.5: host control registers, RSP, RIP, flat segments from the selectors and bases, RFLAGS
    = 2, DR7 = 400H, EFER.LMA/LME = "host address-space size"."""
    exit_ctls = _read(vmcs, _F.VM_EXIT_CONTROLS)
    _vmcs.load(cpu, vmcs, _HOST_OPS)
    for field, name, bit in HOST_CONDITIONAL:
        if exit_ctls & bit:
            xstate.set_state(cpu, name, _read(vmcs, field))
    long_host = bool(exit_ctls & _Ex.HOST_ADDR_SPACE_SIZE)
    for index, field, base_field, seg in _HOST_SEGS:
        sel = vmcs.read_enc(field)
        base = vmcs.read_enc(base_field) if base_field is not None else 0
        if seg == "cs":
            attr = 0xA09B if long_host else 0xC09B
        elif seg == "tr":
            attr = 0x8B
        elif sel == 0:
            attr = 0x10000 | (0x93 if seg != "ss" else 0x93)
        else:
            attr = 0xC093
        limit = 0x67 if seg == "tr" else 0xFFFFFFFF
        cpu.set_seg(index, sel, base, limit, attr)
    cpu.set_seg(_LDTR, 0, 0, 0, 0x10000)
    cpu.set_dtr(0, _read(vmcs, _F.HOST_GDTR_BASE), 0xFFFF)
    cpu.set_dtr(1, _read(vmcs, _F.HOST_IDTR_BASE), 0xFFFF)
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


