"""`Debugger`: the command interpreter of `hvsim debug`, usable without a terminal.

    dbg = Debugger(scenario.load("tour"), look=views.Look(plain=True))
    print(dbg.start())                       # the context view at the first VMLAUNCH
    print(dbg.execute("break exit CPUID"))
    print(dbg.execute("continue"))           # the context view at the CPUID exit

`execute(line)` returns the output as text at a fixed width; `run(line)` returns the rich
renderables (the terminal front prints those, in colour).
"""
from __future__ import annotations

import re
import shlex

from rich.text import Text

import vmx
from vmx import FIELDS, Field as F
from vmx.controls import (DEFAULT1, EntryControls, ExitControls, PinBased, ProcBased, SecondaryExitControls,
                          SecondaryProcBased, TertiaryProcBased, VmFunc)
from vmx.errors import VmInstructionError
from vmx.exits import describe as describe_reason
from vmx.interruption import InterruptionInfo

from hvsim import views
from hvsim.debug import disasm, panels
from hvsim.debug.breakpoints import ExpressionError, compile_expression, evaluate, namespace
from hvsim.debug.commands import BY_NAME, COMMANDS
from hvsim.debug.control import Controller, Order
from hvsim.guest import GuestMemoryError

# how the debugger names the bits of the control fields (the classes are vmx.controls')
_CONTROL_FLAGS = {F.PIN_BASED_VM_EXEC_CONTROL: PinBased, F.CPU_BASED_VM_EXEC_CONTROL: ProcBased,
                  F.SECONDARY_VM_EXEC_CONTROL: SecondaryProcBased,
                  F.TERTIARY_VM_EXEC_CONTROL: TertiaryProcBased, F.VM_EXIT_CONTROLS: ExitControls,
                  F.SECONDARY_VM_EXIT_CONTROLS: SecondaryExitControls,
                  F.VM_ENTRY_CONTROLS: EntryControls, F.VM_FUNCTION_CONTROL: VmFunc}
_KINDS = ("control", "exit-info", "guest", "host")
_FULL_FIELDS = [f for f in FIELDS if not f.high]


class CommandError(Exception):
    pass


def decode_field(field, value: int) -> str:
    """A VMCS field's value in words, where the debugger knows how to say it."""
    flags = _CONTROL_FLAGS.get(field)
    if flags is not None:
        names = [m.name for m in flags if value & m.value == m.value and m.value]
        rest = value & ~sum(m.value for m in flags)
        default1 = rest & DEFAULT1.get(flags, 0)
        return " ".join(names + ([f"default1 {default1:#x}"] if default1 else [])
                        + ([f"bits {rest & ~default1:#x}"] if rest & ~default1 else []))
    if field == F.VM_EXIT_REASON and value:
        return views.reason_name(vmx.VmExit(raw_reason=value).reason)
    if field in (F.VM_EXIT_INTR_INFO, F.IDT_VECTORING_INFO_FIELD, F.VM_ENTRY_INTR_INFO_FIELD) and value >> 31:
        return InterruptionInfo(value).describe()
    if field == F.VM_INSTRUCTION_ERROR and value:
        try:
            return VmInstructionError(value).name
        except ValueError:
            return ""
    return ""


