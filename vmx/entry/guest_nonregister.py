"""VM-entry checks, SDM Vol. 3C 27.3.1.4 "Checks on Guest RIP, RFLAGS, and SSP", 27.3.1.5
"Checks on Guest Non-Register State" and 27.3.1.6 "Checks on Guest Page-Directory-Pointer-Table
Entries"."""
from __future__ import annotations

from vmx import profiles as P
from vmx.controls import EntryControls as En, PinBased as Pin, SecondaryProcBased as Sec

import struct
from typing import Optional

from vmx.entry.context import QUAL_LINK_POINTER, QUAL_NMI_STI, QUAL_PDPTE, show
from vmx.fields import Field
from vmx.vmcs import INVALID_POINTER
from vmx.entry.guest_common import (ACTIVE, ACTIVITY_MISC_BIT, ACTIVITY_NAME, BLOCK_MOVSS,
                                    BLOCK_NMI, BLOCK_SMI, BLOCK_STI, CR0_PE, CR0_PG, CR4_PAE,
                                    DEBUGCTL_BTF, ENCLAVE_INTERRUPTION, EXTERNAL_INTERRUPT,
                                    HARDWARE_EXCEPTION, HLT, NMI, NONREG, PDPTES, RFLAGS_IF,
                                    RFLAGS_RESERVED0, RFLAGS_TF, RFLAGS_VM, RIPFL, SHUTDOWN, Seg,
                                    WAIT_FOR_SIPI, _canonical, _fail, _ia32e, _injection)


def _64bit_code(ctx) -> bool:
    return _ia32e(ctx) and bool(Seg(ctx, "CS").l)


def check_guest_rip_high(ctx):
    """Bits 63:32 of the RIP field must be 0 if "IA-32e mode guest" is 0 or the L bit of the CS
    access rights is 0."""
    v = ctx.read(Field.GUEST_RIP)
    if not _64bit_code(ctx) and v >> 32:
        return _fail(ctx, RIPFL, f"{show(Field.GUEST_RIP, v)} sets bits 63:32 but the guest will "
                     f"not run 64-bit code (IA-32e mode guest = {int(_ia32e(ctx))}, CS.L = "
                     f"{Seg(ctx, 'CS').l})")
    return None


def check_guest_rip_canonical(ctx):
    """If "IA-32e mode guest" is 1 and CS.L is 1, bits 63:N of RIP (N = linear-address width)
    must be identical."""
    if _64bit_code(ctx):
        return _canonical(ctx, RIPFL, Field.GUEST_RIP, " for 64-bit guest code")
    return None


def check_guest_rflags_reserved(ctx):
    """RFLAGS: reserved bits 63:22, 15, 5 and 3 must be 0."""
    v = ctx.read(Field.GUEST_RFLAGS)
    if v & RFLAGS_RESERVED0:
        return _fail(ctx, RIPFL, f"{show(Field.GUEST_RFLAGS, v)} sets reserved bits "
                     f"({v & RFLAGS_RESERVED0:#x}); bits 63:22, 15, 5 and 3 must be 0")
    return None


def check_guest_rflags_bit1(ctx):
    """RFLAGS: reserved bit 1 must be 1."""
    v = ctx.read(Field.GUEST_RFLAGS)
    if not v & 2:
        return _fail(ctx, RIPFL, f"{show(Field.GUEST_RFLAGS, v)} clears bit 1, which is always 1")
    return None


def check_guest_rflags_vm(ctx):
    """RFLAGS: VM (bit 17) must be 0 if "IA-32e mode guest" is 1 or CR0.PE is 0."""
    v = ctx.read(Field.GUEST_RFLAGS)
    real = not ctx.read(Field.GUEST_CR0) & CR0_PE
    if v & RFLAGS_VM and (_ia32e(ctx) or real):
        why = "\"IA-32e mode guest\" is 1" if _ia32e(ctx) else "guest CR0.PE is 0"
        return _fail(ctx, RIPFL, f"{show(Field.GUEST_RFLAGS, v)} sets VM (bit 17) but {why}")
    return None


