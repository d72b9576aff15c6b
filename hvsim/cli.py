"""`hvsim` command line."""
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
    d = sub.add_parser("demo", help="run the bundled demonstration")
    d.add_argument("--list", action="store_true", help="name the bundled scenarios")
    d.add_argument("scenario", nargs="?", default="hello")
    d.set_defaults(fn=_demo)
    args = p.parse_args(argv)
    if not getattr(args, "fn", None):
        p.print_help()
        return 0
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
