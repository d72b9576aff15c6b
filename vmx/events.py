"""Events around a VM entry and a VM exit: event injection (SDM Vol. 3C 27.6), the special features
of VM entry (27.7: interruptibility, interrupt/NMI windows, the VMX-preemption timer, the monitor
trap flag), RDTSC offsetting and scaling (26.3), and the state VM exit saves about them (28.2.1,
28.3.4).

`arm` runs after the guest state is loaded and the hook is installed: it tells the core what to
deliver before the first guest instruction and which boundaries to offer to the hook. `save`
runs at the VM exit, before the guest state is written.
"""
from __future__ import annotations

from vmx.controls import (ExitControls as Ex, PinBased as Pin, ProcBased as Proc,
                          SecondaryProcBased as Sec)
from vmx.fields import Field as F, field_info
from vmx.interruption import InterruptionType as T

# delivery kinds of the core (x86/_defs.pxd DK_*) for each interruption type (Table 25-17)
from x86.intercept import DK_EXCEPTION, DK_EXTERNAL, DK_NMI, DK_PRIV_SOFT, DK_SOFT_EXC, DK_SOFT_INT
KIND_OF_TYPE = {T.EXTERNAL_INTERRUPT: DK_EXTERNAL, T.NMI: DK_NMI, T.HARD_EXCEPTION: DK_EXCEPTION,
                T.SOFT_INTERRUPT: DK_SOFT_INT, T.PRIV_SW_EXCEPTION: DK_PRIV_SOFT,
                T.SOFT_EXCEPTION: DK_SOFT_EXC}
TYPE_OF_KIND = {k: t for t, k in KIND_OF_TYPE.items()}
SOFTWARE_TYPES = (T.SOFT_INTERRUPT, T.PRIV_SW_EXCEPTION, T.SOFT_EXCEPTION)

# Table 25-3 interruptibility state: the bits the core keeps
BLOCK_STI, BLOCK_MOV_SS, BLOCK_SMI, BLOCK_NMI = 1, 2, 4, 8
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
    """26.5.1: the timer counts down by 1 each time bit X of the TSC changes, X =
    IA32_VMX_MISC[4:0]; time here is deterministic (retired instructions plus halted time)."""

    def __init__(self, cpu, value: int):
        self.cpu = cpu
        self.value = value
        self.rate = cpu.machine.profile.msr(IA32_VMX_MISC) & 0x1F
        self.start = self._tsc()

    def _tsc(self) -> int:
        return (self.cpu.time + self.cpu.get_sys("tsc_offset")) & U64

    def deadline(self) -> int:
        """The time at which the count reaches 0 (27.7.4: now, when it starts at 0)."""
        if self.value == 0:
            return self.cpu.time
        target = ((self.start >> self.rate) + self.value) << self.rate
        return (target - self.cpu.get_sys("tsc_offset")) & U64

    def remaining(self) -> int:
        ticks = (self._tsc() >> self.rate) - (self.start >> self.rate)
        return max(0, self.value - ticks)


