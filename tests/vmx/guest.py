"""A VMX test bench: a machine in VMX root operation with a current VMCS written by VmcsBuilder
and a guest program assembled at GUEST_CODE."""
import vmx
from x86.asm import assemble

GUEST_CODE = 0x200000
GUEST_STACK = 0x180000
VMXON_REGION, VMCS = 0x10000, 0x11000
IO_BITMAP_A, IO_BITMAP_B, MSR_BITMAP = 0x20000, 0x21000, 0x22000


def vm(source: str, profile: str = "default", instruction_limit: int = 10_000_000, **controls):
    m = vmx.Machine(memory_size=64 << 20, profile=profile, instruction_limit=instruction_limit)
    cpu = m.cpu
    vmx.enable(cpu)
    for pa in (VMXON_REGION, VMCS):
        m.memory.write_u32(pa, m.profile.revision_id)
    cpu.vmxon(VMXON_REGION)
    cpu.vmclear(VMCS)
    cpu.vmptrld(VMCS)
    m.memory.write(GUEST_CODE, assemble(source, address=GUEST_CODE))
    vmx.VmcsBuilder(cpu).controls(**controls).write(guest_rip=GUEST_CODE, guest_rsp=GUEST_STACK)
    return m


USER_PML4, USER_PDPT = 0x40000, 0x41000


def user_mode(m):
    """Make the guest of `vm` run at CPL 3: user page tables (U/S = 1) identity-mapping the first
    GiB with a 1-GiB page, and code, stack and data segments of DPL 3."""
    from vmx import Field as F
    m.memory.write_u64(USER_PML4, USER_PDPT | 0x7)
    m.memory.write_u64(USER_PDPT, 0x87)                 # 1-GiB page, user, writable, present
    w = m.cpu.vmwrite
    w(F.GUEST_CR3, USER_PML4)
    w(F.GUEST_CS_SELECTOR, 0x2B)
    w(F.GUEST_CS_AR_BYTES, 0xA0FB)                      # 64-bit code, DPL 3
    for seg in ("SS", "DS", "ES", "FS", "GS"):
        w(F[f"GUEST_{seg}_SELECTOR"], 0x33)
        w(F[f"GUEST_{seg}_AR_BYTES"], 0xC0F3)           # data, DPL 3
