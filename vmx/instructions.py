"""VMX instructions executed in VMX root operation (SDM Vol. 3C 31.3), each following the
manual's "Operation" pseudocode in order: #UD, then #GP, then VMfailInvalid / VMfailValid(n),
then VMsucceed. RFLAGS is left as the hardware leaves it (31.2).

The operands are what the instruction would have fetched: a physical address for VMXON,
VMCLEAR and VMPTRLD, a field encoding and a value for VMREAD/VMWRITE.
"""
from __future__ import annotations

import x86
from vmx import _vmcs, profiles
from vmx.errors import VmInstructionError as E
from vmx.fields import field_info
from vmx.outcome import Check, VmFailInvalid, VmFailValid
from vmx.vmcs import INVALID_POINTER, Vmcs

# RFLAGS bits the VMX conventions touch (31.2): CF PF AF ZF SF OF
_ARITH = 0x8D5
_CF, _ZF = 0x1, 0x40

IA32_FEATURE_CONTROL = 0x3A
FC_LOCK, FC_VMX_IN_SMX, FC_VMX_OUTSIDE_SMX = 1 << 0, 1 << 1, 1 << 2


class VmxState(_vmcs.VmxStateBase):
    """What the processor remembers about VMX operation (SDM 24.1, 25.1): `root`, `non_root`,
    `vmxon_pointer`, `current` (the current-VMCS pointer) and `cache` (VMCS data by region
    address) are kept in C (vmx._vmcs.VmxStateBase) for the VMREAD/VMWRITE fast path.
    `aborted`: the VMX-abort indicator while the processor is in the VMX-abort shutdown state
    (28.7), else 0."""

    aborted = 0

    @property
    def in_operation(self) -> bool:
        return self.root or self.non_root

    def invalidate(self, cpu, what: str, kind: int, **operands) -> None:
        """INVEPT / INVVPID (29.4.3): drop the cached translations they name. The processor's
        TLB is dropped whole (more than required is always allowed), and so is every
        translation cache registered in `translation_caches` (EPT's guest-physical mappings)
        that holds what they name."""
        cpu.flush_tlb()
        self._drop_vpid_mappings(what, kind, **operands)
        for cache in getattr(self, "translation_caches", ()):
            cache.invalidate(what, kind, **operands)

    def _drop_vpid_mappings(self, what: str, kind: int, vpid: int = 0, eptp: int = 0, **_) -> None:
        """The mappings kept with VPIDs across VM exits (vmx._transition): INVVPID drops those
        of its VPID (all-context: every VPID's; individual-address: the whole VPID's, more than
        required); INVEPT those combined with its EP4TA (all-context: every EPT-combined
        one)."""
        kept = self.vpid_tlb
        if what == "vpid":
            if kind == 2:
                kept.clear()
            else:
                kept.pop(vpid, None)
        else:
            tag = eptp & 0x000FFFFFFFFFF000
            for v in [v for v, (t, *_rest) in kept.items() if t is not None and (kind == 2 or t == tag)]:
                del kept[v]

    def current_vmcs(self) -> Vmcs | None:
        if self.current == INVALID_POINTER:
            return None
        vmcs = self.cur
        if vmcs is None:
            vmcs = self.cur = self.cache.setdefault(self.current, Vmcs(self.current))
        return vmcs


# --- the conventions (31.2) ------------------------------------------------------------------

def vmsucceed(cpu) -> None:
    cpu.rflags = cpu.rflags & ~_ARITH


def vmfail_invalid(cpu, check: Check):
    cpu.rflags = (cpu.rflags & ~_ARITH) | _CF
    raise VmFailInvalid(check)


def vmfail_valid(cpu, error: int, check: Check):
    cpu.rflags = (cpu.rflags & ~_ARITH) | _ZF
    vmcs = cpu.vmx.current_vmcs()
    vmcs.write_enc(0x4400, int(error))      # VM_INSTRUCTION_ERROR
    raise VmFailValid(error, check)


