"""`VmcsBuilder`: a valid 64-bit host and guest in a few lines, for users who are not studying the
guest-state area (API.md). The host state is the VMM's own (this processor's current state); the
guest gets flat 64-bit segments, the same page tables, and the RIP and RSP you give it."""
from __future__ import annotations

from vmx import profiles
from vmx.controls import (EntryControls as En, ExitControls as Ex,
                          ProcBased as Proc)
from vmx.fields import Field as F

_SEGS = ("es", "cs", "ss", "ds", "fs", "gs", "ldtr", "tr")


class VmcsBuilder:
    """Writes the current VMCS (after VMCLEAR and VMPTRLD). Controls start at the profile's
    allowed-0 settings (the "default1" bits) plus what you ask for; asking for a control the
    profile does not allow raises ValueError at once, naming the capability MSR."""

    def __init__(self, cpu):
        self.cpu = cpu
        self.profile = cpu.machine.profile
        self.pin = self.proc = self.secondary = self.exit = self.entry = 0

    def controls(self, pin: int = 0, proc: int = 0, secondary: int = 0, exit: int = 0, entry: int = 0):
        self.pin |= int(pin)
        self.proc |= int(proc)
        self.secondary |= int(secondary)
        self.exit |= int(exit)
        self.entry |= int(entry)
        return self

    def _control(self, msr: int, wanted: int, name: str) -> int:
        allowed0, allowed1 = profiles.allowed(self.profile, msr)
        if wanted & ~allowed1:
            raise ValueError(f"{name}: bits {wanted & ~allowed1:#x} are not allowed to be 1 by "
                             f"capability MSR {msr:#x} of profile {self.profile.name!r}")
        return allowed0 | wanted

    def write(self, guest_rip: int, guest_rsp: int, host_rip: int = 0, host_rsp: int = 0) -> None:
        cpu, w = self.cpu, self.cpu.vmwrite
        proc = self.proc | (Proc.ACTIVATE_SECONDARY_CONTROLS if self.secondary else 0)
        w(F.PIN_BASED_VM_EXEC_CONTROL, self._control(profiles.IA32_VMX_PINBASED_CTLS, self.pin, "pin-based"))
        w(F.CPU_BASED_VM_EXEC_CONTROL, self._control(profiles.IA32_VMX_PROCBASED_CTLS, proc, "primary processor-based"))
        if self.secondary:
            w(F.SECONDARY_VM_EXEC_CONTROL,
              self._control(profiles.IA32_VMX_PROCBASED_CTLS2, self.secondary, "secondary processor-based"))
        w(F.VM_EXIT_CONTROLS, self._control(profiles.IA32_VMX_EXIT_CTLS,
                                            self.exit | Ex.HOST_ADDR_SPACE_SIZE, "VM-exit"))
        w(F.VM_ENTRY_CONTROLS, self._control(profiles.IA32_VMX_ENTRY_CTLS,
                                             self.entry | En.IA32E_MODE, "VM-entry"))
        w(F.VMCS_LINK_POINTER, 0xFFFFFFFFFFFFFFFF)
        # host: the VMM's own state (25.5)
        for n in ("cr0", "cr3", "cr4"):
            w(F[f"HOST_{n.upper()}"], getattr(cpu, n))
        for seg in ("es", "cs", "ss", "ds", "fs", "gs", "tr"):
            w(F[f"HOST_{seg.upper()}_SELECTOR"], cpu.segment(seg).selector & ~7)
        w(F.HOST_FS_BASE, cpu.segment("fs").base)
        w(F.HOST_GS_BASE, cpu.segment("gs").base)
        w(F.HOST_TR_BASE, cpu.segment("tr").base)
        w(F.HOST_GDTR_BASE, cpu.gdtr[0])
        w(F.HOST_IDTR_BASE, cpu.idtr[0])
        w(F.HOST_RIP, host_rip)
        w(F.HOST_RSP, host_rsp)
        w(F.HOST_IA32_SYSENTER_CS, cpu.rdmsr(0x174))
        # guest: a copy of the same flat 64-bit environment (25.4)
        for n in ("cr0", "cr3", "cr4"):
            w(F[f"GUEST_{n.upper()}"], getattr(cpu, n))
        w(F.GUEST_DR7, 0x400)
        for seg in _SEGS:
            s = cpu.segment(seg)
            attr = s.attr if not (seg in ("ldtr",) and s.selector == 0) else 0x10000
            w(F[f"GUEST_{seg.upper()}_SELECTOR"], s.selector)
            w(F[f"GUEST_{seg.upper()}_BASE"], s.base)
            w(F[f"GUEST_{seg.upper()}_LIMIT"], s.limit)
            w(F[f"GUEST_{seg.upper()}_AR_BYTES"], attr)
        w(F.GUEST_GDTR_BASE, cpu.gdtr[0])
        w(F.GUEST_GDTR_LIMIT, cpu.gdtr[1])
        w(F.GUEST_IDTR_BASE, cpu.idtr[0])
        w(F.GUEST_IDTR_LIMIT, cpu.idtr[1])
        w(F.GUEST_IA32_EFER, cpu.efer)
        w(F.GUEST_IA32_PAT, cpu.rdmsr(0x277))
        w(F.GUEST_RFLAGS, 2)
        w(F.GUEST_RIP, guest_rip)
        w(F.GUEST_RSP, guest_rsp)
        w(F.GUEST_ACTIVITY_STATE, 0)
        w(F.GUEST_INTERRUPTIBILITY_INFO, 0)
        w(F.GUEST_PENDING_DBG_EXCEPTIONS, 0)
