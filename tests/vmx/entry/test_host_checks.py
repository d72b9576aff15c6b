"""SDM Vol. 3C 27.2.2 "Checks on Host Control Registers, Debug Registers, and MSRs", 27.2.3
"Checks on Host Segment and Descriptor-Table Registers", 27.2.4 "Checks Related to
Address-Space Size". A failed check is VMfailValid(8), "VM entry with invalid host-state
field(s)"."""
import inspect

import pytest

from vmx.controls import EntryControls as En, ExitControls as Ex
from vmx.entry import HOST_CHECKS, run_host_checks
from vmx.fields import Field

from entry_cases import PROFILES, assert_failure, context, merge

F = Field
EXIT, ENTRY = F.VM_EXIT_CONTROLS, F.VM_ENTRY_CONTROLS
NONCANONICAL = 0x0000800000000000
LOAD_PERF = {EXIT: lambda v: v | Ex.LOAD_IA32_PERF_GLOBAL_CTRL}
LOAD_PAT = {EXIT: lambda v: v | Ex.LOAD_IA32_PAT}
LOAD_EFER = {EXIT: lambda v: v | Ex.LOAD_IA32_EFER}
HOST32 = {EXIT: lambda v: v & ~Ex.HOST_ADDR_SPACE_SIZE, ENTRY: lambda v: v & ~En.IA32E_MODE}
OUTSIDE = {"host_lma": False}
R, S, A = "27.2.2", "27.2.3", "27.2.4"

CASES = [
    ("cr0-fixed0-ne", {F.HOST_CR0: 0x80000011}, R, "HOST_CR0", {}),
    ("cr0-fixed0-pg", {F.HOST_CR0: 0x31}, R, "HOST_CR0", {}),
    ("cr0-fixed1-high", {F.HOST_CR0: 0x80000031 | (1 << 32)}, R, "HOST_CR0", {}),
    ("cr4-fixed0-vmxe", {F.HOST_CR4: 0x20}, R, "HOST_CR4", {}),
    ("cr4-fixed1-osfxsr", {F.HOST_CR4: 0x2220}, R, "HOST_CR4", {}),
    ("cr3-width", {F.HOST_CR3: 1 << 39}, R, "HOST_CR3", {}),
    ("sysenter-esp", {F.HOST_IA32_SYSENTER_ESP: NONCANONICAL}, R, "HOST_IA32_SYSENTER_ESP", {}),
    ("sysenter-eip", {F.HOST_IA32_SYSENTER_EIP: NONCANONICAL}, R, "HOST_IA32_SYSENTER_EIP", {}),
    ("perf-global-ctrl", merge(LOAD_PERF, {F.HOST_IA32_PERF_GLOBAL_CTRL: 1}), R,
     "HOST_IA32_PERF_GLOBAL_CTRL", {}),
    ("pat-byte", merge(LOAD_PAT, {F.HOST_IA32_PAT: 0x0007040600020406}), R, "HOST_IA32_PAT", {}),
    ("pat-byte-8", merge(LOAD_PAT, {F.HOST_IA32_PAT: 0x0807040600070406}), R, "HOST_IA32_PAT",
     {}),
    ("efer-reserved", merge(LOAD_EFER, {F.HOST_IA32_EFER: 0x1500}), R, "HOST_IA32_EFER", {}),
    ("efer-lma", merge(LOAD_EFER, {F.HOST_IA32_EFER: 0x100}), R, "HOST_IA32_EFER", {}),
    ("efer-lme", merge(LOAD_EFER, {F.HOST_IA32_EFER: 0x400}), R, "HOST_IA32_EFER", {}),
    ("ds-rpl", {F.HOST_DS_SELECTOR: 0x13}, S, "HOST_DS_SELECTOR", {}),
    ("cs-rpl", {F.HOST_CS_SELECTOR: 0x0B}, S, "HOST_CS_SELECTOR", {}),
    ("tr-ti", {F.HOST_TR_SELECTOR: 0x1C}, S, "HOST_TR_SELECTOR", {}),
    ("fs-ti", {F.HOST_FS_SELECTOR: 0x4}, S, "HOST_FS_SELECTOR", {}),
    ("cs-null", {F.HOST_CS_SELECTOR: 0}, S, "HOST_CS_SELECTOR", {}),
    ("tr-null", {F.HOST_TR_SELECTOR: 0}, S, "HOST_TR_SELECTOR", {}),
    ("ss-null-32bit-host", merge(HOST32, {F.HOST_SS_SELECTOR: 0}), S, "HOST_SS_SELECTOR",
     OUTSIDE),
    ("fs-base", {F.HOST_FS_BASE: NONCANONICAL}, S, "HOST_FS_BASE", {}),
    ("gs-base", {F.HOST_GS_BASE: NONCANONICAL}, S, "HOST_GS_BASE", {}),
    ("gdtr-base", {F.HOST_GDTR_BASE: NONCANONICAL}, S, "HOST_GDTR_BASE", {}),
    ("idtr-base", {F.HOST_IDTR_BASE: NONCANONICAL}, S, "HOST_IDTR_BASE", {}),
    ("tr-base", {F.HOST_TR_BASE: 0xFFFF000000000000}, S, "HOST_TR_BASE", {}),
    ("outside-ia32e-host-64", {}, A, "VM_EXIT_CONTROLS", OUTSIDE),
    ("outside-ia32e-guest-64", {EXIT: lambda v: v & ~Ex.HOST_ADDR_SPACE_SIZE}, A,
     "VM_ENTRY_CONTROLS", OUTSIDE),
    ("inside-ia32e-host-32", HOST32, A, "VM_EXIT_CONTROLS", {}),
    ("pcide-32bit-host", merge(HOST32, {F.HOST_CR4: 0x22020}), A, "HOST_CR4", OUTSIDE),
    ("rip-high-32bit-host", merge(HOST32, {F.HOST_RIP: 1 << 32}), A, "HOST_RIP", OUTSIDE),
    ("pae-64bit-host", {F.HOST_CR4: 0x2000}, A, "HOST_CR4", {}),
    ("rip-noncanonical", {F.HOST_RIP: NONCANONICAL}, A, "HOST_RIP", {}),
]


