#!/usr/bin/env python3
"""Peer benchmark: guest MIPS of hvsim vs unicorn vs Bochs on the same loops.

    python3 bench/peers.py [--runs K] [--iterations N] [--only hvsim,unicorn,bochs]
                           [--workloads regloop,memmix] [--seconds S]
                           [--json FILE] [--no-install]

See bench/README.md for what is measured and how.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
GUESTS_DIR = BENCH_DIR / "guests"
REPO_DIR = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))

LOAD_ADDRESS = 0x100000
MAX_ITERATIONS = 2**31 - 1
PEERS = ["hvsim", "unicorn", "bochs"]
TOOLS = ["as", "ld", "objcopy", "nm"]


# ------------------------------------------------------------------ guests

@dataclass(frozen=True)
class Workload:
    name: str
    source: str
    formula: str
    count: object               # N -> instructions retired up to `stop`
    per_iteration: float        # instructions per iteration (for sizing)
    description: str


WORKLOADS = {
    # entry.s: mov rdi, N; call workload (2) + regloop.s: 4N + 2
    "regloop": Workload(
        "regloop", "regloop.s", "4N+4", lambda n: 4 * n + 4, 4.0,
        "add/add/dec/jnz register loop"),
    # entry.s (2) + memmix.s: 15N + ceil(N/2) + 5
    "memmix": Workload(
        "memmix", "memmix.s", "15N+ceil(N/2)+7",
        lambda n: 15 * n + (n + 1) // 2 + 7, 15.5,
        "load/store + call/push/pop/ret + cond. branch"),
}


@dataclass
class Payload:
    workload: str
    iterations: int
    bochs: bool
    code: bytes
    symbols: dict

    @property
    def start(self):
        return self.symbols["_start"]

    @property
    def stop(self):
        return self.symbols["stop"]

    @property
    def end(self):
        return self.symbols["__bss_end"]


def _run(cmd, cwd):
    proc = subprocess.run(cmd, cwd=cwd, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"`{' '.join(map(str, cmd))}` failed:\n"
                           f"{proc.stderr.strip()}")
    return proc.stdout


class Builder:
    """Assembles payloads with GNU as/ld (cached per workload/N/target)."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="hvsim-peers-"))
        self.cache = {}

    def payload(self, workload: str, iterations: int, bochs=False) -> Payload:
        key = (workload, iterations, bochs)
        if key in self.cache:
            return self.cache[key]
        if iterations < 1:
            raise ValueError("iterations must be >= 1")
        tag = f"{workload}-{iterations}-{'bochs' if bochs else 'flat'}"
        d = self.dir
        entry_o = d / f"{tag}.entry.o"
        work_o = d / f"{workload}.o"
        elf = d / f"{tag}.elf"
        flat = d / f"{tag}.bin"
        defs = ["--defsym", f"ITERATIONS={iterations}"]
        if bochs:
            defs += ["--defsym", "BOCHS=1"]
        _run(["as", "--64", *defs, "-o", entry_o,
              GUESTS_DIR / "entry.s"], d)
        if not work_o.exists():
            _run(["as", "--64", "-o", work_o,
                  GUESTS_DIR / WORKLOADS[workload].source], d)
        _run(["ld", "-m", "elf_x86_64", "-T", GUESTS_DIR / "payload.ld",
              "-o", elf, entry_o, work_o], d)
        _run(["objcopy", "-O", "binary", elf, flat], d)
        symbols = {}
        for line in _run(["nm", elf], d).splitlines():
            parts = line.split()
            if len(parts) == 3:
                symbols[parts[2]] = int(parts[0], 16)
        for required in ("_start", "stop", "__bss_end"):
            if required not in symbols:
                raise RuntimeError(f"symbol {required} missing in {elf}")
        if symbols["_start"] != LOAD_ADDRESS:
            raise RuntimeError("payload does not start at the load address")
        p = Payload(workload, iterations, bochs, flat.read_bytes(), symbols)
        self.cache[key] = p
        return p

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


