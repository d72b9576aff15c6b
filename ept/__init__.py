"""ept: second-level translation with Intel EPT (SDM Vol. 3C 29.3 "The Extended Page Table
Mechanism", 29.4 "Caching Translation Information").

The walker (ept/_walk.pyx) is the processor's second-level translation (`Cpu.slat`, see
x86/_defs.pxd): every guest-physical access of the core -- guest paging-structure reads and
A/D updates, PAE PDPTE loads, the final access of a data read, write or instruction fetch -- is
translated on a TLB miss; TLB hits cost nothing, and the TLB only caches the rights EPT grants.
A refused access is a "second-level fault": the core aborts the instruction (or the event
delivery) and offers x86.intercept.EV_SLAT_FAULT(gpa, FaultKind) to the intercept hook; the
details are in `Ept.fault`.

The face vmx wires to the VMCS (one `Ept` per processor, `ept.attach(cpu)`):

    e = ept.attach(cpu)
    e.enable(eptp, ept_vpid_cap=..., mode_based_execute=False)   # VM entry with "enable EPT"
    e.set_pml(pml_address, pml_index) / e.disable_pml()          # VM entry with "enable PML"
    e.disable()                                                   # VM exit (root: no EPT)
    e.pml_index                                                   # VM exit: back to the VMCS
    e.invalidate(ept.InvEptType.SINGLE_CONTEXT, eptp)             # INVEPT type 1 (or 2), or:
    cpu.vmx.translation_caches = [e.translation_cache]            # vmx.invalidation calls it
    f = e.take_fault()                                            # at EV_SLAT_FAULT

`f` is an `EptFault`: `.kind` (FaultKind.VIOLATION -> exit 48, MISCONFIGURATION -> 49, PML_FULL
-> 62), `.guest_physical_address`, `.guest_linear_address` (None when qualification bit 7 is 0),
`.qualification` (Table 28-7 bits 0-11; vmx adds bit 12, NMI unblocking due to IRET, from
`cpu.get_sys("iret_nmi")` while the hook is asked),
`.level`, `.entry`, `.entry_address`, `.suppress_ve`, `.explain()`. At EV_SLAT_FAULT, RIP is at the faulting
instruction (or where the event being delivered restarts, with `cpu.delivering` set for the
IDT-vectoring information), so a VMM that fixes the entry and resumes re-executes it.

What vmx keeps: the VMCS fields and exit reasons, VM-entry checks of the EPTP and PML address,
INVEPT/INVVPID as instructions (operand checks, VMfail), #VE (`fault.suppress_ve` gives bit 63 of
the entry that decides), VMFUNC EPTP switching (call `enable` with the new EPTP), and flushing the
core's TLB for VPID semantics (`flush_tlb=False` lets it manage that itself).

Caching (29.4): guest-physical mappings are cached per processor, tagged by the EP4TA (EPTP bits
51:12); they survive VM exits, VM entries and EPTP changes, so a VMM that edits an EPT entry and
forgets INVEPT sees the old translation, as on hardware. An EPT violation drops the mappings for
its address (so a retry after loosening an entry walks again).

The shape other second-level walkers reuse (AMD nested paging under nCR3, the IOMMU's
second-level tables): a C context reached through `Cpu.slat_ctx`, a `slat_t` that looks in a
cache of guest-physical mappings tagged by the root table, walks on a miss with reserved-bit masks
precomputed per level when the root is loaded, and records a fault for the core's generic
second-level fault path; only the entry format (_walk.pyx `entry_misconfigured`, `need_bits`,
the qualification) is EPT's.

Also here: `EptBuilder` (write EPT tables from Python, read back a walk), `BumpAllocator`,
`make_eptp`, `walk(memory, eptp, gpa)` (each level's entry and the result, for debuggers), and
`reference` (a slow walker written from the manual's text).
"""
from ept.builder import BumpAllocator, EptBuilder, Walk, WalkStep, perm_bits, walk
from ept.eptp import FULL_CAPABILITIES, make_eptp
from ept.reference import Capabilities
from ept.unit import Ept, EptFault, FaultKind, InvEptType, Translation, attach

__all__ = ["EptBuilder", "BumpAllocator", "Walk", "WalkStep", "walk", "perm_bits", "make_eptp",
           "FULL_CAPABILITIES", "Capabilities", "Ept", "EptFault", "FaultKind", "InvEptType",
           "Translation", "attach"]
