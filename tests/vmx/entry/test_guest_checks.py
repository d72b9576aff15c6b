"""SDM Vol. 3C 27.3.1 "Checks on the Guest State Area": 27.3.1.1 control registers, debug
registers and MSRs; 27.3.1.2 segment registers; 27.3.1.3 descriptor-table registers; 27.3.1.4
RIP and RFLAGS; 27.3.1.5 non-register state; 27.3.1.6 PDPTEs. A failed check is a VM exit with
basic reason 33 and bit 31 set; exit qualification 0, 2 (PDPTEs), 3 (NMI under STI blocking)
or 4 (VMCS link pointer), SDM 27.8."""
import inspect
import struct

import pytest

from vmx.controls import EntryControls as En, PinBased as Pin, SecondaryProcBased as Sec
from vmx.entry import GUEST_CHECKS, run_control_checks, run_guest_checks
from vmx.fields import Field

from entry_cases import EPT_ON, PROFILES, UG_ON, VMCS_ADDRESS, assert_failure, context, merge

F = Field
ENTRY, INFO = F.VM_ENTRY_CONTROLS, F.VM_ENTRY_INTR_INFO_FIELD
NONCANONICAL = 0x0000800000000000
NOT_IA32E = {ENTRY: lambda v: v & ~En.IA32E_MODE}
LOAD_DEBUG = {ENTRY: lambda v: v | En.LOAD_DEBUG_CONTROLS}
LOAD_EFER = {ENTRY: lambda v: v | En.LOAD_IA32_EFER}
IF = 0x202
EXT_INT, NMI_INJ, MC = 0x80000020, 0x80000202, 0x80000000 | (3 << 8) | 18
REAL_UG = merge(UG_ON, NOT_IA32E, {F.GUEST_CR0: 0x30})


def seg(reg, selector=None, base=None, limit=None, ar=None):
    out = {}
    for part, value in (("SELECTOR", selector), ("BASE", base), ("LIMIT", limit),
                        ("AR_BYTES", ar)):
        if value is not None:
            out[F[f"GUEST_{reg}_{part}"]] = value
    return out


def v86(selector=0x100):
    """Virtual-8086 segments, outside IA-32e mode, RFLAGS.VM = 1."""
    out = merge(NOT_IA32E, {F.GUEST_RFLAGS: 0x20002})
    for reg in ("CS", "SS", "DS", "ES", "FS", "GS"):
        out.update(seg(reg, selector, selector << 4, 0xFFFF, 0xF3))
    return out


def link(value, revision=1):
    return {F.VMCS_LINK_POINTER: value}, {"memory": {value: struct.pack("<I", revision)}}


C1, C2, C3, C4, C5, C6 = ("27.3.1.1", "27.3.1.2", "27.3.1.3", "27.3.1.4", "27.3.1.5",
                          "27.3.1.6")