# ----------------------------------------------------------------- results

@dataclass
class PeerResult:
    peer: str
    status: str = "ok"                 # ok | unavailable | error
    reason: str = ""
    iterations: int = 0
    instructions: int = 0
    times: list = field(default_factory=list)      # wall seconds per run
    cpu_times: list = field(default_factory=list)  # CPU seconds per run
    baseline_times: list = field(default_factory=list)  # bochs N=1 runs
    baseline_cpu_times: list = field(default_factory=list)
    baseline_instructions: int = 0
    mips: float | None = None          # from the median wall time
    mips_min: float | None = None
    mips_max: float | None = None
    mips_cpu: float | None = None      # from the median CPU time
    notes: list = field(default_factory=list)

    def finish_direct(self):
        """MIPS from the median time of directly timed runs."""
        n = self.instructions / 1e6
        self.mips = n / statistics.median(self.times)
        self.mips_min = n / max(self.times)
        self.mips_max = n / min(self.times)
        if self.cpu_times and min(self.cpu_times) > 0:
            self.mips_cpu = n / statistics.median(self.cpu_times)

    def finish_delta(self):
        """MIPS from median(N runs) - median(N=1 runs): boot cancels out."""
        n = (self.instructions - self.baseline_instructions) / 1e6
        big = statistics.median(self.times)
        small = statistics.median(self.baseline_times)
        if big <= small:
            raise RuntimeError("run with N iterations was not slower than "
                               "the baseline; raise --iterations")
        self.mips = n / (big - small)
        self.mips_min = n / (max(self.times) - small)
        self.mips_max = n / max(min(self.times) - small, 1e-9)
        if self.cpu_times and self.baseline_cpu_times:
            dc = (statistics.median(self.cpu_times)
                  - statistics.median(self.baseline_cpu_times))
            if dc > 0:
                self.mips_cpu = n / dc

    def to_json(self):
        d = dict(self.__dict__)
        return d


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def clamp_iterations(n: float) -> int:
    """N for the entry stub's `mov rdi, N` (kept within a signed imm32)."""
    return int(min(max(n, 1), MAX_ITERATIONS))


# ----------------------------------------------------------------- unicorn

def measure_unicorn(runner, builder, wl: Workload, runs, iterations,
                    seconds) -> PeerResult:
    res = PeerResult("unicorn")

    def timed(n):
        p = builder.payload(wl.name, n)
        return runner.time_run(p.code, LOAD_ADDRESS, p.start, p.stop, p.end)

    if iterations is None:
        n = 100_000
        while True:
            t, _ = timed(n)
            if t >= 0.1 or n >= 10**9:
                break
            n *= 10
        rate = wl.count(n) / t
        iterations = clamp_iterations(seconds * rate / wl.per_iteration)
    res.iterations = iterations
    res.instructions = wl.count(iterations)
    for i in range(runs):
        wall, cpu = timed(iterations)
        res.times.append(wall)
        res.cpu_times.append(cpu)
    res.finish_direct()
    return res


def verify_counts(runner, builder):
    """Check the analytic counts against unicorn's per-instruction hook."""
    problems = []
    checked = []
    for wl in WORKLOADS.values():
        for n in (1, 2, 3, 10, 101):
            p = builder.payload(wl.name, n)
            got = runner.count_instructions(p.code, LOAD_ADDRESS, p.start,
                                            p.stop, p.end)
            checked.append((wl.name, n, got))
            if got != wl.count(n):
                problems.append(f"{wl.name} N={n}: unicorn counted {got}, "
                                f"formula {wl.formula} gives {wl.count(n)}")
    return checked, problems


# ------------------------------------------------------------------- bochs

