"""Machine.snapshot()/restore(): a restored machine continues exactly as the original did.

Checked the way the debugger relies on it: by exit traces. Run a scenario, snapshot at a VM
exit, run to the end; restore, run again: the two traces are identical, record for record."""
import copy

import pytest

import vmx
import x86
from vmx import Field as F
from x86.asm import assemble

from hvsim import scenario
from hvsim.session import Observer, Session


class SnapshotAt(Observer):
    """Before the VM entry that follows exit k: the machine and a copy of the VMM's state."""

    def __init__(self, k):
        self.k, self.taken = k, None

    def entering(self, session, launch):
        if session.entries == self.k and self.taken is None:
            shared = {id(o): o for o in (session.machine, session.cpu, session.vmm)}
            self.taken = (session.machine.snapshot(), copy.deepcopy(vars(session.vmm), shared),
                          session.state(), launch)


@pytest.mark.parametrize("name,k", [("tour", 0), ("tour", 1), ("tour", 84), ("tour", 370), ("tour", 612),
                                    ("entry-failure", 0)])
def test_a_restored_machine_continues_exactly_as_the_original(name, k):
    obs = SnapshotAt(k)
    s = Session(scenario.load(name), obs)
    s.run()
    first, console = list(s.trace.records), getattr(s.vmm, "console_text", "")
    snap, vmm_state, session_state, launch = obs.taken
    s.machine.restore(snap)
    vars(s.vmm).clear()
    vars(s.vmm).update(vmm_state)
    s.set_state(session_state)
    s.run(launch)
    assert s.trace.records == first
    assert getattr(s.vmm, "console_text", "") == console


def test_a_second_fresh_run_gives_the_same_trace():
    a, b = Session(scenario.load("tour")), Session(scenario.load("tour"))
    a.run()
    b.run()
    assert a.trace.dumps() == b.trace.dumps()


def test_pages_written_after_a_snapshot_are_restored_or_zeroed():
    m = x86.Machine(memory_size=16 << 20)
    m.memory.write(0x300000, b"before")
    snap = m.snapshot()
    touched = m.memory.touched_pages()
    m.memory.write(0x300000, b"after!")
    m.memory.write(0x500000, b"new page")
    m.restore(snap)
    assert m.memory.read(0x300000, 6) == b"before"
    assert m.memory.read(0x500000, 8) == bytes(8)
    assert m.memory.touched_pages() == touched


def test_processor_time_devices_and_code_continue_exactly():
    """The bare-metal scenario: its own IDT, a page fault, the APIC timer waking HLT, console
    output, code it writes. Snapshot part-way (in the middle of its work), finish; restore,
    finish again: same console output, same instruction count, same time."""
    m, _ = scenario.load("bare-metal").build()
    m.cpu.run(max_instructions=700)          # past the #PF, before the timer fires
    snap = m.snapshot()
    stop = m.cpu.run()
    first = (stop, m.console.text, m.cpu.icount, m.cpu.time, m.cpu.rax, m.cpu.rflags)
    m.restore(snap)
    assert m.cpu.icount == 700
    stop = m.cpu.run()
    assert (stop, m.console.text, m.cpu.icount, m.cpu.time, m.cpu.rax, m.cpu.rflags) == first


def test_vmcs_contents_and_launch_state_are_restored():
    m, _ = scenario.load("tour").build()
    cpu = m.cpu
    snap = m.snapshot()                      # before VMLAUNCH: the VMCS is clear
    cpu.vmwrite(F.GUEST_RIP, 0x1234)
    assert cpu.vmlaunch().reason != vmx.ExitReason.INVALID_STATE
    m.restore(snap)
    assert cpu.vmread(F.GUEST_RIP) == 0x200000
    with pytest.raises(vmx.VmFailValid):     # VMRESUME of a clear VMCS: the launch state came back
        cpu.vmresume()
    assert cpu.vmlaunch().reason == vmx.ExitReason.IO_INSTRUCTION


def test_restore_refuses_what_it_cannot_do():
    m, _ = scenario.load("tour").build()
    other = x86.Machine(memory_size=16 << 20)
    with pytest.raises(ValueError, match="machine that took it"):
        m.restore(other.snapshot())

    class Monitor:                           # snapshot while the guest runs (VMX non-root)
        def budget(self, cpu):
            return 3

        def pause(self, cpu):
            self.snap = m.snapshot()
            cpu.vmx.monitor = None
    mon = m.cpu.vmx.monitor = Monitor()
    m.cpu.vmlaunch()
    with pytest.raises(ValueError, match="non-root"):
        m.restore(mon.snap)


def test_code_written_after_a_snapshot_is_decoded_again():
    """Restore flushes decoded blocks: code that was overwritten runs as it was."""
    m = x86.Machine(memory_size=16 << 20)
    code = assemble("mov eax, 1\nout 0xf4, eax", address=0x100000)
    m.load(code, address=0x100000)
    snap = m.snapshot()
    assert m.cpu.run().status == 1
    m.memory.write(0x100000, assemble("mov eax, 2", address=0x100000))
    m.cpu.rip = 0x100000
    assert m.cpu.run().status == 2
    m.restore(snap)
    assert m.cpu.run().status == 1
