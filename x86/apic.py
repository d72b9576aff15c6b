"""Local APIC (SDM Vol. 3A chapter 11): xAPIC MMIO at IA32_APIC_BASE and x2APIC MSRs 800H-8FFH.

Modelled: ID, version, TPR (shared with CR8), PPR, EOI, SIVR, ISR/IRR, the LVT timer in one-shot
and periodic modes with its divide configuration, and self-IPIs (x2APIC SELF_IPI, ICR with the
self shorthand). The timer counts deterministic time (retired instructions plus halted time).
Other registers read as 0 and ignore writes; inter-processor IPIs raise x86.Unsupported.
"""
from __future__ import annotations

from x86.errors import Unsupported

APIC_BASE_DEFAULT = 0xFEE00000
# xAPIC register offsets (Table 11-1); x2APIC MSR = 0x800 + offset / 16 (Table 11-6)
ID, VERSION, TPR, PPR, EOI, LDR, SIVR = 0x20, 0x30, 0x80, 0xA0, 0xB0, 0xD0, 0xF0
ISR0, TMR0, IRR0, ESR, ICR_LO, ICR_HI = 0x100, 0x180, 0x200, 0x280, 0x300, 0x310
LVT_TIMER, TIMER_INIT, TIMER_CUR, TIMER_DIV, SELF_IPI = 0x320, 0x380, 0x390, 0x3E0, 0x3F0
LVT_OTHERS = (0x2F0, 0x330, 0x340, 0x350, 0x360, 0x370)
_DIVIDERS = {0b000: 2, 0b001: 4, 0b010: 8, 0b011: 16, 0b100: 32, 0b101: 64, 0b110: 128, 0b111: 1}