def vmfail(cpu, error: int, check: Check):
    """VMfail(n): VMfailInvalid without a current VMCS, else VMfailValid(n)."""
    if cpu.vmx.current == INVALID_POINTER:
        vmfail_invalid(cpu, check)
    vmfail_valid(cpu, error, check)


# --- common checks ---------------------------------------------------------------------------

def _ud(message: str):
    raise x86.Fault(6, None, message)


def _gp(message: str):
    raise x86.Fault(13, 0, message)


def _mode_checks(cpu, name: str, vmxon: bool = False) -> None:
    """The #UD conditions every VMX instruction shares (31.3, each instruction's Operation);
    before them, a processor in the VMX-abort shutdown state executes nothing (28.7)."""
    if cpu.vmx.aborted:
        from vmx.abort import aborted_check
        raise aborted_check(cpu, name)
    if not vmxon and not cpu.vmx.in_operation:
        _ud(f"{name} outside VMX operation")
    if cpu.code_bits == 64 and not vmxon:
        return                  # 64-bit mode: CR0.PE = 1, RFLAGS.VM = 0, CS.L = 1
    if not cpu.cr0 & 1:
        _ud(f"{name} with CR0.PE = 0")
    if vmxon and not cpu.cr4 & (1 << 13):
        _ud(f"{name} with CR4.VMXE = 0")
    if cpu.rflags & (1 << 17):
        _ud(f"{name} in virtual-8086 mode")
    if cpu.efer & (1 << 10) and not cpu.segment("cs").attr & (1 << 13):
        _ud(f"{name} in compatibility mode (IA32_EFER.LMA = 1, CS.L = 0)")


def _cpl0(cpu, name: str) -> None:
    if cpu.cpl > 0:
        _gp(f"{name} at CPL {cpu.cpl}")


def _bad_address(cpu, addr: int) -> str | None:
    if addr & 0xFFF:
        return f"the address {addr:#x} is not 4-KByte aligned"
    if addr >> x86.MAXPHYADDR:
        return f"the address {addr:#x} sets bits beyond the {x86.MAXPHYADDR}-bit physical-address width"
    return None


def _revision(cpu, addr: int) -> int:
    return cpu.machine.memory.read_u32(addr)


# --- the instructions ----------------------------------------------------------------------------

def vmxon(cpu, addr: int) -> None:
    """VMXON (31.3 "VMXON - Enter VMX Operation")."""
    name = "VMXON"
    _mode_checks(cpu, name, vmxon=True)
    st = cpu.vmx
    if st.non_root:
        raise NotImplementedError("VMXON in VMX non-root operation exits (arrives with VM exits)")
    if st.root:
        _cpl0(cpu, name)
        vmfail(cpu, E.VMXON_IN_VMX_ROOT_OPERATION, Check(
            "31.3", name, "executed in VMX root operation: VMfail(VMXON executed in VMX root operation)"))
    _cpl0(cpu, name)
    prof = cpu.machine.profile
    f0, f1 = prof.msr(profiles.IA32_VMX_CR0_FIXED0), prof.msr(profiles.IA32_VMX_CR0_FIXED1)
    g0, g1 = prof.msr(profiles.IA32_VMX_CR4_FIXED0), prof.msr(profiles.IA32_VMX_CR4_FIXED1)
    cr0, cr4 = cpu.cr0, cpu.cr4
    if (cr0 & f0) != f0 or (cr0 & ~f1 & 0xFFFFFFFF):
        _gp(f"{name}: CR0 = {cr0:#x} is not supported in VMX operation (IA32_VMX_CR0_FIXED0 "
            f"{f0:#x} bits must be 1, bits clear in IA32_VMX_CR0_FIXED1 {f1:#x} must be 0; SDM 24.8)")
    if (cr4 & g0) != g0 or (cr4 & ~g1):
        _gp(f"{name}: CR4 = {cr4:#x} is not supported in VMX operation (IA32_VMX_CR4_FIXED0 "
            f"{g0:#x} bits must be 1, bits clear in IA32_VMX_CR4_FIXED1 {g1:#x} must be 0; SDM 24.8)")
    fc = cpu.machine.feature_control
    if not fc & FC_LOCK:
        _gp(f"{name}: IA32_FEATURE_CONTROL = {fc:#x} has the lock bit (0) clear (SDM 24.7)")
    if not fc & FC_VMX_OUTSIDE_SMX:
        _gp(f"{name}: IA32_FEATURE_CONTROL = {fc:#x} does not enable VMXON outside SMX operation "
            f"(bit 2) (SDM 24.7)")
    bad = _bad_address(cpu, addr)
    if bad:
        vmfail_invalid(cpu, Check("31.3", name, f"VMXON pointer: {bad}"))
    rev = _revision(cpu, addr)
    if rev & 0x7FFFFFFF != prof.revision_id or rev >> 31:
        vmfail_invalid(cpu, Check("31.3", name, (
            f"the VMXON region at {addr:#x} holds revision identifier {rev:#010x}; bits 30:0 must be "
            f"the processor's {prof.revision_id:#x} (IA32_VMX_BASIC[30:0]) and bit 31 must be 0")))
    st.root = True
    st.vmxon_pointer = addr
    st.current = INVALID_POINTER
    cpu.set_vmx_fixed_bits(True)
    vmsucceed(cpu)


