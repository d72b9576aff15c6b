"""Shared scaffolding for the EPT tests: a bare machine whose EPT paging structures the tests
write by hand, entry by entry, the way the SDM tables describe them (Vol. 3C 29.3.2, Tables 29-1
to 29-6), and the processor's EPT unit pointed at them.

Host-physical memory map: 0x100000.. EPT table pool, 0x400000 PML log page, 0x800000.. host pages
that translations land on.
"""
from __future__ import annotations

import x86
import ept

POOL = 0x100000
PML_PAGE = 0x400000
HOST = 0x800000
R, W, X, XU = 1, 2, 4, 1 << 10
RWX = R | W | X
PS, A, D, IPAT = 1 << 7, 1 << 8, 1 << 9, 1 << 6
WB = 6 << 3
SIZES = {1: 4096, 2: 2 << 20, 3: 1 << 30}
LEVEL_NAMES = {5: "PML5E", 4: "PML4E", 3: "PDPTE", 2: "PDE", 1: "PTE"}

# Table 28-7 bit positions
Q_READ, Q_WRITE, Q_FETCH = 1 << 0, 1 << 1, 1 << 2
Q_READABLE, Q_WRITABLE, Q_EXECUTABLE, Q_USER_EXECUTABLE = 1 << 3, 1 << 4, 1 << 5, 1 << 6
Q_GLA_VALID, Q_TRANSLATION = 1 << 7, 1 << 8
Q_USER_LA, Q_WRITABLE_LA, Q_NX_LA = 1 << 9, 1 << 10, 1 << 11


def caps(execute_only=True, pages_2m=True, pages_1g=True, advanced_info=True):
    c = ept.eptp.EPT_PAGE_WALK_4 | ept.eptp.EPT_PAGE_WALK_5 | ept.eptp.EPT_MEMTYPE_WB | ept.eptp.EPT_AD
    for on, bit in ((execute_only, ept.eptp.EPT_EXECUTE_ONLY), (pages_2m, ept.eptp.EPT_2MB_PAGE),
                    (pages_1g, ept.eptp.EPT_1GB_PAGE), (advanced_info, ept.eptp.EPT_ADVANCED_EXIT_INFO)):
        c |= bit if on else 0
    return c


class Tables:
    """EPT paging structures written by hand in a bare machine's memory, and its EPT unit."""

    def __init__(self, levels=4, ad=False, memory_size=32 << 20, machine=None, **cap_kw):
        self.m = machine or x86.Machine(memory_size=memory_size)
        self.mem = self.m.memory
        self.alloc = ept.BumpAllocator(self.mem, POOL, PML_PAGE)
        self.levels, self.ad = levels, ad
        self.root = self.alloc()
        self.eptp = ept.make_eptp(self.root, levels, ad)
        self.mbec = cap_kw.pop("mode_based_execute", False)
        self.cap = caps(**cap_kw)
        self.e = ept.attach(self.m.cpu)
        self.e.enable(self.eptp, self.cap, mode_based_execute=self.mbec)

    def path(self, gpa, leaf_level, leaf, upper=None):
        """Tables from the root down to `leaf_level` for `gpa`; the entry at `leaf_level` is
        `leaf` (raw). `upper` gives the rights/flags of the entries on the way ({level: bits},
        default RWX; their table address is added). Returns {level: entry address}."""
        upper = upper or {}
        addrs = {}
        table = self.root
        for level in range(self.levels, leaf_level - 1, -1):
            address = table + ((gpa >> (12 + 9 * (level - 1))) & 0x1FF) * 8
            addrs[level] = address
            if level == leaf_level:
                self.mem.write_u64(address, leaf)
                break
            cur = self.mem.read_u64(address)
            if cur & RWX and not cur & PS and (cur & 0x7FFFFFF000) >= POOL:
                table = cur & 0x7FFFFFF000
                self.mem.write_u64(address, table | upper.get(level, RWX))
            else:
                table = self.alloc()
                self.mem.write_u64(address, table | upper.get(level, RWX))
        return addrs

    def leaf(self, gpa, level=1, rights=RWX, host=HOST, flags=WB):
        """A mapping of `gpa`'s page (4 KiB, 2 MiB, 1 GiB for level 1, 2, 3) to `host`."""
        return self.path(gpa, level, host | rights | flags | (PS if level > 1 else 0))

    def entry(self, address):
        return self.mem.read_u64(address)


class Exits:
    """An intercept hook that takes every second-level fault, recording the EPT unit's fault
    record with RIP and the event being delivered, as a VMM's exit handler would see them."""

    def __init__(self, cpu):
        from x86.intercept import EV_EXCEPTION, EV_SLAT_FAULT
        self.cpu, self.event, self.exception, self.seen = cpu, EV_SLAT_FAULT, EV_EXCEPTION, []
        self.take_exceptions = False

    def intercept(self, event, a, b):
        if event == self.exception and self.take_exceptions:
            self.seen.append(dict(vector=a, error=b & 0xFFFFFFFF, rip=self.cpu.rip))
            return True
        if event != self.event:
            return False
        f = ept.attach(self.cpu).take_fault()
        assert (f.guest_physical_address, int(f.kind)) == (a, b)
        self.seen.append(dict(fault=f, rip=self.cpu.rip, delivering=self.cpu.delivering))
        return True


GUEST_EPT = 0x1000000          # the EPT tables of `guest` machines live above 16 MiB


def guest(src, *, ad=False, levels=4, page_size=4096, memory_size=32 << 20, **enable_kw):
    """A long-mode guest (the loader's identity paging) running `src` at 0x100000 under an
    identity EPT map of its first 16 MiB; returns (machine, builder, exits)."""
    from x86.asm import assemble
    m = x86.Machine(memory_size=memory_size)
    m.load(assemble(src, address=0x100000), address=0x100000)
    b = ept.EptBuilder(m.memory, ept.BumpAllocator(m.memory, GUEST_EPT, GUEST_EPT + (4 << 20)),
                       ad=ad, levels=levels)
    b.identity(max(16 << 20, page_size), page_size=page_size)
    ept.attach(m.cpu).enable(b.eptp, **enable_kw)
    ex = Exits(m.cpu)
    m.cpu.set_hook(ex)
    return m, b, ex
