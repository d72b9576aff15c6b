"""Parse ELF64 x86-64 executables into what a guest loader needs.

References: the System V ABI generic part ("gABI"), chapter 4 "Object Files"
(ELF header, e_ident) and chapter 5 "Program Loading" (program header,
PT_LOAD); the x86-64 psABI for EM_X86_64 = 62.

Only the program header table is read: each PT_LOAD entry says to copy
p_filesz bytes from file offset p_offset to address p_paddr (physical) or
p_vaddr (virtual) and zero the rest up to p_memsz.  Section headers are not
needed to load a program and are ignored (except entry 0, when the program
header count overflows, gABI "Program Header", PN_XNUM).

Not checked, because copying bytes into guest memory does not depend on
them: p_align and the congruence of p_vaddr and p_offset modulo it, and
whether segments overlap.
"""

from __future__ import annotations

import struct

import attrs

__all__ = ["ElfError", "ElfImage", "Segment", "is_elf", "parse_elf64",
           "PF_X", "PF_W", "PF_R", "ET_EXEC", "ET_DYN", "EM_X86_64"]

ELF_MAGIC = b"\x7fELF"
ELFCLASS32, ELFCLASS64 = 1, 2
ELFDATA2LSB, ELFDATA2MSB = 1, 2
EV_CURRENT = 1
ET_NONE, ET_REL, ET_EXEC, ET_DYN, ET_CORE = 0, 1, 2, 3, 4
EM_X86_64 = 62
PT_LOAD = 1
PN_XNUM = 0xFFFF
PF_X, PF_W, PF_R = 1, 2, 4

_ET_NAMES = {ET_NONE: "ET_NONE", ET_REL: "ET_REL", ET_EXEC: "ET_EXEC",
             ET_DYN: "ET_DYN", ET_CORE: "ET_CORE"}

# gABI Figure 4-3 (Elf64_Ehdr), Figure 5-1 (Elf64_Phdr), Figure 4-8 (Elf64_Shdr)
_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")   # 64 bytes
_PHDR = struct.Struct("<IIQQQQQQ")           # 56 bytes
_SHDR = struct.Struct("<IIQQQQIIQQ")         # 64 bytes
_U64 = 1 << 64


class ElfError(ValueError):
    """The data is not a loadable ELF64 x86-64 executable; the message says why."""


@attrs.frozen
class Segment:
    """One PT_LOAD segment: ``data`` (p_filesz bytes) goes at ``paddr``/``vaddr``;
    bytes from ``len(data)`` up to ``memsz`` are zero (gABI "Program Header")."""

    paddr: int
    vaddr: int
    data: bytes = attrs.field(repr=lambda d: f"<{len(d)} bytes>")
    memsz: int
    flags: int

    @property
    def filesz(self) -> int:
        return len(self.data)

    @property
    def readable(self) -> bool:
        return bool(self.flags & PF_R)

    @property
    def writable(self) -> bool:
        return bool(self.flags & PF_W)

    @property
    def executable(self) -> bool:
        return bool(self.flags & PF_X)


@attrs.frozen
class ElfImage:
    """A parsed executable: its entry point and PT_LOAD segments in file order.

    ``elf_type`` is ET_EXEC or ET_DYN; an ET_DYN image's addresses are as
    written in the file (no relocation is applied).
    """

    entry: int
    segments: tuple[Segment, ...]
    elf_type: int = ET_EXEC


def is_elf(data) -> bool:
    """True if ``data`` starts with the ELF magic number (gABI, e_ident[EI_MAG0..3])."""
    return bytes(data[:4]) == ELF_MAGIC


