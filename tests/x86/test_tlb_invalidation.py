"""SDM Vol. 3A 4.10.4 "Invalidation of TLBs and Paging-Structure Caches".

4.10.4.1: "INVLPG m: invalidates any TLB entries for the page containing m ... If the paging
structures map the linear address using a page larger than 4 KBytes and there are multiple TLB
entries for that page, the instruction invalidates all of them." "MOV to CR3: invalidates all TLB
entries ... except those for global pages." "MOV to CR4 that changes CR4.PGE: invalidates all TLB
entries, including those for global pages."
4.10.4.3: software that modifies a paging-structure entry without invalidating may keep using
the old translation (this model keeps it, so the stale translation is observable).
"""
import pytest

from x86_guest import G, P, PS, RW, TARGETS, paging_machine, run

VA = TARGETS["4level"]
OLD, NEW = 0x300000, 0x301000

# the guest reads VA, rewrites the PTE (rsi = its address, rdx = the new value), reads again,
# applies `inval`, and reads a third time: rax, rbx, rcx hold the three values.
TEMPLATE = """
    mov rax, [rdi]
    mov [rsi], rdx
    mov rbx, [rdi]
    {inval}
    mov rcx, [rdi]
    ud2
"""


def machine(inval, *, glob=False, pge=False, size=4096, offset=0):
    m, pt = paging_machine("4level", "r", pge=pge)
    from x86.asm import assemble
    from x86_guest import CODE
    m.memory.write(CODE, assemble(TEMPLATE.format(inval=inval), address=CODE))
    pt.map(0x400000, 0x400000, P | RW, size=2 << 20)       # the page-table pool, so the guest can edit
    flags = P | RW | (G if glob else 0)
    level = 1 if size == 4096 else 2
    pt.map(VA, OLD if size == 4096 else 0x800000, flags, size=size)
    new_frame = NEW if size == 4096 else 0xA00000
    m.memory.write_u64(OLD if size == 4096 else 0x800000 + offset, 0x1111)
    m.memory.write_u64(new_frame + offset, 0x2222)
    m.cpu.rdi = VA + offset
    m.cpu.rsi = pt.entry_addr(VA, level)
    m.cpu.rdx = new_frame | flags | (PS if level == 2 else 0)
    return m


@pytest.mark.parametrize("inval,fresh", [
    ("nop", False),
    ("invlpg [rdi]", True),
    ("mov r8, cr3; mov cr3, r8", True),
    ("invlpg [rdi + 0x1000]", False),           # another page: this one stays cached
])
def test_stale_until_invalidated(inval, fresh):
    m = machine(inval)
    r = run(m)
    assert r["vector"] == 6
    assert m.cpu.rax == 0x1111
    assert m.cpu.rbx == 0x1111, "a changed PTE without invalidation: the TLB keeps the old one"
    assert m.cpu.rcx == (0x2222 if fresh else 0x1111)


@pytest.mark.parametrize("inval,fresh", [
    ("mov r8, cr3; mov cr3, r8", False),         # global translations survive MOV CR3
    ("invlpg [rdi]", True),                      # INVLPG removes global ones too
    ("mov r8, cr4; and r8, ~0x80; mov cr4, r8; or r8, 0x80; mov cr4, r8", True),   # toggling PGE
])
def test_global_pages(inval, fresh):
    m = machine(inval, glob=True, pge=True)
    r = run(m)
    assert r["vector"] == 6
    assert (m.cpu.rbx, m.cpu.rcx) == (0x1111, 0x2222 if fresh else 0x1111)


def test_global_bit_ignored_without_pge():
    """4.10.2.4: G is honoured only when CR4.PGE = 1."""
    m = machine("mov r8, cr3; mov cr3, r8", glob=True, pge=False)
    run(m)
    assert m.cpu.rcx == 0x2222


@pytest.mark.parametrize("offset", [0x1000, 0x1FF000])
def test_invlpg_large_page(offset):
    """4.10.4.1: INVLPG of any address within a 2-MByte page invalidates all TLB entries for that
    page, including those cached for other 4-KByte regions of it."""
    m = machine("invlpg [rdi - %d]" % offset, size=2 << 20, offset=offset)
    r = run(m)
    assert r["vector"] == 6
    assert (m.cpu.rax, m.cpu.rbx, m.cpu.rcx) == (0x1111, 0x1111, 0x2222)


def test_cr4_smep_change_flushes():
    """4.10.4.1: MOV to CR4 changing SMEP/SMAP/PGE/PAE/PSE invalidates all TLB entries."""
    m = machine("mov r8, cr4; or r8, 1 << 20; mov cr4, r8")
    run(m)
    assert m.cpu.rcx == 0x2222


FILL = """
    mov r9, 0x401000
    mov r10, {n}
2:  test r10, r10
    jz 3f
    mov r11, [r9]
    add r9, 0x1000
    dec r10
    jmp 2b
3:
"""


@pytest.mark.parametrize("others", [0, 62, 63, 64, 65, 300])
@pytest.mark.parametrize("glob", [False, True])
def test_mov_cr3_after_many_fills(others, glob):
    """4.10.4.1 "MOV to CR3 ... invalidates all TLB entries ... except those for global pages",
    however many entries were filled before (the flush visits only the filled entries while
    they are few, and scans the whole TLB beyond that): the changed PTE is seen after MOV CR3,
    unless its page is global (with CR4.PGE = 1), whose stale entry survives. (The filled
    pages start at TLB index 1: index 0 is the tested page's, which a fill would evict.)"""
    m = machine(FILL.format(n=others) + "mov r8, cr3; mov cr3, r8", glob=glob, pge=glob)
    r = run(m, n=10_000)
    assert r["vector"] == 6
    assert m.cpu.rbx == 0x1111
    assert m.cpu.rcx == (0x1111 if glob else 0x2222)
