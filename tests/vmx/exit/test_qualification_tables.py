"""SDM Vol. 3C 28.2.1 "Basic VM-Exit Information": the small qualification tables
(Table 28-1 debug exceptions, 28-2 task switch, 28-4 MOV DR, 28-6 APIC access) and the
single-value qualifications (INVLPG, #PF, SIPI, displacement, MWAIT, EOI, APIC write, PML)."""
import pytest
from hypothesis import given, strategies as st

from vmx import ExitReason
from vmx.qualification import (
    ApicAccess, ApicAccessType, ApicWrite, DebugException, Displacement, DrDirection,
    EoiInduced, InitSipi, LAYOUTS, LinearAddress, MovDr, Mwait, PmlFull, Qualification,
    TaskSwitch, TaskSwitchSource, for_reason)


@pytest.mark.parametrize("raw,fields", [
    (0x1, {"b0": True}), (0x2, {"b1": True}), (0x4, {"b2": True}), (0x8, {"b3": True}),
    (0x800, {"bld": True}), (0x2000, {"bd": True}), (0x4000, {"bs": True}),
    (0x10000, {"rtm": True}),
])
def test_debug_exception_bits(raw, fields):
    """Table 28-1: "3:0 B3-B0 ... 11 BLD ... 13 BD ... 14 BS ... 16 RTM"."""
    q = DebugException(raw)
    assert {k: v for k, v in q.fields().items() if v} == fields


def test_debug_exception_describe():
    q = DebugException(0x4001)
    assert q.breakpoints == (0,)
    assert q.describe() == "debug exception: breakpoint condition B0, single step (BS)"


@pytest.mark.parametrize("raw,selector,source,word", [
    (0x0000_0028, 0x28, TaskSwitchSource.CALL, "CALL"),
    (0x4000_0030, 0x30, TaskSwitchSource.IRET, "IRET"),
    (0x8000_0038, 0x38, TaskSwitchSource.JMP, "JMP"),
    (0xC000_0040, 0x40, TaskSwitchSource.TASK_GATE, "a task gate in the IDT"),
])
def test_task_switch(raw, selector, source, word):
    """Table 28-2: "15:0 Selector of task-state segment (TSS) to which the guest attempted to
    switch. 31:30 Source of task switch initiation: 0 CALL, 1 IRET, 2 JMP, 3 task gate in IDT"."""
    q = TaskSwitch(raw)
    assert (q.selector, q.source) == (selector, source)
    assert q.describe().endswith(word)


@pytest.mark.parametrize("insn,raw,dr,direction,gpr,sentence", [
    ("MOV DR7, RAX", 0x007, 7, DrDirection.MOV_TO_DR, 0, "MOV to DR7 from RAX"),
    ("MOV RBX, DR6", 0x316, 6, DrDirection.MOV_FROM_DR, 3, "MOV from DR6 to RBX"),
    ("MOV DR0, R12", 0xC00, 0, DrDirection.MOV_TO_DR, 12, "MOV to DR0 from R12"),
])
def test_mov_dr(insn, raw, dr, direction, gpr, sentence):
    """Table 28-4: "2:0 Number of debug register. 4 Direction of access (0 = MOV to DR;
    1 = MOV from DR). 11:8 General-purpose register"."""
    q = MovDr(raw)
    assert (q.dr, q.direction, q.gpr) == (dr, direction, gpr)
    assert q.describe() == sentence


@pytest.mark.parametrize("raw,offset,kind", [
    (0x0080, 0x80, ApicAccessType.LINEAR_READ),          # read of the TPR
    (0x10B0, 0xB0, ApicAccessType.LINEAR_WRITE),         # write of the EOI register
    (0x2000, 0x000, ApicAccessType.LINEAR_FETCH),
    (0x3000, 0x000, ApicAccessType.LINEAR_EVENT_DELIVERY),
    (0xA000, 0x000, ApicAccessType.GUEST_PHYSICAL_EVENT_DELIVERY),
    (0xF300, 0x300, ApicAccessType.GUEST_PHYSICAL_INSTRUCTION),
])
def test_apic_access(raw, offset, kind):
    """Table 28-6: "11:0 offset of access within the APIC page. 15:12 Access type: 0 linear
    data read, 1 linear data write, 2 linear instruction fetch, 3 linear access during event
    delivery, 10 guest-physical access during event delivery, 15 guest-physical access for an
    instruction fetch or during instruction execution; other values not used"."""
    q = ApicAccess(raw)
    assert (q.offset, q.access_type) == (offset, kind)
    assert q.describe().startswith("APIC access: ")


