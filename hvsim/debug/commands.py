"""The debugger's commands: names, aliases, usage and help in one table (the help text, the
completion and the dispatch all read it)."""
from __future__ import annotations

import attrs


@attrs.frozen
class Command:
    name: str
    aliases: tuple[str, ...]
    usage: str
    help: str
    words: tuple[str, ...] = ()      # what may follow the name (completion; "REASON", "FIELD" expand)


COMMANDS = (
    Command("step", ("s", "si", "stepi"), "step [n]",
            "Run n guest instructions (default 1). A VM exit on the way stops it first (the VMM's "
            "handler has not run yet); so does a breakpoint."),
    Command("next-exit", ("n", "ne", "nexti"), "next-exit",
            "Let the VMM handle the current exit, then run to the next VM exit (or VMfail)."),
    Command("continue", ("c", "cont"), "continue",
            "Run until a breakpoint or watch triggers, or the VMM's run ends. Ctrl-C interrupts."),
    Command("break", ("b", "br"), "break exit REASON [if EXPR] | break rip ADDR [if EXPR] | break entry-failure",
            "Stop at VM exits of a reason (a name from SDM Appendix C, a number, or * for any), at a "
            "guest RIP, or at any VM-entry failure. EXPR sees the guest registers (rax ...), exit, q "
            "(the decoded qualification: q.port, q.cr ...), reason, vmcs.FIELD, icount, seq; e.g. "
            "`break exit IO_INSTRUCTION if q.port == 0x3f8`.",
            ("exit", "rip", "entry-failure")),
    Command("watch", ("w",), "watch vmcs FIELD",
            "Stop whenever a VMCS field changes: written by the VMM (seen before the next VM "
            "entry) or by the processor at a VM exit. Watched fields are shown at every stop.",
            ("vmcs",)),
    Command("delete", ("d", "del"), "delete [N]", "Delete breakpoint or watch N; all without N."),
    Command("info", ("i",), "info breakpoints", "List breakpoints and watches with their hit counts.",
            ("breakpoints", "watches")),
    Command("regs", ("r", "registers"), "regs", "The guest's registers (changed ones marked)."),
    Command("vmcs", ("v",), "vmcs [GROUP | FIELD]",
            "The current VMCS: every non-zero field by kind, or one kind (control, exit-info, "
            "guest, host), one section of SDM Appendix B (e.g. B.2.1), or one field by name.",
            ("control", "exit-info", "guest", "host")),
    Command("diff", (), "diff",
            "The VMCS fields and guest registers that changed since the previous VM exit."),
    Command("disasm", ("u", "x/i", "dis"), "disasm [ADDR] [n]",
            "Disassemble n instructions (10) at a guest-linear address (around RIP by default); "
            "Intel syntax, by iced-x86."),
    Command("mem", ("m", "x"), "mem [phys] ADDR [n]",
            "Dump n bytes (64) of guest memory: guest-linear through the guest's paging (the walk is "
            "shown), or guest-physical with `phys`. ADDR may be an expression (`mem rsp 32`).",
            ("phys",)),
    Command("ept", (), "ept walk GPA",
            "Walk a guest-physical address through EPT: each level's entry and permissions, then "
            "the host-physical address or why the walk fails.", ("walk",)),
    Command("why", (), "why",
            "The last VMfail or VM-entry failure with the SDM check it broke; without one, what the "
            "last VM exit says."),
    Command("stats", (), "stats", "Exits by reason, instructions retired, time, checkpoints."),
    Command("history", ("hist",), "history [n]", "The last n stops (20): where, and why."),
    Command("back", ("rs", "reverse-step"), "back [n] | back exit",
            "Go back n guest instructions (1), or to the previous VM exit: the machine is restored "
            "from a checkpoint and re-executed to that point (deterministic).", ("exit",)),
    Command("trace", (), "trace save FILE", "Write the exit trace so far (JSON Lines, docs/traces.md).",
            ("save",)),
    Command("context", ("ctx",), "context", "Show the context view again."),
    Command("help", ("h", "?"), "help [COMMAND]", "List the commands, or explain one."),
    Command("quit", ("q", "exit"), "quit", "Leave the debugger."),
)

BY_NAME = {c.name: c for c in COMMANDS} | {a: c for c in COMMANDS for a in c.aliases}
