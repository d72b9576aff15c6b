"""SDM Vol. 3C 28.2.1, Table 28-7 "Exit Qualification for EPT Violations".

"0 Set if the access causing the EPT violation was a data read. 1 ... a data write.
2 ... an instruction fetch. 3 The logical-AND of bit 0 in the EPT paging-structure entries used
to translate the guest-physical address (readable). 4 ... bit 1 (writable). 5 ... bit 2
(executable; supervisor-mode executable with mode-based execute control). 6 ... bit 10
(user-mode executable, with mode-based execute control). 7 Set if the guest linear-address field
is valid. 8 If bit 7 is 1: set if the access was to the guest-physical translation of a linear
address, clear if it was to a paging-structure entry. 9-11 (advanced VM-exit information):
user-mode linear address, read/write linear address, execute-disable linear address.
12 NMI unblocking due to IRET. 13 shadow-stack access. 14 supervisor shadow-stack page.
15 related to guest-paging verification. 16 asynchronous to instruction execution."
"""
import pytest

from vmx import ExitReason
from vmx.qualification import EptViolation, for_reason

BITS = ["read", "write", "fetch", "readable", "writable", "executable", "user_executable",
        "linear_address_valid", "translation", "user_mode_linear", "rw_linear", "nx_linear",
        "nmi_unblocking", "shadow_stack", "supervisor_shadow_stack",
        "guest_paging_verification", "asynchronous"]


@pytest.mark.parametrize("bit,name", list(enumerate(BITS)))
def test_each_bit_has_its_name(bit, name):
    q = EptViolation(1 << bit)
    assert q == 1 << bit
    assert getattr(q, name) is True
    assert [n for n in BITS if getattr(q, n)] == [name]


def test_fields_follow_the_table_order():
    assert list(EptViolation(0).fields()) == BITS


def test_write_to_read_only_page():
    """A guest write through a linear address to a page mapped read-only in EPT:
    bits 1 (write), 3 (readable), 7 (linear valid), 8 (translation) -> 0x18A."""
    q = EptViolation(0x18A)
    assert q.write and q.readable and not q.writable and not q.executable
    assert q.linear_address_valid and q.translation
    assert q.describe() == (
        "EPT violation: write to a guest-physical address whose translation is readable, "
        "not writable, not executable; guest linear address valid, the access was to its "
        "translation")


def test_fetch_from_not_present_gpa():
    """An instruction fetch from an unmapped GPA: bit 2 only among 2:0, 5:3 all clear."""
    q = EptViolation(0x184)
    assert q.fetch and not (q.readable or q.writable or q.executable)
    assert q.describe().startswith("EPT violation: instruction fetch to a guest-physical "
                                   "address whose translation is not readable")


def test_guest_paging_structure_access():
    """Bit 7 set, bit 8 clear: the access was to a guest paging-structure entry."""
    q = EptViolation(0x081)
    assert q.linear_address_valid and not q.translation
    assert "paging-structure entry" in q.describe()


def test_pdpte_load_has_no_linear_address():
    """Bit 7 is clear only for loads of the PDPTEs by MOV to CR."""
    q = EptViolation(0x001)
    assert not q.linear_address_valid
    assert "linear" not in q.describe()


def test_for_reason():
    """EPT violations (exit reason 48) use Table 28-7."""
    assert isinstance(for_reason(ExitReason.EPT_VIOLATION, 0x18A), EptViolation)


def test_reserved_bits():
    q = EptViolation(0xFFFF_FFFF_FFFF_FFFF)
    assert q.reserved_bits == 0xFFFF_FFFF_FFFE_0000
    assert q.describe()
