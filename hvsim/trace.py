"""Exit traces: one JSON object per line (JSON Lines). docs/traces.md is the format's reference.

A trace is a header record, one record per VM-entry outcome (a VM exit, or a VMLAUNCH/VMRESUME
that failed with VMfail), and an end record. Exit records hold every exit-information field
raw (hex strings, exact in any JSON reader) and decoded by the SDM's field names, the retired
instruction count, and the guest's general-purpose registers and RFLAGS. The decoding is
vmx's (`vmx.VmExit`); `to_vm_exit` rebuilds the record's VmExit from the raw values.

`diff` finds the first divergence between two traces: a regression test of a VMM's exit
handling is "the trace of this run equals the one recorded".
"""
from __future__ import annotations

import enum
import json
import pathlib

import attrs

import vmx
from vmx.exit_record import EXIT_INFORMATION_FIELDS
from x86.machine import GPRS

FORMAT = "hvsim-exit-trace"
VERSION = 1
REGISTERS = GPRS + ("rflags",)
DERIVED = ("explain",)           # restates other fields: never compared
_DECODED = ("qualification", "instruction_info", "interruption_info", "idt_vectoring_info")


def _hex(v) -> str:
    return f"{int(v):#x}"


def _jsonable(v):
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, enum.Enum):
        return v.name
    return int(v)


def _decoded(record) -> dict:
    """A decoded exit-information field: raw value, the layout's name, its fields."""
    return {"raw": _hex(record), "layout": type(record).__name__,
            "fields": {k: _jsonable(v) for k, v in record.fields().items()}}


def header(scenario: str, profile: str) -> dict:
    return {"type": "header", "format": FORMAT, "version": VERSION, "scenario": scenario,
            "profile": profile, "registers": list(REGISTERS)}


def exit_record(seq: int, icount: int, ex, registers: dict) -> dict:
    """The record of VM exit number `seq` (`registers`: the guest's, by name)."""
    reason = ex.reason
    rec = {"type": "exit", "seq": seq, "icount": icount,
           "reason": reason.name if isinstance(reason, vmx.ExitReason) else None,
           "reason_number": int(reason), "entry_failure": ex.entry_failure,
           "exit_reason": _hex(ex.raw_reason)}
    for name in EXIT_INFORMATION_FIELDS:
        if name == "raw_reason":
            continue
        value = getattr(ex, name)
        rec[name] = _decoded(value) if name in _DECODED else (
            value if name == "instruction_length" else _hex(value))
    rec["check"] = attrs.asdict(ex.check) if ex.check is not None else None
    rec["registers"] = {r: _hex(registers[r]) for r in REGISTERS}
    rec["explain"] = ex.explain()
    return rec


def vmfail_record(seq: int, icount: int, instruction: str, error) -> dict:
    """A VMLAUNCH/VMRESUME that failed with VMfailInvalid or VMfailValid(n) (SDM 31.2)."""
    number = getattr(error, "error", None)
    return {"type": "vmfail", "seq": seq, "icount": icount, "instruction": instruction,
            "outcome": type(error).__name__, "error": int(number) if number is not None else None,
            "error_name": number.name if number is not None else None,
            "check": attrs.asdict(error.check), "explain": str(error)}


def end_record(seq: int, icount: int, error: BaseException | None) -> dict:
    """How the VMM's run ended: it stopped, or raised (`error`)."""
    return {"type": "end", "seq": seq, "icount": icount, "outcome": "error" if error else "stop",
            "error": f"{type(error).__name__}: {error}" if error else None}


def _int(v) -> int:
    return v if isinstance(v, int) else int(v["raw"] if isinstance(v, dict) else v, 0)


def to_vm_exit(rec: dict) -> vmx.VmExit:
    """The VmExit an exit record was made from (decoded again by vmx)."""
    kw = {name: _int(rec[name]) for name in EXIT_INFORMATION_FIELDS if name != "raw_reason"}
    check = vmx.Check(**rec["check"]) if rec.get("check") else None
    return vmx.VmExit(raw_reason=int(rec["exit_reason"], 0), check=check, **kw)


# --- files -------------------------------------------------------------------------------------

@attrs.define
class Trace:
    header: dict
    records: list[dict] = attrs.field(factory=list)

    @property
    def exits(self) -> list[dict]:
        return [r for r in self.records if r["type"] == "exit"]

    def dumps(self) -> str:
        return "".join(json.dumps(r) + "\n" for r in [self.header, *self.records])

    def save(self, path) -> None:
        pathlib.Path(path).write_text(self.dumps())


class TraceError(Exception):
    """A file that is not an exit trace of a version this front reads."""


def loads(text: str, name: str = "<trace>") -> Trace:
    records = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise TraceError(f"{name}:{n}: not JSON ({e.msg})") from None
    if not records or records[0].get("type") != "header" or records[0].get("format") != FORMAT:
        raise TraceError(f"{name}: not an {FORMAT} file (the first line is its header)")
    if records[0].get("version") != VERSION:
        raise TraceError(f"{name}: format version {records[0].get('version')}; this hvsim reads {VERSION}")
    return Trace(records[0], records[1:])


def load(path) -> Trace:
    return loads(pathlib.Path(path).read_text(), str(path))


# --- comparing -----------------------------------------------------------------------------------

@attrs.frozen
class Divergence:
    """Where two traces first differ: the record (its `seq`, or "header"), the field's path
    (dotted), and both values (None where a trace has no such record or field)."""
    where: str
    field: str
    a: object
    b: object

    def __str__(self) -> str:
        return f"first divergence at {self.where}: {self.field}: {_show(self.a)} (A) != {_show(self.b)} (B)"


def _show(v) -> str:
    return "(absent)" if v is None else json.dumps(v) if not isinstance(v, str) else v


def _flatten(value, prefix: str = ""):
    """(dotted path, leaf value) pairs in the record's own order."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _flatten(v, f"{prefix}.{k}" if prefix else k)
    else:
        yield prefix, value


def _ignored(path: str, ignore) -> bool:
    return any(path == i or path.startswith(i + ".") for i in ignore)


def _compare(a: dict, b: dict, ignore) -> tuple[str, object, object] | None:
    fa, fb = dict(_flatten(a)), dict(_flatten(b))
    for path in list(fa) + [p for p in fb if p not in fa]:
        if _ignored(path, ignore):
            continue
        if fa.get(path) != fb.get(path):
            return path, fa.get(path), fb.get(path)
    return None


def _where(rec: dict) -> str:
    kind = {"exit": "exit", "vmfail": "VMfail of entry", "end": "end after entry"}.get(rec["type"], rec["type"])
    return f"{kind} {rec.get('seq')}"


def diff(a: Trace, b: Trace, ignore=()) -> Divergence | None:
    """The first divergence between two traces, or None when they are equal. `ignore` names
    fields not to compare (dotted paths; a prefix ignores what is under it: "registers")."""
    ignore = tuple(ignore) + DERIVED
    head = _compare(a.header, b.header, ignore)
    if head is not None:
        return Divergence("header", *head)
    for ra, rb in zip(a.records, b.records):
        found = _compare(ra, rb, ignore)
        if found is not None:
            return Divergence(_where(ra), *found)
    n = min(len(a.records), len(b.records))
    if len(a.records) != len(b.records):
        extra = (a.records if len(a.records) > n else b.records)[n]
        return Divergence(_where(extra), "type", a.records[n]["type"] if len(a.records) > n else None,
                          b.records[n]["type"] if len(b.records) > n else None)
    return None