def check_guest_rflags_if(ctx):
    """RFLAGS: IF (bit 9) must be 1 if the VM-entry interruption information is valid and its
    type is external interrupt."""
    inj = _injection(ctx)
    v = ctx.read(Field.GUEST_RFLAGS)
    if inj and inj[0] == EXTERNAL_INTERRUPT and not v & RFLAGS_IF:
        return _fail(ctx, RIPFL, f"{show(Field.GUEST_RFLAGS, v)} clears IF (bit 9) while an "
                     f"external interrupt is being injected")
    return None


# ==============================================================================================
# 27.3.1.5 Checks on guest non-register state
# ==============================================================================================

ACT, INTR, PDBG, LINK = (Field.GUEST_ACTIVITY_STATE, Field.GUEST_INTERRUPTIBILITY_INFO,
                         Field.GUEST_PENDING_DBG_EXCEPTIONS, Field.VMCS_LINK_POINTER)


def check_guest_activity_supported(ctx):
    """Activity state: the field must hold a state the processor supports: 0 (active), or 1-3
    (HLT, shutdown, wait-for-SIPI) if IA32_VMX_MISC bits 6, 7, 8 say so."""
    v = ctx.read(ACT)
    misc = ctx.profile.msr(P.IA32_VMX_MISC)
    if v != ACTIVE and not misc & ACTIVITY_MISC_BIT.get(v, 0):
        return _fail(ctx, NONREG, f"{show(ACT, v)} is not an activity state this processor "
                     f"supports (IA32_VMX_MISC bits 8:6 = {misc >> 6 & 7:#05b})")
    return None


def check_guest_activity_hlt_dpl(ctx):
    """Activity state: must not be HLT if the DPL of SS is not 0."""
    if ctx.read(ACT) == HLT:
        ss = Seg(ctx, "SS")
        if ss.dpl:
            return _fail(ctx, NONREG, f"{show(ACT, HLT)} (HLT) with SS DPL {ss.dpl} "
                         f"({ss.show('AR_BYTES')}); HLT needs CPL 0")
    return None


def check_guest_activity_blocking(ctx):
    """Activity state: must be active if the interruptibility state shows blocking by STI or by
    MOV SS (bit 0 or 1)."""
    act, intr = ctx.read(ACT), ctx.read(INTR)
    if act != ACTIVE and intr & (BLOCK_STI | BLOCK_MOVSS):
        return _fail(ctx, NONREG, f"{show(ACT, act)} ({ACTIVITY_NAME.get(act, '?')}) with "
                     f"{show(INTR, intr)} blocking by STI or MOV SS; that needs the active state")
    return None


def check_guest_activity_injection(ctx):
    """Activity state: an injected event must not be one that the activity state blocks: none in
    wait-for-SIPI; only NMI or machine check (#MC) in shutdown."""
    inj = _injection(ctx)
    act = ctx.read(ACT)
    if not inj:
        return None
    kind, vector = inj
    if act == WAIT_FOR_SIPI:
        return _fail(ctx, NONREG, f"{show(ACT, act)} (wait-for-SIPI) while injecting an event "
                     f"(type {kind}, vector {vector}); that state blocks all events")
    if act == SHUTDOWN and not (kind == NMI or (kind == HARDWARE_EXCEPTION and vector == 18)):
        return _fail(ctx, NONREG, f"{show(ACT, act)} (shutdown) while injecting type {kind} "
                     f"vector {vector}; only an NMI or a machine check may be injected")
    return None


def check_guest_activity_smm(ctx):
    """Activity state: must not be wait-for-SIPI if "entry to SMM" is 1."""
    if ctx.entry_controls & En.SMM and ctx.read(ACT) == WAIT_FOR_SIPI:
        return _fail(ctx, NONREG, f"{show(ACT, WAIT_FOR_SIPI)} (wait-for-SIPI) with \"entry to "
                     f"SMM\" = 1")
    return None


