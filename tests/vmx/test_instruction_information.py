"""The VM-exit instruction-information field (SDM Vol. 3C 28.2.5, Tables 28-8 to 28-14) and the
displacement exit qualification of memory-operand instructions (28.2.1), from real guest code."""
import pytest

from vmx import ExitReason as R, ProcBased as P, SecondaryProcBased as S
from guest import vm


def exit_for(source, **controls):
    return vm(source + "\nhlt", **controls).cpu.vmlaunch()


def test_vmread_register_form():
    """Table 28-14: VMREAD rbx, rcx: Reg1 (6:3) = RBX, mem/reg (10) = 1, Reg2 (31:28) = RCX."""
    ex = exit_for("vmread rbx, rcx")
    info = ex.instruction_info
    assert ex.reason == R.VMREAD
    assert (info.mem_reg, int(info.reg1), int(info.reg2)) == (1, 3, 1)


def test_vmwrite_memory_form_and_displacement():
    """Table 28-14 with a memory operand: scaling, address size 2 (64-bit), segment DS, index,
    base; the exit qualification is the displacement (28.2.1)."""
    ex = exit_for("vmwrite rdx, qword ptr [rsi + rdi*4 - 0x20]")
    info = ex.instruction_info
    assert (info.mem_reg, int(info.reg2), info.scaling, int(info.address_size)) == (0, 2, 2, 64)
    assert (int(info.base_reg), int(info.index_reg), info.base_invalid, info.index_invalid) == (6, 7, 0, 0)
    assert int(info.segment) == 3
    assert int(ex.qualification) & 0xFFFFFFFFFFFFFFFF == (-0x20) & 0xFFFFFFFFFFFFFFFF


def test_vmptrld_without_index():
    """Table 28-13: an absent index register sets bit 22 (index invalid)."""
    ex = exit_for("vmptrld qword ptr [rax + 0x10]")
    info = ex.instruction_info
    assert ex.reason == R.VMPTRLD
    assert (info.index_invalid, info.base_invalid, int(info.base_reg)) == (1, 0, 0)
    assert int(ex.qualification) == 0x10


def test_invept_type_register():
    """Table 28-9: Reg2 (31:28) is the register holding the INVEPT type."""
    ex = exit_for("invept r9, xmmword ptr [rbx]")
    assert ex.reason == R.INVEPT and int(ex.instruction_info.reg2) == 9


@pytest.mark.parametrize("source,identity", [("sgdt [rax]", 0), ("sidt [rax]", 1),
                                             ("lgdt [rax]", 2), ("lidt [rax]", 3)])
def test_descriptor_table_identity(source, identity):
    """Table 28-10: bits 29:28 name the instruction (0 SGDT, 1 SIDT, 2 LGDT, 3 LIDT); bit 11 is
    the operand size (1 = 32-bit, which 64-bit mode reports)."""
    ex = exit_for(source, secondary=S.DESC)
    assert ex.reason == R.GDTR_IDTR
    assert (int(ex.instruction_info) >> 28) & 3 == identity
    assert (int(ex.instruction_info) >> 11) & 1 == 1


def test_ldtr_tr_register_form():
    """Table 28-11: SLDT with a register operand: Reg1 in 6:3, mem/reg = 1, identity 0."""
    ex = exit_for("sldt ecx", secondary=S.DESC)
    v = int(ex.instruction_info)
    assert ex.reason == R.LDTR_TR and (v >> 3) & 0xF == 1 and (v >> 10) & 1 == 1 and (v >> 28) & 3 == 0


@pytest.mark.parametrize("source,reg,size", [("rdrand ecx", 1, 1), ("rdseed r10", 10, 2),
                                             ("rdrand ax", 0, 0)])
def test_rdrand_rdseed(source, reg, size):
    """Table 28-12: destination register 6:3, operand size 12:11 (0 16-bit, 1 32-bit, 2 64-bit)."""
    control = S.RDRAND_EXITING if "rdrand" in source else S.RDSEED_EXITING
    v = int(exit_for(source, secondary=control).instruction_info)
    assert ((v >> 3) & 0xF, (v >> 11) & 3) == (reg, size)


def test_outs_segment_and_address_size():
    """Table 28-8: INS/OUTS report the address size (9:7) and, for OUTS, the segment (17:15)."""
    ex = exit_for("mov dx, 0x80\nmov ecx, 2\nrep outs dx, byte ptr es:[rsi]", proc=P.UNCOND_IO_EXITING)
    v = int(ex.instruction_info)
    assert ((v >> 7) & 7, (v >> 15) & 7) == (2, 0)
