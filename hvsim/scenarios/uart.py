"""A 16550-like UART as a VMM emulates it on I/O exits: the eight registers at COM1 (3F8H-3FFH),
enough for a polling driver. Writing THR (offset 0) sends a byte; LSR (offset 5) always reports
the transmitter empty (THRE and TEMT); nothing is ever received."""
from __future__ import annotations

COM1 = 0x3F8
THR, IER, IIR, LCR, MCR, LSR, MSR, SCR = range(8)     # offsets (RBR reads at THR, FCR writes at IIR)
LSR_THRE, LSR_TEMT = 0x20, 0x40
IIR_NO_INTERRUPT = 0x01


class Uart16550:
    def __init__(self, base: int = COM1):
        self.base = base
        self.output = bytearray()
        self.regs = {IER: 0, LCR: 0x03, MCR: 0, SCR: 0}

    def claims(self, port: int) -> bool:
        return self.base <= port < self.base + 8

    @property
    def text(self) -> str:
        return self.output.decode("utf-8", errors="replace")

    def read(self, port: int) -> int:
        off = port - self.base
        if off == LSR:
            return LSR_THRE | LSR_TEMT
        if off == IIR:
            return IIR_NO_INTERRUPT
        if off == THR:
            return 0                          # RBR: no data received
        return self.regs.get(off, 0)

    def write(self, port: int, value: int) -> None:
        off = port - self.base
        if off == THR and not self.regs[LCR] & 0x80:     # DLAB clear: the byte goes out
            self.output.append(value & 0xFF)
        elif off in self.regs:
            self.regs[off] = value & 0xFF
