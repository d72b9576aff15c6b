"""The TPR shadow (SDM Vol. 3C chapter 30 "APIC Virtualization and Virtual Interrupts"), as far
as the profiles advertise it: "use TPR shadow" without "virtual-interrupt delivery".

The virtual TPR (VTPR) is the 32-bit field at offset 80H of the virtual-APIC page (30.1.1).
With "use TPR shadow" 1, MOV from CR8 and MOV to CR8 that do not exit use VTPR instead of the
TPR (30.3), and a write is followed by TPR virtualization (30.1.2), which causes a
TPR-below-threshold VM exit when bits 3:0 of the TPR threshold exceed VTPR bits 7:4. VM entry
may cause the same exit at once (27.7.7).
"""
from __future__ import annotations

VTPR = 0x80                       # offset of the virtual TPR in the virtual-APIC page (30.1.1)


class TprShadow:
    """The virtual-APIC page and TPR threshold of one VM entry."""

    def __init__(self, memory, virtual_apic_page: int, threshold: int):
        self.memory = memory
        self.page = virtual_apic_page
        self.threshold = threshold & 0xF

    @property
    def vtpr(self) -> int:
        return self.memory.read_u32(self.page + VTPR)

    def read_cr8(self) -> int:
        """30.3: "MOV from CR8 ... loads bits 7:4 of VTPR into bits 3:0 of the destination
        operand and clears bits 63:4 of that operand"."""
        return (self.vtpr >> 4) & 0xF

    def write_cr8(self, value: int) -> bool:
        """30.3: "MOV to CR8 ... stores bits 3:0 of the source operand into bits 7:4 of VTPR;
        bits 3:0 and bits 31:8 of VTPR are cleared", then TPR virtualization (30.1.2). Returns
        whether a TPR-below-threshold VM exit follows (the caller checked bits 63:4 are 0)."""
        self.memory.write_u32(self.page + VTPR, (value & 0xF) << 4)
        return self.below_threshold()

    def below_threshold(self) -> bool:
        """30.1.2: "If bits 3:0 of the TPR threshold VM-execution control field are greater
        than VTPR[7:4], a VM exit occurs" (without "virtual-interrupt delivery")."""
        return self.threshold > (self.vtpr >> 4) & 0xF
