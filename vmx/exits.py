"""Basic exit reasons: SDM Vol. 3C Appendix C "VMX Basic Exit Reasons" (Table C-1), and the
format of the exit-reason field: SDM 25.9.1 "Basic VM-Exit Information" (Table 25-18).

Names follow Linux's EXIT_REASON_* (arch/x86/include/uapi/asm/vmx.h) without the prefix; reasons
Linux does not name get the SDM's own word. The descriptions are short paraphrases of Table C-1.
"""
from __future__ import annotations

import enum

# (number, name, description). Numbers 35, 38, 42, 71, 82 and 83 are not used by the SDM.
_ROWS = (
    (0, "EXCEPTION_NMI", "an exception whose exception-bitmap bit is 1, or an NMI with "
        "NMI exiting set"),
    (1, "EXTERNAL_INTERRUPT", "an external interrupt arrived with external-interrupt exiting set"),
    (2, "TRIPLE_FAULT", "an exception while calling the double-fault handler, not itself "
        "intercepted by the exception bitmap"),
    (3, "INIT_SIGNAL", "an INIT signal arrived"),
    (4, "SIPI_SIGNAL", "a start-up IPI arrived in the wait-for-SIPI state"),
    (5, "IO_SMI", "an SMI right after an I/O instruction caused an SMM VM exit"),
    (6, "OTHER_SMI", "an SMI not right after an I/O instruction caused an SMM VM exit"),
    (7, "INTERRUPT_WINDOW", "interrupts became unblocked with interrupt-window exiting set"),
    (8, "NMI_WINDOW", "NMIs became unblocked with NMI-window exiting set"),
    (9, "TASK_SWITCH", "the guest attempted a task switch"),
    (10, "CPUID", "the guest executed CPUID"),
    (11, "GETSEC", "the guest executed GETSEC"),
    (12, "HLT", "the guest executed HLT with HLT exiting set"),
    (13, "INVD", "the guest executed INVD"),
    (14, "INVLPG", "the guest executed INVLPG with INVLPG exiting set"),
    (15, "RDPMC", "the guest executed RDPMC with RDPMC exiting set"),
    (16, "RDTSC", "the guest executed RDTSC with RDTSC exiting set"),
    (17, "RSM", "the guest executed RSM in SMM"),
    (18, "VMCALL", "VMCALL executed by the guest (or by the executive monitor)"),
    (19, "VMCLEAR", "the guest executed VMCLEAR"),
    (20, "VMLAUNCH", "the guest executed VMLAUNCH"),
    (21, "VMPTRLD", "the guest executed VMPTRLD"),
    (22, "VMPTRST", "the guest executed VMPTRST"),
    (23, "VMREAD", "the guest executed VMREAD"),
    (24, "VMRESUME", "the guest executed VMRESUME"),
    (25, "VMWRITE", "the guest executed VMWRITE"),
    (26, "VMOFF", "the guest executed VMXOFF"),
    (27, "VMON", "the guest executed VMXON"),
    (28, "CR_ACCESS", "a control-register access (MOV CR, CLTS, LMSW) the controls intercept"),
    (29, "DR_ACCESS", "a MOV to or from a debug register with MOV-DR exiting set"),
    (30, "IO_INSTRUCTION", "an I/O instruction intercepted by unconditional I/O exiting or the "
         "I/O bitmaps"),
    (31, "MSR_READ", "RDMSR intercepted (no MSR bitmaps, MSR outside the bitmap ranges, or its "
         "read bit set)"),
    (32, "MSR_WRITE", "WRMSR/WRMSRNS intercepted (no MSR bitmaps, MSR outside the bitmap ranges, "
         "or its write bit set)"),
    (33, "INVALID_STATE", "VM-entry failure: the guest state failed a check of 27.3.1"),
    (34, "MSR_LOAD_FAIL", "VM-entry failure: loading an MSR from the VM-entry MSR-load "
         "area failed"),
    (36, "MWAIT_INSTRUCTION", "the guest executed MWAIT with MWAIT exiting set"),
    (37, "MONITOR_TRAP_FLAG", "a monitor-trap-flag VM exit (single step with the MTF control)"),
    (39, "MONITOR_INSTRUCTION", "the guest executed MONITOR with MONITOR exiting set"),
    (40, "PAUSE_INSTRUCTION", "PAUSE with PAUSE exiting set, or a PAUSE loop detected by "
         "PAUSE-loop exiting"),
    (41, "MCE_DURING_VMENTRY", "VM-entry failure: a machine-check event during VM entry"),
    (43, "TPR_BELOW_THRESHOLD", "the virtual TPR dropped below the TPR threshold (trap-like)"),
    (44, "APIC_ACCESS", "an access to the APIC-access page with virtualize APIC accesses set"),
    (45, "EOI_INDUCED", "a virtualized EOI for a vector whose EOI-exit bitmap bit is 1"),
    (46, "GDTR_IDTR", "LGDT, LIDT, SGDT or SIDT with descriptor-table exiting set"),
    (47, "LDTR_TR", "LLDT, LTR, SLDT or STR with descriptor-table exiting set"),
    (48, "EPT_VIOLATION", "a guest-physical access the EPT permissions disallow"),
    (49, "EPT_MISCONFIG", "a guest-physical access met a misconfigured EPT entry"),
    (50, "INVEPT", "the guest executed INVEPT"),
    (51, "RDTSCP", "RDTSCP with enable RDTSCP and RDTSC exiting set"),
    (52, "PREEMPTION_TIMER", "the VMX-preemption timer counted down to zero"),
    (53, "INVVPID", "the guest executed INVVPID"),
    (54, "WBINVD", "WBINVD or WBNOINVD with WBINVD exiting set"),
    (55, "XSETBV", "the guest executed XSETBV"),
    (56, "APIC_WRITE", "a write to the virtual-APIC page that the VMM must virtualize (trap-like)"),
    (57, "RDRAND", "RDRAND with RDRAND exiting set"),
    (58, "INVPCID", "INVPCID with enable INVPCID and INVLPG exiting set"),
    (59, "VMFUNC", "VMFUNC of a function not enabled, or one whose own checks caused the exit"),
    (60, "ENCLS", "ENCLS of a leaf selected by the ENCLS-exiting bitmap"),
    (61, "RDSEED", "RDSEED with RDSEED exiting set"),
    (62, "PML_FULL", "the page-modification log was full when a GPA had to be logged"),
    (63, "XSAVES", "XSAVES of a component selected by the XSS-exiting bitmap"),
    (64, "XRSTORS", "XRSTORS of a component selected by the XSS-exiting bitmap"),
    (65, "PCONFIG", "PCONFIG of a leaf selected by the PCONFIG-exiting bitmap"),
    (66, "SPP", "an event of sub-page write permission (SPP miss or misconfiguration)"),
    (67, "UMWAIT", "UMWAIT with enable user wait and pause and RDTSC exiting set"),
    (68, "TPAUSE", "TPAUSE with enable user wait and pause and RDTSC exiting set"),
    (69, "LOADIWKEY", "LOADIWKEY with LOADIWKEY exiting set"),
    (70, "ENCLV", "ENCLV of a leaf selected by the ENCLV-exiting bitmap"),
    (72, "ENQCMD_PASID_FAIL", "ENQCMD: PASID translation failed"),
    (73, "ENQCMDS_PASID_FAIL", "ENQCMDS: PASID translation failed"),
    (74, "BUS_LOCK", "a bus lock was asserted with bus-lock detection set (trap-like)"),
    (75, "NOTIFY", "instruction timeout: no instruction boundary reached within the notify window"),
    (76, "SEAMCALL", "the guest executed SEAMCALL"),
    (77, "TDCALL", "the guest executed TDCALL"),
    (78, "RDMSRLIST", "the guest executed RDMSRLIST"),
    (79, "WRMSRLIST", "the guest executed WRMSRLIST"),
    (80, "URDMSR", "URDMSR intercepted by the MSR bitmap"),
    (81, "UWRMSR", "UWRMSR intercepted by the MSR bitmap"),
    (84, "MSR_READ_IMM", "RDMSR with an immediate operand intercepted"),
    (85, "MSR_WRITE_IMM", "WRMSRNS with an immediate operand intercepted"),
)

