"""The VM-exit instruction-information field and the displacement qualification written for
instructions that exit (SDM Vol. 3C 28.2.5 "Information for VM Exits Due to Instruction
Execution", Tables 28-8 to 28-14; 28.2.1 for the displacement). `vmx.instruction_info` decodes
what this encodes."""
from __future__ import annotations

import iced_x86

_M = iced_x86.Mnemonic
from x86.decode import K_REG  # noqa: E402  (the decoded-record vocabulary)
_ASZ = {2: 0, 4: 1, 8: 2}                 # address size: 0 16-bit, 1 32-bit, 2 64-bit
_DESC_ID = {_M.SGDT: 0, _M.SIDT: 1, _M.LGDT: 2, _M.LIDT: 3}
_LDTR_ID = {_M.SLDT: 0, _M.STR: 1, _M.LLDT: 2, _M.LTR: 3}
_PLAIN_MEMORY = {_M.VMCLEAR, _M.VMPTRLD, _M.VMPTRST, _M.VMXON}
_INVALIDATION = {_M.INVEPT, _M.INVVPID, _M.INVPCID}
_STRING_IO = {_M.INSB, _M.INSW, _M.INSD, _M.OUTSB, _M.OUTSW, _M.OUTSD}
DISPLACEMENT_QUALIFIED = set(_DESC_ID) | set(_LDTR_ID) | _PLAIN_MEMORY | _INVALIDATION | {_M.VMREAD, _M.VMWRITE}
ENCODED = DISPLACEMENT_QUALIFIED | _STRING_IO | {_M.RDRAND, _M.RDSEED}
"""The mnemonics `encode` gives instruction information or a displacement for (all others: 0)."""


def _memory_part(ins: dict) -> int:
    """Bits common to the memory-operand layouts: scaling 1:0, address size 9:7, segment 17:15,
    index register 21:18 (invalid: bit 22), base register 26:23 (invalid: bit 27)."""
    v = ins["scale"] | (_ASZ.get(ins["asz"], 2) << 7) | (ins["seg"] << 15)
    v |= (ins["index"] << 18) if ins["index"] < 16 else (1 << 22)
    v |= (ins["base"] << 23) if ins["base"] < 16 else (1 << 27)
    return v


def _reg(offset: int) -> int:
    return offset // 8


def encode(ins: dict) -> tuple[int, int | None]:
    """(instruction information, displacement qualification or None) for the current instruction."""
    m = ins["mnem"]
    disp = ins["disp"] if m in DISPLACEMENT_QUALIFIED else None
    if m in _STRING_IO:                                          # Table 28-8
        return (_ASZ.get(ins["asz"], 2) << 7) | (ins["seg"] << 15), None
    if m in (_M.RDRAND, _M.RDSEED):                              # Table 28-12
        return (_reg(ins["r0"]) << 3) | ({2: 0, 4: 1, 8: 2}[ins["osz"]] << 11), None
    if m in _DESC_ID:                                            # Table 28-10
        op32 = 1 if ins["osz"] != 2 else 0
        return _memory_part(ins) | (op32 << 11) | (_DESC_ID[m] << 28), disp
    if m in _LDTR_ID:                                            # Table 28-11
        if ins["k0"] == K_REG:
            return (_reg(ins["r0"]) << 3) | (1 << 10) | (_LDTR_ID[m] << 28), disp
        return _memory_part(ins) | (_LDTR_ID[m] << 28), disp
    if m in _INVALIDATION:                                       # Table 28-9
        return _memory_part(ins) | (_reg(ins["r0"]) << 28), disp
    if m in _PLAIN_MEMORY:                                       # Table 28-13
        return _memory_part(ins), disp
    if m in (_M.VMREAD, _M.VMWRITE):                             # Table 28-14
        # VMREAD r/m, reg (field); VMWRITE reg (field), r/m
        rm_kind, rm_reg, field_reg = ((ins["k0"], ins["r0"], ins["r1"]) if m == _M.VMREAD
                                      else (ins["k1"], ins["r1"], ins["r0"]))
        if rm_kind == K_REG:
            v = (_reg(rm_reg) << 3) | (1 << 10)
        else:
            v = _memory_part(ins)
        return v | (_reg(field_reg) << 28), disp
    return 0, None
