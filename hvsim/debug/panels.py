"""The context view shown at every stop (as pwndbg and gef show theirs): the guest's registers
(changed ones highlighted), the code around RIP, the last VM exit decoded field by field, and
the VMCS fields being watched."""
from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from hvsim import views
from hvsim.debug import disasm
from hvsim.guest import GuestMemoryError
from x86.machine import GPRS

# RFLAGS bits worth naming (SDM Vol. 1 3.4.3), low to high
_FLAGS = (("CF", 0), ("PF", 2), ("AF", 4), ("ZF", 6), ("SF", 7), ("TF", 8), ("IF", 9), ("DF", 10),
          ("OF", 11), ("NT", 14), ("RF", 16), ("VM", 17), ("AC", 18), ("VIF", 19), ("VIP", 20), ("ID", 21))


def flags_text(rflags: int) -> str:
    return " ".join(name for name, bit in _FLAGS if rflags >> bit & 1)


def _cell(look: views.Look, name: str, value: int, prev: dict | None, digits: int = 0) -> Text:
    """`name value`, the value marked when it differs from the previous stop's."""
    text = f"{value:#0{digits + 2}x}" if digits else f"{value:#x}"
    out = Text(f"{name:<3} ", style="cyan")
    if prev is not None and prev.get(name) != value:
        out.append_text(look.changed(text))
    else:
        out.append(text + (" " if look.plain else ""))
    return out


def _line(cells: list[Text], width: int) -> Text:
    out = Text()
    for i, c in enumerate(cells):
        if i < len(cells) - 1:
            c.pad_right(max(0, width - len(c)))
        out.append_text(c)
    return out


def registers_table(regs: dict, prev: dict | None, look: views.Look, width: int = 100) -> Group:
    """GPRs four to a line (three below 100 columns), RIP and RFLAGS (its flags named), the
    control registers, the segment selectors and the FS/GS bases."""
    per = 4 if width >= 100 else 3 if width >= 75 else 2
    lines = [_line([_cell(look, n, regs[n], prev, 16) for n in GPRS[i:i + per]], 25) for i in range(0, 16, per)]
    rf = _cell(look, "rflags", regs["rflags"], prev)
    if flags_text(regs["rflags"]):
        rf.append(f" [{flags_text(regs['rflags'])}]")
    lines.append(_line([_cell(look, "rip", regs["rip"], prev, 16), rf], 25))
    lines.append(_line([_cell(look, n, regs[n], prev) for n in ("cr0", "cr2", "cr3", "cr4", "efer")], 16))
    lines.append(_line([_cell(look, n, regs[n], prev) for n in ("cs", "ss", "ds", "es", "fs", "gs")], 10))
    lines.append(_line([_cell(look, n, regs[n], prev) for n in ("fs_base", "gs_base")], 25))
    return Group(*lines)


def code_view(guest, rip: int, look: views.Look, before: int = 3, after: int = 6):
    try:
        lines, at = disasm.around(guest, rip, before, after)
    except GuestMemoryError as e:
        return Text(f"cannot read the code at {rip:#x}: {e}")
    t = Table.grid(padding=(0, 1))
    t.add_column(width=2, no_wrap=True)
    t.add_column(no_wrap=True)
    t.add_column(no_wrap=True, style="dim")
    t.add_column(no_wrap=True)
    for i, ln in enumerate(lines):
        here = i == at
        t.add_row(Text("=>" if look.plain or look.ascii else "►", style="bold green") if here else "",
                  Text(f"{ln.address:#x}", style="bold" if here else ""), ln.data.hex(" ")[:23],
                  Text(ln.text, style="bold" if here else ""))
    return t


def watch_table(controller, look: views.Look):
    watches = controller.breakpoints.of("watch")
    t = look.table("#", "field", "value")
    for bp in watches:
        t.add_row(str(bp.number), bp.field.name, f"{controller.guest.field(bp.field):#x}")
    return t


def where(stop) -> str:
    state = {"entry": "before VM entry", "exit": "at a VM exit", "vmfail": "after a VMfail",
             "pause": "in the guest", "end": "after the VMM's run"}[stop.kind]
    return f"{state}: {stop.seq} VM entries, {stop.icount:,} guest instructions, guest RIP {stop.rip:#x}"


def context(controller, stop, prev_regs: dict | None, look: views.Look, width: int = 100) -> Group:
    guest = controller.guest
    regs = guest.registers()
    parts = [Text(stop.why, style="bold"), Text(where(stop), style="dim")]
    source = "live, in the processor" if guest.live else "from the VMCS guest-state area and the GPRs"
    parts += [look.rule(f"registers ({source})"), registers_table(regs, prev_regs, look, width)]
    parts += [look.rule("code"), code_view(guest, regs["rip"], look)]
    last = controller.session.last_exit
    if last is not None:
        seq = controller.session.exit_records[-1]["seq"]
        parts.append(views.exit_view(last, look, f"last VM exit (#{seq})"))
    if stop.kind == "vmfail" or (stop.kind == "end" and stop.error is not None and hasattr(stop.error, "check")):
        err = stop.error
        parts += [look.rule("VMfail"), Text(str(err), style="red")]
    if controller.breakpoints.of("watch"):
        parts += [look.rule("watched VMCS fields"), watch_table(controller, look)]
    return Group(*parts)
