"""EPT under the VMCS's control (SDM Vol. 3C chapter 29 and the VMX parts that name it): the
walker itself is the `ept` package; this module turns the VM-execution controls into its
settings at VM entry and back at VM exit, and its faults into what the guest or the VMM sees.

- VM entry with "enable EPT" (27.3.2): the EPTP takes effect; "enable PML" starts logging at
  the PML index (29.3.6). (With PAE paging the PDPTEs come from the guest-state fields, not
  from memory, 27.3.2.4, and are saved at VM exits: vmx._transition.)
- VM exit (28.3): the PML index is saved; EPT is off in VMX root operation.
- A second-level fault (x86 EV_SLAT_FAULT) becomes an EPT violation (exit 48, qualification
  Table 28-7 with bit 12 "NMI unblocking due to IRET"), an EPT misconfiguration (exit 49), a
  page-modification-log-full exit (62), or with "EPT-violation #VE" a virtualization exception
  (25.5.6).
- VMFUNC function 0, EPTP switching (26.5.6.3).
"""
from __future__ import annotations

import ept
from vmx import _translation
from vmx.controls import SecondaryProcBased as Sec
from vmx.exits import ExitReason as R
from vmx.fields import Field as F
from vmx.invalidation import eptp_failure
from x86.intercept import DONE, RAISE

NMI_UNBLOCKING = 1 << 12           # Table 28-7 bit 12 (also PML-full, 28.2.1)
VE_VECTOR = 20
EPTP_LIST_ENTRIES = 512            # 26.5.6.3: ECX must be below 512


def unit(cpu):
    """The processor's EPT unit, registered once with INVEPT's translation caches."""
    e = ept.attach(cpu)
    caches = cpu.vmx.__dict__.setdefault("translation_caches", [])
    if not any(getattr(c, "unit", None) is e for c in caches):
        hook = e.translation_cache
        hook.unit = e
        caches.append(hook)
    return e


def _enable(cpu, eptp: int, secondary: int, flush_tlb: bool):
    """The EPTP in effect, with the processor's capabilities and the mode-based execute control."""
    e = unit(cpu)
    e.enable(eptp, ept_vpid_cap=cpu.machine.profile.ept_vpid_cap,
             mode_based_execute=bool(secondary & Sec.MODE_BASED_EPT_EXEC), flush_tlb=flush_tlb)
    return e


def enter(cpu, vmcs, secondary: int) -> None:
    """27.3.2 with "enable EPT" 1: the EPTP in effect, PDPTEs from the VMCS with PAE paging
    (27.3.2.4), PML from the PML index (29.3.6)."""
    e = _enable(cpu, vmcs.read_enc(F.EPT_POINTER), secondary, flush_tlb=False)
    if secondary & Sec.ENABLE_PML:
        e.set_pml(vmcs.read_enc(F.PML_ADDRESS), vmcs.read_enc(F.GUEST_PML_INDEX))
    else:
        e.disable_pml()


def leave(cpu, vmcs, secondary: int, saved: bool) -> None:
    """At a VM exit: 28.3 saves the PML index and, with PAE paging, the PDPTEs (when guest
    state is saved at all: not for a VM-entry failure); then EPT is off (VMX root)."""
    e = unit(cpu)
    if saved and secondary & Sec.ENABLE_PML:
        vmcs.write_enc(F.GUEST_PML_INDEX, e.pml_index)
    e.disable_pml()
    e.disable(flush_tlb=False)


