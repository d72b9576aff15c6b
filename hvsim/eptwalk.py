"""EPT walks in the front: the debugger's `ept walk GPA`, and guest-physical reads when EPT is on.

The front does not walk EPT itself (the `ept` package owns the walker, ARCHITECTURE.md). It asks
a walker that follows this small protocol:

    walker.walk(gpa) -> EptWalk       # .levels (EptLevel each), .hpa or .fault

`WALKER_FACTORY(machine, eptp)` makes one for the EPTP of the current VMCS: by default the `ept`
package's read-only walk (`ept.walk`, the reference walker: no accessed or dirty flag is set, no
cached mapping is consulted).
"""
from __future__ import annotations

from typing import Callable, Protocol, Sequence

import attrs


@attrs.frozen
class EptLevel:
    """One EPT paging-structure entry (SDM Vol. 3C 29.3.2): the level's name (PML5E, PML4E,
    PDPTE, PDE, PTE), the entry's host-physical address and value, its permissions as "RWX"
    with "-" for a missing one, and anything else worth saying (memory type, a large page)."""
    name: str
    entry_address: int
    entry: int
    permissions: str
    note: str = ""


@attrs.frozen
class EptWalk:
    """The walk of one guest-physical address: the levels read, then the host-physical address,
    or the reason the walk fails (an EPT violation or misconfiguration, in the SDM's words)."""
    gpa: int
    levels: Sequence[EptLevel]
    hpa: int | None
    fault: str | None = None


class EptWalker(Protocol):
    def walk(self, gpa: int) -> EptWalk: ...


class _EptPackageWalker:
    """`ept.walk` in this module's shape."""

    def __init__(self, machine, eptp: int):
        self.machine, self.eptp = machine, eptp

    def walk(self, gpa: int) -> EptWalk:
        import ept
        w = ept.walk(self.machine.memory, self.eptp, gpa)
        levels = [EptLevel(s.name, s.address, s.value, s.permissions) for s in w.steps]
        if levels and w.hpa is not None:
            last = levels[-1]
            levels[-1] = attrs.evolve(last, note=f"{w.page_size >> 10} KiB page, memory type {w.memory_type}")
        return EptWalk(gpa, levels, w.hpa, None if w.hpa is not None else w.reason)


WALKER_FACTORY: Callable[[object, int], EptWalker] | None = _EptPackageWalker


def walker_for(machine, eptp: int) -> EptWalker | None:
    """A walker for `eptp` on `machine`, or None while no factory is wired."""
    return WALKER_FACTORY(machine, eptp) if WALKER_FACTORY is not None else None
