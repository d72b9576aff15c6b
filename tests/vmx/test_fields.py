"""SDM Vol. 3C Appendix B "Field Encoding in VMCS" (Tables B-1 to B-14) and 25.11.2
(Table 25-21, "Structure of VMCS Component Encoding").

The expected encodings below are typed from the manual's tables (and agree with Linux's
asm/vmx.h where it names the field); they are not computed by the code under test.
"""
import pytest

import vmx
from vmx import fields

# name: encoding of the full field, as printed in Appendix B.
EXPECTED = {
    # B.1.1 16-bit control
    "VIRTUAL_PROCESSOR_ID": 0x0000, "POSTED_INTR_NV": 0x0002, "EPTP_INDEX": 0x0004,
    "HLAT_PREFIX_SIZE": 0x0006, "LAST_PID_POINTER_INDEX": 0x0008,
    # B.1.2 16-bit guest state
    "GUEST_ES_SELECTOR": 0x0800, "GUEST_CS_SELECTOR": 0x0802, "GUEST_SS_SELECTOR": 0x0804,
    "GUEST_DS_SELECTOR": 0x0806, "GUEST_FS_SELECTOR": 0x0808, "GUEST_GS_SELECTOR": 0x080A,
    "GUEST_LDTR_SELECTOR": 0x080C, "GUEST_TR_SELECTOR": 0x080E, "GUEST_INTR_STATUS": 0x0810,
    "GUEST_PML_INDEX": 0x0812, "GUEST_UINV": 0x0814,
    # B.1.3 16-bit host state
    "HOST_ES_SELECTOR": 0x0C00, "HOST_CS_SELECTOR": 0x0C02, "HOST_SS_SELECTOR": 0x0C04,
    "HOST_DS_SELECTOR": 0x0C06, "HOST_FS_SELECTOR": 0x0C08, "HOST_GS_SELECTOR": 0x0C0A,
    "HOST_TR_SELECTOR": 0x0C0C,
    # B.2.1 64-bit control
    "IO_BITMAP_A": 0x2000, "IO_BITMAP_B": 0x2002, "MSR_BITMAP": 0x2004,
    "VM_EXIT_MSR_STORE_ADDR": 0x2006, "VM_EXIT_MSR_LOAD_ADDR": 0x2008,
    "VM_ENTRY_MSR_LOAD_ADDR": 0x200A, "EXECUTIVE_VMCS_POINTER": 0x200C, "PML_ADDRESS": 0x200E,
    "TSC_OFFSET": 0x2010, "VIRTUAL_APIC_PAGE_ADDR": 0x2012, "APIC_ACCESS_ADDR": 0x2014,
    "POSTED_INTR_DESC_ADDR": 0x2016, "VM_FUNCTION_CONTROL": 0x2018, "EPT_POINTER": 0x201A,
    "EOI_EXIT_BITMAP0": 0x201C, "EOI_EXIT_BITMAP1": 0x201E, "EOI_EXIT_BITMAP2": 0x2020,
    "EOI_EXIT_BITMAP3": 0x2022, "EPTP_LIST_ADDRESS": 0x2024, "VMREAD_BITMAP": 0x2026,
    "VMWRITE_BITMAP": 0x2028, "VE_INFORMATION_ADDRESS": 0x202A, "XSS_EXIT_BITMAP": 0x202C,
    "ENCLS_EXITING_BITMAP": 0x202E, "SPPT_POINTER": 0x2030, "TSC_MULTIPLIER": 0x2032,
    "TERTIARY_VM_EXEC_CONTROL": 0x2034, "ENCLV_EXITING_BITMAP": 0x2036,
    "LOW_PASID_DIRECTORY_ADDRESS": 0x2038, "HIGH_PASID_DIRECTORY_ADDRESS": 0x203A,
    "SHARED_EPT_POINTER": 0x203C, "PCONFIG_EXITING_BITMAP": 0x203E, "HLATP": 0x2040,
    "PID_POINTER_TABLE": 0x2042, "SECONDARY_VM_EXIT_CONTROLS": 0x2044,
    "IA32_SPEC_CTRL_MASK": 0x204A, "IA32_SPEC_CTRL_SHADOW": 0x204C,
    "INJECTED_EVENT_DATA": 0x2052,
    # B.2.2 64-bit read-only data
    "GUEST_PHYSICAL_ADDRESS": 0x2400, "ORIGINAL_EVENT_DATA": 0x2404,
    # B.2.3 64-bit guest state
    "VMCS_LINK_POINTER": 0x2800, "GUEST_IA32_DEBUGCTL": 0x2802, "GUEST_IA32_PAT": 0x2804,
    "GUEST_IA32_EFER": 0x2806, "GUEST_IA32_PERF_GLOBAL_CTRL": 0x2808, "GUEST_PDPTR0": 0x280A,
    "GUEST_PDPTR1": 0x280C, "GUEST_PDPTR2": 0x280E, "GUEST_PDPTR3": 0x2810,
    "GUEST_BNDCFGS": 0x2812, "GUEST_IA32_RTIT_CTL": 0x2814, "GUEST_IA32_LBR_CTL": 0x2816,
    "GUEST_IA32_PKRS": 0x2818, "GUEST_IA32_FRED_CONFIG": 0x281A, "GUEST_IA32_FRED_RSP1": 0x281C,
    "GUEST_IA32_FRED_RSP2": 0x281E, "GUEST_IA32_FRED_RSP3": 0x2820,
    "GUEST_IA32_FRED_STKLVLS": 0x2822, "GUEST_IA32_FRED_SSP1": 0x2824,
    "GUEST_IA32_FRED_SSP2": 0x2826, "GUEST_IA32_FRED_SSP3": 0x2828,
    # B.2.4 64-bit host state
    "HOST_IA32_PAT": 0x2C00, "HOST_IA32_EFER": 0x2C02, "HOST_IA32_PERF_GLOBAL_CTRL": 0x2C04,
    "HOST_IA32_PKRS": 0x2C06, "HOST_IA32_FRED_CONFIG": 0x2C08, "HOST_IA32_FRED_RSP1": 0x2C0A,
    "HOST_IA32_FRED_RSP2": 0x2C0C, "HOST_IA32_FRED_RSP3": 0x2C0E,
    "HOST_IA32_FRED_STKLVLS": 0x2C10, "HOST_IA32_FRED_SSP1": 0x2C12,
    "HOST_IA32_FRED_SSP2": 0x2C14, "HOST_IA32_FRED_SSP3": 0x2C16,
    # B.3.1 32-bit control
    "PIN_BASED_VM_EXEC_CONTROL": 0x4000, "CPU_BASED_VM_EXEC_CONTROL": 0x4002,
    "EXCEPTION_BITMAP": 0x4004, "PAGE_FAULT_ERROR_CODE_MASK": 0x4006,
    "PAGE_FAULT_ERROR_CODE_MATCH": 0x4008, "CR3_TARGET_COUNT": 0x400A,
    "VM_EXIT_CONTROLS": 0x400C, "VM_EXIT_MSR_STORE_COUNT": 0x400E,
    "VM_EXIT_MSR_LOAD_COUNT": 0x4010, "VM_ENTRY_CONTROLS": 0x4012,
    "VM_ENTRY_MSR_LOAD_COUNT": 0x4014, "VM_ENTRY_INTR_INFO_FIELD": 0x4016,
    "VM_ENTRY_EXCEPTION_ERROR_CODE": 0x4018, "VM_ENTRY_INSTRUCTION_LEN": 0x401A,
    "TPR_THRESHOLD": 0x401C, "SECONDARY_VM_EXEC_CONTROL": 0x401E, "PLE_GAP": 0x4020,
    "PLE_WINDOW": 0x4022, "NOTIFY_WINDOW": 0x4024,
    # B.3.2 32-bit read-only data
    "VM_INSTRUCTION_ERROR": 0x4400, "VM_EXIT_REASON": 0x4402, "VM_EXIT_INTR_INFO": 0x4404,
    "VM_EXIT_INTR_ERROR_CODE": 0x4406, "IDT_VECTORING_INFO_FIELD": 0x4408,
    "IDT_VECTORING_ERROR_CODE": 0x440A, "VM_EXIT_INSTRUCTION_LEN": 0x440C,
    "VMX_INSTRUCTION_INFO": 0x440E,
    # B.3.3 32-bit guest state
    "GUEST_ES_LIMIT": 0x4800, "GUEST_CS_LIMIT": 0x4802, "GUEST_SS_LIMIT": 0x4804,
    "GUEST_DS_LIMIT": 0x4806, "GUEST_FS_LIMIT": 0x4808, "GUEST_GS_LIMIT": 0x480A,
    "GUEST_LDTR_LIMIT": 0x480C, "GUEST_TR_LIMIT": 0x480E, "GUEST_GDTR_LIMIT": 0x4810,
    "GUEST_IDTR_LIMIT": 0x4812, "GUEST_ES_AR_BYTES": 0x4814, "GUEST_CS_AR_BYTES": 0x4816,
    "GUEST_SS_AR_BYTES": 0x4818, "GUEST_DS_AR_BYTES": 0x481A, "GUEST_FS_AR_BYTES": 0x481C,
    "GUEST_GS_AR_BYTES": 0x481E, "GUEST_LDTR_AR_BYTES": 0x4820, "GUEST_TR_AR_BYTES": 0x4822,
    "GUEST_INTERRUPTIBILITY_INFO": 0x4824, "GUEST_ACTIVITY_STATE": 0x4826,
    "GUEST_SMBASE": 0x4828, "GUEST_SYSENTER_CS": 0x482A, "VMX_PREEMPTION_TIMER_VALUE": 0x482E,
    # B.3.4 32-bit host state
    "HOST_IA32_SYSENTER_CS": 0x4C00,
    # B.4.1 natural-width control
    "CR0_GUEST_HOST_MASK": 0x6000, "CR4_GUEST_HOST_MASK": 0x6002, "CR0_READ_SHADOW": 0x6004,
    "CR4_READ_SHADOW": 0x6006, "CR3_TARGET_VALUE0": 0x6008, "CR3_TARGET_VALUE1": 0x600A,
    "CR3_TARGET_VALUE2": 0x600C, "CR3_TARGET_VALUE3": 0x600E,
    # B.4.2 natural-width read-only data
    "EXIT_QUALIFICATION": 0x6400, "IO_RCX": 0x6402, "IO_RSI": 0x6404, "IO_RDI": 0x6406,
    "IO_RIP": 0x6408, "GUEST_LINEAR_ADDRESS": 0x640A,
    # B.4.3 natural-width guest state
    "GUEST_CR0": 0x6800, "GUEST_CR3": 0x6802, "GUEST_CR4": 0x6804, "GUEST_ES_BASE": 0x6806,
    "GUEST_CS_BASE": 0x6808, "GUEST_SS_BASE": 0x680A, "GUEST_DS_BASE": 0x680C,
    "GUEST_FS_BASE": 0x680E, "GUEST_GS_BASE": 0x6810, "GUEST_LDTR_BASE": 0x6812,
    "GUEST_TR_BASE": 0x6814, "GUEST_GDTR_BASE": 0x6816, "GUEST_IDTR_BASE": 0x6818,
    "GUEST_DR7": 0x681A, "GUEST_RSP": 0x681C, "GUEST_RIP": 0x681E, "GUEST_RFLAGS": 0x6820,
    "GUEST_PENDING_DBG_EXCEPTIONS": 0x6822, "GUEST_SYSENTER_ESP": 0x6824,
    "GUEST_SYSENTER_EIP": 0x6826, "GUEST_S_CET": 0x6828, "GUEST_SSP": 0x682A,
    "GUEST_INTR_SSP_TABLE": 0x682C,
    # B.4.4 natural-width host state
    "HOST_CR0": 0x6C00, "HOST_CR3": 0x6C02, "HOST_CR4": 0x6C04, "HOST_FS_BASE": 0x6C06,
    "HOST_GS_BASE": 0x6C08, "HOST_TR_BASE": 0x6C0A, "HOST_GDTR_BASE": 0x6C0C,
    "HOST_IDTR_BASE": 0x6C0E, "HOST_IA32_SYSENTER_ESP": 0x6C10,
    "HOST_IA32_SYSENTER_EIP": 0x6C12, "HOST_RSP": 0x6C14, "HOST_RIP": 0x6C16,
    "HOST_S_CET": 0x6C18, "HOST_SSP": 0x6C1A, "HOST_INTR_SSP_TABLE": 0x6C1C,
}