# Other spellings of the same numbers: the SDM's instruction names and older Linux names.
_ALIASES = {
    "VMXOFF": 26, "VMXON": 27, "PENDING_INTERRUPT": 7, "NMI_PENDING": 8,
    "INSTRUCTION_TIMEOUT": 75,
}

ExitReason = enum.IntEnum(
    "ExitReason", [(name, n) for n, name, _ in _ROWS] + list(_ALIASES.items()), module=__name__)
ExitReason.__doc__ = "VMX basic exit reasons (SDM Vol. 3C Appendix C, Table C-1)."

_DESCRIPTION = {n: text for n, _, text in _ROWS}

# The basic exit reasons this simulator never causes, and why (ARCHITECTURE.md: a row has
# behaviour or says it has none). Every other reason is caused by guest code in
# tests/vmx/test_exit_reason_coverage.py.
NOT_MODELLED = {
    3: "one logical processor: no INIT signals", 4: "one logical processor: no SIPIs",
    5: "no SMM (system-management interrupts)", 6: "no SMM (system-management interrupts)",
    17: "no SMM: RSM outside SMM is #UD, not an exit",
    41: "no machine checks",
    45: "virtual-interrupt delivery is not offered by any profile",
    56: "APIC-register virtualization is not offered by any profile",
    60: "no SGX",
    63: "XSAVES/XRSTORS: \"enable XSAVES/XRSTORS\" is not offered", 64: "XSAVES/XRSTORS: not offered",
    65: "no PCONFIG", 66: "sub-page write permissions are not offered",
    67: "\"enable user wait and pause\" is not offered", 68: "\"enable user wait and pause\" is not offered",
    69: "no Key Locker (LOADIWKEY)", 70: "no SGX", 72: "no ENQCMD", 73: "no ENQCMDS",
    74: "bus-lock detection is not offered", 75: "the notify window is not offered",
    76: "no TDX (SEAMCALL)", 77: "no TDX (TDCALL)", 78: "no RDMSRLIST", 79: "no WRMSRLIST",
    80: "no URDMSR", 81: "no UWRMSR", 84: "no RDMSR with an immediate operand",
    85: "no WRMSRNS with an immediate operand",
}