def check_guest_interruptibility_reserved(ctx):
    """Interruptibility state: reserved bits 31:5 must be 0; bit 4 (enclave interruption) must
    be 0 on a processor without SGX (this one) and if blocking by MOV SS is 1."""
    v = ctx.read(INTR)
    if v & ~0x1F:
        return _fail(ctx, NONREG, f"{show(INTR, v)} sets reserved bits 31:5")
    if v & ENCLAVE_INTERRUPTION:
        return _fail(ctx, NONREG, f"{show(INTR, v)} sets enclave interruption (bit 4); the "
                     f"processor does not support SGX")
    return None


def check_guest_interruptibility_sti_movss(ctx):
    """Interruptibility state: bits 0 (blocking by STI) and 1 (blocking by MOV SS) cannot both
    be 1."""
    v = ctx.read(INTR)
    if v & 3 == 3:
        return _fail(ctx, NONREG, f"{show(INTR, v)} sets both blocking by STI and by MOV SS")
    return None


def check_guest_interruptibility_sti_if(ctx):
    """Interruptibility state: bit 0 (blocking by STI) must be 0 if RFLAGS.IF is 0."""
    v = ctx.read(INTR)
    if v & BLOCK_STI and not ctx.read(Field.GUEST_RFLAGS) & RFLAGS_IF:
        return _fail(ctx, NONREG, f"{show(INTR, v)} sets blocking by STI while guest RFLAGS.IF "
                     f"= 0 ({show(Field.GUEST_RFLAGS, ctx.read(Field.GUEST_RFLAGS))})")
    return None


def check_guest_interruptibility_external_interrupt(ctx):
    """Interruptibility state: bits 0 and 1 must both be 0 if an external interrupt is being
    injected."""
    inj, v = _injection(ctx), ctx.read(INTR)
    if inj and inj[0] == EXTERNAL_INTERRUPT and v & 3:
        return _fail(ctx, NONREG, f"{show(INTR, v)} blocks by STI or MOV SS while an external "
                     f"interrupt is being injected")
    return None


def check_guest_interruptibility_nmi_movss(ctx):
    """Interruptibility state: bit 1 (blocking by MOV SS) must be 0 if an NMI is being
    injected."""
    inj, v = _injection(ctx), ctx.read(INTR)
    if inj and inj[0] == NMI and v & BLOCK_MOVSS:
        return _fail(ctx, NONREG, f"{show(INTR, v)} blocks by MOV SS while an NMI is being "
                     f"injected")
    return None


def check_guest_interruptibility_nmi_sti(ctx):
    """Interruptibility state: bit 0 (blocking by STI) must be 0 if an NMI is being injected.
    The SDM lets processors skip this check; this one performs it, and the failure has exit
    qualification 3 (27.8)."""
    inj, v = _injection(ctx), ctx.read(INTR)
    if inj and inj[0] == NMI and v & BLOCK_STI:
        return _fail(ctx, NONREG, f"{show(INTR, v)} blocks by STI while an NMI is being injected",
                     QUAL_NMI_STI)
    return None


def check_guest_interruptibility_smi(ctx):
    """Interruptibility state: bit 2 (blocking by SMI) must be 0 if the processor is not in
    SMM, and must be 1 if "entry to SMM" is 1."""
    v = ctx.read(INTR)
    if v & BLOCK_SMI and not ctx.in_smm:
        return _fail(ctx, NONREG, f"{show(INTR, v)} sets blocking by SMI (bit 2) outside SMM")
    if ctx.entry_controls & En.SMM and not v & BLOCK_SMI:
        return _fail(ctx, NONREG, f"{show(INTR, v)} clears blocking by SMI (bit 2) with \"entry "
                     f"to SMM\" = 1")
    return None


