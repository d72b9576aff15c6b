"""Processor profiles: the VMX capability MSRs 480H-493H of one simulated processor, as data.
SDM Vol. 3C Appendix A "VMX Capability Reporting Facility" (A.1 basic information, A.3-A.5
controls, A.6 miscellaneous data, A.7/A.8 CR0/CR4 fixed bits, A.9 VMCS enumeration, A.10 EPT and
VPID capabilities, A.11 VM functions).

A profile is built from the control classes of `vmx.controls`: the allowed-1 settings are the
controls the profile offers, the allowed-0 settings are the default1 bits (A.2). The MSRs that
exist follow the SDM's rules: the TRUE_* MSRs only if IA32_VMX_BASIC[55] is 1, PROCBASED_CTLS2
only if "activate secondary controls" may be 1, EPT_VPID_CAP only if EPT or VPID may be 1,
VMFUNC only if "enable VM functions" may be 1, PROCBASED_CTLS3 only if "activate tertiary
controls" may be 1, EXIT_CTLS2 only if "activate secondary controls" (exit) may be 1.
"""
from __future__ import annotations

import attrs

from vmx import fields
from vmx.controls import (DEFAULT1, EntryControls as En, ExitControls as Ex, PinBased as Pin,
                          ProcBased as Proc, SecondaryProcBased as Sec)

# Capability MSR indices (SDM Vol. 4 Table 2-2, Appendix A): named once, in x86.msr.
from x86.msr import (  # noqa: E402
    IA32_VMX_BASIC, IA32_VMX_PINBASED_CTLS, IA32_VMX_PROCBASED_CTLS, IA32_VMX_EXIT_CTLS,
    IA32_VMX_ENTRY_CTLS, IA32_VMX_MISC, IA32_VMX_CR0_FIXED0, IA32_VMX_CR0_FIXED1,
    IA32_VMX_CR4_FIXED0, IA32_VMX_CR4_FIXED1, IA32_VMX_VMCS_ENUM, IA32_VMX_PROCBASED_CTLS2,
    IA32_VMX_EPT_VPID_CAP, IA32_VMX_TRUE_PINBASED_CTLS, IA32_VMX_TRUE_PROCBASED_CTLS,
    IA32_VMX_TRUE_EXIT_CTLS, IA32_VMX_TRUE_ENTRY_CTLS, IA32_VMX_VMFUNC, IA32_VMX_PROCBASED_CTLS3,
    IA32_VMX_EXIT_CTLS2)

TRUE_OF = {IA32_VMX_PINBASED_CTLS: IA32_VMX_TRUE_PINBASED_CTLS,
           IA32_VMX_PROCBASED_CTLS: IA32_VMX_TRUE_PROCBASED_CTLS,
           IA32_VMX_EXIT_CTLS: IA32_VMX_TRUE_EXIT_CTLS,
           IA32_VMX_ENTRY_CTLS: IA32_VMX_TRUE_ENTRY_CTLS}
CONTROL_MSR = {Pin: IA32_VMX_PINBASED_CTLS, Proc: IA32_VMX_PROCBASED_CTLS,
               Ex: IA32_VMX_EXIT_CTLS, En: IA32_VMX_ENTRY_CTLS, Sec: IA32_VMX_PROCBASED_CTLS2}

# IA32_VMX_BASIC (A.1)
BASIC_REVISION_MASK = 0x7FFFFFFF          # bits 30:0 VMCS revision identifier
BASIC_REGION_SIZE_SHIFT = 32              # bits 44:32 bytes of VMXON region and VMCS region
BASIC_32BIT_PHYS_ADDR_ONLY = 1 << 48
BASIC_DUAL_MONITOR = 1 << 49
BASIC_MEMTYPE_SHIFT = 50                  # bits 53:50 memory type, 6 = write-back
MEMTYPE_UC, MEMTYPE_WB = 0, 6
BASIC_INOUT = 1 << 54                     # VM exits for INS/OUTS report instruction information
BASIC_TRUE_CTLS = 1 << 55                 # the TRUE_* MSRs exist; default1 bits may be 0
BASIC_NO_HW_ERRCODE_CHECK = 1 << 56       # hardware exceptions may be injected with or without
                                          # an error code

# IA32_VMX_MISC (A.6)
MISC_PREEMPTION_TIMER_RATE_MASK = 0x1F    # timer ticks when TSC bit X changes
MISC_SAVE_EFER_LMA = 1 << 5
MISC_ACTIVITY_HLT = 1 << 6
MISC_ACTIVITY_SHUTDOWN = 1 << 7
MISC_ACTIVITY_WAIT_SIPI = 1 << 8
MISC_CR3_TARGET_SHIFT = 16                # bits 24:16
MISC_MAX_MSR_SHIFT = 25                   # bits 27:25: recommended max list = 512 * (N + 1)
MISC_VMWRITE_EXIT_INFO = 1 << 29          # VMWRITE may write the VM-exit information fields
MISC_ZERO_LEN_INJECTION = 1 << 30
MISC_MSEG_REVISION_SHIFT = 32

