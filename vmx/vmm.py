"""`vmx.Vmm`: a small base class for VMMs written in Python (API.md).

Subclass it and define `on_<reason>` methods named after `vmx.ExitReason` in lower case
(`on_cpuid`, `on_io_instruction`, `on_ept_violation`, ...). Each receives the `VmExit`. Return
`Vmm.NEXT` to advance the guest's RIP past the exiting instruction, `Vmm.STOP` to end `run()`,
or nothing to resume the guest where it is. An exit without a handler goes to `on_exit`, which
raises `UnhandledExit` by default so that a VMM never silently ignores an exit.
"""
from __future__ import annotations

from vmx.fields import Field as F


class UnhandledExit(Exception):
    def __init__(self, vm_exit):
        self.exit = vm_exit
        super().__init__(f"no handler for {vm_exit.explain()}")


class Vmm:
    NEXT = "next"
    STOP = "stop"
    RESUME = None

    def __init__(self, machine):
        self.machine = machine
        self.cpu = machine.cpu
        self.exits = 0
        self.last_exit = None

    def on_exit(self, vm_exit):
        raise UnhandledExit(vm_exit)

    def skip(self, vm_exit) -> None:
        """Advance guest RIP by the VM-exit instruction length (28.2.4)."""
        self.cpu.vmwrite(F.GUEST_RIP, self.cpu.vmread(F.GUEST_RIP) + vm_exit.instruction_length)

    def run(self, launch: bool = True, max_exits: int | None = None):
        """Enter the guest (VMLAUNCH, or VMRESUME when `launch` is false) and handle exits until
        a handler returns STOP or `max_exits` exits were handled; returns the last exit."""
        vm_exit = self.cpu.vmlaunch() if launch else self.cpu.vmresume()
        while True:
            self.exits += 1
            self.last_exit = vm_exit
            handler = getattr(self, f"on_{vm_exit.reason.name.lower()}", self.on_exit)
            verdict = handler(vm_exit)
            if verdict == self.STOP or (max_exits is not None and self.exits >= max_exits):
                return vm_exit
            if verdict == self.NEXT:
                self.skip(vm_exit)
            vm_exit = self.cpu.vmresume()
