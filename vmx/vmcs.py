"""VMCS regions (SDM Vol. 3C 25.2 "Format of the VMCS Region", 25.1 "VMCS Launch State").

The first 8 bytes of a region are architectural: bits 30:0 the revision identifier, bit 31 the
shadow-VMCS indicator, then the VMX-abort indicator. Everything after is implementation-specific:
this processor keeps a VMCS's data in `Vmcs` objects (its "VMCS cache") and, on VMCLEAR, writes
an opaque, deterministic image to the region so that a VMM reading the region learns nothing
it could rely on. Writes by software to the data part of a region are not seen by the processor.
"""
from __future__ import annotations

import hashlib

from vmx.fields import FieldInfo

INVALID_POINTER = 0xFFFFFFFFFFFFFFFF


class Vmcs:
    """One VMCS: its fields (by full encoding) and its launch state."""

    def __init__(self, address: int):
        self.address = address
        self.launched = False
        self.values: dict[int, int] = {}

    def read(self, info: FieldInfo) -> int:
        """VMREAD: 64-bit fields read whole, or bits 63:32 through the "high" encoding."""
        if info.high:
            return self.values.get(info.encoding - 1, 0) >> 32
        return self.values.get(info.encoding, 0) & _mask(info)

    def write(self, info: FieldInfo, value: int) -> None:
        """VMWRITE: the value is truncated to the field's width; "high" writes bits 63:32."""
        if info.high:
            full = info.encoding - 1
            old = self.values.get(full, 0)
            self.values[full] = (old & 0xFFFFFFFF) | ((value & 0xFFFFFFFF) << 32)
        else:
            self.values[info.encoding] = value & _mask(info)

    def opaque_image(self, size: int) -> bytes:
        """The implementation-specific data written on VMCLEAR: derived from the contents (so it
        changes when they do) but in no documented layout."""
        h = hashlib.blake2b(repr(sorted(self.values.items())).encode() + bytes([self.launched]),
                            digest_size=64).digest()
        return (h * (size // len(h) + 1))[:size]


def _mask(info: FieldInfo) -> int:
    bits = 64 if info.width in (64, "natural") else info.width
    return (1 << bits) - 1