# IA32_VMX_EPT_VPID_CAP (A.10)
EPT_EXECUTE_ONLY = 1 << 0
EPT_PAGE_WALK_4 = 1 << 6
EPT_PAGE_WALK_5 = 1 << 7
EPT_MEMTYPE_UC = 1 << 8
EPT_MEMTYPE_WB = 1 << 14
EPT_2MB_PAGE = 1 << 16
EPT_1GB_PAGE = 1 << 17
EPT_INVEPT = 1 << 20
EPT_AD = 1 << 21
EPT_ADVANCED_EXIT_INFO = 1 << 22
EPT_SUPERVISOR_SHADOW_STACK = 1 << 23
EPT_INVEPT_SINGLE_CONTEXT = 1 << 25
EPT_INVEPT_ALL_CONTEXT = 1 << 26
VPID_INVVPID = 1 << 32
VPID_INDIVIDUAL_ADDR = 1 << 40
VPID_SINGLE_CONTEXT = 1 << 41
VPID_ALL_CONTEXT = 1 << 42
VPID_SINGLE_CONTEXT_RETAIN_GLOBALS = 1 << 43

CR0_PE, CR0_NE, CR0_PG = 1 << 0, 1 << 5, 1 << 31
CR4_VMXE = 1 << 13
# CR4 bits the x86 model supports with its default features plus VMX (x86.cpuid.cr4_valid):
# TSD DE PSE PAE MCE PGE PCE, UMIP LA57 VMXE, PCIDE OSXSAVE, SMEP SMAP.
CR4_SUPPORTED = sum(1 << b for b in (2, 3, 4, 5, 6, 7, 8, 11, 12, 13, 17, 18, 20, 21))

# CPUID features a secondary control needs the processor to advertise (SDM 25.6.2 notes).
SECONDARY_NEEDS_CPUID = {Sec.ENABLE_RDTSCP: "RDTSCP", Sec.ENABLE_INVPCID: "INVPCID",
                         Sec.RDRAND_EXITING: "RDRAND", Sec.RDSEED_EXITING: "RDSEED",
                         Sec.ENABLE_XSAVES: "XSAVES"}


@attrs.frozen
class Profile:
    """One simulated processor's VMX capabilities: MSR index -> value, plus the CPUID feature
    bits that it implies (in x86.cpuid's shape: {"ecx1": ("VMX",)}, bits to add)."""
    name: str
    description: str
    msr_items: tuple                 # ((index, value), ...) sorted by index
    cpuid: tuple = (("ecx1", ("VMX",)),)

    @property
    def msrs(self) -> dict[int, int]:
        return dict(self.msr_items)

    def msr(self, index: int) -> int:
        """The value of a capability MSR; KeyError if this profile does not have it (RDMSR of
        it then raises #GP)."""
        return self.msrs[index]

    def has(self, index: int) -> bool:
        return index in self.msrs

    @property
    def ept_vpid_cap(self) -> int:
        """IA32_VMX_EPT_VPID_CAP, or 0 when the profile has no such MSR (A.10)."""
        return self.msrs.get(IA32_VMX_EPT_VPID_CAP, 0)

    @property
    def basic(self) -> int:
        return self.msr(IA32_VMX_BASIC)

    @property
    def revision_id(self) -> int:
        return self.basic & BASIC_REVISION_MASK

    @property
    def region_size(self) -> int:
        return (self.basic >> BASIC_REGION_SIZE_SHIFT) & 0x1FFF

    @property
    def true_controls(self) -> bool:
        return bool(self.basic & BASIC_TRUE_CTLS)

    @property
    def cpuid_features(self) -> dict[str, tuple]:
        return dict(self.cpuid)

    def cpuid_required(self) -> tuple[str, ...]:
        """CPUID features the offered secondary controls rely on (the x86 model must advertise
        them for the controls to make sense)."""
        if not self.has(IA32_VMX_PROCBASED_CTLS2):
            return ()
        _, allowed1 = allowed(self, IA32_VMX_PROCBASED_CTLS2)
        return tuple(name for bit, name in SECONDARY_NEEDS_CPUID.items() if allowed1 & bit)


