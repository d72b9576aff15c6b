"""`hvsim demo`: a bundled scenario run and rendered with rich.

While the guest runs, the exit trace streams: one line per VM exit (reason, decoded
qualification, guest RIP). Consecutive I/O exits are folded into one line with the console
output they produced (`--all` shows each). Then the guest's console output, anything that
failed with its SDM check, and a summary: exits per reason, instructions retired, the share of
guest instructions that ran without the VMM, simulated and wall time.
"""
from __future__ import annotations

import collections
import time

import attrs
from rich.console import Group
from rich.table import Table
from rich.text import Text

import vmx
from vmx import ExitReason as R

from hvsim import scenario as scenarios, views
from hvsim.session import Observer, Session


@attrs.define
class _Fold:
    """A run of I/O exits shown as one line."""
    first: dict
    last: dict
    ports: collections.Counter
    console_at: int


class Streamer(Observer):
    """Prints the exit trace as it happens."""

    def __init__(self, console, look: views.Look, fold: bool = True):
        self.console, self.look, self.fold = console, look, fold
        self.group: _Fold | None = None

    def _console_len(self, session) -> int:
        return len(getattr(session.vmm, "console_text", ""))

    def exited(self, session, vm_exit, record):
        if self.fold and vm_exit.reason == R.IO_INSTRUCTION and not vm_exit.entry_failure:
            q = vm_exit.qualification
            key = f"{'IN' if q.direction else 'OUT'} {q.port:#x}"
            if self.group is None:
                self.group = _Fold(record, record, collections.Counter(), self._console_len(session))
            self.group.last = record
            self.group.ports[key] += 1
            return
        self.flush(session)
        self.console.print(views.exit_line(record, vm_exit, self.look))

    def failed(self, session, error, record):
        self.flush(session)
        row = views.exit_row(self.look)
        row.add_row(str(record["seq"]), f"{record['icount']:,}",
                    Text(f"{record['instruction']} fail", style="bold red"),
                    f"{record['outcome']}, VM-instruction error {record['error']} ({record['error_name']})"
                    if record["error"] is not None else record["outcome"], "")
        self.console.print(row)

    def flush(self, session) -> None:
        g, self.group = self.group, None
        if g is None:
            return
        n = sum(g.ports.values())
        detail = f"{n} exits to #{g.last['seq']}: " + ", ".join(f"{k} x{c}" for k, c in g.ports.items())
        row = views.exit_row(self.look)
        row.add_row(str(g.first["seq"]), f"{g.first['icount']:,}", Text("IO_INSTRUCTION", style="bold cyan"),
                    detail, g.first["guest_rip"])
        self.console.print(row)
        out = getattr(session.vmm, "console_text", "")[g.console_at:]
        if out:
            line = Text(" " * 17 + "console ", style="dim")
            line.append(repr(out), style="green")
            self.console.print(line, overflow="fold")


def _summary(session, wall: float, look: views.Look) -> Table:
    exits = [r for r in session.trace.records if r["type"] == "exit"]
    by_reason = collections.Counter(r["reason"] or str(r["reason_number"]) for r in exits)
    t = look.table("", "", show_header=False)
    t.columns[0].no_wrap = True
    t.columns[1].justify = "right"
    for name, n in by_reason.most_common():
        t.add_row(f"exits: {name}", f"{n:,}  ({100 * n / len(exits):.1f}%)")
    t.add_row("exits", f"{len(exits):,}")
    retired = session.cpu.icount
    emulated = sum(1 for r in exits if r["instruction_length"])
    t.add_row("guest instructions retired", f"{retired:,}")
    t.add_row("instruction exits (emulated by the VMM)", f"{emulated:,}")
    if retired + emulated:
        t.add_row("ran without VMM intervention", f"{100 * retired / (retired + emulated):.1f}%")
    t.add_row("simulated time (ticks: instructions + halted)", f"{session.cpu.time:,}")
    t.add_row("wall time", f"{wall * 1000:,.0f} ms")
    t.add_row("  in VMLAUNCH/VMRESUME (guest, entry, exit)", f"{session.guest_wall * 1000:,.0f} ms")
    t.add_row("  in the VMM and the front", f"{(wall - session.guest_wall) * 1000:,.0f} ms")
    return t


def _failure(session, look: views.Look):
    f = session.failure
    if isinstance(f, vmx.VmFail):
        return Group(look.rule("VMfail"), Text(str(f), style="red"),
                           Text(f"check: SDM Vol. 3C {f.check.section}: {f.check.rule}"))
    if f is not None:
        return views.exit_view(f, look, "VM-entry failure")
    return None


def _bare_metal(machine, console, look: views.Look) -> int:
    t = time.perf_counter()
    stop = machine.cpu.run()
    wall = time.perf_counter() - t
    console.print(look.rule("guest console"))
    console.print(machine.console.text, end="", markup=False, highlight=False)
    table = look.table("summary", "")
    table.add_row("stop", f"{stop.reason} (status {stop.status})")
    table.add_row("instructions retired", f"{stop.instructions:,}")
    table.add_row("simulated time (ticks)", f"{machine.cpu.time:,}")
    table.add_row("wall time", f"{wall * 1000:.1f} ms")
    console.print(table)
    return 0 if stop.reason == "exit" and stop.status == 0 else 1


def main(args) -> int:
    look = views.Look(plain=args.plain)
    console = look.console()
    look = look.for_console(console)
    if args.list:
        t = look.table("scenario", "what it shows")
        for s in scenarios.bundled():
            t.add_row(s.name, s.description)
        console.print(t)
        return 0
    try:
        scenario = scenarios.load(args.scenario)
    except scenarios.ScenarioError as e:
        console.print(Text(str(e), style="red"))
        return 2
    console.print(Text(f"hvsim demo {scenario.name}: {scenario.description}", style="bold"))
    machine, vmm = scenario.build()
    if vmm is None:
        return _bare_metal(machine, console, look)
    streamer = Streamer(console, look, fold=not args.all)
    session = Session(scenario, streamer, built=(machine, vmm))
    console.print(look.rule("VM exits (#, instructions retired, reason, what happened, guest RIP)"))
    t = time.perf_counter()
    outcome = session.run()
    wall = time.perf_counter() - t
    streamer.flush(session)
    text = getattr(vmm, "console_text", "") + machine.console.text
    console.print(look.rule("guest console"))
    console.print(text or "(no output)", end="" if text.endswith("\n") else "\n", markup=False, highlight=False)
    failure = _failure(session, look)
    if failure is not None:
        console.print(failure)
    if outcome.error is not None and not isinstance(outcome.error, vmx.VmFail):
        console.print(Text(f"the VMM raised {type(outcome.error).__name__}: {outcome.error}", style="red"))
    console.print(look.rule("summary"))
    console.print(_summary(session, wall, look))
    if args.trace:
        session.trace.save(args.trace)
        console.print(f"exit trace written to {args.trace} ({len(session.trace.records)} records)")
    return 0 if outcome.error is None or isinstance(outcome.error, vmx.VmFail) else 1

