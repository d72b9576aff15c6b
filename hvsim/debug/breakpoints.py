"""Breakpoints and watches, and the small expression language of `if EXPR`.

Breakpoints stop on a VM exit (of a reason, or any: `*`), on a guest RIP (checked between
guest instructions), or on any VM-entry failure (a VMfail of VMLAUNCH/VMRESUME, or an exit with
bit 31 of the exit reason set). A watch stops when a VMCS field changes, whoever wrote it: the
VMM (seen before the next VM entry) or the processor (seen at the VM exit).

Conditions and addresses are Python expressions over: the guest's registers by name (`rax`,
`rip`, `cr3`, ...), `exit` (the vmx.VmExit), `q` (its decoded qualification: `q.port`,
`q.direction`, `q.cr` ...), `reason` (the ExitReason; compare with `R.CPUID`), `vmcs`
(`vmcs.GUEST_CR0` or `vmcs["GUEST_CR0"]`), `icount`, `seq`, `R` (vmx.ExitReason), `F`
(vmx.Field). Examples: `break exit IO_INSTRUCTION if q.port == 0x3f8 and rax & 0xff == 0x0a`,
`break rip 0x200040 if rcx == 3`, `mem rsp 32`.
"""
from __future__ import annotations

import builtins

import attrs

import vmx
from vmx import ExitReason

_SAFE_BUILTINS = {name: getattr(builtins, name) for name in (
    "abs", "all", "any", "bin", "bool", "hex", "int", "len", "max", "min", "sum", "True", "False", "None")}


class ExpressionError(Exception):
    pass


def compile_expression(text: str):
    try:
        return compile(text, "<expression>", "eval")
    except SyntaxError as e:
        raise ExpressionError(f"cannot read {text!r}: {e.msg}") from None


class VmcsFields:
    """`vmcs.NAME` / `vmcs["NAME"]`: a field of the current VMCS, read without VMREAD."""

    def __init__(self, guest):
        self._guest = guest

    def __getitem__(self, name):
        try:
            return self._guest.field(vmx.Field[name.upper()] if isinstance(name, str) else name)
        except KeyError:
            raise ExpressionError(f"no VMCS field {name!r}") from None

    __getattr__ = __getitem__


class Namespace(dict):
    """The names an expression sees; registers are read only when used."""

    def __init__(self, guest, **values):
        super().__init__(values)
        self.guest = guest

    def __missing__(self, name):
        from hvsim.guest import REGISTER_NAMES
        if name in REGISTER_NAMES:
            return self.guest.register(name)
        raise NameError(f"name {name!r} is not a register, nor one of: {', '.join(sorted(self))}")


def namespace(guest, vm_exit=None, **values) -> Namespace:
    return Namespace(guest, exit=vm_exit, q=vm_exit.qualification if vm_exit is not None else None,
                     reason=vm_exit.reason if vm_exit is not None else None, vmcs=VmcsFields(guest),
                     R=ExitReason, F=vmx.Field, **values)


def evaluate(code, ns: Namespace):
    try:
        return eval(code, {"__builtins__": _SAFE_BUILTINS}, ns)
    except ExpressionError:
        raise
    except Exception as e:
        raise ExpressionError(f"{type(e).__name__}: {e}") from None


def parse_reason(text: str):
    """An exit reason by name (any case) or number; `*` or `any` for every reason (None)."""
    if text in ("*", "any"):
        return None
    try:
        return ExitReason(int(text, 0))
    except ValueError:
        pass
    try:
        return ExitReason[text.upper()]
    except KeyError:
        raise ExpressionError(f"no exit reason {text!r} (SDM Appendix C; `help break` lists how to name one)") from None


@attrs.define
class Breakpoint:
    number: int
    kind: str                           # "exit", "rip", "entry-failure", "watch"
    reason: ExitReason | None = None    # kind "exit": None = every exit
    rip: int | None = None              # kind "rip"
    field: vmx.Field | None = None      # kind "watch"
    condition: str | None = None
    code: object = attrs.field(default=None, repr=False)
    hits: int = 0

    def describe(self) -> str:
        if self.kind == "exit":
            what = f"VM exit {self.reason.name if self.reason is not None else '(any reason)'}"
        elif self.kind == "rip":
            what = f"guest RIP {self.rip:#x}"
        elif self.kind == "watch":
            what = f"VMCS field {self.field.name} changes"
        else:
            what = "VM-entry failure (VMfail or exit reason bit 31)"
        return what + (f" if {self.condition}" if self.condition else "")


class Breakpoints:
    """Breakpoints and watches, numbered together (as gdb does)."""

    def __init__(self):
        self.items: dict[int, Breakpoint] = {}
        self._next = 1

    def _add(self, **kw) -> Breakpoint:
        cond = kw.get("condition")
        bp = Breakpoint(self._next, code=compile_expression(cond) if cond else None, **kw)
        self.items[bp.number] = bp
        self._next += 1
        return bp

    def add_exit(self, reason_text: str, condition: str | None = None) -> Breakpoint:
        return self._add(kind="exit", reason=parse_reason(reason_text), condition=condition)

    def add_rip(self, rip: int, condition: str | None = None) -> Breakpoint:
        return self._add(kind="rip", rip=rip & 0xFFFFFFFFFFFFFFFF, condition=condition)

    def add_entry_failure(self) -> Breakpoint:
        return self._add(kind="entry-failure")

    def add_watch(self, field) -> Breakpoint:
        return self._add(kind="watch", field=field)

    def delete(self, number: int | None = None) -> list[Breakpoint]:
        if number is None:
            gone, self.items = list(self.items.values()), {}
            return gone
        if number not in self.items:
            raise ExpressionError(f"no breakpoint or watch {number}")
        return [self.items.pop(number)]

    def of(self, kind: str) -> list[Breakpoint]:
        return [b for b in self.items.values() if b.kind == kind]

    @property
    def rips(self) -> set[int]:
        return {b.rip for b in self.of("rip")}

    def _hits(self, candidates, ns) -> list[tuple[Breakpoint, str | None]]:
        out = []
        for bp in candidates:
            error = None
            if bp.code is not None:
                try:
                    if not evaluate(bp.code, ns):
                        continue
                except ExpressionError as e:
                    error = str(e)
            bp.hits += 1
            out.append((bp, error))
        return out

    def exit_hits(self, vm_exit, ns) -> list[tuple[Breakpoint, str | None]]:
        found = [b for b in self.of("exit") if b.reason is None or b.reason == vm_exit.reason]
        if vm_exit.entry_failure:
            found += self.of("entry-failure")
        return self._hits(found, ns)

    def rip_hits(self, rip: int, ns) -> list[tuple[Breakpoint, str | None]]:
        return self._hits([b for b in self.of("rip") if b.rip == rip], ns)

    def failure_hits(self, ns) -> list[tuple[Breakpoint, str | None]]:
        return self._hits(self.of("entry-failure"), ns)
