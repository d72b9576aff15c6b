"""Tests of x86.elf: ELF64 program headers to loadable segments.

Layouts from the System V ABI generic part, chapter 4 (ELF header) and
chapter 5 (program header).
"""

import importlib.util
import pathlib
import re
import shutil
import struct
import subprocess

import pytest

from x86 import elf

EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
PHDR = struct.Struct("<IIQQQQQQ")
SHDR = struct.Struct("<IIQQQQIIQQ")
PT_NOTE, PT_GNU_STACK = 4, 0x6474E551
GUESTS = pathlib.Path(__file__).resolve().parents[1] / "guests"


def make_elf(phdrs, *, entry=0x200000, ident=None, e_type=elf.ET_EXEC, machine=62,
             version=1, phentsize=PHDR.size, phnum=None, phoff=EHDR.size,
             shoff=0, shentsize=0, shnum=0, tail=b""):
    """An ELF64 file: header, program headers at ``phoff``, then ``tail``.

    Each phdr is (p_type, p_flags, p_offset, p_vaddr, p_paddr, p_filesz,
    p_memsz, p_align); offsets are the caller's, relative to the file start.
    """
    if ident is None:
        ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    if phnum is None:
        phnum = len(phdrs)
    header = EHDR.pack(ident, e_type, machine, version, entry, phoff, shoff, 0,
                       EHDR.size, phentsize, phnum, shentsize, shnum, 0)
    table = b"".join(PHDR.pack(*p).ljust(phentsize, b"\0") for p in phdrs)
    body = bytearray(header)
    body += bytes(max(0, phoff - len(body)))
    body[phoff:phoff + len(table)] = table
    return bytes(body) + tail


def two_segment_elf(**kw):
    """Text (R X, 0x20 bytes at offset 0x200) and data (R W, 8 bytes + 0x18 of bss)."""
    text, data = bytes(range(0x20)), b"DATADATA"
    phdrs = [
        (PT_NOTE, elf.PF_R, 0, 0, 0, 0, 0, 4),
        (elf.PT_LOAD, elf.PF_R | elf.PF_X, 0x200, 0x200000, 0x200000, 0x20, 0x20, 0x1000),
        (elf.PT_LOAD, elf.PF_R | elf.PF_W, 0x220, 0xFFFF800000201000, 0x201000, 8, 0x20, 0x1000),
        (PT_GNU_STACK, elf.PF_R | elf.PF_W, 0, 0, 0, 0, 0, 16),
    ]
    raw = make_elf(phdrs, **kw)
    return raw.ljust(0x200, b"\0") + text + data


def test_parse_handcrafted():
    image = elf.parse_elf64(two_segment_elf(entry=0x200010))
    assert image.entry == 0x200010
    assert image.elf_type == elf.ET_EXEC
    text, data = image.segments
    assert text == elf.Segment(paddr=0x200000, vaddr=0x200000, data=bytes(range(0x20)),
                               memsz=0x20, flags=elf.PF_R | elf.PF_X)
    assert (text.readable, text.writable, text.executable) == (True, False, True)
    assert data.paddr == 0x201000 and data.vaddr == 0xFFFF800000201000
    assert data.data == b"DATADATA" and data.filesz == 8 and data.memsz == 0x20
    assert data.writable and not data.executable


def test_accepts_any_buffer():
    raw = two_segment_elf()
    expected = elf.parse_elf64(raw)
    assert elf.parse_elf64(bytearray(raw)) == expected
    assert elf.parse_elf64(memoryview(raw)) == expected
    assert type(elf.parse_elf64(memoryview(raw)).segments[0].data) is bytes


def test_image_is_frozen():
    image = elf.parse_elf64(two_segment_elf())
    with pytest.raises(AttributeError):
        image.entry = 0
    with pytest.raises(AttributeError):
        image.segments[0].paddr = 0


def test_et_dyn_is_accepted_as_is():
    image = elf.parse_elf64(two_segment_elf(e_type=elf.ET_DYN))
    assert image.elf_type == elf.ET_DYN
    assert image.segments[0].vaddr == 0x200000


def test_larger_phentsize_is_a_stride():
    image = elf.parse_elf64(two_segment_elf(phentsize=64))
    assert [s.paddr for s in image.segments] == [0x200000, 0x201000]


