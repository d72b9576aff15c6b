"""Outcomes that leave the model as Python exceptions (API.md, "Machine, memory, CPU")."""
from __future__ import annotations

_NAMES = {0: "#DE", 1: "#DB", 2: "NMI", 3: "#BP", 4: "#OF", 5: "#BR", 6: "#UD", 7: "#NM",
          8: "#DF", 10: "#TS", 11: "#NP", 12: "#SS", 13: "#GP", 14: "#PF", 16: "#MF",
          17: "#AC", 18: "#MC", 19: "#XM", 20: "#VE", 21: "#CP"}


def vector_name(vector: int) -> str:
    return _NAMES.get(vector, f"vector {vector}")


class Fault(Exception):
    """An architectural fault raised in root mode by a Python call (SDM Vol. 3A Table 6-1)."""

    def __new__(cls, vector: int, error_code: int | None = None, message: str = ""):
        if cls is Fault and vector in _BY_VECTOR:
            cls = _BY_VECTOR[vector]
        return super().__new__(cls)

    def __init__(self, vector: int, error_code: int | None = None, message: str = ""):
        self.vector = vector
        self.error_code = error_code
        self.message = message
        text = vector_name(vector)
        if error_code is not None:
            text += f"({error_code:#x})"
        super().__init__(f"{text}: {message}" if message else text)

    def __eq__(self, other):
        return isinstance(other, Fault) and (self.vector, self.error_code) == (other.vector, other.error_code)

    __hash__ = Exception.__hash__


class UD(Fault):
    """#UD, invalid opcode (vector 6)."""


class GP(Fault):
    """#GP, general protection (vector 13)."""


class PF(Fault):
    """#PF, page fault (vector 14)."""


_BY_VECTOR = {6: UD, 13: GP, 14: PF}


class Unsupported(Exception):
    """Something the simulator does not model: named, never answered silently."""

    def __init__(self, what: str):
        self.what = what
        super().__init__(f"not modelled by hvsim: {what}")


class InstructionLimit(Exception):
    """A run retired Machine.instruction_limit instructions without stopping."""

    def __init__(self, limit: int, rip: int, storm: bool = False):
        self.limit = limit
        self.rip = rip
        self.storm = storm
        if storm:
            text = (f"exception storm: the guest took 65536 exceptions in a row without retiring an "
                    f"instruction (RIP {rip:#x}); its handlers fault again as soon as they start")
        else:
            text = (f"the guest retired {limit} instructions without stopping (RIP {rip:#x}); "
                    f"raise Machine(instruction_limit=...) if that is expected")
        super().__init__(text)
