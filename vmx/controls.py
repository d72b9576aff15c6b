"""VMX control bits: SDM Vol. 3C 25.6 "VM-Execution Control Fields" (25.6.1 pin-based,
Table 25-5; 25.6.2 processor-based, Tables 25-6, 25-7, 25-8; 25.6.14 VM-function controls),
25.7.1 "VM-Exit Controls" (Tables 25-13, 25-14), 25.8.1 "VM-Entry Controls" (Table 25-15),
and the default1 classes of Appendix A.2-A.5.

Each class is one table of (name, bit) rows. Member names drop Linux's prefix (the class says
it); the module also exports the full Linux names (CPU_BASED_HLT_EXITING, ...).
"""
from __future__ import annotations

import enum


def _flags(cls_name: str, doc: str, prefix: str, rows, aliases=()):
    members = [(name, 1 << bit) for name, bit in rows]
    members += [(alias, 1 << bit) for alias, bit in aliases]
    cls = enum.IntFlag(cls_name, members, module=__name__, boundary=enum.KEEP)
    cls.__doc__ = doc
    cls.PREFIX = prefix
    cls.BITS = {name: bit for name, bit in rows}     # the table, for tests and docs
    for name, value in members:
        globals()[prefix + name] = cls[name]
    return cls


PinBased = _flags("PinBased", "Pin-based VM-execution controls (SDM 25.6.1, Table 25-5).",
                  "PIN_BASED_", (
                      ("EXT_INTR_MASK", 0),          # external-interrupt exiting
                      ("NMI_EXITING", 3),
                      ("VIRTUAL_NMIS", 5),
                      ("VMX_PREEMPTION_TIMER", 6),   # activate VMX-preemption timer
                      ("POSTED_INTR", 7),            # process posted interrupts
                  ))

ProcBased = _flags("ProcBased", "Primary processor-based VM-execution controls "
                   "(SDM 25.6.2, Table 25-6).", "CPU_BASED_", (
                       ("INTR_WINDOW_EXITING", 2),
                       ("USE_TSC_OFFSETTING", 3),
                       ("HLT_EXITING", 7),
                       ("INVLPG_EXITING", 9),
                       ("MWAIT_EXITING", 10),
                       ("RDPMC_EXITING", 11),
                       ("RDTSC_EXITING", 12),
                       ("CR3_LOAD_EXITING", 15),
                       ("CR3_STORE_EXITING", 16),
                       ("ACTIVATE_TERTIARY_CONTROLS", 17),
                       ("CR8_LOAD_EXITING", 19),
                       ("CR8_STORE_EXITING", 20),
                       ("TPR_SHADOW", 21),
                       ("NMI_WINDOW_EXITING", 22),
                       ("MOV_DR_EXITING", 23),
                       ("UNCOND_IO_EXITING", 24),
                       ("USE_IO_BITMAPS", 25),
                       ("MONITOR_TRAP_FLAG", 27),
                       ("USE_MSR_BITMAPS", 28),
                       ("MONITOR_EXITING", 29),
                       ("PAUSE_EXITING", 30),
                       ("ACTIVATE_SECONDARY_CONTROLS", 31),
                   ))

SecondaryProcBased = _flags(
    "SecondaryProcBased", "Secondary processor-based VM-execution controls "
    "(SDM 25.6.2, Table 25-7).", "SECONDARY_EXEC_", (
        ("VIRTUALIZE_APIC_ACCESSES", 0),
        ("ENABLE_EPT", 1),
        ("DESC", 2),                       # descriptor-table exiting
        ("ENABLE_RDTSCP", 3),
        ("VIRTUALIZE_X2APIC_MODE", 4),
        ("ENABLE_VPID", 5),
        ("WBINVD_EXITING", 6),
        ("UNRESTRICTED_GUEST", 7),
        ("APIC_REGISTER_VIRT", 8),
        ("VIRTUAL_INTR_DELIVERY", 9),
        ("PAUSE_LOOP_EXITING", 10),
        ("RDRAND_EXITING", 11),
        ("ENABLE_INVPCID", 12),
        ("ENABLE_VMFUNC", 13),
        ("SHADOW_VMCS", 14),
        ("ENCLS_EXITING", 15),
        ("RDSEED_EXITING", 16),
        ("ENABLE_PML", 17),
        ("EPT_VIOLATION_VE", 18),
        ("PT_CONCEAL_VMX", 19),
        ("ENABLE_XSAVES", 20),
        ("PASID_TRANSLATION", 21),
        ("MODE_BASED_EPT_EXEC", 22),
        ("SPP", 23),                       # sub-page write permissions for EPT
        ("PT_USE_GPA", 24),
        ("TSC_SCALING", 25),
        ("ENABLE_USR_WAIT_PAUSE", 26),
        ("ENABLE_PCONFIG", 27),
        ("ENCLV_EXITING", 28),
        ("BUS_LOCK_DETECTION", 30),
        ("NOTIFY_VM_EXITING", 31),         # instruction timeout
    ), aliases=(("ENABLE_SPP", 23),))

