"""VMCS fields and their encodings: SDM Vol. 3C Appendix B "Field Encoding in VMCS" and
25.11.2 "VMREAD, VMWRITE, and Encodings of VMCS Fields" (Table 25-21).

One table, `_ROWS`, lists every field of Appendix B once: its name (after Linux's
arch/x86/include/asm/vmx.h where Linux names it), its width, its kind and its index. The 32-bit
encoding is computed from those parts as 25.11.2 defines it:

    bit 0       access type: 0 full, 1 high (the upper 32 bits of a 64-bit field)
    bits 9:1    index
    bits 11:10  type: 0 control, 1 VM-exit information (read-only data), 2 guest state, 3 host state
    bit 12      reserved (0)
    bits 14:13  width: 0 16-bit, 1 64-bit, 2 32-bit, 3 natural-width
    bits 31:15  reserved (0)

`Field` is an IntEnum whose members equal their encodings (`Field.GUEST_RIP == 0x681E`); each
64-bit field also has a NAME_HIGH member, as asm/vmx.h has.
"""
from __future__ import annotations

import enum

import attrs

# Width codes (bits 14:13) and type codes (bits 11:10), SDM 25.11.2.
WIDTH_CODE = {16: 0, 64: 1, 32: 2, "natural": 3}
WIDTH_OF_CODE = {v: k for k, v in WIDTH_CODE.items()}
KIND_CODE = {"control": 0, "exit-info": 1, "guest": 2, "host": 3}
KIND_OF_CODE = {v: k for k, v in KIND_CODE.items()}

ACCESS_HIGH = 1 << 0
INDEX_SHIFT, INDEX_MASK = 1, 0x1FF
KIND_SHIFT, WIDTH_SHIFT = 10, 13
RESERVED_MASK = 0xFFFF8000 | (1 << 12)   # bits 31:15 and bit 12 must be 0


def encode(index: int, kind: str, width, high: bool = False) -> int:
    """The encoding of a field from its parts (SDM 25.11.2, Table 25-21)."""
    if high and width != 64:
        raise ValueError("only 64-bit fields have a high access type")
    return ((1 if high else 0) | (index << INDEX_SHIFT) | (KIND_CODE[kind] << KIND_SHIFT)
            | (WIDTH_CODE[width] << WIDTH_SHIFT))


def decode(encoding: int) -> tuple[bool, int, str, object]:
    """(high, index, kind, width) of an encoding; reserved bits are not checked here."""
    return (bool(encoding & ACCESS_HIGH), (encoding >> INDEX_SHIFT) & INDEX_MASK,
            KIND_OF_CODE[(encoding >> KIND_SHIFT) & 3],
            WIDTH_OF_CODE[(encoding >> WIDTH_SHIFT) & 3])


N = "natural"
C, X, G, H = "control", "exit-info", "guest", "host"

