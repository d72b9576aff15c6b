"""Every debugger command through the command interface (`Debugger.execute`)."""
import re

import vmx
from hvsim import eptwalk, scenario, trace
from hvsim.debug.debugger import Debugger
from hvsim.session import Session

from conftest import PLAIN, WIDTH


def position(d):
    s = d.control.stop
    return s.kind, s.seq, s.icount, s.rip


def test_step_and_step_n(debugger):
    out = debugger.execute("step")
    assert out.startswith("stepped\nin the guest: 1 VM entries, 1 guest instructions")
    debugger.execute("step 3")
    assert position(debugger)[2] == 4
    # a VM exit on the way stops a step before its count (the exit's handler has not run)
    out = debugger.execute("step 100")
    assert out.startswith("VM exit 1: IO_INSTRUCTION")
    assert position(debugger)[:3] == ("exit", 1, 10)
    assert "step: n must be at least 1" in debugger.execute("step 0")


def test_next_exit_and_continue_to_the_end(debugger):
    debugger.execute("next-exit")
    debugger.execute("next-exit")
    assert position(debugger)[:2] == ("exit", 2)
    out = debugger.execute("continue")
    assert out.startswith("the VMM's run ended (it returned)")
    assert position(debugger)[:2] == ("end", 613)
    assert "the VMM's run has ended" in debugger.execute("continue")


def test_break_exit_with_a_condition(debugger):
    assert debugger.execute("break exit IO_INSTRUCTION if q.port == 0x3f8 and rax & 0xff == 0x0a") == \
        "breakpoint 1: VM exit IO_INSTRUCTION if q.port == 0x3f8 and rax & 0xff == 0x0a\n"
    out = debugger.execute("continue")
    assert out.startswith("VM exit 82: IO_INSTRUCTION; breakpoint 1")
    assert debugger.guest.register("rax") & 0xFF == 0x0A          # the new line of the first message
    assert debugger.control.session.vmm.console_text == "guest: hello from VMX non-root operation"
    assert "no exit reason 'NOPE'" in debugger.execute("break exit NOPE")
    assert "cannot read" in debugger.execute("break exit CPUID if q.port ==")
    assert debugger.execute("break exit 10") == "breakpoint 2: VM exit CPUID\n"


def test_a_condition_that_fails_stops_and_says_why(debugger):
    debugger.execute("break exit * if q.nonsense")
    out = debugger.execute("continue")
    assert "(condition error: AttributeError" in " ".join(out.split())


def test_break_rip_mid_guest_and_at_a_resume_point(debugger):
    debugger.execute("break rip 0x200022")
    out = debugger.execute("continue")
    assert out.startswith("breakpoint 1: guest RIP 0x200022")
    assert position(debugger)[0] == "pause" and debugger.control.cpu.rip == 0x200022
    debugger.execute("delete")
    debugger.execute("break rip 0x200029")            # where the guest resumes after the CPUID exit
    out = debugger.execute("continue")
    assert out.startswith("breakpoint 2: guest RIP 0x200029") and position(debugger)[2] == 466
    assert debugger.execute("break rip rip + 2") == "breakpoint 3: guest RIP 0x20002b\n"


def test_break_entry_failure():
    for name, kind in (("entry-failure", "exit"), ("vmfail", "vmfail")):
        d = Debugger(scenario.load(name), look=PLAIN, width=WIDTH)
        d.start()
        d.execute("break entry-failure")
        out = d.execute("continue")
        assert "breakpoint 1: VM-entry failure" in out and position(d)[0] == kind
        assert "check: SDM Vol. 3C 27." in d.execute("why")
        out = d.execute("continue")
        assert out.startswith("the VMM's run ended")
        d.execute("quit")


def test_watch_delete_and_info(debugger):
    assert debugger.execute("watch vmcs GUEST_CR4") == "watch 1: GUEST_CR4 (now 0x2020)\n"
    debugger.execute("break exit HLT")
    out = debugger.execute("continue")
    assert out.startswith("watch 1: GUEST_CR4 0x2020 -> 0x20a0 (written by the VMM; before VMRESUME)")
    assert re.search(r"1 \| VMCS field GUEST_CR4 changes\s+\| 1", debugger.execute("info breakpoints"))
    assert debugger.execute("delete 1") == "deleted 1\n"
    assert debugger.execute("continue").startswith("VM exit 613: HLT; breakpoint 2")
    assert "no breakpoint or watch 9" in debugger.execute("delete 9")
    assert "no VMCS field 'NOPE'" in debugger.execute("watch vmcs NOPE")
    debugger.execute("delete")
    assert debugger.execute("info breakpoints") == "no breakpoints or watches\n"


