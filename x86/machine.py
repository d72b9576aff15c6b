"""The Python face of the processor: `Machine`, `Cpu`, `Memory`, `Stop` (API.md)."""
from __future__ import annotations

import attrs

from x86 import _exec
from x86.cpuid import PERF_GLOBAL_CTRL_VALID, CpuidTable
from x86.devices import DEBUG_CONSOLE_PORT, EXIT_PORT, DebugConsole, ExitPort
from x86.errors import Fault, InstructionLimit, Unsupported

GPRS = ("rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
        "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15")
SEGMENTS = ("es", "cs", "ss", "ds", "fs", "gs", "ldtr", "tr")

# stop codes of the core (_defs.pxd, STOP_*)
_STOP_NAMES = {1: "hlt", 2: "shutdown", 3: "exit", 4: "max_instructions", 7: "vmexit", 8: "request"}

DEFAULT_INSTRUCTION_LIMIT = 1_000_000_000
"""A run/vmlaunch/vmresume that retires this many instructions without stopping raises
`x86.InstructionLimit` (about ten seconds of guest time at typical speeds)."""


@attrs.frozen
class Stop:
    """Why `run()` returned: "hlt" (HLT with nothing to wake it), "shutdown" (triple fault),
    "exit" (the exit port; `status` holds the value), "max_instructions", "request", "vmexit"."""
    reason: str
    status: int | None
    instructions: int
    rip: int


@attrs.frozen
class Segment:
    """A segment register with its hidden descriptor cache (attr in the VMCS access-rights format)."""
    selector: int
    base: int
    limit: int
    attr: int

    @property
    def unusable(self) -> bool:
        return bool(self.attr & 0x10000)


class Cpu(_exec.Core):
    """One logical processor: architectural state as properties, `run`, `step`, MSRs."""

    def __init__(self, memory_size: int = 256 << 20, machine=None, cpuid: CpuidTable | None = None):
        self.machine = machine
        self.cpuid_table = cpuid or CpuidTable()
        # IA32_DEBUGCTL (no branch tracing modelled), IA32_PERF_GLOBAL_CTRL (x86.cpuid: no counters)
        self.msr_file: dict[int, int] = {0x1D9: 0, 0x38F: 0}
        self.set_sys_raw("cr4_valid", self.cpuid_table.cr4_valid())
        self.set_sys_raw("efer_valid", self.cpuid_table.efer_valid())
        self.set_sys_raw("pat", 0x0007040600070406)
        self.reset()

    # --- reset (SDM Vol. 3A 10.1.1, Table 10-1) ----------------------------------------------
    def reset(self):
        for i in range(16):
            self.set_gpr(i, 0)
        self.set_gpr(2, self.cpuid_table.signature)        # EDX holds the signature at reset
        self.set_sys_raw("cr0", 0x60000010)
        for name in ("cr2", "cr3", "cr4", "cr8", "efer", "xcr0"):
            self.set_sys_raw(name, 0)
        self.set_sys_raw("xcr0", 1)
        self.set_sys_raw("dr6", 0xFFFF0FF0)
        self.set_sys_raw("dr7", 0x400)
        self.set_seg(1, 0xF000, 0xFFFF0000, 0xFFFF, 0x9B)
        for i in (0, 2, 3, 4, 5):
            self.set_seg(i, 0, 0, 0xFFFF, 0x93)
        self.set_seg(6, 0, 0, 0xFFFF, 0x82)
        self.set_seg(7, 0, 0, 0xFFFF, 0x8B)
        self.set_dtr(0, 0, 0xFFFF)
        self.set_dtr(1, 0, 0xFFFF)
        self.rflags = 2
        self.rip = 0xFFF0
        self.refresh_mode()

    # --- registers ---------------------------------------------------------------------------
    def segment(self, name: str) -> Segment:
        return Segment(*self.get_seg(SEGMENTS.index(name)))

    def set_segment(self, name: str, selector: int, base: int, limit: int, attr: int) -> None:
        self.set_seg(SEGMENTS.index(name), selector, base, limit, attr)

    @property
    def gdtr(self):
        return self.get_dtr(0)

    @gdtr.setter
    def gdtr(self, v):
        self.set_dtr(0, v[0], v[1])

    @property
    def idtr(self):
        return self.get_dtr(1)

    @idtr.setter
    def idtr(self, v):
        self.set_dtr(1, v[0], v[1])

    def _write_cr(self, n: int, value: int) -> None:
        fault = self.mov_to_cr(n, value)
        if fault is not None:
            raise Fault(fault[0], fault[1], f"MOV to CR{n} of {value:#x}")
        self.refresh_mode()

    cr0 = property(lambda s: s.get_sys("cr0"), lambda s, v: s._write_cr(0, v))
    cr2 = property(lambda s: s.get_sys("cr2"), lambda s, v: s._write_cr(2, v))
    cr3 = property(lambda s: s.get_sys("cr3"), lambda s, v: s._write_cr(3, v))
    cr4 = property(lambda s: s.get_sys("cr4"), lambda s, v: s._write_cr(4, v))
    cr8 = property(lambda s: s.get_sys("cr8"), lambda s, v: s._write_cr(8, v))
    efer = property(lambda s: s.get_sys("efer"), lambda s, v: s.wrmsr(0xC0000080, v))
    dr6 = property(lambda s: s.get_sys("dr6"))
    dr7 = property(lambda s: s.get_sys("dr7"))

    def rdmsr(self, index: int) -> int:
        r = super().rdmsr(int(index))
        if isinstance(r, tuple):
            raise Fault(r[0], r[1], f"RDMSR of {int(index):#x}")
        return r

    def wrmsr(self, index: int, value: int) -> None:
        r = super().wrmsr(int(index), value & 0xFFFFFFFFFFFFFFFF)
        if r is not None:
            raise Fault(r[0], r[1], f"WRMSR of {value:#x} to {int(index):#x}")
        self.refresh_mode() if int(index) == 0xC0000080 else None

    # --- running -----------------------------------------------------------------------------
    def run(self, max_instructions: int | None = None) -> Stop:
        start = self.icount
        if self.machine is not None:
            self.set_instruction_limit(start + self.machine.instruction_limit)
        code, status = super().run(max_instructions)
        self.stop_error(code)
        return Stop(_STOP_NAMES.get(code, "request"), status if code == 3 else None,
                    self.icount - start, self.rip)

    def stop_error(self, code: int) -> None:
        """Raise what a stop code of the core means for the caller when it is not an outcome:
        the instruction limit or an exception storm, or an unmodelled feature."""
        if code in (5, 9):
            raise InstructionLimit(self.machine.instruction_limit if self.machine else 0, self.rip,
                                   storm=code == 9)
        if code == 6:
            raise Unsupported(self.unsupported_what or "an unmodelled feature")

    def step(self) -> Stop:
        return self.run(max_instructions=1)

    # --- callbacks from the core ---------------------------------------------------------------
    def _cpuid(self, leaf: int, subleaf: int):
        return self.cpuid_table.query(leaf, subleaf, self.get_sys("cr4"))

    def _msr_read(self, index: int):
        if self.machine is not None:
            v = self.machine._msr_read(index)
            if v is not None:
                return v
        return self.msr_file.get(index)

    def _msr_write(self, index: int, value: int) -> bool:
        if self.machine is not None and self.machine._msr_write(index, value):
            return True
        if index == 0x38F and value & ~PERF_GLOBAL_CTRL_VALID:
            return False                            # reserved bits: #GP(0)
        if index in self.msr_file:
            self.msr_file[index] = value
            return True
        return False

    def _io_read(self, port: int, size: int) -> int:
        dev = self.io_handlers.get(port)
        if dev is None:
            return (1 << (8 * size)) - 1            # unclaimed ports read as all ones
        return dev.io_read(port, size)

    def _io_write(self, port: int, size: int, value: int) -> None:
        dev = self.io_handlers.get(port)
        if dev is not None:
            dev.io_write(port, size, value)