def check_guest_interruptibility_virtual_nmi(ctx):
    """Interruptibility state: bit 3 (blocking by NMI) must be 0 if "virtual NMIs" is 1 and an
    NMI is being injected."""
    inj, v = _injection(ctx), ctx.read(INTR)
    if inj and inj[0] == NMI and ctx.pin & Pin.VIRTUAL_NMIS and v & BLOCK_NMI:
        return _fail(ctx, NONREG, f"{show(INTR, v)} sets blocking by NMI (bit 3) while a virtual "
                     f"NMI is being injected (\"virtual NMIs\" = 1)")
    return None


PDBG_RESERVED = ~(0xF | (1 << 12) | (1 << 14)) & ((1 << 64) - 1)   # RTM (bit 16) unsupported


def check_guest_pending_debug_reserved(ctx):
    """Pending debug exceptions: bits 11:4, 13, 15 and 63:17 must be 0, and bit 16 (RTM) too on
    a processor without RTM (this one)."""
    v = ctx.read(PDBG)
    if v & PDBG_RESERVED:
        return _fail(ctx, NONREG, f"{show(PDBG, v)} sets reserved bits ({v & PDBG_RESERVED:#x}); "
                     f"only B3-B0 (3:0), enabled breakpoint (12) and BS (14) may be 1")
    return None


def check_guest_pending_debug_bs(ctx):
    """Pending debug exceptions, if blocking by STI or MOV SS is 1 or the activity state is HLT:
    BS (bit 14) must be 1 if RFLAGS.TF is 1 and IA32_DEBUGCTL.BTF is 0, and must be 0 if TF
    is 0 or BTF is 1."""
    if not (ctx.read(INTR) & 3 or ctx.read(ACT) == HLT):
        return None
    v = ctx.read(PDBG)
    tf = bool(ctx.read(Field.GUEST_RFLAGS) & RFLAGS_TF)
    btf = bool(ctx.read(Field.GUEST_IA32_DEBUGCTL) & DEBUGCTL_BTF)
    bs = bool(v >> 14 & 1)
    want = tf and not btf
    if bs != want:
        return _fail(ctx, NONREG, f"{show(PDBG, v)} has BS (bit 14) = {int(bs)} but RFLAGS.TF = "
                     f"{int(tf)} and IA32_DEBUGCTL.BTF = {int(btf)} with blocking by STI/MOV SS "
                     f"or HLT; BS must be {int(want)}")
    return None


def _link(ctx):
    v = ctx.read(LINK)
    return None if v == INVALID_POINTER else v


def check_guest_link_pointer_alignment(ctx):
    """VMCS link pointer (if not FFFFFFFF_FFFFFFFFH): bits 11:0 must be 0."""
    v = _link(ctx)
    if v is not None and v & 0xFFF:
        return _fail(ctx, NONREG, f"{show(LINK, v)} sets bits 11:0; the VMCS link pointer must be "
                     f"FFFFFFFF_FFFFFFFFH or 4-KByte aligned", QUAL_LINK_POINTER)
    return None


def check_guest_link_pointer_width(ctx):
    """VMCS link pointer (if not all ones): bits beyond the physical-address width must be 0."""
    v = _link(ctx)
    if v is not None and ctx.beyond_phys(v):
        return _fail(ctx, NONREG, f"{show(LINK, v)} sets bits beyond the physical-address width "
                     f"({ctx.maxphyaddr} bits)", QUAL_LINK_POINTER)
    return None


def check_guest_link_pointer_revision(ctx):
    """VMCS link pointer (if not all ones): bits 30:0 of the 4 bytes it references must hold the
    processor's VMCS revision identifier, and bit 31 must equal "VMCS shadowing"."""
    v = _link(ctx)
    if v is None:
        return None
    word = struct.unpack("<I", bytes(ctx.read_phys(v, 4)))[0]
    rev, shadow = word & P.BASIC_REVISION_MASK, word >> 31
    want_shadow = int(bool(ctx.secondary & Sec.SHADOW_VMCS))
    if rev != ctx.profile.revision_id:
        return _fail(ctx, NONREG, f"{show(LINK, v)} references a region whose revision "
                     f"identifier is {rev:#x}; the processor's is {ctx.profile.revision_id:#x}",
                     QUAL_LINK_POINTER)
    if shadow != want_shadow:
        return _fail(ctx, NONREG, f"{show(LINK, v)} references a region with shadow-VMCS "
                     f"indicator (bit 31) = {shadow} but \"VMCS shadowing\" = {want_shadow}; "
                     f"they must be equal", QUAL_LINK_POINTER)
    return None