# (name, width, kind, index, SDM section). The table of Appendix B, in its order.
_ROWS = (
    # B.1.1 16-bit control fields
    ("VIRTUAL_PROCESSOR_ID", 16, C, 0, "B.1.1"),
    ("POSTED_INTR_NV", 16, C, 1, "B.1.1"),
    ("EPTP_INDEX", 16, C, 2, "B.1.1"),
    ("HLAT_PREFIX_SIZE", 16, C, 3, "B.1.1"),
    ("LAST_PID_POINTER_INDEX", 16, C, 4, "B.1.1"),
    # B.1.2 16-bit guest-state fields
    ("GUEST_ES_SELECTOR", 16, G, 0, "B.1.2"),
    ("GUEST_CS_SELECTOR", 16, G, 1, "B.1.2"),
    ("GUEST_SS_SELECTOR", 16, G, 2, "B.1.2"),
    ("GUEST_DS_SELECTOR", 16, G, 3, "B.1.2"),
    ("GUEST_FS_SELECTOR", 16, G, 4, "B.1.2"),
    ("GUEST_GS_SELECTOR", 16, G, 5, "B.1.2"),
    ("GUEST_LDTR_SELECTOR", 16, G, 6, "B.1.2"),
    ("GUEST_TR_SELECTOR", 16, G, 7, "B.1.2"),
    ("GUEST_INTR_STATUS", 16, G, 8, "B.1.2"),
    ("GUEST_PML_INDEX", 16, G, 9, "B.1.2"),
    ("GUEST_UINV", 16, G, 10, "B.1.2"),
    # B.1.3 16-bit host-state fields
    ("HOST_ES_SELECTOR", 16, H, 0, "B.1.3"),
    ("HOST_CS_SELECTOR", 16, H, 1, "B.1.3"),
    ("HOST_SS_SELECTOR", 16, H, 2, "B.1.3"),
    ("HOST_DS_SELECTOR", 16, H, 3, "B.1.3"),
    ("HOST_FS_SELECTOR", 16, H, 4, "B.1.3"),
    ("HOST_GS_SELECTOR", 16, H, 5, "B.1.3"),
    ("HOST_TR_SELECTOR", 16, H, 6, "B.1.3"),
    # B.2.1 64-bit control fields
    ("IO_BITMAP_A", 64, C, 0, "B.2.1"),
    ("IO_BITMAP_B", 64, C, 1, "B.2.1"),
    ("MSR_BITMAP", 64, C, 2, "B.2.1"),
    ("VM_EXIT_MSR_STORE_ADDR", 64, C, 3, "B.2.1"),
    ("VM_EXIT_MSR_LOAD_ADDR", 64, C, 4, "B.2.1"),
    ("VM_ENTRY_MSR_LOAD_ADDR", 64, C, 5, "B.2.1"),
    ("EXECUTIVE_VMCS_POINTER", 64, C, 6, "B.2.1"),
    ("PML_ADDRESS", 64, C, 7, "B.2.1"),
    ("TSC_OFFSET", 64, C, 8, "B.2.1"),
    ("VIRTUAL_APIC_PAGE_ADDR", 64, C, 9, "B.2.1"),
    ("APIC_ACCESS_ADDR", 64, C, 10, "B.2.1"),
    ("POSTED_INTR_DESC_ADDR", 64, C, 11, "B.2.1"),
    ("VM_FUNCTION_CONTROL", 64, C, 12, "B.2.1"),
    ("EPT_POINTER", 64, C, 13, "B.2.1"),
    ("EOI_EXIT_BITMAP0", 64, C, 14, "B.2.1"),
    ("EOI_EXIT_BITMAP1", 64, C, 15, "B.2.1"),
    ("EOI_EXIT_BITMAP2", 64, C, 16, "B.2.1"),
    ("EOI_EXIT_BITMAP3", 64, C, 17, "B.2.1"),
    ("EPTP_LIST_ADDRESS", 64, C, 18, "B.2.1"),
    ("VMREAD_BITMAP", 64, C, 19, "B.2.1"),
    ("VMWRITE_BITMAP", 64, C, 20, "B.2.1"),
    ("VE_INFORMATION_ADDRESS", 64, C, 21, "B.2.1"),
    ("XSS_EXIT_BITMAP", 64, C, 22, "B.2.1"),
    ("ENCLS_EXITING_BITMAP", 64, C, 23, "B.2.1"),
    ("SPPT_POINTER", 64, C, 24, "B.2.1"),
    ("TSC_MULTIPLIER", 64, C, 25, "B.2.1"),
    ("TERTIARY_VM_EXEC_CONTROL", 64, C, 26, "B.2.1"),
    ("ENCLV_EXITING_BITMAP", 64, C, 27, "B.2.1"),
    ("LOW_PASID_DIRECTORY_ADDRESS", 64, C, 28, "B.2.1"),
    ("HIGH_PASID_DIRECTORY_ADDRESS", 64, C, 29, "B.2.1"),
    ("SHARED_EPT_POINTER", 64, C, 30, "B.2.1"),
    ("PCONFIG_EXITING_BITMAP", 64, C, 31, "B.2.1"),
    ("HLATP", 64, C, 32, "B.2.1"),
    ("PID_POINTER_TABLE", 64, C, 33, "B.2.1"),
    ("SECONDARY_VM_EXIT_CONTROLS", 64, C, 34, "B.2.1"),
    ("IA32_SPEC_CTRL_MASK", 64, C, 37, "B.2.1"),
    ("IA32_SPEC_CTRL_SHADOW", 64, C, 38, "B.2.1"),
    ("INJECTED_EVENT_DATA", 64, C, 41, "B.2.1"),
    # B.2.2 64-bit read-only data fields
    ("GUEST_PHYSICAL_ADDRESS", 64, X, 0, "B.2.2"),
    ("ORIGINAL_EVENT_DATA", 64, X, 2, "B.2.2"),
    # B.2.3 64-bit guest-state fields
    ("VMCS_LINK_POINTER", 64, G, 0, "B.2.3"),
    ("GUEST_IA32_DEBUGCTL", 64, G, 1, "B.2.3"),
    ("GUEST_IA32_PAT", 64, G, 2, "B.2.3"),
    ("GUEST_IA32_EFER", 64, G, 3, "B.2.3"),
    ("GUEST_IA32_PERF_GLOBAL_CTRL", 64, G, 4, "B.2.3"),
    ("GUEST_PDPTR0", 64, G, 5, "B.2.3"),
    ("GUEST_PDPTR1", 64, G, 6, "B.2.3"),
    ("GUEST_PDPTR2", 64, G, 7, "B.2.3"),
    ("GUEST_PDPTR3", 64, G, 8, "B.2.3"),
    ("GUEST_BNDCFGS", 64, G, 9, "B.2.3"),
    ("GUEST_IA32_RTIT_CTL", 64, G, 10, "B.2.3"),
    ("GUEST_IA32_LBR_CTL", 64, G, 11, "B.2.3"),
    ("GUEST_IA32_PKRS", 64, G, 12, "B.2.3"),
    ("GUEST_IA32_FRED_CONFIG", 64, G, 13, "B.2.3"),
    ("GUEST_IA32_FRED_RSP1", 64, G, 14, "B.2.3"),
    ("GUEST_IA32_FRED_RSP2", 64, G, 15, "B.2.3"),
    ("GUEST_IA32_FRED_RSP3", 64, G, 16, "B.2.3"),
    ("GUEST_IA32_FRED_STKLVLS", 64, G, 17, "B.2.3"),
    ("GUEST_IA32_FRED_SSP1", 64, G, 18, "B.2.3"),
    ("GUEST_IA32_FRED_SSP2", 64, G, 19, "B.2.3"),
    ("GUEST_IA32_FRED_SSP3", 64, G, 20, "B.2.3"),
    # B.2.4 64-bit host-state fields
    ("HOST_IA32_PAT", 64, H, 0, "B.2.4"),
    ("HOST_IA32_EFER", 64, H, 1, "B.2.4"),
    ("HOST_IA32_PERF_GLOBAL_CTRL", 64, H, 2, "B.2.4"),
    ("HOST_IA32_PKRS", 64, H, 3, "B.2.4"),
    ("HOST_IA32_FRED_CONFIG", 64, H, 4, "B.2.4"),
    ("HOST_IA32_FRED_RSP1", 64, H, 5, "B.2.4"),
    ("HOST_IA32_FRED_RSP2", 64, H, 6, "B.2.4"),
    ("HOST_IA32_FRED_RSP3", 64, H, 7, "B.2.4"),
    ("HOST_IA32_FRED_STKLVLS", 64, H, 8, "B.2.4"),
    ("HOST_IA32_FRED_SSP1", 64, H, 9, "B.2.4"),
    ("HOST_IA32_FRED_SSP2", 64, H, 10, "B.2.4"),
    ("HOST_IA32_FRED_SSP3", 64, H, 11, "B.2.4"),
    # B.3.1 32-bit control fields
    ("PIN_BASED_VM_EXEC_CONTROL", 32, C, 0, "B.3.1"),
    ("CPU_BASED_VM_EXEC_CONTROL", 32, C, 1, "B.3.1"),
    ("EXCEPTION_BITMAP", 32, C, 2, "B.3.1"),
    ("PAGE_FAULT_ERROR_CODE_MASK", 32, C, 3, "B.3.1"),
    ("PAGE_FAULT_ERROR_CODE_MATCH", 32, C, 4, "B.3.1"),
    ("CR3_TARGET_COUNT", 32, C, 5, "B.3.1"),
    ("VM_EXIT_CONTROLS", 32, C, 6, "B.3.1"),
    ("VM_EXIT_MSR_STORE_COUNT", 32, C, 7, "B.3.1"),
    ("VM_EXIT_MSR_LOAD_COUNT", 32, C, 8, "B.3.1"),
    ("VM_ENTRY_CONTROLS", 32, C, 9, "B.3.1"),
    ("VM_ENTRY_MSR_LOAD_COUNT", 32, C, 10, "B.3.1"),
    ("VM_ENTRY_INTR_INFO_FIELD", 32, C, 11, "B.3.1"),
    ("VM_ENTRY_EXCEPTION_ERROR_CODE", 32, C, 12, "B.3.1"),
    ("VM_ENTRY_INSTRUCTION_LEN", 32, C, 13, "B.3.1"),
    ("TPR_THRESHOLD", 32, C, 14, "B.3.1"),
    ("SECONDARY_VM_EXEC_CONTROL", 32, C, 15, "B.3.1"),
    ("PLE_GAP", 32, C, 16, "B.3.1"),
    ("PLE_WINDOW", 32, C, 17, "B.3.1"),
    ("NOTIFY_WINDOW", 32, C, 18, "B.3.1"),
    # B.3.2 32-bit read-only data fields
    ("VM_INSTRUCTION_ERROR", 32, X, 0, "B.3.2"),
    ("VM_EXIT_REASON", 32, X, 1, "B.3.2"),
    ("VM_EXIT_INTR_INFO", 32, X, 2, "B.3.2"),
    ("VM_EXIT_INTR_ERROR_CODE", 32, X, 3, "B.3.2"),
    ("IDT_VECTORING_INFO_FIELD", 32, X, 4, "B.3.2"),
    ("IDT_VECTORING_ERROR_CODE", 32, X, 5, "B.3.2"),
    ("VM_EXIT_INSTRUCTION_LEN", 32, X, 6, "B.3.2"),
    ("VMX_INSTRUCTION_INFO", 32, X, 7, "B.3.2"),
    # B.3.3 32-bit guest-state fields
    ("GUEST_ES_LIMIT", 32, G, 0, "B.3.3"),
    ("GUEST_CS_LIMIT", 32, G, 1, "B.3.3"),
    ("GUEST_SS_LIMIT", 32, G, 2, "B.3.3"),
    ("GUEST_DS_LIMIT", 32, G, 3, "B.3.3"),
    ("GUEST_FS_LIMIT", 32, G, 4, "B.3.3"),
    ("GUEST_GS_LIMIT", 32, G, 5, "B.3.3"),
    ("GUEST_LDTR_LIMIT", 32, G, 6, "B.3.3"),
    ("GUEST_TR_LIMIT", 32, G, 7, "B.3.3"),
    ("GUEST_GDTR_LIMIT", 32, G, 8, "B.3.3"),
    ("GUEST_IDTR_LIMIT", 32, G, 9, "B.3.3"),
    ("GUEST_ES_AR_BYTES", 32, G, 10, "B.3.3"),
    ("GUEST_CS_AR_BYTES", 32, G, 11, "B.3.3"),
    ("GUEST_SS_AR_BYTES", 32, G, 12, "B.3.3"),
    ("GUEST_DS_AR_BYTES", 32, G, 13, "B.3.3"),
    ("GUEST_FS_AR_BYTES", 32, G, 14, "B.3.3"),
    ("GUEST_GS_AR_BYTES", 32, G, 15, "B.3.3"),
    ("GUEST_LDTR_AR_BYTES", 32, G, 16, "B.3.3"),
    ("GUEST_TR_AR_BYTES", 32, G, 17, "B.3.3"),
    ("GUEST_INTERRUPTIBILITY_INFO", 32, G, 18, "B.3.3"),
    ("GUEST_ACTIVITY_STATE", 32, G, 19, "B.3.3"),
    ("GUEST_SMBASE", 32, G, 20, "B.3.3"),
    ("GUEST_SYSENTER_CS", 32, G, 21, "B.3.3"),
    ("VMX_PREEMPTION_TIMER_VALUE", 32, G, 23, "B.3.3"),
    # B.3.4 32-bit host-state field
    ("HOST_IA32_SYSENTER_CS", 32, H, 0, "B.3.4"),
    # B.4.1 natural-width control fields
    ("CR0_GUEST_HOST_MASK", N, C, 0, "B.4.1"),
    ("CR4_GUEST_HOST_MASK", N, C, 1, "B.4.1"),
    ("CR0_READ_SHADOW", N, C, 2, "B.4.1"),
    ("CR4_READ_SHADOW", N, C, 3, "B.4.1"),
    ("CR3_TARGET_VALUE0", N, C, 4, "B.4.1"),
    ("CR3_TARGET_VALUE1", N, C, 5, "B.4.1"),
    ("CR3_TARGET_VALUE2", N, C, 6, "B.4.1"),
    ("CR3_TARGET_VALUE3", N, C, 7, "B.4.1"),
    # B.4.2 natural-width read-only data fields
    ("EXIT_QUALIFICATION", N, X, 0, "B.4.2"),
    ("IO_RCX", N, X, 1, "B.4.2"),
    ("IO_RSI", N, X, 2, "B.4.2"),
    ("IO_RDI", N, X, 3, "B.4.2"),
    ("IO_RIP", N, X, 4, "B.4.2"),
    ("GUEST_LINEAR_ADDRESS", N, X, 5, "B.4.2"),
    # B.4.3 natural-width guest-state fields
    ("GUEST_CR0", N, G, 0, "B.4.3"),
    ("GUEST_CR3", N, G, 1, "B.4.3"),
    ("GUEST_CR4", N, G, 2, "B.4.3"),
    ("GUEST_ES_BASE", N, G, 3, "B.4.3"),
    ("GUEST_CS_BASE", N, G, 4, "B.4.3"),
    ("GUEST_SS_BASE", N, G, 5, "B.4.3"),
    ("GUEST_DS_BASE", N, G, 6, "B.4.3"),
    ("GUEST_FS_BASE", N, G, 7, "B.4.3"),
    ("GUEST_GS_BASE", N, G, 8, "B.4.3"),
    ("GUEST_LDTR_BASE", N, G, 9, "B.4.3"),
    ("GUEST_TR_BASE", N, G, 10, "B.4.3"),
    ("GUEST_GDTR_BASE", N, G, 11, "B.4.3"),
    ("GUEST_IDTR_BASE", N, G, 12, "B.4.3"),
    ("GUEST_DR7", N, G, 13, "B.4.3"),
    ("GUEST_RSP", N, G, 14, "B.4.3"),
    ("GUEST_RIP", N, G, 15, "B.4.3"),
    ("GUEST_RFLAGS", N, G, 16, "B.4.3"),
    ("GUEST_PENDING_DBG_EXCEPTIONS", N, G, 17, "B.4.3"),
    ("GUEST_SYSENTER_ESP", N, G, 18, "B.4.3"),
    ("GUEST_SYSENTER_EIP", N, G, 19, "B.4.3"),
    ("GUEST_S_CET", N, G, 20, "B.4.3"),
    ("GUEST_SSP", N, G, 21, "B.4.3"),
    ("GUEST_INTR_SSP_TABLE", N, G, 22, "B.4.3"),
    # B.4.4 natural-width host-state fields
    ("HOST_CR0", N, H, 0, "B.4.4"),
    ("HOST_CR3", N, H, 1, "B.4.4"),
    ("HOST_CR4", N, H, 2, "B.4.4"),
    ("HOST_FS_BASE", N, H, 3, "B.4.4"),
    ("HOST_GS_BASE", N, H, 4, "B.4.4"),
    ("HOST_TR_BASE", N, H, 5, "B.4.4"),
    ("HOST_GDTR_BASE", N, H, 6, "B.4.4"),
    ("HOST_IDTR_BASE", N, H, 7, "B.4.4"),
    ("HOST_IA32_SYSENTER_ESP", N, H, 8, "B.4.4"),
    ("HOST_IA32_SYSENTER_EIP", N, H, 9, "B.4.4"),
    ("HOST_RSP", N, H, 10, "B.4.4"),
    ("HOST_RIP", N, H, 11, "B.4.4"),
    ("HOST_S_CET", N, H, 12, "B.4.4"),
    ("HOST_SSP", N, H, 13, "B.4.4"),
    ("HOST_INTR_SSP_TABLE", N, H, 14, "B.4.4"),
)


