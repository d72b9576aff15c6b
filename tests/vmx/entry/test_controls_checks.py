"""SDM Vol. 3C 27.2.1 "Checks on VMX Controls": VM-execution (27.2.1.1), VM-exit (27.2.1.2) and
VM-entry (27.2.1.3) control fields. A failed check is VMfailValid(7), "VM entry with invalid
control field(s)", and names the field, its value and the rule."""
import inspect

import pytest

from vmx import profiles as P
from vmx.controls import (EntryControls as En, ExitControls as Ex, PinBased as Pin,
                          ProcBased as Proc, SecondaryProcBased as Sec)
from vmx.entry import CONTROL_CHECKS, run_control_checks, run_guest_checks, run_host_checks
from vmx.fields import Field

from entry_cases import (EPT_ON, EPTP_OK, PROFILES, SHIPPED, UG_ON, assert_failure, context,
                         merge)

F = Field
PIN, PROC = F.PIN_BASED_VM_EXEC_CONTROL, F.CPU_BASED_VM_EXEC_CONTROL
SEC = F.SECONDARY_VM_EXEC_CONTROL
EXIT, ENTRY, INFO = F.VM_EXIT_CONTROLS, F.VM_ENTRY_CONTROLS, F.VM_ENTRY_INTR_INFO_FIELD


def on(field, bits):
    return {field: lambda v: v | int(bits)}


def off(field, bits):
    return {field: lambda v: v & ~int(bits)}


TPR = merge(on(PROC, Proc.TPR_SHADOW), {F.VIRTUAL_APIC_PAGE_ADDR: 0x3000, F.TPR_THRESHOLD: 0})
POSTED = merge(TPR, on(PIN, Pin.POSTED_INTR | Pin.EXT_INTR_MASK),
               on(SEC, Sec.VIRTUAL_INTR_DELIVERY), on(EXIT, Ex.ACK_INTR_ON_EXIT),
               {F.POSTED_INTR_DESC_ADDR: 0x6000, F.POSTED_INTR_NV: 0xF2})
VMFUNC = merge(on(SEC, Sec.ENABLE_VMFUNC), {F.VM_FUNCTION_CONTROL: 1, F.EPTP_LIST_ADDRESS: 0x8000})
SW_INT = 0x80000000 | (4 << 8) | 0x80                     # INT 80H
GP_ERR = 0x80000000 | (1 << 11) | (3 << 8) | 13           # #GP with error code
UD = 0x80000000 | (3 << 8) | 6

X, E, N = "27.2.1.1", "27.2.1.2", "27.2.1.3"