def test_regs_vmcs_and_diff(debugger):
    assert "no VM exit yet" in debugger.execute("diff")
    debugger.execute("next-exit")
    assert "first VM exit" in debugger.execute("diff")
    assert re.match(r"rax 0x0000000000006700\*  rcx 0x0{16} ", debugger.execute("regs"))
    everything = debugger.execute("vmcs")
    assert "GUEST_RIP" in everything and "VIRTUAL_PROCESSOR_ID" not in everything   # zeros left out
    assert "HLT_EXITING USE_IO_BITMAPS USE_MSR_BITMAPS" in debugger.execute("vmcs control")
    assert re.search(r"PIN_BASED_VM_EXEC_CONTROL\s+\| 4000 \| 0x16\s+\| default1 0x16", debugger.execute("vmcs B.3.1"))
    assert "30 IO_INSTRUCTION" in debugger.execute("vmcs exit")
    assert "no VMCS field or group" in debugger.execute("vmcs nope")
    debugger.execute("step")
    out = debugger.execute("vmcs host")
    assert "HOST_RIP" in out and "the guest is running" in out
    assert "changed since the previous exit (VM exit 1 -> now)" in debugger.execute("diff")


def test_disasm_and_mem(debugger):
    out = debugger.execute("disasm 0x200000 3")
    assert out.splitlines()[0].split("|")[1:] == [" 0x200000 ", " 48 8d 35 f9 0f 00 00 ", " lea rsi, [0x201000]"]
    assert len(out.splitlines()) == 3
    out = debugger.execute("mem 0x201000 16")
    assert "guest-linear 0x201000 -> guest-physical 0x201000 (4-level paging" in out
    assert "guest: hello fro" in out
    assert "not canonical" in debugger.execute("mem 0x800000000000 8")
    assert "the EPT PDPTE is not present" in debugger.execute("mem phys 0x100000000 8")   # the tour runs under EPT


def test_ept_walk(debugger):
    """The tour turns EPT on (its lazily mapped window at 0x40000000 is not present yet): the
    walk shows each level with its permissions, and the host-physical address or the reason
    there is none (ept.walk, read-only)."""
    out = debugger.execute("ept walk 0x1000")
    assert out.startswith("EPT walk of 0x1000 (EPTP ")
    assert "EPT PDE" in out and "2048 KiB page, memory type 6" in out
    assert out.rstrip().endswith("host-physical 0x1000")
    assert "not present" in debugger.execute("ept walk 0x40000000")
    vmcs = debugger.guest.vmcs
    vmcs.write_enc(vmx.Field.SECONDARY_VM_EXEC_CONTROL, 0)
    assert debugger.execute("ept walk 0x1000").startswith("EPT is off for this VMCS")

    class Walker:
        def __init__(self, machine, eptp):
            self.eptp = eptp

        def walk(self, gpa):
            levels = [eptwalk.EptLevel(n, 0x5000 + 8 * i, 0x6007 + 0x1000 * i, "RWX")
                      for i, n in enumerate(("PML4E", "PDPTE", "PDE", "PTE"))]
            if gpa >= 0x100000:
                return eptwalk.EptWalk(gpa, levels[:3], None, "EPT violation: the PDE is not present")
            return eptwalk.EptWalk(gpa, levels, 0x800000 + (gpa & 0xFFF))
    saved = eptwalk.WALKER_FACTORY
    vmcs.write_enc(vmx.Field.SECONDARY_VM_EXEC_CONTROL, vmx.SecondaryProcBased.ENABLE_EPT)
    vmcs.write_enc(vmx.Field.EPT_POINTER, 0x5000 | 3 << 3 | 6)
    try:
        eptwalk.WALKER_FACTORY = None
        assert "no EPT walker is wired" in debugger.execute("ept walk 0x1000")
        eptwalk.WALKER_FACTORY = Walker
        out = debugger.execute("ept walk 0x1234")
        assert "EPT walk of 0x1234 (EPTP 0x501e)" in out and "PTE   | 0x5018" in out
        assert out.rstrip().endswith("host-physical 0x800234")
        assert debugger.execute("ept walk 0x200000").rstrip().endswith("fails: EPT violation: the PDE is not present")
        assert "(host-physical 0x800010)" in debugger.execute("mem phys 0x10 8")
    finally:
        eptwalk.WALKER_FACTORY = saved


def test_why_without_a_failure(debugger):
    assert debugger.execute("why") == "no VM exit and no VM-entry failure yet\n"
    debugger.execute("break exit CPUID")
    debugger.execute("continue")
    assert debugger.execute("why") == (
        "no VMfail or VM-entry failure so far. The last VM exit:\n"
        "VM exit 10 CPUID at guest RIP 0x20000e: the guest executed CPUID.\n"
        "exit reason 10: the guest executed CPUID (SDM Vol. 3C Appendix C)\n")