def check_guest_link_pointer_not_current(ctx):
    """VMCS link pointer (if not all ones): if the processor is not in SMM or "entry to SMM" is
    1, it must not be the current-VMCS pointer; in SMM with "entry to SMM" 0, it must differ
    from the executive-VMCS pointer."""
    v = _link(ctx)
    if v is None:
        return None
    if not ctx.in_smm or ctx.entry_controls & En.SMM:
        current = getattr(ctx.vmcs, "address", None)
        if v == current:
            return _fail(ctx, NONREG, f"{show(LINK, v)} is the current-VMCS pointer",
                         QUAL_LINK_POINTER)
    elif v == ctx.read(Field.EXECUTIVE_VMCS_POINTER):
        return _fail(ctx, NONREG, f"{show(LINK, v)} is the executive-VMCS pointer",
                     QUAL_LINK_POINTER)
    return None


# ==============================================================================================
# 27.3.1.6 Checks on guest page-directory-pointer-table entries
# ==============================================================================================

def pdpte_problem(ctx, index: int, value: int) -> Optional[str]:
    """A present PAE PDPTE must have bits 2:1, 8:5 and 63:MAXPHYADDR clear (Vol. 3A 4.4.1)."""
    if not value & 1:
        return None
    reserved = 0x1E6 | (((1 << 64) - 1) >> ctx.maxphyaddr << ctx.maxphyaddr)
    if value & reserved:
        return f"PDPTE{index} = {value:#x} is present and sets reserved bits {value & reserved:#x}"
    return None


def _pae_paging(ctx) -> bool:
    return (bool(ctx.read(Field.GUEST_CR0) & CR0_PG) and bool(ctx.read(Field.GUEST_CR4) & CR4_PAE)
            and not _ia32e(ctx))


def check_guest_pdptes_ept(ctx):
    """If CR0.PG = 1, CR4.PAE = 1, "IA-32e mode guest" = 0 and "enable EPT" = 1, the PDPTE
    fields (GUEST_PDPTR0-3) must not set reserved bits in present entries."""
    if not (_pae_paging(ctx) and ctx.secondary & Sec.ENABLE_EPT):
        return None
    for i in range(4):
        field = Field[f"GUEST_PDPTR{i}"]
        problem = pdpte_problem(ctx, i, ctx.read(field))
        if problem:
            return _fail(ctx, PDPTES, f"{show(field, ctx.read(field))}: {problem}", QUAL_PDPTE)
    return None


def check_guest_pdptes_memory(ctx):
    """If CR0.PG = 1, CR4.PAE = 1, "IA-32e mode guest" = 0 and "enable EPT" = 0, the four PDPTEs
    at the 32-byte aligned address in CR3 are loaded and must not set reserved bits in present
    entries (a failure after the other guest checks: exit qualification 2)."""
    if not _pae_paging(ctx) or ctx.secondary & Sec.ENABLE_EPT:
        return None
    cr3 = ctx.read(Field.GUEST_CR3)
    base = cr3 & 0xFFFFFFE0
    data = bytes(ctx.read_phys(base, 32))
    for i in range(4):
        value = struct.unpack_from("<Q", data, 8 * i)[0]
        problem = pdpte_problem(ctx, i, value)
        if problem:
            return _fail(ctx, PDPTES, f"{show(Field.GUEST_CR3, cr3)}: {problem} (read at "
                         f"{base + 8 * i:#x})", QUAL_PDPTE)
    return None
