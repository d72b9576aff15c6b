"""A valid VMCS for a profile: a 64-bit host and a 64-bit guest with flat segments, every
control at its allowed-0 setting plus "activate secondary controls", "host address-space size"
and "IA-32e mode guest". It passes run_control_checks, run_host_checks and run_guest_checks
(27.2, 27.3.1); the lead's vmx.VmcsBuilder starts from it."""
from __future__ import annotations

from vmx import profiles as P
from vmx.controls import (EntryControls as En, ExitControls as Ex, PinBased as Pin,
                          ProcBased as Proc, SecondaryProcBased as Sec)
from vmx.fields import Field, field_info
from vmx.vmcs import INVALID_POINTER, Vmcs

CR0 = 0x80000031                 # PG NE ET PE
CR4 = 0x2020                     # VMXE PAE
PAT = 0x0007040600070406         # the power-up value
CODE64 = 0xA09B                  # G, L, P, DPL 0, S, type 11 (execute/read, accessed)
DATA = 0xC093                    # G, D/B, P, DPL 0, S, type 3 (read/write, accessed)
TSS64 = 0x8B                     # P, type 11 (busy 64-bit TSS)
UNUSABLE = 0x10000


def controls(profile: P.Profile) -> dict:
    """The control fields of the baseline."""
    pin0, _ = P.allowed_for(profile, Pin)
    proc0, proc1 = P.allowed_for(profile, Proc)
    exit0, _ = P.allowed_for(profile, Ex)
    entry0, _ = P.allowed_for(profile, En)
    sec0 = P.allowed_for(profile, Sec)[0] if profile.has(P.IA32_VMX_PROCBASED_CTLS2) else 0
    return {
        Field.PIN_BASED_VM_EXEC_CONTROL: pin0,
        Field.CPU_BASED_VM_EXEC_CONTROL: proc0 | (proc1 & Proc.ACTIVATE_SECONDARY_CONTROLS),
        Field.SECONDARY_VM_EXEC_CONTROL: sec0,
        Field.VM_EXIT_CONTROLS: exit0 | Ex.HOST_ADDR_SPACE_SIZE,
        Field.VM_ENTRY_CONTROLS: entry0 | En.IA32E_MODE,
        Field.CR3_TARGET_COUNT: 0,
        Field.VM_EXIT_MSR_STORE_COUNT: 0,
        Field.VM_EXIT_MSR_LOAD_COUNT: 0,
        Field.VM_ENTRY_MSR_LOAD_COUNT: 0,
        Field.VM_ENTRY_INTR_INFO_FIELD: 0,
    }


HOST = {
    Field.HOST_CR0: CR0, Field.HOST_CR3: 0x2000, Field.HOST_CR4: CR4,
    Field.HOST_CS_SELECTOR: 0x08, Field.HOST_SS_SELECTOR: 0x10, Field.HOST_DS_SELECTOR: 0x10,
    Field.HOST_ES_SELECTOR: 0x10, Field.HOST_FS_SELECTOR: 0, Field.HOST_GS_SELECTOR: 0,
    Field.HOST_TR_SELECTOR: 0x18,
    Field.HOST_FS_BASE: 0, Field.HOST_GS_BASE: 0, Field.HOST_TR_BASE: 0,
    Field.HOST_GDTR_BASE: 0, Field.HOST_IDTR_BASE: 0,
    Field.HOST_IA32_SYSENTER_ESP: 0, Field.HOST_IA32_SYSENTER_EIP: 0,
    Field.HOST_IA32_PAT: PAT, Field.HOST_IA32_EFER: 0x500, Field.HOST_IA32_PERF_GLOBAL_CTRL: 0,
    Field.HOST_RSP: 0x8000, Field.HOST_RIP: 0x400000,
}


def _segment(reg, selector, ar, limit=0xFFFFFFFF, base=0):
    return {Field[f"GUEST_{reg}_SELECTOR"]: selector, Field[f"GUEST_{reg}_BASE"]: base,
            Field[f"GUEST_{reg}_LIMIT"]: limit, Field[f"GUEST_{reg}_AR_BYTES"]: ar}


GUEST = {
    Field.GUEST_CR0: CR0, Field.GUEST_CR3: 0x1000, Field.GUEST_CR4: CR4,
    Field.GUEST_DR7: 0x400, Field.GUEST_IA32_DEBUGCTL: 0,
    Field.GUEST_SYSENTER_ESP: 0, Field.GUEST_SYSENTER_EIP: 0, Field.GUEST_SYSENTER_CS: 0,
    Field.GUEST_IA32_PAT: PAT, Field.GUEST_IA32_EFER: 0x500,
    Field.GUEST_IA32_PERF_GLOBAL_CTRL: 0,
    **_segment("CS", 0x08, CODE64),
    **{k: v for r in ("SS", "DS", "ES", "FS", "GS") for k, v in _segment(r, 0x10, DATA).items()},
    **_segment("TR", 0x18, TSS64, limit=0x67),
    **_segment("LDTR", 0, UNUSABLE, limit=0),
    Field.GUEST_GDTR_BASE: 0, Field.GUEST_GDTR_LIMIT: 0x1F,
    Field.GUEST_IDTR_BASE: 0, Field.GUEST_IDTR_LIMIT: 0xFFF,
    Field.GUEST_RSP: 0x8000, Field.GUEST_RIP: 0x1000, Field.GUEST_RFLAGS: 0x2,
    Field.GUEST_ACTIVITY_STATE: 0, Field.GUEST_INTERRUPTIBILITY_INFO: 0,
    Field.GUEST_PENDING_DBG_EXCEPTIONS: 0, Field.VMCS_LINK_POINTER: INVALID_POINTER,
}


def fields(profile: P.Profile) -> dict:
    """Every field the baseline writes, as {Field: value}."""
    return {**controls(profile), **HOST, **GUEST}


def valid_vmcs(profile: P.Profile, address: int = 0) -> Vmcs:
    """A Vmcs holding the baseline for `profile`."""
    vmcs = Vmcs(address)
    for field, value in fields(profile).items():
        vmcs.write(field_info(field), int(value))
    return vmcs
