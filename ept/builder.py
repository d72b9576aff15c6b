"""Writing EPT paging structures from Python (API.md `ept.EptBuilder`), as a VMM does.

    alloc = ept.BumpAllocator(m.memory, base=0x800000, limit=0x900000)
    b = ept.EptBuilder(m.memory, alloc)                  # 4-level, A/D off, WB structures
    b.map(0, 0, 64 << 20, page_size=2 << 20)             # identity, 2-MByte pages, rwx, WB
    b.protect(0x200000, 0x1000, "r")                     # splits the 2-MByte page it lies in
    b.unmap(0x300000, 0x1000)
    b.eptp                                               # for the VMCS, or ept.attach(cpu).enable
    b.walk(0x200123)                                     # each level's entry, the HPA or why not

The formats are the SDM's (Vol. 3C 29.3.2, Tables 29-1 to 29-6). `allocator` is any callable
that returns the host-physical address of a fresh, zeroed, 4-KByte-aligned page;
`BumpAllocator` hands them out in order from a range.
"""
from __future__ import annotations

from typing import Callable

import attrs

from ept import eptp as _eptp
from ept import reference

PAGE_SIZES = {4096: 1, 2 << 20: 2, 1 << 30: 3}      # page size -> level of the entry mapping it
_PERM_BITS = {"r": 1 << 0, "w": 1 << 1, "x": 1 << 2, "u": 1 << 10}
_RIGHTS = (1 << 0) | (1 << 1) | (1 << 2) | (1 << 10)
_PS = 1 << 7
_IPAT = 1 << 6
_SUPPRESS_VE = 1 << 63
_ADDR = _eptp.ROOT_MASK


def perm_bits(perms: str) -> int:
    """"rwx" style permissions (and "u": bit 10, execute for user-mode linear addresses with
    mode-based execute control) as entry bits."""
    bad = set(perms) - set(_PERM_BITS) - {"-"}
    if bad:
        raise ValueError(f"permissions are made of r, w, x, u; not {''.join(sorted(bad))!r}")
    return sum(_PERM_BITS[c] for c in set(perms) if c != "-")


class BumpAllocator:
    """Zeroed 4-KByte pages of host-physical memory, handed out in order from [base, limit)."""

    def __init__(self, memory, base: int, limit: int):
        if base & 0xFFF:
            raise ValueError(f"base {base:#x} must be 4-KByte aligned")
        self.memory, self.next, self.limit = memory, base, limit

    def __call__(self) -> int:
        if self.next + 4096 > self.limit:
            raise MemoryError(f"the EPT allocator's range ends at {self.limit:#x}")
        page, self.next = self.next, self.next + 4096
        self.memory.write(page, bytes(4096))
        return page


@attrs.frozen
class WalkStep:
    level: int
    name: str
    address: int
    value: int
    permissions: str


@attrs.frozen
class Walk:
    """What `EptBuilder.walk` found: the entries from the top, then the host-physical address or
    the reason there is none."""
    steps: tuple
    hpa: int | None
    reason: str
    memory_type: int | None = None
    page_size: int | None = None

    def __str__(self) -> str:
        lines = [f"{s.name:<10} @ {s.address:#014x} = {s.value:#018x}  {s.permissions}" for s in self.steps]
        lines.append(f"-> {self.hpa:#x} ({self.page_size >> 10} KiB page, memory type {self.memory_type})"
                     if self.hpa is not None else f"-> no translation: {self.reason}")
        return "\n".join(lines)


