"""The VT-x tour: a 64-bit guest under a small sample VMM written with `vmx.Vmm`.

The guest talks to a serial port the VMM emulates on I/O exits (a 16550's THR and LSR at
3F8H), asks CPUID for its hypervisor, reads an MSR the VMM virtualizes and writes one it lets
through (MSR bitmaps), sets a CR4 bit the VMM owns (guest/host mask), and halts (HLT exiting:
the VMM stops). Each of those is one `Step`: the guest's code, the controls it needs, and any
handler beyond the sample VMM's own methods. Adding a step is adding it to STEPS: the EPT
step (an EPT violation the VMM resolves lazily, hvsim.scenarios.tour_ept) waits there for the
`ept` package.
"""
from __future__ import annotations

from typing import Callable, Mapping

import attrs

import vmx
from vmx import ExitReason as R, Field as F, ProcBased as Proc
from vmx.qualification import CrAccessType, Gpr, IoDirection
from x86.msr import Msr

from hvsim.scenarios import bench
from hvsim.scenarios.uart import COM1, LSR, Uart16550

NAME = "tour"
DESCRIPTION = ("a 64-bit guest under a sample VMM: serial port I/O, CPUID, MSRs through bitmaps, "
               "a CR4 write through the guest/host mask, HLT")

HYPERVISOR_LEAF = 0x40000000
HYPERVISOR_VENDOR = b"hvsim-sample"         # 12 bytes: EBX, ECX, EDX
FEATURE_CONTROL_LOCKED = 1                  # what the guest reads: locked, VMX not enabled
CR4_PGE, CR4_VMXE = 1 << 7, 1 << 13


@attrs.frozen
class Step:
    """One thing the tour shows: guest code (run in order), data, the VM-execution controls it
    needs (VmcsBuilder.controls keywords), a setup after the VMCS is written (bitmaps, masks),
    and handlers for exits the sample VMM has no method for."""
    name: str
    guest: str
    data: str = ""
    controls: Mapping[str, int] = attrs.field(factory=dict)
    setup: Callable | None = None
    handlers: Mapping[R, Callable] = attrs.field(factory=dict)


def _serial_setup(vmm) -> None:
    for port in range(COM1, COM1 + 8):                 # only the UART's ports exit
        bench.set_bit(vmm.machine, bench.IO_BITMAP_A, port)


def _msr_setup(vmm) -> None:
    m = vmm.machine
    bench.set_bit(m, bench.MSR_BITMAP, Msr.IA32_FEATURE_CONTROL)                 # read, low MSRs
    bench.set_bit(m, bench.MSR_BITMAP + 3072, Msr.IA32_LSTAR & 0x1FFF)           # write, high MSRs


def _cr_setup(vmm) -> None:
    cpu = vmm.cpu
    cpu.vmwrite(F.CR4_GUEST_HOST_MASK, CR4_PGE | CR4_VMXE)     # the VMM owns PGE and VMXE ...
    cpu.vmwrite(F.CR4_READ_SHADOW, cpu.vmread(F.GUEST_CR4) & ~(CR4_PGE | CR4_VMXE))   # ... both 0


SERIAL = Step("serial", guest="""
    lea rsi, [rip + msg_hello]
    call puts
""", data="""
msg_hello:  .asciz "guest: hello from VMX non-root operation\\n"
""", controls={"proc": Proc.USE_IO_BITMAPS}, setup=_serial_setup)

CPUID = Step("cpuid", guest=f"""
    xor eax, eax                        # leaf 0: the processor's vendor
    cpuid
    mov [rip + vendor], ebx
    mov [rip + vendor + 4], edx
    mov [rip + vendor + 8], ecx
    mov eax, {HYPERVISOR_LEAF:#x}       # the hypervisor's leaf
    cpuid
    mov [rip + hypervisor], ebx
    mov [rip + hypervisor + 4], ecx
    mov [rip + hypervisor + 8], edx
    lea rsi, [rip + msg_cpuid]
    call puts
""", data="""
msg_cpuid:  .ascii "guest: CPU "
vendor:     .ascii "............"
            .ascii " under hypervisor "
hypervisor: .asciz "............\\n"
""")

