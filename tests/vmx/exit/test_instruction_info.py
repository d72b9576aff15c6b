"""SDM Vol. 3C 28.2.5 "Information for VM Exits Due to Instruction Execution": the formats of
the VM-exit instruction-information field ("Format of the VM-Exit Instruction-Information Field
as Used for ...").

Common rows: "1:0 Scaling: 0 no scaling, 1 scale by 2, 2 scale by 4, 3 scale by 8. 9:7 Address
size: 0 16-bit, 1 32-bit, 2 64-bit. 17:15 Segment register: 0 ES, 1 CS, 2 SS, 3 DS, 4 FS, 5 GS.
21:18 IndexReg (0 RAX ... 15 R15). 22 IndexReg invalid. 26:23 BaseReg. 27 BaseReg invalid."
"""
import pytest
from hypothesis import given, strategies as st

from vmx import ExitReason
from vmx.instruction_info import (
    DescriptorTable, DescriptorTableInstruction, InsOuts, InstructionInfo, Invalidation, LdtrTr,
    LdtrTrInstruction, MemoryOperand, RegisterOperand, SegmentRegister, VmreadVmwrite,
    for_reason)
from vmx.qualification import Gpr


def mem(scaling=0, addr=2, seg=3, index=None, base=None):
    """Compose the common memory-operand bits as the tables place them."""
    raw = scaling | (addr << 7) | (seg << 15)
    raw |= (index << 18) if index is not None else (1 << 22)
    raw |= (base << 23) if base is not None else (1 << 27)
    return raw


def test_ins_outs():
    """INS and OUTS: "9:7 Address size ... 17:15 Segment register (undefined for INS)"."""
    info = InsOuts((1 << 7) | (3 << 15))      # OUTSB with 32-bit addresses, DS
    assert info.address_size == 32 and info.segment == SegmentRegister.DS
    assert list(info.fields()) == ["address_size", "segment"]


def test_invept_descriptor_and_type_register():
    """INVEPT RCX, [RAX]: Reg2 (31:28) = RCX, base RAX, no index, 64-bit, DS."""
    info = Invalidation(mem(base=0) | (1 << 28))
    assert (info.base_reg, info.base_invalid, info.index_invalid) == (Gpr.RAX, False, True)
    assert info.reg2 == Gpr.RCX and info.address_size == 64
    assert info.segment == SegmentRegister.DS
    assert info.describe() == "descriptor at ds:[rax+disp] (64-bit address), type in rcx"
    assert info.describe(displacement=0) == "descriptor at ds:[rax] (64-bit address), type in rcx"


@pytest.mark.parametrize("identity,name", [(0, "SGDT"), (1, "SIDT"), (2, "LGDT"), (3, "LIDT")])
def test_descriptor_table_identity(identity, name):
    """LIDT/LGDT/SIDT/SGDT: "29:28 Instruction identity: 0 SGDT, 1 SIDT, 2 LGDT, 3 LIDT"."""
    info = DescriptorTable(mem(base=3) | (identity << 28))
    assert info.instruction == DescriptorTableInstruction[name]
    assert info.describe(displacement=8) == f"{name} ds:[rbx+0x8] (64-bit address)"


def test_descriptor_table_operand_size_and_scaled_index():
    """Bit 11 operand size: 0 16-bit, 1 32-bit. LGDT [ebx+esi*4] in 32-bit code."""
    info = DescriptorTable(mem(scaling=2, addr=1, index=6, base=3) | (1 << 11) | (2 << 28))
    assert info.operand_size == 32 and info.address_size == 32
    assert info.scaling == 2 and info.scale == 4
    assert (info.index_reg, info.base_reg) == (Gpr.RSI, Gpr.RBX)
    assert info.operand(-4) == "ds:[rbx+rsi*4-0x4]"


@pytest.mark.parametrize("identity,name", [(0, "SLDT"), (1, "STR"), (2, "LLDT"), (3, "LTR")])
def test_ldtr_tr_register_form(identity, name):
    """LLDT/LTR/SLDT/STR: "6:3 Reg1 ... 10 Mem/Reg (0 = memory; 1 = register) ...
    29:28 Instruction identity: 0 SLDT, 1 STR, 2 LLDT, 3 LTR"."""
    info = LdtrTr((2 << 3) | (1 << 10) | (identity << 28))
    assert info.instruction == LdtrTrInstruction[name]
    assert info.mem_reg and not info.is_memory and info.reg1 == Gpr.RDX
    assert info.describe() == f"{name} rdx"


