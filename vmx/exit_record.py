"""`VmExit`: what a VM exit left in the VMCS exit-information fields, decoded.

SDM Vol. 3C 25.9 "VM-Exit Information Fields" and 28.2 "Recording VM-Exit Information and
Updating VM-Entry Control Fields". The exit-reason field (Table 25-18 "Format of Exit Reason")
holds the basic exit reason in bits 15:0 and "VM-entry failure" in bit 31; the record stores
the whole field once (`raw_reason`) and derives `reason` and `entry_failure` from it.
"""
from __future__ import annotations

from functools import cached_property
from typing import Callable

import attrs

from vmx import exits
from vmx.exits import ExitReason
from vmx.fields import Field
from vmx.instruction_info import InstructionInfo
from vmx.instruction_info import for_reason as _instruction_info_for
from vmx.interruption import InterruptionInfo
from vmx.outcome import Check
from vmx.qualification import Displacement, IoInstruction, Qualification
from vmx.qualification import for_reason as _qualification_for

__all__ = ["VmExit", "EXIT_INFORMATION_FIELDS"]

# Reasons whose story is told by the interruption-information field, not the qualification.
_VECTORED = (ExitReason.EXCEPTION_NMI, ExitReason.EXTERNAL_INTERRUPT)


def _basic_reason(raw_reason: int):
    basic = int(raw_reason) & exits.BASIC_REASON_MASK
    try:
        return ExitReason(basic)
    except ValueError:          # a number Table C-1 does not use
        return basic


