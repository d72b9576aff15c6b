"""EPT walks in the front: the debugger's `ept walk GPA`, and guest-physical reads when EPT is on.

The front does not walk EPT itself (the `ept` package owns the walker, ARCHITECTURE.md). It asks
a walker that follows this small protocol:

    walker.walk(gpa) -> EptWalk       # .levels (EptLevel each), .hpa or .fault

`WALKER_FACTORY(machine, eptp)` makes one for the EPTP of the current VMCS; whoever wires the
`ept` package into the front sets it (`hvsim.eptwalk.WALKER_FACTORY = ...`). Until then the
debugger says so instead of guessing.
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


WALKER_FACTORY: Callable[[object, int], EptWalker] | None = None


def walker_for(machine, eptp: int) -> EptWalker | None:
    """A walker for `eptp` on `machine`, or None while no factory is wired."""
    return WALKER_FACTORY(machine, eptp) if WALKER_FACTORY is not None else None
