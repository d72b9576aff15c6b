"""Running a scenario under the debugger's control.

The VMM runs in a thread of its own (the "guest thread"); the debugger's thread waits while it
runs, and the guest thread waits while the debugger inspects: only one runs at a time, so
runs are exactly as deterministic as without a debugger. The guest thread stops

  - before a VM entry (the VMM's handler is done; a watch saw the VMM write a field),
  - after a VM exit or a VMfail, before the VMM's handler sees it,
  - between two guest instructions, through the processor's guest monitor
    (`cpu.vmx.monitor`: `budget(cpu)` instructions may run, then `pause(cpu)`),
  - when the VMM's run ends.

Reverse execution: before some VM entries (every few thousand instructions or few dozen exits)
the controller takes a checkpoint: a machine snapshot (`Machine.snapshot()`), a deep copy of
the VMM's attributes and the session's state. `back` restores the latest checkpoint before the
target and re-executes to it, the VMM re-entered with `run(vmm, launch=False)`. Re-execution
ignores breakpoints; it is deterministic, so it arrives where the first run went.
"""
from __future__ import annotations

import bisect
import copy
import threading

import attrs

from hvsim.debug.breakpoints import Breakpoints, namespace
from hvsim.session import Observer, Outcome, Session


class _Rewind(BaseException):
    """Unwinds the guest thread to restore a checkpoint (BaseException: no VMM catches it)."""

    def __init__(self, checkpoint, order):
        self.checkpoint, self.order = checkpoint, order


class _Quit(BaseException):
    pass


@attrs.frozen
class Order:
    """What the guest thread does until it stops again."""
    kind: str                            # "continue", "step", "next-exit", "replay"
    until_icount: int | None = None      # step / replay: stop when this many have retired
    until_seq: int | None = None         # replay: stop at the outcome of VM entry number seq


@attrs.frozen
class Stop:
    """Where the guest thread stopped, and why."""
    kind: str                 # "entry", "exit", "vmfail", "pause", "end"
    seq: int                  # VM entries so far (exit records in the trace)
    icount: int               # guest instructions retired
    rip: int                  # guest RIP
    why: str
    exit: object = None       # the vmx.VmExit of an "exit" stop
    error: object = None      # the VmFail of a "vmfail" stop, the VMM's exception at "end"

    @property
    def position(self) -> tuple[int, int]:
        return self.seq, self.icount


@attrs.frozen(eq=False)
class Checkpoint:
    seq: int
    icount: int
    launch: bool
    snapshot: object = attrs.field(repr=False)
    vmm_state: dict = attrs.field(repr=False)
    session_state: tuple = attrs.field(repr=False)
    exit_states: tuple = attrs.field(repr=False)


@attrs.frozen
class ExitState:
    """The VMCS and the guest's registers at a VM exit (for `diff`)."""
    seq: int
    vmcs: dict
    registers: dict