def test_empty_segment_data():
    raw = make_elf([(elf.PT_LOAD, elf.PF_R | elf.PF_W, 0, 0x300000, 0x300000, 0, 0x1000, 0x1000)])
    (bss,) = elf.parse_elf64(raw).segments
    assert bss.data == b"" and bss.memsz == 0x1000


def test_pn_xnum_count_from_section_header_0():
    phdr = (elf.PT_LOAD, elf.PF_R, 0, 0x1000, 0x1000, 0x10, 0x10, 0)
    shoff = EHDR.size + PHDR.size
    raw = make_elf([phdr], phnum=elf.PN_XNUM, shoff=shoff, shentsize=SHDR.size,
                   tail=SHDR.pack(0, 0, 0, 0, 0, 0, 0, 1, 0, 0))
    (segment,) = elf.parse_elf64(raw).segments
    assert segment.paddr == 0x1000 and segment.data == raw[:0x10]


def test_is_elf():
    assert elf.is_elf(two_segment_elf())
    assert elf.is_elf(bytearray(b"\x7fELF"))
    assert elf.is_elf(memoryview(b"\x7fELF\x01"))
    assert not elf.is_elf(b"\x7fEL")
    assert not elf.is_elf(b"")
    assert not elf.is_elf(b"MZ\x90\x00")


def ident(cls=2, data=1, version=1):
    return b"\x7fELF" + bytes([cls, data, version, 0]) + bytes(8)


def with_field(raw, fmt, offset, value):
    """``raw`` with one field overwritten (e.g. e_phoff, at offset 32)."""
    patched = bytearray(raw)
    struct.pack_into(fmt, patched, offset, value)
    return bytes(patched)


# One name per case of test_validation_errors, in order.
VALIDATION_IDS = [
    "empty", "not-elf", "truncated-header", "elfclass32", "bad-class", "big-endian",
    "ei-version", "e-version", "not-x86-64", "et-rel", "et-core", "et-unknown",
    "no-phdrs", "small-phentsize", "phoff-zero", "phdrs-past-eof", "filesz-gt-memsz",
    "data-past-eof", "vaddr-wraps", "paddr-wraps", "no-pt-load", "pn-xnum-no-shdr",
]
LOAD = (elf.PT_LOAD, elf.PF_R, 0, 0x1000, 0x1000, 0x40, 0x40, 0)