# (id, profile, changes, section, field named in the rule, extra context)
CASES = [
    # --- 27.2.1.1 ---
    ("pin-allowed0", "default", {PIN: 0}, X, "PIN_BASED_VM_EXEC_CONTROL", {}),
    ("pin-allowed1", "default", on(PIN, Pin.POSTED_INTR), X, "PIN_BASED_VM_EXEC_CONTROL", {}),
    ("pin-undefined-bit", "default", on(PIN, 1 << 12), X, "PIN_BASED_VM_EXEC_CONTROL", {}),
    ("proc-allowed1", "default", on(PROC, Proc.ACTIVATE_TERTIARY_CONTROLS), X,
     "CPU_BASED_VM_EXEC_CONTROL", {}),
    ("proc-allowed0-no-true", "no-true", off(PROC, Proc.CR3_LOAD_EXITING), X,
     "CPU_BASED_VM_EXEC_CONTROL", {}),
    ("secondary-allowed1", "default", on(SEC, Sec.VIRTUALIZE_X2APIC_MODE), X,
     "SECONDARY_VM_EXEC_CONTROL", {}),
    ("secondary-minimal", "minimal", on(SEC, Sec.ENABLE_PML), X, "SECONDARY_VM_EXEC_CONTROL", {}),
    ("cr3-target-count", "default", {F.CR3_TARGET_COUNT: 5}, X, "CR3_TARGET_COUNT", {}),
    ("io-bitmap-a-align", "default", merge(on(PROC, Proc.USE_IO_BITMAPS),
     {F.IO_BITMAP_A: 0x1001, F.IO_BITMAP_B: 0x2000}), X, "IO_BITMAP_A", {}),
    ("io-bitmap-b-width", "default", merge(on(PROC, Proc.USE_IO_BITMAPS),
     {F.IO_BITMAP_A: 0x1000, F.IO_BITMAP_B: 1 << 39}), X, "IO_BITMAP_B", {}),
    ("msr-bitmap-align", "default", merge(on(PROC, Proc.USE_MSR_BITMAPS), {F.MSR_BITMAP: 0x800}),
     X, "MSR_BITMAP", {}),
    ("virtual-apic-align", "default", merge(TPR, {F.VIRTUAL_APIC_PAGE_ADDR: 0x3004}), X,
     "VIRTUAL_APIC_PAGE_ADDR", {}),
    ("tpr-threshold-reserved", "default", merge(TPR, {F.TPR_THRESHOLD: 0x10}), X,
     "TPR_THRESHOLD", {}),
    ("tpr-threshold-vtpr", "default", merge(TPR, {F.TPR_THRESHOLD: 5}), X, "TPR_THRESHOLD",
     {"memory": {0x3080: b"\x40"}}),
    ("virtual-nmis-need-nmi-exiting", "default", on(PIN, Pin.VIRTUAL_NMIS), X,
     "PIN_BASED_VM_EXEC_CONTROL", {}),
    ("nmi-window-needs-virtual-nmis", "default", on(PROC, Proc.NMI_WINDOW_EXITING), X,
     "CPU_BASED_VM_EXEC_CONTROL", {}),
    ("apic-access-align", "default", merge(on(SEC, Sec.VIRTUALIZE_APIC_ACCESSES),
     {F.APIC_ACCESS_ADDR: 0x5008}), X, "APIC_ACCESS_ADDR", {}),
    ("x2apic-needs-tpr-shadow", "test-full", on(SEC, Sec.VIRTUALIZE_X2APIC_MODE), X,
     "SECONDARY_VM_EXEC_CONTROL", {}),
    ("x2apic-and-apic-accesses", "test-full", merge(TPR, on(SEC, Sec.VIRTUALIZE_X2APIC_MODE
     | Sec.VIRTUALIZE_APIC_ACCESSES), {F.APIC_ACCESS_ADDR: 0x4000}), X,
     "SECONDARY_VM_EXEC_CONTROL", {}),
    ("vid-needs-external-interrupt-exiting", "test-full", merge(TPR,
     on(SEC, Sec.VIRTUAL_INTR_DELIVERY)), X, "PIN_BASED_VM_EXEC_CONTROL", {}),
    ("posted-needs-vid", "test-full", on(PIN, Pin.POSTED_INTR), X,
     "PIN_BASED_VM_EXEC_CONTROL", {}),
    ("posted-needs-ack", "test-full", merge(POSTED, off(EXIT, Ex.ACK_INTR_ON_EXIT)), X,
     "VM_EXIT_CONTROLS", {}),
    ("posted-vector", "test-full", merge(POSTED, {F.POSTED_INTR_NV: 0x1F2}), X,
     "POSTED_INTR_NV", {}),
    ("posted-descriptor", "test-full", merge(POSTED, {F.POSTED_INTR_DESC_ADDR: 0x6008}), X,
     "POSTED_INTR_DESC_ADDR", {}),
    ("vpid-zero", "default", on(SEC, Sec.ENABLE_VPID), X, "VIRTUAL_PROCESSOR_ID", {}),
    ("eptp-memory-type", "default", merge(EPT_ON, {F.EPT_POINTER: 0x5000 | 1 | (3 << 3)}), X,
     "EPT_POINTER", {}),
    ("eptp-memory-type-uc-minimal", "minimal", merge(EPT_ON, {F.EPT_POINTER: 0x5000 | (3 << 3)}),
     X, "EPT_POINTER", {}),
    ("eptp-walk-length", "default", merge(EPT_ON, {F.EPT_POINTER: 0x5000 | 6 | (2 << 3)}), X,
     "EPT_POINTER", {}),
    ("eptp-5-level-minimal", "minimal", merge(EPT_ON, {F.EPT_POINTER: 0x5000 | 6 | (4 << 3)}), X,
     "EPT_POINTER", {}),
    ("eptp-ad-minimal", "minimal", merge(EPT_ON, {F.EPT_POINTER: EPTP_OK | (1 << 6)}), X,
     "EPT_POINTER", {}),
    ("eptp-bit7", "default", merge(EPT_ON, {F.EPT_POINTER: EPTP_OK | (1 << 7)}), X,
     "EPT_POINTER", {}),
    ("eptp-reserved-11-8", "default", merge(EPT_ON, {F.EPT_POINTER: EPTP_OK | (1 << 9)}), X,
     "EPT_POINTER", {}),
    ("eptp-width", "default", merge(EPT_ON, {F.EPT_POINTER: EPTP_OK | (1 << 45)}), X,
     "EPT_POINTER", {}),
    ("pml-needs-ept", "default", merge(on(SEC, Sec.ENABLE_PML), {F.PML_ADDRESS: 0x7000}), X,
     "SECONDARY_VM_EXEC_CONTROL", {}),
    ("pml-address", "default", merge(EPT_ON, on(SEC, Sec.ENABLE_PML), {F.PML_ADDRESS: 0x7010}),
     X, "PML_ADDRESS", {}),
    ("unrestricted-needs-ept", "default", on(SEC, Sec.UNRESTRICTED_GUEST), X,
     "SECONDARY_VM_EXEC_CONTROL", {}),
    ("mode-based-needs-ept", "test-full", on(SEC, Sec.MODE_BASED_EPT_EXEC), X,
     "SECONDARY_VM_EXEC_CONTROL", {}),
    ("spp-needs-ept", "test-full", merge(on(SEC, Sec.SPP), {F.SPPT_POINTER: 0x9000}), X,
     "SECONDARY_VM_EXEC_CONTROL", {}),
    ("spptp-align", "test-full", merge(EPT_ON, on(SEC, Sec.SPP), {F.SPPT_POINTER: 0x9800}), X,
     "SPPT_POINTER", {}),
    ("vmfunc-reserved", "default", merge(EPT_ON, VMFUNC, {F.VM_FUNCTION_CONTROL: 3}), X,
     "VM_FUNCTION_CONTROL", {}),
    ("eptp-switching-needs-ept", "default", VMFUNC, X, "VM_FUNCTION_CONTROL", {}),
    ("eptp-list-align", "default", merge(EPT_ON, VMFUNC, {F.EPTP_LIST_ADDRESS: 0x8001}), X,
     "EPTP_LIST_ADDRESS", {}),
    ("vmread-bitmap", "test-full", merge(on(SEC, Sec.SHADOW_VMCS), {F.VMREAD_BITMAP: 0xA010,
     F.VMWRITE_BITMAP: 0xB000}), X, "VMREAD_BITMAP", {}),
    ("vmwrite-bitmap", "test-full", merge(on(SEC, Sec.SHADOW_VMCS), {F.VMREAD_BITMAP: 0xA000,
     F.VMWRITE_BITMAP: 1 << 40}), X, "VMWRITE_BITMAP", {}),
    ("ve-information-address", "default", merge(EPT_ON, on(SEC, Sec.EPT_VIOLATION_VE),
     {F.VE_INFORMATION_ADDRESS: 0xC100}), X, "VE_INFORMATION_ADDRESS", {}),
    # --- 27.2.1.2 ---
    ("exit-allowed1", "default", on(EXIT, Ex.PT_CONCEAL_PIP), E, "VM_EXIT_CONTROLS", {}),
    ("exit-allowed0-no-true", "no-true", off(EXIT, Ex.SAVE_DEBUG_CONTROLS), E,
     "VM_EXIT_CONTROLS", {}),
    ("save-preemption-timer", "default", on(EXIT, Ex.SAVE_VMX_PREEMPTION_TIMER), E,
     "VM_EXIT_CONTROLS", {}),
    ("exit-msr-store-align", "default", {F.VM_EXIT_MSR_STORE_COUNT: 1,
     F.VM_EXIT_MSR_STORE_ADDR: 0x9008}, E, "VM_EXIT_MSR_STORE_ADDR", {}),
    ("exit-msr-store-width", "default", {F.VM_EXIT_MSR_STORE_COUNT: 1,
     F.VM_EXIT_MSR_STORE_ADDR: 1 << 39}, E, "VM_EXIT_MSR_STORE_ADDR", {}),
    ("exit-msr-store-last-byte", "default", {F.VM_EXIT_MSR_STORE_COUNT: 2,
     F.VM_EXIT_MSR_STORE_ADDR: (1 << 39) - 16}, E, "VM_EXIT_MSR_STORE_COUNT", {}),
    ("exit-msr-load-align", "default", {F.VM_EXIT_MSR_LOAD_COUNT: 3,
     F.VM_EXIT_MSR_LOAD_ADDR: 0x9004}, E, "VM_EXIT_MSR_LOAD_ADDR", {}),
    # --- 27.2.1.3 ---
    ("entry-allowed1", "default", on(ENTRY, En.LOAD_BNDCFGS), N, "VM_ENTRY_CONTROLS", {}),
    ("entry-allowed0-no-true", "no-true", off(ENTRY, En.LOAD_DEBUG_CONTROLS), N,
     "VM_ENTRY_CONTROLS", {}),
    ("injection-type-1", "default", {INFO: 0x80000000 | (1 << 8) | 0x20}, N,
     "VM_ENTRY_INTR_INFO_FIELD", {}),
    ("injection-nmi-vector", "default", {INFO: 0x80000000 | (2 << 8) | 3}, N,
     "VM_ENTRY_INTR_INFO_FIELD", {}),
    ("injection-exception-vector", "default", {INFO: 0x80000000 | (3 << 8) | 32}, N,
     "VM_ENTRY_INTR_INFO_FIELD", {}),
    ("injection-other-event-vector", "default", {INFO: 0x80000000 | (7 << 8) | 1}, N,
     "VM_ENTRY_INTR_INFO_FIELD", {}),
    ("injection-error-code-external", "default", {INFO: 0x80000000 | (1 << 11) | 0x20}, N,
     "VM_ENTRY_INTR_INFO_FIELD", {}),
    ("injection-error-code-real-mode", "default", merge(UG_ON, {F.GUEST_CR0: 0x30,
     INFO: GP_ERR}), N, "VM_ENTRY_INTR_INFO_FIELD", {}),
    ("injection-error-code-strict-missing", "strict-errcode", {INFO: GP_ERR & ~(1 << 11)}, N,
     "VM_ENTRY_INTR_INFO_FIELD", {}),
    ("injection-error-code-strict-extra", "strict-errcode", {INFO: UD | (1 << 11)}, N,
     "VM_ENTRY_INTR_INFO_FIELD", {}),
    ("injection-reserved-30-12", "default", {INFO: GP_ERR | (1 << 12)}, N,
     "VM_ENTRY_INTR_INFO_FIELD", {}),
    ("injection-error-code-31-16", "default", {INFO: GP_ERR,
     F.VM_ENTRY_EXCEPTION_ERROR_CODE: 0x10000}, N, "VM_ENTRY_EXCEPTION_ERROR_CODE", {}),
    ("injection-length-0", "default", {INFO: SW_INT, F.VM_ENTRY_INSTRUCTION_LEN: 0}, N,
     "VM_ENTRY_INSTRUCTION_LEN", {}),
    ("injection-length-16", "test-full", {INFO: SW_INT, F.VM_ENTRY_INSTRUCTION_LEN: 16}, N,
     "VM_ENTRY_INSTRUCTION_LEN", {}),
    ("entry-msr-load-align", "default", {F.VM_ENTRY_MSR_LOAD_COUNT: 1,
     F.VM_ENTRY_MSR_LOAD_ADDR: 0x9001}, N, "VM_ENTRY_MSR_LOAD_ADDR", {}),
    ("entry-msr-load-last-byte", "default", {F.VM_ENTRY_MSR_LOAD_COUNT: 0x100,
     F.VM_ENTRY_MSR_LOAD_ADDR: (1 << 39) - 0x800}, N, "VM_ENTRY_MSR_LOAD_COUNT", {}),
    ("entry-to-smm-outside-smm", "default", on(ENTRY, En.SMM), N, "VM_ENTRY_CONTROLS", {}),
    ("deactivate-dual-monitor-outside-smm", "default", on(ENTRY, En.DEACT_DUAL_MONITOR), N,
     "VM_ENTRY_CONTROLS", {}),
    ("smm-and-dual-monitor", "default", on(ENTRY, En.SMM | En.DEACT_DUAL_MONITOR), N,
     "VM_ENTRY_CONTROLS", {"in_smm": True}),
]


