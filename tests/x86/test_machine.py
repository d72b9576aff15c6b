"""The Python face of the processor (API.md, "Machine, memory, CPU")."""
import resource

import pytest

import x86
from x86.asm import assemble

LOAD = 0x100000


def run_asm(src, mode="long", bits=64, address=LOAD, **kw):
    m = x86.Machine(memory_size=64 << 20, **kw)
    m.load(assemble(src, bits=bits, address=address), address=address, mode=mode)
    return m, m.cpu.run(max_instructions=1_000_000)


def test_memory_integer_accessors_round_trip():
    m = x86.Machine(memory_size=1 << 20)
    for bits in (8, 16, 32, 64):
        getattr(m.memory, f"write_u{bits}")(0x1000, (1 << bits) - 3)
        assert getattr(m.memory, f"read_u{bits}")(0x1000) == (1 << bits) - 3
    m.memory.write(0x2FFE, b"\x01\x02\x03\x04")        # crosses a page boundary
    assert m.memory.read(0x2FFE, 4) == b"\x01\x02\x03\x04"


def test_memory_beyond_ram_is_open_bus():
    """Reads outside RAM return all ones and writes are dropped, as on a PC; nothing crashes."""
    m = x86.Machine(memory_size=1 << 20)
    assert m.memory.read(1 << 20, 4) == b"\xff" * 4
    m.memory.write(5 << 20, b"\x00" * 16)
    assert m.memory.read_u32((1 << 20) - 2) == 0xFFFF0000


def test_sparse_memory_costs_only_touched_pages():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    m = x86.Machine(memory_size=256 << 30)                # 256 GiB of guest-physical RAM
    for gib in range(0, 256, 16):
        m.memory.write_u64(gib << 30, gib)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert (after - before) < 64 * 1024                   # KiB: far less than 64 MiB
    assert len(m.memory.touched_pages()) == 16


def test_memory_size_validation():
    with pytest.raises(ValueError, match="multiple of 4096"):
        x86.Machine(memory_size=12345)
    with pytest.raises(ValueError, match="physical address space"):
        x86.Machine(memory_size=1 << 40)


def test_registers_are_int_properties():
    m = x86.Machine(memory_size=1 << 20)
    for i, name in enumerate(x86.machine.GPRS):
        setattr(m.cpu, name, 0x1111111111111111 * (i % 15 + 1))
    assert m.cpu.r15 == 0x1111111111111111 * 1
    m.cpu.rax = -1
    assert m.cpu.rax == 0xFFFFFFFFFFFFFFFF


def test_reset_state_is_real_mode_at_fffffff0():
    """SDM Vol. 3A Table 10-1: CS.selector F000H, base FFFF0000H, EIP 0000FFF0H, CR0 60000010H."""
    cpu = x86.Machine(memory_size=1 << 20).cpu
    assert cpu.cr0 == 0x60000010 and cpu.rip == 0xFFF0
    cs = cpu.segment("cs")
    assert (cs.selector, cs.base) == (0xF000, 0xFFFF0000)
    assert cpu.rflags == 2


def test_cr_writes_check_the_architectural_rules():
    """MOV to CR0 with PG=1 and PE=0 is #GP(0) (SDM Vol. 3A 2.5)."""
    cpu = x86.Machine(memory_size=1 << 20).cpu
    with pytest.raises(x86.GP) as e:
        cpu.cr0 = 0x80000000
    assert e.value.vector == 13 and e.value.error_code == 0
    with pytest.raises(x86.GP):
        cpu.cr4 = 1 << 30                                  # reserved
    cpu.cr4 = 0x20
    assert cpu.cr4 == 0x20


def test_rdmsr_of_a_missing_msr_is_gp():
    cpu = x86.Machine(memory_size=1 << 20).cpu
    with pytest.raises(x86.Fault) as e:
        cpu.rdmsr(0x12345678)
    assert isinstance(e.value, x86.GP) and e.value.error_code == 0
    cpu.wrmsr(x86.msr.IA32_LSTAR, 0x1234)
    assert cpu.rdmsr(x86.msr.IA32_LSTAR) == 0x1234
    with pytest.raises(x86.GP):
        cpu.wrmsr(x86.msr.IA32_LSTAR, 1 << 60)             # non-canonical


def test_debug_console_and_exit_port():
    m, stop = run_asm("""
        mov dx, 0xe9
        mov al, 'h'
        out dx, al
        mov al, 'i'
        out 0xe9, al
        mov eax, 42
        mov dx, 0xf4
        out dx, eax
        hlt
    """)
    assert m.console.text == "hi"
    assert stop.reason == "exit" and stop.status == 42
    assert stop.instructions == 8


def test_hlt_with_interrupts_off_stops():
    m, stop = run_asm("mov eax, 7\nhlt")
    assert stop.reason == "hlt" and m.cpu.rax == 7
    assert stop.rip == LOAD + 6                            # after the HLT