# Table 25-21: width in bits 14:13, type in bits 11:10; Appendix B groups by (width, type).
WIDTH_BITS = {0: 16, 1: 64, 2: 32, 3: "natural"}
TYPE_BITS = {0: "control", 1: "exit-info", 2: "guest", 3: "host"}
SECTION = {16: "B.1", 64: "B.2", 32: "B.3", "natural": "B.4"}
SUBSECTION = {"control": 1, "exit-info": 2, "guest": 3, "host": 4}

FULL = [f for f in fields.FIELDS if not f.high]


@pytest.mark.parametrize("name,encoding", sorted(EXPECTED.items()))
def test_encoding_matches_appendix_b(name, encoding):
    """Appendix B, Tables B-1 to B-14: each field's encoding is the manual's number."""
    assert vmx.Field[name] == encoding
    assert fields.field_info(encoding).name == name


def test_table_has_exactly_the_manual_fields():
    """Appendix B: the table holds every field the manual lists and no other."""
    assert {f.name for f in FULL} == set(EXPECTED)


@pytest.mark.parametrize("info", fields.FIELDS, ids=lambda f: f.name)
def test_parts_decode_from_encoding(info):
    """Table 25-21: bit 0 access type, bits 9:1 index, bits 11:10 type, bits 14:13 width;
    bit 12 and bits 31:15 are 0. The SDM section follows from the width and type."""
    enc = info.encoding
    assert enc & 1 == int(info.high)
    assert (enc >> 1) & 0x1FF == info.index
    assert TYPE_BITS[(enc >> 10) & 3] == info.kind
    assert WIDTH_BITS[(enc >> 13) & 3] == info.width
    assert enc & ~0x6FFF == 0
    assert info.read_only == (info.kind == "exit-info")
    if info.width == 16:      # B.1 has no read-only group: guest is B.1.2, host B.1.3
        assert info.sdm == "B.1." + {"control": "1", "guest": "2", "host": "3"}[info.kind]
    else:
        assert info.sdm == f"{SECTION[info.width]}.{SUBSECTION[info.kind]}"


