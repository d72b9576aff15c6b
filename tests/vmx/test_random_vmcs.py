"""Robustness of VM entry (issue: VT-x, Tests): random values in control and state fields never
crash the simulator, always produce one architectural outcome (VMfailValid, an entry failure, a
VM exit, a VMX abort, a fault in root mode) or a named x86.Unsupported, and the same inputs always produce
the same outcome."""
from hypothesis import HealthCheck, given, settings, strategies as st

import vmx
import x86
from guest import vm

WRITABLE = [i for i in vmx.FIELDS if not i.read_only and not i.high]


def outcome(changes):
    # a random RIP may run into code that never exits: bound each run (x86.InstructionLimit)
    m = vm("cpuid\nmov rax, cr0\nmov dx, 0x80\nout dx, al\nhlt", instruction_limit=20_000)
    for info, value in changes:
        m.cpu.vmwrite(info.encoding, value)
    try:
        ex = m.cpu.vmlaunch()
        result = ("exit", int(ex.raw_reason), int(ex.qualification), ex.guest_rip)
    except vmx.VmFail as e:
        result = ("vmfail", type(e).__name__, getattr(e, "error", None), str(e.check))
    except vmx.GuestStuck as e:
        result = ("stuck", str(e))
    except vmx.VmxAbort as e:
        result = ("abort", int(e.indicator), str(e.check))
    except x86.Unsupported as e:
        result = ("unsupported", e.what)
    except x86.InstructionLimit:
        result = ("limit",)
    return result, m.cpu.rip, m.cpu.rflags


changes = st.lists(st.tuples(st.sampled_from(WRITABLE),
                             st.one_of(st.integers(0, 2**64 - 1), st.sampled_from([0, 1, 2**32 - 1]))),
                   max_size=6)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(changes)
def test_random_fields_give_one_deterministic_outcome(changes):
    first = outcome(changes)
    assert first[0][0] in ("exit", "vmfail", "stuck", "unsupported", "limit", "abort")
    assert outcome(changes) == first


GUEST_FIELDS = [i for i in WRITABLE if i.kind == "guest"]
guest_changes = st.lists(st.tuples(st.sampled_from(GUEST_FIELDS),
                                   st.one_of(st.integers(0, 2**64 - 1), st.integers(0, 0xFFFF))),
                         max_size=4)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(guest_changes)
def test_random_guest_state_gives_one_deterministic_outcome(changes):
    """Guest-state fields only: the control and host checks pass, so these reach the guest-state
    checks (27.3.1) and, when those pass, the guest itself."""
    first = outcome(changes)
    assert first[0][0] in ("exit", "vmfail", "stuck", "unsupported", "limit", "abort")
    assert outcome(changes) == first
