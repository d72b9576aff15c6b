"""The core's second-level translation hook (x86/_defs.pxd `Cpu.slat`), with a translation
written in Python (`x86.intercept.set_slat`) and a small intercept hook: no vmx, no ept.

What the processor does with a guest-physical access that second-level translation refuses
follows the SDM's account of EPT-induced VM exits (Vol. 3C 29.3.3: "EPT violations occur only due
to an attempt to access memory with a guest-physical address"; 28.2.4 for exits during event
delivery): the instruction does not complete (RIP at it), and when the access belonged to the
delivery of an event, the exit reports that event (IDT-vectoring information) and the
double-fault rules do not apply, because no exception happened.
"""
import pytest

import x86
from x86.intercept import (ACC_NOLA, ACC_PT, ACC_R, ACC_W, ACC_X, DK_EXCEPTION, DK_EXTERNAL,
                           DK_SOFT_INT, EV_SLAT_FAULT, SLAT_LA_EXEC, SLAT_LA_USER, SLAT_LA_WRITE,
                           SLAT_R, SLAT_W, SLAT_X, set_slat)
from x86_guest import CODE, IDT, KSTACK, TARGET, long_machine, paging_machine, rec

DATA = 0x300000


class Slat:
    """Identity translation that refuses the pages in `refuse` (for the access kinds in
    `kinds`) and records every call."""

    def __init__(self, refuse=(), kinds=(ACC_R, ACC_W, ACC_X), pt_kinds=None, rights=None):
        self.refuse = {p >> 12 for p in refuse}
        self.kinds = kinds
        self.pt_kinds = pt_kinds
        self.rights = rights or {}
        self.calls = []

    def translate(self, gpa, acc, la, lflags):
        self.calls.append((gpa, acc, la, lflags))
        kinds = self.pt_kinds if (acc & ACC_PT and self.pt_kinds is not None) else self.kinds
        if gpa >> 12 in self.refuse and (acc & 3) in kinds:
            return None
        if gpa >> 12 in self.rights:
            return gpa, self.rights[gpa >> 12]
        return gpa


class Hook:
    """Takes EV_SLAT_FAULT (when `take`), recording what the processor showed it."""

    def __init__(self, cpu, take=True):
        self.cpu, self.take, self.seen = cpu, take, []

    def intercept(self, event, a, b):
        if event == EV_SLAT_FAULT:
            self.seen.append(dict(gpa=a, code=b, rip=self.cpu.rip, delivering=self.cpu.delivering,
                                  rsp=self.cpu.rsp))
            return self.take
        return False


def machine(src, refuse=(), **kw):
    m = long_machine(src)
    slat, hook = Slat(refuse, **kw), Hook(m.cpu)
    set_slat(m.cpu, slat)
    m.cpu.set_hook(hook)
    return m, slat, hook


def test_data_access_aborts_instruction():
    """29.3.3: the access does not happen and the instruction does not complete: RIP stays at
    it, the destination is unchanged, and the hook gets the guest-physical address."""
    m, slat, hook = machine(f"mov rax, 0x1122334455667788\nmov [{DATA}], rax\nud2", refuse=[DATA])
    m.memory.write_u64(DATA, 7)
    stop = m.cpu.run(max_instructions=10)
    assert stop.reason == "vmexit"
    assert hook.seen == [dict(gpa=DATA, code=1, rip=CODE + 10, delivering=None, rsp=0x80000)]
    assert m.cpu.rip == CODE + 10 and m.memory.read_u64(DATA) == 7
    assert slat.calls[-1] == (DATA, ACC_W, DATA, SLAT_LA_WRITE | SLAT_LA_EXEC)


def test_push_leaves_rsp():
    """A refused stack write leaves RSP as it was (no architectural effect)."""
    m, slat, hook = machine("push rax\nud2", refuse=[KSTACK - 8])
    m.cpu.rsp = KSTACK
    m.cpu.run(max_instructions=5)
    assert hook.seen[0]["rip"] == CODE and m.cpu.rsp == KSTACK and hook.seen[0]["gpa"] == KSTACK - 8


def test_fetch_is_refused_at_the_target():
    """An instruction fetch from a refused page: RIP is the address fetched from."""
    m, slat, hook = machine(f"mov rax, {DATA}\njmp rax", refuse=[DATA])
    m.memory.write_u8(DATA, 0x90)
    m.cpu.run(max_instructions=5)
    assert hook.seen[0]["gpa"] == DATA and m.cpu.rip == DATA
    assert slat.calls[-1][1] == ACC_X


