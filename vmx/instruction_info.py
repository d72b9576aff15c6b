"""The VM-exit instruction-information field: SDM Vol. 3C 28.2.5 "Information for VM Exits Due
to Instruction Execution" (in older editions 27.2.4), one layout per table:

  InsOuts         "... as Used for INS and OUTS"
  Invalidation    "... as Used for INVEPT, INVPCID, and INVVPID"
  DescriptorTable "... as Used for LIDT, LGDT, SIDT, or SGDT"
  LdtrTr          "... as Used for LLDT, LTR, SLDT, and STR"
  RegisterOperand "... as Used for RDRAND, RDSEED, TPAUSE, and UMWAIT"
  MemoryOperand   "... as Used for VMCLEAR, VMPTRLD, VMPTRST, VMXON, XRSTORS, and XSAVES"
  VmreadVmwrite   "... as Used for VMREAD and VMWRITE"

Each is an `int` subclass equal to the raw 32-bit field. Register numbers use the SDM encoding
(0 RAX ... 15 R15, `Gpr`); segment numbers 0 ES ... 5 GS. Bits the SDM calls undefined are not
named; values the SDM does not use decode to plain numbers (or None for sizes), never raise.
The memory operand's displacement is not here: it is the exit qualification (`Displacement`).
"""
from __future__ import annotations

import enum

from x86.machine import GPRS, SEGMENTS
from vmx.exits import ExitReason
from vmx.qualification import BitRecord, Bits, Gpr, enum_or_int

__all__ = [
    "SegmentRegister", "InstructionInfo", "InsOuts", "Invalidation", "DescriptorTable",
    "DescriptorTableInstruction", "LdtrTr", "LdtrTrInstruction", "RegisterOperand",
    "MemoryOperand", "VmreadVmwrite", "LAYOUTS", "for_reason",
]

SegmentRegister = enum.IntEnum(
    "SegmentRegister", [(name.upper(), i) for i, name in enumerate(SEGMENTS[:6])],
    module=__name__)
SegmentRegister.__doc__ = "Segment registers as bits 17:15 encode them (0 ES ... 5 GS)."

_SIZES = {0: 16, 1: 32, 2: 64}   # address size (bits 9:7), RDRAND operand size (bits 12:11)


def _size(value: int):
    return _SIZES.get(value)


class InstructionInfo(BitRecord):
    """The raw field, for exits whose instruction information is undefined."""
    __slots__ = ()

    def describe(self, displacement: int | None = None) -> str:
        """A phrase; `displacement` (the exit qualification) completes a memory operand."""
        return f"instruction information {int(self):#x}"


class _MemoryForm(InstructionInfo):
    """Helpers shared by the layouts that describe a memory operand: scaling (1:0), address
    size (9:7), segment (17:15), index (21:18, invalid 22), base (26:23, invalid 27)."""
    __slots__ = ()

    @property
    def scale(self) -> int:
        """The index scale factor, 1, 2, 4 or 8 (from `scaling`)."""
        return 1 << self.scaling

    @property
    def is_memory(self) -> bool:
        return True

    def operand(self, displacement: int | None = None) -> str:
        """The memory operand in assembler notation; "disp" stands for an unknown
        displacement."""
        seg = self.segment
        seg_text = seg.name.lower() if isinstance(seg, SegmentRegister) else f"seg{int(seg)}"
        terms = []
        if not self.base_invalid:
            terms.append(GPRS[self.base_reg])
        if not self.index_invalid:
            terms.append(f"{GPRS[self.index_reg]}*{self.scale}")
        text = "+".join(terms)
        if displacement is None:
            text += "+disp" if text else "disp"
        elif displacement or not text:
            sign = "-" if displacement < 0 else ("+" if text else "")
            text += f"{sign}{abs(displacement):#x}"
        return f"{seg_text}:[{text}]"

    def _address_text(self) -> str:
        size = self.address_size
        return f"{size}-bit address" if size else f"address-size encoding {(int(self) >> 7) & 7}"


