"""SDM Vol. 3C 28.2.1, Table 28-5 "Exit Qualification for I/O Instructions".

"2:0 Size of access: 0 = 1-byte, 1 = 2-byte, 3 = 4-byte; other values not used.
3 Direction of the attempted access (0 = OUT, 1 = IN). 4 String instruction (0 = not string;
1 = string). 5 REP prefixed (0 = not REP; 1 = REP). 6 Operand encoding (0 = DX,
1 = immediate). 15:7 Reserved. 31:16 Port number (as specified in DX or in an immediate
operand). 63:32 Reserved."
"""
import pytest

from vmx import ExitReason
from vmx.qualification import IoDirection, IoInstruction, IoOperandEncoding, for_reason

# (instruction, raw, size, direction, string, rep, encoding, port, sentence)
ROWS = [
    ("IN AL, 0x60", 0x0060_0048, 1, IoDirection.IN, False, False, IoOperandEncoding.IMMEDIATE,
     0x60, "IN byte from port 0x60 (immediate)"),
    ("OUT DX, AL (DX=0x3F8)", 0x03F8_0000, 1, IoDirection.OUT, False, False,
     IoOperandEncoding.DX, 0x3F8, "OUT byte to port 0x3f8 (DX)"),
    ("IN AX, DX (DX=0x1F0)", 0x01F0_0009, 2, IoDirection.IN, False, False,
     IoOperandEncoding.DX, 0x1F0, "IN word from port 0x1f0 (DX)"),
    ("OUT 0x80, EAX", 0x0080_0043, 4, IoDirection.OUT, False, False,
     IoOperandEncoding.IMMEDIATE, 0x80, "OUT dword to port 0x80 (immediate)"),
    ("REP OUTSB (DX=0x3F8)", 0x03F8_0030, 1, IoDirection.OUT, True, True, IoOperandEncoding.DX,
     0x3F8, "REP OUTS byte to port 0x3f8 (DX)"),
    ("INSD (DX=0xCFC)", 0x0CFC_001B, 4, IoDirection.IN, True, False, IoOperandEncoding.DX,
     0xCFC, "INS dword from port 0xcfc (DX)"),
    ("REP INSW (DX=0xFFFF)", 0xFFFF_0039, 2, IoDirection.IN, True, True, IoOperandEncoding.DX,
     0xFFFF, "REP INS word from port 0xffff (DX)"),
]


@pytest.mark.parametrize("insn,raw,size,direction,string,rep,enc,port,sentence", ROWS,
                         ids=[r[0] for r in ROWS])
def test_io_qualification(insn, raw, size, direction, string, rep, enc, port, sentence):
    q = IoInstruction(raw)
    assert q == raw
    assert q.size == size
    assert q.direction == direction
    assert q.string is string and q.rep is rep
    assert q.operand_encoding == enc
    assert q.port == port
    assert q.describe() == sentence


@pytest.mark.parametrize("encoding,size", [(0, 1), (1, 2), (3, 4), (2, None), (7, None)])
def test_size_encoding(encoding, size):
    """Bits 2:0: 0 = 1-byte, 1 = 2-byte, 3 = 4-byte; other values not used (decoded as None)."""
    q = IoInstruction(encoding)
    assert q.size_encoding == encoding and q.size == size
    assert q.describe()


def test_for_reason():
    """28.2.1: I/O instructions (exit reason 30) use Table 28-5."""
    assert isinstance(for_reason(ExitReason.IO_INSTRUCTION, 0x600048), IoInstruction)


def test_reserved_bits():
    """Bits 15:7 and 63:32 are reserved."""
    q = IoInstruction(0xFFFF_FFFF_FFFF_FFFF)
    assert q.reserved_bits == 0xFFFF_FFFF_0000_FF80
    assert q.port == 0xFFFF