class Controller(Observer):
    CHUNK = 100_000            # instructions between checks for an interrupt (Ctrl-C)

    def __init__(self, scenario, checkpoint_instructions: int = 2000, checkpoint_exits: int = 16):
        self.session = Session(scenario, observer=self)
        self.machine, self.cpu, self.vmm = self.session.machine, self.session.cpu, self.session.vmm
        self.guest = self.session.guest
        self.cpu.vmx.monitor = self
        self.breakpoints = Breakpoints()
        self.watch_values: dict[int, int] = {}
        self.order = Order("continue")
        self.checkpoints: list[Checkpoint] = []
        self.checkpoint_instructions, self.checkpoint_exits = checkpoint_instructions, checkpoint_exits
        self.history: list[Stop] = []
        self.stop: Stop | None = None
        self.exit_states: list[ExitState] = []     # the last two
        self.interrupt = False
        self._resumed: tuple | None = None
        self._fresh_entry = False
        self._cv = threading.Condition()
        self._guest_turn = False
        self._command = None
        self._thread = threading.Thread(target=self._main, name="hvsim-guest", daemon=True)

    # === the debugger's side =================================================================
    def start(self) -> Stop:
        """Run the scenario up to its first VM entry."""
        with self._cv:
            self._guest_turn = True
            self._thread.start()
            self._wait()
        return self.stop

    def resume(self, order: Order) -> Stop:
        return self._send(("run", order))

    def quit(self) -> None:
        if self._thread.is_alive():
            with self._cv:
                self._command, self._guest_turn = ("quit",), True
                self._cv.notify_all()
            self._thread.join(timeout=10)

    def back_to_icount(self, target: int) -> Stop:
        """Re-execute to the first moment `target` guest instructions have retired (or to the
        first checkpoint, if the target is before it)."""
        target = max(0, target)
        before = [c for c in self.checkpoints if c.icount < target]
        ck = before[-1] if before else self.checkpoints[0]
        return self._send(("rewind", ck, Order("replay", until_icount=target)))

    def back_to_seq(self, seq: int) -> Stop:
        """Re-execute to the outcome (exit or VMfail) of VM entry number `seq`."""
        before = [c for c in self.checkpoints if c.seq < seq]
        ck = before[-1] if before else self.checkpoints[0]
        return self._send(("rewind", ck, Order("replay", until_seq=seq)))

    def _send(self, command) -> Stop:
        with self._cv:
            self._command, self._guest_turn = command, True
            self._cv.notify_all()
            self._wait()
        return self.stop

    def _wait(self) -> None:
        while self._guest_turn:
            if not self._thread.is_alive():
                raise RuntimeError("the guest thread ended without stopping")
            try:
                self._cv.wait(0.05)
            except KeyboardInterrupt:
                self.interrupt = True          # the guest thread stops at its next pause

    # === the guest thread's side ===============================================================
    def _main(self) -> None:
        launch = True
        while True:
            try:
                if self.session.outcome is None:
                    self.session.run(launch)
                while True:
                    out = self.session.outcome
                    self._stop("end", "the VMM's run ended" + (
                        f": {type(out.error).__name__}: {out.error}" if out.error else " (it returned)"),
                        error=out.error)
            except _Rewind as r:
                try:
                    launch = self._restore(r.checkpoint)
                except Exception as e:      # a fault of the front itself: report it as the end
                    self.session.outcome = Outcome(e)
                self.order, self._resumed = r.order, None
            except _Quit:
                return
            except BaseException as e:      # a fault of the front itself: report it as the end
                self.session.outcome = Outcome(e)

    def _stop(self, kind: str, why: str, exit=None, error=None) -> None:
        """Hand over to the debugger until it orders the guest on."""
        try:
            rip = self.guest.register("rip")
        except Exception:               # no current VMCS (a VMM that cleared it): no guest RIP
            rip = 0
        stop = Stop(kind, self.session.entries, self.cpu.icount, rip, why, exit, error)
        with self._cv:
            self.stop = stop
            self.history.append(stop)
            self._guest_turn = False
            self._cv.notify_all()
            while not self._guest_turn:
                self._cv.wait()
            command = self._command
        if command[0] == "quit":
            raise _Quit()
        if command[0] == "rewind":
            raise _Rewind(command[1], command[2])
        self.order, self._resumed, self.interrupt = command[1], stop.position, False

    # --- checkpoints ---------------------------------------------------------------------------
    def _shared(self) -> dict:
        """Objects a VMM's attributes may point to that belong to the machine: a deep copy of
        the VMM keeps them as they are (the machine snapshot restores their state)."""
        m = self.machine
        objs = [m, self.cpu, m.memory, self.cpu.vmx, self.vmm, self.session, self, *m.devices(),
                *vars(m).values()]
        return {id(o): o for o in objs}

    def _maybe_checkpoint(self, launch: bool) -> None:
        seq, icount = self.session.entries, self.cpu.icount
        i = bisect.bisect_right([c.seq for c in self.checkpoints], seq)
        last = self.checkpoints[i - 1] if i else None
        if last is not None and (last.seq == seq or (icount - last.icount < self.checkpoint_instructions
                                                     and seq - last.seq < self.checkpoint_exits)):
            return
        ck = Checkpoint(seq, icount, launch, self.machine.snapshot(),
                        copy.deepcopy(vars(self.vmm), self._shared()), self.session.state(),
                        tuple(self.exit_states))
        self.checkpoints.insert(i, ck)

    def _restore(self, ck: Checkpoint) -> bool:
        self.machine.restore(ck.snapshot)
        state = copy.deepcopy(ck.vmm_state, self._shared())
        vars(self.vmm).clear()
        vars(self.vmm).update(state)
        self.session.set_state(ck.session_state)
        self.exit_states = list(ck.exit_states)
        self._watch_changes()                  # the restored values are the new baseline
        return ck.launch

    # --- watches ------------------------------------------------------------------------------
    def _watch_changes(self) -> list[str]:
        out = []
        for bp in self.breakpoints.of("watch"):
            value = self.guest.field(bp.field)
            old = self.watch_values.get(bp.number)
            self.watch_values[bp.number] = value
            if old is not None and old != value:
                bp.hits += 1
                out.append(f"watch {bp.number}: {bp.field.name} {old:#x} -> {value:#x}")
        return out

    # --- the session's reports (Observer) ---------------------------------------------------------
    def entering(self, session, launch: bool) -> None:
        self._maybe_checkpoint(launch)
        self._fresh_entry = True
        name = "VMLAUNCH" if launch else "VMRESUME"
        if not self.history:
            self._watch_changes()
            return self._stop("entry", f"before the first {name}")
        o = self.order
        if o.kind == "replay":
            self._watch_changes()
            if o.until_icount is not None and self.cpu.icount >= o.until_icount:
                self._stop("entry", f"back at {self.cpu.icount:,} instructions (before {name})")
            return
        changes = self._watch_changes()
        if changes:
            self._stop("entry", "; ".join(changes) + f" (written by the VMM; before {name})")

    def exited(self, session, vm_exit, record) -> None:
        self.exit_states = self.exit_states[-1:] + [
            ExitState(record["seq"], self.guest.vmcs.snapshot()[1], self.guest.registers())]
        o = self.order
        changes = self._watch_changes()
        where = f"VM exit {record['seq']}: {vm_exit.reason.name if hasattr(vm_exit.reason, 'name') else vm_exit.reason}"
        if o.kind == "replay":
            if o.until_seq is not None and session.entries >= o.until_seq:
                self._stop("exit", f"back at {where}", exit=vm_exit)
            return
        why = []
        if o.kind in ("next-exit", "step"):
            why.append(where)
        ns = namespace(self.guest, vm_exit, icount=self.cpu.icount, seq=record["seq"])
        for bp, error in self.breakpoints.exit_hits(vm_exit, ns):
            why.append(f"breakpoint {bp.number}: {bp.describe()}" + (f" (condition error: {error})" if error else ""))
        why += changes
        if why:
            if where not in why[0]:
                why.insert(0, where)
            self._stop("exit", "; ".join(why), exit=vm_exit)

    def failed(self, session, error, record) -> None:
        o = self.order
        where = f"{record['instruction']} failed: {record['outcome']}"
        if o.kind == "replay":
            if o.until_seq is not None and session.entries >= o.until_seq:
                self._stop("vmfail", f"back at {where}", error=error)
            return
        why = [where] if o.kind in ("next-exit", "step") else []
        ns = namespace(self.guest, None, icount=self.cpu.icount, seq=record["seq"])
        why += [f"breakpoint {bp.number}: {bp.describe()}" for bp, _ in self.breakpoints.failure_hits(ns)]
        if why:
            if where not in why[0]:
                why.insert(0, where)
            self._stop("vmfail", "; ".join(why), error=error)

    # --- the guest monitor (cpu.vmx.monitor) ----------------------------------------------------
    def budget(self, cpu) -> int | None:
        o, icount = self.order, cpu.icount
        fresh, self._fresh_entry = self._fresh_entry, False
        if o.kind == "replay":
            return max(0, o.until_icount - icount) if o.until_icount is not None else None
        n = self.CHUNK
        if o.kind == "step":
            n = min(n, max(0, o.until_icount - icount))
        if self.breakpoints.rips:
            n = min(n, 0 if fresh else 1)      # at the entry itself too: the guest's first RIP
        return n

    def pause(self, cpu) -> None:
        o, icount = self.order, cpu.icount
        if o.kind == "replay":
            if o.until_icount is not None and icount >= o.until_icount:
                self._stop("pause", f"back at {icount:,} instructions")
            return
        why = []
        if o.kind == "step" and icount >= o.until_icount:
            why.append("stepped")
        if (self.session.entries, icount) != self._resumed and cpu.rip in self.breakpoints.rips:
            ns = namespace(self.guest, self.session.last_exit, icount=icount, seq=self.session.entries)
            why += [f"breakpoint {bp.number}: {bp.describe()}" + (f" (condition error: {e})" if e else "")
                    for bp, e in self.breakpoints.rip_hits(cpu.rip, ns)]
        if self.interrupt:
            why.append("interrupted")
        if why:
            self._stop("pause", "; ".join(why))
