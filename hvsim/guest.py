"""The guest as the front sees it: its registers and memory, wherever they are at the moment.

While the guest runs (VMX non-root operation, stopped by the debugger between instructions)
its whole state is in the processor. Between a VM exit and the next VM entry the VMM runs: the
processor holds the host's RIP, RSP, RFLAGS, control and segment registers, and the guest's are
in the VMCS guest-state area (SDM 28.3); the other general-purpose registers still hold the
guest's values (VM exits do not switch them). `GuestView` reads each from the right place and
never changes anything: memory is read with its own page walk, which sets no accessed or dirty
flag and fills no TLB.
"""
from __future__ import annotations

import attrs

from vmx import Field as F, ProcBased, SecondaryProcBased
from x86.machine import GPRS, SEGMENTS

from hvsim import eptwalk

ADDR = 0x000FFFFFFFFFF000            # bits 51:12 of a paging-structure entry
CONTROL_REGISTERS = ("cr0", "cr2", "cr3", "cr4", "efer")
SEGMENT_REGISTERS = SEGMENTS[:6]      # es cs ss ds fs gs
REGISTER_NAMES = GPRS + ("rip", "rflags") + CONTROL_REGISTERS + SEGMENT_REGISTERS + ("fs_base", "gs_base")
_VMCS_REGS = {"rsp": F.GUEST_RSP, "rip": F.GUEST_RIP, "rflags": F.GUEST_RFLAGS, "cr0": F.GUEST_CR0,
              "cr3": F.GUEST_CR3, "cr4": F.GUEST_CR4, "efer": F.GUEST_IA32_EFER,
              "fs_base": F.GUEST_FS_BASE, "gs_base": F.GUEST_GS_BASE}


class GuestMemoryError(Exception):
    """A guest address the front cannot read: not mapped, or EPT without a walker."""


@attrs.frozen
class WalkLevel:
    """One paging-structure entry of a walk: its name (SDM 4.5: PML4E, PDPTE, ...), where it is
    (guest-physical), its value, and its flags in short."""
    name: str
    entry_address: int
    entry: int

    @property
    def flags(self) -> str:
        e = self.entry
        names = [("P", 0), ("W", 1), ("U", 2), ("A", 5), ("D", 6), ("PS", 7), ("G", 8)]
        out = [n for n, b in names if e >> b & 1]
        if e >> 63 & 1:
            out.append("XD")
        return " ".join(out) or "not present"


@attrs.frozen
class PageWalk:
    """A linear address through the guest's paging: each level, then the guest-physical address
    or why there is none."""
    linear: int
    mode: str
    levels: tuple[WalkLevel, ...]
    physical: int | None
    fault: str | None = None