MSRS = Step("msr", guest=f"""
    mov ecx, {int(Msr.IA32_FEATURE_CONTROL):#x}   # read: the VMM hides VMX (MSR bitmap, read bit)
    rdmsr
    lea rsi, [rip + msg_fc]
    call puts
    call puthex
    mov ecx, {int(Msr.IA32_LSTAR):#x}        # write: the VMM sees it (write bit); read: no exit
    lea rax, [rip + syscall_entry]
    mov rdx, rax
    shr rdx, 32
    wrmsr
    rdmsr
    shl rdx, 32
    or rax, rdx
    lea rsi, [rip + msg_lstar]
    call puts
    call puthex
""", data="""
msg_fc:     .asciz "guest: IA32_FEATURE_CONTROL = "
msg_lstar:  .asciz "guest: IA32_LSTAR = "
""", controls={"proc": Proc.USE_MSR_BITMAPS}, setup=_msr_setup)

CR4 = Step("cr4", guest=f"""
    mov rax, cr4                        # the VMM's bits read as the shadow says
    or eax, {CR4_PGE:#x}                # set PGE: the VMM owns it, so this MOV exits
    mov cr4, rax
    mov rax, cr4
    lea rsi, [rip + msg_cr4]
    call puts
    call puthex
""", data="""
msg_cr4:    .asciz "guest: CR4 = "
""", setup=_cr_setup)

HALT = Step("hlt", guest="""
    lea rsi, [rip + msg_bye]
    call puts
    hlt                                 # HLT exiting: the VMM stops here
""", data="""
msg_bye:    .asciz "guest: halting\\n"
""", controls={"proc": Proc.HLT_EXITING})

from hvsim.scenarios.tour_ept import EPT  # noqa: E402  (it builds on Step, above)

STEPS = (SERIAL, CPUID, MSRS, CR4, EPT, HALT)

LIBRARY = f"""
puts:                                   # rsi: a NUL-terminated string, to the UART
    push rax
    push rdx
1:  lodsb
    test al, al
    jz 3f
    mov ah, al
    mov dx, {COM1 + LSR:#x}
2:  in al, dx                           # poll LSR until THRE
    test al, 0x20
    jz 2b
    mov al, ah
    mov dx, {COM1:#x}
    out dx, al                          # THR
    jmp 1b
3:  pop rdx
    pop rax
    ret

puthex:                                 # rax as 0x and 16 hex digits, then a new line
    push rbx
    push rcx
    push rsi
    mov rbx, rax
    lea rsi, [rip + hexdigits]
    mov ecx, 16
1:  rol rbx, 4
    mov al, bl
    and al, 0xF
    add al, '0'
    cmp al, '9'
    jbe 2f
    add al, 'a' - '0' - 10
2:  mov [rsi], al
    inc rsi
    loop 1b
    lea rsi, [rip + hexbuf]
    call puts
    pop rsi
    pop rcx
    pop rbx
    ret

syscall_entry:                          # where IA32_LSTAR points (never reached)
    hlt
"""


def guest_source(steps=STEPS) -> str:
    """The guest program: each step's code in order, the library, then the data page."""
    data = "".join(s.data for s in steps)
    return ("".join(s.guest for s in steps) + LIBRARY
            + "\n    .balign 4096\n" + data + 'hexbuf: .ascii "0x"\nhexdigits: .asciz "................\\n"\n')


