"""VMCS regions (SDM Vol. 3C 25.2 "Format of the VMCS Region", 25.1 "VMCS Launch State").

The first 8 bytes of a region are architectural: bits 30:0 the revision identifier, bit 31 the
shadow-VMCS indicator, then the VMX-abort indicator. Everything after is implementation-specific:
this processor keeps a VMCS's data in `Vmcs` objects (its "VMCS cache", a C array per VMCS) and, on VMCLEAR, writes
an opaque, deterministic image to the region so that a VMM reading the region learns nothing
it could rely on. Writes by software to the data part of a region are not seen by the processor.
"""
from __future__ import annotations

import hashlib

from vmx._vmcs import VmcsStore
from vmx.fields import FIELDS

INVALID_POINTER = 0xFFFFFFFFFFFFFFFF

# every field once, by its full encoding ("high" encodings name part of a full field)
_FULL_ENCODINGS = tuple(f.encoding for f in FIELDS if not f.high)


class Vmcs(VmcsStore):
    """One VMCS: its fields (in C, vmx._vmcs.VmcsStore: `read(info)`, `write(info, value)`,
    `read_enc(encoding)`, `write_enc(encoding, value)`) and its launch state."""

    def __init__(self, address: int):
        self.address = address
        self.launched = False

    def opaque_image(self, size: int) -> bytes:
        """The implementation-specific data written on VMCLEAR: derived from the contents (so it
        changes when they do) but in no documented layout."""
        h = hashlib.blake2b(repr(self.written()).encode() + bytes([self.launched]),
                            digest_size=64).digest()
        return (h * (size // len(h) + 1))[:size]

    def snapshot(self) -> tuple[bool, dict[int, int]]:
        """The launch state and every non-zero field, by encoding (for machine snapshots)."""
        read = self.read_enc
        return self.launched, {e: v for e in _FULL_ENCODINGS if (v := read(e))}

    @classmethod
    def from_snapshot(cls, address: int, state: tuple[bool, dict[int, int]]) -> "Vmcs":
        """A VMCS holding a `snapshot()`: a new object, so that nothing cached about the old
        contents (the VM-entry check memo) survives."""
        vmcs = cls(address)
        vmcs.launched, values = state
        for e, v in values.items():
            vmcs.write_enc(e, v)
        return vmcs
