"""A guest IDT for the event tests: 64-bit interrupt gates to small handlers assembled at fixed
addresses, so that a test can see where delivery went and what it pushed."""
from vmx import Field as F
from x86.asm import assemble

GUEST_IDT = 0x2F0000
HANDLERS = 0x300000


def handler_address(vector: int) -> int:
    return HANDLERS + vector * 0x100


def with_idt(m, handlers: dict[int, str], present: bool = True) -> None:
    """Gate n points at handler_address(n) running handlers[n] (an interrupt gate, DPL 0);
    vectors not named have no gate (P = 0)."""
    cpu = m.cpu
    cs = cpu.vmread(F.GUEST_CS_SELECTOR)
    m.memory.write(GUEST_IDT, bytes(256 * 16))
    for vector, source in handlers.items():
        addr = handler_address(vector)
        m.memory.write(addr, assemble(source, address=addr))
        lo = (addr & 0xFFFF) | (cs << 16) | (0xE << 40) | (int(present) << 47) | ((addr >> 16 & 0xFFFF) << 48)
        m.memory.write_u64(GUEST_IDT + 16 * vector, lo)
        m.memory.write_u64(GUEST_IDT + 16 * vector + 8, addr >> 32)
    cpu.vmwrite(F.GUEST_IDTR_BASE, GUEST_IDT)
    cpu.vmwrite(F.GUEST_IDTR_LIMIT, 256 * 16 - 1)


def inject(m, vector: int, type: int, error: int | None = None, length: int = 0) -> None:
    info = vector | (type << 8) | (1 << 31) | ((error is not None) << 11)
    m.cpu.vmwrite(F.VM_ENTRY_INTR_INFO_FIELD, info)
    m.cpu.vmwrite(F.VM_ENTRY_EXCEPTION_ERROR_CODE, error or 0)
    m.cpu.vmwrite(F.VM_ENTRY_INSTRUCTION_LEN, length)


def stack(m, n: int) -> list[int]:
    """The n quadwords at the guest's RSP (after the exit)."""
    rsp = m.cpu.vmread(F.GUEST_RSP)
    return [m.memory.read_u64(rsp + 8 * k) for k in range(n)]