@pytest.mark.parametrize("info", [f for f in FULL if f.width == 64], ids=lambda f: f.name)
def test_high_is_full_plus_one(info):
    """25.11.2: the high 32 bits of a 64-bit field use the full encoding with access type 1."""
    high = vmx.Field[info.name + "_HIGH"]
    assert high == info.encoding + 1
    assert fields.field_info(high).high and fields.field_info(high).width == 64


def test_only_64_bit_fields_have_high_halves():
    """25.11.2: access type 1 is allowed only for 64-bit fields."""
    assert all(f.width == 64 for f in fields.FIELDS if f.high)
    assert len(fields.FIELDS) == len(FULL) + sum(1 for f in FULL if f.width == 64)


def test_no_duplicates():
    """Appendix B: no two fields share an encoding or a name."""
    encodings = [f.encoding for f in fields.FIELDS]
    names = [f.name for f in fields.FIELDS]
    assert len(set(encodings)) == len(encodings)
    assert len(set(names)) == len(names)
    assert len(vmx.Field) == len(fields.FIELDS)      # no enum aliases


def test_max_index():
    """A.9: IA32_VMX_VMCS_ENUM bits 9:1 give the highest index of any field."""
    assert fields.max_index() == max((e >> 1) & 0x1FF for e in EXPECTED.values())
    assert fields.max_index(width=16, kind="guest") == 10
    assert fields.max_index(width="natural", kind="host") == 14


def test_field_info_lookup():
    """25.11.2: an encoding no field uses is not a field (VMREAD/VMWRITE fail with error 12)."""
    assert fields.field_info(vmx.Field.GUEST_RIP).width == "natural"
    assert vmx.field_info(0x681E) is fields.field_info(vmx.Field.GUEST_RIP)
    for bad in (0x0001, 0x681F, 0x6C1E, 0x1000 | 0x6800):
        assert not fields.is_field(bad)
        with pytest.raises(KeyError):
            fields.field_info(bad)


def test_encode_decode_roundtrip():
    """Table 25-21: encode and decode are inverses."""
    for f in fields.FIELDS:
        assert fields.decode(f.encoding) == (f.high, f.index, f.kind, f.width)
        assert fields.encode(f.index, f.kind, f.width, f.high) == f.encoding
    with pytest.raises(ValueError):
        fields.encode(0, "guest", 32, high=True)