def _gpr_property(i: int):
    return property(lambda self: self.get_gpr(i),
                    lambda self, v: self.set_gpr(i, v & 0xFFFFFFFFFFFFFFFF))


for _i, _name in enumerate(GPRS):
    setattr(Cpu, _name, _gpr_property(_i))


class Memory:
    """Host-physical memory: sparse RAM, device MMIO, open bus beyond (reads all ones)."""

    def __init__(self, core: _exec.Core):
        self._core = core

    @property
    def size(self) -> int:
        return self._core.memory_size

    def read(self, pa: int, n: int) -> bytes:
        return self._core.phys_read(pa, n)

    def write(self, pa: int, data: bytes) -> None:
        self._core.phys_write(pa, bytes(data))

    def touched_pages(self) -> list[int]:
        return self._core.touched_pages()


def _int_accessors(size: int):
    mask = (1 << (8 * size)) - 1

    def read(self, pa: int) -> int:
        return int.from_bytes(self._core.phys_read(pa, size), "little")

    def write(self, pa: int, value: int) -> None:
        self._core.phys_write(pa, (value & mask).to_bytes(size, "little"))
    return read, write


for _size, _bits in ((1, 8), (2, 16), (4, 32), (8, 64)):
    _r, _w = _int_accessors(_size)
    setattr(Memory, f"read_u{_bits}", _r)
    setattr(Memory, f"write_u{_bits}", _w)