class EptBuilder:
    """EPT paging structures in `memory` (an x86.Memory), tables from `allocator`."""

    def __init__(self, memory, allocator: Callable[[], int], *, levels: int = 4, ad: bool = False,
                 memory_type: int = _eptp.MEMTYPE_WB,
                 capabilities: reference.Capabilities = reference.Capabilities()):
        self.memory, self.allocator = memory, allocator
        self.levels, self.ad, self.structure_memory_type = levels, ad, memory_type
        self.capabilities = capabilities
        self.root = allocator()
        self.eptp = _eptp.make_eptp(self.root, levels, ad, memory_type)

    # --- entries ---------------------------------------------------------------------------
    def _table_entry(self, table: int) -> int:
        return table | _RIGHTS          # tables allow everything: the leaf decides

    def _split(self, address: int, value: int, level: int) -> int:
        """Replace the large-page entry at `address` (at `level`) by a table of the next level
        mapping the same memory with the same attributes (29.3.2)."""
        table = self.allocator()
        child = 1 << (12 + 9 * (level - 2))
        base = value & _ADDR & ~((1 << (12 + 9 * (level - 1))) - 1)
        attrs_ = value & ~_ADDR & ~_PS
        for i in range(512):
            self.memory.write_u64(table + 8 * i, (base + i * child) | attrs_ | (_PS if level - 1 > 1 else 0))
        new = self._table_entry(table) | (value & (1 << 8))
        self.memory.write_u64(address, new)
        return new

    def _visit(self, gpa: int, size: int, target: int, on_leaf, create: bool):
        """Call on_leaf(address, level, entry gpa) for each entry at `target` level covering
        [gpa, gpa + size). Missing tables on the way are created (`create`: map) or the range
        under them skipped (unmap, protect, which also take a larger page the range covers
        whole as it is); a large page in the way is split."""
        def rec(table: int, level: int, lo: int, hi: int):
            span = 1 << (12 + 9 * (level - 1))
            a = lo
            while a < hi:
                start = a & ~(span - 1)
                end = min(hi, start + span)
                address = table + ((a >> (12 + 9 * (level - 1))) & 0x1FF) * 8
                value = self.memory.read_u64(address)
                is_leaf = level == 1 or (level in (2, 3) and value & _PS and value & _RIGHTS)
                whole = a == start and end == start + span
                if level == target or (not create and is_leaf and whole):
                    on_leaf(address, level, start)
                elif not value & _RIGHTS:
                    if create:
                        t = self.allocator()
                        self.memory.write_u64(address, self._table_entry(t))
                        rec(t, level - 1, a, end)
                elif is_leaf:
                    value = self._split(address, value, level)
                    rec(value & _ADDR, level - 1, a, end)
                else:
                    rec(value & _ADDR, level - 1, a, end)
                a = end
        rec(self.root, self.levels, gpa, gpa + size)

    # --- the operations -----------------------------------------------------------------------
    def map(self, gpa: int, hpa: int, size: int, perms: str = "rwx", page_size: int = 4096,
            memory_type: int = 6, ignore_pat: bool = False, suppress_ve: bool = False) -> int:
        """Map [gpa, gpa + size) to [hpa, hpa + size) with pages of `page_size` (4 KiB, 2 MiB,
        1 GiB); `perms` from "rwxu"; `memory_type` in bits 5:3 (29.3.7: 0 UC, 1 WC, 4 WT,
        5 WP, 6 WB); returns the EPTP."""
        if page_size not in PAGE_SIZES:
            raise ValueError(f"page_size is 4 KiB, 2 MiB or 1 GiB, not {page_size:#x}")
        for name, v in (("gpa", gpa), ("hpa", hpa), ("size", size)):
            if v % page_size:
                raise ValueError(f"{name} {v:#x} is not a multiple of the page size {page_size:#x}")
        leaf_bits = (perm_bits(perms) | ((memory_type & 7) << 3) | (_IPAT if ignore_pat else 0)
                     | (_SUPPRESS_VE if suppress_ve else 0))
        target = PAGE_SIZES[page_size]

        def write(address, level, at):
            self.memory.write_u64(address, (hpa + (at - gpa)) | leaf_bits | (_PS if level > 1 else 0))
        self._visit(gpa, size, target, write, create=True)
        return self.eptp

    def identity(self, size: int, perms: str = "rwx", page_size: int = 2 << 20, **kw) -> int:
        """Map [0, size) to itself."""
        return self.map(0, 0, size, perms, page_size, **kw)

    def unmap(self, gpa: int, size: int) -> None:
        """Make [gpa, gpa + size) not present (4-KByte granular; large pages split as needed)."""
        self._check_4k(gpa, size)
        self._visit(gpa, size, 1, lambda address, level, at: self.memory.write_u64(address, 0), create=False)

    def protect(self, gpa: int, size: int, perms: str) -> None:
        """Set the permissions of the mapped pages in [gpa, gpa + size) to `perms`; unmapped
        pages stay unmapped; large pages the range covers only in part are split. Note: EPT
        entries cached by the processor stay in use until INVEPT (29.4.3)."""
        self._check_4k(gpa, size)
        bits = perm_bits(perms)

        def set_rights(address, level, at):
            v = self.memory.read_u64(address)
            if v & _RIGHTS:
                self.memory.write_u64(address, (v & ~_RIGHTS) | bits)
        self._visit(gpa, size, 1, set_rights, create=False)

    @staticmethod
    def _check_4k(gpa, size):
        if gpa % 4096 or size % 4096:
            raise ValueError(f"range [{gpa:#x}, +{size:#x}) is not 4-KByte aligned")

    def walk(self, gpa: int, access: str | None = None) -> Walk:
        """Each level's entry for `gpa` and the host-physical address or why there is none
        (module-level `walk` on this builder's EPTP)."""
        return walk(self.memory, self.eptp, gpa, access, self.capabilities)


def walk(memory, eptp: int, gpa: int, access: str | None = None,
         capabilities: reference.Capabilities = reference.Capabilities()) -> Walk:
    """Each level's entry for `gpa` under `eptp` (tables in `memory`, an x86.Memory), then the
    host-physical address the entries map it to or the reason there is none (the reference
    walker: SDM 29.3.2-29.3.3, no side effects): for debuggers. With `access` ("r", "w", "x": a
    final access from a user-mode, writable, executable linear address), also whether the
    entries allow it."""
    r = reference.translate(memory.read_u64, eptp, gpa, reference.Access(access or "r"), capabilities)
    mbec = capabilities.mode_based_execute
    steps = tuple(WalkStep(s.level, s.name, s.address, s.value, s.rights(mbec)) for s in r.steps)
    if r.outcome == reference.OK or (access is None and r.hpa is not None):
        return Walk(steps, r.hpa, "translated", r.memory_type, r.page_size)
    return Walk(steps, None, r.reason)
