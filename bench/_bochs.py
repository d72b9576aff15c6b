"""Bochs peer for bench/peers.py: boot a floppy image of our own, headless.

What Debian 12's Bochs 2.7 (packages bochs, bochs-term, bochsbios, vgabios)
needs in order to run from a script and quit by itself:

* It has no `nogui` display library ("display library 'nogui' not
  available").  The `term` library (package bochs-term) works without any
  terminal: when stdin is not a tty it opens a pseudo-terminal of its own
  (/dev/ptmx) and draws there.  It does need TERM to name a terminfo entry,
  otherwise ncurses fails with "Error opening terminal"; we set TERM=xterm.
* /usr/bin/bochs is a wrapper for `bochs-bin -q`.  The binary is built with
  the internal debugger, so it stops at a `<bochs:1>` prompt before the first
  instruction and quits when that prompt reads EOF.  We pass `-rc FILE`
  with a `c` (continue) command.  (Detected from `--help`: only debugger
  builds list `-rc`.)
* Quitting: writing the bytes "Shutdown" to port 0x8900 (the `unmapped`
  plugin) makes Bochs panic with "Shutdown port: shutdown requested" and,
  with `panic: action=fatal`, exit (status 1).  That line in the log is our
  success marker.  Fallback: a triple fault with
  `cpu: reset_on_triple_fault=0` is also a fatal panic.  `hlt` with IF=0
  only logs "HLT instruction with IF=0" and spins forever, and the term GUI
  catches SIGTERM ("sig 15 caught") without exiting, so timeouts use
  SIGKILL on the process group.
* `clock: sync=none` lets emulated time follow the instruction count, so the
  run goes as fast as the CPU emulation allows.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

APT_PACKAGES = ["bochs", "bochs-term", "bochsbios", "vgabios"]
BIOS_CANDIDATES = [
    "/usr/share/bochs/BIOS-bochs-latest",
    "/usr/local/share/bochs/BIOS-bochs-latest",
]
VGABIOS_CANDIDATES = [
    "/usr/share/vgabios/vgabios.bin",
    "/usr/share/bochs/VGABIOS-lgpl-latest",
    "/usr/local/share/bochs/VGABIOS-lgpl-latest",
]
DISPLAY_LIBRARIES = ["nogui", "term"]
SUCCESS_MARKER = "Shutdown port: shutdown requested"
FLOPPY_SIZE = 1474560
STAGE2_LOAD = 0x7E00
STAGE2_LIMIT = 0x70000          # keep the loaded image below the stack


@dataclass
class BochsSetup:
    binary: str
    bios: str
    vgabios: str
    debugger: bool
    display: str | None = None          # chosen on first run
    notes: list = field(default_factory=list)


def _find_file(candidates):
    for path in candidates:
        if os.path.isfile(path):
            return path
    return None


def _find_binary():
    return shutil.which("bochs-bin") or shutil.which("bochs")


def _probe():
    binary = _find_binary()
    if not binary:
        return None, "no bochs binary on PATH"
    bios = _find_file(BIOS_CANDIDATES)
    if not bios:
        return None, "Bochs BIOS image not found (package bochsbios)"
    vga = _find_file(VGABIOS_CANDIDATES)
    if not vga:
        return None, "VGA BIOS image not found (package vgabios)"
    try:
        help_text = subprocess.run(
            [binary, "--help"], stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=30)
        text = help_text.stdout + help_text.stderr
    except Exception as exc:
        return None, f"`{binary} --help` failed: {exc}"
    debugger = "-rc filename" in text
    return BochsSetup(binary, bios, vga, debugger), None


def _term_plugin_present():
    for d in ("/usr/lib/x86_64-linux-gnu/bochs/plugins",
              "/usr/lib/bochs/plugins", "/usr/local/lib/bochs/plugins"):
        if os.path.exists(os.path.join(d, "libbx_term_gui.so")):
            return True
    return False


def _apt_install(log):
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "not root, cannot apt-get install " + " ".join(APT_PACKAGES)
    if not shutil.which("apt-get"):
        return "no apt-get on this system"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    steps = [["apt-get", "update"],
             ["apt-get", "install", "-y", "--no-install-recommends",
              *APT_PACKAGES]]
    for cmd in steps:
        log(f"[bochs] running: {' '.join(cmd)}")
        try:
            proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, env=env,
                                  capture_output=True, text=True, timeout=900)
        except Exception as exc:
            return f"`{' '.join(cmd)}` could not run: {exc}"
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:]
            return (f"`{' '.join(cmd)}` failed (exit {proc.returncode}): "
                    f"{tail[0] if tail else ''}")
    return None


def ensure_bochs(allow_install=True, log=lambda s: print(s, file=sys.stderr,
                                                        flush=True)):
    """Return (BochsSetup, None) or (None, reason)."""
    setup, reason = _probe()
    if setup is not None and _term_plugin_present():
        return setup, None
    if setup is not None and not allow_install:
        return setup, None      # maybe nogui is compiled in; try it
    if not allow_install:
        return None, reason + "; installing disabled"
    why = reason or "term display plugin (bochs-term) missing"
    log(f"[bochs] {why}; installing Debian packages ...")
    failure = _apt_install(log)
    setup2, reason2 = _probe()
    if setup2 is not None:
        return setup2, None
    if setup is not None:
        return setup, None
    return None, failure or reason2


# --------------------------------------------------------------- the image

def _run_tool(cmd, cwd):
    proc = subprocess.run(cmd, cwd=cwd, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed:\n"
                           f"{proc.stderr.strip()}")


def build_image(payload: bytes, bss_end: int, guests_dir: Path,
                workdir: Path, name: str) -> Path:
    """Floppy image = boot.s (boot sector + long-mode stage 2) + payload."""
    workdir.mkdir(parents=True, exist_ok=True)
    payload_path = workdir / f"{name}.payload.bin"
    payload_path.write_bytes(payload)
    # Upper bound of the stage-2 size: its code (< 512 bytes) + payload.
    stage2_bytes = 512 + 16 + len(payload)
    sectors = (stage2_bytes + 511) // 512
    if STAGE2_LOAD + sectors * 512 > STAGE2_LIMIT:
        raise RuntimeError(f"payload too large for the boot loader "
                           f"({len(payload)} bytes)")
    obj = workdir / f"{name}.boot.o"
    binary = workdir / f"{name}.boot.bin"
    # .incbin looks in the -I directory; give it the name it expects.
    incdir = workdir / f"{name}.inc"
    incdir.mkdir(exist_ok=True)
    shutil.copyfile(payload_path, incdir / "payload.bin")
    _run_tool(["as", "--64", "-I", str(incdir),
               "--defsym", f"STAGE2_SECTORS={sectors}",
               "--defsym", f"PAYLOAD_BSS_END={bss_end:#x}",
               "-o", str(obj), str(guests_dir / "boot.s")], workdir)
    _run_tool(["ld", "-m", "elf_x86_64", "-Ttext=0x7c00", "--oformat",
               "binary", "-o", str(binary), str(obj)], workdir)
    data = binary.read_bytes()
    if len(data) < 512 or data[510:512] != b"\x55\xAA":
        raise RuntimeError("boot sector signature missing")
    if len(data) > 512 + sectors * 512:
        raise RuntimeError("stage 2 larger than the sectors loaded")
    image = workdir / f"{name}.img"
    image.write_bytes(data + bytes(FLOPPY_SIZE - len(data)))
    return image


# ------------------------------------------------------------------ running

BOCHSRC = """\
# generated by bench/_bochs.py
config_interface: textconfig
display_library: {display}
megs: 64
romimage: file="{bios}"
vgaromimage: file="{vgabios}"
floppya: 1_44="{image}", status=inserted
boot: floppy
floppy_bootsig_check: disabled=0
log: "{log}"
panic: action=fatal
error: action=report
info: action=report
debug: action=ignore
cpu: reset_on_triple_fault=0
cpuid: x86_64=1
clock: sync=none, time0=local
mouse: enabled=0
plugin_ctrl: speaker=0, parallel=0, serial=0, gameport=0, extfpuirq=0
"""


@dataclass
class BochsRun:
    ok: bool
    seconds: float              # wall time, spawn to exit
    cpu: float                  # user + system CPU time of the Bochs process
    tick: int | None            # Bochs's tick counter at the shutdown write
    message: str


_UNAVAILABLE_DISPLAY = re.compile(r"display library '(\w+)' not available")
_SHUTDOWN_TICK = re.compile(r"^(\d+)p\[UNMAP\s*\] >>PANIC<< Shutdown port")


def _tail(path: Path, lines=6):
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])


def run_image(setup: BochsSetup, image: Path, workdir: Path,
              timeout: float) -> BochsRun:
    """Boot the image once; wall time from spawn to exit."""
    displays = [setup.display] if setup.display else DISPLAY_LIBRARIES
    last = None
    for display in displays:
        result = _run_once(setup, image, workdir, timeout, display)
        if result.ok:
            setup.display = display
            return result
        last = result
        if display != displays[-1] and _UNAVAILABLE_DISPLAY.search(
                result.message):
            continue            # try the next display library
        break
    return last


def _run_once(setup, image, workdir, timeout, display) -> BochsRun:
    log = workdir / "bochs.log"
    out = workdir / "bochs.out"
    rc_file = workdir / "bochs.rc"
    cfg = workdir / "bochsrc"
    for stale in (log, out):
        if stale.exists():
            stale.unlink()
    cfg.write_text(BOCHSRC.format(display=display, bios=setup.bios,
                                  vgabios=setup.vgabios, image=image,
                                  log=log))
    rc_file.write_text("c\nquit\n")
    cmd = [setup.binary]
    if os.path.basename(setup.binary) == "bochs-bin":
        cmd.append("-q")        # the Debian wrapper would add it
    cmd += ["-f", str(cfg)]
    if setup.debugger:
        cmd += ["-rc", str(rc_file)]
    env = dict(os.environ)
    if not env.get("TERM") or env.get("TERM") == "dumb":
        env["TERM"] = "xterm"
    env.pop("DISPLAY", None)
    with open(out, "wb") as out_f:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=workdir, stdin=subprocess.DEVNULL,
                                stdout=out_f, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True)
        # SIGTERM is caught and ignored by the term GUI: time out with
        # SIGKILL to the whole process group.
        timed_out = []

        def kill():
            timed_out.append(True)
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            # wait4 gives the child's CPU time along with its exit status.
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        elapsed = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        cpu = usage.ru_utime + usage.ru_stime
    if timed_out:
        return BochsRun(False, float("nan"), float("nan"), None,
                        f"timed out after {timeout:.0f}s (killed); log: "
                        f"{_tail(log)}")
    try:
        log_text = log.read_text(errors="replace")
    except OSError:
        log_text = ""
    out_text = out.read_text(errors="replace") if out.exists() else ""
    if SUCCESS_MARKER in log_text or SUCCESS_MARKER in out_text:
        tick = None
        for line in log_text.splitlines():
            m = _SHUTDOWN_TICK.match(line)
            if m:
                tick = int(m.group(1))
        return BochsRun(True, elapsed, cpu, tick, "ok")
    m = _UNAVAILABLE_DISPLAY.search(log_text + out_text)
    if m:
        return BochsRun(False, elapsed, cpu, None, m.group(0))
    msg = re.search(r"Bochs is exiting with the following message:\s*\n"
                    r"(.*)", out_text)
    reason = msg.group(1).strip() if msg else _tail(log) or _tail(out)
    return BochsRun(False, elapsed, cpu, None,
                    f"exit {proc.returncode} without the shutdown marker: "
                    f"{reason}")


def new_workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="hvsim-bochs-"))