class LocalApic:
    def __init__(self, machine):
        self.machine = machine
        self.cpu = machine.cpu
        self.base = APIC_BASE_DEFAULT
        self.apic_base_msr = APIC_BASE_DEFAULT | (1 << 11) | (1 << 8)   # enabled, BSP
        self.irr = 0
        self.isr = 0
        self.sivr = 0xFF
        self.ldr = 0
        self.lvt_timer = 1 << 16
        self.lvt = {off: 1 << 16 for off in LVT_OTHERS}
        self.timer_init = 0
        self.timer_div = 0
        self.deadline = None
        self.cpu.intr_controller = self
        machine.attach_mmio(self.base, 0x1000, self)

    # --- snapshots (x86.Machine.snapshot) ---------------------------------------------------
    _STATE = ("apic_base_msr", "irr", "isr", "sivr", "ldr", "lvt_timer", "timer_init", "timer_div",
              "deadline")

    def snapshot(self) -> dict:
        """The registers and the timer (its deadline; the processor keeps the time)."""
        return {name: getattr(self, name) for name in self._STATE} | {"lvt": dict(self.lvt)}

    def restore(self, state: dict) -> None:
        for name in self._STATE:
            setattr(self, name, state[name])
        self.lvt = dict(state["lvt"])

    # --- priorities (11.8.3.1) -------------------------------------------------------------
    @property
    def tpr(self) -> int:
        return (self.cpu.get_sys("cr8") & 0xF) << 4

    @property
    def ppr(self) -> int:
        isrv = self.isr.bit_length() - 1 if self.isr else 0
        return self.tpr if (self.tpr >> 4) >= (isrv >> 4) else isrv & 0xF0

    def _deliverable(self) -> int:
        if not self.irr:
            return -1
        v = self.irr.bit_length() - 1
        return v if (v >> 4) > (self.ppr >> 4) else -1

    def _sync(self):
        """Drive the processor's INTR line: asserted (with the vector) while a vector beats the
        processor priority, deasserted otherwise, so that an IRR vector held back by TPR or ISR
        neither interrupts nor wakes HLT (11.8.3.1)."""
        v = self._deliverable()
        self.cpu.set_sys_raw("intr_line", v if v > 0 else 0)

    def request(self, vector: int) -> None:
        self.irr |= 1 << vector
        self._sync()

    # --- the core's interrupt-controller interface --------------------------------------------
    def acknowledge(self) -> int:
        """INTA: move the highest deliverable IRR vector to ISR, or -1 when none beats PPR."""
        v = self._deliverable()
        if v < 0:
            return -1
        self.irr &= ~(1 << v)
        self.isr |= 1 << v
        self._sync()
        return v

    def timer_fired(self) -> None:
        mode = (self.lvt_timer >> 17) & 3
        if not (self.lvt_timer >> 16) & 1:
            self.request(self.lvt_timer & 0xFF)
        if mode == 1 and self.timer_init:
            self._arm(self.deadline)
        else:
            self.deadline = None

    def _arm(self, start: int) -> None:
        self.deadline = start + self.timer_init * _DIVIDERS[self._div_code()]
        self.cpu.set_timer_deadline(self.deadline)

    def _div_code(self) -> int:
        return (self.timer_div & 3) | ((self.timer_div >> 1) & 4)

    # --- registers ----------------------------------------------------------------------------
    def read_reg(self, off: int) -> int:
        if off == ID:
            return 0
        if off == VERSION:
            return 0x50014           # version 14H, 6 LVT entries (max LVT 5)
        if off == TPR:
            return self.tpr
        if off == PPR:
            return self.ppr
        if off == LDR:
            return self.ldr
        if off == SIVR:
            return self.sivr
        if ISR0 <= off < ISR0 + 0x80:
            return (self.isr >> (32 * ((off - ISR0) >> 4))) & 0xFFFFFFFF
        if IRR0 <= off < IRR0 + 0x80:
            return (self.irr >> (32 * ((off - IRR0) >> 4))) & 0xFFFFFFFF
        if off == LVT_TIMER:
            return self.lvt_timer
        if off in self.lvt:
            return self.lvt[off]
        if off == TIMER_INIT:
            return self.timer_init
        if off == TIMER_CUR:
            if self.deadline is None:
                return 0
            left = max(0, self.deadline - self.cpu.time)
            return left // _DIVIDERS[self._div_code()]
        if off == TIMER_DIV:
            return self.timer_div
        return 0

    def write_reg(self, off: int, value: int) -> None:
        value &= 0xFFFFFFFF
        if off == TPR:
            self.cpu.set_sys_raw("cr8", (value >> 4) & 0xF)
            self._sync()
        elif off == EOI:
            if self.isr:
                self.isr &= ~(1 << (self.isr.bit_length() - 1))
            self._sync()
        elif off == LDR:
            self.ldr = value & 0xFF000000
        elif off == SIVR:
            self.sivr = value & 0x13FF
        elif off == LVT_TIMER:
            if (value >> 17) & 3 == 2:
                raise Unsupported("APIC timer TSC-deadline mode")
            self.lvt_timer = value & 0x700FF
        elif off in self.lvt:
            self.lvt[off] = value & 0x1F7FF
        elif off == TIMER_INIT:
            self.timer_init = value
            if value:
                self._arm(self.cpu.time)
            else:
                self.deadline = None
                self.cpu.set_timer_deadline(0xFFFFFFFFFFFFFFFF)
        elif off == TIMER_DIV:
            self.timer_div = value & 0xB
        elif off == ICR_LO:
            self._icr(value)
        elif off == SELF_IPI:
            self.request(value & 0xFF)

    def _icr(self, value: int) -> None:
        shorthand = (value >> 18) & 3
        mode = (value >> 8) & 7
        if shorthand == 1 and mode == 0:
            self.request(value & 0xFF)
        else:
            raise Unsupported("inter-processor interrupts other than a fixed self-IPI")

    # --- xAPIC MMIO ----------------------------------------------------------------------------
    def mmio_read(self, pa: int, size: int) -> int:
        off = pa - self.base
        return (self.read_reg(off & ~0xF) >> (8 * (off & 3))) & ((1 << (8 * size)) - 1)

    def mmio_write(self, pa: int, size: int, value: int) -> None:
        off = pa - self.base
        if off & 0xF == 0:
            self.write_reg(off, value)

    # --- MSRs: IA32_APIC_BASE and the x2APIC range ----------------------------------------------
    def msr_read(self, index: int):
        if index == 0x1B:
            return self.apic_base_msr
        if 0x800 <= index <= 0x8FF and (self.apic_base_msr >> 10) & 1:
            off = (index - 0x800) << 4
            if off == ICR_LO:
                return 0
            return self.read_reg(off)
        return None

    def msr_write(self, index: int, value: int) -> bool:
        if index == 0x1B:
            if value & ~0x7FFFFFFD00 & ~0xFFFFFF000 & 0xFFFFFFFFFFFFFFFF & ~((1 << 39) - 1):
                return False
            self.apic_base_msr = (value & ((1 << 39) - 1) & ~0x2FF) | (self.apic_base_msr & 0x100)
            return True
        if 0x800 <= index <= 0x8FF and (self.apic_base_msr >> 10) & 1:
            off = (index - 0x800) << 4
            if off == SELF_IPI:
                self.request(value & 0xFF)
            elif off == ICR_LO:
                self._icr(value & 0xFFFFFFFF)
            else:
                self.write_reg(off, value)
            return True
        return False

    def unacknowledge(self, vector: int) -> None:
        """Undo an INTA: the vector goes back from ISR to IRR (a VM exit for an external
        interrupt without "acknowledge interrupt on exit" leaves it pending, SDM 28.2.2)."""
        self.isr &= ~(1 << vector)
        self.irr |= 1 << vector
        self._sync()