def test_ldtr_tr_memory_form():
    info = LdtrTr(mem(base=5) | (3 << 28))
    assert info.is_memory and info.describe() == "LTR ds:[rbp+disp] (64-bit address)"


@pytest.mark.parametrize("raw,reg,size", [
    ((0 << 3) | (1 << 11), Gpr.RAX, 32),      # RDRAND EAX
    ((9 << 3) | (2 << 11), Gpr.R9, 64),       # RDSEED R9
    ((1 << 3) | (0 << 11), Gpr.RCX, 16),      # RDRAND CX
    ((1 << 3) | (3 << 11), Gpr.RCX, None),    # operand size 3 is not used
])
def test_rdrand_rdseed(raw, reg, size):
    """RDRAND/RDSEED/TPAUSE/UMWAIT: "6:3 Operand register ... 12:11 Operand size: 0 16-bit,
    1 32-bit, 2 64-bit; the value 3 is not used"."""
    info = RegisterOperand(raw)
    assert (info.operand_reg, info.operand_size) == (reg, size)


def test_vmptrld_memory_operand():
    """VMCLEAR/VMPTRLD/VMPTRST/VMXON/XRSTORS/XSAVES: memory operand only; bit 10 cleared."""
    info = MemoryOperand(mem(seg=2, base=4))
    assert info.segment == SegmentRegister.SS and info.base_reg == Gpr.RSP
    assert info.describe(displacement=0x10) == "memory operand ss:[rsp+0x10] (64-bit address)"


def test_vmread_register_and_memory():
    """VMREAD/VMWRITE: "6:3 Reg1 ... 10 Mem/Reg ... 31:28 Reg2"."""
    reg = VmreadVmwrite((3 << 3) | (1 << 10) | (1 << 28))   # VMREAD RBX, RCX
    assert reg.mem_reg and reg.reg1 == Gpr.RBX and reg.reg2 == Gpr.RCX
    assert reg.describe() == "field encoding in rcx, operand rbx"
    memory = VmreadVmwrite(mem(base=7) | (0 << 28))
    assert memory.is_memory and memory.reg2 == Gpr.RAX


@pytest.mark.parametrize("reason,cls", [
    (ExitReason.IO_INSTRUCTION, InsOuts), (ExitReason.INVEPT, Invalidation),
    (ExitReason.INVPCID, Invalidation), (ExitReason.INVVPID, Invalidation),
    (ExitReason.GDTR_IDTR, DescriptorTable), (ExitReason.LDTR_TR, LdtrTr),
    (ExitReason.RDRAND, RegisterOperand), (ExitReason.RDSEED, RegisterOperand),
    (ExitReason.TPAUSE, RegisterOperand), (ExitReason.UMWAIT, RegisterOperand),
    (ExitReason.VMCLEAR, MemoryOperand), (ExitReason.VMPTRLD, MemoryOperand),
    (ExitReason.VMPTRST, MemoryOperand), (ExitReason.VMON, MemoryOperand),
    (ExitReason.XRSTORS, MemoryOperand), (ExitReason.XSAVES, MemoryOperand),
    (ExitReason.VMREAD, VmreadVmwrite), (ExitReason.VMWRITE, VmreadVmwrite),
    (ExitReason.CPUID, InstructionInfo),
])
def test_for_reason(reason, cls):
    assert type(for_reason(reason, 0)) is cls


@given(reason=st.integers(0, 0xFFFF), raw=st.integers(0, 0xFFFF_FFFF),
       disp=st.one_of(st.none(), st.integers(-(1 << 31), 1 << 31)))
def test_any_value_decodes(reason, raw, disp):
    """Unused encodings (segment 6-7, address size 3) decode without raising."""
    info = for_reason(reason, raw)
    assert info == raw
    assert info.describe(displacement=disp)
    info.fields()
