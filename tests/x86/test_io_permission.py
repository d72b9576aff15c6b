"""SDM Vol. 1 19.5 "Protected-Mode I/O" (19.5.1 I/O Privilege Level, 19.5.2 I/O Permission Bit Map)
and 19.3 (unclaimed ports).

19.5.2: "If CPL > IOPL ... the processor checks the I/O permission bit map ... each bit corresponds
to an I/O port byte address ... If any of the bits corresponding to the accessed ports is set, a
general-protection exception (#GP) is signaled. ... Any attempt to access an I/O port whose bit lies
beyond the limit of the TSS segment causes a #GP." On a PC, a read of a port no device claims
returns all ones.
"""
import pytest

from x86_guest import paging_machine, install_gdt_tss, long_machine, run


class Port:
    def __init__(self):
        self.writes = []

    def io_read(self, port, size):
        return 0x42 + port - 0x100

    def io_write(self, port, size, value):
        self.writes.append((port, size, value))


def user(src, iomap=None, iopl=0):
    m, pt = paging_machine("4level", "r", user=True, src=src + "\nud2")
    install_gdt_tss(m, 64, iomap=iomap)
    m.cpu.rflags = (m.cpu.rflags & ~0x3000) | (iopl << 12)
    dev = Port()
    m.attach_io(0x100, dev, count=0x20)
    return m, dev


def bitmap(*blocked, length=0x40):
    b = bytearray(length)
    for p in blocked:
        b[p >> 3] |= 1 << (p & 7)
    return bytes(b) + b"\xff"


@pytest.mark.parametrize("src,blocked,fault", [
    ("in al, dx", [], False),
    ("in al, dx", [0x108], True),
    ("in eax, dx", [0x10B], True),           # the 4th byte of a doubleword access
    ("in eax, dx", [0x10C], False),
    ("in ax, dx", [0x107], False),
    ("out dx, al", [0x108], True),
    ("out dx, eax", [0x109], True),
])
def test_bitmap(src, blocked, fault):
    m, dev = user(src, iomap=bitmap(*blocked))
    m.cpu.rdx = 0x108
    r = run(m)
    if fault:
        assert (r["vector"], r["error"]) == (13, 0)
        assert dev.writes == []
    else:
        assert r["vector"] == 6


def test_port_beyond_bitmap_limit():
    m, dev = user("in al, dx", iomap=bitmap(length=2))   # covers ports 0-15 only
    m.cpu.rdx = 0x108
    r = run(m)
    assert (r["vector"], r["error"]) == (13, 0)


def test_no_bitmap_at_all():
    """I/O map base beyond the TSS limit: every port is denied at CPL > IOPL."""
    m, dev = user("in al, dx", iomap=None)
    m.cpu.rdx = 0x108
    assert run(m)["vector"] == 13


def test_iopl3_skips_bitmap():
    m, dev = user("in al, dx", iomap=None, iopl=3)
    m.cpu.rdx = 0x108
    r = run(m)
    assert r["vector"] == 6 and m.cpu.rax & 0xFF == 0x4A


@pytest.mark.parametrize("src,mask,expected", [
    ("in al, dx", 0xFF, 0xFF), ("in ax, dx", 0xFFFF, 0xFFFF), ("in eax, dx", 0xFFFFFFFF, 0xFFFFFFFF),
])
def test_unclaimed_port_reads_all_ones(src, mask, expected):
    m = long_machine(src + "\nud2")
    m.cpu.rax = 0x1234567812345678
    m.cpu.rdx = 0x2345
    run(m)
    assert m.cpu.rax & mask == expected
    if mask != 0xFFFFFFFF:
        assert m.cpu.rax >> 32 == 0x12345678 and (m.cpu.rax & ~mask & 0xFFFFFFFF) == 0x12345678 & ~mask
    else:
        assert m.cpu.rax >> 32 == 0                   # 32-bit results zero-extend


def test_exit_port():
    m = long_machine("mov dx, 0xf4\nmov eax, 0x2a\nout dx, eax\nud2")
    stop = m.cpu.run(max_instructions=50)
    assert (stop.reason, stop.status) == ("exit", 0x2A)


def test_outs_element_size_is_the_memory_operand():
    """OUTSB/OUTSW/OUTSD write 1, 2 and 4 bytes (SDM Vol. 2B OUTS)."""
    import x86
    from x86.asm import assemble

    class Recorder:
        def __init__(self):
            self.writes = []

        def io_read(self, port, size):
            return 0

        def io_write(self, port, size, value):
            self.writes.append((size, value))

    m = x86.Machine(memory_size=1 << 24)
    dev = Recorder()
    m.attach_io(0x300, dev)
    m.memory.write(0x200000, bytes(range(1, 9)))
    m.load(assemble("mov dx, 0x300\nmov rsi, 0x200000\noutsb\noutsw\noutsd\nhlt", address=0x100000),
           address=0x100000)
    m.cpu.run()
    assert dev.writes == [(1, 0x01), (2, 0x0302), (4, 0x07060504)]
