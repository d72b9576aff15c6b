"""`vmx.Machine` and its `Cpu`: an x86 machine whose processor has VMX (API.md, `vmx`).

The Python code calling `cpu.vmxon(...)` etc. is the VMM, in VMX root operation. The host
starts in 64-bit mode at CPL 0 with CR4.VMXE clear and IA32_FEATURE_CONTROL unlocked: enabling
VMX is the learner's job (`vmx.enable(cpu)` does it in one call).
"""
from __future__ import annotations

import x86
from x86 import loader
from x86.cpuid import DEFAULT_FEATURES, CpuidTable
from vmx import instructions as ins, invalidation
from vmx import _transition, _vmcs  # noqa: F401  (_transition installs VM entry)
from vmx import profiles
from vmx.profiles import Profile
from vmx.vmcs import Vmcs


# what VmxState holds besides the VMCSs and the current-VMCS pointer (snapshots)
_VMX_STATE = ("root", "non_root", "vmxon_pointer", "cr0_must1", "cr0_must0", "cr4_must1", "cr4_must0",
              "aborted")

HOST_GDT_TSS = loader.GDT_BASE + 8 * len(loader.GDT)   # selector 20H
HOST_TSS = 0x600                                        # 104 bytes, inside the loader's area


def _tss_descriptor(base: int, limit: int) -> int:
    """The low 8 bytes of an available 64-bit TSS descriptor (type 9, present; SDM 8.2.3)."""
    return (limit & 0xFFFF) | ((base & 0xFFFFFF) << 16) | (0x89 << 40) | (((limit >> 16) & 0xF) << 48) \
        | (((base >> 24) & 0xFF) << 56)


class Cpu(x86.Cpu, _vmcs.VmxCore):
    """A processor with VMX: the VMX instructions as methods (outcomes per SDM 31.2)."""

    def __init__(self, *args, **kwargs):
        self.vmx = ins.VmxState()
        super().__init__(*args, **kwargs)

    def reset(self) -> None:
        """RESET (SDM Vol. 3A 10.1.1): also outside VMX operation, with no current VMCS and no
        VMCS data held, IA32_FEATURE_CONTROL cleared; the only way out of the VMX-abort
        shutdown state (SDM Vol. 3C 28.7)."""
        super().reset()
        st = self.vmx
        st.root = st.non_root = False
        st.vmxon_pointer = st.current = 0xFFFFFFFFFFFFFFFF
        st.cache = {}
        st.aborted = 0
        self.halted = False
        self.set_vmx_fixed_bits(False)
        if self.machine is not None:
            self.machine.feature_control = 0

    def run(self, max_instructions: int | None = None) -> x86.Stop:
        """x86.Cpu.run; a processor in the VMX-abort shutdown state executes nothing (28.7)."""
        if self.vmx.aborted:
            return x86.Stop("shutdown", None, 0, self.rip)
        return super().run(max_instructions)

    def set_vmx_fixed_bits(self, on: bool) -> None:
        """In VMX operation CR0 and CR4 keep the IA32_VMX_CR*_FIXED* settings: a MOV that breaks
        them is #GP(0) (SDM 24.8). The masks are kept with the VMX state (VM exits restore
        them in C)."""
        prof, st = self.machine.profile, self.vmx
        st.save_efer_lma = bool(prof.msr(profiles.IA32_VMX_MISC) & profiles.MISC_SAVE_EFER_LMA)
        if on:
            st.cr0_must1 = prof.msr(profiles.IA32_VMX_CR0_FIXED0)
            st.cr0_must0 = ~prof.msr(profiles.IA32_VMX_CR0_FIXED1) & 0xFFFFFFFF
            st.cr4_must1 = prof.msr(profiles.IA32_VMX_CR4_FIXED0)
            st.cr4_must0 = ~prof.msr(profiles.IA32_VMX_CR4_FIXED1) & 0xFFFFFFFFFFFFFFFF
        else:
            st.cr0_must1 = st.cr0_must0 = st.cr4_must1 = st.cr4_must0 = 0
        for name in ("cr0_must1", "cr0_must0", "cr4_must1", "cr4_must0"):
            self.set_sys_raw(name, getattr(st, name))

    def vmxon(self, pa: int) -> None:
        ins.vmxon(self, pa)

    def vmxoff(self) -> None:
        ins.vmxoff(self)

    def vmclear(self, pa: int) -> None:
        ins.vmclear(self, pa)

    def vmptrld(self, pa: int) -> None:
        ins.vmptrld(self, pa)

    def vmptrst(self) -> int:
        return ins.vmptrst(self)

    def invept(self, kind: int, eptp: int = 0) -> None:
        """INVEPT (SDM 31.3) with `kind` 1 (single-context: `eptp`) or 2 (all-context)."""
        invalidation.invept(self, kind, eptp)

    def invvpid(self, kind: int, vpid: int, linear_address: int = 0) -> None:
        """INVVPID (SDM 31.3) with `kind` 0 (individual-address), 1 (single-context), 2
        (all-context) or 3 (single-context retaining globals)."""
        invalidation.invvpid(self, kind, vpid, linear_address)

    # VMREAD, VMWRITE, VMLAUNCH and VMRESUME are methods of vmx._vmcs.VmxCore: the common case
    # in C, every other case through the full SDM 31.3 pseudocode of vmx.instructions