def test_no_hook_is_unsupported():
    """Not taken by a hook, a second-level fault ends the run as x86.Unsupported naming it."""
    m = long_machine(f"mov rax, [{DATA}]\nud2")
    set_slat(m.cpu, Slat([DATA]))
    with pytest.raises(x86.Unsupported, match="EV_SLAT_FAULT.*0x300000"):
        m.cpu.run(max_instructions=5)


def test_declining_hook_is_unsupported():
    """A hook that returns false for EV_SLAT_FAULT does not make the access succeed: the run ends
    as x86.Unsupported."""
    m, slat, hook = machine(f"mov rax, [{DATA}]\nud2", refuse=[DATA])
    hook.take = False
    with pytest.raises(x86.Unsupported, match="second-level translation fault"):
        m.cpu.run(max_instructions=5)
    assert len(hook.seen) == 1


def test_python_slat_error_propagates():
    """An exception raised by a Python second-level translation leaves run() as itself."""
    class Broken:
        def translate(self, gpa, acc, la, lflags):
            raise KeyError("boom")
    m = long_machine(f"mov rax, [{DATA}]\nud2")
    set_slat(m.cpu, Broken())
    with pytest.raises(KeyError):
        m.cpu.run(max_instructions=5)


def test_guest_paging_structure_access():
    """Reads of guest paging structures are guest-physical accesses (ACC_PT) with the linear
    address being translated; the first one refused stops the walk before any #PF check."""
    m, pt = paging_machine("4level", "r")
    pte = pt.entry_addr(1 << 40 | TARGET, 1)
    slat, hook = Slat([pte]), Hook(m.cpu)
    set_slat(m.cpu, slat)
    m.cpu.set_hook(hook)
    m.cpu.run(max_instructions=5)
    assert hook.seen[0]["gpa"] == pte
    assert slat.calls[-1] == (pte, ACC_R | ACC_PT, 1 << 40 | TARGET, None)
    assert rec(m)["vector"] == 0xEE          # no exception was delivered


def test_guest_accessed_flag_update():
    """Setting a guest accessed flag is a write to the paging-structure entry (ACC_W | ACC_PT)."""
    m, pt = paging_machine("4level", "r")
    pt.map(1 << 40 | TARGET, 0x300000)
    pte = pt.entry_addr(1 << 40 | TARGET, 1)
    slat, hook = Slat([pte], pt_kinds=(ACC_W,)), Hook(m.cpu)
    set_slat(m.cpu, slat)
    m.cpu.set_hook(hook)
    m.cpu.run(max_instructions=5)
    assert hook.seen[0]["gpa"] == pte
    assert slat.calls[-1][:2] == (pte, ACC_W | ACC_PT)
    assert not m.memory.read_u64(pte) & 0x20


def test_pdpte_load_has_no_linear_address():
    """PAE: MOV to CR3 loads the PDPTEs through second-level translation, as paging-structure
    reads without a linear address (ACC_NOLA); refused, CR3 is unchanged and RIP at the MOV."""
    m, pt = paging_machine("pae", "r", src="mov cr3, eax\nud2")
    old = m.cpu.cr3
    other = pt.alloc()
    m.cpu.rax = other
    slat, hook = Slat([other]), Hook(m.cpu)
    set_slat(m.cpu, slat)
    m.cpu.set_hook(hook)
    m.cpu.run(max_instructions=5)
    assert hook.seen[0]["gpa"] == other and hook.seen[0]["rip"] == CODE
    assert slat.calls[-1] == (other, ACC_R | ACC_PT | ACC_NOLA, None, None)
    assert m.cpu.cr3 == old


def test_linear_rights_reach_the_slat():
    """The final access carries the guest-paging rights of its linear address (user, writable,
    executable): what EPT's mode-based execute control and advanced exit information need."""
    m, pt = paging_machine("4level", "r", user=True)
    va = 1 << 40 | TARGET
    pt.map(va, 0x300000, flags=1 | 4 | (1 << 63))            # present, user, read-only, XD
    slat = Slat()
    set_slat(m.cpu, slat)
    m.cpu.run(max_instructions=2)
    final = [c for c in slat.calls if c[0] == 0x300000]
    assert final == [(0x300000, ACC_R, va, SLAT_LA_USER)]