def test_stats_and_history(debugger):
    debugger.execute("break exit CPUID")
    debugger.execute("continue")
    out = debugger.execute("stats")
    for row in (r"exits: IO_INSTRUCTION\s+\|\s+82", r"exits: CPUID\s+\|\s+1", r"VM exits\s+\|\s+83",
                r"guest instructions retired\s+\|\s+462", r"stops\s+\|\s+2"):
        assert re.search(row, out), row
    assert len(debugger.execute("history").splitlines()) == 4
    assert len(debugger.execute("history 1").splitlines()) == 3


def test_back_returns_to_the_same_state(debugger):
    debugger.execute("break exit MSR_READ")
    debugger.execute("continue")
    debugger.execute("step 3")                       # stopped by the next exit (I/O) on the way
    debugger.execute("step 3")
    here = (position(debugger), debugger.guest.registers(), debugger.control.session.vmm.console_text)
    for _ in range(5):
        debugger.execute("step 7")
    debugger.execute(f"back {position(debugger)[2] - here[0][2]}")
    assert (position(debugger)[1:], debugger.guest.registers(), debugger.control.session.vmm.console_text) == \
        (here[0][1:], here[1], here[2])
    debugger.execute("back exit")
    assert position(debugger)[:3] == ("exit", 193, 1074)
    assert debugger.control.session.last_exit.reason == vmx.ExitReason.MSR_READ
    debugger.execute("back exit")
    assert position(debugger)[:2] == ("exit", 192)
    debugger.execute("back 100000")                   # before the start: the first VMLAUNCH
    assert position(debugger)[:3] == ("entry", 0, 0)
    assert "no earlier VM exit" in debugger.execute("back exit")


def test_back_then_forward_gives_the_trace_of_a_plain_run(debugger, tmp_path):
    fresh = Session(scenario.load("tour"))
    fresh.run()
    debugger.execute("break exit CR_ACCESS")
    debugger.execute("continue")
    debugger.execute("back 1000")
    debugger.execute("back exit")
    debugger.execute("delete")
    assert debugger.execute("continue").startswith("the VMM's run ended")
    path = tmp_path / "t.jsonl"
    out = " ".join(debugger.execute(f"trace save {path}").split())
    assert out == f"wrote {len(fresh.trace.records) + 1} records (613 exits) to {path}"
    assert trace.diff(trace.load(path), fresh.trace) is None
    assert "trace save:" in debugger.execute(f"trace save {tmp_path}/no/such/dir/t.jsonl")


def test_help_unknown_and_quit(debugger):
    assert "next-exit" in debugger.execute("help")
    assert debugger.execute("help s").startswith("step [n]    (step, s, si, stepi)")
    assert "no command 'zap'" in debugger.execute("help zap")
    assert "unknown command 'zap'" in debugger.execute("zap")
    assert debugger.execute("") == "\n"
    assert debugger.execute("q") == "bye\n"
    assert "has quit" in debugger.execute("regs")
    assert not debugger.control._thread.is_alive()


def test_completions(debugger):
    assert {"step", "s", "next-exit", "break", "quit"} <= set(debugger.completions([]))
    assert debugger.completions(["break"]) == ["exit", "rip", "entry-failure"]
    assert "IO_INSTRUCTION" in debugger.completions(["break", "exit"])
    assert "GUEST_CR4" in debugger.completions(["watch", "vmcs"])
    assert {"guest", "GUEST_RIP"} <= set(debugger.completions(["vmcs"]))
    assert debugger.completions(["back"]) == ["exit"]
    assert debugger.completions(["nothing"]) == []


def test_context_again(debugger):
    assert debugger.execute("context").startswith("before the first VMLAUNCH")


def test_the_command_line_front_for_logs(tmp_path):
    """`hvsim debug --plain`, commands on standard input and from a file (-x): no colour, no
    escape sequences, each command echoed after the prompt."""
    import subprocess
    import sys
    cmds = tmp_path / "cmds"
    cmds.write_text("break exit HLT\n")
    r = subprocess.run([sys.executable, "-m", "hvsim.cli", "debug", "tour", "--plain", "-x", str(cmds)],
                       input="continue\nstats\n", capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "\x1b[" not in r.stdout
    assert "(hvsim) break exit HLT\nbreakpoint 1: VM exit HLT" in r.stdout
    assert "(hvsim) continue\nVM exit 613: HLT; breakpoint 1: VM exit HLT" in r.stdout
    assert r.stdout.rstrip().endswith("bye")
    r = subprocess.run([sys.executable, "-m", "hvsim.cli", "debug", "bare-metal", "--plain"],
                       input="", capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "no VMM to observe" in r.stdout
