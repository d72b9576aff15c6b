"""SDM Vol. 3A 6.15, "Interrupt 8—Double Fault Exception (#DF)", Tables 6-4 and 6-5.

Table 6-4 classes: benign; contributory (#DE, #TS, #NP, #SS, #GP); page faults (#PF).
Table 6-5: contributory then contributory -> #DF; page fault then contributory or page fault ->
#DF; benign then anything, contributory then page fault -> handled serially. "If another
contributory or page fault exception occurs while attempting to call the double-fault handler,
the processor enters shutdown mode" (a triple fault). The #DF error code is always 0 and its
saved RIP is undefined (this model reports the original faulting instruction).
"""
import pytest

from x86_guest import (CODE, K_CODE64, KSTACK, STUBS, gate, install_gdt_tss, paging_machine, run,
                       write_gate)

FIRST = {
    "#DE": ("xor ecx, ecx\ndiv ecx", 0),
    "#UD": ("ud2", 6),
    "#PF": ("mov rax, [0x7fff0000000]", 14),       # not mapped by the test's page tables
    "#GP": ("mov rax, [0x8000000000000000]", 13),   # non-canonical
    "#BP": ("int3", 3),
}

# (first, how its delivery fails, the event the handler finally sees or "shutdown")
TABLE_6_5 = [
    ("#DE", "gate not present", 8),      # contributory + #NP (contributory)
    ("#GP", "gate not present", 8),
    ("#PF", "gate not present", 8),      # page fault + contributory
    ("#UD", "gate not present", 11),     # benign: #NP handled serially
    ("#BP", "gate not present", 11),
    ("#DE", "stack not mapped", 14),     # contributory + page fault: serially
    ("#GP", "stack not mapped", 14),
    ("#PF", "stack not mapped", 8),      # page fault + page fault
    ("#UD", "stack not mapped", 14),
]


def machine(first, failure):
    """CPL3 code raises `first`; #DF (and #PF, unless it is the first) use IST1 (a good stack),
    the others TSS.RSP0."""
    src, vec = FIRST[first]
    m, pt = paging_machine("4level", "r", user=True, src=src + "\nud2")
    rsp0 = 0x1FF000 if failure == "stack not mapped" else KSTACK
    if failure == "stack not mapped":
        pt.set_leaf(0x1FE000, 0)              # RSP0 - 8 lies in an unmapped page
    install_gdt_tss(m, 64, rsp0=rsp0, ist={1: KSTACK - 0x1000})
    for v in (8, 14):
        write_gate(m, 64, v, gate(64, STUBS + 32 * v, ist=1))
    if vec == 14:
        write_gate(m, 64, 14, gate(64, STUBS + 32 * 14))     # the first #PF uses RSP0
    if failure == "gate not present":
        write_gate(m, 64, vec, gate(64, STUBS + 32 * vec, present=0))
    if vec == 3:
        write_gate(m, 64, 3, gate(64, STUBS + 32 * 3, dpl=3, present=failure != "gate not present"))
    return m, vec


@pytest.mark.parametrize("first,failure,seen", TABLE_6_5)
def test_table_6_5(first, failure, seen):
    m, vec = machine(first, failure)
    r = run(m)
    assert r["vector"] == seen, r
    if seen == 8:
        assert r["error"] == 0
    if seen == 11:
        ext = 0 if first == "#BP" else 1
        assert r["error"] == vec * 8 + 2 + ext
    if seen == 14 and failure == "stack not mapped":
        assert r["cr2"] == 0x1FF000 - 8 and r["error"] == 2 | 1 * 0   # supervisor write, not present


def test_triple_fault_shutdown():
    """A contributory fault while calling the #DF handler: shutdown."""
    m, vec = machine("#GP", "gate not present")
    write_gate(m, 64, 8, gate(64, STUBS + 32 * 8, present=0))
    stop = m.cpu.run(max_instructions=100)
    assert stop.reason == "shutdown"


def test_triple_fault_with_empty_idt():
    """The loader's state: IDT limit 0, so any exception ends in shutdown."""
    import x86
    from x86.asm import assemble
    m = x86.Machine(memory_size=16 << 20)
    m.load(assemble("mov eax, 1\nud2"), mode="long")
    stop = m.cpu.run(max_instructions=100)
    assert stop.reason == "shutdown"


def test_df_gate_ok_after_df_from_cpl0():
    """#DF from CPL0 with a good #DF gate is delivered with error code 0."""
    m, vec = machine("#DE", "gate not present")
    r = run(m)
    assert (r["vector"], r["error"]) == (8, 0)