class Debugger:
    def __init__(self, scenario, look: views.Look | None = None, width: int = 100, **controller_options):
        self.look = look or views.Look()
        self.width = width
        self.control = Controller(scenario, **controller_options)
        self.guest = self.control.guest
        self.done = False
        self._base: dict | None = None      # the guest's registers at the previous stop
        self._now: dict | None = None       # ... and at this one

    # --- the interface --------------------------------------------------------------------------
    def start(self) -> str:
        return self.look.text(self.start_view(), self.width)

    def start_view(self) -> list:
        return self._stopped(self.control.start())

    def execute(self, line: str) -> str:
        return self.look.text(self.run(line), self.width)

    def run(self, line: str) -> list:
        """Execute one command line; returns what to print (rich renderables)."""
        try:
            words = shlex.split(line, comments=False)
        except ValueError as e:
            return [Text(f"cannot read the line: {e}", style="red")]
        if not words:
            return []
        cmd = BY_NAME.get(words[0])
        if cmd is None:
            return [Text(f"unknown command {words[0]!r}; `help` lists them", style="red")]
        if self.done:
            return [Text("the debugger has quit", style="red")]
        try:
            return getattr(self, "cmd_" + cmd.name.replace("-", "_"))(words[1:], line)
        except (CommandError, ExpressionError, GuestMemoryError) as e:
            return [Text(str(e), style="red")]

    def completions(self, words: list[str]) -> list[str]:
        """What may come next after `words` (tab completion)."""
        if not words:
            return sorted(BY_NAME)
        cmd = BY_NAME.get(words[0])
        if cmd is None:
            return []
        if len(words) == 1:
            if cmd.name == "help":
                return [c.name for c in COMMANDS]
            if cmd.name == "vmcs":
                return list(cmd.words) + [f.name for f in _FULL_FIELDS]
            return list(cmd.words)
        if cmd.name == "break" and words[1] == "exit" and len(words) == 2:
            return [r.name for r in vmx.ExitReason] + ["*"]
        if cmd.name == "watch" and words[1] == "vmcs" and len(words) == 2:
            return [f.name for f in _FULL_FIELDS]
        if cmd.name in ("break",) and len(words) == 3:
            return ["if"]
        return []

    # --- after a stop ----------------------------------------------------------------------------
    def _stopped(self, stop) -> list:
        """The context view of a new stop; registers compare with the previous stop's."""
        self._base, self._now = self._now, self.guest.registers()
        return [panels.context(self.control, stop, self._base, self.look, self.width)]

    def _resume(self, order: Order) -> list:
        if self.control.stop.kind == "end":
            raise CommandError("the VMM's run has ended: `back` goes back in time, `quit` leaves")
        return self._stopped(self.control.resume(order))

    def _int(self, text: str, what: str) -> int:
        try:
            return int(text, 0)
        except ValueError:
            raise CommandError(f"{what}: {text!r} is not a number") from None

    def _address(self, text: str) -> int:
        """A number, or an expression over the registers (`rsp + 8`)."""
        try:
            return int(text, 0)
        except ValueError:
            value = evaluate(compile_expression(text), namespace(self.guest, self.control.session.last_exit))
            return int(value) & 0xFFFFFFFFFFFFFFFF

    # --- running ----------------------------------------------------------------------------------
    def cmd_step(self, args, line):
        n = self._int(args[0], "step") if args else 1
        if n < 1:
            raise CommandError("step: n must be at least 1")
        return self._resume(Order("step", until_icount=self.control.cpu.icount + n))

    def cmd_next_exit(self, args, line):
        return self._resume(Order("next-exit"))

    def cmd_continue(self, args, line):
        return self._resume(Order("continue"))

    def cmd_back(self, args, line):
        c = self.control
        if args and args[0] == "exit":
            # the outcomes recorded before this point (at an exit, the ones before it)
            limit = c.stop.seq - 1 if c.stop.kind in ("exit", "vmfail") else c.stop.seq
            earlier = [r["seq"] for r in c.session.trace.records
                       if r["type"] in ("exit", "vmfail") and r["seq"] <= limit]
            if not earlier:
                raise CommandError("back exit: there is no earlier VM exit")
            return self._stopped(c.back_to_seq(earlier[-1]))
        n = self._int(args[0], "back") if args else 1
        if n < 1:
            raise CommandError("back: n must be at least 1")
        return self._stopped(c.back_to_icount(c.stop.icount - n))

    # --- breakpoints --------------------------------------------------------------------------------
    def cmd_break(self, args, line):
        rest = line.split(None, 1)[1] if len(line.split(None, 1)) > 1 else ""
        spec, _, cond = rest.partition(" if ")
        words, cond = spec.split(), cond.strip() or None
        bps = self.control.breakpoints
        if not words:
            raise CommandError("usage: " + BY_NAME["break"].usage)
        if words[0] == "exit" and len(words) == 2:
            bp = bps.add_exit(words[1], cond)
        elif words[0] == "rip" and len(words) >= 2:
            bp = bps.add_rip(self._address(" ".join(words[1:])), cond)
        elif words[0] == "entry-failure" and len(words) == 1:
            bp = bps.add_entry_failure()
        else:
            raise CommandError("usage: " + BY_NAME["break"].usage)
        return [Text(f"breakpoint {bp.number}: {bp.describe()}")]

    def cmd_watch(self, args, line):
        if len(args) != 2 or args[0] != "vmcs":
            raise CommandError("usage: " + BY_NAME["watch"].usage)
        try:
            field = F[args[1].upper()]
        except KeyError:
            raise CommandError(f"no VMCS field {args[1]!r} (names as in Linux's asm/vmx.h)") from None
        bp = self.control.breakpoints.add_watch(field)
        self.control.watch_values[bp.number] = self.guest.field(field)
        return [Text(f"watch {bp.number}: {field.name} (now {self.guest.field(field):#x})")]

    def cmd_delete(self, args, line):
        gone = self.control.breakpoints.delete(self._int(args[0], "delete") if args else None)
        return [Text("deleted " + (", ".join(str(b.number) for b in gone) or "nothing"))]

    def cmd_info(self, args, line):
        if not args or args[0] not in ("breakpoints", "b", "watches", "break"):
            raise CommandError("usage: " + BY_NAME["info"].usage)
        t = self.look.table("#", "what", "hits")
        for bp in self.control.breakpoints.items.values():
            t.add_row(str(bp.number), bp.describe(), str(bp.hits))
        return [t] if self.control.breakpoints.items else [Text("no breakpoints or watches")]

    # --- looking ------------------------------------------------------------------------------------
    def cmd_context(self, args, line):
        return [panels.context(self.control, self.control.stop, self._base, self.look, self.width)]

    def cmd_regs(self, args, line):
        return [panels.registers_table(self.guest.registers(), self._base, self.look, self.width)]

    def cmd_vmcs(self, args, line):
        vmcs = self.guest.vmcs
        if vmcs is None:
            raise CommandError("there is no current VMCS")
        fields, show_zero = _FULL_FIELDS, False
        if args:
            a = args[0]
            kind = "exit-info" if a == "exit" else a
            if kind in _KINDS:
                fields, show_zero = [f for f in fields if f.kind == kind], True
            elif a.upper().startswith("B."):
                fields, show_zero = [f for f in fields if f.sdm == a.upper()], True
            else:
                try:
                    fields, show_zero = [vmx.field_info(F[a.upper()])], True
                except KeyError:
                    raise CommandError(f"no VMCS field or group {a!r} ({', '.join(_KINDS)}, B.x.y, a field)") from None
        if not fields:
            raise CommandError(f"no VMCS fields in {args[0]!r}")
        t = self.look.table("field", "enc", "value", "decoded")
        for f in fields:
            value = vmcs.read_enc(f.encoding)
            if value or show_zero:
                t.add_row(f.name, f"{f.encoding:04x}", f"{value:#x}", decode_field(F(f.encoding), value))
        note = []
        if self.guest.live:
            note = [Text("(the guest is running: its state is in the processor, and the guest-state "
                         "area holds what the last VM entry loaded)", style="dim")]
        return [t, *note]

    def cmd_diff(self, args, line):
        states = self.control.exit_states
        if not states:
            raise CommandError("no VM exit yet")
        at_exit = self.control.stop.kind == "exit" and states[-1].seq == self.control.stop.seq
        if at_exit:
            if len(states) < 2:
                raise CommandError("this is the first VM exit: nothing to compare with")
            old, new_vmcs, new_regs = states[-2], states[-1].vmcs, states[-1].registers
            since = f"VM exit {old.seq} -> VM exit {states[-1].seq}"
        else:
            old = states[-1]
            new_vmcs, new_regs = self.guest.vmcs.snapshot()[1], self.guest.registers()
            since = f"VM exit {old.seq} -> now"
        t = self.look.table("", "old", "new")
        for f in _FULL_FIELDS:
            a, b = old.vmcs.get(f.encoding, 0), new_vmcs.get(f.encoding, 0)
            if a != b:
                t.add_row(f.name, f"{a:#x}", f"{b:#x}")
        for name, b in new_regs.items():
            a = old.registers.get(name)
            if a != b:
                t.add_row(name, f"{a:#x}", f"{b:#x}")
        return [Text(f"changed since the previous exit ({since})", style="bold"), t]

    def cmd_disasm(self, args, line):
        rip = self.guest.register("rip")
        n = self._int(args[1], "disasm") if len(args) > 1 else 10
        if args:
            lines = disasm.listing(self.guest, self._address(args[0]), n)
        else:
            lines, _ = disasm.around(self.guest, rip, 3, n - 1)
        t = self.look.table("", "address", "bytes", "instruction", show_header=False)
        for ln in lines:
            t.add_row("=>" if ln.address == rip else "", f"{ln.address:#x}", ln.data.hex(" "), ln.text)
        return [t]

    def cmd_mem(self, args, line):
        phys = bool(args) and args[0] in ("phys", "p", "-p")
        args = args[1:] if phys else args
        if not args:
            raise CommandError("usage: " + BY_NAME["mem"].usage)
        addr = self._address(args[0])
        n = self._int(args[1], "mem") if len(args) > 1 else 64
        out = []
        if phys:
            data = self.guest.read_physical(addr, n)
            out.append(Text(f"guest-physical {addr:#x}" + (f" (host-physical {self.guest.host_physical(addr):#x})"
                                                          if self.guest.ept_on else "")))
        else:
            w = self.guest.walk(addr)
            steps = ", ".join(f"{lv.name} {lv.entry:#x} [{lv.flags}]" for lv in w.levels)
            target = f"guest-physical {w.physical:#x}" if w.physical is not None else w.fault
            out.append(Text(f"guest-linear {addr:#x} -> {target} ({w.mode}{': ' + steps if steps else ''})"))
            data = self.guest.read_linear(addr, n)
        out.append(Text(hexdump(data, addr)))
        return out

    def cmd_ept(self, args, line):
        if len(args) != 2 or args[0] != "walk":
            raise CommandError("usage: " + BY_NAME["ept"].usage)
        gpa = self._address(args[1])
        if not self.guest.ept_on:
            return [Text("EPT is off for this VMCS (secondary control \"enable EPT\" is clear"
                         + ("" if self.guest.field(F.CPU_BASED_VM_EXEC_CONTROL) & ProcBased.ACTIVATE_SECONDARY_CONTROLS
                            else ", and the secondary controls are not activated") + "): guest-physical "
                         f"{gpa:#x} is host-physical {gpa:#x}")]
        walk = self.guest.ept_walk(gpa)
        t = self.look.table("level", "entry address", "entry", "permissions", "", title=f"EPT walk of {gpa:#x} "
                            f"(EPTP {self.guest.field(F.EPT_POINTER):#x})")
        for lv in walk.levels:
            t.add_row(lv.name, f"{lv.entry_address:#x}", f"{lv.entry:#x}", lv.permissions, getattr(lv, "note", ""))
        result = (f"host-physical {walk.hpa:#x}" if walk.hpa is not None else f"fails: {walk.fault}")
        return [t, Text(result)]

    def cmd_why(self, args, line):
        s = self.control.session
        f = s.failure
        if isinstance(f, vmx.VmFail):
            out = [Text(str(f), style="red")]
            err = getattr(f, "error", None)
            if err is not None:
                out.append(Text(f"VM_INSTRUCTION_ERROR = {int(err)} ({err.name})"))
            out.append(Text(f"check: SDM Vol. 3C {f.check.section}, {f.check.instruction}: {f.check.rule}"))
            return out
        if f is not None:
            return [views.exit_view(f, self.look, "VM-entry failure")]
        if s.last_exit is None:
            return [Text("no VM exit and no VM-entry failure yet")]
        ex = s.last_exit
        return [Text("no VMfail or VM-entry failure so far. The last VM exit:"), Text(ex.explain()),
                Text(f"exit reason {int(ex.reason)}: {describe_reason(ex.reason)} (SDM Vol. 3C Appendix C)")]

    def cmd_stats(self, args, line):
        import collections
        s, c = self.control.session, self.control
        exits = s.exit_records
        t = self.look.table("", "", show_header=False)
        t.columns[1].justify = "right"
        for name, k in collections.Counter(r["reason"] or str(r["reason_number"]) for r in exits).most_common():
            t.add_row(f"exits: {name}", f"{k:,}")
        t.add_row("VM exits", f"{len(exits):,}")
        t.add_row("VMfails", f"{sum(1 for r in s.trace.records if r['type'] == 'vmfail'):,}")
        t.add_row("guest instructions retired", f"{c.cpu.icount:,}")
        t.add_row("simulated time (ticks)", f"{c.cpu.time:,}")
        t.add_row("wall time in VMLAUNCH/VMRESUME", f"{s.guest_wall * 1000:,.0f} ms")
        t.add_row("checkpoints", f"{len(c.checkpoints):,}")
        t.add_row("stops", f"{len(c.history):,}")
        return [t]

    def cmd_history(self, args, line):
        n = self._int(args[0], "history") if args else 20
        h = self.control.history
        t = self.look.table("#", "where", "entries", "icount", "guest RIP", "why")
        for i, stop in list(enumerate(h))[-n:]:
            t.add_row(str(i), stop.kind, str(stop.seq), f"{stop.icount:,}", f"{stop.rip:#x}", stop.why)
        return [t]

    def cmd_trace(self, args, line):
        if len(args) != 2 or args[0] != "save":
            raise CommandError("usage: " + BY_NAME["trace"].usage)
        t = self.control.session.trace
        try:
            t.save(args[1])
        except OSError as e:
            raise CommandError(f"trace save: {e}") from None
        return [Text(f"wrote {len(t.records) + 1} records ({len(t.exits)} exits) to {args[1]}")]

    def cmd_help(self, args, line):
        if args:
            cmd = BY_NAME.get(args[0])
            if cmd is None:
                raise CommandError(f"no command {args[0]!r}")
            names = ", ".join((cmd.name,) + cmd.aliases)
            return [Text(f"{cmd.usage}    ({names})", style="bold"), Text(cmd.help)]
        t = self.look.table("command", "aliases", "what it does")
        for c in COMMANDS:
            t.add_row(c.usage, ", ".join(c.aliases), re.split(r"(?<=\.)\s+(?=[A-Z])", c.help)[0])
        return [t]

    def cmd_quit(self, args, line):
        self.control.quit()
        self.done = True
        return [Text("bye")]


def hexdump(data: bytes, address: int) -> str:
    lines = []
    for off in range(0, len(data), 16):
        chunk = data[off:off + 16]
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{address + off:#018x}  {chunk.hex(' '):<47}  {text}")
    return "\n".join(lines)
