"""Events around a VM entry and a VM exit: event injection (SDM Vol. 3C 27.6), the special features
of VM entry (27.7: interruptibility, interrupt/NMI windows, the VMX-preemption timer, the monitor
trap flag), RDTSC offsetting and scaling (26.3), and the state VM exit saves about them (28.2.1,
28.3.4).

The sequence itself (arming the core at VM entry, saving interruptibility at VM exit) is in
vmx._transition; these are its parts that stay in Python: the event to inject, the timer, and
the IDT-vectoring information of an exit during event delivery.
"""
from __future__ import annotations

from vmx.fields import Field as F, field_info
from vmx.interruption import InterruptionType as T

# delivery kinds of the core (x86/_defs.pxd DK_*) for each interruption type (Table 25-17)
from x86.intercept import DK_EXCEPTION, DK_EXTERNAL, DK_NMI, DK_PRIV_SOFT, DK_SOFT_EXC, DK_SOFT_INT
KIND_OF_TYPE = {T.EXTERNAL_INTERRUPT: DK_EXTERNAL, T.NMI: DK_NMI, T.HARD_EXCEPTION: DK_EXCEPTION,
                T.SOFT_INTERRUPT: DK_SOFT_INT, T.PRIV_SW_EXCEPTION: DK_PRIV_SOFT,
                T.SOFT_EXCEPTION: DK_SOFT_EXC}
TYPE_OF_KIND = {k: t for t, k in KIND_OF_TYPE.items()}
SOFTWARE_TYPES = (T.SOFT_INTERRUPT, T.PRIV_SW_EXCEPTION, T.SOFT_EXCEPTION)

TSC_MULTIPLIER_SHIFT = 48       # 26.3: the multiplier has 48 fractional bits
from x86.msr import IA32_VMX_MISC
U64 = (1 << 64) - 1


def _read(vmcs, field) -> int:
    return vmcs.read(field_info(field))


def _write(vmcs, field, value: int) -> None:
    vmcs.write(field_info(field), value)


def vectoring_info(delivering) -> tuple[int, int | None, int]:
    """28.2.4: an event whose delivery a VM exit interrupted, from the core's `delivering`
    record: (IDT-vectoring information, error code or None, instruction length)."""
    vector, kind, error, length = delivering
    info = vector | (int(TYPE_OF_KIND[kind]) << 8) | ((error is not None) << 11) | (1 << 31)
    return info, error, length


class PreemptionTimer:
    """26.5.1: the timer counts down by 1 each time bit X of the TSC changes due to the TSC
    incrementing, X = IA32_VMX_MISC[4:0]; time here is deterministic (retired instructions plus
    halted time). A write to IA32_TSC is not an increment: the count goes on from the new value
    (`tsc_written`)."""

    def __init__(self, cpu, value: int):
        self.cpu = cpu
        self.value = value
        self.rate = cpu.machine.profile.msr(IA32_VMX_MISC) & 0x1F
        self.offset = cpu.get_sys("tsc_offset")      # TSC = time + offset since `start`
        self.start = self._tsc()
        self.counted = 0                             # ticks counted before the last TSC write

    def _tsc(self) -> int:
        return (self.cpu.time + self.offset) & U64

    def _ticks(self) -> int:
        return self.counted + (self._tsc() >> self.rate) - (self.start >> self.rate)

    def deadline(self) -> int:
        """The time at which the count reaches 0 (27.7.4: now, when it starts at 0)."""
        if self.value == 0 or self.counted >= self.value:
            return self.cpu.time
        target = ((self.start >> self.rate) + self.value - self.counted) << self.rate
        return (target - self.offset) & U64

    def remaining(self) -> int:
        return max(0, self.value - self._ticks())

    def tsc_written(self, tsc: int) -> None:
        """WRMSR of IA32_TSC in the guest (it writes the TSC itself, 26.3): keep the ticks
        counted so far and count on from the new value."""
        self.counted = self._ticks()
        self.offset = (tsc - self.cpu.time) & U64
        self.start = tsc & U64


def inject(cpu, vmcs) -> bool:
    """27.6: deliver the event of the VM-entry interruption-information field (valid) before the
    first guest instruction; returns True for a pending MTF VM exit (type 7, vector 0), which
    is not an event (27.6.2)."""
    info = _read(vmcs, F.VM_ENTRY_INTR_INFO_FIELD)
    kind = (info >> 8) & 7
    if kind == T.OTHER_EVENT:
        return True
    error = _read(vmcs, F.VM_ENTRY_EXCEPTION_ERROR_CODE) if info >> 11 & 1 else None
    # 27.6.1.1: software types push RIP + the VM-entry instruction length
    length = _read(vmcs, F.VM_ENTRY_INSTRUCTION_LEN) if kind in SOFTWARE_TYPES else 0
    cpu.inject_event(info & 0xFF, KIND_OF_TYPE[T(kind)], error, length)
    return False


def arm_timer(cpu, vmcs, hook) -> None:
    """27.7.4: the VMX-preemption timer starts with the value in the VMCS."""
    hook.timer = PreemptionTimer(cpu, _read(vmcs, F.VMX_PREEMPTION_TIMER_VALUE))
    cpu.set_exit_deadline(hook.timer.deadline())


def save_timer(vmcs, hook, expired: bool) -> None:
    """28.3.4: with "save VMX-preemption timer value", the value the timer counted down to (0
    when it caused the exit)."""
    _write(vmcs, F.VMX_PREEMPTION_TIMER_VALUE, 0 if expired else hook.timer.remaining())