class TourVmm(vmx.Vmm):
    """The sample VMM: one method per exit reason it handles."""

    def __init__(self, machine, steps=STEPS):
        super().__init__(machine)
        self.uart = Uart16550()
        self.notes: list[str] = []      # what the VMM noticed, in order
        self.handlers = {reason: fn for step in steps for reason, fn in step.handlers.items()}

    @property
    def console_text(self) -> str:
        return self.uart.text

    def _gpr(self, number: int) -> int:
        return self.cpu.vmread(F.GUEST_RSP) if number == Gpr.RSP else getattr(self.cpu, Gpr(number).name.lower())

    def on_io_instruction(self, ex):
        q = ex.qualification
        if q.string or not self.uart.claims(q.port):
            return self.on_exit(ex)
        mask = (1 << 8 * q.size) - 1
        if q.direction == IoDirection.IN:
            self.cpu.rax = self.cpu.rax & ~mask | self.uart.read(q.port) & mask
        else:
            self.uart.write(q.port, self.cpu.rax & mask)
        return self.NEXT

    def on_cpuid(self, ex):
        cpu = self.cpu
        leaf, subleaf = cpu.rax & 0xFFFFFFFF, cpu.rcx & 0xFFFFFFFF
        if leaf == HYPERVISOR_LEAF:
            v = HYPERVISOR_VENDOR
            regs = (HYPERVISOR_LEAF, *(int.from_bytes(v[i:i + 4], "little") for i in (0, 4, 8)))
        else:
            regs = list(cpu.cpuid_table.query(leaf, subleaf, cpu.vmread(F.GUEST_CR4)))
            if leaf == 1:
                regs[2] |= 1 << 31              # CPUID.1:ECX[31]: a hypervisor is present
        cpu.rax, cpu.rbx, cpu.rcx, cpu.rdx = regs
        return self.NEXT

    def on_msr_read(self, ex):
        cpu = self.cpu
        index = cpu.rcx & 0xFFFFFFFF
        value = FEATURE_CONTROL_LOCKED if index == Msr.IA32_FEATURE_CONTROL else cpu.rdmsr(index)
        cpu.rax, cpu.rdx = value & 0xFFFFFFFF, value >> 32
        return self.NEXT

    def on_msr_write(self, ex):
        cpu = self.cpu
        index, value = cpu.rcx & 0xFFFFFFFF, (cpu.rdx & 0xFFFFFFFF) << 32 | cpu.rax & 0xFFFFFFFF
        self.notes.append(f"WRMSR {index:#x} <- {value:#x}")
        cpu.wrmsr(index, value)                 # not switched by VM entry/exit: the guest's own
        return self.NEXT

    def on_cr_access(self, ex):
        q, cpu = ex.qualification, self.cpu
        if q.cr != 4 or q.access_type != CrAccessType.MOV_TO_CR:
            return self.on_exit(ex)
        value = self._gpr(q.gpr)
        self.notes.append(f"MOV CR4 <- {value:#x}")
        cpu.vmwrite(F.CR4_READ_SHADOW, value)   # what the guest believes ...
        cpu.vmwrite(F.GUEST_CR4, value | CR4_VMXE)   # ... and what it runs with (VMXE is fixed)
        return self.NEXT

    def on_hlt(self, ex):
        return self.STOP

    def on_exit(self, ex):
        handler = self.handlers.get(ex.reason)
        return handler(self, ex) if handler else super().on_exit(ex)


def build(steps=STEPS, profile: str = "default"):
    m = bench.vmx_machine(profile)
    bench.load_guest(m, guest_source(steps))
    builder = vmx.VmcsBuilder(m.cpu)
    for step in steps:
        builder.controls(**step.controls)
    builder.write(guest_rip=bench.GUEST_CODE, guest_rsp=bench.GUEST_STACK)
    m.cpu.vmwrite(F.IO_BITMAP_A, bench.IO_BITMAP_A)
    m.cpu.vmwrite(F.IO_BITMAP_B, bench.IO_BITMAP_B)
    m.cpu.vmwrite(F.MSR_BITMAP, bench.MSR_BITMAP)
    vmm = TourVmm(m, steps)
    for step in steps:
        if step.setup:
            step.setup(vmm)
    return m, vmm
