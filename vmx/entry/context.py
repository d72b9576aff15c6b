"""What the VM-entry checks read and what they return (SDM Vol. 3C 27.1 "Basic VM-Entry Checks",
27.2 "Checks on VMX Controls and Host-State Area", 27.3.1 "Checks on the Guest State Area",
27.8 "VM-Entry Failures During or After Loading Guest State").

`EntryContext` holds the current VMCS, the processor profile and the few facts about the
processor that are not in the VMCS (SMM, IA32_EFER.LMA of the VMM, physical- and linear-address
widths, which MSR bits are implemented). A check returns None or a `Failure`:

    kind 'control'  VMfailValid(7) "VM entry with invalid control field(s)"
    kind 'host'     VMfailValid(8) "VM entry with invalid host-state field(s)"
    kind 'guest'    VM exit, basic reason 33 with bit 31 set; exit qualification 0 (default),
                    2 (PDPTE loading), 3 (NMI injection while blocking by STI), 4 (VMCS link
                    pointer) -- SDM 27.8.
"""
from __future__ import annotations

from typing import Callable, Optional

import attrs

import x86
import x86.cpuid
from vmx.fields import Field, field_info
from vmx.outcome import Check
from vmx.profiles import Profile

ERROR_INVALID_CONTROL = 7      # SDM 31.4, VM-instruction error numbers
ERROR_INVALID_HOST_STATE = 8
EXIT_REASON_INVALID_GUEST_STATE = 33
EXIT_REASON_ENTRY_FAILURE_BIT = 1 << 31

# Exit qualifications of a VM-entry failure (SDM 27.8).
QUAL_DEFAULT = 0
QUAL_PDPTE = 2
QUAL_NMI_STI = 3
QUAL_LINK_POINTER = 4

KIND_ERROR = {"control": ERROR_INVALID_CONTROL, "host": ERROR_INVALID_HOST_STATE, "guest": None}
KIND_TEXT = {"control": "VM entry with invalid control field(s)",
             "host": "VM entry with invalid host-state field(s)"}

# IA32_EFER bits the x86 model implements: SCE, LME, LMA, NXE (SDM Vol. 3A 2.2.1).
EFER_VALID = (1 << 0) | (1 << 8) | (1 << 10) | (1 << 11)
EFER_LME, EFER_LMA = 1 << 8, 1 << 10


@attrs.frozen
class Failure:
    """One failed VM-entry check: how the entry fails and the rule it broke."""
    kind: str                        # 'control', 'host' or 'guest'
    check: Check
    error: Optional[int] = None      # VM-instruction error (7 or 8) for VMfailValid
    qualification: int = 0           # exit qualification for a 'guest' failure

    @property
    def section(self) -> str:
        return self.check.section

    @property
    def rule(self) -> str:
        return self.check.rule

    @property
    def exit_reason(self) -> Optional[int]:
        """The full exit-reason field of the VM exit ('guest' failures), else None."""
        if self.kind != "guest":
            return None
        return EXIT_REASON_INVALID_GUEST_STATE | EXIT_REASON_ENTRY_FAILURE_BIT

    def explain(self) -> str:
        """The sentence a learner reads: the instruction, the rule, the section, the outcome."""
        if self.kind == "guest":
            outcome = (f"VM exit with basic reason {EXIT_REASON_INVALID_GUEST_STATE} (VM-entry "
                       f"failure due to invalid guest state), exit qualification "
                       f"{self.qualification}")
        else:
            outcome = f"VMfailValid({self.error}): {KIND_TEXT[self.kind]}"
        return f"{self.check} -> {outcome}"


def _zeros(pa: int, n: int) -> bytes:
    return bytes(n)


@attrs.define
class EntryContext:
    """Everything the VM-entry checks look at.

    `read_phys(pa, n)` reads the machine's physical memory: the virtual-APIC page's VTPR, the
    first 4 bytes at the VMCS link pointer, the guest PDPTEs when EPT is off. Without one,
    memory reads as zeros.
    `host_lma`: IA32_EFER.LMA of the VMM executing VMLAUNCH/VMRESUME (27.2.4); the simulated
    host always runs in 64-bit mode.
    """
    vmcs: object
    profile: Profile
    read_phys: Callable[[int, int], bytes] = _zeros
    launch: bool = True
    in_smm: bool = False
    host_lma: bool = True
    maxphyaddr: int = x86.MAXPHYADDR
    linear_width: int = 48           # the x86 model's canonical checks use 48 bits
    efer_valid: int = EFER_VALID
    debugctl_valid: int = 0x3        # LBR, BTF
    perf_global_ctrl_valid: int = x86.cpuid.PERF_GLOBAL_CTRL_VALID  # no counters: all reserved
    vmxon_pointer: Optional[int] = None

    @property
    def instruction(self) -> str:
        return "VMLAUNCH" if self.launch else "VMRESUME"

    def read(self, field) -> int:
        return self.vmcs.read(field_info(field))

    # -- the controls, as the checks see them -------------------------------------------------
    @property
    def pin(self) -> int:
        return self.read(Field.PIN_BASED_VM_EXEC_CONTROL)

    @property
    def proc(self) -> int:
        return self.read(Field.CPU_BASED_VM_EXEC_CONTROL)

    @property
    def secondary(self) -> int:
        """Secondary controls, or 0 when "activate secondary controls" is 0 (27.2.1.1)."""
        if not self.proc & (1 << 31):
            return 0
        return self.read(Field.SECONDARY_VM_EXEC_CONTROL)

    @property
    def exit_controls(self) -> int:
        return self.read(Field.VM_EXIT_CONTROLS)

    @property
    def entry_controls(self) -> int:
        return self.read(Field.VM_ENTRY_CONTROLS)

    # -- address helpers ----------------------------------------------------------------------
    def beyond_phys(self, value: int) -> bool:
        return value >> self.maxphyaddr != 0

    def canonical(self, value: int) -> bool:
        value &= (1 << 64) - 1
        top = value >> (self.linear_width - 1)
        return top == 0 or top == (1 << (65 - self.linear_width)) - 1

    # -- failures -----------------------------------------------------------------------------
    def fail(self, kind: str, section: str, rule: str, qualification: int = 0) -> Failure:
        return Failure(kind, Check(section, self.instruction, rule), KIND_ERROR[kind],
                       qualification)


def show(field, value: int) -> str:
    """'NAME = 0x...' for a VMCS field and its value."""
    return f"{Field(int(field)).name} = {value:#x}"


def bit_list(mask: int) -> str:
    bits = [i for i in range(64) if mask >> i & 1]
    if len(bits) == 1:
        return f"bit {bits[0]}"
    return "bits " + ", ".join(str(b) for b in bits)


def run(ctx, checks) -> Optional[Failure]:
    """Run checks in order; the first failure is the outcome."""
    for check in checks:
        failure = check(ctx)
        if failure is not None:
            return failure
    return None