@attrs.frozen
class FieldInfo:
    """One VMCS field (or the high half of a 64-bit one), decoded.

    `width` is the field's width (16, 32, 64 or "natural"); a high half keeps width 64 and has
    `high` set: it is accessed as the upper 32 bits of that field (SDM 25.11.2).
    `read_only` marks the VM-exit information fields (SDM 25.9); VMWRITE to them fails unless
    IA32_VMX_MISC bit 29 is set (SDM A.6, 31.3 VMWRITE).
    """
    name: str
    encoding: int
    width: object
    kind: str
    read_only: bool
    high: bool
    sdm: str
    index: int

    @property
    def bits(self) -> int:
        """Number of bits a VMREAD returns in 64-bit mode for natural width, else the width."""
        if self.high:
            return 32
        return 64 if self.width == "natural" else self.width


def _infos():
    out = []
    for name, width, kind, index, sdm in _ROWS:
        for high in ((False, True) if width == 64 else (False,)):
            out.append(FieldInfo(name + ("_HIGH" if high else ""), encode(index, kind, width, high),
                                 width, kind, kind == X, high, sdm, index))
    return tuple(out)


FIELDS: tuple[FieldInfo, ...] = _infos()

Field = enum.IntEnum("Field", [(f.name, f.encoding) for f in FIELDS], module=__name__)
Field.__doc__ = "VMCS field encodings (SDM Vol. 3C Appendix B), named as in Linux asm/vmx.h."

_BY_ENCODING = {f.encoding: f for f in FIELDS}


def field_info(field) -> FieldInfo:
    """The FieldInfo of a `Field` or raw encoding; KeyError for an encoding no row defines
    (VMREAD/VMWRITE then fail with VM-instruction error 12, SDM 31.4)."""
    try:
        return _BY_ENCODING[int(field)]
    except KeyError:
        raise KeyError(f"no VMCS field has encoding {int(field):#x} (SDM Appendix B)") from None


def is_field(encoding: int) -> bool:
    return encoding in _BY_ENCODING


def max_index(width=None, kind=None) -> int:
    """Highest index (encoding bits 9:1) over the fields, optionally of one width and/or kind.

    IA32_VMX_VMCS_ENUM bits 9:1 report this number over all supported fields (SDM A.9)."""
    return max(f.index for f in FIELDS
               if (width is None or f.width == width) and (kind is None or f.kind == kind))