def allowed(profile: Profile, msr_index: int) -> tuple[int, int]:
    """(allowed0, allowed1) of a control capability MSR (SDM A.3-A.5).

    A control bit may be 0 only where allowed0 has 0, and may be 1 only where allowed1 has 1.
    For the pin-based, primary processor-based, exit and entry controls the TRUE MSR is used
    when IA32_VMX_BASIC[55] is 1 (A.3.1, A.3.2, A.4.1, A.5). The 64-bit tertiary and secondary
    exit controls have only allowed-1 bits (A.3.4, A.4.2)."""
    index = msr_index
    if index in TRUE_OF and profile.true_controls:
        index = TRUE_OF[index]
    value = profile.msr(index)
    if index in (IA32_VMX_PROCBASED_CTLS3, IA32_VMX_EXIT_CTLS2):
        return 0, value
    return value & 0xFFFFFFFF, value >> 32


def allowed_for(profile: Profile, control_class) -> tuple[int, int]:
    """`allowed` for a control class of vmx.controls (PinBased, ProcBased, ...)."""
    return allowed(profile, CONTROL_MSR[control_class])


def cr0_fixed(profile: Profile, unrestricted_guest: bool = False) -> tuple[int, int]:
    """(fixed0, fixed1) for guest CR0 at VM entry: with "unrestricted guest" 1, PE and PG may
    be 0 (SDM A.7, 27.3.1.1)."""
    fixed0 = profile.msr(IA32_VMX_CR0_FIXED0)
    if unrestricted_guest:
        fixed0 &= ~(CR0_PE | CR0_PG)
    return fixed0, profile.msr(IA32_VMX_CR0_FIXED1)


def _ctls(allowed0: int, allowed1: int) -> int:
    allowed0, allowed1 = int(allowed0), int(allowed1)
    assert allowed0 & ~allowed1 == 0, "allowed-0 must be a subset of allowed-1"
    return (allowed1 << 32) | allowed0


def build(name: str, description: str, *, pin: int, proc: int, secondary: int, exit: int,
          entry: int, true_ctls: bool = True, ept_vpid: int = 0, vmfunc: int = 0,
          misc: int, revision_id: int = 1) -> Profile:
    """A profile from the controls it offers. `pin`, `proc`, `exit`, `entry` are the controls
    that may be 1 (default1 bits are added); the TRUE MSRs let "CR3-load exiting",
    "CR3-store exiting", "save debug controls" and "load debug controls" be 0, as processors
    with TRUE MSRs do (A.3.2, A.4.1, A.5)."""
    basic = (revision_id | (4096 << BASIC_REGION_SIZE_SHIFT)
             | (MEMTYPE_WB << BASIC_MEMTYPE_SHIFT) | BASIC_INOUT | BASIC_NO_HW_ERRCODE_CHECK)
    if true_ctls:
        basic |= BASIC_TRUE_CTLS
    d1 = DEFAULT1
    pin1, proc1 = pin | d1[Pin], proc | d1[Proc]
    exit1, entry1 = exit | d1[Ex], entry | d1[En]
    msrs = {
        IA32_VMX_BASIC: basic,
        IA32_VMX_PINBASED_CTLS: _ctls(d1[Pin], pin1),
        IA32_VMX_PROCBASED_CTLS: _ctls(d1[Proc], proc1),
        IA32_VMX_EXIT_CTLS: _ctls(d1[Ex], exit1),
        IA32_VMX_ENTRY_CTLS: _ctls(d1[En], entry1),
        IA32_VMX_MISC: misc,
        IA32_VMX_CR0_FIXED0: CR0_PE | CR0_NE | CR0_PG,
        IA32_VMX_CR0_FIXED1: 0xFFFFFFFF,
        IA32_VMX_CR4_FIXED0: CR4_VMXE,
        IA32_VMX_CR4_FIXED1: CR4_SUPPORTED,
        IA32_VMX_VMCS_ENUM: fields.max_index() << 1,
    }
    if proc1 & Proc.ACTIVATE_SECONDARY_CONTROLS:
        msrs[IA32_VMX_PROCBASED_CTLS2] = _ctls(0, secondary)
    if msrs.get(IA32_VMX_PROCBASED_CTLS2, 0) >> 32 & (Sec.ENABLE_EPT | Sec.ENABLE_VPID):
        msrs[IA32_VMX_EPT_VPID_CAP] = int(ept_vpid)
    if true_ctls:
        msrs[IA32_VMX_TRUE_PINBASED_CTLS] = _ctls(d1[Pin], pin1)
        msrs[IA32_VMX_TRUE_PROCBASED_CTLS] = _ctls(
            d1[Proc] & ~(Proc.CR3_LOAD_EXITING | Proc.CR3_STORE_EXITING), proc1)
        msrs[IA32_VMX_TRUE_EXIT_CTLS] = _ctls(d1[Ex] & ~Ex.SAVE_DEBUG_CONTROLS, exit1)
        msrs[IA32_VMX_TRUE_ENTRY_CTLS] = _ctls(d1[En] & ~En.LOAD_DEBUG_CONTROLS, entry1)
    if msrs.get(IA32_VMX_PROCBASED_CTLS2, 0) >> 32 & Sec.ENABLE_VMFUNC:
        msrs[IA32_VMX_VMFUNC] = int(vmfunc)
    return Profile(name, description, tuple(sorted(msrs.items())))


