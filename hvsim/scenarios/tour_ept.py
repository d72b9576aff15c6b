"""The tour's EPT step: an EPT violation the VMM resolves lazily.

What it shows: the VMM turns EPT on with every guest-physical page of the guest's RAM mapped
1:1, except a window it fills on demand. The guest writes into that window; the write causes
an EPT violation (SDM Vol. 3C 29.3.3, exit reason 48: the qualification says write access, the
entry not present; the exit gives the guest-physical address); the VMM maps a fresh host page
there and resumes the guest at the same instruction, which now completes.
"""
from __future__ import annotations

import vmx
from vmx import ExitReason as R, Field as F, SecondaryProcBased as Sec

from hvsim.scenarios.tour import Step

LAZY_GPA = 0x40000000              # guest-physical, beyond the guest's RAM: mapped on first touch
GUEST_RAM = 32 << 20               # mapped 1:1 at EPT setup
EPT_TABLES = 0x2800000             # host-physical pages for the EPT paging structures ...
LAZY_POOL = 0x3000000              # ... and for the pages mapped on demand


class _Pages:
    """A bump allocator of zeroed host-physical pages."""

    def __init__(self, memory, base: int):
        self.memory, self.next = memory, base

    def __call__(self) -> int:
        pa, self.next = self.next, self.next + 0x1000
        self.memory.write(pa, bytes(0x1000))
        return pa


def _setup(vmm) -> None:
    import ept
    m = vmm.machine
    vmm.ept = ept.EptBuilder(m.memory, _Pages(m.memory, EPT_TABLES))
    vmm.lazy_pages = _Pages(m.memory, LAZY_POOL)
    eptp = vmm.ept.map(0, 0, GUEST_RAM, "rwx", page_size=2 << 20)   # identity for the guest's RAM
    vmm.cpu.vmwrite(F.EPT_POINTER, eptp)


def _on_ept_violation(vmm, ex):
    """Map the page that faulted and resume the guest at the faulting instruction. Making a
    not-present entry present needs no INVEPT: failed translations are not cached (29.4.1)."""
    page = ex.guest_physical_address & ~0xFFF
    if not LAZY_GPA <= page < LAZY_GPA + (1 << 20):
        return vmx.Vmm.on_exit(vmm, ex)                 # not ours: UnhandledExit
    vmm.ept.map(page, vmm.lazy_pages(), 0x1000, "rwx")
    vmm.notes.append(f"EPT violation at {ex.guest_physical_address:#x}: page mapped")
    return None                                         # Vmm.RESUME: run the instruction again


EPT = Step("ept", guest=f"""
    mov rdi, {LAZY_GPA:#x}              # memory the VMM has not mapped in EPT yet
    mov qword ptr [rdi], 0x5a5a         # EPT violation; the VMM maps the page; the write completes
    mov rax, [rdi]
    lea rsi, [rip + msg_ept]
    call puts
    call puthex
""", data="""
msg_ept:    .asciz "guest: wrote through a page the VMM mapped on demand: "
""", controls={"secondary": Sec.ENABLE_EPT}, setup=_setup, handlers={R.EPT_VIOLATION: _on_ept_violation})
