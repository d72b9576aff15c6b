"""SDM Vol. 3A 4.3 "32-Bit Paging", 4.4 "PAE Paging", 4.5 "4-Level Paging and 5-Level Paging",
4.8 "Accessed and Dirty Flags".

4.5.4: "a PDPTE with PS = 1 maps a 1-GByte page; a PDE with PS = 1 maps a 2-MByte page; otherwise
a PTE maps a 4-KByte page." 4.3: "If CR4.PSE = 1 and the PDE's PS flag is 1, the PDE maps a
4-MByte page." 4.8: "Whenever the processor uses a paging-structure entry as part of linear-address
translation, it sets the accessed flag in that entry (if it is not already set). Whenever there is
a write to a linear address, the processor sets the dirty flag (if it is not already set) in the
paging-structure entry that identifies the final physical address."
"""
import pytest

from x86_guest import A, D, P, RW, TARGETS, paging_machine, run

# (mode, page size, physical base of the page)
SIZES = [
    ("32bit", 4096, 0x300000), ("32bit", 4 << 20, 0x800000),
    ("pae", 4096, 0x300000), ("pae", 2 << 20, 0x800000),
    ("4level", 4096, 0x300000), ("4level", 2 << 20, 0x800000), ("4level", 1 << 30, 0),
    ("5level", 4096, 0x300000), ("5level", 2 << 20, 0x800000), ("5level", 1 << 30, 0),
]
BITS = {"32bit": 32, "pae": 32, "4level": 64, "5level": 64}
LEAF_LEVEL = {4096: 1, 2 << 20: 2, 4 << 20: 2, 1 << 30: 3}


@pytest.mark.parametrize("mode,size,base", SIZES)
@pytest.mark.parametrize("offset", [0, 0x123, 0x1FF8])
def test_translation(mode, size, base, offset):
    """The page frame comes from the leaf; the low bits of the linear address are the offset."""
    m, pt = paging_machine(mode, "r")
    va = TARGETS[mode] + offset
    off_in_page = va & (size - 1)
    pt.map(va & ~(size - 1), base, P | RW, size=size)
    magic = 0x1122334455667788 if BITS[mode] == 64 else 0x11223344
    m.memory.write_u64(base + off_in_page, magic)
    m.cpu.rdi = va
    r = run(m, BITS[mode])
    assert r["vector"] == 6
    assert m.cpu.rax == magic
    # and the Python-side translation agrees
    assert m.cpu.translate(va) == base + off_in_page


@pytest.mark.parametrize("mode,size,base", SIZES)
@pytest.mark.parametrize("access", ["r", "w"])
def test_accessed_dirty(mode, size, base, access):
    """4.8: A is set in every entry used; D only in the leaf and only for writes."""
    m, pt = paging_machine(mode, access)
    va = TARGETS[mode]
    pt.map(va, base, P | RW, size=size)
    level = LEAF_LEVEL[size]
    r = run(m, BITS[mode])
    assert r["vector"] == 6
    leaf = pt.leaf(va, level)
    assert leaf & A
    assert bool(leaf & D) == (access == "w")
    top = 3 if mode == "pae" else {"32bit": 2, "4level": 4, "5level": 5}[mode]
    for lvl in range(level + 1, top + (0 if mode == "pae" else 1)):
        e = pt.leaf(va, lvl)
        assert e & A, f"A not set at level {lvl}"
        assert not e & D, f"D set in a non-leaf entry at level {lvl}"


def test_no_ad_update_on_fault():
    """4.8 / 4.7: a write that faults does not set D in the leaf (the access did not happen)."""
    m, pt = paging_machine("4level", "w")
    va = TARGETS["4level"]
    pt.map(va, 0x300000, P)       # read-only, CR0.WP = 1
    r = run(m)
    assert (r["vector"], r["error"]) == (14, 3)
    assert not pt.leaf(va) & D


def test_pae_pdptes_loaded_with_cr3():
    """4.4.1: the four PDPTEs are loaded from memory on MOV to CR3; later changes to the PDPT in
    memory do not take effect until the next load."""
    m, pt = paging_machine("pae", "r")
    va = TARGETS["pae"]
    pt.map(va, 0x300000, P | RW)
    m.memory.write_u32(0x300000, 0xABCD)
    pdpte_addr = pt.entry_addr(va, 3)
    m.memory.write_u64(pdpte_addr, 0)      # not seen: the PDPTE register still holds it
    r = run(m, 32)
    assert r["vector"] == 6 and m.cpu.rax & 0xFFFFFFFF == 0xABCD


def test_pae_reserved_pdpte_gp_on_cr3_load():
    """4.4.1: "If any of the PDPTEs sets both the P flag and any reserved bit, the MOV to CR3
    instruction causes a general-protection exception (#GP(0))"."""
    import x86
    m, pt = paging_machine("pae", "r")
    pdpte_addr = pt.entry_addr(TARGETS["pae"], 3)
    m.memory.write_u64(pdpte_addr, m.memory.read_u64(pdpte_addr) | 2)    # bit 1 reserved in PDPTEs
    with pytest.raises(x86.GP):
        m.cpu.cr3 = pt.root