def vmxoff(cpu) -> None:
    """VMXOFF (31.3 "VMXOFF - Leave VMX Operation"); no dual-monitor treatment is modelled."""
    _mode_checks(cpu, "VMXOFF")
    _cpl0(cpu, "VMXOFF")
    st = cpu.vmx
    st.root = False
    st.vmxon_pointer = INVALID_POINTER
    st.current = INVALID_POINTER
    cpu.set_vmx_fixed_bits(False)
    vmsucceed(cpu)


def vmclear(cpu, addr: int) -> None:
    """VMCLEAR (31.3 "VMCLEAR - Clear Virtual-Machine Control Structure")."""
    name = "VMCLEAR"
    _mode_checks(cpu, name)
    _cpl0(cpu, name)
    st = cpu.vmx
    bad = _bad_address(cpu, addr)
    if bad:
        vmfail(cpu, E.VMCLEAR_INVALID_ADDRESS, Check("31.3", name, f"operand: {bad}"))
    if addr == st.vmxon_pointer:
        vmfail(cpu, E.VMCLEAR_VMXON_POINTER, Check(
            "31.3", name, f"the operand {addr:#x} is the VMXON pointer"))
    vmcs = st.cache.setdefault(addr, Vmcs(addr))
    vmcs.launched = False
    size = cpu.machine.profile.region_size
    cpu.machine.memory.write(addr + 8, vmcs.opaque_image(size - 8))
    if st.current == addr:
        st.current = INVALID_POINTER
    vmsucceed(cpu)


def vmptrld(cpu, addr: int) -> None:
    """VMPTRLD (31.3 "VMPTRLD - Load Pointer to Virtual-Machine Control Structure")."""
    name = "VMPTRLD"
    _mode_checks(cpu, name)
    _cpl0(cpu, name)
    st = cpu.vmx
    bad = _bad_address(cpu, addr)
    if bad:
        vmfail(cpu, E.VMPTRLD_INVALID_ADDRESS, Check("31.3", name, f"operand: {bad}"))
    if addr == st.vmxon_pointer:
        vmfail(cpu, E.VMPTRLD_VMXON_POINTER, Check(
            "31.3", name, f"the operand {addr:#x} is the VMXON pointer"))
    rev = _revision(cpu, addr)
    prof = cpu.machine.profile
    shadowing = bool(profiles.allowed(prof, profiles.IA32_VMX_PROCBASED_CTLS2)[1] & (1 << 14)) \
        if prof.has(profiles.IA32_VMX_PROCBASED_CTLS2) else False
    if rev & 0x7FFFFFFF != prof.revision_id or (rev >> 31 and not shadowing):
        vmfail(cpu, E.VMPTRLD_INCORRECT_VMCS_REVISION_ID, Check("31.3", name, (
            f"the VMCS region at {addr:#x} holds revision identifier {rev:#010x}; bits 30:0 must be "
            f"{prof.revision_id:#x} (IA32_VMX_BASIC[30:0])"
            + ("" if rev & 0x7FFFFFFF != prof.revision_id else
               " and bit 31 (shadow-VMCS indicator) may be 1 only if \"VMCS shadowing\" is supported"))))
    st.current = addr
    st.cache.setdefault(addr, Vmcs(addr))
    vmsucceed(cpu)


