"""The EPT pointer (SDM Vol. 3C 25.6.11 "Extended-Page-Table Pointer (EPTP)", Table 25-9) and the
EPT capabilities of IA32_VMX_EPT_VPID_CAP the walker depends on (Appendix A.10).

VM entry checks an EPTP against the capabilities (27.2.1.1; vmx.entry does it): this module only
composes and decodes the format.
"""
from __future__ import annotations

from x86 import MAXPHYADDR

# Table 25-9
MEMTYPE_UC, MEMTYPE_WB = 0, 6          # bits 2:0: memory type for the EPT paging structures
WALK_LENGTH_SHIFT = 3                  # bits 5:3: page-walk length minus 1 (3: 4-level, 4: 5-level)
AD_ENABLE = 1 << 6                     # bit 6: accessed and dirty flags for EPT
SSS_ENABLE = 1 << 7                    # bit 7: supervisor shadow-stack access rights
ROOT_MASK = ((1 << MAXPHYADDR) - 1) & ~0xFFF   # bits N-1:12: the EPT PML4 (or PML5) table

# Appendix A.10, the bits that change a translation (the same numbers as vmx.profiles)
EPT_EXECUTE_ONLY = 1 << 0
EPT_PAGE_WALK_4 = 1 << 6
EPT_PAGE_WALK_5 = 1 << 7
EPT_MEMTYPE_UC = 1 << 8
EPT_MEMTYPE_WB = 1 << 14
EPT_2MB_PAGE = 1 << 16
EPT_1GB_PAGE = 1 << 17
EPT_AD = 1 << 21
EPT_ADVANCED_EXIT_INFO = 1 << 22

FULL_CAPABILITIES = (EPT_EXECUTE_ONLY | EPT_PAGE_WALK_4 | EPT_PAGE_WALK_5 | EPT_MEMTYPE_UC
                     | EPT_MEMTYPE_WB | EPT_2MB_PAGE | EPT_1GB_PAGE | EPT_AD
                     | EPT_ADVANCED_EXIT_INFO)
"""Every EPT capability the walker models: the default of `ept.Ept.enable` when it is used
without a VMX profile (a bare x86.Machine, the benchmarks)."""


def make_eptp(root: int, levels: int = 4, ad: bool = False, memory_type: int = MEMTYPE_WB) -> int:
    """An EPTP for the EPT PML4 (levels=4) or PML5 (levels=5) table at host-physical `root`."""
    if levels not in (4, 5):
        raise ValueError(f"the EPT page-walk length is 4 or 5, not {levels}")
    if root & ~ROOT_MASK:
        raise ValueError(f"the EPT root table {root:#x} must be 4-KByte aligned and below 2^{MAXPHYADDR}")
    return root | ((levels - 1) << WALK_LENGTH_SHIFT) | (AD_ENABLE if ad else 0) | (memory_type & 7)


def walk_length(eptp: int) -> int:
    """The page-walk length bits 5:3 encode (plus one)."""
    return ((eptp >> WALK_LENGTH_SHIFT) & 7) + 1


def root(eptp: int) -> int:
    """The EP4TA: bits N-1:12, the address of the top EPT table (and the tag of the mappings
    cached under this EPTP, 29.4.1)."""
    return eptp & ROOT_MASK