@pytest.mark.parametrize("profile", list(PROFILES.values()), ids=list(PROFILES))
def test_baseline_host_state_is_valid(profile):
    """The baseline's 64-bit host state passes 27.2.2-27.2.4."""
    assert run_host_checks(context(profile)) is None


@pytest.mark.parametrize("profile", ["default", "minimal", "no-true"])
@pytest.mark.parametrize("name, changes, section, field, extra", CASES, ids=[c[0] for c in CASES])
def test_host_check_fails(profile, name, changes, section, field, extra):
    """Each case breaks one host-state rule: VMfailValid(8), the rule's section, the field."""
    assert_failure(run_host_checks(context(profile, changes, **extra)), "host", section, field)


PASSING = [
    ("cr0-nw-cd-not-checked", {F.HOST_CR0: 0xE0000031}, {}),
    ("null-ds-es-fs-gs-ss-64bit", {F.HOST_DS_SELECTOR: 0, F.HOST_ES_SELECTOR: 0,
                                   F.HOST_SS_SELECTOR: 0}, {}),
    ("canonical-high-half", {F.HOST_FS_BASE: 0xFFFF800000000000,
                             F.HOST_RIP: 0xFFFFFFFF80000000}, {}),
    ("efer-loaded-consistent", merge(LOAD_EFER, {F.HOST_IA32_EFER: 0xD01}), {}),
    ("pat-loaded-all-types", merge(LOAD_PAT, {F.HOST_IA32_PAT: 0x0706050401000706}), {}),
    ("32bit-host-outside-ia32e", merge(HOST32, {F.HOST_CR4: 0x2000}), OUTSIDE),
    ("perf-not-loaded", {F.HOST_IA32_PERF_GLOBAL_CTRL: 0xFF}, {}),
]


@pytest.mark.parametrize("name, changes, extra", PASSING, ids=[c[0] for c in PASSING])
def test_host_check_passes(name, changes, extra):
    """Values the rules allow pass."""
    failure = run_host_checks(context("default", changes, **extra))
    assert failure is None, failure.explain()


def test_checks_are_named_and_documented():
    """Every host check is a documented check_* function, listed once."""
    assert len(set(HOST_CHECKS)) == len(HOST_CHECKS)
    for check in HOST_CHECKS:
        assert check.__name__.startswith("check_") and inspect.getdoc(check)


def test_explain():
    """explain() gives the rule and VMfailValid(8)."""
    text = run_host_checks(context("default", {F.HOST_CR4: 0x2000})).explain()
    assert "HOST_CR4 = 0x2000 clears PAE (bit 5)" in text
    assert "27.2.4" in text and "VMfailValid(8)" in text