def measure_bochs(bochs, setup, builder, wl: Workload, runs, iterations,
                  seconds, workdir) -> PeerResult:
    res = PeerResult("bochs")
    images = {}

    def image(n):
        if n not in images:
            p = builder.payload(wl.name, n, bochs=True)
            images[n] = bochs.build_image(p.code, p.end, GUESTS_DIR,
                                          workdir, f"{wl.name}-{n}")
        return images[n]

    def run(n, timeout):
        r = bochs.run_image(setup, image(n), workdir, timeout)
        if not r.ok:
            raise RuntimeError(f"Bochs run failed (N={n}): {r.message}")
        return r

    tiny = 1
    first = run(tiny, 120)
    res.baseline_instructions = wl.count(tiny)
    if iterations is None:
        n = max(1, int(20e6 / wl.per_iteration))   # ~20M instructions
        while True:
            r = run(n, 300)
            net = r.seconds - first.seconds
            if net >= 0.3 or n >= 10**9:
                break
            n *= 5
        rate = (wl.count(n) - wl.count(tiny)) / max(net, 1e-3)
        iterations = clamp_iterations(seconds * rate / wl.per_iteration)
    res.iterations = iterations
    res.instructions = wl.count(iterations)
    budget = 60 + 20 * res.instructions / 10e6   # very generous (10 MIPS)
    ticks = []
    for i in range(runs):
        small = run(tiny, 120)
        big = run(iterations, budget)
        res.baseline_times.append(small.seconds)
        res.baseline_cpu_times.append(small.cpu)
        res.times.append(big.seconds)
        res.cpu_times.append(big.cpu)
        if small.tick is not None and big.tick is not None:
            ticks.append(big.tick - small.tick)
    res.finish_delta()
    net = statistics.median(res.times) - statistics.median(res.baseline_times)
    if net < 0.3:
        res.notes.append(f"WARNING: only {net:.3f}s of guest execution per "
                         f"run, boot-time jitter dominates; raise --iterations")
    expected = res.instructions - res.baseline_instructions
    if ticks:
        if all(t == expected for t in ticks):
            res.notes.append(f"Bochs's tick counter advanced by exactly "
                             f"{expected:,} more in the N runs than in the "
                             f"N=1 runs = the instruction difference")
        else:
            res.notes.append(f"Bochs tick deltas {sorted(set(ticks))} vs "
                             f"instruction delta {expected}")
    res.notes.append(f"boot+exit takes {statistics.median(res.baseline_times):.3f}s "
                     f"(median of {len(res.baseline_times)} runs with N=1); "
                     f"display_library={setup.display}")
    return res


# ------------------------------------------------------------------- hvsim