def arm(cpu, vmcs, hook) -> None:
    """27.7 and 27.6, in that order of the manual's VM entry: interruptibility, the event to
    inject, then the controls that act at instruction boundaries."""
    proc, pin = hook.proc, hook.pin
    # 27.3.2.5 / 28.3.4: blocking by STI, by MOV SS, by NMI (virtual-NMI blocking with
    # "virtual NMIs"); a shadow lasts until the first guest instruction retires
    cpu.interruptibility = _read(vmcs, F.GUEST_INTERRUPTIBILITY_INFO) & (BLOCK_STI | BLOCK_MOV_SS | BLOCK_NMI)
    # 26.7.1: with "virtual NMIs" the blocking bit is virtual-NMI blocking; real NMIs exit
    # ("NMI exiting" is 1) whatever it says
    cpu.nmi_block_virtual = bool(pin & Pin.VIRTUAL_NMIS)
    info = _read(vmcs, F.VM_ENTRY_INTR_INFO_FIELD)
    injecting = bool(info >> 31 & 1)
    pending_mtf = False
    if injecting:
        kind = (info >> 8) & 7
        if kind == T.OTHER_EVENT:
            pending_mtf = True          # 27.6.2: injecting a pending MTF VM exit (vector 0)
        else:
            error = _read(vmcs, F.VM_ENTRY_EXCEPTION_ERROR_CODE) if info >> 11 & 1 else None
            # 27.6.1.1: software types push RIP + the VM-entry instruction length
            length = _read(vmcs, F.VM_ENTRY_INSTRUCTION_LEN) if kind in SOFTWARE_TYPES else 0
            cpu.inject_event(info & 0xFF, KIND_OF_TYPE[T(kind)], error, length)
    # 26.5.2 / 27.7.2: with the monitor trap flag an MTF VM exit follows the first instruction,
    # or comes right after an injected vectored event, or at once for a pending MTF VM exit
    if pending_mtf or proc & Proc.MONITOR_TRAP_FLAG:
        cpu.set_step_exit(True, due=pending_mtf)
    # 26.7.5 / 26.7.6 (27.7.5, 27.7.6 for the exit right after entry)
    cpu.set_window_exits((1 if proc & Proc.INTR_WINDOW_EXITING else 0)
                         | (2 if proc & Proc.NMI_WINDOW_EXITING else 0))
    # 27.7.4: the VMX-preemption timer starts with the value in the VMCS
    hook.timer = None
    if pin & Pin.VMX_PREEMPTION_TIMER:
        hook.timer = PreemptionTimer(cpu, _read(vmcs, F.VMX_PREEMPTION_TIMER_VALUE))
        cpu.set_exit_deadline(hook.timer.deadline())
    # 26.3: RDTSC, RDTSCP and RDMSR of IA32_TSC see the offset (and the scaled TSC)
    if proc & Proc.USE_TSC_OFFSETTING:
        offset = _read(vmcs, F.TSC_OFFSET)
        if hook.sec & Sec.TSC_SCALING:
            cpu.set_tsc_transform(_read(vmcs, F.TSC_MULTIPLIER), TSC_MULTIPLIER_SHIFT, offset)
        else:
            cpu.set_tsc_transform(0, 0, offset)


def save(cpu, vmcs, hook) -> None:
    """At a VM exit (after a successful entry): 28.2.1 the valid bit of the VM-entry
    interruption-information field is cleared; 28.3.4 interruptibility state and the
    VMX-preemption timer value are saved."""
    _write(vmcs, F.VM_ENTRY_INTR_INFO_FIELD, _read(vmcs, F.VM_ENTRY_INTR_INFO_FIELD) & ~(1 << 31))
    blocking = _read(vmcs, F.GUEST_INTERRUPTIBILITY_INFO) & ~(BLOCK_STI | BLOCK_MOV_SS | BLOCK_NMI)
    _write(vmcs, F.GUEST_INTERRUPTIBILITY_INFO, blocking | cpu.interruptibility)
    if hook is not None and hook.timer is not None and hook.exit_ctls & Ex.SAVE_VMX_PREEMPTION_TIMER:
        expired = hook.exit is not None and hook.exit["reason"] == 52
        _write(vmcs, F.VMX_PREEMPTION_TIMER_VALUE, 0 if expired else hook.timer.remaining())
    # the guest's shadows end with it; virtual-NMI blocking is guest state only, and an NMI
    # that caused the exit leaves NMIs blocked in the host
    nmi_exit = hook is not None and hook.exit is not None and hook.exit["reason"] == 0 and \
        (hook.exit.get("interruption_info", 0) >> 8 & 7) == T.NMI
    virtual = hook is not None and hook.pin & Pin.VIRTUAL_NMIS
    keep = cpu.interruptibility & BLOCK_NMI if not virtual else 0
    cpu.interruptibility = BLOCK_NMI if nmi_exit else keep


def disarm(cpu) -> None:
    cpu.set_tsc_transform()
