"""The interruption-information format shared by three VMCS fields:

- VM-entry interruption information, SDM Vol. 3C 25.8.3 "VM-Entry Controls for Event Injection"
  (the event VM entry injects);
- VM-exit interruption information, 25.9.2 / 28.2.2 "Information for VM Exits Due to Vectored
  Events" (the exception, NMI or external interrupt that caused the exit);
- IDT-vectoring information, 25.9.3 / 28.2.4 "Information for VM Exits During Event Delivery"
  (the event being delivered when the exit happened).

Layout: bits 7:0 vector, 10:8 interruption type, 11 error code valid (for VM entry: deliver
error code), 12 NMI unblocking due to IRET (VM-exit interruption information only; reserved or
undefined in the other two), 30:13 reserved, 31 valid. Mask names follow Linux's asm/vmx.h.
"""
from __future__ import annotations

import enum

from x86.errors import vector_name
from vmx.qualification import BitRecord, Bits

__all__ = [
    "InterruptionType", "InterruptionInfo", "make", "INTR_INFO_VECTOR_MASK",
    "INTR_INFO_INTR_TYPE_MASK", "INTR_INFO_DELIVER_CODE_MASK", "INTR_INFO_UNBLOCK_NMI",
    "INTR_INFO_VALID_MASK", "INTR_INFO_RESVD_BITS_MASK",
]

INTR_INFO_VECTOR_MASK = 0xFF            # bits 7:0
INTR_INFO_INTR_TYPE_MASK = 0x700        # bits 10:8
INTR_INFO_DELIVER_CODE_MASK = 0x800     # bit 11
INTR_INFO_UNBLOCK_NMI = 0x1000          # bit 12
INTR_INFO_VALID_MASK = 0x80000000       # bit 31
INTR_INFO_RESVD_BITS_MASK = 0x7FFFF000  # bits 30:12 (bit 12 is defined only at VM exits)


class InterruptionType(enum.IntEnum):
    """Bits 10:8. Software interrupt (4) and other event (7) are used by VM entry (and 4 by
    IDT-vectoring information); a VM exit's own interruption information never holds 1, 4 or 7."""
    EXTERNAL_INTERRUPT = 0
    RESERVED = 1
    NMI = 2
    HARD_EXCEPTION = 3
    SOFT_INTERRUPT = 4
    PRIV_SW_EXCEPTION = 5
    SOFT_EXCEPTION = 6
    OTHER_EVENT = 7


_TYPE_TEXT = {
    InterruptionType.EXTERNAL_INTERRUPT: "external interrupt",
    InterruptionType.RESERVED: "event of reserved type 1",
    InterruptionType.NMI: "NMI",
    InterruptionType.HARD_EXCEPTION: "hardware exception",
    InterruptionType.SOFT_INTERRUPT: "software interrupt",
    InterruptionType.PRIV_SW_EXCEPTION: "privileged software exception",
    InterruptionType.SOFT_EXCEPTION: "software exception",
    InterruptionType.OTHER_EVENT: "other event",
}


class InterruptionInfo(BitRecord):
    """A 32-bit interruption-information value, equal to the raw field."""
    __slots__ = ()
    vector = Bits(7, 0, doc="vector of the interrupt or exception")
    type = Bits(10, 8, InterruptionType, doc="interruption type")
    error_code_valid = Bits(11, doc="an error code is delivered / was saved")
    nmi_unblocking = Bits(12, doc="NMI unblocking due to IRET")
    valid = Bits(31, doc="the field holds an event")

    def describe(self) -> str:
        if not self.valid:
            return "no event (valid bit clear)"
        kind = self.type
        if kind in (InterruptionType.HARD_EXCEPTION, InterruptionType.SOFT_EXCEPTION,
                    InterruptionType.PRIV_SW_EXCEPTION):
            what = f"{_TYPE_TEXT[kind]} {vector_name(self.vector)} (vector {self.vector})"
        elif kind == InterruptionType.NMI:
            what = f"NMI (vector {self.vector})"
        elif kind == InterruptionType.OTHER_EVENT and self.vector == 0:
            what = "other event: pending MTF VM exit"
        else:
            what = f"{_TYPE_TEXT[kind]} vector {self.vector:#04x}"
        if self.error_code_valid:
            what += " with an error code"
        if self.nmi_unblocking:
            what += "; NMI unblocking due to IRET"
        return what


def make(vector: int, type: InterruptionType | int, error_code_valid: bool = False,
         nmi_unblocking: bool = False, valid: bool = True) -> InterruptionInfo:
    """Compose an interruption-information value (for example to inject an event at VM entry:
    `make(14, InterruptionType.HARD_EXCEPTION, error_code_valid=True)`)."""
    raw = (int(vector) & INTR_INFO_VECTOR_MASK) | ((int(type) << 8) & INTR_INFO_INTR_TYPE_MASK)
    if error_code_valid:
        raw |= INTR_INFO_DELIVER_CODE_MASK
    if nmi_unblocking:
        raw |= INTR_INFO_UNBLOCK_NMI
    if valid:
        raw |= INTR_INFO_VALID_MASK
    return InterruptionInfo(raw)
