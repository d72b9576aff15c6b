"""Outcomes of VMX instructions (SDM Vol. 3C 31.2 "Conventions"): VMsucceed returns normally;
VMfailInvalid and VMfailValid(n) raise, carrying the check that failed."""
from __future__ import annotations

import attrs

from vmx.errors import VmInstructionError, describe


@attrs.frozen
class Check:
    """The rule an outcome comes from: the SDM section, the instruction, and a sentence naming
    the field or operand, its value and the rule it broke."""
    section: str
    instruction: str
    rule: str

    def __str__(self) -> str:
        return f"{self.instruction}: {self.rule} (SDM Vol. 3C {self.section})"


class VmFail(Exception):
    """A VMX instruction failed (VMfailInvalid or VMfailValid); `.check` says why."""

    def __init__(self, check: Check):
        self.check = check
        super().__init__(str(check))


class VmFailInvalid(VmFail):
    """VMfailInvalid: RFLAGS.CF = 1; no current VMCS to record an error number in."""


class VmFailValid(VmFail):
    """VMfailValid(n): RFLAGS.ZF = 1 and n in the current VMCS's VM-instruction error field."""

    def __init__(self, error: int, check: Check):
        self.error = VmInstructionError(error)
        super().__init__(check)

    def __str__(self) -> str:
        return f"VM-instruction error {int(self.error)} ({describe(self.error)}): {self.check}"
