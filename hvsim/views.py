"""Rendering shared by `hvsim demo`, `hvsim trace` and the debugger (rich renderables).

`Look` is how output looks: colours where the terminal has them (rich detects it, and honours
NO_COLOR), or `plain` for logs: no colour, ASCII rules and borders, changed values marked
with "*" instead of a colour. Everything decoded here is decoded by vmx (`VmExit` and its
records); the views only lay it out.
"""
from __future__ import annotations

import enum
import io

import attrs
from rich import box
from rich.console import Console, Group
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from vmx import ExitReason
from vmx.exit_record import EXIT_INFORMATION_FIELDS
from x86.msr import Msr


@attrs.frozen
class Look:
    plain: bool = False
    ascii: bool = False          # a terminal without UTF-8: ASCII lines, colours still

    @property
    def box(self):
        return box.ASCII2 if self.plain or self.ascii else box.SIMPLE_HEAD

    def rule(self, title: str) -> Rule:
        return Rule(Text(title, style="bold"), characters="-" if self.plain or self.ascii else "─",
                    align="left", style="dim")

    def for_console(self, console: Console) -> "Look":
        """This look, in ASCII if the console cannot encode more."""
        return attrs.evolve(self, ascii=not console.encoding.lower().startswith("utf"))

    def changed(self, text: str) -> Text:
        return Text(text + "*") if self.plain else Text(text, style="bold yellow")

    def table(self, *columns: str, title: str | None = None, **kw) -> Table:
        return TextTable(*columns, box=self.box, title=title, title_justify="left", show_edge=False,
                         pad_edge=False, header_style="bold", **kw)

    def console(self, file=None, width: int | None = None) -> Console:
        if self.plain:
            return Console(file=file, width=width, color_system=None, no_color=True, highlight=False,
                           emoji=False, force_terminal=False, legacy_windows=False)
        return Console(file=file, width=width, highlight=False, emoji=False)

    def text(self, renderables, width: int = 100) -> str:
        """Render to plain text at a fixed width (tests, logs); trailing spaces dropped."""
        buf = io.StringIO()
        con = Console(file=buf, width=width, color_system=None, no_color=True, highlight=False,
                      emoji=False, force_terminal=False, legacy_windows=False)
        for r in renderables:
            con.print(r)
        return "\n".join(line.rstrip() for line in buf.getvalue().splitlines()) + "\n"


class TextTable(Table):
    """A table whose string cells are text, never rich markup ("[n]" stays "[n]")."""

    def add_row(self, *cells, **kw) -> None:
        super().add_row(*(Text(c) if isinstance(c, str) else c for c in cells), **kw)


def hexv(v: int) -> str:
    return f"{int(v):#x}"


def reason_name(reason) -> str:
    return f"{int(reason)} {reason.name}" if isinstance(reason, ExitReason) else f"{int(reason)} (not in Table C-1)"


def exit_detail(vm_exit) -> str:
    """What the exit-information fields say, without the reason and RIP (from `explain()`)."""
    text = vm_exit.explain().rstrip(".")
    if not vm_exit.entry_failure and ": " in text:
        return text.split(": ", 1)[1]
    return text


def _value(v) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, enum.Enum):
        return v.name
    return hexv(v) if int(v) > 9 else str(int(v))


def _record_rows(table: Table, label: str, record) -> None:
    """A decoded exit-information field: raw value, then one row per SDM field."""
    layout = type(record).__name__
    table.add_row(label, hexv(record), f"{layout} ({record.TABLE})" if getattr(record, "TABLE", "") else layout)
    for name, value in record.fields().items():
        table.add_row("", f".{name}", _value(value))


