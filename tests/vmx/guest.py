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
