"""A scenario's VMM run under observation: what `hvsim demo`, `hvsim debug` and exit traces see.

The session builds the scenario and wraps the VMM's way into the guest: the processor's
VMLAUNCH and VMRESUME (an instance attribute of the Cpu, nothing in vmx changes). Each VM
entry is seen before it happens and its outcome (a VM exit, or a VMfail raised) after, as an
exit-trace record (hvsim.trace). The VMM itself is the scenario's, unchanged: `vmx.Vmm.run`
dispatches as usual.
"""
from __future__ import annotations

import time

import attrs

import vmx
from hvsim import trace
from hvsim.guest import GuestView
from hvsim.scenario import Scenario, ScenarioError


class Observer:
    """What a session reports; override what you need."""

    def entering(self, session: "Session", launch: bool) -> None:
        """Before VMLAUNCH (`launch`) or VMRESUME."""

    def exited(self, session: "Session", vm_exit, record: dict) -> None:
        """After a VM exit (including a VM-entry failure reported as one)."""

    def failed(self, session: "Session", error, record: dict) -> None:
        """After VMLAUNCH/VMRESUME failed with VMfailInvalid or VMfailValid (it is re-raised)."""


@attrs.frozen
class Outcome:
    """How the VMM's run ended: it returned (error None) or raised."""
    error: BaseException | None


class Session:
    def __init__(self, scenario: Scenario, observer: Observer | None = None, built=None):
        """`built`: the scenario's (machine, vmm) if already built, else it is built here."""
        self.scenario = scenario
        self.machine, self.vmm = built or scenario.build()
        if self.vmm is None or not hasattr(self.machine, "profile"):
            raise ScenarioError(f"scenario {scenario.name!r} has no VMM to observe (a bare-metal guest)")
        self.cpu = self.machine.cpu
        self.guest = GuestView(self.machine)
        self.observer = observer or Observer()
        self.trace = trace.Trace(trace.header(scenario.name, self.machine.profile.name))
        self.entries = 0               # VM entries attempted (each gives one trace record)
        self.last_exit = None          # the last vmx.VmExit
        self.failure = None            # the last VmFail or entry-failure VmExit
        self.outcome: Outcome | None = None
        self.guest_wall = 0.0          # wall time spent inside VMLAUNCH/VMRESUME
        cls = type(self.cpu)
        self.cpu.vmlaunch = lambda: self._enter(cls.vmlaunch, True)
        self.cpu.vmresume = lambda: self._enter(cls.vmresume, False)

    # --- the observed entry ------------------------------------------------------------------
    def _enter(self, real, launch: bool):
        self.observer.entering(self, launch)
        self.entries += 1
        start = time.perf_counter()
        try:
            vm_exit = real(self.cpu)
        except vmx.VmFail as e:
            self.guest_wall += time.perf_counter() - start
            rec = trace.vmfail_record(self.entries, self.cpu.icount, "VMLAUNCH" if launch else "VMRESUME", e)
            self.trace.records.append(rec)
            self.failure = e
            self.observer.failed(self, e, rec)
            raise
        self.guest_wall += time.perf_counter() - start
        regs = {name: self.guest.register(name) for name in trace.REGISTERS}
        rec = trace.exit_record(self.entries, self.cpu.icount, vm_exit, regs)
        self.trace.records.append(rec)
        self.last_exit = vm_exit
        if vm_exit.entry_failure:
            self.failure = vm_exit
        self.observer.exited(self, vm_exit, rec)
        return vm_exit

    def run(self, launch: bool = True) -> Outcome:
        """Run the VMM (the scenario's `run`) until it returns or raises an Exception."""
        try:
            self.scenario.runner(self.vmm, launch)
            error = None
        except Exception as e:          # the VMM's own failure is an outcome, not ours
            error = e
        self.trace.records.append(trace.end_record(self.entries, self.cpu.icount, error))
        self.outcome = Outcome(error)
        return self.outcome

    # --- for checkpoints -------------------------------------------------------------------------
    def state(self) -> tuple:
        return (self.entries, len(self.trace.records), self.last_exit, self.failure, self.outcome)

    def set_state(self, state: tuple) -> None:
        self.entries, n, self.last_exit, self.failure, self.outcome = state
        del self.trace.records[n:]

    @property
    def exit_records(self) -> list[dict]:
        return self.trace.exits