# (id, profile, changes, section, field named, qualification, extra context)
CASES = [
    # --- 27.3.1.1 ---
    ("cr0-fixed0-ne", "default", {F.GUEST_CR0: 0x80000011}, C1, "GUEST_CR0", 0, {}),
    ("cr0-fixed0-pe", "default", {F.GUEST_CR0: 0x80000030}, C1, "GUEST_CR0", 0, {}),
    ("cr0-fixed1-high", "default", {F.GUEST_CR0: 0x80000031 | (1 << 40)}, C1, "GUEST_CR0", 0, {}),
    ("cr0-pg-without-pe-ug", "default", merge(UG_ON, {F.GUEST_CR0: 0x80000030}), C1,
     "GUEST_CR0", 0, {}),
    ("cr4-fixed0-vmxe", "default", {F.GUEST_CR4: 0x20}, C1, "GUEST_CR4", 0, {}),
    ("cr4-fixed1", "default", {F.GUEST_CR4: 0x2020 | (1 << 9)}, C1, "GUEST_CR4", 0, {}),
    ("debugctl-reserved", "default", merge(LOAD_DEBUG, {F.GUEST_IA32_DEBUGCTL: 1 << 8}), C1,
     "GUEST_IA32_DEBUGCTL", 0, {}),
    ("ia32e-needs-pg", "default", merge(UG_ON, {F.GUEST_CR0: 0x31}), C1, "GUEST_CR0", 0, {}),
    ("ia32e-needs-pae", "default", {F.GUEST_CR4: 0x2000}, C1, "GUEST_CR4", 0, {}),
    ("pcide-outside-ia32e", "default", merge(NOT_IA32E, {F.GUEST_CR4: 0x22020}), C1,
     "GUEST_CR4", 0, {}),
    ("cr3-width", "default", {F.GUEST_CR3: 1 << 50}, C1, "GUEST_CR3", 0, {}),
    ("dr7-high", "default", merge(LOAD_DEBUG, {F.GUEST_DR7: 0x400 | (1 << 32)}), C1,
     "GUEST_DR7", 0, {}),
    ("sysenter-esp", "default", {F.GUEST_SYSENTER_ESP: NONCANONICAL}, C1, "GUEST_SYSENTER_ESP",
     0, {}),
    ("sysenter-eip", "default", {F.GUEST_SYSENTER_EIP: NONCANONICAL}, C1, "GUEST_SYSENTER_EIP",
     0, {}),
    ("perf-global-ctrl", "default", merge({ENTRY: lambda v: v | En.LOAD_IA32_PERF_GLOBAL_CTRL},
     {F.GUEST_IA32_PERF_GLOBAL_CTRL: 1 << 32}), C1, "GUEST_IA32_PERF_GLOBAL_CTRL", 0, {}),
    ("pat", "default", merge({ENTRY: lambda v: v | En.LOAD_IA32_PAT},
     {F.GUEST_IA32_PAT: 0x0007040603070406}), C1, "GUEST_IA32_PAT", 0, {}),
    ("efer-reserved", "default", merge(LOAD_EFER, {F.GUEST_IA32_EFER: 0x502}), C1,
     "GUEST_IA32_EFER", 0, {}),
    ("efer-lma", "default", merge(LOAD_EFER, {F.GUEST_IA32_EFER: 0x100}), C1, "GUEST_IA32_EFER",
     0, {}),
    ("efer-lme", "default", merge(LOAD_EFER, NOT_IA32E, {F.GUEST_IA32_EFER: 0x100}), C1,
     "GUEST_IA32_EFER", 0, {}),
    ("bndcfgs", "test-full", merge({ENTRY: lambda v: v | En.LOAD_BNDCFGS},
     {F.GUEST_BNDCFGS: 0x1004}), C1, "GUEST_BNDCFGS", 0, {}),
    ("pkrs", "test-full", merge({ENTRY: lambda v: v | En.LOAD_IA32_PKRS},
     {F.GUEST_IA32_PKRS: 1 << 32}), C1, "GUEST_IA32_PKRS", 0, {}),
    # --- 27.3.1.2 selectors, bases, limits ---
    ("tr-ti", "default", seg("TR", selector=0x1C), C2, "GUEST_TR_SELECTOR", 0, {}),
    ("ldtr-ti", "default", seg("LDTR", 0x2C, 0, 0xFFFF, 0x82), C2, "GUEST_LDTR_SELECTOR", 0, {}),
    ("ss-rpl", "default", seg("SS", selector=0x13), C2, "GUEST_SS_SELECTOR", 0, {}),
    ("v86-base", "default", merge(v86(), seg("ES", base=0)), C2, "GUEST_ES_BASE", 0, {}),
    ("tr-base", "default", seg("TR", base=NONCANONICAL), C2, "GUEST_TR_BASE", 0, {}),
    ("fs-base", "default", seg("FS", base=NONCANONICAL), C2, "GUEST_FS_BASE", 0, {}),
    ("gs-base", "default", seg("GS", base=NONCANONICAL), C2, "GUEST_GS_BASE", 0, {}),
    ("ldtr-base", "default", seg("LDTR", 0x28, NONCANONICAL, 0xFFFF, 0x82), C2,
     "GUEST_LDTR_BASE", 0, {}),
    ("cs-base-high", "default", seg("CS", base=1 << 32), C2, "GUEST_CS_BASE", 0, {}),
    ("ds-base-high", "default", seg("DS", base=1 << 32), C2, "GUEST_DS_BASE", 0, {}),
    ("v86-limit", "default", merge(v86(), seg("GS", limit=0xFFFFF)), C2, "GUEST_GS_LIMIT", 0, {}),
    ("v86-ar", "default", merge(v86(), seg("CS", ar=0xFB)), C2, "GUEST_CS_AR_BYTES", 0, {}),
    # --- 27.3.1.2 access rights ---
    ("cs-type-data", "default", seg("CS", ar=0xC093), C2, "GUEST_CS_AR_BYTES", 0, {}),
    ("cs-type-unaccessed", "default", seg("CS", ar=0xA09A), C2, "GUEST_CS_AR_BYTES", 0, {}),
    ("ss-type", "default", seg("SS", ar=0xC09B), C2, "GUEST_SS_AR_BYTES", 0, {}),
    ("ds-not-accessed", "default", seg("DS", ar=0xC092), C2, "GUEST_DS_AR_BYTES", 0, {}),
    ("es-execute-only", "default", seg("ES", ar=0xC099), C2, "GUEST_ES_AR_BYTES", 0, {}),
    ("cs-s", "default", seg("CS", ar=0xA08B), C2, "GUEST_CS_AR_BYTES", 0, {}),
    ("fs-s", "default", seg("FS", ar=0xC083), C2, "GUEST_FS_AR_BYTES", 0, {}),
    ("cs-dpl-nonconforming", "default", seg("CS", ar=0xA0FB), C2, "GUEST_CS_AR_BYTES", 0, {}),
    ("cs-dpl-conforming", "default", seg("CS", ar=0xA0FF), C2, "GUEST_CS_AR_BYTES", 0, {}),
    ("cs-data-dpl-ug", "default", merge(REAL_UG, seg("CS", ar=0xC0F3)), C2,
     "GUEST_CS_AR_BYTES", 0, {}),
    ("ss-dpl-rpl", "default", seg("SS", ar=0xC0F3), C2, "GUEST_SS_AR_BYTES", 0, {}),
    ("ss-dpl-real-mode", "default", merge(REAL_UG, seg("CS", ar=0xC093), seg("SS", ar=0xC0F3)),
     C2, "GUEST_SS_AR_BYTES", 0, {}),
    ("ds-dpl-below-rpl", "default", seg("DS", selector=0x13), C2, "GUEST_DS_AR_BYTES", 0, {}),
    ("gs-not-present", "default", seg("GS", ar=0xC013), C2, "GUEST_GS_AR_BYTES", 0, {}),
    ("cs-reserved-11-8", "default", seg("CS", ar=0xA19B), C2, "GUEST_CS_AR_BYTES", 0, {}),
    ("cs-l-and-db", "default", seg("CS", ar=0xE09B), C2, "GUEST_CS_AR_BYTES", 0, {}),
    ("ds-g-limit-low", "default", seg("DS", limit=0xFFFFF000), C2, "GUEST_DS_LIMIT", 0, {}),
    ("ss-g-limit-high", "default", seg("SS", ar=0x4093), C2, "GUEST_SS_LIMIT", 0, {}),
    ("gs-reserved-31-17", "default", seg("GS", ar=0x2C093), C2, "GUEST_GS_AR_BYTES", 0, {}),
    ("tr-type-16bit-in-ia32e", "default", seg("TR", ar=0x83), C2, "GUEST_TR_AR_BYTES", 0, {}),
    ("tr-type-available", "default", merge(NOT_IA32E, seg("TR", ar=0x89)), C2,
     "GUEST_TR_AR_BYTES", 0, {}),
    ("tr-s", "default", seg("TR", ar=0x9B), C2, "GUEST_TR_AR_BYTES", 0, {}),
    ("tr-p", "default", seg("TR", ar=0x0B), C2, "GUEST_TR_AR_BYTES", 0, {}),
    ("tr-reserved-11-8", "default", seg("TR", ar=0x48B), C2, "GUEST_TR_AR_BYTES", 0, {}),
    ("tr-granularity", "default", seg("TR", ar=0x808B), C2, "GUEST_TR_LIMIT", 0, {}),
    ("tr-unusable", "default", seg("TR", ar=0x1008B), C2, "GUEST_TR_AR_BYTES", 0, {}),
    ("tr-reserved-31-17", "default", seg("TR", ar=0x4008B), C2, "GUEST_TR_AR_BYTES", 0, {}),
    ("ldtr-type", "default", seg("LDTR", 0x28, 0, 0xFFFF, 0x83), C2, "GUEST_LDTR_AR_BYTES", 0,
     {}),
    ("ldtr-s", "default", seg("LDTR", 0x28, 0, 0xFFFF, 0x92), C2, "GUEST_LDTR_AR_BYTES", 0, {}),
    ("ldtr-p", "default", seg("LDTR", 0x28, 0, 0xFFFF, 0x02), C2, "GUEST_LDTR_AR_BYTES", 0, {}),
    ("ldtr-reserved-11-8", "default", seg("LDTR", 0x28, 0, 0xFFFF, 0x182), C2,
     "GUEST_LDTR_AR_BYTES", 0, {}),
    ("ldtr-granularity", "default", seg("LDTR", 0x28, 0, 0x100000, 0x82), C2,
     "GUEST_LDTR_LIMIT", 0, {}),
    ("ldtr-reserved-31-17", "default", seg("LDTR", 0x28, 0, 0xFFFF, 0x80082), C2,
     "GUEST_LDTR_AR_BYTES", 0, {}),
    # --- 27.3.1.3 ---
    ("gdtr-base", "default", {F.GUEST_GDTR_BASE: NONCANONICAL}, C3, "GUEST_GDTR_BASE", 0, {}),
    ("idtr-base", "default", {F.GUEST_IDTR_BASE: NONCANONICAL}, C3, "GUEST_IDTR_BASE", 0, {}),
    ("gdtr-limit", "default", {F.GUEST_GDTR_LIMIT: 0x10000}, C3, "GUEST_GDTR_LIMIT", 0, {}),
    ("idtr-limit", "default", {F.GUEST_IDTR_LIMIT: 0xFFFFFFFF}, C3, "GUEST_IDTR_LIMIT", 0, {}),
    # --- 27.3.1.4 ---
    ("rip-high-compat", "default", merge(seg("CS", ar=0xC09B), {F.GUEST_RIP: 1 << 32}), C4,
     "GUEST_RIP", 0, {}),
    ("rip-noncanonical", "default", {F.GUEST_RIP: NONCANONICAL}, C4, "GUEST_RIP", 0, {}),
    ("rflags-bit3", "default", {F.GUEST_RFLAGS: 0xA}, C4, "GUEST_RFLAGS", 0, {}),
    ("rflags-bit15", "default", {F.GUEST_RFLAGS: 0x8002}, C4, "GUEST_RFLAGS", 0, {}),
    ("rflags-bit22", "default", {F.GUEST_RFLAGS: 0x400002}, C4, "GUEST_RFLAGS", 0, {}),
    ("rflags-bit1", "default", {F.GUEST_RFLAGS: 0x200}, C4, "GUEST_RFLAGS", 0, {}),
    ("rflags-vm-ia32e", "default", merge(v86(0), {ENTRY: lambda v: v | En.IA32E_MODE}), C4,
     "GUEST_RFLAGS", 0, {}),
    ("rflags-if-external-interrupt", "default", {INFO: EXT_INT}, C4, "GUEST_RFLAGS", 0, {}),
    # --- 27.3.1.5 ---
    ("activity-unknown", "default", {F.GUEST_ACTIVITY_STATE: 4}, C5, "GUEST_ACTIVITY_STATE", 0,
     {}),
    ("activity-shutdown-unsupported", "default", {F.GUEST_ACTIVITY_STATE: 2}, C5,
     "GUEST_ACTIVITY_STATE", 0, {}),
    ("activity-hlt-cpl3", "default", merge(seg("CS", 0x0B, ar=0xA0FB), seg("SS", 0x13, ar=0xC0F3),
     {F.GUEST_ACTIVITY_STATE: 1}), C5, "GUEST_ACTIVITY_STATE", 0, {}),
    ("activity-hlt-sti-blocking", "default", {F.GUEST_ACTIVITY_STATE: 1, F.GUEST_RFLAGS: IF,
     F.GUEST_INTERRUPTIBILITY_INFO: 1}, C5, "GUEST_ACTIVITY_STATE", 0, {}),
    ("activity-wait-for-sipi-injection", "test-full", {F.GUEST_ACTIVITY_STATE: 3,
     INFO: NMI_INJ}, C5, "GUEST_ACTIVITY_STATE", 0, {}),
    ("activity-shutdown-external", "test-full", {F.GUEST_ACTIVITY_STATE: 2, INFO: EXT_INT,
     F.GUEST_RFLAGS: IF}, C5, "GUEST_ACTIVITY_STATE", 0, {}),
    ("activity-sipi-entry-to-smm", "test-full", merge({ENTRY: lambda v: v | En.SMM},
     {F.GUEST_ACTIVITY_STATE: 3, F.GUEST_INTERRUPTIBILITY_INFO: 4}), C5,
     "GUEST_ACTIVITY_STATE", 0, {"in_smm": True}),
    ("interruptibility-reserved", "default", {F.GUEST_INTERRUPTIBILITY_INFO: 1 << 5}, C5,
     "GUEST_INTERRUPTIBILITY_INFO", 0, {}),
    ("interruptibility-enclave", "default", {F.GUEST_INTERRUPTIBILITY_INFO: 1 << 4}, C5,
     "GUEST_INTERRUPTIBILITY_INFO", 0, {}),
    ("interruptibility-sti-and-movss", "default", {F.GUEST_INTERRUPTIBILITY_INFO: 3,
     F.GUEST_RFLAGS: IF}, C5, "GUEST_INTERRUPTIBILITY_INFO", 0, {}),
    ("interruptibility-sti-if0", "default", {F.GUEST_INTERRUPTIBILITY_INFO: 1}, C5,
     "GUEST_INTERRUPTIBILITY_INFO", 0, {}),
    ("interruptibility-external-movss", "default", {F.GUEST_INTERRUPTIBILITY_INFO: 2,
     F.GUEST_RFLAGS: IF, INFO: EXT_INT}, C5, "GUEST_INTERRUPTIBILITY_INFO", 0, {}),
    ("interruptibility-nmi-movss", "default", {F.GUEST_INTERRUPTIBILITY_INFO: 2,
     INFO: NMI_INJ}, C5, "GUEST_INTERRUPTIBILITY_INFO", 0, {}),
    ("interruptibility-nmi-sti", "default", {F.GUEST_INTERRUPTIBILITY_INFO: 1,
     F.GUEST_RFLAGS: IF, INFO: NMI_INJ}, C5, "GUEST_INTERRUPTIBILITY_INFO", 3, {}),
    ("interruptibility-smi-outside-smm", "default", {F.GUEST_INTERRUPTIBILITY_INFO: 4}, C5,
     "GUEST_INTERRUPTIBILITY_INFO", 0, {}),
    ("interruptibility-entry-to-smm-no-smi", "default", {ENTRY: lambda v: v | En.SMM}, C5,
     "GUEST_INTERRUPTIBILITY_INFO", 0, {"in_smm": True}),
    ("interruptibility-virtual-nmi-blocked", "default",
     {F.PIN_BASED_VM_EXEC_CONTROL: lambda v: v | Pin.NMI_EXITING | Pin.VIRTUAL_NMIS,
      F.GUEST_INTERRUPTIBILITY_INFO: 8, INFO: NMI_INJ}, C5, "GUEST_INTERRUPTIBILITY_INFO", 0,
     {}),
    ("pending-debug-reserved-4", "default", {F.GUEST_PENDING_DBG_EXCEPTIONS: 1 << 4}, C5,
     "GUEST_PENDING_DBG_EXCEPTIONS", 0, {}),
    ("pending-debug-rtm", "default", {F.GUEST_PENDING_DBG_EXCEPTIONS: 1 << 16}, C5,
     "GUEST_PENDING_DBG_EXCEPTIONS", 0, {}),
    ("pending-debug-bs-missing", "default", {F.GUEST_INTERRUPTIBILITY_INFO: 2,
     F.GUEST_RFLAGS: 0x102}, C5, "GUEST_PENDING_DBG_EXCEPTIONS", 0, {}),
    ("pending-debug-bs-without-tf", "default", {F.GUEST_ACTIVITY_STATE: 1,
     F.GUEST_PENDING_DBG_EXCEPTIONS: 1 << 14}, C5, "GUEST_PENDING_DBG_EXCEPTIONS", 0, {}),
    ("pending-debug-bs-with-btf", "default", {F.GUEST_INTERRUPTIBILITY_INFO: 2,
     F.GUEST_RFLAGS: 0x102, F.GUEST_IA32_DEBUGCTL: 2, F.GUEST_PENDING_DBG_EXCEPTIONS: 1 << 14},
     C5, "GUEST_PENDING_DBG_EXCEPTIONS", 0, {}),
    ("link-pointer-alignment", "default", {F.VMCS_LINK_POINTER: 0x20010}, C5,
     "VMCS_LINK_POINTER", 4, {}),
    ("link-pointer-width", "default", {F.VMCS_LINK_POINTER: 1 << 39}, C5, "VMCS_LINK_POINTER",
     4, {}),
    ("link-pointer-revision", "default", link(0x20000, revision=7)[0], C5, "VMCS_LINK_POINTER",
     4, link(0x20000, revision=7)[1]),
    ("link-pointer-shadow-bit", "default", link(0x20000, revision=1 | (1 << 31))[0], C5,
     "VMCS_LINK_POINTER", 4, link(0x20000, revision=1 | (1 << 31))[1]),
    ("link-pointer-shadow-needed", "test-full",
     merge(link(0x20000)[0], {F.SECONDARY_VM_EXEC_CONTROL: lambda v: v | Sec.SHADOW_VMCS,
                              F.VMREAD_BITMAP: 0xA000, F.VMWRITE_BITMAP: 0xB000}), C5,
     "VMCS_LINK_POINTER", 4, link(0x20000)[1]),
    ("link-pointer-current-vmcs", "default", link(VMCS_ADDRESS)[0], C5, "VMCS_LINK_POINTER", 4,
     link(VMCS_ADDRESS)[1]),
    # --- 27.3.1.6 ---
    ("pdpte-ept-field", "default", merge(EPT_ON, NOT_IA32E, {F.GUEST_PDPTR2: 1 | (1 << 40)}), C6,
     "GUEST_PDPTR2", 2, {}),
    ("pdpte-ept-bit1", "default", merge(EPT_ON, NOT_IA32E, {F.GUEST_PDPTR0: 0x3003}), C6,
     "GUEST_PDPTR0", 2, {}),
    ("pdpte-memory", "default", merge(NOT_IA32E, {F.GUEST_CR3: 0x1020}), C6, "GUEST_CR3", 2,
     {"memory": {0x1020 + 8: struct.pack("<Q", 0x2000 | 0x20 | 1)}}),
]


