"""unicorn peer for bench/peers.py: run a flat 64-bit payload in unicorn.

The payload is the same flat image hvsim gets (entry stub + workload, linked
at 0x100000).  unicorn's UC_MODE_64 starts the CPU in 64-bit mode with flat
segments and no paging to set up, so we only map memory, set RSP and call
emu_start(entry, until=stop): unicorn stops when RIP reaches `stop` without
executing the instruction there.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import time

STACK_TOP = 0x00400000          # stack page(s) just below 4 MiB
STACK_SIZE = 0x00010000


def ensure_unicorn(allow_install: bool = True):
    """Return (unicorn module, None) or (None, reason)."""
    try:
        import unicorn  # noqa: F401
        return importlib.import_module("unicorn"), None
    except Exception as exc:  # ImportError, or a broken native library
        first = f"{type(exc).__name__}: {exc}"
    if not allow_install:
        return None, f"import unicorn failed ({first}); installing disabled"
    print("[unicorn] not importable; trying `pip install unicorn` ...",
          file=sys.stderr, flush=True)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "unicorn"],
            stdin=subprocess.DEVNULL, capture_output=True, text=True,
            timeout=600)
    except Exception as exc:
        return None, f"pip install unicorn could not run: {exc}"
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [""]
        return None, f"pip install unicorn failed: {tail[0]}"
    importlib.invalidate_caches()
    try:
        return importlib.import_module("unicorn"), None
    except Exception as exc:
        return None, f"unicorn installed but import failed: {exc}"


def _page_round_up(value: int) -> int:
    return (value + 0xFFF) & ~0xFFF


class UnicornRunner:
    def __init__(self, uc_module):
        self.uc = uc_module
        from unicorn import x86_const
        self.x86 = x86_const

    def _machine(self, code: bytes, base: int, end: int):
        uc = self.uc
        mu = uc.Uc(uc.UC_ARCH_X86, uc.UC_MODE_64)
        size = _page_round_up(max(end, base + len(code)) - base)
        mu.mem_map(base, size)
        mu.mem_write(base, code)
        mu.mem_map(STACK_TOP - STACK_SIZE, STACK_SIZE)
        mu.reg_write(self.x86.UC_X86_REG_RSP, STACK_TOP - 64)
        return mu

    def count_instructions(self, code: bytes, base: int, start: int,
                           stop: int, end: int) -> int:
        """Instructions executed from start until RIP == stop (code hook)."""
        mu = self._machine(code, base, end)
        counter = [0]

        def hook(_uc, _address, _size, _data):
            counter[0] += 1

        mu.hook_add(self.uc.UC_HOOK_CODE, hook)
        mu.emu_start(start, stop)
        rip = mu.reg_read(self.x86.UC_X86_REG_RIP)
        if rip != stop:
            raise RuntimeError(f"unicorn stopped at {rip:#x}, not {stop:#x}")
        return counter[0]

    def time_run(self, code: bytes, base: int, start: int, stop: int,
                 end: int):
        """(wall, cpu) seconds of one emu_start from start to stop."""
        mu = self._machine(code, base, end)
        c0 = time.process_time()
        t0 = time.perf_counter()
        mu.emu_start(start, stop)
        elapsed = time.perf_counter() - t0
        cpu = time.process_time() - c0
        rip = mu.reg_read(self.x86.UC_X86_REG_RIP)
        if rip != stop:
            raise RuntimeError(f"unicorn stopped at {rip:#x}, not {stop:#x}")
        return elapsed, cpu