def parse_elf64(data) -> ElfImage:
    """Parse an ELF64 little-endian x86-64 ET_EXEC (or ET_DYN) image.

    ``data`` is the whole file (bytes, bytearray or memoryview).
    Raises :class:`ElfError` naming the first rule the file breaks.
    """
    buf = memoryview(data).cast("B")
    (_ident, e_type, _machine, _version, e_entry, e_phoff, e_shoff, _flags, _ehsize,
     e_phentsize, e_phnum, e_shentsize, e_shnum, _shstrndx) = _check_header(buf)

    if e_phnum == PN_XNUM:
        e_phnum = _extended_phnum(buf, e_shoff, e_shentsize, e_shnum)
    if e_phnum == 0:
        raise ElfError("no program header table (e_phnum is 0): nothing to load")
    if e_phentsize < _PHDR.size:
        raise ElfError(f"e_phentsize is {e_phentsize}, smaller than an Elf64_Phdr ({_PHDR.size})")
    if e_phoff == 0:
        raise ElfError(f"e_phoff is 0 but e_phnum is {e_phnum}")
    table_end = e_phoff + e_phnum * e_phentsize
    if table_end > len(buf):
        raise ElfError(f"program header table (e_phoff {e_phoff:#x} + {e_phnum} entries of "
                       f"{e_phentsize} bytes = end {table_end:#x}) extends past the end of "
                       f"the file ({len(buf):#x} bytes)")

    segments = []
    for index in range(e_phnum):
        p_type, p_flags, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, _align = \
            _PHDR.unpack_from(buf, e_phoff + index * e_phentsize)
        if p_type != PT_LOAD:
            continue
        where = f"program header {index} (PT_LOAD)"
        if p_filesz > p_memsz:
            raise ElfError(f"{where}: p_filesz {p_filesz:#x} exceeds p_memsz {p_memsz:#x}")
        if p_offset + p_filesz > len(buf):
            raise ElfError(f"{where}: file data (p_offset {p_offset:#x} + p_filesz "
                           f"{p_filesz:#x}) extends past the end of the file "
                           f"({len(buf):#x} bytes)")
        for name, addr in (("p_vaddr", p_vaddr), ("p_paddr", p_paddr)):
            if addr + p_memsz > _U64:
                raise ElfError(f"{where}: {name} {addr:#x} + p_memsz {p_memsz:#x} "
                               f"wraps around the 64-bit address space")
        segments.append(Segment(paddr=p_paddr, vaddr=p_vaddr,
                                data=bytes(buf[p_offset:p_offset + p_filesz]),
                                memsz=p_memsz, flags=p_flags))
    if not segments:
        raise ElfError(f"no PT_LOAD program header among the {e_phnum} entries: nothing to load")
    return ElfImage(entry=e_entry, segments=tuple(segments), elf_type=e_type)


def _check_header(buf: memoryview) -> tuple:
    """Validate the ELF header (gABI "ELF Header" and "ELF Identification")."""
    if len(buf) < 4 or bytes(buf[:4]) != ELF_MAGIC:
        raise ElfError(f"bad magic {bytes(buf[:4])!r}: an ELF file starts with {ELF_MAGIC!r}")
    if len(buf) < _EHDR.size:
        raise ElfError(f"file is {len(buf)} bytes, too short for the {_EHDR.size}-byte "
                       f"ELF64 header")
    fields = _EHDR.unpack_from(buf, 0)
    ident, e_type, e_machine, e_version = fields[:4]
    ei_class, ei_data, ei_version = ident[4], ident[5], ident[6]
    if ei_class != ELFCLASS64:
        what = {ELFCLASS32: "ELFCLASS32, a 32-bit object"}.get(ei_class, "invalid")
        raise ElfError(f"e_ident[EI_CLASS] is {ei_class} ({what}); expected ELFCLASS64 (2)")
    if ei_data != ELFDATA2LSB:
        what = {ELFDATA2MSB: "ELFDATA2MSB, big endian"}.get(ei_data, "invalid")
        raise ElfError(f"e_ident[EI_DATA] is {ei_data} ({what}); expected ELFDATA2LSB (1), "
                       f"little endian")
    if ei_version != EV_CURRENT:
        raise ElfError(f"e_ident[EI_VERSION] is {ei_version}; expected EV_CURRENT (1)")
    if e_version != EV_CURRENT:
        raise ElfError(f"e_version is {e_version}; expected EV_CURRENT (1)")
    if e_machine != EM_X86_64:
        raise ElfError(f"e_machine is {e_machine}; expected EM_X86_64 (62)")
    if e_type not in (ET_EXEC, ET_DYN):
        name = _ET_NAMES.get(e_type, "unknown")
        hint = " (a relocatable object: link it first)" if e_type == ET_REL else ""
        raise ElfError(f"e_type is {e_type} ({name}){hint}; expected ET_EXEC (2) or ET_DYN (3)")
    return fields


def _extended_phnum(buf: memoryview, e_shoff: int, e_shentsize: int, e_shnum: int) -> int:
    """With e_phnum == PN_XNUM the real count is sh_info of section header 0."""
    if e_shoff == 0 or e_shentsize < _SHDR.size or e_shoff + _SHDR.size > len(buf):
        raise ElfError(f"e_phnum is PN_XNUM ({PN_XNUM:#x}) but section header 0, which holds "
                       f"the real count, is missing or out of bounds (e_shoff {e_shoff:#x}, "
                       f"e_shentsize {e_shentsize}, e_shnum {e_shnum})")
    return _SHDR.unpack_from(buf, e_shoff)[7]