def test_apic_access_unused_type_decodes_as_a_number():
    q = ApicAccess(0x5000)
    assert q.access_type == 5 and not isinstance(q.access_type, ApicAccessType)
    assert "access type 5" in q.describe()


def test_single_value_qualifications():
    """28.2.1: INVLPG -> the linear-address operand; SIPI -> bits 7:0 the vector; MWAIT -> 1 if
    monitoring hardware armed; EOI-induced -> bits 7:0 the vector; APIC write -> bits 11:0 the
    page offset; PML full -> bit 12 NMI unblocking due to IRET."""
    assert LinearAddress(0xFFFF_8000_0000_1000).linear_address == 0xFFFF_8000_0000_1000
    assert InitSipi(0x10).vector == 0x10 and "0x10000" in InitSipi(0x10).describe()
    assert Mwait(1).armed and not Mwait(0).armed
    assert EoiInduced(0x31).vector == 0x31
    assert ApicWrite(0x300).offset == 0x300
    assert PmlFull(0x1000).nmi_unblocking


@pytest.mark.parametrize("raw,disp", [(0x10, 0x10), (0xFFFF_FFFF_FFFF_FFF8, -8), (0, 0)])
def test_displacement_is_sign_extended(raw, disp):
    """28.2.1: for INVEPT ... XSAVES "the exit qualification receives the value of the
    instruction's displacement field, which is sign-extended to 64 bits if necessary"."""
    q = Displacement(raw)
    assert q == raw and q.displacement == disp


@pytest.mark.parametrize("reason,cls", [
    (ExitReason.TASK_SWITCH, TaskSwitch), (ExitReason.SIPI_SIGNAL, InitSipi),
    (ExitReason.INVLPG, LinearAddress), (ExitReason.DR_ACCESS, MovDr),
    (ExitReason.APIC_ACCESS, ApicAccess), (ExitReason.VMREAD, Displacement),
    (ExitReason.GDTR_IDTR, Displacement), (ExitReason.INVEPT, Displacement),
    (ExitReason.XSAVES, Displacement), (ExitReason.CPUID, Qualification),
    (ExitReason.EPT_MISCONFIG, Qualification),
])
def test_for_reason(reason, cls):
    assert type(for_reason(reason, 0)) is cls


def test_for_reason_exceptions_by_vector():
    """28.2.1: a #DB stores Table 28-1; a #PF stores the faulting linear address."""
    assert type(for_reason(ExitReason.EXCEPTION_NMI, 0x4000, vector=1)) is DebugException
    assert type(for_reason(ExitReason.EXCEPTION_NMI, 0x1000, vector=14)) is LinearAddress
    assert type(for_reason(ExitReason.EXCEPTION_NMI, 0, vector=13)) is Qualification
    assert type(for_reason(ExitReason.EXCEPTION_NMI | (1 << 31), 0)) is Qualification


def test_str_and_repr():
    q = MovDr(0x7)
    assert str(q) == "7" and repr(q) == "MovDr(0x7)" and f"{q:#x}" == "0x7"


@given(reason=st.integers(0, 0xFFFF_FFFF), raw=st.integers(0, (1 << 64) - 1),
       vector=st.one_of(st.none(), st.integers(0, 255)))
def test_any_value_decodes(reason, raw, vector):
    """Decoding accepts values a processor would never store (reserved bits, unused codes)."""
    q = for_reason(reason, raw, vector)
    assert q == raw
    assert isinstance(q.describe(), str)
    q.fields()
    assert q.reserved_bits & ~raw == 0


def test_every_layout_has_a_sentence_and_fields():
    for cls in set(LAYOUTS.values()):
        assert cls(0).describe() and isinstance(cls(0).fields(), dict)
