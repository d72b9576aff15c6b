"""The debugger's panels rendered to text at a fixed width (100 columns, plain), compared with
the expected output in tests/hvsim/expected. Runs are deterministic, so the text is too."""
from hvsim import scenario, views
from hvsim.debug import panels
from hvsim.debug.debugger import Debugger

from conftest import PLAIN, WIDTH, expect


def test_context_before_the_first_entry(tour):
    d = Debugger(tour, look=PLAIN, width=WIDTH)
    expect("context_start", d.start())
    d.execute("quit")


def test_context_at_an_exit_with_changed_registers_and_a_watch(debugger):
    debugger.execute("watch vmcs CR4_READ_SHADOW")
    debugger.execute("break exit CR_ACCESS")
    debugger.execute("continue")                    # stops at the CR access exit
    expect("context_cr_access", debugger.execute("next-exit"))   # the VMM wrote the shadow


def test_context_in_the_guest(debugger):
    debugger.execute("break exit CPUID")
    debugger.execute("continue")
    expect("context_stepped", debugger.execute("step 2"))


def test_registers_panel_at_narrower_widths(debugger):
    debugger.execute("step 5")
    regs = debugger.guest.registers()
    prev = dict(regs, rax=regs["rax"] + 1, rip=0)
    for width in (100, 80, 60):
        expect(f"registers_{width}", PLAIN.text([panels.registers_table(regs, prev, PLAIN, width)], width))


def test_exit_panel_field_by_field(debugger):
    debugger.execute("break exit IO_INSTRUCTION")
    debugger.execute("continue")
    expect("exit_io", PLAIN.text([views.exit_view(debugger.control.session.last_exit, PLAIN, "exit")], WIDTH))


def test_colour_look_marks_changes_with_style_not_asterisks(debugger):
    look = views.Look(plain=False)
    regs = debugger.guest.registers()
    text = look.text([panels.registers_table(regs, dict(regs, rax=1), look)], WIDTH)
    assert "*" not in text and "rax 0x0000000000000000" in text


def test_vmcs_groups(debugger):
    debugger.execute("next-exit")
    expect("vmcs_control", debugger.execute("vmcs control"))
    expect("vmcs_guest", debugger.execute("vmcs guest"))
    expect("vmcs_field", debugger.execute("vmcs GUEST_CR4"))


def test_diff_disasm_mem(debugger):
    debugger.execute("break exit MSR_WRITE")
    debugger.execute("continue")
    expect("diff", debugger.execute("diff"))
    expect("disasm", debugger.execute("disasm"))
    expect("disasm_at", debugger.execute("disasm 0x2000dc 4"))
    expect("mem_linear", debugger.execute("mem rsp 48"))
    expect("mem_physical", debugger.execute("mem phys 0x201000 64"))


def test_breakpoints_history_help(debugger):
    debugger.execute("break exit IO_INSTRUCTION if q.port == 0x3f8 and rax & 0xff == 0x0a")
    debugger.execute("break rip 0x200096")
    debugger.execute("break entry-failure")
    debugger.execute("watch vmcs GUEST_RIP")
    debugger.execute("continue")
    debugger.execute("continue")
    debugger.execute("back 3")
    expect("info_breakpoints", debugger.execute("info breakpoints"))
    expect("history", debugger.execute("history"))
    expect("help", debugger.execute("help"))
    expect("help_break", debugger.execute("help break"))


def test_why_for_each_kind_of_failure():
    for name in ("entry-failure", "vmfail"):
        d = Debugger(scenario.load(name), look=PLAIN, width=WIDTH)
        d.start()
        d.execute("continue")
        expect(f"why_{name}", d.execute("why"))
        d.execute("quit")