def _misc(rate=5, activity=MISC_ACTIVITY_HLT, cr3_targets=4, max_msr=0, extra=0, mseg=0):
    return (rate | MISC_SAVE_EFER_LMA | activity | (cr3_targets << MISC_CR3_TARGET_SHIFT)
            | (max_msr << MISC_MAX_MSR_SHIFT) | extra | (mseg << MISC_MSEG_REVISION_SHIFT))


_PIN = Pin.EXT_INTR_MASK | Pin.NMI_EXITING | Pin.VIRTUAL_NMIS | Pin.VMX_PREEMPTION_TIMER
_PROC = sum(Proc) & ~Proc.ACTIVATE_TERTIARY_CONTROLS
_SEC_DEFAULT = (Sec.VIRTUALIZE_APIC_ACCESSES | Sec.ENABLE_EPT | Sec.DESC | Sec.ENABLE_RDTSCP
                | Sec.ENABLE_VPID | Sec.WBINVD_EXITING | Sec.UNRESTRICTED_GUEST
                | Sec.PAUSE_LOOP_EXITING | Sec.RDRAND_EXITING | Sec.ENABLE_INVPCID
                | Sec.ENABLE_VMFUNC | Sec.RDSEED_EXITING | Sec.ENABLE_PML | Sec.EPT_VIOLATION_VE
                | Sec.TSC_SCALING)
_SEC_MINIMAL = Sec.ENABLE_EPT | Sec.ENABLE_VPID | Sec.UNRESTRICTED_GUEST
_EXIT = (Ex.SAVE_DEBUG_CONTROLS | Ex.HOST_ADDR_SPACE_SIZE | Ex.LOAD_IA32_PERF_GLOBAL_CTRL
         | Ex.ACK_INTR_ON_EXIT | Ex.SAVE_IA32_PAT | Ex.LOAD_IA32_PAT | Ex.SAVE_IA32_EFER
         | Ex.LOAD_IA32_EFER | Ex.SAVE_VMX_PREEMPTION_TIMER)
_ENTRY = (En.LOAD_DEBUG_CONTROLS | En.IA32E_MODE | En.SMM | En.DEACT_DUAL_MONITOR
          | En.LOAD_IA32_PERF_GLOBAL_CTRL | En.LOAD_IA32_PAT | En.LOAD_IA32_EFER)
_EPT_FULL = (EPT_EXECUTE_ONLY | EPT_PAGE_WALK_4 | EPT_PAGE_WALK_5 | EPT_MEMTYPE_UC
             | EPT_MEMTYPE_WB | EPT_2MB_PAGE | EPT_1GB_PAGE | EPT_INVEPT | EPT_AD
             | EPT_INVEPT_SINGLE_CONTEXT | EPT_INVEPT_ALL_CONTEXT | VPID_INVVPID
             | VPID_INDIVIDUAL_ADDR | VPID_SINGLE_CONTEXT | VPID_ALL_CONTEXT
             | VPID_SINGLE_CONTEXT_RETAIN_GLOBALS)
_EPT_MINIMAL = (EPT_PAGE_WALK_4 | EPT_MEMTYPE_WB | EPT_INVEPT | EPT_INVEPT_SINGLE_CONTEXT
                | EPT_INVEPT_ALL_CONTEXT | VPID_INVVPID | VPID_SINGLE_CONTEXT | VPID_ALL_CONTEXT)
_MISC = _misc(extra=MISC_VMWRITE_EXIT_INFO)

_COMMON = dict(pin=int(_PIN), proc=int(_PROC), exit=int(_EXIT), entry=int(_ENTRY), misc=_MISC)

PROFILES: dict[str, Profile] = {p.name: p for p in (
    build("default", "full-featured: every control the simulator models",
          secondary=int(_SEC_DEFAULT), ept_vpid=_EPT_FULL, vmfunc=1, **_COMMON),
    build("minimal", "secondary controls limited to EPT, VPID and unrestricted guest",
          secondary=int(_SEC_MINIMAL), ept_vpid=_EPT_MINIMAL, **_COMMON),
    build("no-true", "like default, but without the TRUE capability MSRs (BASIC[55] = 0)",
          secondary=int(_SEC_DEFAULT), ept_vpid=_EPT_FULL, vmfunc=1, true_ctls=False,
          **_COMMON),
)}


def get(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise KeyError(f"no VMX profile {name!r}; known: {', '.join(PROFILES)}") from None