def fault_exit(hook, code: int, iret_nmi: bool):
    """EV_SLAT_FAULT: an access to the APIC-access page (exit 44, Table 28-6), or the EPT
    walker's last fault, as what the guest or the VMM sees. Returns the hook's answer (an exit,
    or a #VE to deliver)."""
    apic_code, apic_qual = _translation.apic_access()
    if code == apic_code:
        # 28.2.4: IDT-vectoring information iff the access type is 3 or 10 (event delivery)
        return hook._exit(R.APIC_ACCESS, apic_qual, instruction=False)
    f = unit(hook.cpu).take_fault()
    if f is None:
        raise RuntimeError("EV_SLAT_FAULT without an EPT fault recorded")
    if f.kind == ept.FaultKind.MISCONFIGURATION:
        # 28.2.1: the qualification is undefined (0 here); the guest-linear address too
        return hook._exit(R.EPT_MISCONFIG, 0, instruction=False,
                          guest_physical_address=f.guest_physical_address)
    nmi = NMI_UNBLOCKING if iret_nmi and hook.cpu.delivering is None else 0
    if f.kind == ept.FaultKind.PML_FULL:
        return hook._exit(R.PML_FULL, nmi, instruction=False)
    if _convertible(hook, f):
        return _virtualization_exception(hook, f)
    info = {"guest_physical_address": f.guest_physical_address}
    if f.guest_linear_address is not None:
        info["guest_linear_address"] = f.guest_linear_address
    return hook._exit(R.EPT_VIOLATION, f.qualification | nmi, instruction=False, **info)


def _convertible(hook, f) -> bool:
    """25.5.6.1: with "EPT-violation #VE" 1, an EPT violation whose deciding entry has bit 63
    (suppress #VE) clear causes a #VE instead, if CR0.PE = 1, no event is being delivered
    through the IDT, and the 32 bits at offset 4 of the virtualization-exception information
    area are 0."""
    cpu = hook.cpu
    if not hook.sec & Sec.EPT_VIOLATION_VE or f.suppress_ve or not cpu.cr0 & 1:
        return False
    if cpu.delivering is not None:
        return False
    area = hook.ve_information_address
    return hook.memory.read_u32(area + 4) == 0


def _virtualization_exception(hook, f):
    """25.5.6.2 Table 25-1: the information area gets the exit reason (48), FFFFFFFFH at offset
    4, the exit qualification, the guest-linear and guest-physical addresses and the EPTP
    index; then #VE (vector 20, a fault without error code) is delivered like any exception
    (25.5.6.3: the exception bitmap applies)."""
    mem, area = hook.memory, hook.ve_information_address
    mem.write_u32(area, int(R.EPT_VIOLATION))
    mem.write_u32(area + 4, 0xFFFFFFFF)
    mem.write_u64(area + 8, f.qualification)
    mem.write_u64(area + 16, f.guest_linear_address or 0)
    mem.write_u64(area + 24, f.guest_physical_address)
    mem.write_u16(area + 32, hook.vmcs.read_enc(F.EPTP_INDEX))
    return RAISE | VE_VECTOR


def vmfunc(hook):
    """VMFUNC (31.3, 26.5.6): EAX selects the function; a function not enabled in the
    VM-function controls, or one whose own checks fail, causes exit 59. Function 0 (EPTP
    switching, 26.5.6.3): ECX < 512 selects an entry of the EPTP list; an EPTP that VM entry
    would reject exits; otherwise the EPTP (and the EPTP index) change and VMFUNC completes."""
    cpu, vmcs = hook.cpu, hook.vmcs
    function, index = cpu.rax & 0xFFFFFFFF, cpu.rcx & 0xFFFFFFFF
    if function >= 64 or not vmcs.read_enc(F.VM_FUNCTION_CONTROL) >> function & 1 or function != 0:
        return hook._exit(R.VMFUNC)
    if index >= EPTP_LIST_ENTRIES:
        return hook._exit(R.VMFUNC)
    new = hook.memory.read_u64(vmcs.read_enc(F.EPTP_LIST_ADDRESS) + 8 * index)
    if eptp_failure(cpu, new) is not None:
        return hook._exit(R.VMFUNC)
    vmcs.write_enc(F.EPT_POINTER, new)
    vmcs.write_enc(F.EPTP_INDEX, index)
    _enable(cpu, new, hook.sec, flush_tlb=True)
    _translation.rewrap_apic(cpu)                # "virtualize APIC accesses" wraps the new one
    return DONE


def tpr_written() -> bool:
    """A TPR write through the APIC-access page was virtualized since the last call."""
    return _translation.take_tpr_write()
