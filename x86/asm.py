"""Assemble Intel-syntax x86 text into a flat binary with GNU binutils.

This is the project's way of writing guest code as text (tests, docs, labs)::

    from x86 import asm
    code = asm.assemble('''
        mov ecx, 0x480        # IA32_VMX_BASIC
        rdmsr
        vmxon [rip + region]
        hlt
    region:
        .quad 0x1000
    ''', address=0x7000)

The text is GNU as syntax in Intel flavour (``.intel_syntax noprefix``):

* ``#`` starts a comment; ``;`` *separates statements* (it is not a comment as
  in NASM, so ``nop ; comment`` is an error).
* ``mov rax, label`` *loads from* label; ``mov rax, offset label`` loads its
  address.  ``[label]`` is an absolute address; ``[rip + label]`` is
  RIP-relative.
* Warnings are fatal (``--fatal-warnings``): an immediate that GNU as would
  silently shorten, for example, is reported as an error instead.

The source is assembled with ``as --64`` whatever ``bits`` is; a ``.code16``
or ``.code32`` directive switches the encoder to that mode (operand and
address sizes, REX unavailable).  The object is then linked with ``ld`` into a
flat binary whose first byte belongs at ``address``, so labels and absolute
references resolve to their final addresses.  All sections are concatenated
in one image, in the order text, rodata, data, bss (as zero bytes), then any
other section.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import tempfile

__all__ = ["assemble", "AssemblyError", "BinutilsNotFoundError", "clear_cache"]

_MODE_DIRECTIVE = {16: ".code16", 32: ".code32", 64: ".code64"}

# The wrapper put in front of the user's text; error line numbers are shifted
# back by its length.
_PREAMBLE = ".intel_syntax noprefix\n{mode}\n"
_PREAMBLE_LINES = 2

# Candidates, best first: a cross toolchain is always right for x86-64; plain
# `as`/`ld` are the native ones on an x86-64 host.
_TOOL_CANDIDATES = {
    "as": ("x86_64-linux-gnu-as", "x86_64-elf-as", "as"),
    "ld": ("x86_64-linux-gnu-ld", "x86_64-elf-ld", "ld"),
}
_TOOL_ENV = {"as": "HVSIM_AS", "ld": "HVSIM_LD"}

_LINKER_SCRIPT = """\
SECTIONS
{{
  /DISCARD/ : {{ *(.note.GNU-stack) *(.comment) *(.note.gnu.property) }}
  . = {address:#x};
  .flat : {{
    *(.text .text.*)
    *(.rodata .rodata.*)
    *(.data .data.*)
    *(.bss .bss.*) *(COMMON)
    *(*)
  }}
}}
"""

# "input.s:12: Error: no such instruction: `foo'" (the line number is absent
# from summaries such as "input.s: Error: 1 warning, treating warnings as errors")
_DIAG_RE = re.compile(r"^(?P<file>[^:]*):(?:(?P<line>\d+):)? (?P<kind>Error|Warning): (?P<msg>.*)$")


class AssemblyError(ValueError):
    """The assembler or linker rejected the source.

    ``str(error)`` lists each diagnostic as ``line N: Error: ...`` with N the
    line number in the text given to :func:`assemble` (1-based), followed by
    that line of source.  ``.diagnostics`` holds ``(line, kind, message)``
    tuples (``line`` is None when GNU as gave no position).
    """

    def __init__(self, message: str, diagnostics: tuple = ()):
        super().__init__(message)
        self.diagnostics = diagnostics


class BinutilsNotFoundError(RuntimeError):
    """GNU as or ld is not installed (or not on PATH)."""


def assemble(source: str, *, bits: int = 64, address: int = 0) -> bytes:
    """Assemble Intel-syntax ``source`` for a ``bits``-bit code segment.

    Returns the flat machine code whose first byte is meant to be loaded at
    linear address ``address``.  Results are cached per process, keyed by
    ``(source, bits, address)``.

    Raises :class:`AssemblyError` (a ValueError) if GNU as or ld reports an
    error or a warning, and :class:`BinutilsNotFoundError` if binutils is not
    installed.
    """
    if not isinstance(source, str):
        raise TypeError(f"source must be str, not {type(source).__name__}")
    if bits not in _MODE_DIRECTIVE:
        raise ValueError(f"bits must be 16, 32 or 64, not {bits!r}")
    if not isinstance(address, int) or not 0 <= address < 1 << 64:
        raise ValueError(f"address must be an integer in [0, 2**64), not {address!r}")
    return _assemble_cached(source, bits, address)


def clear_cache() -> None:
    """Forget every cached assembly result."""
    _assemble_cached.cache_clear()


@functools.lru_cache(maxsize=4096)
def _assemble_cached(source: str, bits: int, address: int) -> bytes:
    as_path, ld_path = _find_tool("as"), _find_tool("ld")
    text = _PREAMBLE.format(mode=_MODE_DIRECTIVE[bits]) + source
    if not text.endswith("\n"):
        text += "\n"
    with tempfile.TemporaryDirectory(prefix="hvsim-asm-") as tmp:
        src, obj = os.path.join(tmp, "input.s"), os.path.join(tmp, "input.o")
        script, out = os.path.join(tmp, "flat.ld"), os.path.join(tmp, "out.bin")
        with open(src, "w", encoding="utf-8") as f:
            f.write(text)
        run = _run([as_path, "--64", "--fatal-warnings", "-o", obj, src])
        if run.returncode != 0:
            raise _assembler_error(run.stdout + run.stderr, source, bits, address, tmp)
        with open(script, "w", encoding="ascii") as f:
            f.write(_LINKER_SCRIPT.format(address=address))
        run = _run([ld_path, "-m", "elf_x86_64", "--oformat", "binary", "-T", script,
                    "-e", hex(address), "-z", "noexecstack", "-o", out, obj])
        if run.returncode != 0:
            raise _linker_error(run.stdout + run.stderr, bits, address, tmp)
        with open(out, "rb") as f:
            return f.read()


def _find_tool(name: str) -> str:
    override = os.environ.get(_TOOL_ENV[name])
    if override:
        path = shutil.which(override)
        if path is None:
            raise BinutilsNotFoundError(
                f"{_TOOL_ENV[name]}={override!r} names no executable program")
        return path
    for candidate in _TOOL_CANDIDATES[name]:
        path = shutil.which(candidate)
        if path is not None:
            return path
    raise BinutilsNotFoundError(
        f"x86.asm needs the GNU assembler and linker, but no {name!r} was found on PATH "
        f"(looked for {', '.join(_TOOL_CANDIDATES[name])}). Install GNU binutils, e.g. "
        f"`apt-get install binutils` (Debian/Ubuntu), `dnf install binutils` (Fedora) or "
        f"`brew install x86_64-elf-binutils` (macOS), or set {_TOOL_ENV[name]}.")


def _run(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, check=False,
                          env={**os.environ, "LC_ALL": "C"})


def _assembler_error(output: str, source: str, bits: int, address: int,
                     tmp: str) -> AssemblyError:
    user_lines = source.splitlines()
    report, diags = [], []
    for raw in output.splitlines():
        raw = raw.replace(tmp + os.sep, "")
        if raw.endswith("Assembler messages:"):
            continue
        m = _DIAG_RE.match(raw)
        if m is None:
            report.append(f"  {raw}")
            diags.append((None, "Error", raw))
            continue
        line = int(m["line"]) - _PREAMBLE_LINES if m["line"] else None
        kind, msg = m["kind"], m["msg"]
        if line is not None and 1 <= line <= len(user_lines):
            report.append(f"  line {line}: {kind}: {msg}")
            report.append(f"      {user_lines[line - 1].strip()}")
            diags.append((line, kind, msg))
        else:  # no position, or in the wrapper, or past the end (unterminated .macro)
            report.append(f"  {kind}: {msg}")
            diags.append((None, kind, msg))
    head = f"assembly failed (bits={bits}, address={address:#x}):"
    return AssemblyError("\n".join([head, *report]), tuple(diags))


def _linker_error(output: str, bits: int, address: int, tmp: str) -> AssemblyError:
    lines = [raw.replace(tmp + os.sep, "") for raw in output.splitlines() if raw.strip()]
    head = (f"linking failed (bits={bits}, address={address:#x}); a reference may not "
            f"fit its field at this address (e.g. a 16-bit offset above 0xffff):")
    return AssemblyError("\n".join([head, *(f"  {line}" for line in lines)]),
                         tuple((None, "Error", line) for line in lines))
