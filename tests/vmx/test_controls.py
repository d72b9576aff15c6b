"""SDM Vol. 3C 25.6-25.8: control bit positions (Tables 25-5 pin-based, 25-6 primary
processor-based, 25-7 secondary, 25-8 tertiary, 25-13/25-14 VM-exit, 25-15 VM-entry) and
Appendix A.2-A.5 default1 bits. Bit numbers typed from the manual; names after Linux."""
import pytest

import vmx
from vmx import controls

EXPECTED = {
    vmx.PinBased: {"EXT_INTR_MASK": 0, "NMI_EXITING": 3, "VIRTUAL_NMIS": 5,
                   "VMX_PREEMPTION_TIMER": 6, "POSTED_INTR": 7},
    vmx.ProcBased: {
        "INTR_WINDOW_EXITING": 2, "USE_TSC_OFFSETTING": 3, "HLT_EXITING": 7,
        "INVLPG_EXITING": 9, "MWAIT_EXITING": 10, "RDPMC_EXITING": 11, "RDTSC_EXITING": 12,
        "CR3_LOAD_EXITING": 15, "CR3_STORE_EXITING": 16, "ACTIVATE_TERTIARY_CONTROLS": 17,
        "CR8_LOAD_EXITING": 19, "CR8_STORE_EXITING": 20, "TPR_SHADOW": 21,
        "NMI_WINDOW_EXITING": 22, "MOV_DR_EXITING": 23, "UNCOND_IO_EXITING": 24,
        "USE_IO_BITMAPS": 25, "MONITOR_TRAP_FLAG": 27, "USE_MSR_BITMAPS": 28,
        "MONITOR_EXITING": 29, "PAUSE_EXITING": 30, "ACTIVATE_SECONDARY_CONTROLS": 31},
    vmx.SecondaryProcBased: {
        "VIRTUALIZE_APIC_ACCESSES": 0, "ENABLE_EPT": 1, "DESC": 2, "ENABLE_RDTSCP": 3,
        "VIRTUALIZE_X2APIC_MODE": 4, "ENABLE_VPID": 5, "WBINVD_EXITING": 6,
        "UNRESTRICTED_GUEST": 7, "APIC_REGISTER_VIRT": 8, "VIRTUAL_INTR_DELIVERY": 9,
        "PAUSE_LOOP_EXITING": 10, "RDRAND_EXITING": 11, "ENABLE_INVPCID": 12,
        "ENABLE_VMFUNC": 13, "SHADOW_VMCS": 14, "ENCLS_EXITING": 15, "RDSEED_EXITING": 16,
        "ENABLE_PML": 17, "EPT_VIOLATION_VE": 18, "PT_CONCEAL_VMX": 19, "ENABLE_XSAVES": 20,
        "PASID_TRANSLATION": 21, "MODE_BASED_EPT_EXEC": 22, "SPP": 23, "PT_USE_GPA": 24,
        "TSC_SCALING": 25, "ENABLE_USR_WAIT_PAUSE": 26, "ENABLE_PCONFIG": 27,
        "ENCLV_EXITING": 28, "BUS_LOCK_DETECTION": 30, "NOTIFY_VM_EXITING": 31},
    vmx.TertiaryProcBased: {"LOADIWKEY_EXITING": 0, "ENABLE_HLAT": 1, "EPT_PAGING_WRITE": 2,
                            "GUEST_PAGING_VERIFY": 3, "IPI_VIRT": 4, "VIRT_SPEC_CTRL": 7},
    vmx.ExitControls: {
        "SAVE_DEBUG_CONTROLS": 2, "HOST_ADDR_SPACE_SIZE": 9, "LOAD_IA32_PERF_GLOBAL_CTRL": 12,
        "ACK_INTR_ON_EXIT": 15, "SAVE_IA32_PAT": 18, "LOAD_IA32_PAT": 19, "SAVE_IA32_EFER": 20,
        "LOAD_IA32_EFER": 21, "SAVE_VMX_PREEMPTION_TIMER": 22, "CLEAR_BNDCFGS": 23,
        "PT_CONCEAL_PIP": 24, "CLEAR_IA32_RTIT_CTL": 25, "CLEAR_IA32_LBR_CTL": 26,
        "CLEAR_UINV": 27, "LOAD_CET_STATE": 28, "LOAD_IA32_PKRS": 29,
        "SAVE_IA32_PERF_GLOBAL_CTRL": 30, "ACTIVATE_SECONDARY_CONTROLS": 31},
    vmx.SecondaryExitControls: {"SAVE_IA32_FRED": 0, "LOAD_IA32_FRED": 1},
    vmx.EntryControls: {
        "LOAD_DEBUG_CONTROLS": 2, "IA32E_MODE": 9, "SMM": 10, "DEACT_DUAL_MONITOR": 11,
        "LOAD_IA32_PERF_GLOBAL_CTRL": 13, "LOAD_IA32_PAT": 14, "LOAD_IA32_EFER": 15,
        "LOAD_BNDCFGS": 16, "PT_CONCEAL_PIP": 17, "LOAD_IA32_RTIT_CTL": 18, "LOAD_UINV": 19,
        "LOAD_CET_STATE": 20, "LOAD_IA32_LBR_CTL": 21, "LOAD_IA32_PKRS": 22,
        "LOAD_IA32_FRED": 23},
    vmx.VmFunc: {"EPTP_SWITCHING": 0},
}

