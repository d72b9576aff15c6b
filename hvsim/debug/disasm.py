"""Disassembly for the debugger: iced-x86's formatter, Intel syntax (the project's decoder is
checked against the same library)."""
from __future__ import annotations

import attrs
import iced_x86

from hvsim.guest import GuestMemoryError


@attrs.frozen
class Line:
    address: int
    data: bytes
    text: str


def _formatter():
    f = iced_x86.Formatter(iced_x86.FormatterSyntax.INTEL)
    f.hex_prefix, f.hex_suffix = "0x", ""
    f.uppercase_hex = False
    f.space_after_operand_separator = True
    return f


_FORMATTER = _formatter()


def decode(data: bytes, address: int, bitness: int = 64, count: int | None = None) -> list[Line]:
    out = []
    for ins in iced_x86.Decoder(bitness, data, ip=address):
        if ins.code == iced_x86.Code.INVALID and ins.ip + ins.len >= address + len(data) - 1:
            break                       # cut off at the end of what was read
        off = ins.ip - address
        text = "(bad)" if ins.code == iced_x86.Code.INVALID else _FORMATTER.format(ins)
        out.append(Line(ins.ip, data[off:off + ins.len], text))
        if count is not None and len(out) >= count:
            break
    return out


def bitness(guest) -> int:
    """The guest's code size: 64 with CS.L in IA-32e mode, else CS.D/B, 16 without CR0.PE."""
    if not guest.register("cr0") & 1:
        return 16
    attr = guest.segment("cs")[3]
    if attr >> 13 & 1 and guest.register("efer") >> 10 & 1:
        return 64
    return 32 if attr >> 14 & 1 else 16


def _read(guest, address: int, n: int) -> bytes:
    """As many bytes from `address` as can be read (guest-linear), up to n."""
    data = b""
    while n > 0:
        chunk = min(n, 0x1000 - (address & 0xFFF))
        try:
            data += guest.read_linear(address, chunk)
        except GuestMemoryError:
            break
        address, n = address + chunk, n - chunk
    return data


def listing(guest, address: int, count: int) -> list[Line]:
    """`count` instructions from a guest-linear address; GuestMemoryError if none can be read."""
    data = _read(guest, address, count * 15)
    if not data:
        guest.read_linear(address, 1)           # raises with the reason
    return decode(data, address, bitness(guest), count)


def around(guest, rip: int, before: int = 3, after: int = 6) -> tuple[list[Line], int]:
    """Instructions around `rip` (its index in the list returned). The ones before it are found
    by decoding from earlier addresses until one decoding lands exactly on rip."""
    bits = bitness(guest)
    lines = listing(guest, rip, after + 1)
    back = 8 * before
    start = max(0, rip - back)
    data = _read(guest, start, rip - start) if rip > start else b""
    # x86 decoding resynchronizes: most starting points agree on the last few boundaries
    # before rip, so take the ending that most starting points reach (the earliest on a tie)
    votes: dict[tuple, list] = {}
    for k in range(len(data)):
        decoded = [ln for ln in decode(data[k:] + b"\x90" * 15, start + k, bits) if ln.address < rip]
        if decoded and decoded[-1].address + len(decoded[-1].data) == rip:
            tail = decoded[-before:]
            votes.setdefault(tuple(ln.address for ln in tail), [0, tail])[0] += 1
    prior = max(votes.values(), key=lambda v: v[0])[1] if votes else []
    while prior and not any(prior[0].data):
        prior = prior[1:]                   # zeros before the code: nothing worth showing
    return prior + lines, len(prior)
