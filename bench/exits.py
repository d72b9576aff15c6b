"""VM-exit round trips per second and VMREAD/VMWRITE cost (issue: VT-x, "Performance").

A guest loops on CPUID; a trivial Python handler advances RIP and resumes. Also times VMREAD +
VMWRITE pairs from Python. Medians of several runs.

    python bench/exits.py [--runs 5] [--exits 20000] [--pairs 200000]
"""
from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import vmx  # noqa: E402
from x86.asm import assemble  # noqa: E402

GUEST = 0x200000


def machine():
    m = vmx.Machine(memory_size=64 << 20)
    cpu = m.cpu
    vmx.enable(cpu)
    for pa in (0x10000, 0x11000):
        m.memory.write_u32(pa, m.profile.revision_id)
    cpu.vmxon(0x10000)
    cpu.vmclear(0x11000)
    cpu.vmptrld(0x11000)
    m.memory.write(GUEST, assemble("1: cpuid\njmp 1b", address=GUEST))
    vmx.VmcsBuilder(cpu).write(guest_rip=GUEST, guest_rsp=0x180000)
    return m


def round_trips(n: int) -> float:
    m = machine()
    cpu = m.cpu
    rip = vmx.Field.GUEST_RIP
    ex = cpu.vmlaunch()
    t = time.perf_counter()
    for _ in range(n):
        cpu.vmwrite(rip, cpu.vmread(rip) + ex.instruction_length)
        ex = cpu.vmresume()
    return n / (time.perf_counter() - t)


def vmread_vmwrite(n: int) -> float:
    cpu = machine().cpu
    f = vmx.Field.GUEST_RSP
    t = time.perf_counter()
    for i in range(n):
        cpu.vmwrite(f, cpu.vmread(f) + 1)
    return (time.perf_counter() - t) / n / 2 * 1e9


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--exits", type=int, default=20_000)
    p.add_argument("--pairs", type=int, default=200_000)
    a = p.parse_args(argv)
    trips = statistics.median(round_trips(a.exits) for _ in range(a.runs))
    ns = statistics.median(vmread_vmwrite(a.pairs) for _ in range(a.runs))
    print(f"VM-exit round trips (CPUID, Python handler): {trips:,.0f} /s   (target 300,000 /s)")
    print(f"VMREAD or VMWRITE from Python:              {ns:,.0f} ns each (target < 150 ns)")
    return trips, ns


if __name__ == "__main__":
    main()