@pytest.mark.parametrize("profile", list(PROFILES.values()), ids=list(PROFILES))
def test_baseline_guest_state_is_valid(profile):
    """The baseline's flat 64-bit guest passes 27.3.1."""
    assert run_guest_checks(context(profile)) is None


@pytest.mark.parametrize("name, profile, changes, section, field, qual, extra", CASES,
                         ids=[c[0] for c in CASES])
def test_guest_check_fails(name, profile, changes, section, field, qual, extra):
    """Each case breaks one guest-state rule in an otherwise valid VMCS (whose controls still
    pass 27.2.1): a VM exit for invalid guest state, the rule's section and qualification,
    naming the field."""
    ctx = context(profile, changes, **extra)
    failure = run_control_checks(ctx)
    assert failure is None, failure.explain()
    assert_failure(run_guest_checks(ctx), "guest", section, field, qual)


PASSING = [
    ("unrestricted-real-mode", "default", REAL_UG, {}),
    ("unrestricted-real-mode-data-cs", "default", merge(REAL_UG, seg("CS", ar=0xC093)), {}),
    ("virtual-8086", "default", v86(), {}),
    ("compatibility-mode-cs", "default", seg("CS", ar=0xC09B), {}),
    ("conforming-cs", "default", seg("CS", ar=0xA09F), {}),
    ("null-ss-unusable", "default", seg("SS", 0, 0, 0, 0x10000), {}),
    ("unusable-ds-garbage", "default", seg("DS", 0x13, 1 << 40, 0x123, 0x10000 | 0xF00), {}),
    ("usable-ldtr", "default", seg("LDTR", 0x28, 0xFFFF800000000000, 0xFFFF, 0x82), {}),
    ("tr-16bit-outside-ia32e", "default", merge(NOT_IA32E, seg("TR", ar=0x83)), {}),
    ("hlt", "default", {F.GUEST_ACTIVITY_STATE: 1}, {}),
    ("shutdown-nmi", "test-full", {F.GUEST_ACTIVITY_STATE: 2, INFO: NMI_INJ}, {}),
    ("shutdown-machine-check", "test-full", {F.GUEST_ACTIVITY_STATE: 2, INFO: MC}, {}),
    ("sti-blocking-with-if", "default", {F.GUEST_INTERRUPTIBILITY_INFO: 1, F.GUEST_RFLAGS: IF},
     {}),
    ("movss-tf-bs", "default", {F.GUEST_INTERRUPTIBILITY_INFO: 2, F.GUEST_RFLAGS: 0x102,
                                F.GUEST_PENDING_DBG_EXCEPTIONS: 1 << 14}, {}),
    ("nmi-blocking-without-virtual-nmis", "default", {F.GUEST_INTERRUPTIBILITY_INFO: 8,
                                                      INFO: NMI_INJ}, {}),
    ("link-pointer-valid", "default", link(0x20000)[0], link(0x20000)[1]),
    ("link-pointer-shadow", "test-full",
     merge(link(0x20000, 1 | (1 << 31))[0],
           {F.SECONDARY_VM_EXEC_CONTROL: lambda v: v | Sec.SHADOW_VMCS, F.VMREAD_BITMAP: 0xA000,
            F.VMWRITE_BITMAP: 0xB000}), link(0x20000, 1 | (1 << 31))[1]),
    ("pae-paging-ept", "default", merge(EPT_ON, NOT_IA32E, {F.GUEST_PDPTR0: 0x3001,
                                                            F.GUEST_PDPTR1: 0xFFFFFFFFFFFFFFFE}),
     {}),
    ("pae-paging-memory", "default", merge(NOT_IA32E, {F.GUEST_CR3: 0x1020}),
     {"memory": {0x1020: struct.pack("<QQQQ", 0x2001, 0, 0x3001, 0x4001)}}),
    ("efer-loaded", "default", merge(LOAD_EFER, {F.GUEST_IA32_EFER: 0xD01}), {}),
    ("efer-lme-without-paging", "default",
     merge(UG_ON, NOT_IA32E, LOAD_EFER, {F.GUEST_CR0: 0x31, F.GUEST_IA32_EFER: 0x100}), {}),
]


@pytest.mark.parametrize("name, profile, changes, extra", PASSING, ids=[c[0] for c in PASSING])
def test_guest_check_passes(name, profile, changes, extra):
    """Guest states the rules allow (the unrestricted-guest and virtual-8086 variants,
    unusable registers, boundary values) pass 27.3.1."""
    ctx = context(profile, changes, **extra)
    assert run_control_checks(ctx) is None
    failure = run_guest_checks(ctx)
    assert failure is None, failure.explain()


def test_checks_are_named_and_documented():
    """Every guest check is a documented check_* function, listed once."""
    assert len(set(GUEST_CHECKS)) == len(GUEST_CHECKS)
    for check in GUEST_CHECKS:
        assert check.__name__.startswith("check_") and inspect.getdoc(check)


def test_explain():
    """explain() gives the rule, the section and the VM exit with its qualification."""
    failure = run_guest_checks(context("default", {F.VMCS_LINK_POINTER: 0x20010}))
    text = failure.explain()
    assert "VMCS_LINK_POINTER = 0x20010 sets bits 11:0" in text
    assert "27.3.1.5" in text and "basic reason 33" in text and "qualification 4" in text