@pytest.mark.parametrize("profile", list(PROFILES.values()), ids=list(PROFILES))
def test_baseline_is_valid(profile):
    """vmx.entry.baseline.valid_vmcs(profile) passes every check of 27.2 and 27.3.1."""
    ctx = context(profile)
    assert run_control_checks(ctx) is None
    assert run_host_checks(ctx) is None
    assert run_guest_checks(ctx) is None


@pytest.mark.parametrize("name, profile, changes, section, field, extra", CASES,
                         ids=[c[0] for c in CASES])
def test_control_check_fails(name, profile, changes, section, field, extra):
    """Each case breaks one rule of 27.2.1 in an otherwise valid VMCS: VMfailValid(7) with the
    rule's section, naming the field and its value."""
    assert_failure(run_control_checks(context(profile, changes, **extra)), "control", section,
                   field)


PASSING = [
    ("secondary-ignored-when-not-activated", "default",
     merge(off(PROC, Proc.ACTIVATE_SECONDARY_CONTROLS), {SEC: 0xFFFFFFFF}), {}),
    ("tpr-threshold-equal-vtpr", "default", merge(TPR, {F.TPR_THRESHOLD: 4}),
     {"memory": {0x3080: b"\x40"}}),
    ("tpr-threshold-vid-not-checked", "test-full", merge(POSTED, {F.TPR_THRESHOLD: 0xFF}), {}),
    ("posted-interrupts", "test-full", POSTED, {}),
    ("ept-and-unrestricted", "default", UG_ON, {}),
    ("ept-5-level-ad", "default", merge(EPT_ON, {F.EPT_POINTER: 0x5000 | 6 | (4 << 3) | 64}), {}),
    ("eptp-switching", "default", merge(EPT_ON, VMFUNC), {}),
    ("other-event-mtf", "default", {INFO: 0x80000000 | (7 << 8)}, {}),
    ("hardware-exception-any-error-code", "default", {INFO: UD | (1 << 11)}, {}),
    ("strict-gp-with-error-code", "strict-errcode", {INFO: GP_ERR}, {}),
    ("software-interrupt-length-0-with-misc30", "test-full",
     {INFO: SW_INT, F.VM_ENTRY_INSTRUCTION_LEN: 0}, {}),
    ("software-interrupt-length-15", "default",
     {INFO: SW_INT, F.VM_ENTRY_INSTRUCTION_LEN: 15}, {}),
    ("msr-areas-at-top", "default", {F.VM_ENTRY_MSR_LOAD_COUNT: 2,
     F.VM_ENTRY_MSR_LOAD_ADDR: (1 << 39) - 32}, {}),
    ("entry-to-smm-in-smm", "default", on(ENTRY, En.SMM), {"in_smm": True}),
]


