"""SDM Vol. 3C Appendix A "VMX Capability Reporting Facility": A.1 IA32_VMX_BASIC, A.2-A.5
control MSRs (allowed-0 in bits 31:0, allowed-1 in bits 63:32; TRUE MSRs), A.6 IA32_VMX_MISC,
A.7/A.8 CR0/CR4 fixed bits, A.9 IA32_VMX_VMCS_ENUM, A.10 IA32_VMX_EPT_VPID_CAP, A.11 VMFUNC."""
import pytest

import vmx
from vmx import fields, profiles as P
from vmx.controls import SecondaryProcBased as Sec

NAMES = ("default", "minimal", "no-true")
ALL = [P.get(n) for n in NAMES]
CONTROL_MSRS = (0x481, 0x482, 0x483, 0x484, 0x48B, 0x48D, 0x48E, 0x48F, 0x490)
NON_TRUE_OF = {0x48D: 0x481, 0x48E: 0x482, 0x48F: 0x483, 0x490: 0x484}
DEFAULT1 = {0x481: 0x16, 0x482: 0x0401E172, 0x483: 0x36DFF, 0x484: 0x11FF}


def test_profiles_registry():
    """The three profiles exist; an unknown name is an error."""
    assert set(P.PROFILES) == set(NAMES)
    assert vmx.profiles.get("default") is P.PROFILES["default"]
    with pytest.raises(KeyError):
        P.get("nonesuch")


@pytest.mark.parametrize("profile", ALL, ids=NAMES)
def test_allowed0_subset_of_allowed1(profile):
    """A.3-A.5: a bit reported as allowed-0 = 1 (must be 1) is also allowed-1 = 1."""
    for index in CONTROL_MSRS:
        if profile.has(index):
            value = profile.msr(index)
            assert value & 0xFFFFFFFF & ~(value >> 32) == 0, hex(index)


@pytest.mark.parametrize("profile", ALL, ids=NAMES)
def test_default1_in_non_true_allowed0(profile):
    """A.2: the non-TRUE MSRs report every default1 bit as allowed-0 = 1."""
    for index, d1 in DEFAULT1.items():
        assert profile.msr(index) & d1 == d1


@pytest.mark.parametrize("profile", [p for p in ALL if p.true_controls], ids=lambda p: p.name)
def test_true_msrs(profile):
    """A.3.1, A.3.2, A.4.1, A.5: a TRUE MSR's allowed-1 equals the non-TRUE one; its allowed-0
    may only clear default1 bits; allowed() reads the TRUE MSR when BASIC[55] is 1."""
    for true, plain in NON_TRUE_OF.items():
        t, p = profile.msr(true), profile.msr(plain)
        assert t >> 32 == p >> 32
        assert t & 0xFFFFFFFF & ~(p & 0xFFFFFFFF) == 0
        assert (p ^ t) & 0xFFFFFFFF & ~DEFAULT1[plain] == 0
        assert P.allowed(profile, plain) == (t & 0xFFFFFFFF, t >> 32)


def test_no_true_profile():
    """A.1: with IA32_VMX_BASIC[55] = 0 the TRUE MSRs 48DH-490H do not exist and allowed()
    uses the non-TRUE MSRs; otherwise it is the default profile."""
    nt, d = P.get("no-true"), P.get("default")
    assert not nt.true_controls and nt.basic & (1 << 55) == 0
    for index in NON_TRUE_OF:
        assert not nt.has(index)
        assert d.has(index)
    assert P.allowed(nt, 0x482) == (0x0401E172, nt.msr(0x482) >> 32)
    assert {k: v for k, v in nt.msrs.items() if k != 0x480} == \
        {k: v for k, v in d.msrs.items() if k != 0x480 and k not in NON_TRUE_OF}


@pytest.mark.parametrize("profile", ALL, ids=NAMES)
def test_basic(profile):
    """A.1: revision in bits 30:0 (bit 31 = 0), 4096-byte regions, no 32-bit address limit,
    write-back memory type (6), INS/OUTS instruction information (bit 54)."""
    b = profile.basic
    assert b & (1 << 31) == 0 and profile.revision_id == b & 0x7FFFFFFF
    assert (b >> 32) & 0x1FFF == 4096 == profile.region_size
    assert b & (1 << 48) == 0
    assert (b >> 50) & 0xF == 6
    assert b & (1 << 54)


@pytest.mark.parametrize("profile", ALL, ids=NAMES)
def test_msr_existence(profile):
    """A.3.3, A.10, A.11, A.3.4, A.4.2: PROCBASED_CTLS2 exists iff secondary controls may be
    activated, EPT_VPID_CAP iff EPT or VPID may be 1, VMFUNC iff VM functions may be enabled,
    PROCBASED_CTLS3 and EXIT_CTLS2 iff their activate bits may be 1."""
    proc1 = profile.msr(0x482) >> 32
    assert profile.has(0x48B) == bool(proc1 & (1 << 31))
    sec1 = profile.msr(0x48B) >> 32 if profile.has(0x48B) else 0
    assert profile.has(0x48C) == bool(sec1 & ((1 << 1) | (1 << 5)))
    assert profile.has(0x491) == bool(sec1 & (1 << 13))
    assert profile.has(0x492) == bool(proc1 & (1 << 17))
    assert profile.has(0x493) == bool((profile.msr(0x483) >> 32) & (1 << 31))
    assert profile.msr(0x48B) & 0xFFFFFFFF == 0          # no default1 in secondary controls