class HvsimWorker:
    """A child process that imports x86 and times runs on request.

    Running hvsim out of process keeps a crash (or a hang) in a simulator
    under construction from taking the whole benchmark down.
    """

    def __init__(self):
        self.errfile = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--hvsim-worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self.errfile, cwd=str(REPO_DIR))

    def request(self, req: dict, timeout: float) -> dict:
        try:
            self.proc.stdin.write((json.dumps(req) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            return {"error": self._death()}
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            self.close()
            return {"error": f"hvsim did not answer within {timeout:.0f}s "
                             f"(killed)"}
        line = self.proc.stdout.readline()
        if not line:
            return {"error": self._death()}
        return json.loads(line)

    def _death(self):
        try:
            rc = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            rc = None
        self.errfile.seek(0)
        tail = self.errfile.read().decode(errors="replace").strip()
        tail = " | ".join(tail.splitlines()[-4:])
        how = (f"killed by signal {-rc}" if rc is not None and rc < 0
               else f"exit status {rc}")
        return f"hvsim worker died ({how}): {tail}"

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _hvsim_worker_main():
    """Protocol: one JSON request per stdin line, one JSON reply per line."""
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)               # anything hvsim prints goes to stderr
    for extra in (REPO_DIR, REPO_DIR / "src"):
        if extra.is_dir() and str(extra) not in sys.path:
            sys.path.insert(0, str(extra))
    x86 = None
    unavailable = None
    try:
        import x86 as _x86
        x86 = _x86
        if not hasattr(x86, "Machine"):
            unavailable = "module x86 has no Machine"
    except Exception as exc:
        unavailable = f"import x86 failed: {type(exc).__name__}: {exc}"
    for line in sys.stdin:
        req = json.loads(line)
        if unavailable:
            proto.write(json.dumps({"unavailable": unavailable}) + "\n")
            continue
        try:
            reply = _hvsim_time(x86, req)
        except Exception as exc:
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        proto.write(json.dumps(reply) + "\n")


def _hvsim_time(x86, req):
    code = Path(req["payload"]).read_bytes()
    expected = req["expected"]
    times, cpu_times, icounts = [], [], []
    for _ in range(req["runs"]):
        m = x86.Machine(memory_size=64 << 20)
        if not hasattr(m, "load") or not hasattr(m, "cpu"):
            return {"unavailable": "x86.Machine lacks load()/cpu"}
        m.load(code, address=LOAD_ADDRESS, mode="long")
        cpu = m.cpu
        if not hasattr(cpu, "run"):
            return {"unavailable": "Machine.cpu lacks run()"}
        before = getattr(cpu, "icount", 0) or 0
        c0 = time.process_time()
        t0 = time.perf_counter()
        stop = cpu.run(max_instructions=expected + 64)
        elapsed = time.perf_counter() - t0
        cpu_s = time.process_time() - c0
        reason = getattr(stop, "reason", None)
        if reason not in ("hlt", "exit", "shutdown"):
            return {"error": f"guest did not stop normally: reason={reason!r}"
                             f" after {getattr(cpu, 'icount', '?')} "
                             f"instructions (expected {expected})"}
        icount = getattr(cpu, "icount", None)
        icounts.append(None if icount is None else icount - before)
        times.append(elapsed)
        cpu_times.append(cpu_s)
    return {"times": times, "cpu_times": cpu_times, "icounts": icounts,
            "reason": reason}


def measure_hvsim(worker, builder, wl: Workload, runs, iterations,
                  seconds) -> PeerResult:
    res = PeerResult("hvsim")

    def timed(n, k, timeout):
        p = builder.payload(wl.name, n)
        path = builder.dir / f"{wl.name}-{n}.hvsim.bin"
        path.write_bytes(p.code)
        return worker.request({"payload": str(path), "runs": k,
                               "expected": wl.count(n)}, timeout)

    def bad(reply):
        if "unavailable" in reply:
            res.status, res.reason = "unavailable", reply["unavailable"]
            return True
        if "error" in reply:
            res.status, res.reason = "error", reply["error"]
            return True
        return False

    if iterations is None:
        n = 1000
        while True:
            reply = timed(n, 1, 120)
            if bad(reply):
                return res
            t = reply["times"][0]
            if t >= 0.1 or n >= 10**9:
                break
            n *= 10 if t < 0.02 else 4
        rate = wl.count(n) / t
        iterations = clamp_iterations(seconds * rate / wl.per_iteration)
    res.iterations = iterations
    res.instructions = wl.count(iterations)
    # generous limit: 20x the target time, or 0.2 MIPS for a fixed N
    limit = 120 + runs * max(seconds * 20, res.instructions / 2e5)
    reply = timed(iterations, runs, limit)
    if bad(reply):
        return res
    res.times = reply["times"]
    res.cpu_times = reply.get("cpu_times", [])
    res.finish_direct()
    counts = set(c for c in reply["icounts"] if c is not None)
    if counts:
        c = counts.pop()
        if c - res.instructions in (0, 1):   # +1 if the hlt is counted
            res.notes.append(f"m.cpu.icount = {c:,} agrees with "
                             f"{wl.formula}" + (" + the hlt" if c > res.instructions else ""))
        else:
            res.notes.append(f"WARNING: icount {c} != {res.instructions} "
                             f"({wl.formula})")
    return res


# ------------------------------------------------------------------- output

CLOCK = "wall"          # which MIPS figure the main table shows


def _mips(r: PeerResult):
    return r.mips_cpu if CLOCK == "cpu" else r.mips


def fmt_mips(r: PeerResult | None):
    if r is None:
        return "-"
    if r.status != "ok":
        return f"{r.status}: {r.reason}"
    return "-" if _mips(r) is None else f"{_mips(r):.2f}"


def fmt_ratio(a: PeerResult | None, b: PeerResult | None):
    if not a or not b or a.status != "ok" or b.status != "ok":
        return "-"
    if not _mips(a) or not _mips(b):
        return "-"
    return f"{_mips(a) / _mips(b):.3f}x"


def fmt_count(n):
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= div:
            return f"{n / div:.3g}{unit}"
    return str(n)


def print_tables(results, runs, selected, meta):
    headers = ["workload", "instructions", "hvsim MIPS", "unicorn MIPS",
               "Bochs MIPS", "hvsim/Bochs", "hvsim/unicorn"]
    rows = []
    for name, per in results.items():
        counts = sorted({r.instructions for r in per.values()
                         if r.status == "ok"})
        if len(counts) == 1:
            icol = f"{counts[0]:,} ({WORKLOADS[name].formula})"
        else:
            icol = f"{WORKLOADS[name].formula} (N per peer below)"
        rows.append([name, icol, fmt_mips(per.get("hvsim")),
                     fmt_mips(per.get("unicorn")), fmt_mips(per.get("bochs")),
                     fmt_ratio(per.get("hvsim"), per.get("bochs")),
                     fmt_ratio(per.get("hvsim"), per.get("unicorn"))])
    dheaders = ["workload", "peer", "N", "instructions", "runs",
                "median wall s", "MIPS wall (min..max)", "MIPS cpu"]
    drows = []
    notes = []
    for name, per in results.items():
        for peer in PEERS:
            r = per.get(peer)
            if r is None:
                continue
            if r.status != "ok":
                drows.append([name, peer, "-", "-", "-", "-", r.status, "-"])
                continue
            med = statistics.median(r.times)
            if r.baseline_times:
                med_s = f"{med:.3f} - {statistics.median(r.baseline_times):.3f}"
            else:
                med_s = f"{med:.3f}"
            drows.append([name, peer, f"{r.iterations:,}",
                          f"{r.instructions:,}", str(len(r.times)), med_s,
                          f"{r.mips:.2f} ({r.mips_min:.2f}..{r.mips_max:.2f})",
                          "-" if r.mips_cpu is None else f"{r.mips_cpu:.2f}"])
            notes += [f"{name}/{peer}: {n}" for n in r.notes]
    title = (f"Guest MIPS ({'CPU time' if CLOCK == 'cpu' else 'wall clock'}), "
             f"median of {runs} run(s) per peer and workload")
    dtitle = ("Details (Bochs: median wall s of the N runs - of the N=1 "
              "runs; MIPS cpu: same from CPU time)")
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        Console = None
    if Console is not None:
        console = Console(width=max(110, shutil.get_terminal_size().columns))
        for ttl, hs, rs in ((title, headers, rows), (dtitle, dheaders, drows)):
            t = Table(title=ttl)
            for h in hs:
                t.add_column(h, overflow="fold")
            for row in rs:
                t.add_row(*row)
            console.print(t)
    else:
        print(title)
        _plain(headers, rows)
        print()
        print(dtitle)
        _plain(dheaders, drows)
    for n in notes:
        print(f"  - {n}")
    check = meta.get("count_check", {})
    if check.get("problems"):
        for p in check["problems"]:
            print(f"  ! instruction-count MISMATCH: {p}")
    elif check.get("checked"):
        print("  - instruction counts: formulas agree with unicorn's code "
              "hook for N = 1, 2, 3, 10, 101")
    load = meta.get("loadavg_start"), meta.get("loadavg_end")
    if None not in load:
        print(f"  - 1-min load average at start {load[0]:.2f}, at end "
              f"{load[1]:.2f} on {os.cpu_count()} CPUs"
              + ("  (busy machine: wall-clock figures are noisy; "
                 "compare MIPS cpu)"
                 if load[0] > (os.cpu_count() or 1) - 0.5 else ""))


def _plain(headers, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths))
    print(line)
    print("-" * len(line))
    for row in rows:
        print("  ".join(str(x).ljust(w) for x, w in zip(row, widths)))