@pytest.mark.parametrize("name, profile, changes, extra", PASSING, ids=[c[0] for c in PASSING])
def test_control_check_passes(name, profile, changes, extra):
    """Settings the rules allow (boundary values, conditions not met) pass 27.2.1."""
    failure = run_control_checks(context(profile, changes, **extra))
    assert failure is None, failure.explain()


CONTROL_FIELDS = [(PIN, P.IA32_VMX_PINBASED_CTLS), (PROC, P.IA32_VMX_PROCBASED_CTLS),
                  (SEC, P.IA32_VMX_PROCBASED_CTLS2), (EXIT, P.IA32_VMX_EXIT_CTLS),
                  (ENTRY, P.IA32_VMX_ENTRY_CTLS)]
FLIPS = [(p, field, msr, bit) for p in SHIPPED for field, msr in CONTROL_FIELDS
         for bit in range(32)]


@pytest.mark.parametrize("profile, field, msr, bit", FLIPS,
                         ids=[f"{p.name}-{f.name}-{b}" for p, f, _, b in FLIPS])
def test_flip_every_control_bit(profile, field, msr, bit):
    """A.3-A.5: flipping one bit of a control field in the valid baseline fails with
    VMfailValid(7) naming that field when the capability MSR does not allow the new setting;
    when it does, the outcome is success or another control-field failure (a dependent
    check such as "virtual NMIs needs NMI exiting")."""
    ctx = context(profile, {field: lambda v: v ^ (1 << bit)})
    value = ctx.read(field)
    allowed0, allowed1 = P.allowed(profile, msr)
    failure = run_control_checks(ctx)
    if (~value & allowed0) or (value & ~allowed1):
        assert_failure(failure, "control", "27.2.1.1" if field in (PIN, PROC, SEC) else
                       "27.2.1.2" if field == EXIT else "27.2.1.3", field.name)
        assert "allowed-" in failure.rule
    else:
        assert failure is None or failure.kind == "control"
        if failure is not None:
            assert "allowed-" not in failure.rule


def test_checks_are_named_and_documented():
    """Every check is a check_* function with a docstring, and none is listed twice."""
    assert len(set(CONTROL_CHECKS)) == len(CONTROL_CHECKS)
    for check in CONTROL_CHECKS:
        assert check.__name__.startswith("check_") and inspect.getdoc(check)


def test_explain_names_outcome():
    """explain(): the instruction, the rule, the section and VMfailValid(7)."""
    failure = run_control_checks(context("default", {PIN: 0}, launch=False))
    text = failure.explain()
    assert text.startswith("VMRESUME: PIN_BASED_VM_EXEC_CONTROL = 0x0 clears bits 1, 2, 4")
    assert "IA32_VMX_TRUE_PINBASED_CTLS requires to be 1 (allowed-0 = 0x16)" in text
    assert "SDM Vol. 3C 27.2.1.1" in text and "VMfailValid(7)" in text
