"""A slow EPT walker written from the manual's text, step by step, for the differential tests
(tests/ept/test_walk_differential.py), the builder's `walk` and fault explanations.

Sources, SDM Vol. 3C: 29.3.2 "EPT Translation Mechanism" (Tables 29-1 to 29-6: entry formats),
29.3.3.1 "EPT Misconfigurations", 29.3.3.2 "EPT Violations", 29.3.5 "Accessed and Dirty Flags for
EPT", 29.3.6 "Page-Modification Logging", and 28.2.1 Table 28-7 "Exit Qualification for EPT
Violations". It shares no code with the compiled walker (ept/_walk.pyx): it reads entries
through a callable and returns every step it took, with the reason a walk stops.
"""
from __future__ import annotations

from typing import Callable, Optional

import attrs

from x86 import MAXPHYADDR

LEVEL_NAMES = {5: "EPT PML5E", 4: "EPT PML4E", 3: "EPT PDPTE", 2: "EPT PDE", 1: "EPT PTE"}

OK, VIOLATION, MISCONFIGURATION, PML_FULL = "ok", "violation", "misconfiguration", "pml-full"


@attrs.frozen
class Capabilities:
    """What the processor supports (IA32_VMX_EPT_VPID_CAP, A.10) and the controls in effect."""
    execute_only: bool = True           # A.10 bit 0
    pages_2m: bool = True               # A.10 bit 16
    pages_1g: bool = True               # A.10 bit 17
    advanced_info: bool = True          # A.10 bit 22
    mode_based_execute: bool = False    # the "mode-based execute control for EPT" control


@attrs.frozen
class Access:
    """One guest-physical access. `kind` is "r", "w" or "x". `paging_structure`: the access is to
    a guest paging-structure entry (a walk read, or an A/D update when kind is "w");
    `linear_address`: None when there is none (PDPTE loads by MOV to CR); `user`, `writable`,
    `executable`: how guest paging maps that linear address (all true without paging)."""
    kind: str
    paging_structure: bool = False
    linear_address: Optional[int] = 0
    user: bool = True
    writable: bool = True
    executable: bool = True


@attrs.frozen
class Step:
    level: int
    name: str
    address: int
    value: int

    def rights(self, mbec: bool = False) -> str:
        """The entry's permissions as text: r w x, and u for bit 10 (user-mode execute)."""
        text = "".join(ch if self.value >> bit & 1 else "-" for bit, ch in ((0, "r"), (1, "w"), (2, "x")))
        return text + ("u" if self.value >> 10 & 1 else "-") if mbec else text


@attrs.frozen
class Result:
    outcome: str                        # OK, VIOLATION, MISCONFIGURATION, PML_FULL
    steps: tuple
    reason: str                         # why the walk ended as it did (a sentence)
    hpa: Optional[int] = None           # also for a violation of rights: where the page is
    qualification: int = 0              # for violations
    rights: int = 0                     # bits 0, 1, 2, 10 ANDed over the entries used
    memory_type: Optional[int] = None
    ignore_pat: Optional[bool] = None
    page_size: Optional[int] = None
    writes: tuple = ()                  # (address, value) of the A/D updates and PML entries
    pml_index: Optional[int] = None     # the PML index after the access


def reserved_bits(level: int, maps_page: bool, page_size: int) -> int:
    """29.3.2, Tables 29-1 to 29-6: bits 51:N are reserved in every entry (N = MAXPHYADDR);
    bits 7:3 in entries that reference another table (PML5E, PML4E, PDPTE or PDE with bit 7
    clear); bits 29:12 in a PDPTE mapping a 1-GByte page; bits 20:12 in a PDE mapping 2 MBytes;
    nothing else in a PTE (bit 7 of a PTE is ignored)."""
    beyond = sum(1 << b for b in range(MAXPHYADDR, 52))
    if not maps_page:
        return beyond | sum(1 << b for b in range(3, 8))
    if level == 1:
        return beyond
    low = 30 if page_size == 1 << 30 else 21
    return beyond | sum(1 << b for b in range(12, low))


def present(value: int, caps: Capabilities) -> bool:
    """29.3.2: an entry is present if any of bits 2:0 is 1; with mode-based execute control, also
    if bit 10 is 1."""
    return bool(value & 0b111) or (caps.mode_based_execute and bool(value >> 10 & 1))


