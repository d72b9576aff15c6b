"""GuestView: the guest's registers from wherever they are, and a read-only page walk that agrees
with the processor's (x86's translate) and changes nothing (no accessed/dirty flags)."""
import pytest

from vmx import Field as F
from hvsim import scenario
from hvsim.guest import GuestView

PML4, PDPT, PD, PT = 0x400000, 0x401000, 0x402000, 0x403000


@pytest.fixture
def machine():
    m, _ = scenario.load("tour").build()
    w = m.memory.write_u64
    w(PML4, PDPT | 3)
    w(PML4 + 8 * 511, PDPT | 3)                      # the top of the address space, too
    w(PDPT, 0x40000000 | 0x83)                       # 1 GiB page at 0 -> 1 GiB
    w(PDPT + 8, PD | 3)
    w(PD, 0x600000 | 0x83)                           # 2 MiB page
    w(PD + 8, PT | 7)
    w(PT + 8 * 5, 0x7000 | 3)                        # 4 KiB page
    m.cpu.vmwrite(F.GUEST_CR3, PML4)
    return m


LINEAR = [0x1234, 0x40000000 + 0x123456, 0x40200000 + 0x5678, 0x40205ABC, 0x40206000,
          0x80000000, 0xFFFFFF8000000123, 0x0000800000000000]


@pytest.mark.parametrize("la", LINEAR)
def test_the_walk_agrees_with_the_processor(machine, la):
    g = GuestView(machine)
    walk = g.walk(la)
    before = machine.memory.read(PML4, 0x4000)
    machine.cpu.cr3 = PML4                           # the processor's own walk, same tables
    pa = machine.cpu.translate(la)
    expected = pa if isinstance(pa, int) else None
    assert walk.physical == expected
    assert walk.mode == "4-level paging"
    if la == 0x0000800000000000:
        assert walk.fault == "not canonical"
    machine.cpu.cr3 = 0x1000
    machine.memory.write(PML4, before)               # translate may set A bits: undo them
    assert GuestView(machine).walk(la) == walk
    assert machine.memory.read(PML4, 0x4000) == before


def test_walk_levels_and_flags(machine):
    w = GuestView(machine).walk(0x40205ABC)
    assert [(lv.name, lv.entry_address) for lv in w.levels] == [
        ("PML4E", PML4), ("PDPTE", PDPT + 8), ("PDE", PD + 8), ("PTE", PT + 8 * 5)]
    assert [lv.flags for lv in w.levels] == ["P W", "P W", "P W U", "P W"]
    assert GuestView(machine).walk(0x40206000).fault == "PTE not present"


def test_pae_and_32_bit_paging(machine):
    m, g = machine, GuestView(machine)
    m.memory.write_u64(0x500000, 0x501000 | 1)                      # PDPTE 0
    m.memory.write_u64(0x501000 + 8 * 1, 0x502000 | 3)              # PDE 1 -> a page table
    m.memory.write_u64(0x502000 + 8 * 2, 0x9000 | 3)                # PTE 2
    m.memory.write_u64(0x501000 + 8 * 3, 0xA00000 | 0x83)           # PDE 3: a 2 MiB page
    m.cpu.vmwrite(F.GUEST_IA32_EFER, 0)
    m.cpu.vmwrite(F.GUEST_CR3, 0x500000)
    assert g.walk(0x202123).physical == 0x9123 and g.walk(0x202123).mode == "PAE paging"
    assert g.walk(0x600042).physical == 0xA00042
    m.cpu.vmwrite(F.GUEST_CR4, 0x2010)                               # PSE, no PAE
    m.memory.write_u32(0x500000 + 4 * 1, 0x503000 | 3)               # PDE 1 -> PT
    m.memory.write_u32(0x503000 + 4 * 2, 0xB000 | 3)
    m.memory.write_u32(0x500000 + 4 * 2, 0xC00000 | 0x83)            # PDE 2: 4 MiB page
    assert g.walk(0x402345).physical == 0xB345 and g.walk(0x402345).mode == "32-bit paging"
    assert g.walk(0x812345).physical == 0xC12345
    m.cpu.vmwrite(F.GUEST_CR0, 0x31)
    assert g.walk(0x812345).physical == 0x812345 and g.walk(0).mode == "no paging"


def test_registers_come_from_the_vmcs_between_exits_and_from_the_processor_in_the_guest(machine):
    m = machine
    m.cpu.vmwrite(F.GUEST_CR3, 0x1000)
    g = GuestView(m)
    m.cpu.rbx = 0x1234
    assert not g.live
    assert (g.register("rip"), g.register("rsp"), g.register("rbx")) == (0x200000, 0x180000, 0x1234)
    assert g.segment("cs") == (0x18, 0, 0xFFFFFFFF, 0xA09B)
    seen = {}

    class Monitor:
        def budget(self, cpu):
            return 2

        def pause(self, cpu):                       # after LEA and CALL: at puts, RSP pushed
            if not seen:
                seen.update(live=g.live, rip=g.register("rip"), cpu_rip=cpu.rip, rsp=g.register("rsp"))
    m.cpu.vmx.monitor = Monitor()
    m.cpu.vmlaunch()
    assert seen == {"live": True, "rip": 0x2000DC, "cpu_rip": 0x2000DC, "rsp": 0x17FFF8}
    assert not g.live and g.register("rip") == 0x2000E9      # the first exit: IN from the UART
