"""INVEPT and INVVPID executed by the VMM in VMX root operation (SDM Vol. 3C 31.3 "INVEPT -
Invalidate Translations Derived from EPT", "INVVPID - Invalidate Translations Based on VPID"),
each following the manual's Operation in order: #UD, #GP, then VMfail(28, "invalid operand to
INVEPT/INVVPID"), then the invalidation and VMsucceed.

The operands are what the instruction would read: the type (register operand) and the
descriptor's parts (INVEPT: the EPTP, bits 63:0; INVVPID: bits 63:0 with the VPID in 15:0 and
bits 63:16 reserved, then the linear address). What each type invalidates is 29.4.3.
"""
from __future__ import annotations

import enum

from vmx import instructions as ins, profiles as P
from vmx.controls import ProcBased as Proc, SecondaryProcBased as Sec
from vmx.errors import VmInstructionError as E
from vmx.fields import Field as F
from vmx.outcome import Check


class InveptType(enum.IntEnum):
    """The INVEPT types (31.3; supported ones in IA32_VMX_EPT_VPID_CAP bits 25, 26)."""
    SINGLE_CONTEXT = 1
    ALL_CONTEXT = 2


class InvvpidType(enum.IntEnum):
    """The INVVPID types (31.3; supported ones in IA32_VMX_EPT_VPID_CAP bits 40-43)."""
    INDIVIDUAL_ADDRESS = 0
    SINGLE_CONTEXT = 1
    ALL_CONTEXT = 2
    SINGLE_CONTEXT_RETAINING_GLOBALS = 3


def _allowed1(cpu, bit: int) -> bool:
    prof = cpu.machine.profile
    return prof.has(P.IA32_VMX_PROCBASED_CTLS2) and bool(P.allowed(prof, P.IA32_VMX_PROCBASED_CTLS2)[1] & bit)


def _start(cpu, name: str, control: int, cap_bit: int, kind: int, type_bit0: int, types) -> int:
    """The Operation up to the descriptor: the opcode exists only where the processor supports
    the instruction (INVEPT: "enable EPT" allowed-1 and IA32_VMX_EPT_VPID_CAP[20]; INVVPID:
    "enable VPID" allowed-1 and IA32_VMX_EPT_VPID_CAP[32]), then #UD and #GP, then
    VMfail(28) for a type whose IA32_VMX_EPT_VPID_CAP bit (type_bit0 + type) is 0."""
    cap = cpu.machine.profile.ept_vpid_cap
    if not (_allowed1(cpu, control) and cap & cap_bit):
        ins._ud(f"{name} is not supported by this processor (IA32_VMX_EPT_VPID_CAP)")
    ins._mode_checks(cpu, name)
    ins._cpl0(cpu, name)
    kind = int(kind)
    if not 0 <= kind <= 7 or not cap >> (type_bit0 + kind) & 1:
        offered = ", ".join(f"{t.value} {t.name.lower().replace('_', '-')} (bit {type_bit0 + t})"
                            for t in types)
        _invalid(cpu, name, f"{name} type {kind} is not supported: IA32_VMX_EPT_VPID_CAP bit "
                 f"{type_bit0 + kind} = 0 (types: {offered})")
    return kind


def _invalid(cpu, name: str, rule: str):
    ins.vmfail(cpu, E.INVALID_OPERAND_TO_INVEPT_INVVPID, Check("31.3", name, rule))


def eptp_failure(cpu, eptp: int):
    """"IF VM entry with the 'enable EPT' VM-execution control set to 1 would fail due to the
    EPTP value": the EPTP checks of 27.2.1.1 on a scratch VMCS holding only the EPTP."""
    from vmx.entry.context import EntryContext
    from vmx.entry.controls_execution import EPTP_CHECKS
    from vmx.vmcs import Vmcs
    scratch = Vmcs(0)
    scratch.write_enc(F.CPU_BASED_VM_EXEC_CONTROL, Proc.ACTIVATE_SECONDARY_CONTROLS)
    scratch.write_enc(F.SECONDARY_VM_EXEC_CONTROL, Sec.ENABLE_EPT)
    scratch.write_enc(F.EPT_POINTER, eptp)
    ctx = EntryContext(vmcs=scratch, profile=cpu.machine.profile)
    for check in EPTP_CHECKS:
        failure = check(ctx)
        if failure is not None:
            return failure
    return None


def invept(cpu, kind: int, eptp: int = 0) -> None:
    """INVEPT (31.3): type 1 invalidates the mappings derived from one EPTP (bits 51:12), type 2
    all mappings derived from EPT (29.4.3.1)."""
    name = "INVEPT"
    kind = _start(cpu, name, Sec.ENABLE_EPT, P.EPT_INVEPT, kind, 24, InveptType)
    if kind == InveptType.SINGLE_CONTEXT:
        failure = eptp_failure(cpu, eptp)
        if failure is not None:
            _invalid(cpu, name, f"single-context INVEPT of EPTP {eptp:#x}, which VM entry would "
                     f"reject: {failure.rule} ({failure.section})")
    _invalidate(cpu, "ept", kind, eptp=eptp & 0x000FFFFFFFFFF000)
    ins.vmsucceed(cpu)


def invvpid(cpu, kind: int, vpid: int, linear_address: int = 0) -> None:
    """INVVPID (31.3): mappings tagged with a VPID (29.4.3.2): one linear address, one VPID,
    every VPID but 0000H, or one VPID's except global translations."""
    name = "INVVPID"
    kind = _start(cpu, name, Sec.ENABLE_VPID, P.VPID_INVVPID, kind, 40, InvvpidType)
    if vpid >> 16:
        _invalid(cpu, name, f"INVVPID descriptor bits 63:16 = {vpid >> 16:#x} are reserved and "
                 f"must be 0 (VPID {vpid:#x})")
    if kind != InvvpidType.ALL_CONTEXT and vpid == 0:
        _invalid(cpu, name, f"{InvvpidType(kind).name.lower().replace('_', '-')} INVVPID of VPID "
                 f"0000H (the VMM's own VPID may be invalidated only by all-context INVVPID)")
    if kind == InvvpidType.INDIVIDUAL_ADDRESS and not _canonical(linear_address):
        _invalid(cpu, name, f"individual-address INVVPID of the non-canonical linear address "
                 f"{linear_address:#x}")
    _invalidate(cpu, "vpid", kind, vpid=vpid, linear_address=linear_address)
    ins.vmsucceed(cpu)


def _canonical(la: int) -> bool:
    top = (la & ((1 << 64) - 1)) >> 47
    return top == 0 or top == (1 << 17) - 1


def _invalidate(cpu, what: str, kind: int, **operands) -> None:
    """29.4.3: drop the cached mappings the instruction names. The processor may always drop
    more than that (29.4.1: entries may be evicted at any time), so each call drops at least
    what the SDM requires; the TLB and the EPT caches decide what they keep."""
    cpu.vmx.invalidate(cpu, what, kind, **operands)