def _reg_name(number: int) -> str:
    return GPRS[number & 0xF]


# --- the field layouts ----------------------------------------------------------------------

class InsOuts(InstructionInfo):
    """INS and OUTS: the address size and (for OUTS) the source segment."""
    __slots__ = ()
    address_size = Bits(9, 7, _size, doc="16, 32 or 64 (bits 9:7 = 0, 1, 2)")
    segment = Bits(17, 15, enum_or_int(SegmentRegister), doc="segment (undefined for INS)")

    def describe(self, displacement: int | None = None) -> str:
        size = self.address_size
        seg = self.segment
        seg_text = seg.name if isinstance(seg, SegmentRegister) else f"segment {int(seg)}"
        return f"string I/O with {size}-bit addresses, segment {seg_text} (OUTS)"


class Invalidation(_MemoryForm):
    """INVEPT, INVPCID, INVVPID: the descriptor in memory and the type in Reg2."""
    __slots__ = ()
    scaling = Bits(1, 0, doc="index scale: 0 none, 1 by 2, 2 by 4, 3 by 8")
    address_size = Bits(9, 7, _size, doc="16, 32 or 64")
    segment = Bits(17, 15, enum_or_int(SegmentRegister))
    index_reg = Bits(21, 18, Gpr)
    index_invalid = Bits(22)
    base_reg = Bits(26, 23, Gpr)
    base_invalid = Bits(27)
    reg2 = Bits(31, 28, Gpr, doc="the register operand (the invalidation type)")

    def describe(self, displacement: int | None = None) -> str:
        return (f"descriptor at {self.operand(displacement)} ({self._address_text()}), "
                f"type in {_reg_name(self.reg2)}")


class DescriptorTableInstruction(enum.IntEnum):
    SGDT = 0
    SIDT = 1
    LGDT = 2
    LIDT = 3


class DescriptorTable(_MemoryForm):
    """LIDT, LGDT, SIDT, SGDT."""
    __slots__ = ()
    scaling = Bits(1, 0)
    address_size = Bits(9, 7, _size)
    operand_size = Bits(11, 11, lambda v: 32 if v else 16,
                        doc="16 or 32 (bit 11 = 0, 1); undefined for exits from 64-bit mode")
    segment = Bits(17, 15, enum_or_int(SegmentRegister))
    index_reg = Bits(21, 18, Gpr)
    index_invalid = Bits(22)
    base_reg = Bits(26, 23, Gpr)
    base_invalid = Bits(27)
    instruction = Bits(29, 28, DescriptorTableInstruction, doc="0 SGDT, 1 SIDT, 2 LGDT, 3 LIDT")

    def describe(self, displacement: int | None = None) -> str:
        return f"{self.instruction.name} {self.operand(displacement)} ({self._address_text()})"


class LdtrTrInstruction(enum.IntEnum):
    SLDT = 0
    STR = 1
    LLDT = 2
    LTR = 3


class LdtrTr(_MemoryForm):
    """LLDT, LTR, SLDT, STR: a register (Reg1) or a memory operand."""
    __slots__ = ()
    scaling = Bits(1, 0)
    reg1 = Bits(6, 3, Gpr, doc="register operand (undefined for memory operands)")
    address_size = Bits(9, 7, _size)
    mem_reg = Bits(10, doc="1: register operand, 0: memory operand")
    segment = Bits(17, 15, enum_or_int(SegmentRegister))
    index_reg = Bits(21, 18, Gpr)
    index_invalid = Bits(22)
    base_reg = Bits(26, 23, Gpr)
    base_invalid = Bits(27)
    instruction = Bits(29, 28, LdtrTrInstruction, doc="0 SLDT, 1 STR, 2 LLDT, 3 LTR")

    @property
    def is_memory(self) -> bool:
        return not self.mem_reg

    def describe(self, displacement: int | None = None) -> str:
        if self.mem_reg:
            return f"{self.instruction.name} {_reg_name(self.reg1)}"
        return f"{self.instruction.name} {self.operand(displacement)} ({self._address_text()})"


