"""Build the freestanding C test guests (tests/guests/NAME.c) into ELF64 images.

    from tests.guests.build import build_guest     # or load this file by path
    elf_path = build_guest("hello")

The guest is compiled with gcc, freestanding, with start.S as its entry stub
and guest.ld as its linker script (program at 0x200000, entry _start).  The
result is cached under the system temporary directory, keyed by a hash of the
sources, the flags and the compiler, so repeated test runs do not recompile.

Run as a script to print the path of a built guest:
``python tests/guests/build.py [NAME] [--host-test]``.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

__all__ = ["build_guest", "GUEST_DIR", "CFLAGS", "GuestBuildError"]

GUEST_DIR = pathlib.Path(__file__).resolve().parent

# The project's guest flags.  The second group pins things distributions
# change by default: the base instruction set (no POPCNT/BMI from a newer
# -march), no CET endbr64 / notrack prefixes, no unwind tables, no build-id
# note, and no turning of the mem* loops into calls to themselves.  An input
# section guest.ld does not place is an error rather than put somewhere.
CFLAGS = (
    "-ffreestanding", "-mgeneral-regs-only", "-nostdlib", "-static", "-fno-pic", "-no-pie",
    "-fno-stack-protector", "-mno-red-zone", "-O2",
    "-march=x86-64", "-mtune=generic", "-fcf-protection=none",
    "-fno-asynchronous-unwind-tables", "-fno-unwind-tables",
    "-fno-tree-loop-distribute-patterns", "-Wl,--build-id=none", "-Wl,--orphan-handling=error",
    "-Wall", "-Wextra",
)


class GuestBuildError(RuntimeError):
    """The compiler is missing or failed; the message holds its output."""


def build_guest(name: str = "hello", outdir=None, *, host_test: bool = False) -> pathlib.Path:
    """Compile tests/guests/NAME.c with start.S and guest.ld; return the ELF path.

    With ``outdir`` the ELF is written there as NAME.elf (always rebuilt);
    otherwise into a cache directory under the temporary directory, reused
    while the sources, flags and compiler stay the same.

    ``host_test=True`` builds a Linux x86-64 executable instead (defines
    HVSIM_HOST_TEST, default Linux layout, no guest.ld), to check a guest's
    expected output on an x86-64 Linux host without the simulator.
    """
    source = GUEST_DIR / f"{name}.c"
    if not source.is_file():
        raise FileNotFoundError(f"no guest source {source}")
    cc = _find_compiler()
    inputs = [GUEST_DIR / "start.S", source]
    argv = [cc, *CFLAGS]
    if host_test:
        argv.append("-DHVSIM_HOST_TEST")
    else:
        argv += ["-T", str(GUEST_DIR / "guest.ld")]
    argv += [str(p) for p in inputs]
    suffix = ".host" if host_test else ".elf"

    if outdir is not None:
        out = pathlib.Path(outdir) / f"{name}{suffix}"
        out.parent.mkdir(parents=True, exist_ok=True)
        _compile(argv, out)
        return out

    compiler = os.stat(cc)           # a reinstalled compiler gets a new cache entry
    key = hashlib.sha256()
    for part in (*argv, f"{compiler.st_size}:{compiler.st_mtime_ns}",
                 *(p.read_bytes() for p in inputs), (GUEST_DIR / "guest.ld").read_bytes()):
        key.update(part if isinstance(part, bytes) else part.encode())
        key.update(b"\0")
    cache = pathlib.Path(tempfile.gettempdir()) / "hvsim-guests" / key.hexdigest()[:24]
    out = cache / f"{name}{suffix}"
    if not out.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        _compile(argv, out)
    return out


def _find_compiler() -> str:
    """HVSIM_GUEST_CC if set, else an x86-64 cross gcc, else the native gcc."""
    candidates = [os.environ["HVSIM_GUEST_CC"]] if os.environ.get("HVSIM_GUEST_CC") \
        else ["x86_64-linux-gnu-gcc", "gcc"]
    for candidate in candidates:
        path = shutil.which(candidate)
        if path:
            return path
    raise GuestBuildError(f"no C compiler found (tried {', '.join(candidates)}); "
                          f"install gcc, e.g. `apt-get install gcc`")


def _compile(argv: list[str], out: pathlib.Path) -> None:
    # Link to a private name, then rename: concurrent builds never see a
    # half-written file.
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    os.close(fd)
    try:
        run = subprocess.run([*argv, "-o", tmp], capture_output=True, text=True, check=False)
        if run.returncode != 0:
            raise GuestBuildError(f"guest build failed: {' '.join(argv)}\n"
                                  f"{run.stdout}{run.stderr}")
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    print(build_guest(args[0] if args else "hello", host_test="--host-test" in sys.argv))