def describe(reason) -> str:
    """A one-line description of a basic exit reason (Table C-1, in our words)."""
    return _DESCRIPTION[int(reason) & BASIC_REASON_MASK]


# Exit-reason field (32 bits), SDM 25.9.1 Table 25-18.
BASIC_REASON_MASK = 0xFFFF           # bits 15:0  basic exit reason
EXIT_REASON_BUS_LOCK_DETECTED = 1 << 26   # a bus lock was asserted (bus-lock detection)
EXIT_REASON_ENCLAVE_MODE = 1 << 27   # the exit was incident to enclave mode
EXIT_REASON_PENDING_MTF = 1 << 28    # pending MTF VM exit (SMM VM exits only)
EXIT_REASON_FROM_VMX_ROOT = 1 << 29  # VM exit from VMX root operation (SMM VM exits only)
VMX_EXIT_REASONS_FAILED_VMENTRY = 1 << 31   # VM-entry failure (Linux's name)
EXIT_REASON_ENTRY_FAILURE = VMX_EXIT_REASONS_FAILED_VMENTRY
# Bit 16 is always 0; bits 25:17 and 30 are not currently defined.
EXIT_REASON_DEFINED_BITS = (BASIC_REASON_MASK | EXIT_REASON_BUS_LOCK_DETECTED
                            | EXIT_REASON_ENCLAVE_MODE | EXIT_REASON_PENDING_MTF
                            | EXIT_REASON_FROM_VMX_ROOT | EXIT_REASON_ENTRY_FAILURE)


def exit_reason_value(reason, entry_failure: bool = False, enclave: bool = False,
                      bus_lock: bool = False) -> int:
    """The 32-bit exit-reason field for a basic reason and flags (SDM 25.9.1)."""
    v = int(reason) & BASIC_REASON_MASK
    if entry_failure:
        v |= EXIT_REASON_ENTRY_FAILURE
    if enclave:
        v |= EXIT_REASON_ENCLAVE_MODE
    if bus_lock:
        v |= EXIT_REASON_BUS_LOCK_DETECTED
    return v
