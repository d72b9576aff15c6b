"""The EPT unit of one logical processor: the face `vmx` wires to the VMCS (see ept/__init__.py).

`attach(cpu)` gives the processor's `Ept` (one per processor: it owns the guest-physical
mappings that processor caches). Everything here validates and converts; the walk is in C.
"""
from __future__ import annotations

import enum
from typing import Optional

import attrs

from ept import eptp as _eptp
from ept import reference
from ept._unit import CAPS, EptUnit
from x86.intercept import (ACC_NOLA, ACC_PT, ACC_R, ACC_W, ACC_X, SLAT_LA_EXEC, SLAT_LA_USER,
                           SLAT_LA_WRITE)

_CAP_EXEC_ONLY, _CAP_2M, _CAP_1G = CAPS["EXEC_ONLY"], CAPS["PAGES_2M"], CAPS["PAGES_1G"]
_CAP_ADV_INFO, _CAP_MBEC = CAPS["ADV_INFO"], CAPS["MBEC"]

_KINDS = {"r": ACC_R, "w": ACC_W, "x": ACC_X}


class FaultKind(enum.IntEnum):
    """What stopped a guest-physical access (the fault code the core passes with EV_SLAT_FAULT)."""
    VIOLATION = 1          # 29.3.3.2, VM exit 48 "EPT violation"
    MISCONFIGURATION = 2   # 29.3.3.1, VM exit 49 "EPT misconfiguration"
    PML_FULL = 3           # 29.3.6, VM exit 62 "page-modification log full"


class InvEptType(enum.IntEnum):
    """INVEPT types (Vol. 3C 31.3 "INVEPT", 29.4.3.1)."""
    SINGLE_CONTEXT = 1
    ALL_CONTEXT = 2


@attrs.frozen
class EptFault:
    """The last fault the walker reported: what vmx writes to the exit-information fields
    (GUEST_PHYSICAL_ADDRESS, GUEST_LINEAR_ADDRESS, EXIT_QUALIFICATION).

    `qualification` holds the Table 28-7 bits the walker knows (0-11; vmx adds bit 12, NMI
    unblocking due to IRET); 0 for misconfigurations and PML-full events. `guest_linear_address`
    is None when the qualification's bit 7 is 0 (PDPTE loads). `level` is the EPT level whose
    entry ended the walk (5 PML5E ... 1 PTE), 0 when a cached guest-physical mapping refused the
    access; `entry`/`entry_address` that entry."""
    kind: FaultKind
    guest_physical_address: int
    guest_linear_address: Optional[int]
    qualification: int
    level: int
    entry: int
    entry_address: int

    @property
    def suppress_ve(self) -> bool:
        """Bit 63 of the entry that ended the walk: the not-present entry, or the one mapping the
        page (what decides between a #VE and a VM exit, SDM 25.5.6.1)."""
        return bool(self.entry >> 63)

    def explain(self) -> str:
        where = f"guest-physical address {self.guest_physical_address:#x}"
        if self.guest_linear_address is not None:
            where += f" (linear address {self.guest_linear_address:#x})"
        entry = (f"the {reference.LEVEL_NAMES[self.level]} at {self.entry_address:#x} = {self.entry:#x}"
                 if self.level else "a cached guest-physical mapping")
        if self.kind == FaultKind.MISCONFIGURATION:
            return f"EPT misconfiguration at {where}: {entry} (SDM 29.3.3.1)"
        if self.kind == FaultKind.PML_FULL:
            return f"page-modification log full at {where} (SDM 29.3.6)"
        q = self.qualification
        access = " and ".join(n for b, n in ((0, "data read"), (1, "data write"), (2, "instruction fetch"))
                              if q >> b & 1)
        perms = "".join(c if q >> b & 1 else "-" for b, c in ((3, "r"), (4, "w"), (5, "x")))
        side = "" if not q >> 7 & 1 else (" to the translation of the linear address" if q >> 8 & 1
                                          else " to a guest paging-structure entry")
        return (f"EPT violation: {access}{side} at {where}; the translation allows {perms} "
                f"(ended at {entry}; SDM 29.3.3.2)")


@attrs.frozen
class Translation:
    """One walk of the EPT paging structures in memory (`Ept.translate`)."""
    fault: Optional[FaultKind]
    host_physical_address: Optional[int]
    qualification: int
    rights: int                 # bits 0, 1, 2, 10 ANDed over the entries used
    memory_type: Optional[int]
    ignore_pat: Optional[bool]
    page_size: Optional[int]
    entries: tuple              # ((level, address, value), ...) from the top
    dirty_set: bool