@attrs.frozen
class VmExit:
    """A VM exit (or a VM-entry failure that is reported as one).

    The record holds the raw exit-information fields; the integer-valued ones are decoded when
    first read: `qualification` by the exit reason (vmx.qualification), `instruction_info` by
    the exit reason (vmx.instruction_info), the two interruption-information fields as
    `InterruptionInfo`. Each decoded value is still equal to the raw field. The constructor
    takes the decoded names (`qualification=...`)."""
    raw_reason: int = attrs.field(converter=int, repr=hex)
    raw_qualification: int = attrs.field(default=0, alias="qualification", converter=int, repr=hex)
    guest_linear_address: int = attrs.field(default=0, repr=hex)
    guest_physical_address: int = attrs.field(default=0, repr=hex)
    instruction_length: int = 0
    raw_instruction_info: int = attrs.field(default=0, alias="instruction_info", converter=int, repr=hex)
    raw_interruption_info: int = attrs.field(default=0, alias="interruption_info", converter=int, repr=hex)
    interruption_error_code: int = 0
    raw_idt_vectoring_info: int = attrs.field(default=0, alias="idt_vectoring_info", converter=int, repr=hex)
    idt_vectoring_error_code: int = 0
    guest_rip: int = attrs.field(default=0, repr=hex)
    check: Check | None = None

    @cached_property
    def interruption_info(self) -> InterruptionInfo:
        return InterruptionInfo(self.raw_interruption_info)

    @cached_property
    def idt_vectoring_info(self) -> InterruptionInfo:
        return InterruptionInfo(self.raw_idt_vectoring_info)

    @cached_property
    def qualification(self) -> Qualification:
        """The layouts depend on the reason (and for exceptions on the vector)."""
        info = self.interruption_info
        return _qualification_for(self.raw_reason, self.raw_qualification,
                                  info.vector if info.valid else None)

    @cached_property
    def instruction_info(self) -> InstructionInfo:
        if isinstance(self.qualification, IoInstruction) and not self.qualification.string:
            return InstructionInfo(self.raw_instruction_info)     # defined for INS/OUTS only
        return _instruction_info_for(self.raw_reason, self.raw_instruction_info)

    @property
    def reason(self):
        """The basic exit reason (bits 15:0 of the exit-reason field), an `ExitReason`."""
        return _basic_reason(self.raw_reason)

    @property
    def entry_failure(self) -> bool:
        """Bit 31 of the exit-reason field: VM entry failed (the guest never ran)."""
        return bool(self.raw_reason & exits.EXIT_REASON_ENTRY_FAILURE)

    @property
    def enclave_mode(self) -> bool:
        """Bit 27: the exit was incident to enclave mode."""
        return bool(self.raw_reason & exits.EXIT_REASON_ENCLAVE_MODE)

    @classmethod
    def from_fields(cls, read: Callable[[Field], int], check: Check | None = None) -> "VmExit":
        """Build the record from the VMCS: `read(Field)` returns a field's value."""
        return cls(**{name: read(field) for name, field in EXIT_INFORMATION_FIELDS.items()},
                   check=check)

    def _reason_text(self) -> str:
        reason = self.reason
        name = reason.name if isinstance(reason, ExitReason) else "not a Table C-1 reason"
        return f"{int(reason)} {name}"

    def _detail(self) -> str:
        reason = self.reason
        if reason in _VECTORED and self.interruption_info.valid:
            text = self.interruption_info.describe()
            if self.interruption_info.error_code_valid:
                text += f" {self.interruption_error_code:#x}"
            if type(self.qualification) is not Qualification:
                text += f" ({self.qualification.describe()})"
            return text
        parts = []
        qual, info = self.qualification, self.instruction_info
        if isinstance(qual, Displacement) and type(info) is not InstructionInfo:
            parts.append(info.describe(displacement=qual.displacement))
        else:
            if type(qual) is not Qualification:
                parts.append(qual.describe())
            if type(info) is not InstructionInfo:
                parts.append(info.describe())
        if reason in (ExitReason.EPT_VIOLATION, ExitReason.EPT_MISCONFIG):
            parts.append(f"guest-physical address {self.guest_physical_address:#x}")
            if getattr(qual, "linear_address_valid", False):
                parts.append(f"guest linear address {self.guest_linear_address:#x}")
        if not parts:
            try:
                parts.append(exits.describe(reason))
            except KeyError:
                parts.append(f"qualification {int(self.qualification):#x}")
        return "; ".join(parts)

    def explain(self) -> str:
        """One sentence: the reason and, decoded, what the exit-information fields say."""
        if self.entry_failure:
            head = (f"VM-entry failure (exit reason {int(self.reason)}, "
                    f"{self.reason.name if isinstance(self.reason, ExitReason) else '?'}, "
                    f"qualification {int(self.qualification)})")
            if self.check is not None:
                return f"{head}: {self.check}."
            try:
                return f"{head}: {exits.describe(self.reason)}."
            except KeyError:
                return f"{head}."
        text = f"VM exit {self._reason_text()} at guest RIP {self.guest_rip:#x}: {self._detail()}"
        if self.idt_vectoring_info.valid:
            text += f", during delivery of {self.idt_vectoring_info.describe()}"
            if self.idt_vectoring_info.error_code_valid:
                text += f" {self.idt_vectoring_error_code:#x}"
        return text + "."


EXIT_INFORMATION_FIELDS = {
    "raw_reason": Field.VM_EXIT_REASON,
    "qualification": Field.EXIT_QUALIFICATION,
    "guest_linear_address": Field.GUEST_LINEAR_ADDRESS,
    "guest_physical_address": Field.GUEST_PHYSICAL_ADDRESS,
    "instruction_length": Field.VM_EXIT_INSTRUCTION_LEN,
    "instruction_info": Field.VMX_INSTRUCTION_INFO,
    "interruption_info": Field.VM_EXIT_INTR_INFO,
    "interruption_error_code": Field.VM_EXIT_INTR_ERROR_CODE,
    "idt_vectoring_info": Field.IDT_VECTORING_INFO_FIELD,
    "idt_vectoring_error_code": Field.IDT_VECTORING_ERROR_CODE,
    "guest_rip": Field.GUEST_RIP,
}
"""`VmExit` attribute -> the VMCS field it is read from (SDM 25.9, Appendix B)."""
