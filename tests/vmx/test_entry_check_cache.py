"""The VM-entry checks remembered per VMCS (vmx.checkcache, vmx._vmcs.CheckMemo) give exactly
what running every check of 27.2 and 27.3.1 gives: after any VMWRITE, after VM exits, and when
a check depends on memory (VMCS link pointer, 27.3.1.5)."""
import pytest
from hypothesis import given, settings, strategies as st

import vmx
from vmx import checkcache, entry
from vmx.fields import FIELDS
from x86.asm import assemble

F = vmx.Field
GUEST = 0x200000
LINK = 0x12000


def _machine():
    m = vmx.Machine(memory_size=64 << 20)
    cpu = m.cpu
    vmx.enable(cpu)
    for pa in (0x10000, 0x11000, LINK):
        m.memory.write_u32(pa, m.profile.revision_id)
    cpu.vmxon(0x10000)
    cpu.vmclear(0x11000)
    cpu.vmptrld(0x11000)
    m.memory.write(GUEST, assemble("1: cpuid\njmp 1b", address=GUEST))
    vmx.VmcsBuilder(cpu).write(guest_rip=GUEST, guest_rsp=0x180000)
    return m


def _uncached(cpu, launch):
    ctx = entry.EntryContext(vmcs=cpu.vmx.current_vmcs(), profile=cpu.machine.profile,
                             read_phys=cpu.machine.memory.read, launch=launch,
                             host_lma=bool(cpu.efer & 0x400), vmxon_pointer=cpu.vmx.vmxon_pointer)
    return entry.run_checks(ctx)


def _same(cpu, launch=False):
    cached = checkcache.entry_checks(cpu, cpu.vmx.current_vmcs(), launch)
    assert cached == _uncached(cpu, launch)
    return cached


def test_a_vmwrite_after_a_successful_entry_is_checked_at_the_next_vmresume():
    """27.2.1: PIN_BASED_VM_EXEC_CONTROL = 0 breaks the allowed-0 settings -> VMfailValid(7),
    even though the previous VM entry passed every check."""
    m = _machine()
    cpu = m.cpu
    ex = cpu.vmlaunch()
    assert ex.reason == vmx.ExitReason.CPUID
    assert _same(cpu) is None
    cpu.vmwrite(F.PIN_BASED_VM_EXEC_CONTROL, 0)
    failure = _same(cpu)
    assert failure is not None and failure.kind == "control"
    with pytest.raises(vmx.VmFailValid) as e:
        cpu.vmresume()
    assert e.value.error == 7 and e.value.check == failure.check


@pytest.mark.parametrize("field,value,kind", [
    (F.HOST_TR_SELECTOR, 0, "host"),              # 27.2.3: TR selector must not be 0000H
    (F.HOST_RIP, 1 << 63, "host"),                # 27.2.3: canonical
    (F.GUEST_RFLAGS, 0, "guest"),                 # 27.3.1.4: bit 1 must be 1
    (F.GUEST_CS_AR_BYTES, 0, "guest"),            # 27.3.1.2: CS usable, type
    (F.GUEST_ACTIVITY_STATE, 7, "guest"),         # 27.3.1.5
])
def test_broken_rule_after_exits_is_caught(field, value, kind):
    m = _machine()
    cpu = m.cpu
    cpu.vmlaunch()
    for _ in range(3):
        cpu.vmwrite(F.GUEST_RIP, cpu.vmread(F.GUEST_RIP) + cpu.vmread(F.VM_EXIT_INSTRUCTION_LEN))
        assert _same(cpu) is None
        cpu.vmresume()
    old = cpu.vmread(field)
    cpu.vmwrite(field, value)
    assert _same(cpu).kind == kind
    cpu.vmwrite(field, old)
    assert _same(cpu) is None


def test_memory_dependent_checks_see_memory_changes():
    """27.3.1.5: with a VMCS link pointer other than FFFFFFFF_FFFFFFFFH, the revision identifier
    in memory at the pointer is checked at every VM entry."""
    m = _machine()
    cpu = m.cpu
    cpu.vmwrite(F.VMCS_LINK_POINTER, LINK)
    assert _same(cpu, launch=True) is None
    m.memory.write_u32(LINK, m.profile.revision_id ^ 1)
    failure = _same(cpu, launch=True)
    assert failure is not None and failure.kind == "guest"
    m.memory.write_u32(LINK, m.profile.revision_id)
    assert _same(cpu, launch=True) is None


WRITABLE = [f.encoding for f in FIELDS if not f.read_only]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(WRITABLE),
                          st.one_of(st.integers(0, (1 << 64) - 1), st.sampled_from([0, 1, 2, 0xFFFF, 1 << 31]))),
                max_size=6),
       st.booleans())
def test_cached_checks_equal_all_checks_after_any_vmwrites(writes, restore):
    """Differential: after each VMWRITE (and after putting the old value back) the remembered
    checks give the same first failure (kind, error, `.check`, qualification) as running all."""
    m = _machine()
    cpu = m.cpu
    _same(cpu, launch=True)
    for encoding, value in writes:
        old = cpu.vmread(encoding)
        cpu.vmwrite(encoding, value)
        _same(cpu, launch=True)
        if restore:
            cpu.vmwrite(encoding, old)
            _same(cpu, launch=True)


def test_a_guest_field_changed_and_restored_between_round_trips_is_judged_by_value():
    """27.3.1.4: "RIP. ... If the processor supports N < 64 linear-address bits, bits 63:N must be
    identical" in 64-bit mode. The skip that proves every check would pass (CheckMemo.all_pass)
    compares values: a non-canonical RIP written after many passing round trips fails at once,
    and the old value passes again."""
    m = _machine()
    cpu = m.cpu
    ex = cpu.vmlaunch()
    for _ in range(3):
        cpu.vmwrite(F.GUEST_RIP, cpu.vmread(F.GUEST_RIP) + ex.instruction_length)
        ex = cpu.vmresume()
        assert ex.reason == vmx.ExitReason.CPUID
    good = cpu.vmread(F.GUEST_RIP)
    cpu.vmwrite(F.GUEST_RIP, 0x0000_8000_0000_0000)
    ex = cpu.vmresume()
    assert ex.entry_failure and ex.reason == vmx.ExitReason.INVALID_STATE
    assert "RIP" in str(ex.check)
    cpu.vmwrite(F.GUEST_RIP, good)
    ex = cpu.vmresume()
    assert not ex.entry_failure and ex.reason == vmx.ExitReason.CPUID


def test_a_control_written_with_its_current_value_keeps_the_proof():
    """VMWRITE of the value a control already holds changes nothing the checks of 27.2 read;
    writing an invalid value is caught (VMfailValid 7) even after round trips were skipped."""
    m = _machine()
    cpu = m.cpu
    ex = cpu.vmlaunch()
    proc = cpu.vmread(F.CPU_BASED_VM_EXEC_CONTROL)
    cpu.vmwrite(F.CPU_BASED_VM_EXEC_CONTROL, proc)
    cpu.vmwrite(F.GUEST_RIP, cpu.vmread(F.GUEST_RIP) + ex.instruction_length)
    assert cpu.vmresume().reason == vmx.ExitReason.CPUID
    cpu.vmwrite(F.CPU_BASED_VM_EXEC_CONTROL, 0)
    with pytest.raises(vmx.VmFailValid) as e:
        cpu.vmresume()
    assert e.value.error == 7