class Machine(x86.Machine):
    """An x86 machine whose CPU has VMX, described by a profile (`vmx.profiles.PROFILES`)."""

    cpu_class = Cpu

    def __init__(self, memory_size: int = 256 << 20, profile: str | Profile = "default", **kwargs):
        self.profile = profile if isinstance(profile, Profile) else profiles.get(profile)
        self.feature_control = 0
        features = {k: tuple(v) for k, v in DEFAULT_FEATURES.items()}
        for reg, names in self.profile.cpuid:
            features[reg] = tuple(dict.fromkeys(features.get(reg, ()) + tuple(names)))
        super().__init__(memory_size, cpuid=CpuidTable(features), **kwargs)
        # the host: 64-bit mode, CPL 0, flat segments, identity paging (x86.loader, "long"), and a
        # 64-bit TSS (VM exits need a usable host TR, SDM 27.2.3)
        loader._setup_mode(self, "long", 0)
        self.memory.write_u64(HOST_GDT_TSS, _tss_descriptor(HOST_TSS, 0x67))
        self.memory.write_u64(HOST_GDT_TSS + 8, 0)
        self.cpu.gdtr = (loader.GDT_BASE, HOST_GDT_TSS + 15 - loader.GDT_BASE)
        self.cpu.set_segment("tr", HOST_GDT_TSS - loader.GDT_BASE, HOST_TSS, 0x67, 0x8B)

    # --- snapshots: the VMX state (x86.Machine.snapshot) --------------------------------------
    def _snapshot_extra(self) -> dict:
        """VMX operation (root / non-root), the VMXON pointer, the current-VMCS pointer and
        every VMCS the processor holds (its fields and launch state), IA32_FEATURE_CONTROL."""
        st = self.cpu.vmx
        return {"feature_control": self.feature_control,
                "state": {name: getattr(st, name) for name in _VMX_STATE if hasattr(st, name)},
                "current": st.current,
                "vmcs": {addr: vmcs.snapshot() for addr, vmcs in st.cache.items()}}

    def restore(self, snap) -> None:
        if snap.machine is self and snap.extra["state"]["non_root"]:
            raise ValueError("this snapshot was taken while a guest ran (VMX non-root operation): "
                             "only snapshots taken in VMX root operation, between a VM exit and "
                             "the next VM entry, can be restored (the run's own stack is gone)")
        super().restore(snap)

    def _restore_extra(self, extra: dict) -> None:
        st = self.cpu.vmx
        self.feature_control = extra["feature_control"]
        for name, value in extra["state"].items():
            setattr(st, name, value)
        st.cache = {addr: Vmcs.from_snapshot(addr, s) for addr, s in extra["vmcs"].items()}
        st.current = extra["current"]
        # cached translations hold nothing the snapshot does not: drop them all, as an
        # all-context INVEPT and INVVPID would (29.4.3)
        st.invalidate(self.cpu, "ept", invalidation.InveptType.ALL_CONTEXT)
        st.invalidate(self.cpu, "vpid", invalidation.InvvpidType.ALL_CONTEXT)

    def _msr_read(self, index: int):
        if index == ins.IA32_FEATURE_CONTROL:
            return self.feature_control
        if self.profile.has(index):
            return self.profile.msr(index)
        return super()._msr_read(index)

    def _msr_write(self, index: int, value: int) -> bool:
        if index == ins.IA32_FEATURE_CONTROL:
            # SDM Vol. 4 Table 2-2: writes #GP once the lock bit is set; bit 1 needs SMX (absent)
            if self.feature_control & ins.FC_LOCK or value & ~(ins.FC_LOCK | ins.FC_VMX_OUTSIDE_SMX):
                return False
            self.feature_control = value
            return True
        if self.profile.has(index) or 0x480 <= index <= 0x493:
            return False                  # the capability MSRs are read-only
        return super()._msr_write(index, value)


def enable(cpu) -> None:
    """Make VMXON possible: lock IA32_FEATURE_CONTROL with VMX enabled outside SMX, set the CR0
    bits IA32_VMX_CR0_FIXED0 requires (NE), and set CR4.VMXE (SDM 24.7, 24.8)."""
    m = cpu.machine
    if not m.feature_control & ins.FC_LOCK:
        cpu.wrmsr(ins.IA32_FEATURE_CONTROL, ins.FC_LOCK | ins.FC_VMX_OUTSIDE_SMX)
    cpu.cr0 = cpu.cr0 | m.profile.msr(profiles.IA32_VMX_CR0_FIXED0)
    cpu.cr4 = cpu.cr4 | m.profile.msr(profiles.IA32_VMX_CR4_FIXED0)
