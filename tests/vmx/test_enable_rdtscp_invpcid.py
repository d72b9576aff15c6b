"""Instructions a secondary processor-based control enables: RDTSCP ("enable RDTSCP", bit 3)
and INVPCID ("enable INVPCID", bit 12), from real guest code (SDM Vol. 3C 25.6.2, 26.1.3, 26.3).

26.3 RDTSCP: "If the 'enable RDTSCP' VM-execution control is 0, RDTSCP causes an invalid-opcode
exception (#UD). This exception takes priority over any other exception the instruction may
incur." 26.1.3: "The RDTSCP instruction causes a VM exit if the 'RDTSC exiting' and 'enable
RDTSCP' VM-execution controls are both 1."

26.3 INVPCID: "If the 'enable INVPCID' VM-execution control is 0, INVPCID causes an
invalid-opcode exception (#UD). This exception takes priority over any other exception the
instruction may incur." 26.1.3: "INVPCID. The INVPCID instruction causes a VM exit if the
'INVLPG exiting' and 'enable INVPCID' VM-execution controls are both 1." With "INVLPG exiting"
0 it executes. 25.6.2: with "activate secondary controls" 0 every secondary control is 0.
"""
import pytest

from vmx import ExitReason as R, Field as F, ProcBased as P, SecondaryProcBased as S
from vmx.qualification import Gpr
from guest import GUEST_CODE, user_mode, vm

UD = 1 << 6


def run(source, exceptions=UD, **controls):
    m = vm(source, **controls)
    m.cpu.vmwrite(F.EXCEPTION_BITMAP, exceptions)
    return m, m.cpu.vmlaunch()


def is_exception(ex, vector):
    return ex.reason == R.EXCEPTION_NMI and ex.interruption_info.vector == vector


# --- RDTSCP --------------------------------------------------------------------------------------

@pytest.mark.parametrize("controls", [{}, {"secondary": S.DESC}, {"proc": P.RDTSC_EXITING, "secondary": S.DESC}])
def test_rdtscp_without_enable_rdtscp_is_ud(controls):
    """#UD, not a VM exit, even with "RDTSC exiting" 1 (and without secondary controls at all)."""
    m, ex = run("rdtscp\nvmcall", **controls)
    assert is_exception(ex, 6) and m.cpu.vmread(F.GUEST_RIP) == GUEST_CODE


def test_rdtscp_with_enable_rdtscp_and_rdtsc_exiting_exits_with_reason_51():
    m, ex = run("rdtscp\nvmcall", proc=P.RDTSC_EXITING, secondary=S.ENABLE_RDTSCP)
    assert ex.reason == R.RDTSCP and ex.instruction_length == 3
    assert m.cpu.vmread(F.GUEST_RIP) == GUEST_CODE


def test_rdtscp_with_enable_rdtscp_executes():
    m, ex = run("mov ecx, 77\nrdtscp\nvmcall", secondary=S.ENABLE_RDTSCP)
    assert ex.reason == R.VMCALL and m.cpu.rcx == m.cpu.rdmsr(0xC0000103)


def test_rdtscp_ud_takes_priority_over_the_cr4_tsd_fault():
    """At CPL 3 with CR4.TSD = 1 RDTSCP would be #GP(0): the #UD goes first."""
    m = vm("rdtscp\nvmcall")
    user_mode(m)
    m.cpu.vmwrite(F.GUEST_CR4, m.cpu.vmread(F.GUEST_CR4) | 1 << 2)
    m.cpu.vmwrite(F.EXCEPTION_BITMAP, UD | 1 << 13)
    assert is_exception(m.cpu.vmlaunch(), 6)
    m = vm("rdtscp\nvmcall", secondary=S.ENABLE_RDTSCP)
    user_mode(m)
    m.cpu.vmwrite(F.GUEST_CR4, m.cpu.vmread(F.GUEST_CR4) | 1 << 2)
    m.cpu.vmwrite(F.EXCEPTION_BITMAP, UD | 1 << 13)
    assert is_exception(m.cpu.vmlaunch(), 13)


def test_rdtsc_is_not_affected_by_enable_rdtscp():
    m, ex = run("rdtsc\nvmcall")
    assert ex.reason == R.VMCALL


# --- INVPCID -------------------------------------------------------------------------------------

DESCRIPTOR = 0x300000
INVPCID = "mov eax, 2\nmov rbx, 0x300000\ninvpcid rax, [rbx + 0x10]\nvmcall"
INVPCID_AT = GUEST_CODE + 5 + 7


@pytest.mark.parametrize("controls", [{}, {"proc": P.INVLPG_EXITING},
                                      {"proc": P.INVLPG_EXITING, "secondary": S.DESC}])
def test_invpcid_without_enable_invpcid_is_ud(controls):
    m, ex = run(INVPCID, **controls)
    assert is_exception(ex, 6) and m.cpu.vmread(F.GUEST_RIP) == INVPCID_AT


def test_invpcid_ud_takes_priority_over_the_cpl_fault():
    m = vm(INVPCID)
    user_mode(m)
    m.cpu.vmwrite(F.EXCEPTION_BITMAP, UD | 1 << 13)
    assert is_exception(m.cpu.vmlaunch(), 6)


def test_invpcid_with_enable_invpcid_and_invlpg_exiting_exits_with_reason_58():
    """28.2.1: the exit qualification is the displacement; 28.2.5 Table 28-9: the instruction
    information names the memory operand and the type register (Reg2)."""
    m, ex = run(INVPCID, proc=P.INVLPG_EXITING, secondary=S.ENABLE_INVPCID)
    assert ex.reason == R.INVPCID and ex.instruction_length == 6
    assert m.cpu.vmread(F.GUEST_RIP) == INVPCID_AT and int(ex.qualification) == 0x10
    info = ex.instruction_info
    assert (info.reg2, info.base_reg, info.base_invalid, info.index_invalid, info.address_size) == \
        (Gpr.RAX, Gpr.RBX, False, True, 64)


def test_the_invpcid_exit_precedes_faults_on_its_descriptor():
    """26.1.1: a fault-like VM exit has priority over the page fault reading the operand."""
    m, ex = run("mov eax, 2\nmov rbx, 0x8000000000\ninvpcid rax, [rbx]\nvmcall", exceptions=UD | 1 << 14,
                proc=P.INVLPG_EXITING, secondary=S.ENABLE_INVPCID)
    assert ex.reason == R.INVPCID


def test_invpcid_with_enable_invpcid_executes():
    """Type 2 (all contexts, global translations included) in the guest: it runs and the guest
    goes on; an invalid type is #GP(0) as outside VMX."""
    m, ex = run(INVPCID, secondary=S.ENABLE_INVPCID)
    assert ex.reason == R.VMCALL
    m, ex = run(INVPCID.replace("mov eax, 2", "mov eax, 4"), exceptions=1 << 13, secondary=S.ENABLE_INVPCID)
    assert is_exception(ex, 13) and ex.interruption_error_code == 0