@pytest.mark.parametrize("profile", ALL, ids=NAMES)
def test_misc(profile):
    """A.6: CR3-target count 4 (bits 24:16), recommended MSR-list maximum 512 (bits 27:25 = 0),
    HLT activity state (bit 6), VMWRITE to VM-exit information fields (bit 29)."""
    m = profile.msr(0x485)
    assert (m >> 16) & 0x1FF == 4
    assert 512 * (((m >> 25) & 7) + 1) == 512
    assert m & (1 << 6)
    assert m & (1 << 29)
    assert m & 0x1F == 5


@pytest.mark.parametrize("profile", ALL, ids=NAMES)
def test_cr_fixed(profile):
    """A.7, A.8: CR0_FIXED0 = 80000021H (PE, NE, PG); with unrestricted guest PE and PG may be
    0 in the guest (27.3.1.1); CR4_FIXED0 has VMXE; every fixed-1 bit may be 1."""
    assert profile.msr(0x486) == 0x80000021
    assert P.cr0_fixed(profile) == (0x80000021, profile.msr(0x487))
    assert P.cr0_fixed(profile, unrestricted_guest=True)[0] == 0x20
    assert profile.msr(0x488) & (1 << 13)
    assert profile.msr(0x486) & ~profile.msr(0x487) == 0
    assert profile.msr(0x488) & ~profile.msr(0x489) == 0
    assert P.allowed(profile, 0x48B)[1] & Sec.UNRESTRICTED_GUEST


def test_cr4_fixed1_matches_x86_model():
    """A.8: CR4_FIXED1 is the CR4 bits the processor supports: the x86 model's, plus VMXE."""
    from x86.cpuid import DEFAULT_FEATURES, CpuidTable
    table = CpuidTable({"ecx1": DEFAULT_FEATURES["ecx1"] + ("VMX",)})
    for profile in ALL:
        assert profile.msr(0x489) == table.cr4_valid()


@pytest.mark.parametrize("profile", ALL, ids=NAMES)
def test_vmcs_enum(profile):
    """A.9: IA32_VMX_VMCS_ENUM bits 9:1 hold the highest field index (fields.max_index())."""
    v = profile.msr(0x48A)
    assert (v >> 1) & 0x1FF == fields.max_index()
    assert v & ~0x3FE == 0


def test_default_profile_controls():
    """25.6-25.8 as the default profile offers them: all pin-based controls but posted
    interrupts; primary controls but tertiary; the listed secondary controls; the standard
    exit and entry controls."""
    d = P.get("default")
    pin1 = P.allowed_for(d, vmx.PinBased)[1]
    assert pin1 & 0xFF == 0x7F                      # bits 0-6, not 7 (posted interrupts)
    proc1 = P.allowed_for(d, vmx.ProcBased)[1]
    assert proc1 == 0xFFF9FFFE                      # all but bits 0, 17 (tertiary), 18
    sec1 = P.allowed_for(d, vmx.SecondaryProcBased)[1]
    want = (Sec.VIRTUALIZE_APIC_ACCESSES | Sec.ENABLE_EPT | Sec.DESC | Sec.ENABLE_RDTSCP
            | Sec.ENABLE_VPID | Sec.WBINVD_EXITING | Sec.UNRESTRICTED_GUEST
            | Sec.PAUSE_LOOP_EXITING | Sec.RDRAND_EXITING | Sec.ENABLE_INVPCID
            | Sec.ENABLE_VMFUNC | Sec.RDSEED_EXITING | Sec.ENABLE_PML | Sec.EPT_VIOLATION_VE
            | Sec.TSC_SCALING)
    assert sec1 == want
    assert not sec1 & Sec.MODE_BASED_EPT_EXEC
    ex1 = P.allowed_for(d, vmx.ExitControls)[1]
    for bit in (2, 9, 12, 15, 18, 19, 20, 21, 22):
        assert ex1 & (1 << bit)
    assert not ex1 & (1 << 31)
    en1 = P.allowed_for(d, vmx.EntryControls)[1]
    for bit in (2, 9, 13, 14, 15):
        assert en1 & (1 << bit)
    assert d.msr(0x491) == 1                        # EPTP switching (A.11)


def test_minimal_profile_secondary():
    """25.6.2: the minimal profile offers only EPT, VPID and unrestricted guest."""
    m = P.get("minimal")
    assert P.allowed(m, 0x48B) == (0, int(Sec.ENABLE_EPT | Sec.ENABLE_VPID
                                          | Sec.UNRESTRICTED_GUEST))
    assert not m.has(0x491)


def test_ept_vpid_cap_default():
    """A.10: execute-only (0), 4- and 5-level walks (6, 7), UC (8) and WB (14), 2-MB and 1-GB
    pages (16, 17), INVEPT (20), A/D flags (21), single/all-context INVEPT (25, 26), INVVPID
    (32) with all four types (40-43)."""
    cap = P.get("default").msr(0x48C)
    for bit in (0, 6, 7, 8, 14, 16, 17, 20, 21, 25, 26, 32, 40, 41, 42, 43):
        assert cap & (1 << bit), bit
    assert P.get("minimal").msr(0x48C) & ((1 << 6) | (1 << 14)) == (1 << 6) | (1 << 14)


def test_cpuid_bits():
    """CPUID.01H:ECX.VMX[5] is set by every profile; the CPUID features the offered secondary
    controls rely on are ones the x86 model knows."""
    from x86 import cpuid
    known = set(cpuid.ECX1) | set(cpuid.EDX1) | set(cpuid.EBX7) | set(cpuid.ECX7) \
        | set(cpuid.EDX81) | set(cpuid.ECX81)
    for profile in ALL:
        assert "VMX" in profile.cpuid_features["ecx1"]
        assert set(profile.cpuid_required()) <= known
    assert set(P.get("default").cpuid_required()) == {"RDTSCP", "INVPCID", "RDRAND", "RDSEED"}