def exit_table(vm_exit, look: Look) -> Table:
    """A VM exit field by field: the exit-information fields under their VMCS names, raw and
    decoded (SDM 25.9, 28.2)."""
    t = look.table("field", "value", "decoded")
    names = {attr: f.name for attr, f in EXIT_INFORMATION_FIELDS.items()}
    flags = " (VM-entry failure)" if vm_exit.entry_failure else ""
    t.add_row(names["raw_reason"], hexv(vm_exit.raw_reason), reason_name(vm_exit.reason) + flags)
    _record_rows(t, names["qualification"], vm_exit.qualification)
    for attr in ("guest_linear_address", "guest_physical_address"):
        if getattr(vm_exit, attr):
            t.add_row(names[attr], hexv(getattr(vm_exit, attr)), "")
    if vm_exit.instruction_length:
        t.add_row(names["instruction_length"], str(vm_exit.instruction_length), "")
    if int(vm_exit.instruction_info) or type(vm_exit.instruction_info).__name__ != "InstructionInfo":
        _record_rows(t, names["instruction_info"], vm_exit.instruction_info)
    for attr, code in (("interruption_info", "interruption_error_code"),
                       ("idt_vectoring_info", "idt_vectoring_error_code")):
        info = getattr(vm_exit, attr)
        if info.valid:
            t.add_row(names[attr], hexv(info), info.describe())
            if info.error_code_valid:
                t.add_row(names[code], hexv(getattr(vm_exit, code)), "")
    t.add_row(names["guest_rip"], hexv(vm_exit.guest_rip), "")
    return t


def exit_view(vm_exit, look: Look, title: str) -> Group:
    parts = [look.rule(title), exit_table(vm_exit, look), Text(vm_exit.explain())]
    if vm_exit.check is not None:
        parts.append(Text(f"check: SDM Vol. 3C {vm_exit.check.section}: {vm_exit.check.rule}"))
    return Group(*parts)


def register_context(rec: dict) -> str:
    """What the registers add to an exit the exit information says little about: the CPUID leaf,
    the MSR index (and the value written)."""
    regs, reason = rec["registers"], rec["reason"]
    reg = lambda name: int(regs[name], 0) & 0xFFFFFFFF     # noqa: E731
    if reason == "CPUID":
        return f"leaf {reg('rax'):#x}"
    if reason in ("MSR_READ", "MSR_WRITE"):
        try:
            name = " " + Msr(reg("rcx")).name
        except ValueError:
            name = ""
        text = f"MSR {reg('rcx'):#x}{name}"
        if reason == "MSR_WRITE":
            text += f" <- {reg('rdx') << 32 | reg('rax'):#x}"
        return text
    return ""


def exit_row(look: Look) -> Table:
    """A one-row grid for streaming exits, its columns the same width on every row."""
    g = Table.grid(padding=(0, 1), expand=True)
    g.add_column(width=5, justify="right", style="dim")
    g.add_column(width=9, justify="right", style="dim")
    g.add_column(width=18, no_wrap=True)
    g.add_column(ratio=1, overflow="fold")
    g.add_column(width=10, style="dim")
    return g


def exit_line(rec: dict, vm_exit, look: Look) -> Table:
    """One exit on one line: number, retired instructions, reason, what it was, guest RIP."""
    name = vm_exit.reason.name if isinstance(vm_exit.reason, ExitReason) else str(int(vm_exit.reason))
    context = register_context(rec)
    detail = exit_detail(vm_exit) if not context else context
    if vm_exit.entry_failure:
        detail = f"VM-entry failure, qualification {vm_exit.raw_qualification}" + (
            f": the check of SDM {vm_exit.check.section} failed" if vm_exit.check else "")
    g = exit_row(look)
    g.add_row(str(rec["seq"]), f"{rec['icount']:,}",
              Text(name, style="bold red" if vm_exit.entry_failure else "bold cyan"), detail,
              "" if vm_exit.entry_failure else f"{vm_exit.guest_rip:#x}")
    return g


def trace_table(trace, look: Look, to_vm_exit) -> Table:
    """`hvsim trace show`: every record of a trace, one line each."""
    h = trace.header
    t = look.table("#", "icount", "reason", "detail", "guest RIP",
                   title=f"exit trace: scenario {h.get('scenario')}, profile {h.get('profile')}")
    for rec in trace.records:
        if rec["type"] == "exit":
            ex = to_vm_exit(rec)
            name = rec["reason"] or str(rec["reason_number"])
            t.add_row(str(rec["seq"]), f"{rec['icount']:,}", name + (" (entry failure)" if rec["entry_failure"] else ""),
                      register_context(rec) or exit_detail(ex), rec["guest_rip"])
        elif rec["type"] == "vmfail":
            t.add_row(str(rec["seq"]), f"{rec['icount']:,}", f"{rec['instruction']} {rec['outcome']}",
                      rec["explain"], "")
        elif rec["type"] == "end":
            t.add_row("", f"{rec['icount']:,}", "end", rec["error"] or "the VMM returned", "")
    return t