def attach(cpu) -> "Ept":
    """The EPT unit of `cpu` (created on first use, off until `enable`)."""
    unit = cpu.__dict__.get("_ept")
    if unit is None:
        unit = cpu.__dict__["_ept"] = Ept(cpu)
    return unit


class Ept:
    """One processor's EPT: the walker's context (EPTP, capabilities, guest-physical mapping
    cache, PML state, last fault), installed as the core's second-level translation."""

    def __init__(self, cpu):
        self.cpu = cpu
        self._unit = EptUnit(cpu)
        self.enabled = False

    # --- on and off ------------------------------------------------------------------------
    def enable(self, eptp: int, ept_vpid_cap: int = _eptp.FULL_CAPABILITIES,
               mode_based_execute: bool = False, flush_tlb: bool = True) -> None:
        """Translate every guest-physical access of the processor through the EPT paging
        structures `eptp` points to. `ept_vpid_cap` is the IA32_VMX_EPT_VPID_CAP value of the
        processor (execute-only, 2-MByte and 1-GByte pages, advanced VM-exit information);
        `mode_based_execute` the VM-execution control. `flush_tlb` drops the core's TLB (its
        combined mappings are not tagged by EPTP); a caller that flushes it itself may skip it."""
        eptp = int(eptp)
        if _eptp.walk_length(eptp) not in (4, 5):
            raise ValueError(f"EPTP {eptp:#x}: bits 5:3 give a page-walk length of "
                             f"{_eptp.walk_length(eptp)}; the walker knows 4 and 5 (VM entry checks it)")
        cap = int(ept_vpid_cap)
        caps = ((_CAP_EXEC_ONLY if cap & _eptp.EPT_EXECUTE_ONLY else 0)
                | (_CAP_2M if cap & _eptp.EPT_2MB_PAGE else 0)
                | (_CAP_1G if cap & _eptp.EPT_1GB_PAGE else 0)
                | (_CAP_ADV_INFO if cap & _eptp.EPT_ADVANCED_EXIT_INFO else 0)
                | (_CAP_MBEC if mode_based_execute else 0))
        self._unit.configure(eptp, caps)
        self._unit.install(True, flush_tlb)
        self.enabled = True

    def disable(self, flush_tlb: bool = True) -> None:
        """Guest-physical addresses are host-physical again (VMX root operation). The cached
        guest-physical mappings stay: only INVEPT removes them."""
        self._unit.install(False, flush_tlb)
        self.enabled = False

    @property
    def eptp(self) -> int:
        return self._unit.eptp

    @property
    def capabilities(self) -> reference.Capabilities:
        c = self._unit.caps
        return reference.Capabilities(execute_only=bool(c & _CAP_EXEC_ONLY), pages_2m=bool(c & _CAP_2M),
                                      pages_1g=bool(c & _CAP_1G), advanced_info=bool(c & _CAP_ADV_INFO),
                                      mode_based_execute=bool(c & _CAP_MBEC))

    # --- caching (29.4) -----------------------------------------------------------------------
    def invalidate(self, kind, eptp: int = 0, flush_tlb: bool = True) -> None:
        """INVEPT's effect (29.4.3.1): single-context (1) drops the guest-physical mappings
        tagged with `eptp`'s EP4TA, all-context (2) every one; both drop the combined mappings
        (the core's TLB). INVEPT's operand checks and VMfail outcomes are vmx's."""
        kind = InvEptType(int(kind))
        self._unit.invalidate(int(kind), int(eptp), flush_tlb)

    @property
    def translation_cache(self) -> "InvalidationHook":
        """This unit in the shape vmx's INVEPT/INVVPID expect of a registered translation cache
        (`cpu.vmx.translation_caches`): `.invalidate(what, kind, **operands)`."""
        return InvalidationHook(self)

    @property
    def use_cache(self) -> bool:
        return self._unit.use_cache

    @use_cache.setter
    def use_cache(self, on: bool) -> None:
        self._unit.use_cache = on

    def cached_mappings(self) -> list:
        """[(guest page number, EP4TA, host page, rights, dirty known, memory type, ignore PAT,
        page shift)] of the guest-physical mappings cached now."""
        return self._unit.cached()

    @property
    def stats(self) -> dict:
        return self._unit.stats()

    # --- faults ---------------------------------------------------------------------------------
    @property
    def fault(self) -> Optional[EptFault]:
        """The last fault (kept until `clear_fault`): the details behind EV_SLAT_FAULT."""
        raw = self._unit.fault()
        if raw is None:
            return None
        kind, gpa, gla, gla_valid, qual, level, entry, entry_address = raw
        return EptFault(FaultKind(kind), gpa, gla if gla_valid else None, qual, level, entry,
                        entry_address)

    def clear_fault(self) -> None:
        self._unit.clear_fault()

    def take_fault(self) -> Optional[EptFault]:
        f = self.fault
        self.clear_fault()
        return f

    # --- page-modification logging (29.3.6) ---------------------------------------------------
    def set_pml(self, address: int, index: int) -> None:
        """Log guest-physical pages whose dirty flag goes from 0 to 1 into the 4-KByte log at
        host-physical `address` (PML address), from entry `index` (PML index, 16 bits) down.
        Needs EPT A/D flags (EPTP bit 6): without them no dirty flag is set and nothing logs."""
        if address & 0xFFF:
            raise ValueError(f"the PML address {address:#x} must be 4-KByte aligned")
        self._unit.set_pml(True, int(address), int(index) & 0xFFFF)

    def disable_pml(self) -> None:
        self._unit.set_pml(False, 0, 0)

    @property
    def pml_index(self) -> int:
        """The PML index as the walker has left it (vmx saves it to the VMCS at VM exit)."""
        return self._unit.pml_index

    @pml_index.setter
    def pml_index(self, value: int) -> None:
        self._unit.pml_index = int(value) & 0xFFFF

    # --- one access, for debuggers and tests ----------------------------------------------------
    def _acc(self, access: str, paging_structure: bool, linear_address) -> int:
        if access not in _KINDS:
            raise ValueError(f"access is 'r', 'w' or 'x', not {access!r}")
        return (_KINDS[access] | (ACC_PT if paging_structure else 0)
                | (ACC_NOLA if linear_address is None else 0))

    @staticmethod
    def _lflags(user: bool, writable: bool, executable: bool) -> int:
        return ((SLAT_LA_USER if user else 0) | (SLAT_LA_WRITE if writable else 0)
                | (SLAT_LA_EXEC if executable else 0))

    def translate(self, gpa: int, access: str = "r", *, linear_address: Optional[int] = 0,
                  paging_structure: bool = False, user: bool = True, writable: bool = True,
                  executable: bool = True, update: bool = False) -> Translation:
        """Walk the EPT paging structures in memory for one access (no cached mapping is used or
        made). `update` sets A/D flags and logs with PML as the access would."""
        acc = self._acc(access, paging_structure, linear_address)
        st, qual, hpa, rights, mt, ipat, shift, _levels, entries, dirty = self._unit.walk(
            int(gpa), acc, self._lflags(user, writable, executable), int(linear_address or 0), update)
        top = _levels
        ents = tuple((top - i, a, v) for i, (a, v) in enumerate(entries))
        if st:
            return Translation(FaultKind(st), None, qual, rights, None, None, None, ents, dirty)
        return Translation(None, hpa, 0, rights, mt, bool(ipat), 1 << shift, ents, dirty)

    def access(self, gpa: int, access: str = "r", *, linear_address: Optional[int] = 0,
               paging_structure: bool = False, user: bool = True, writable: bool = True,
               executable: bool = True):
        """One access exactly as the processor makes it (cached mappings, walk, A/D, PML, the
        fault record): the host-physical address, or the FaultKind."""
        acc = self._acc(access, paging_structure, linear_address)
        st, hpa, _rights = self._unit.access(int(gpa), acc, self._lflags(user, writable, executable),
                                             int(linear_address or 0))
        return FaultKind(st) if st else hpa


class InvalidationHook:
    """INVEPT and INVVPID as vmx reports them (`invalidate("ept", kind, eptp=...)`,
    `invalidate("vpid", kind, vpid=..., linear_address=...)`), applied to one EPT unit. The
    caller drops the core's TLB itself. INVVPID leaves guest-physical mappings alone: they are
    not tagged by VPID (29.4.1, 29.4.3.3)."""

    def __init__(self, unit: Ept):
        self.unit = unit

    def invalidate(self, what: str, kind: int, eptp: int = 0, **_operands) -> None:
        if what == "ept":
            self.unit.invalidate(kind, eptp, flush_tlb=False)