def test_unclaimed_io_ports_read_all_ones():
    m, stop = run_asm("mov dx, 0x1234\nin eax, dx\nin al, 0x80\nhlt")
    assert m.cpu.rax == 0xFFFFFFFF


def test_max_instructions_stops_exactly():
    m, _ = run_asm("1: inc rax\njmp 1b")
    stop = m.cpu.run(max_instructions=1001)
    assert stop.reason == "max_instructions" and stop.instructions == 1001


def test_instruction_limit_bounds_runaway_guests():
    m = x86.Machine(memory_size=1 << 24, instruction_limit=5000)
    m.load(assemble("1: jmp 1b", address=LOAD), address=LOAD)
    with pytest.raises(x86.InstructionLimit):
        m.cpu.run()
    assert m.cpu.icount == 5000


def test_unmodelled_instruction_raises_unsupported_naming_it():
    m = x86.Machine(memory_size=1 << 24)
    m.load(assemble("addps xmm0, xmm1", address=LOAD), address=LOAD)
    with pytest.raises(x86.Unsupported, match="ADDPS"):
        m.cpu.run()


def test_exception_without_idt_shuts_down():
    """With an empty IDT (limit 0) every exception escalates to a triple fault (SDM 6.15)."""
    m, stop = run_asm("ud2")
    assert stop.reason == "shutdown"


def test_step_retires_one_instruction():
    m = x86.Machine(memory_size=1 << 24)
    m.load(assemble("mov eax, 1\nmov ebx, 2\nhlt", address=LOAD), address=LOAD)
    m.cpu.step()
    assert (m.cpu.rax, m.cpu.rbx, m.cpu.rip) == (1, 0, LOAD + 5)


def test_self_modifying_code_sees_the_new_bytes():
    """SDM Vol. 3A 11.6: a write to code memory is seen by the following instructions."""
    m, stop = run_asm("""
        lea rdi, [rip + target]
        mov byte ptr [rdi + 1], 99     # patch the immediate of the mov below
        target: mov al, 1
        hlt
    """)
    assert m.cpu.rax & 0xFF == 99


def test_code_rewritten_from_python_is_redecoded():
    m = x86.Machine(memory_size=1 << 24)
    m.load(assemble("mov eax, 1\nhlt", address=LOAD), address=LOAD)
    m.cpu.run()
    m.memory.write(LOAD, assemble("mov eax, 2\nhlt", address=LOAD))
    m.cpu.rip = LOAD
    m.cpu.run()
    assert m.cpu.rax == 2


@pytest.mark.parametrize("mode,bits,address", [("real", 16, 0x7C00), ("protected", 32, 0x100000),
                                               ("long", 64, 0x100000)])
def test_load_sets_up_each_mode(mode, bits, address):
    m, stop = run_asm("mov eax, 0x1234\nhlt", mode=mode, bits=bits, address=address)
    assert stop.reason == "hlt" and m.cpu.rax & 0xFFFF == 0x1234
    assert m.cpu.code_bits == bits


def test_load_rejects_bad_input_clearly():
    m = x86.Machine(memory_size=1 << 24)
    with pytest.raises(ValueError, match="mode"):
        m.load(b"\x90", mode="smm")
    with pytest.raises(ValueError, match="beyond memory_size"):
        m.load(b"\x90" * 16, address=(1 << 24) - 8)
    with pytest.raises(ValueError, match="overlaps"):
        m.load(b"\x90", address=0x1000)


def test_time_is_retired_instructions():
    """RDTSC counts retired instructions (determinism)."""
    m, stop = run_asm("nop\nnop\nrdtsc\nhlt")
    assert m.cpu.rax == 2


def test_apic_timer_wakes_hlt_deterministically():
    m = x86.Machine(memory_size=1 << 24)
    code = assemble("""
        lea rax, [rip + handler]
        mov word ptr [0x3000 + 0x40*16], ax
        mov word ptr [0x3000 + 0x40*16 + 2], 0x18
        mov word ptr [0x3000 + 0x40*16 + 4], 0x8E00
        shr rax, 16
        mov word ptr [0x3000 + 0x40*16 + 6], ax
        shr rax, 16
        mov dword ptr [0x3000 + 0x40*16 + 8], eax
        lidt [rip + idtr]
        mov edi, 0xFEE00000
        mov dword ptr [rdi + 0x3E0], 0xB     # divide by 1
        mov dword ptr [rdi + 0x320], 0x40    # one-shot, vector 0x40
        mov dword ptr [rdi + 0x380], 1000    # initial count
        sti
        hlt
        mov eax, 0xdead
        hlt
    handler:
        rdtsc
        mov ebx, eax
        mov dword ptr [rdi + 0xB0], 0
        iretq
    idtr:
        .word 0xFFF
        .quad 0x3000
    """, address=LOAD)
    m.load(code, address=LOAD)
    stop = m.cpu.run(max_instructions=10_000)
    assert m.cpu.rax == 0xDEAD
    # the timer was armed by the 13th instruction; it fires 1000 ticks later
    assert m.cpu.rbx == 12 + 1000
