"""What the bundled VMX scenarios share: a memory layout, and a machine in VMX root operation
with a current VMCS (after VMXON, VMCLEAR and VMPTRLD) and the guest's code loaded."""
from __future__ import annotations

import vmx
from x86.asm import assemble

GUEST_CODE = 0x200000
GUEST_STACK = 0x180000              # top of the guest's stack (it grows down)
VMXON_REGION, VMCS = 0x10000, 0x11000
IO_BITMAP_A, IO_BITMAP_B, MSR_BITMAP = 0x20000, 0x21000, 0x22000


def vmx_machine(profile: str = "default", memory_mib: int = 64,
                instruction_limit: int = 50_000_000) -> vmx.Machine:
    """A vmx.Machine in VMX root operation whose current VMCS is the clear region at VMCS."""
    m = vmx.Machine(memory_size=memory_mib << 20, profile=profile, instruction_limit=instruction_limit)
    vmx.enable(m.cpu)
    for pa in (VMXON_REGION, VMCS):
        m.memory.write_u32(pa, m.profile.revision_id)     # SDM 25.2: the revision identifier
    m.cpu.vmxon(VMXON_REGION)
    m.cpu.vmclear(VMCS)
    m.cpu.vmptrld(VMCS)
    return m


def load_guest(m, source: str, address: int = GUEST_CODE) -> bytes:
    """Assemble the guest (Intel syntax, x86.asm) and write it at `address`."""
    code = assemble(source, address=address)
    m.memory.write(address, code)
    return code


def set_bit(m, bitmap: int, bit: int) -> None:
    """Set one bit of a bitmap in memory (I/O and MSR bitmaps, SDM 25.6.4, 25.6.9)."""
    pa = bitmap + (bit >> 3)
    m.memory.write_u8(pa, m.memory.read_u8(pa) | 1 << (bit & 7))