ROWS = [(cls, name, bit) for cls, table in EXPECTED.items() for name, bit in table.items()]


@pytest.mark.parametrize("cls,name,bit", ROWS, ids=lambda x: getattr(x, "__name__", str(x)))
def test_bit_position(cls, name, bit):
    """Tables 25-5 to 25-15: each control is at the manual's bit; the Linux name is exported."""
    assert cls[name] == 1 << bit
    assert getattr(controls, cls.PREFIX + name) == 1 << bit


@pytest.mark.parametrize("cls", list(EXPECTED), ids=lambda c: c.__name__)
def test_no_other_controls(cls):
    """Tables 25-5 to 25-15: the class holds exactly the manual's controls."""
    assert {m.name for m in cls} == set(EXPECTED[cls])


def test_linux_values():
    """Spot checks against asm/vmx.h's hex values."""
    assert controls.CPU_BASED_HLT_EXITING == 0x80
    assert controls.CPU_BASED_ACTIVATE_SECONDARY_CONTROLS == 0x80000000
    assert controls.SECONDARY_EXEC_ENABLE_EPT == 0x2
    assert controls.SECONDARY_EXEC_UNRESTRICTED_GUEST == 0x80
    assert controls.SECONDARY_EXEC_TSC_SCALING == 0x02000000
    assert controls.VM_EXIT_SAVE_DEBUG_CONTROLS == 0x4
    assert controls.VM_EXIT_ACK_INTR_ON_EXIT == 0x8000
    assert controls.VM_EXIT_LOAD_CET_STATE == 0x10000000
    assert controls.VM_ENTRY_IA32E_MODE == 0x200
    assert controls.VM_ENTRY_LOAD_CET_STATE == 0x100000
    assert controls.PIN_BASED_POSTED_INTR == 0x80
    assert vmx.SecondaryProcBased.ENABLE_SPP is vmx.SecondaryProcBased.SPP


def bits(*positions):
    return sum(1 << b for b in positions)


def test_default1():
    """A.3.1, A.3.2, A.4.1, A.5: the default1 bits of the pin-based (1, 2, 4), primary
    processor-based (1, 4-6, 8, 13-16, 26), VM-exit (0-8, 10, 11, 13, 14, 16, 17) and VM-entry
    (0-8, 12) controls; secondary controls have none (A.3.3)."""
    d = vmx.DEFAULT1
    assert d[vmx.PinBased] == bits(1, 2, 4) == 0x16
    assert d[vmx.ProcBased] == bits(1, 4, 5, 6, 8, 13, 14, 15, 16, 26) == 0x0401E172
    assert d[vmx.ExitControls] == bits(*range(0, 9), 10, 11, 13, 14, 16, 17) == 0x36DFF
    assert d[vmx.EntryControls] == bits(*range(0, 9), 12) == 0x11FF
    assert d[vmx.SecondaryProcBased] == 0
