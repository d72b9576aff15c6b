"""`hvsim` command line: run, demo, debug, trace."""
from __future__ import annotations

import argparse
import sys


def _run(args) -> int:
    import x86
    m = x86.Machine(memory_size=args.memory << 20)
    entry = m.load(args.image, address=args.address, mode=args.mode)
    stop = m.cpu.run(max_instructions=args.max_instructions)
    sys.stdout.write(m.console.text)
    print(f"\n[hvsim] {stop.reason} after {stop.instructions} instructions "
          f"(entry {entry:#x}, RIP {stop.rip:#x})"
          + (f", status {stop.status}" if stop.status is not None else ""), file=sys.stderr)
    return int(stop.status or 0) & 0xFF if stop.reason == "exit" else 0


def _demo(args) -> int:
    from hvsim import demo
    return demo.main(args)


def _debug(args) -> int:
    from hvsim.debug import repl
    return repl.main(args)


def _trace_show(args) -> int:
    from hvsim import trace, views
    look = views.Look(plain=args.plain)
    console = look.console()
    try:
        t = trace.load(args.file)
    except (OSError, trace.TraceError) as e:
        console.print(str(e), markup=False)
        return 2
    if args.exit is not None:
        recs = [r for r in t.records if r["type"] == "exit" and r["seq"] == args.exit]
        if not recs:
            console.print(f"{args.file} has no exit {args.exit}")
            return 2
        rec = recs[0]
        console.print(views.exit_view(trace.to_vm_exit(rec), look, f"exit {rec['seq']} (icount {rec['icount']:,})"))
        regs = look.table("register", "value")
        for name, value in rec["registers"].items():
            regs.add_row(name, value)
        console.print(regs)
        return 0
    console.print(views.trace_table(t, look, trace.to_vm_exit))
    return 0


def _trace_diff(args) -> int:
    from hvsim import trace
    try:
        a, b = trace.load(args.a), trace.load(args.b)
    except (OSError, trace.TraceError) as e:
        print(e, file=sys.stderr)
        return 2
    d = trace.diff(a, b, ignore=args.ignore)
    if d is None:
        print(f"the traces are equal: {len(a.exits)} exits, {len(a.records)} records")
        return 0
    print(d)
    return 1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="hvsim", description="A simulator of hardware-assisted "
                                "virtualization: x86-64 with VT-x, EPT, AMD-V and an IOMMU.")
    sub = p.add_subparsers(dest="command")
    r = sub.add_parser("run", help="run a bare-metal guest image (flat binary or ELF64)")
    r.add_argument("image")
    r.add_argument("--mode", default="long", choices=["real", "protected", "long"])
    r.add_argument("--address", type=lambda s: int(s, 0), default=None)
    r.add_argument("--memory", type=int, default=256, help="MiB of guest memory")
    r.add_argument("--max-instructions", type=int, default=None)
    r.set_defaults(fn=_run)

    from hvsim.scenario import DEFAULT
    d = sub.add_parser("demo", help="run a bundled scenario: a guest under a sample VMM, its VM "
                       "exits streamed, a summary at the end")
    d.add_argument("--list", action="store_true", help="name the bundled scenarios")
    d.add_argument("scenario", nargs="?", default=DEFAULT, help=f"a bundled name or a .py file ({DEFAULT})")
    d.add_argument("--all", action="store_true", help="one line per exit (do not fold I/O runs)")
    d.add_argument("--trace", metavar="FILE", help="also write the exit trace (JSON Lines)")
    d.add_argument("--plain", action="store_true", help="no colour, ASCII only (for logs)")
    d.set_defaults(fn=_demo)

    g = sub.add_parser("debug", help="step through a scenario: breakpoints on VM exits, VMCS "
                       "views, reverse stepping (`help` inside)")
    g.add_argument("scenario", help="a bundled name (`hvsim demo --list`) or a .py file")
    g.add_argument("--plain", action="store_true", help="no colour, ASCII only, no line editing")
    g.add_argument("-x", "--commands", metavar="FILE", help="run the commands in FILE first")
    g.set_defaults(fn=_debug)

    t = sub.add_parser("trace", help="exit trace files (JSON Lines, docs/traces.md)")
    tsub = t.add_subparsers(dest="trace_command", required=True)
    ts = tsub.add_parser("show", help="render a trace")
    ts.add_argument("file")
    ts.add_argument("--exit", type=int, metavar="N", help="one exit, field by field")
    ts.add_argument("--plain", action="store_true")
    ts.set_defaults(fn=_trace_show)
    td = tsub.add_parser("diff", help="the first divergence between two traces (status 1), or "
                         "status 0 when they are equal")
    td.add_argument("a")
    td.add_argument("b")
    td.add_argument("--ignore", action="append", default=[], metavar="FIELD",
                    help="a field not to compare (dotted path, e.g. icount or registers.rax)")
    td.set_defaults(fn=_trace_diff)

    args = p.parse_args(argv)
    if not getattr(args, "fn", None):
        p.print_help()
        return 0
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
