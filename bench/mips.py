"""Guest MIPS of the interpreter (issue: foundation, "Performance").

Workloads: (a) a register loop (add/add/dec/jnz), (b) a load/store/call mix, (c) a gcc-compiled
C program (tests/guests/cwork.c). Each is run several times in a fresh machine; the figure is
the median of (instructions retired) / (wall time of `run()`), decode included.

    python bench/mips.py [--runs 5] [--iterations 20000000] [--json FILE]
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import pathlib
import statistics
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import x86  # noqa: E402
from x86.asm import assemble  # noqa: E402

LOAD = 0x100000

REGLOOP = """
    mov rcx, {n}
    xor eax, eax
    mov ebx, 1
1:  add rax, rbx
    add rbx, 1
    dec rcx
    jnz 1b
    hlt
"""

MEMMIX = """
    lea rsi, [rip + array]
    xor eax, eax
    xor edx, edx
    mov rcx, {n}
1:  mov r8, [rsi + rdx*8]
    add r8, rcx
    mov [rsi + rdx*8], r8
    call leaf
    add rdx, 1
    and edx, 7
    test cl, 1
    jz 2f
    add rax, r8
2:  dec rcx
    jnz 1b
    hlt
leaf:
    push rbx
    lea rbx, [rax + rcx]
    mov [rsi + 64], rbx
    pop rbx
    ret
    .balign 4096
array:
    .skip 4096
"""


def _c_image() -> bytes:
    spec = importlib.util.spec_from_file_location("guest_build", ROOT / "tests/guests/build.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.build_guest("cwork").read_bytes()


def measure(image: bytes, address, runs: int) -> tuple[float, int]:
    figures = []
    n = 0
    for _ in range(runs):
        m = x86.Machine(memory_size=64 << 20)
        m.load(image, address=address)
        t = time.perf_counter()
        stop = m.cpu.run()
        dt = time.perf_counter() - t
        assert stop.reason in ("hlt", "exit"), stop
        n = stop.instructions
        figures.append(n / dt / 1e6)
    return statistics.median(figures), n


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--iterations", type=int, default=20_000_000)
    p.add_argument("--json")
    a = p.parse_args(argv)
    rows = {
        "regloop": measure(assemble(REGLOOP.format(n=a.iterations), address=LOAD), LOAD, a.runs),
        "memmix": measure(assemble(MEMMIX.format(n=a.iterations // 4), address=LOAD), LOAD, a.runs),
        "c-workload": measure(_c_image(), None, a.runs),
    }
    print(f"{'workload':<12} {'instructions':>14} {'MIPS (median of %d)' % a.runs:>22}")
    for name, (mips, n) in rows.items():
        print(f"{name:<12} {n:>14,} {mips:>22.1f}")
    result = {k: {"mips": v[0], "instructions": v[1], "runs": a.runs} for k, v in rows.items()}
    if a.json:
        pathlib.Path(a.json).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
