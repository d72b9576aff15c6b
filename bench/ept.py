"""EPT benchmarks (issue: nested paging, "Performance").

1. Guest MIPS with EPT off and on, on memory-heavy loops whose accesses hit the TLB: `memmix`
   (bench/mips.py's load/store/call mix) and `pages` (loads and stores rotating over 512 pages).
   EPT on means an identity map of the guest's memory written with `ept.EptBuilder` (4-KiB pages
   unless --page-size) and installed with `ept.attach(cpu).enable(eptp)` on a plain
   x86.Machine. The target: EPT on within 10% of EPT off.
2. Cold two-dimensional walks per second: random linear addresses, each translated through
   4-level guest paging whose every paging-structure access, and the final access, goes through
   a 4-level EPT walk (5 EPT walks, 24 entries read), with every cached guest-physical mapping
   dropped before each translation and no TLB fill. The loop runs in C (ept._unit.bench_2d).
   The target: at least 2 million per second. The addresses spread over --spans GiB of linear
   space: over 1 GiB the guest's 512 page tables stay in the host's caches; over 64 GiB they
   number tens of thousands and most entry reads miss the host's caches (the simulator's own
   cost is the difference to the "cached" column, where EPT walks are skipped).

Each figure is the median of --runs runs.

    python bench/ept.py [--runs 5] [--iterations 5000000] [--walks 100000] [--spans 1,64]
                        [--page-size 4096] [--json FILE]
"""
from __future__ import annotations

import argparse
import array
import json
import pathlib
import random
import statistics
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import x86  # noqa: E402
import ept  # noqa: E402
from x86.asm import assemble  # noqa: E402

LOAD = 0x100000
MEMORY = 64 << 20
EPT_TABLES = 48 << 20           # the EPT structures live above the guest's 48 MiB

from mips import MEMMIX  # noqa: E402  (the same workload as bench/mips.py)

PAGES = """
    mov rsi, 0x1000000
    mov rcx, {n}
    xor edx, edx
1:  mov rax, [rsi + rdx]
    add rax, rcx
    mov [rsi + rdx + 8], rax
    add rdx, 4096
    and edx, 0x1FFFFF
    dec rcx
    jnz 1b
    hlt
"""


def guest_mips(src: str, use_ept: bool, page_size: int) -> float:
    m = x86.Machine(memory_size=MEMORY)
    m.load(assemble(src, address=LOAD), address=LOAD)
    if use_ept:
        b = ept.EptBuilder(m.memory, ept.BumpAllocator(m.memory, EPT_TABLES, MEMORY))
        b.identity(EPT_TABLES, page_size=page_size)
        ept.attach(m.cpu).enable(b.eptp)
    t = time.perf_counter()
    stop = m.cpu.run()
    dt = time.perf_counter() - t
    assert stop.reason == "hlt", stop
    return stop.instructions / dt / 1e6


def two_d_setup(walks: int, seed: int, span: int):
    """A machine in 4-level paging with `walks` random linear pages of a `span`-byte range mapped
    (4-KiB pages) to random guest-physical pages, under a 4-level identity EPT map of 4-KiB
    pages; returns (EPT unit, addresses in random order)."""
    rng = random.Random(seed)
    m = x86.Machine(memory_size=512 << 20)
    m.load(assemble("hlt", address=LOAD), address=LOAD)
    mem = m.memory
    pool = [64 << 20]                        # guest page tables from 64 MiB

    def alloc():
        a = pool[0]
        pool[0] += 4096
        return a
    pml4 = alloc()
    tables = {}

    def table_for(parent, index):
        key = (parent, index)
        if key not in tables:
            tables[key] = alloc()
            mem.write_u64(parent + 8 * index, tables[key] | 0x27)      # P RW US A
        return tables[key]
    addrs = set()
    while len(addrs) < walks:
        la = rng.randrange(0, span) & ~0xFFF
        if la in addrs:
            continue
        pt = table_for(table_for(table_for(pml4, la >> 39), (la >> 30) & 0x1FF), (la >> 21) & 0x1FF)
        mem.write_u64(pt + 8 * ((la >> 12) & 0x1FF), (rng.randrange(0, 64 << 20) & ~0xFFF) | 0x67)
        addrs.add(la)
    m.cpu.cr3 = pml4
    b = ept.EptBuilder(mem, ept.BumpAllocator(mem, 384 << 20, 512 << 20))
    b.identity((pool[0] + (2 << 20) - 1) & ~((2 << 20) - 1), page_size=4096)
    unit = ept.attach(m.cpu)
    unit.enable(b.eptp)
    order = list(addrs)
    rng.shuffle(order)
    unit.machine = m                       # keep the machine alive with the unit
    return unit, array.array("Q", [a | rng.randrange(0, 4096) for a in order])


def cold_walks(walks: int, runs: int, seed: int, span: int) -> tuple[float, float]:
    unit, addrs = two_d_setup(walks, seed, span)
    faults = unit._unit.bench_2d(addrs, True)                  # warm-up: guest A flags are set
    assert faults == 0, f"{faults} translations faulted"
    cold, warm = [], []
    for _ in range(runs):
        t = time.perf_counter()
        unit._unit.bench_2d(addrs, True)
        cold.append(len(addrs) / (time.perf_counter() - t))
        t = time.perf_counter()
        unit._unit.bench_2d(addrs, False)
        warm.append(len(addrs) / (time.perf_counter() - t))
    return statistics.median(cold), statistics.median(warm)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--iterations", type=int, default=5_000_000, help="loop iterations of each guest")
    p.add_argument("--walks", type=int, default=100_000, help="random addresses for the 2-D walks")
    p.add_argument("--page-size", type=int, default=4096, choices=(4096, 2 << 20, 1 << 30))
    p.add_argument("--spans", default="1,64",
                   help="GiB of linear addresses the random walks spread over (comma-separated): "
                        "1 GiB needs 512 guest page tables, 64 GiB tens of thousands, whose reads "
                        "then miss the host's caches")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json")
    a = p.parse_args(argv)
    result = {}
    print(f"{'workload':<10} {'EPT off MIPS':>13} {'EPT on MIPS':>12} {'on/off':>8}   (median of {a.runs})")
    for name, src in (("memmix", MEMMIX.format(n=a.iterations)), ("pages", PAGES.format(n=a.iterations))):
        off, on = [], []
        for _ in range(a.runs):                          # alternate, so drifts hit both alike
            off.append(guest_mips(src, False, a.page_size))
            on.append(guest_mips(src, True, a.page_size))
        mo, mn = statistics.median(off), statistics.median(on)
        result[name] = {"ept_off_mips": mo, "ept_on_mips": mn, "ratio": mn / mo}
        print(f"{name:<10} {mo:>13.1f} {mn:>12.1f} {mn / mo:>8.3f}")
    result["two_d_walks"] = {}
    for span in (int(x) for x in a.spans.split(",")):
        cold, warm = cold_walks(a.walks, a.runs, a.seed, span << 30)
        result["two_d_walks"][f"{span}GiB"] = {"cold_per_s": cold, "cached_per_s": warm,
                                              "addresses": a.walks}
        print(f"2-D walks (4-level guest x 4-level EPT), {a.walks:,} random addresses in {span} GiB: "
              f"{cold / 1e6:.2f} M/s cold (guest-physical mappings dropped before each), "
              f"{warm / 1e6:.2f} M/s with them cached")
    if a.json:
        pathlib.Path(a.json).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