def entry_problem(value: int, level: int, caps: Capabilities) -> Optional[str]:
    """29.3.3.1: why a present entry is an EPT misconfiguration, or None."""
    r, w, x, xu = (value >> 0) & 1, (value >> 1) & 1, (value >> 2) & 1, (value >> 10) & 1
    if w and not r:
        return "bit 1 (write) is set with bit 0 (read) clear: write-only and write/execute are reserved"
    if not caps.execute_only and not r and x:
        return "execute-only (bit 2 without bit 0) and the processor does not support it (A.10 bit 0)"
    if not caps.execute_only and caps.mode_based_execute and not r and xu:
        return ("user-mode execute (bit 10) without read and the processor does not support "
                "execute-only translations (A.10 bit 0)")
    ps = value >> 7 & 1
    if level in (2, 3) and ps:
        if level == 2 and not caps.pages_2m:
            return "bit 7 set in an EPT PDE: the processor does not support 2-MByte pages (A.10 bit 16)"
        if level == 3 and not caps.pages_1g:
            return "bit 7 set in an EPT PDPTE: the processor does not support 1-GByte pages (A.10 bit 17)"
    maps_page = level == 1 or (level in (2, 3) and bool(ps))
    size = 1 << (12 + 9 * (level - 1))
    rsvd = value & reserved_bits(level, maps_page, size)
    if rsvd:
        bits = [b for b in range(64) if rsvd >> b & 1]
        return f"reserved bit{'s' if len(bits) > 1 else ''} {', '.join(map(str, bits))} set"
    if maps_page and (value >> 3 & 7) in (2, 3, 7):
        return f"memory type {(value >> 3) & 7} in bits 5:3 (2, 3 and 7 are reserved)"
    return None


def qualification(access: Access, rights: int, ad: bool, caps: Capabilities) -> int:
    """Table 28-7, from its rows."""
    q = 0
    if access.paging_structure and ad and access.linear_address is not None:
        q |= 0b11          # treated as a write: "sets both bit 0 and bit 1"
    elif access.kind == "r":
        q |= 1 << 0
    elif access.kind == "w":
        q |= 1 << 1
    else:
        q |= 1 << 2
    for src, dst in ((0, 3), (1, 4), (2, 5)):
        q |= (rights >> src & 1) << dst
    if caps.mode_based_execute:
        q |= (rights >> 10 & 1) << 6
    if access.linear_address is not None:
        q |= 1 << 7
        if not access.paging_structure:
            q |= 1 << 8
            if caps.advanced_info:
                q |= int(access.user) << 9 | int(access.writable) << 10 | int(not access.executable) << 11
    return q


def translate(read_u64: Callable[[int], int], eptp: int, gpa: int, access: Access,
              caps: Capabilities = Capabilities(), pml: Optional[tuple] = None) -> Result:
    """Walk the EPT paging structures for one access. `pml`: (address, index) when PML is on.
    Nothing is written: the A/D updates and PML entries the access makes are in `writes`."""
    levels = ((eptp >> 3) & 7) + 1
    ad = bool(eptp >> 6 & 1)
    addr_mask = ((1 << MAXPHYADDR) - 1) & ~0xFFF
    table = eptp & addr_mask
    steps = []
    rights = 0b111 | (1 << 10)
    level = levels
    while True:
        # Step: select the entry with 9 bits of the guest-physical address
        shift = 12 + 9 * (level - 1)
        address = table + ((gpa >> shift) & 0x1FF) * 8
        value = read_u64(address)
        steps.append(Step(level, LEVEL_NAMES[level], address, value))
        rights &= value & (0b111 | (1 << 10))
        if not present(value, caps):
            return Result(VIOLATION, tuple(steps), f"the {LEVEL_NAMES[level]} is not present",
                          qualification=qualification(access, rights, ad, caps), rights=rights)
        problem = entry_problem(value, level, caps)
        if problem:
            return Result(MISCONFIGURATION, tuple(steps), f"the {LEVEL_NAMES[level]}: {problem}",
                          rights=rights)
        if level == 1 or (level in (2, 3) and value >> 7 & 1):
            break
        table = value & addr_mask
        level -= 1
    size = 1 << shift
    hpa = (value & addr_mask & ~(size - 1)) | (gpa & (size - 1))
    # 29.3.3.2: which right the access needs
    as_write = access.kind == "w" or (access.paging_structure and ad and access.linear_address is not None)
    if as_write:
        need, what = 1 << 1, "write"
    elif access.kind == "r":
        need, what = 1 << 0, "read"
    elif caps.mode_based_execute and access.user:
        need, what = 1 << 10, "user-mode execute"
    else:
        need, what = 1 << 2, "execute" if not caps.mode_based_execute else "supervisor-mode execute"
    common = dict(steps=tuple(steps), rights=rights, memory_type=value >> 3 & 7,
                  ignore_pat=bool(value >> 6 & 1), page_size=size)
    if not rights & need:
        return Result(VIOLATION, reason=f"an entry on the path does not allow {what} access",
                      hpa=hpa, qualification=qualification(access, rights, ad, caps), **common)
    writes = []
    index = pml[1] if pml else None
    if ad:
        # 29.3.5: accessed flag in every entry used; dirty flag in the one that maps the page on
        # a write; 29.3.6: a dirty flag going from 0 to 1 is logged first
        dirty = as_write and not (value >> 9 & 1)
        if dirty and pml is not None:
            if not 0 <= index <= 511:
                return Result(PML_FULL, reason=f"the PML index {index} is outside 0-511: the log is full",
                              pml_index=index, **common)
            writes.append((pml[0] + 8 * index, gpa & ~0xFFF))
            index = (index - 1) & 0xFFFF
        for i, s in enumerate(steps):
            new = s.value | (1 << 8) | ((1 << 9) if (dirty and i == len(steps) - 1) else 0)
            if new != s.value:
                writes.append((s.address, new))
    return Result(OK, reason="translated", hpa=hpa, writes=tuple(writes), pml_index=index, **common)
