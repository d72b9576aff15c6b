"""SDM Vol. 3C Appendix C "VMX Basic Exit Reasons" (Table C-1) and 25.9.1 (Table 25-18,
"Format of Exit Reason"). Numbers typed from the manual (names as Linux's EXIT_REASON_*)."""
import pytest

import vmx
from vmx import exits

EXPECTED = {
    "EXCEPTION_NMI": 0, "EXTERNAL_INTERRUPT": 1, "TRIPLE_FAULT": 2, "INIT_SIGNAL": 3,
    "SIPI_SIGNAL": 4, "IO_SMI": 5, "OTHER_SMI": 6, "INTERRUPT_WINDOW": 7, "NMI_WINDOW": 8,
    "TASK_SWITCH": 9, "CPUID": 10, "GETSEC": 11, "HLT": 12, "INVD": 13, "INVLPG": 14,
    "RDPMC": 15, "RDTSC": 16, "RSM": 17, "VMCALL": 18, "VMCLEAR": 19, "VMLAUNCH": 20,
    "VMPTRLD": 21, "VMPTRST": 22, "VMREAD": 23, "VMRESUME": 24, "VMWRITE": 25, "VMOFF": 26,
    "VMON": 27, "CR_ACCESS": 28, "DR_ACCESS": 29, "IO_INSTRUCTION": 30, "MSR_READ": 31,
    "MSR_WRITE": 32, "INVALID_STATE": 33, "MSR_LOAD_FAIL": 34, "MWAIT_INSTRUCTION": 36,
    "MONITOR_TRAP_FLAG": 37, "MONITOR_INSTRUCTION": 39, "PAUSE_INSTRUCTION": 40,
    "MCE_DURING_VMENTRY": 41, "TPR_BELOW_THRESHOLD": 43, "APIC_ACCESS": 44, "EOI_INDUCED": 45,
    "GDTR_IDTR": 46, "LDTR_TR": 47, "EPT_VIOLATION": 48, "EPT_MISCONFIG": 49, "INVEPT": 50,
    "RDTSCP": 51, "PREEMPTION_TIMER": 52, "INVVPID": 53, "WBINVD": 54, "XSETBV": 55,
    "APIC_WRITE": 56, "RDRAND": 57, "INVPCID": 58, "VMFUNC": 59, "ENCLS": 60, "RDSEED": 61,
    "PML_FULL": 62, "XSAVES": 63, "XRSTORS": 64, "PCONFIG": 65, "SPP": 66, "UMWAIT": 67,
    "TPAUSE": 68, "LOADIWKEY": 69, "ENCLV": 70, "ENQCMD_PASID_FAIL": 72,
    "ENQCMDS_PASID_FAIL": 73, "BUS_LOCK": 74, "NOTIFY": 75, "SEAMCALL": 76, "TDCALL": 77,
    "RDMSRLIST": 78, "WRMSRLIST": 79, "URDMSR": 80, "UWRMSR": 81, "MSR_READ_IMM": 84,
    "MSR_WRITE_IMM": 85,
}


@pytest.mark.parametrize("name,number", sorted(EXPECTED.items(), key=lambda kv: kv[1]))
def test_basic_exit_reason_number(name, number):
    """Table C-1: each basic exit reason has the manual's number and a description."""
    assert vmx.ExitReason[name] == number
    assert vmx.ExitReason(number).name == name
    assert exits.describe(number)


def test_every_reason_is_in_the_table():
    """Table C-1: no reason beyond the manual's; unused numbers stay unused."""
    assert {r.name for r in vmx.ExitReason} == set(EXPECTED)
    for unused in (35, 38, 42, 71, 82, 83):
        with pytest.raises(ValueError):
            vmx.ExitReason(unused)


def test_aliases():
    """Table C-1 calls 26 and 27 VMXOFF and VMXON (Linux: VMOFF, VMON)."""
    assert vmx.ExitReason.VMXOFF is vmx.ExitReason.VMOFF == 26
    assert vmx.ExitReason.VMXON is vmx.ExitReason.VMON == 27


def test_exit_reason_field_bits():
    """Table 25-18: bits 15:0 basic reason, 26 bus lock, 27 enclave mode, 28 pending MTF,
    29 exit from VMX root operation, 31 VM-entry failure."""
    assert exits.BASIC_REASON_MASK == 0xFFFF
    assert exits.EXIT_REASON_BUS_LOCK_DETECTED == 1 << 26
    assert exits.EXIT_REASON_ENCLAVE_MODE == 1 << 27
    assert exits.EXIT_REASON_PENDING_MTF == 1 << 28
    assert exits.EXIT_REASON_FROM_VMX_ROOT == 1 << 29
    assert exits.VMX_EXIT_REASONS_FAILED_VMENTRY == 0x80000000
    assert exits.exit_reason_value(vmx.ExitReason.INVALID_STATE, entry_failure=True) == 0x80000021
    assert exits.describe(0x80000021) == exits.describe(33)