TertiaryProcBased = _flags(
    "TertiaryProcBased", "Tertiary processor-based VM-execution controls, a 64-bit field "
    "(SDM 25.6.2, Table 25-8).", "TERTIARY_EXEC_", (
        ("LOADIWKEY_EXITING", 0),
        ("ENABLE_HLAT", 1),
        ("EPT_PAGING_WRITE", 2),
        ("GUEST_PAGING_VERIFY", 3),
        ("IPI_VIRT", 4),
        ("VIRT_SPEC_CTRL", 7),             # virtualize IA32_SPEC_CTRL
    ))

ExitControls = _flags("ExitControls", "Primary VM-exit controls (SDM 25.7.1, Table 25-13).",
                      "VM_EXIT_", (
                          ("SAVE_DEBUG_CONTROLS", 2),
                          ("HOST_ADDR_SPACE_SIZE", 9),
                          ("LOAD_IA32_PERF_GLOBAL_CTRL", 12),
                          ("ACK_INTR_ON_EXIT", 15),
                          ("SAVE_IA32_PAT", 18),
                          ("LOAD_IA32_PAT", 19),
                          ("SAVE_IA32_EFER", 20),
                          ("LOAD_IA32_EFER", 21),
                          ("SAVE_VMX_PREEMPTION_TIMER", 22),
                          ("CLEAR_BNDCFGS", 23),
                          ("PT_CONCEAL_PIP", 24),
                          ("CLEAR_IA32_RTIT_CTL", 25),
                          ("CLEAR_IA32_LBR_CTL", 26),
                          ("CLEAR_UINV", 27),
                          ("LOAD_CET_STATE", 28),
                          ("LOAD_IA32_PKRS", 29),
                          ("SAVE_IA32_PERF_GLOBAL_CTRL", 30),
                          ("ACTIVATE_SECONDARY_CONTROLS", 31),
                      ))

SecondaryExitControls = _flags(
    "SecondaryExitControls", "Secondary VM-exit controls, a 64-bit field (SDM 25.7.1, "
    "Table 25-14).", "SECONDARY_VM_EXIT_", (
        ("SAVE_IA32_FRED", 0),
        ("LOAD_IA32_FRED", 1),
    ))

EntryControls = _flags("EntryControls", "VM-entry controls (SDM 25.8.1, Table 25-15).",
                       "VM_ENTRY_", (
                           ("LOAD_DEBUG_CONTROLS", 2),
                           ("IA32E_MODE", 9),
                           ("SMM", 10),
                           ("DEACT_DUAL_MONITOR", 11),
                           ("LOAD_IA32_PERF_GLOBAL_CTRL", 13),
                           ("LOAD_IA32_PAT", 14),
                           ("LOAD_IA32_EFER", 15),
                           ("LOAD_BNDCFGS", 16),
                           ("PT_CONCEAL_PIP", 17),
                           ("LOAD_IA32_RTIT_CTL", 18),
                           ("LOAD_UINV", 19),
                           ("LOAD_CET_STATE", 20),
                           ("LOAD_IA32_LBR_CTL", 21),
                           ("LOAD_IA32_PKRS", 22),
                           ("LOAD_IA32_FRED", 23),
                       ))

VmFunc = _flags("VmFunc", "VM-function controls, a 64-bit field (SDM 25.6.14); the same bits "
                "are IA32_VMX_VMFUNC (SDM A.11).", "VMX_VMFUNC_", (
                    ("EPTP_SWITCHING", 0),
                ))

# Default1 bits (SDM A.2): reserved bits that the non-TRUE capability MSRs report as
# allowed-0 = 1, i.e. that must be 1 unless the TRUE MSR lets them be 0 (A.3.1, A.3.2, A.4.1, A.5).
# Secondary and tertiary controls have no default1 bits (A.3.3, A.3.4).
PIN_BASED_ALWAYSON_WITHOUT_TRUE_MSR = 0x00000016        # bits 1, 2, 4
CPU_BASED_ALWAYSON_WITHOUT_TRUE_MSR = 0x0401E172        # bits 1, 4-6, 8, 13-16, 26
VM_EXIT_ALWAYSON_WITHOUT_TRUE_MSR = 0x00036DFF          # bits 0-8, 10, 11, 13, 14, 16, 17
VM_ENTRY_ALWAYSON_WITHOUT_TRUE_MSR = 0x000011FF         # bits 0-8, 12

DEFAULT1 = {
    PinBased: PIN_BASED_ALWAYSON_WITHOUT_TRUE_MSR,
    ProcBased: CPU_BASED_ALWAYSON_WITHOUT_TRUE_MSR,
    SecondaryProcBased: 0,
    TertiaryProcBased: 0,
    ExitControls: VM_EXIT_ALWAYSON_WITHOUT_TRUE_MSR,
    SecondaryExitControls: 0,
    EntryControls: VM_ENTRY_ALWAYSON_WITHOUT_TRUE_MSR,
}


def defined_bits(cls) -> int:
    """The bits the SDM defines in a control class (all others are reserved)."""
    return sum(1 << b for b in cls.BITS.values())
