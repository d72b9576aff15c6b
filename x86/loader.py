"""Loading guest images and setting up a mode (API.md `Machine.load`).

The state each mode gets, in full:
- "real": CS=DS=ES=SS=0 (base 0, 64 KiB limits), IP = address (default 0x7C00), SP = 0x7C00.
- "protected": a GDT at 0x500 (null, 32-bit flat code 08h, flat data 10h), CR0.PE=1, no
  paging, EIP = address (default 0x100000), ESP = 0x80000.
- "long": the same GDT plus 64-bit code 18h, CR0 = PE|ET|NE|WP|PG, CR4.PAE, EFER = SCE|LME|LMA|NXE,
  a PML4 at 0x1000 and a PDPT at 0x2000 that identity-map the first 512 GiB with 1 GiB pages,
  RIP = address (default 0x100000) or the ELF entry, RSP = 0x80000.
Interrupts are off and the IDT is empty (limit 0): an exception shuts the machine down
(triple fault) unless the guest installs its own IDT.
"""
from __future__ import annotations

import os

from x86 import elf

GDT_BASE = 0x500
PML4 = 0x1000
PDPT = 0x2000
STACK_TOP = 0x80000
RESERVED_LOW = (0x500, 0x3000)    # GDT and page tables
DEFAULTS = {"real": 0x7C00, "protected": 0x100000, "long": 0x100000}

GDT = [0,
       0x00CF9B000000FFFF,     # 08h: 32-bit code, base 0, limit 4 GiB, DPL 0
       0x00CF93000000FFFF,     # 10h: data, base 0, limit 4 GiB, DPL 0
       0x00AF9B000000FFFF]     # 18h: 64-bit code (L=1), DPL 0


def _image_bytes(image) -> bytes:
    if isinstance(image, (bytes, bytearray, memoryview)):
        return bytes(image)
    if isinstance(image, (str, os.PathLike)):
        with open(image, "rb") as f:
            return f.read()
    raise TypeError(f"image must be bytes or a path, not {type(image).__name__}")


def _check_range(m, lo: int, hi: int, what: str, mode: str):
    if hi > m.memory.size:
        raise ValueError(f"{what} [{lo:#x}, {hi:#x}) lies beyond memory_size {m.memory.size:#x}")
    if mode != "real" and lo < RESERVED_LOW[1] and hi > RESERVED_LOW[0]:
        raise ValueError(f"{what} [{lo:#x}, {hi:#x}) overlaps the loader's GDT and page tables "
                         f"at [{RESERVED_LOW[0]:#x}, {RESERVED_LOW[1]:#x})")


def load(m, image, address: int | None, mode: str) -> int:
    if mode not in DEFAULTS:
        raise ValueError(f"mode must be one of {', '.join(DEFAULTS)}, not {mode!r}")
    data = _image_bytes(image)
    if elf.is_elf(data):
        img = elf.parse_elf64(data)
        for seg in img.segments:
            _check_range(m, seg.paddr, seg.paddr + seg.memsz, "ELF segment", mode)
        for seg in img.segments:
            m.memory.write(seg.paddr, seg.data + bytes(seg.memsz - len(seg.data)))
        entry = img.entry if address is None else address
    else:
        entry = DEFAULTS[mode] if address is None else address
        _check_range(m, entry, entry + len(data), "image", mode)
        m.memory.write(entry, data)
    _setup_mode(m, mode, entry)
    return entry


def _setup_mode(m, mode: str, entry: int) -> None:
    cpu = m.cpu
    cpu.reset()
    if mode == "real":
        for name in ("es", "ss", "ds", "fs", "gs"):
            cpu.set_segment(name, 0, 0, 0xFFFF, 0x93)
        cpu.set_segment("cs", 0, 0, 0xFFFF, 0x9B)
        cpu.rsp = 0x7C00
        cpu.rip = entry
        cpu.refresh_mode()
        return
    for i, d in enumerate(GDT):
        m.memory.write_u64(GDT_BASE + 8 * i, d | (1 << 40 if d else 0))   # accessed
    cpu.gdtr = (GDT_BASE, 8 * len(GDT) - 1)
    cpu.idtr = (0, 0)
    for name in ("es", "ss", "ds", "fs", "gs"):
        cpu.set_segment(name, 0x10, 0, 0xFFFFFFFF, 0xC093)
    cpu.set_segment("tr", 0, 0, 0xFFFF, 0x8B)
    cpu.set_segment("ldtr", 0, 0, 0, 0x10000)
    if mode == "protected":
        cpu.set_segment("cs", 0x08, 0, 0xFFFFFFFF, 0xC09B)
        cpu.set_sys_raw("cr0", 0x00000031)
    else:
        m.memory.write_u64(PML4, PDPT | 0x3)
        for i in range(512):
            m.memory.write_u64(PDPT + 8 * i, (i << 30) | 0x83)           # 1 GiB, RW, present
        cpu.set_segment("cs", 0x18, 0, 0xFFFFFFFF, 0xA09B)
        cpu.set_sys_raw("cr3", PML4)
        cpu.set_sys_raw("cr4", 0x20)
        cpu.set_sys_raw("efer", 0xD01)
        cpu.set_sys_raw("cr0", 0x80010033)
    cpu.rflags = 2
    cpu.rsp = STACK_TOP
    cpu.rip = entry
    cpu.refresh_mode()
