"""VMREAD/VMWRITE's fast path (vmx._vmcs, SDM Vol. 3C 31.3) against the Python functions it
stands in for: the same outcome (value, VMsucceed/VMfail with the same error and `.check`, or
the same fault), the same RFLAGS and the same VMCS contents, for any encoding and value, in and
out of the common case (no current VMCS, outside VMX operation, CPL 3)."""
import pytest
from hypothesis import given, settings, strategies as st

import vmx
import x86
from regions import VMCS_A, VMXON_REGION
from vmx import instructions as ins
from vmx.fields import FIELDS

F = vmx.Field
ENCODINGS = [f.encoding for f in FIELDS]

encodings = st.one_of(st.sampled_from(ENCODINGS),                        # every field, high too
                      st.sampled_from(ENCODINGS).map(lambda e: e ^ 1),    # "high" of a non-64-bit
                      st.integers(0, 0xFFFF), st.integers(0, (1 << 40)),  # mostly unsupported
                      st.integers(-5, -1))
values = st.one_of(st.integers(0, (1 << 64) - 1), st.integers(-(1 << 70), 1 << 70),
                   st.sampled_from([0, 1, 0xFFFF, 0xFFFFFFFF, 1 << 32, (1 << 64) - 1]))
STATES = ["common", "no-current", "outside", "cpl3", "flags-set"]


def _machine(state):
    m = vmx.Machine(memory_size=16 << 20, profile="default")
    for pa in (VMXON_REGION, VMCS_A):
        m.memory.write_u32(pa, m.profile.revision_id)
    cpu = m.cpu
    vmx.enable(cpu)
    if state == "outside":
        return m
    cpu.vmxon(VMXON_REGION)
    if state == "no-current":
        return m
    cpu.vmclear(VMCS_A)
    cpu.vmptrld(VMCS_A)
    for i, f in enumerate(FIELDS):          # something other than zeros in every field
        if not f.read_only and not f.high:
            cpu.vmwrite(f.encoding, (i * 0x9E3779B97F4A7C15) & ((1 << 64) - 1))
    if state == "cpl3":
        cpu.set_seg(1, 0x1B, 0, 0xFFFFFFFF, 0xA0FB)
        cpu.set_seg(2, 0x23, 0, 0xFFFFFFFF, 0xC0F3)
        assert cpu.cpl == 3
    if state == "flags-set":
        cpu.rflags = 0x8D7
    return m


def _outcome(fn):
    try:
        return ("ok", fn())
    except vmx.VmFail as e:
        return (type(e).__name__, getattr(e, "error", None), str(e.check), str(e))
    except x86.Fault as e:
        return ("fault", e.vector, e.error_code, str(e))


def _contents(cpu):
    vmcs = cpu.vmx.current_vmcs()
    return None if vmcs is None else [vmcs.read_enc(e) for e in ENCODINGS]


def _compare(state, op, *args):
    fast, slow = _machine(state), _machine(state)
    a = _outcome(lambda: getattr(ins, op)(fast.cpu, *args))
    b = _outcome(lambda: getattr(ins, "_" + op)(slow.cpu, *args))
    assert a == b
    assert fast.cpu.rflags == slow.cpu.rflags
    assert _contents(fast.cpu) == _contents(slow.cpu)


@pytest.mark.parametrize("state", STATES)
@settings(max_examples=40, deadline=None)
@given(encoding=encodings)
def test_vmread_fast_path_matches_python(state, encoding):
    _compare(state, "vmread", encoding)


@pytest.mark.parametrize("state", STATES)
@settings(max_examples=40, deadline=None)
@given(encoding=encodings, value=values)
def test_vmwrite_fast_path_matches_python(state, encoding, value):
    _compare(state, "vmwrite", encoding, value)


@pytest.mark.parametrize("encoding", [F.VM_EXIT_REASON, F.EXIT_QUALIFICATION, F.GUEST_PHYSICAL_ADDRESS,
                                      F.GUEST_PHYSICAL_ADDRESS_HIGH, F.IO_RCX, 0x4401, 0x1234, 1 << 33])
def test_failures_keep_their_check_text(encoding):
    """Read-only fields (VMfailValid 13 without IA32_VMX_MISC[29]) and unsupported encodings
    (VMfailValid 12) leave through the Python function: same error, same `.check`."""
    _compare("common", "vmwrite", int(encoding), 5)
    _compare("common", "vmread", int(encoding))


def test_high_access_reads_and_writes_bits_63_32():
    """25.11.2: the "high" encoding of a 64-bit field names its bits 63:32."""
    cpu = _machine("common").cpu
    cpu.vmwrite(F.TSC_OFFSET, 0x1111222233334444)
    cpu.vmwrite(F.TSC_OFFSET_HIGH, 0xAAAABBBBCCCC)
    assert cpu.vmread(F.TSC_OFFSET) == 0xBBBBCCCC33334444
    assert cpu.vmread(F.TSC_OFFSET_HIGH) == 0xBBBBCCCC
    cpu.vmwrite(F.GUEST_CS_SELECTOR, 0x123456)
    assert cpu.vmread(F.GUEST_CS_SELECTOR) == 0x3456


def test_store_marks_what_the_entry_checks_read():
    """A VMWRITE to a control or host-state field marks the VMCS for the checks of 27.2; to a
    guest-state field for 27.3.1; a VM-exit information field marks nothing."""
    cpu = _machine("common").cpu
    vmcs = cpu.vmx.current_vmcs()
    for field, controls, guest in [(F.VM_INSTRUCTION_ERROR, False, False), (F.PIN_BASED_VM_EXEC_CONTROL, True, False),
                                   (F.HOST_RIP, True, False), (F.GUEST_RIP, False, True)]:
        vmcs.dirty_controls = vmcs.dirty_guest = False
        vmcs.write_enc(int(field), 1)
        assert (vmcs.dirty_controls, vmcs.dirty_guest) == (controls, guest)
        vmcs.dirty_controls = vmcs.dirty_guest = False
        if not vmx.fields.field_info(field).read_only:
            cpu.vmwrite(field, 1)
            assert (vmcs.dirty_controls, vmcs.dirty_guest) == (controls, guest)
