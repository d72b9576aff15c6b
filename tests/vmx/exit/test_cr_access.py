"""SDM Vol. 3C 28.2.1, Table 28-3 "Exit Qualification for Control-Register Accesses".

"3:0 Number of control register (0 for CLTS and LMSW). 5:4 Access type: 0 = MOV to CR,
1 = MOV from CR, 2 = CLTS, 3 = LMSW. 6 LMSW operand type: 0 = register, 1 = memory; for CLTS
and MOV CR, cleared to 0. 11:8 For MOV CR, the general-purpose register (0 = RAX, 1 = RCX, ...
8-15 = R8-R15); for CLTS and LMSW, cleared to 0. 31:16 For LMSW, the LMSW source data; for CLTS
and MOV CR, cleared to 0."
"""
import pytest

from vmx import ExitReason
from vmx.qualification import CrAccess, CrAccessType, Gpr, LmswOperandType, for_reason

# (instruction, qualification typed from the table, cr, access type, gpr, sentence)
ROWS = [
    ("MOV CR3, RAX", 0x3, 3, CrAccessType.MOV_TO_CR, 0, "MOV to CR3 from RAX"),
    ("MOV CR0, RBX", 0x300, 0, CrAccessType.MOV_TO_CR, 3, "MOV to CR0 from RBX"),
    ("MOV CR4, RCX", 0x104, 4, CrAccessType.MOV_TO_CR, 1, "MOV to CR4 from RCX"),
    ("MOV CR8, R15", 0xF08, 8, CrAccessType.MOV_TO_CR, 15, "MOV to CR8 from R15"),
    ("MOV RDX, CR3", 0x213, 3, CrAccessType.MOV_FROM_CR, 2, "MOV from CR3 to RDX"),
    ("MOV R9, CR8", 0x918, 8, CrAccessType.MOV_FROM_CR, 9, "MOV from CR8 to R9"),
    ("CLTS", 0x20, 0, CrAccessType.CLTS, 0, "CLTS"),
]


@pytest.mark.parametrize("insn,raw,cr,kind,gpr,sentence", ROWS, ids=[r[0] for r in ROWS])
def test_mov_cr_and_clts(insn, raw, cr, kind, gpr, sentence):
    """Table 28-3: CR number in 3:0, access type in 5:4, register in 11:8."""
    q = CrAccess(raw)
    assert q == raw and q.raw == raw
    assert (q.cr, q.access_type, q.gpr) == (cr, kind, gpr)
    assert q.lmsw_source_data == 0
    assert q.describe() == sentence


def test_gpr_names_follow_the_sdm_encoding():
    """Table 28-3 bits 11:8: 0 = RAX, 1 = RCX, 2 = RDX, 3 = RBX, 4 = RSP, 5 = RBP, 6 = RSI,
    7 = RDI, 8-15 = R8-R15."""
    names = ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
             "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"]
    for number, name in enumerate(names):
        q = CrAccess(number << 8)
        assert q.gpr == number and q.gpr_name == name and q.gpr == Gpr[name.upper()]


def test_lmsw_register_operand():
    """LMSW AX with AX = 0x0001: access type 3, operand type 0, source data in 31:16."""
    q = CrAccess(0x0001_0030)
    assert q.access_type == CrAccessType.LMSW
    assert q.lmsw_operand_type == LmswOperandType.REGISTER
    assert q.lmsw_source_data == 0x1 and q.cr == 0
    assert q.describe() == "LMSW of 0x0001 from a register operand"


def test_lmsw_memory_operand():
    """LMSW [mem] with the word 0x000F: bit 6 set (memory), source data 0x000F."""
    q = CrAccess(0x000F_0070)
    assert q.lmsw_operand_type == LmswOperandType.MEMORY
    assert q.lmsw_source_data == 0xF
    assert "memory" in q.describe()


def test_fields_in_table_order():
    assert list(CrAccess(0x3).fields()) == [
        "cr", "access_type", "lmsw_operand_type", "gpr", "lmsw_source_data"]


def test_for_reason_picks_the_layout():
    """28.2.1: control-register accesses (exit reason 28) use Table 28-3."""
    q = for_reason(ExitReason.CR_ACCESS, 0x104)
    assert isinstance(q, CrAccess) and q == 0x104


def test_reserved_bits_decode_without_raising():
    """Bits 7, 15:12 and 63:32 are reserved; a value with them set still decodes."""
    q = CrAccess(0xFFFF_FFFF_FFFF_FFFF)
    assert q.cr == 15 and q.access_type == CrAccessType.LMSW
    assert q.reserved_bits == 0xFFFF_FFFF_0000_F080
    assert q.describe()
