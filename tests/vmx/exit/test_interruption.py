"""SDM Vol. 3C 25.8.3 "VM-Entry Controls for Event Injection" and 28.2.2/28.2.4 (VM-exit
interruption information, IDT-vectoring information): one format.

"7:0 Vector of interrupt or exception. 10:8 Interruption type: 0 external interrupt,
1 reserved, 2 NMI, 3 hardware exception, 4 software interrupt, 5 privileged software exception,
6 software exception, 7 other event. 11 Deliver error code / error code valid. 12 NMI unblocking
due to IRET (VM-exit interruption information). 30:13 Reserved. 31 Valid."
"""
import pytest
from hypothesis import given, strategies as st

from vmx import interruption
from vmx.interruption import InterruptionInfo, InterruptionType, make


@pytest.mark.parametrize("name,number", [
    ("EXTERNAL_INTERRUPT", 0), ("RESERVED", 1), ("NMI", 2), ("HARD_EXCEPTION", 3),
    ("SOFT_INTERRUPT", 4), ("PRIV_SW_EXCEPTION", 5), ("SOFT_EXCEPTION", 6), ("OTHER_EVENT", 7)])
def test_interruption_types(name, number):
    assert InterruptionType[name] == number


# (event, raw value typed from the layout, vector, type, error code valid)
ROWS = [
    ("#PF with error code", 0x8000_0B0E, 14, InterruptionType.HARD_EXCEPTION, True),
    ("#GP with error code", 0x8000_0B0D, 13, InterruptionType.HARD_EXCEPTION, True),
    ("#UD", 0x8000_0306, 6, InterruptionType.HARD_EXCEPTION, False),
    ("NMI", 0x8000_0202, 2, InterruptionType.NMI, False),
    ("external interrupt 0x20", 0x8000_0020, 0x20, InterruptionType.EXTERNAL_INTERRUPT, False),
    ("INT3 (#BP)", 0x8000_0603, 3, InterruptionType.SOFT_EXCEPTION, False),
    ("INT1 (ICEBP)", 0x8000_0501, 1, InterruptionType.PRIV_SW_EXCEPTION, False),
    ("INT 0x80", 0x8000_0480, 0x80, InterruptionType.SOFT_INTERRUPT, False),
    ("pending MTF", 0x8000_0700, 0, InterruptionType.OTHER_EVENT, False),
]


@pytest.mark.parametrize("event,raw,vector,kind,ec", ROWS, ids=[r[0] for r in ROWS])
def test_decode_and_make(event, raw, vector, kind, ec):
    info = InterruptionInfo(raw)
    assert (info.vector, info.type, info.error_code_valid, info.valid) == (vector, kind, ec, True)
    assert make(vector, kind, error_code_valid=ec) == raw
    assert info.describe()


def test_describe():
    assert InterruptionInfo(0x8000_0B0E).describe() == (
        "hardware exception #PF (vector 14) with an error code")
    assert InterruptionInfo(0x8000_0700).describe() == "other event: pending MTF VM exit"
    assert InterruptionInfo(0).describe() == "no event (valid bit clear)"


def test_nmi_unblocking_bit_12():
    """28.2.3: bit 12 is set when the exit came from an IRET that unblocked NMIs."""
    info = make(14, InterruptionType.HARD_EXCEPTION, True, nmi_unblocking=True)
    assert info == 0x8000_1B0E and info.nmi_unblocking
    assert "NMI unblocking" in info.describe()


def test_linux_masks():
    """Linux asm/vmx.h INTR_INFO_* masks."""
    assert interruption.INTR_INFO_VECTOR_MASK == 0xFF
    assert interruption.INTR_INFO_INTR_TYPE_MASK == 0x700
    assert interruption.INTR_INFO_DELIVER_CODE_MASK == 0x800
    assert interruption.INTR_INFO_UNBLOCK_NMI == 0x1000
    assert interruption.INTR_INFO_VALID_MASK == 0x8000_0000


def test_invalid_field():
    info = make(0, 0, valid=False)
    assert info == 0 and not info.valid


@given(st.integers(0, 0xFFFF_FFFF))
def test_any_value_decodes(raw):
    info = InterruptionInfo(raw)
    assert info == raw and isinstance(info.type, InterruptionType)
    assert info.describe()
    assert info.reserved_bits == raw & 0x7FFF_E000