# --------------------------------------------------------------------- main

def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5,
                    help="timed runs per peer and workload (median; "
                         "default 5)")
    ap.add_argument("--iterations", type=int, default=None,
                    help="loop iterations N for every peer (default: chosen "
                         "per peer so one run takes about --seconds)")
    ap.add_argument("--seconds", type=float, default=1.5,
                    help="target seconds of guest execution per timed run "
                         "when N is chosen automatically (default 1.5)")
    ap.add_argument("--only", default=",".join(PEERS),
                    help="comma-separated peers (hvsim,unicorn,bochs)")
    ap.add_argument("--workloads", default=",".join(WORKLOADS),
                    help="comma-separated workloads (regloop,memmix)")
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                    help="time base of the main table: wall clock (default) "
                         "or the peer process's CPU time, which is steadier "
                         "on a busy machine; the details show both")
    ap.add_argument("--json", metavar="FILE",
                    help="also write the figures as JSON to FILE")
    ap.add_argument("--no-install", action="store_true",
                    help="do not pip/apt-get install missing peers")
    ap.add_argument("--hvsim-worker", action="store_true",
                    help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.only = [p.strip().lower() for p in args.only.split(",") if p.strip()]
    for p in args.only:
        if p not in PEERS:
            ap.error(f"unknown peer {p!r} (choose from {', '.join(PEERS)})")
    args.workloads = [w.strip() for w in args.workloads.split(",")
                      if w.strip()]
    for w in args.workloads:
        if w not in WORKLOADS:
            ap.error(f"unknown workload {w!r} "
                     f"(choose from {', '.join(WORKLOADS)})")
    if args.runs < 1:
        ap.error("--runs must be >= 1")
    if args.iterations is not None and not 1 <= args.iterations <= MAX_ITERATIONS:
        ap.error(f"--iterations must be in 1..{MAX_ITERATIONS}")
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.hvsim_worker:
        _hvsim_worker_main()
        return 0
    global CLOCK
    CLOCK = args.clock
    t_start = time.perf_counter()
    results = {w: {} for w in args.workloads}
    meta = {"python": sys.version.split()[0], "machine": platform.machine(),
            "processor": _cpu_name(), "runs": args.runs,
            "iterations": args.iterations, "seconds": args.seconds,
            "clock": args.clock,
            "peers": args.only}
    try:
        meta["loadavg_start"] = os.getloadavg()[0]
    except OSError:
        pass
    try:
        meta["hvsim_git"] = subprocess.run(
            ["git", "-C", str(REPO_DIR), "describe", "--always", "--dirty"],
            capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception:
        pass

    def mark_all(peer, status, reason):
        for w in args.workloads:
            results[w][peer] = PeerResult(peer, status, reason)

    missing = [t for t in TOOLS if not shutil.which(t)]
    if missing:
        reason = f"GNU binutils missing: {', '.join(missing)}"
        log(f"[setup] {reason}")
        for p in args.only:
            mark_all(p, "unavailable", reason)
        finish(args, results, meta, t_start)
        return 0
    builder = Builder()
    try:
        # -- unicorn: needed for the count check even when not benchmarked
        runner = None
        import _unicorn
        uc, why = _unicorn.ensure_unicorn(
            not args.no_install and "unicorn" in args.only)
        if uc is not None:
            runner = _unicorn.UnicornRunner(uc)
            meta["unicorn_version"] = getattr(uc, "__version__", "?")
            try:
                checked, problems = verify_counts(runner, builder)
            except Exception as exc:
                checked, problems = [], [f"count check failed: {exc}"]
            meta["count_check"] = {"checked": checked, "problems": problems}
            if problems:
                for p in problems:
                    log(f"[verify] MISMATCH {p}")
            else:
                log(f"[verify] instruction-count formulas agree with "
                    f"unicorn's code hook for N in 1,2,3,10,101")
        else:
            log(f"[unicorn] unavailable: {why}")
            meta["count_check"] = {"skipped": why}

        for wname in args.workloads:
            wl = WORKLOADS[wname]
            log(f"== {wname}: {wl.description}; {wl.formula} instructions")

        if "hvsim" in args.only:
            worker = HvsimWorker()
            try:
                for wname in args.workloads:
                    log(f"[hvsim] {wname} ...")
                    r = measure_hvsim(worker, builder, WORKLOADS[wname],
                                      args.runs, args.iterations,
                                      args.seconds)
                    results[wname]["hvsim"] = r
                    _progress(r)
                    if r.status == "unavailable":
                        for other in args.workloads:
                            results[other].setdefault(
                                "hvsim", PeerResult("hvsim", r.status,
                                                    r.reason))
                        break
                    if r.status == "error" and worker.proc.poll() is not None:
                        worker = HvsimWorker()      # restart after a crash
            finally:
                worker.close()

        if "unicorn" in args.only:
            if runner is None:
                mark_all("unicorn", "unavailable", why)
            else:
                for wname in args.workloads:
                    log(f"[unicorn] {wname} ...")
                    try:
                        r = measure_unicorn(runner, builder, WORKLOADS[wname],
                                            args.runs, args.iterations,
                                            args.seconds)
                    except Exception as exc:
                        r = PeerResult("unicorn", "error",
                                       f"{type(exc).__name__}: {exc}")
                    results[wname]["unicorn"] = r
                    _progress(r)

        if "bochs" in args.only:
            import _bochs
            setup, why_b = _bochs.ensure_bochs(not args.no_install, log)
            if setup is None:
                log(f"[bochs] unavailable: {why_b}")
                mark_all("bochs", "unavailable", why_b)
            else:
                meta["bochs"] = {"binary": setup.binary, "bios": setup.bios,
                                 "vgabios": setup.vgabios,
                                 "debugger_build": setup.debugger}
                workdir = _bochs.new_workdir()
                try:
                    for wname in args.workloads:
                        log(f"[bochs] {wname} ...")
                        try:
                            r = measure_bochs(_bochs, setup, builder,
                                              WORKLOADS[wname], args.runs,
                                              args.iterations, args.seconds,
                                              workdir)
                        except Exception as exc:
                            r = PeerResult("bochs", "error",
                                           f"{type(exc).__name__}: {exc}")
                        results[wname]["bochs"] = r
                        _progress(r)
                    meta["bochs"]["display_library"] = setup.display
                finally:
                    shutil.rmtree(workdir, ignore_errors=True)
    finally:
        builder.cleanup()
    finish(args, results, meta, t_start)
    return 0


def _progress(r: PeerResult):
    if r.status == "ok":
        log(f"   {r.peer}: {r.mips:.2f} MIPS (N={r.iterations:,}, "
            f"{len(r.times)} runs)")
    else:
        log(f"   {r.peer}: {r.status}: {r.reason}")


def _cpu_name():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def finish(args, results, meta, t_start):
    meta["wall_seconds"] = round(time.perf_counter() - t_start, 2)
    try:
        meta["loadavg_end"] = os.getloadavg()[0]
    except OSError:
        pass
    print_tables(results, args.runs, args.only, meta)
    print(f"total wall time {meta['wall_seconds']:.1f}s")
    if args.json:
        doc = {"meta": meta,
               "workloads": {w: {"formula": WORKLOADS[w].formula,
                                 "peers": {p: r.to_json()
                                           for p, r in per.items()}}
                             for w, per in results.items()}}
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    sys.exit(main())