def test_tlb_keeps_only_granted_rights():
    """The TLB caches a page with the rights second-level translation grants and no more: a page
    it grants only reads for asks again on every write (so a read-only EPT page never gets a
    writable TLB entry), while fully granted pages hit the TLB."""
    src = f"mov rax, [{DATA}]\nmov [{DATA}], rax\nmov [{DATA}], rax\nmov rbx, [{DATA}]\nud2"
    for rights, writes_asked in ((SLAT_R, 2), (SLAT_R | SLAT_W | SLAT_X, 1)):
        m, slat, hook = machine(src, rights={DATA >> 12: rights})
        m.cpu.run(max_instructions=4)
        kinds = [c[1] for c in slat.calls if c[0] == DATA]
        assert kinds == [ACC_R] + [ACC_W] * writes_asked


def test_fault_during_exception_delivery():
    """A refused IDT read while delivering #UD: the hook sees the event being delivered
    (`delivering`), RIP is the faulting instruction, and no #DF follows (it is not an
    exception); once the page is allowed, the #UD is delivered normally."""
    m, slat, hook = machine("ud2", refuse=[IDT])
    m.cpu.run(max_instructions=5)
    assert hook.seen == [dict(gpa=IDT + 16 * 6, code=1, rip=CODE, delivering=(6, DK_EXCEPTION, None, 0),
                              rsp=0x80000)]
    assert m.cpu.delivering is None and rec(m)["vector"] == 0xEE
    slat.refuse.clear()
    m.cpu.set_hook(None)
    assert m.cpu.run(max_instructions=100).reason == "hlt"
    assert rec(m)["vector"] == 6 and rec(m)["rip"] == CODE


def test_fault_during_software_interrupt():
    """INT n whose gate read is refused: RIP is the INT instruction; `delivering` names the
    software interrupt and its length (for the VMM's IDT-vectoring information)."""
    m, slat, hook = machine("nop\nint 0x80\nud2", refuse=[IDT + 16 * 0x80])
    m.cpu.run(max_instructions=5)
    assert hook.seen[0]["rip"] == CODE + 1
    assert hook.seen[0]["delivering"] == (0x80, DK_SOFT_INT, None, 2)


def test_fault_pushing_a_page_fault_frame():
    """#PF whose frame push is refused: the second-level fault is reported with the #PF (and
    its error code) as the event being delivered, instead of a #DF."""
    m, slat, hook = machine("mov rax, [0x7fff0000000]\nud2", refuse=[KSTACK - 8])
    m.cpu.rsp = KSTACK
    m.cpu.run(max_instructions=5)
    seen = hook.seen[0]
    assert seen["delivering"] == (14, DK_EXCEPTION, 0, 0) and seen["rip"] == CODE
    assert seen["gpa"] == KSTACK - 8 and m.cpu.rsp == KSTACK
    assert rec(m)["vector"] == 0xEE


def test_fault_delivering_external_interrupt():
    """An external interrupt whose delivery is refused restarts at the next instruction: RIP
    is where the interrupt arrived."""
    m, slat, hook = machine("sti\nnop\nnop\nud2", refuse=[IDT + 16 * 0x40])
    m.raise_interrupt(0x40)
    m.cpu.run(max_instructions=5)
    seen = hook.seen[0]
    assert seen["delivering"] == (0x40, DK_EXTERNAL, None, 0)
    assert seen["rip"] == CODE + 2         # after STI and the instruction its shadow covers


def test_slat_removed():
    """set_slat(cpu, None): guest-physical is host-physical again."""
    m, slat, hook = machine(f"mov rax, [{DATA}]\nud2", refuse=[DATA])
    set_slat(m.cpu, None)
    m.memory.write_u64(DATA, 5)
    m.cpu.run(max_instructions=1)
    assert m.cpu.rax == 5 and not hook.seen



def test_iret_that_unblocked_nmis():
    """An IRET that ends NMI blocking and then faults still ends it (SDM Vol. 3A 6.7.1); while
    the hook is asked about its second-level fault the core says the access belonged to such an
    IRET (what VMX reports as "NMI unblocking due to IRET"), and afterwards no longer."""
    m, slat, hook = machine("iretq", refuse=[KSTACK])
    m.cpu.rsp = KSTACK
    m.cpu.interruptibility = 8                      # NMIs blocked
    seen = []
    orig = hook.intercept

    def intercept(event, a, b):
        seen.append(m.cpu.get_sys("iret_nmi"))
        return orig(event, a, b)
    hook.intercept = intercept
    m.cpu.run(max_instructions=5)
    assert hook.seen[0]["gpa"] == KSTACK and hook.seen[0]["rip"] == CODE
    assert seen == [1] and m.cpu.get_sys("iret_nmi") == 0
    assert m.cpu.interruptibility & 8 == 0