class RegisterOperand(InstructionInfo):
    """RDRAND, RDSEED (destination register), TPAUSE, UMWAIT (source register)."""
    __slots__ = ()
    operand_reg = Bits(6, 3, Gpr, doc="the register operand")
    operand_size = Bits(12, 11, _size, doc="16, 32 or 64 (undefined for TPAUSE and UMWAIT)")

    def describe(self, displacement: int | None = None) -> str:
        size = self.operand_size
        return f"register {_reg_name(self.operand_reg)}" + (f", {size}-bit" if size else "")


class MemoryOperand(_MemoryForm):
    """VMCLEAR, VMPTRLD, VMPTRST, VMXON, XRSTORS, XSAVES: one memory operand."""
    __slots__ = ()
    scaling = Bits(1, 0)
    address_size = Bits(9, 7, _size)
    segment = Bits(17, 15, enum_or_int(SegmentRegister))
    index_reg = Bits(21, 18, Gpr)
    index_invalid = Bits(22)
    base_reg = Bits(26, 23, Gpr)
    base_invalid = Bits(27)

    def describe(self, displacement: int | None = None) -> str:
        return f"memory operand {self.operand(displacement)} ({self._address_text()})"


class VmreadVmwrite(_MemoryForm):
    """VMREAD, VMWRITE: Reg2 holds the field encoding; the other operand is Reg1 or memory."""
    __slots__ = ()
    scaling = Bits(1, 0)
    reg1 = Bits(6, 3, Gpr, doc="register operand (undefined for memory operands)")
    address_size = Bits(9, 7, _size)
    mem_reg = Bits(10, doc="1: register operand, 0: memory operand")
    segment = Bits(17, 15, enum_or_int(SegmentRegister))
    index_reg = Bits(21, 18, Gpr)
    index_invalid = Bits(22)
    base_reg = Bits(26, 23, Gpr)
    base_invalid = Bits(27)
    reg2 = Bits(31, 28, Gpr, doc="the register holding the VMCS-field encoding")

    @property
    def is_memory(self) -> bool:
        return not self.mem_reg

    def describe(self, displacement: int | None = None) -> str:
        other = (_reg_name(self.reg1) if self.mem_reg
                 else f"{self.operand(displacement)} ({self._address_text()})")
        return f"field encoding in {_reg_name(self.reg2)}, operand {other}"


LAYOUTS: dict[int, type[InstructionInfo]] = {
    ExitReason.IO_INSTRUCTION: InsOuts,
    ExitReason.INVEPT: Invalidation,
    ExitReason.INVPCID: Invalidation,
    ExitReason.INVVPID: Invalidation,
    ExitReason.GDTR_IDTR: DescriptorTable,
    ExitReason.LDTR_TR: LdtrTr,
    ExitReason.RDRAND: RegisterOperand,
    ExitReason.RDSEED: RegisterOperand,
    ExitReason.TPAUSE: RegisterOperand,
    ExitReason.UMWAIT: RegisterOperand,
    ExitReason.VMCLEAR: MemoryOperand,
    ExitReason.VMPTRLD: MemoryOperand,
    ExitReason.VMPTRST: MemoryOperand,
    ExitReason.VMON: MemoryOperand,
    ExitReason.XRSTORS: MemoryOperand,
    ExitReason.XSAVES: MemoryOperand,
    ExitReason.VMREAD: VmreadVmwrite,
    ExitReason.VMWRITE: VmreadVmwrite,
}
"""Basic exit reason -> instruction-information layout; others get `InstructionInfo`.
For I/O instructions the field is defined only for INS/OUTS, and only on processors that set
IA32_VMX_BASIC bit 54."""


def for_reason(reason: int, raw: int) -> InstructionInfo:
    """Decode `raw` with the layout of basic exit reason `reason` (bits 15:0 are used)."""
    return LAYOUTS.get(int(reason) & 0xFFFF, InstructionInfo)(raw)