@pytest.mark.parametrize("raw, message", [
    (b"", r"bad magic b'': an ELF file starts with b'\\x7fELF'"),
    (b"MZ" + bytes(100), r"bad magic b'MZ\\x00\\x00'"),
    (b"\x7fELF" + bytes(20), r"file is 24 bytes, too short for the 64-byte ELF64 header"),
    (make_elf([LOAD], ident=ident(cls=1)),
     r"e_ident\[EI_CLASS\] is 1 \(ELFCLASS32, a 32-bit object\); expected ELFCLASS64 \(2\)"),
    (make_elf([LOAD], ident=ident(cls=7)), r"e_ident\[EI_CLASS\] is 7 \(invalid\)"),
    (make_elf([LOAD], ident=ident(data=2)),
     r"e_ident\[EI_DATA\] is 2 \(ELFDATA2MSB, big endian\); expected ELFDATA2LSB \(1\)"),
    (make_elf([LOAD], ident=ident(version=0)),
     r"e_ident\[EI_VERSION\] is 0; expected EV_CURRENT \(1\)"),
    (make_elf([LOAD], version=2), r"e_version is 2; expected EV_CURRENT \(1\)"),
    (make_elf([LOAD], machine=3), r"e_machine is 3; expected EM_X86_64 \(62\)"),
    (make_elf([LOAD], e_type=elf.ET_REL),
     r"e_type is 1 \(ET_REL\) \(a relocatable object: link it first\); "
     r"expected ET_EXEC \(2\) or ET_DYN \(3\)"),
    (make_elf([LOAD], e_type=elf.ET_CORE), r"e_type is 4 \(ET_CORE\); expected ET_EXEC"),
    (make_elf([LOAD], e_type=0xFE00), r"e_type is 65024 \(unknown\)"),
    (make_elf([], phoff=0), r"no program header table \(e_phnum is 0\)"),
    (make_elf([LOAD], phentsize=32),
     r"e_phentsize is 32, smaller than an Elf64_Phdr \(56\)"),
    (with_field(make_elf([LOAD]), "<Q", 32, 0), r"e_phoff is 0 but e_phnum is 1"),
    (make_elf([LOAD], phnum=3),
     r"program header table \(e_phoff 0x40 \+ 3 entries of 56 bytes = end 0xe8\) "
     r"extends past the end of the file \(0x78 bytes\)"),
    (make_elf([(elf.PT_LOAD, elf.PF_R, 0, 0x1000, 0x1000, 0x40, 0x3F, 0)]),
     r"program header 0 \(PT_LOAD\): p_filesz 0x40 exceeds p_memsz 0x3f"),
    (make_elf([(PT_NOTE, 0, 0, 0, 0, 0, 0, 0),
               (elf.PT_LOAD, elf.PF_R, 0xA8, 0x1000, 0x1000, 0x10, 0x10, 0)]),
     r"program header 1 \(PT_LOAD\): file data \(p_offset 0xa8 \+ p_filesz 0x10\) "
     r"extends past the end of the file \(0xb0 bytes\)"),
    (make_elf([(elf.PT_LOAD, elf.PF_R, 0, 0xFFFFFFFFFFFFF000, 0x1000, 0x10, 0x2000, 0)]),
     r"program header 0 \(PT_LOAD\): p_vaddr 0xfffffffffffff000 \+ p_memsz 0x2000 wraps"),
    (make_elf([(elf.PT_LOAD, elf.PF_R, 0, 0x1000, 0xFFFFFFFFFFFFFFFF, 0, 2, 0)]),
     r"p_paddr 0xffffffffffffffff \+ p_memsz 0x2 wraps around the 64-bit address space"),
    (make_elf([(PT_NOTE, 0, 0, 0, 0, 0, 0, 0), (PT_GNU_STACK, 6, 0, 0, 0, 0, 0, 16)]),
     r"no PT_LOAD program header among the 2 entries: nothing to load"),
    (make_elf([LOAD], phnum=elf.PN_XNUM),
     r"e_phnum is PN_XNUM \(0xffff\) but section header 0, which holds the real count, "
     r"is missing or out of bounds"),
], ids=VALIDATION_IDS)
def test_validation_errors(raw, message):
    with pytest.raises(elf.ElfError, match=message):
        elf.parse_elf64(raw)


def test_elf_error_is_a_value_error():
    assert issubclass(elf.ElfError, ValueError)


def _build_module():
    spec = importlib.util.spec_from_file_location("hvsim_guest_build", GUESTS / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _readelf_loads(path):
    """PT_LOAD rows from `readelf -lW` (an independent parser) as tuples."""
    out = subprocess.run(["readelf", "-lW", str(path)], capture_output=True, text=True,
                         check=True, env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"}).stdout
    rows = []
    for m in re.finditer(r"^\s*LOAD\s+(0x\w+)\s+(0x\w+)\s+(0x\w+)\s+(0x\w+)\s+(0x\w+)\s+"
                         r"([RWE ]+?)\s+0x\w+$", out, re.M):
        offset, vaddr, paddr, filesz, memsz = (int(g, 16) for g in m.groups()[:5])
        flags = sum(bit for ch, bit in (("R", 4), ("W", 2), ("E", 1)) if ch in m[6])
        rows.append((offset, vaddr, paddr, filesz, memsz, flags))
    return rows


@pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("readelf") is None,
                    reason="needs gcc and readelf")
@pytest.mark.parametrize("host_test", [False, True], ids=["guest", "linux-static"])
def test_gcc_output_matches_readelf(host_test):
    path = _build_module().build_guest("hello", host_test=host_test)
    raw = path.read_bytes()
    image = elf.parse_elf64(raw)
    rows = _readelf_loads(path)
    assert len(rows) == len(image.segments) >= 1
    for (offset, vaddr, paddr, filesz, memsz, flags), seg in zip(rows, image.segments):
        assert (seg.vaddr, seg.paddr, seg.filesz, seg.memsz, seg.flags) == \
            (vaddr, paddr, filesz, memsz, flags)
        assert seg.data == raw[offset:offset + filesz]
    assert any(s.vaddr <= image.entry < s.vaddr + s.memsz and s.executable
               for s in image.segments)