class Machine:
    """A bare x86-64 machine: one CPU, sparse physical memory, I/O and MMIO buses, the debug
    console on port 0xE9 and the exit port on 0xF4, and a local APIC."""

    cpu_class = Cpu

    def __init__(self, memory_size: int = 256 << 20, instruction_limit: int = DEFAULT_INSTRUCTION_LIMIT,
                 cpuid: CpuidTable | None = None):
        if instruction_limit <= 0:
            raise ValueError("instruction_limit must be positive")
        self.instruction_limit = instruction_limit
        self.cpu = self.cpu_class(memory_size, machine=self, cpuid=cpuid)
        self.memory = Memory(self.cpu)
        self.console = DebugConsole()
        self.exit_port = ExitPort(self.cpu)
        self.attach_io(DEBUG_CONSOLE_PORT, self.console)
        self.attach_io(EXIT_PORT, self.exit_port)
        from x86.apic import LocalApic
        self.apic = LocalApic(self)

    # --- buses ---------------------------------------------------------------------------------
    def attach_io(self, port: int, device, count: int = 1) -> None:
        """Claim I/O ports [port, port+count) for a device with io_read(port, size) and
        io_write(port, size, value)."""
        for p in range(port, port + count):
            self.cpu.io_handlers[p & 0xFFFF] = device

    def attach_mmio(self, base: int, size: int, device) -> None:
        """Claim physical [base, base+size) for a device with mmio_read(pa, size) and
        mmio_write(pa, size, value)."""
        self.cpu._map_mmio(base, base + size, device)

    def raise_interrupt(self, vector: int) -> None:
        """Assert an external interrupt (through the local APIC's IRR)."""
        if not 16 <= vector <= 255:
            raise ValueError(f"external interrupt vectors are 16-255, not {vector}")
        self.apic.request(vector)

    def raise_nmi(self) -> None:
        self.cpu.request_nmi()

    def _msr_read(self, index: int):
        return self.apic.msr_read(index)

    def _msr_write(self, index: int, value: int) -> bool:
        return self.apic.msr_write(index, value)

    # --- images --------------------------------------------------------------------------------
    def load(self, image, address: int | None = None, mode: str = "long") -> int:
        """Load a flat binary (bytes) or an ELF64 image (path or bytes) and set up `mode`.
        Returns the entry point; see x86.loader for the exact state."""
        from x86.loader import load
        return load(self, image, address, mode)

    # --- snapshots -----------------------------------------------------------------------------
    def devices(self) -> list:
        """Every device on the I/O and MMIO buses, once each, in the order they were attached."""
        seen = {}
        for dev in list(self.cpu.io_handlers.values()) + [d for _, _, d in self.cpu.mmio_handlers]:
            seen.setdefault(id(dev), dev)
        return list(seen.values())

    def snapshot(self) -> "Snapshot":
        """An in-memory copy of the machine's state, complete enough that `restore` makes the
        machine continue exactly as it did from here: the processor (the C Cpu struct and the
        MSRs kept in Python), every RAM page ever written, the devices (those with
        `snapshot()`/`restore(state)`: the APIC, the debug console, the exit port, ...), and
        what a subclass adds (`_snapshot_extra`). Unchanged pages are shared with the previous
        snapshot of this machine, so that frequent snapshots cost only what changed."""
        core, prev, pages = self.cpu, getattr(self, "_snapshot_pages", {}), {}
        for pfn in core.touched_pages():
            data = core.phys_read(pfn << 12, 4096)
            old = prev.get(pfn)
            pages[pfn] = old if old == data else data
        self._snapshot_pages = pages
        return Snapshot(self, core.time, core.cpu_state(), dict(core.msr_file), pages, core.dirty_bitmap(),
                        tuple((d, d.snapshot()) for d in self.devices() if hasattr(d, "snapshot")),
                        self._snapshot_extra())

    def restore(self, snap: "Snapshot") -> None:
        """Return to a `snapshot()` of this machine. Pages written since are restored or zeroed
        again (they were never written before); the TLB and the decoded-code caches are flushed
        (they hold nothing architectural that the snapshot does not)."""
        if snap.machine is not self:
            raise ValueError("a snapshot can only be restored on the machine that took it")
        core = self.cpu
        zero = bytes(4096)
        for pfn in core.touched_pages():
            if pfn not in snap.pages:
                core.phys_write(pfn << 12, zero)
        for pfn, data in snap.pages.items():
            core.phys_write(pfn << 12, data)
        core.set_dirty_bitmap(snap.dirty)
        core.set_cpu_state(snap.cpu)
        core.msr_file = dict(snap.msrs)
        for dev, state in snap.devices:
            dev.restore(state)
        self._restore_extra(snap.extra)

    def _snapshot_extra(self) -> dict:
        return {}

    def _restore_extra(self, extra: dict) -> None:
        pass


@attrs.frozen(eq=False)
class Snapshot:
    """A machine's state at one instant (`Machine.snapshot()`), in memory."""
    machine: Machine = attrs.field(repr=False)
    time: int                                    # deterministic time: retired instructions + halted
    cpu: bytes = attrs.field(repr=False)         # the C Cpu struct (x86/_defs.pxd)
    msrs: dict = attrs.field(repr=False)         # MSRs kept in Python (Cpu.msr_file)
    pages: dict = attrs.field(repr=False)        # page number -> 4096 bytes, every page ever written
    dirty: bytes = attrs.field(repr=False)       # the dirty-page bitmap
    devices: tuple = attrs.field(repr=False)     # (device, its snapshot()) pairs
    extra: dict = attrs.field(repr=False)        # a subclass's state (vmx: VMX operation, VMCSs)