def vmptrst(cpu) -> int:
    """VMPTRST (31.3): the current-VMCS pointer (FFFFFFFF_FFFFFFFFH when there is none)."""
    _mode_checks(cpu, "VMPTRST")
    _cpl0(cpu, "VMPTRST")
    vmsucceed(cpu)
    return cpu.vmx.current


def _field(cpu, name: str, encoding: int):
    """The field an encoding names, or VMfailValid(12) (31.3 VMREAD/VMWRITE)."""
    try:
        if encoding >> 32:
            raise KeyError(encoding)
        return field_info(encoding)
    except KeyError:
        vmfail(cpu, E.UNSUPPORTED_VMCS_COMPONENT, Check("31.3", name, (
            f"the encoding {encoding:#x} does not correspond to any VMCS field "
            "(SDM Appendix B lists the encodings)")))


def _vmread(cpu, encoding: int) -> int:
    """VMREAD (31.3 "VMREAD - Read Field from Virtual-Machine Control Structure"): every case;
    `vmread` (vmx._vmcs) does the common one in C and comes here for the rest."""
    name = "VMREAD"
    _mode_checks(cpu, name)
    _cpl0(cpu, name)
    vmcs = cpu.vmx.current_vmcs()
    if vmcs is None:
        vmfail_invalid(cpu, Check("31.3", name, "the current-VMCS pointer is not valid (no VMPTRLD)"))
    info = _field(cpu, name, int(encoding))
    value = vmcs.read(info)
    vmsucceed(cpu)
    return value


def _vmwrite(cpu, encoding: int, value: int) -> None:
    """VMWRITE (31.3 "VMWRITE - Write Field to Virtual-Machine Control Structure"): every case;
    `vmwrite` (vmx._vmcs) does the common one in C and comes here for the rest."""
    name = "VMWRITE"
    _mode_checks(cpu, name)
    _cpl0(cpu, name)
    vmcs = cpu.vmx.current_vmcs()
    if vmcs is None:
        vmfail_invalid(cpu, Check("31.3", name, "the current-VMCS pointer is not valid (no VMPTRLD)"))
    info = _field(cpu, name, int(encoding))
    misc = cpu.machine.profile.msr(profiles.IA32_VMX_MISC)
    if info.read_only and not misc & (1 << 29):
        vmfail_valid(cpu, E.VMWRITE_READ_ONLY_VMCS_COMPONENT, Check("31.3", name, (
            f"{info.name} ({info.encoding:#x}) is a VM-exit information field and "
            "IA32_VMX_MISC[29] = 0: VMWRITE to it is not supported")))
    vmcs.write(info, int(value))
    vmsucceed(cpu)


# VMREAD/VMWRITE: the common case of 31.3 in C (VMX root operation, 64-bit mode, CPL 0, a current
# VMCS, a known field, not read-only for VMWRITE); every other case is _vmread/_vmwrite above.
_vmcs.set_fallbacks(_vmread, _vmwrite)
vmread = _vmcs.vmread
vmwrite = _vmcs.vmwrite
