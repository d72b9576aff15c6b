"""Shared helpers for the VM-entry check tests: the profiles (the three shipped ones plus a test
profile that offers every control), a context builder that applies changes to the baseline,
and the assertion every failure case makes."""
from __future__ import annotations

import attrs

from vmx import profiles as P
from vmx.controls import (EntryControls as En, ExitControls as Ex, PinBased as Pin,
                          ProcBased as Proc, SecondaryProcBased as Sec)
from vmx.entry import EntryContext
from vmx.entry.baseline import valid_vmcs
from vmx.fields import Field, field_info

SHIPPED = list(P.PROFILES.values())
# Every control the tables define (but no tertiary or secondary exit controls), all activity
# states, and IA32_VMX_MISC[30]: lets the dependent checks be reached.
FULL = P.build("test-full", "every control", pin=int(sum(Pin)),
               proc=int(sum(Proc) & ~Proc.ACTIVATE_TERTIARY_CONTROLS), secondary=int(sum(Sec)),
               exit=int(sum(Ex) & ~Ex.ACTIVATE_SECONDARY_CONTROLS), entry=int(sum(En)),
               ept_vpid=P._EPT_FULL, vmfunc=1,
               misc=P._misc(activity=P.MISC_ACTIVITY_HLT | P.MISC_ACTIVITY_SHUTDOWN
                            | P.MISC_ACTIVITY_WAIT_SIPI, extra=P.MISC_ZERO_LEN_INJECTION))
# The default profile with IA32_VMX_BASIC[56] = 0: the deliver-error-code bit is checked
# against the vector.
_msrs = dict(P.get("default").msr_items)
_msrs[P.IA32_VMX_BASIC] &= ~P.BASIC_NO_HW_ERRCODE_CHECK
STRICT_ERRCODE = attrs.evolve(P.get("default"), name="strict-errcode",
                              msr_items=tuple(sorted(_msrs.items())))
PROFILES = {p.name: p for p in SHIPPED + [FULL, STRICT_ERRCODE]}

VMCS_ADDRESS = 0x10000
EPTP_OK = 0x5000 | 6 | (3 << 3)            # WB, 4-level walk
EPT_ON = {Field.SECONDARY_VM_EXEC_CONTROL: lambda v: v | Sec.ENABLE_EPT,
          Field.EPT_POINTER: EPTP_OK}
UG_ON = {Field.SECONDARY_VM_EXEC_CONTROL: lambda v: v | Sec.ENABLE_EPT | Sec.UNRESTRICTED_GUEST,
         Field.EPT_POINTER: EPTP_OK}


class Memory:
    """Physical memory for read_phys: zeros except where written."""

    def __init__(self, writes=None):
        self.bytes = {}
        for pa, data in (writes or {}).items():
            for i, b in enumerate(data):
                self.bytes[pa + i] = b

    def read(self, pa: int, n: int) -> bytes:
        return bytes(self.bytes.get(pa + i, 0) for i in range(n))


def merge(*dicts):
    """Merge change dicts; callables for the same field compose."""
    out = {}
    for d in dicts:
        for k, v in d.items():
            if k in out and callable(v):
                prev = out[k]
                out[k] = (lambda p, n: lambda x: n(p(x) if callable(p) else p))(prev, v)
            else:
                out[k] = v
    return out


def context(profile="default", changes=None, memory=None, **kw) -> EntryContext:
    profile = PROFILES[profile] if isinstance(profile, str) else profile
    vmcs = valid_vmcs(profile, VMCS_ADDRESS)
    for field, value in (changes or {}).items():
        info = field_info(field)
        if callable(value):
            value = value(vmcs.read(info))
        vmcs.write(info, int(value))
    return EntryContext(vmcs, profile, read_phys=Memory(memory).read, **kw)


def assert_failure(failure, kind, section, field, qualification=0):
    """The failure has the expected outcome and its rule names the field and a hex value."""
    assert failure is not None, "expected a failure"
    assert failure.kind == kind, failure.explain()
    assert failure.section == section, failure.explain()
    assert failure.error == {"control": 7, "host": 8, "guest": None}[kind]
    assert failure.qualification == qualification, failure.explain()
    assert field in failure.rule, failure.explain()
    assert "0x" in failure.rule, failure.explain()
    assert failure.section in failure.explain()
    if kind == "guest":
        assert failure.exit_reason == 33 | (1 << 31)
    else:
        assert failure.exit_reason is None