class GuestView:
    """Read-only access to the current guest of a vmx.Machine (its current VMCS)."""

    def __init__(self, machine):
        self.machine = machine
        self.cpu = machine.cpu

    # --- where things are --------------------------------------------------------------------
    @property
    def live(self) -> bool:
        """True while the guest runs (stopped between two of its instructions)."""
        return bool(self.cpu.vmx.non_root)

    @property
    def vmcs(self):
        return self.cpu.vmx.current_vmcs()

    def field(self, field) -> int:
        """A VMCS field of the current VMCS, read from its storage (no VMREAD: nothing changes)."""
        vmcs = self.vmcs
        return vmcs.read_enc(int(field)) if vmcs is not None else 0

    # --- registers ------------------------------------------------------------------------------
    def register(self, name: str) -> int:
        cpu = self.cpu
        if not self.live and name in _VMCS_REGS:
            return self.field(_VMCS_REGS[name])
        if name in GPRS:
            return getattr(cpu, name)
        if name in SEGMENT_REGISTERS:
            return self.segment(name)[0]
        if name == "fs_base" or name == "gs_base":
            return cpu.segment(name[:2]).base
        if name == "rip":
            return cpu.rip
        if name == "rflags":
            return cpu.rflags
        return cpu.get_sys(name)

    def registers(self) -> dict[str, int]:
        return {name: self.register(name) for name in REGISTER_NAMES}

    def segment(self, name: str) -> tuple[int, int, int, int]:
        """(selector, base, limit, access rights in the VMCS format)."""
        if self.live:
            s = self.cpu.segment(name)
            return s.selector, s.base, s.limit, s.attr
        up = name.upper()
        return tuple(self.field(F[f"GUEST_{up}_{part}"]) for part in ("SELECTOR", "BASE", "LIMIT", "AR_BYTES"))

    # --- guest-physical memory ------------------------------------------------------------------
    @property
    def ept_on(self) -> bool:
        """Secondary control "enable EPT" in force for the current VMCS (SDM 25.6.2)."""
        return bool(self.field(F.CPU_BASED_VM_EXEC_CONTROL) & ProcBased.ACTIVATE_SECONDARY_CONTROLS
                    and self.field(F.SECONDARY_VM_EXEC_CONTROL) & SecondaryProcBased.ENABLE_EPT)

    def ept_walk(self, gpa: int):
        """The EPT walk of a guest-physical address (hvsim.eptwalk), or GuestMemoryError."""
        walker = eptwalk.walker_for(self.machine, self.field(F.EPT_POINTER))
        if walker is None:
            raise GuestMemoryError("EPT is on but no EPT walker is wired into the front (hvsim.eptwalk)")
        return walker.walk(gpa)

    def host_physical(self, gpa: int) -> int:
        if not self.ept_on:
            return gpa
        walk = self.ept_walk(gpa)
        if walk.hpa is None:
            raise GuestMemoryError(f"guest-physical {gpa:#x}: {walk.fault}")
        return walk.hpa

    def read_physical(self, gpa: int, n: int) -> bytes:
        out = bytearray()
        while n > 0:
            chunk = min(n, 0x1000 - (gpa & 0xFFF))
            hpa = self.host_physical(gpa)
            if hpa + chunk > self.machine.memory.size:
                raise GuestMemoryError(f"guest-physical {gpa:#x} is beyond RAM")
            out += self.machine.memory.read(hpa, chunk)
            gpa, n = gpa + chunk, n - chunk
        return bytes(out)

    def _entry(self, gpa: int) -> int:
        return int.from_bytes(self.read_physical(gpa, 8), "little")

    # --- guest-linear memory (SDM Vol. 3A 4.3-4.5), read-only ------------------------------
    def walk(self, la: int) -> PageWalk:
        cr0, cr3, cr4, efer = (self.register(n) for n in ("cr0", "cr3", "cr4", "efer"))
        if not cr0 >> 31 & 1:
            return PageWalk(la, "no paging", (), la)
        if not cr4 >> 5 & 1:
            return self._walk32(la, cr3, cr4)
        pae = not efer >> 10 & 1
        if pae:
            names, table, top, mode = ("PDPTE", "PDE", "PTE"), cr3 & 0xFFFFFFE0, 30, "PAE paging"
        else:
            five = bool(cr4 >> 12 & 1)
            names = ("PML5E",) * five + ("PML4E", "PDPTE", "PDE", "PTE")
            table, top = cr3 & ADDR, 48 if five else 39
            mode = "5-level paging" if five else "4-level paging"
            high = la >> (top + 8)                       # bits 63:47 (63:56): all equal
            if high not in (0, (1 << (56 - top)) - 1):
                return PageWalk(la, mode, (), None, "not canonical")
        levels = []
        for i, name in enumerate(names):
            shift = top - 9 * i
            addr = table + ((la >> shift) & (3 if pae and i == 0 else 0x1FF)) * 8
            entry = self._entry(addr)
            levels.append(WalkLevel(name, addr, entry))
            if not entry & 1:
                return PageWalk(la, mode, tuple(levels), None, f"{name} not present")
            large = entry >> 7 & 1 and (name == "PDE" or name == "PDPTE" and not pae)
            if name == "PTE" or large:
                size = 1 << shift
                return PageWalk(la, mode, tuple(levels), (entry & ADDR & ~(size - 1)) | (la & (size - 1)))
            table = entry & ADDR
        raise AssertionError("a walk ends at a PTE")

    def _walk32(self, la: int, cr3: int, cr4: int) -> PageWalk:
        mode = "32-bit paging"
        pde_addr = (cr3 & 0xFFFFF000) | (la >> 22) * 4
        pde = self._entry(pde_addr) & 0xFFFFFFFF
        levels = [WalkLevel("PDE", pde_addr, pde)]
        if not pde & 1:
            return PageWalk(la, mode, tuple(levels), None, "PDE not present")
        if pde >> 7 & 1 and cr4 >> 4 & 1:
            return PageWalk(la, mode, tuple(levels), (pde & 0xFFC00000) | (la & 0x3FFFFF))
        pte_addr = (pde & 0xFFFFF000) | ((la >> 12) & 0x3FF) * 4
        pte = self._entry(pte_addr) & 0xFFFFFFFF
        levels.append(WalkLevel("PTE", pte_addr, pte))
        if not pte & 1:
            return PageWalk(la, mode, tuple(levels), None, "PTE not present")
        return PageWalk(la, mode, tuple(levels), (pte & 0xFFFFF000) | (la & 0xFFF))

    def read_linear(self, la: int, n: int) -> bytes:
        out = bytearray()
        while n > 0:
            chunk = min(n, 0x1000 - (la & 0xFFF))
            w = self.walk(la)
            if w.physical is None:
                raise GuestMemoryError(f"guest-linear {la:#x}: {w.fault} ({w.mode})")
            out += self.read_physical(w.physical, chunk)
            la, n = (la + chunk) & 0xFFFFFFFFFFFFFFFF, n - chunk
        return bytes(out)
