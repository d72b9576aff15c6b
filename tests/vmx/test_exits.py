"""VM exits caused by guest instructions and events (SDM Vol. 3C 26.1, 26.2) with their exit
information (28.2), from real guest code."""
import pytest

import vmx
from vmx import ExitReason as R, Field as F, ProcBased as P, PinBased as Pin, SecondaryProcBased as S
from guest import GUEST_CODE, IO_BITMAP_A, IO_BITMAP_B, MSR_BITMAP, vm


def launch(m):
    return m.cpu.vmlaunch()


@pytest.mark.parametrize("source,reason,length", [
    ("cpuid", R.CPUID, 2), ("invd", R.INVD, 2), ("xsetbv", R.XSETBV, 3), ("vmcall", R.VMCALL, 3),
    ("vmxoff", R.VMOFF, 3), ("vmlaunch", R.VMLAUNCH, 3), ("vmresume", R.VMRESUME, 3),
    ("vmptrst [rax]", R.VMPTRST, 3), ("vmread rax, rbx", R.VMREAD, 3),
])
def test_unconditional_exits(source, reason, length):
    """26.1.2: CPUID, INVD, XSETBV and the VMX instructions cause VM exits unconditionally in
    VMX non-root operation; the exit reports the instruction's length and leaves RIP at it."""
    m = vm(source + "\nhlt")
    m.cpu.vmwrite(F.GUEST_CR4, m.cpu.vmread(F.GUEST_CR4) | 1 << 18)   # OSXSAVE, or XSETBV is #UD
    ex = launch(m)
    assert ex.reason == reason and not ex.entry_failure
    assert ex.instruction_length == length
    assert m.cpu.vmread(F.GUEST_RIP) == GUEST_CODE


@pytest.mark.parametrize("source,control,reason", [
    ("hlt", P.HLT_EXITING, R.HLT), ("rdtsc", P.RDTSC_EXITING, R.RDTSC),
    ("rdpmc", P.RDPMC_EXITING, R.RDPMC), ("pause", P.PAUSE_EXITING, R.PAUSE_INSTRUCTION),
    ("mwait", P.MWAIT_EXITING, R.MWAIT_INSTRUCTION), ("monitor", P.MONITOR_EXITING, R.MONITOR_INSTRUCTION),
])
def test_primary_control_exits(source, control, reason):
    """26.1.3: these instructions exit exactly when their primary processor-based control is 1."""
    m = vm(source + "\nvmcall", proc=control)
    assert launch(m).reason == reason
    m = vm(source + "\nvmcall" if source != "hlt" else "vmcall")
    assert launch(m).reason != reason              # RDPMC without exiting is #GP: no counters


def test_invlpg_exit_qualification_is_the_linear_address():
    """28.2.1: for INVLPG the exit qualification is the linear-address operand."""
    m = vm("mov rax, 0x12345000\ninvlpg [rax + 0x10]", proc=P.INVLPG_EXITING)
    ex = launch(m)
    assert ex.reason == R.INVLPG and int(ex.qualification) == 0x12345010


@pytest.mark.parametrize("source,control,reason", [
    ("wbinvd", S.WBINVD_EXITING, R.WBINVD), ("rdrand eax", S.RDRAND_EXITING, R.RDRAND),
    ("rdseed eax", S.RDSEED_EXITING, R.RDSEED), ("sgdt [rsp - 16]", S.DESC, R.GDTR_IDTR),
    ("str ax", S.DESC, R.LDTR_TR),
])
def test_secondary_control_exits(source, control, reason):
    """26.1.3: exits gated by secondary processor-based controls (with "activate secondary
    controls")."""
    assert launch(vm(source + "\nvmcall", secondary=control)).reason == reason


def test_io_unconditional_exit_and_qualification():
    """Table 28-5: size-1, direction (1 = IN), string, REP, immediate operand, port."""
    m = vm("in al, 0x60", proc=P.UNCOND_IO_EXITING)
    ex = launch(m)
    assert ex.reason == R.IO_INSTRUCTION
    q = ex.qualification
    assert (q.size, q.port, int(q) & 0x78) == (1, 0x60, (1 << 3) | (1 << 6))


def test_rep_outs_qualification_and_linear_address():
    m = vm("mov dx, 0x3f8\nmov rsi, 0x300000\nmov ecx, 4\nrep outsd", proc=P.UNCOND_IO_EXITING)
    ex = launch(m)
    q = ex.qualification
    assert (q.size, q.port, q.string, q.rep) == (4, 0x3F8, True, True)
    assert ex.guest_linear_address == 0x300000


@pytest.mark.parametrize("port,size,exits", [(0x60, 1, True), (0x61, 1, False), (0x8001, 2, True),
                                             (0x7FFF, 2, True), (0xFFFF, 2, True)])
def test_io_bitmaps(port, size, exits):
    """25.6.4: with "use I/O bitmaps" an access exits if the bit of any port it touches is 1 in
    bitmap A (0000H-7FFFH) or B (8000H-FFFFH), or if it wraps around the 16-bit port space."""
    reg = {1: "al", 2: "ax"}[size]
    m = vm(f"mov dx, {port}\nin {reg}, dx\nvmcall", proc=P.USE_IO_BITMAPS)
    m.memory.write_u8(IO_BITMAP_A + (0x60 >> 3), 1 << (0x60 & 7))
    m.memory.write_u8(IO_BITMAP_B, 0b11)            # ports 8000H (the second byte of 7FFFH), 8001H
    m.cpu.vmwrite(F.IO_BITMAP_A, IO_BITMAP_A)
    m.cpu.vmwrite(F.IO_BITMAP_B, IO_BITMAP_B)
    assert (launch(m).reason == R.IO_INSTRUCTION) == exits


@pytest.mark.parametrize("index,write,exits", [(0x10, False, True), (0x10, True, False),
                                               (0xC0000080, True, True), (0xC0000080, False, False),
                                               (0x40000000, False, True)])
def test_msr_bitmaps(index, write, exits):
    """25.6.9: the MSR bitmap's four 1-KByte parts (read low, read high, write low, write high);
    MSRs outside 00000000H-00001FFFH and C0000000H-C0001FFFH always exit."""
    insn = "wrmsr" if write else "rdmsr"
    m = vm(f"mov ecx, {index}\nxor eax, eax\nxor edx, edx\n{insn}\nvmcall", proc=P.USE_MSR_BITMAPS)
    m.memory.write_u8(MSR_BITMAP + (0x10 >> 3), 1 << (0x10 & 7))                 # read low: TSC
    m.memory.write_u8(MSR_BITMAP + 3072 + (0x80 >> 3), 1 << (0x80 & 7))          # write high: EFER
    m.cpu.vmwrite(F.MSR_BITMAP, MSR_BITMAP)
    ex = launch(m)
    assert (ex.reason in (R.MSR_READ, R.MSR_WRITE)) == exits


def test_cr0_write_exits_only_when_an_owned_bit_differs_from_the_shadow():
    """26.1.3: MOV to CR0 exits if it would set a bit set in the guest/host mask to a value
    different from the read shadow; reads return the shadow for owned bits (25.6.6)."""
    m = vm("mov rax, cr0\nmov rbx, rax\nmov cr0, rax\nbtr rax, 16\nmov cr0, rax\nvmcall")
    cr0 = m.cpu.vmread(F.GUEST_CR0)
    m.cpu.vmwrite(F.CR0_GUEST_HOST_MASK, 1 << 16)
    m.cpu.vmwrite(F.CR0_READ_SHADOW, cr0)
    ex = launch(m)
    assert ex.reason == R.CR_ACCESS
    q = ex.qualification
    assert (q.cr, int(q.access_type), int(q.gpr)) == (0, 0, 0)
    assert m.cpu.rbx == cr0


def test_cr3_targets_avoid_exits():
    """26.1.3: with "CR3-load exiting", MOV to CR3 exits unless the value is one of the first
    CR3-target-count CR3-target values."""
    m = vm("mov rax, cr3\nmov cr3, rax\nvmcall", proc=P.CR3_LOAD_EXITING)
    cr3 = m.cpu.vmread(F.GUEST_CR3)
    m.cpu.vmwrite(F.CR3_TARGET_VALUE0, cr3)
    m.cpu.vmwrite(F.CR3_TARGET_COUNT, 1)
    assert launch(m).reason == R.VMCALL
    m = vm("mov rax, cr3\nmov cr3, rax\nvmcall", proc=P.CR3_LOAD_EXITING)
    ex = launch(m)
    assert ex.reason == R.CR_ACCESS and ex.qualification.cr == 3


def test_exception_bitmap_ud():
    """25.6.3: an exception whose bit is set in the exception bitmap causes a VM exit with the
    vector and type in the VM-exit interruption information (28.2.2)."""
    m = vm("ud2")
    m.cpu.vmwrite(F.EXCEPTION_BITMAP, 1 << 6)
    ex = launch(m)
    assert ex.reason == R.EXCEPTION_NMI
    assert (ex.interruption_info.vector, int(ex.interruption_info.type)) == (6, 3)
    assert ex.interruption_info.valid and not ex.interruption_info.error_code_valid


@pytest.mark.parametrize("bit14,mask,match,exits", [(1, 0, 0, True), (0, 0, 0, False),
                                                    (1, 2, 2, True), (1, 2, 0, False), (0, 2, 0, True)])
def test_page_fault_mask_and_match(bit14, mask, match, exits):
    """25.6.3: a #PF exits iff bit 14 of the exception bitmap equals ((error & MASK) == MATCH);
    the qualification is the faulting linear address and CR2 is not written (28.2.1)."""
    m = vm("mov rax, 0x8000001000\nmov qword ptr [rax], 1\nvmcall")
    m.cpu.vmwrite(F.EXCEPTION_BITMAP, bit14 << 14)
    m.cpu.vmwrite(F.PAGE_FAULT_ERROR_CODE_MASK, mask)
    m.cpu.vmwrite(F.PAGE_FAULT_ERROR_CODE_MATCH, match)
    cr2 = m.cpu.cr2
    if exits:
        ex = launch(m)
        assert ex.reason == R.EXCEPTION_NMI and ex.interruption_info.vector == 14
        assert int(ex.qualification) == 0x8000001000 and ex.interruption_error_code == 2
        assert m.cpu.cr2 == cr2
    else:                                           # delivered: the guest's empty IDT triple-faults
        assert launch(m).reason == R.TRIPLE_FAULT


def test_triple_fault_exits():
    """26.2: a triple fault in VMX non-root operation causes a VM exit (reason 2)."""
    m = vm("mov rax, 0x8000001000\nmov qword ptr [rax], 1")
    m.cpu.vmwrite(F.GUEST_IDTR_LIMIT, 0)
    assert launch(m).reason == R.TRIPLE_FAULT


def test_external_interrupt_exit_with_acknowledge():
    """26.2, 28.2.2: with "external-interrupt exiting" an interrupt causes a VM exit; with
    "acknowledge interrupt on exit" its vector is in the interruption information."""
    m = vm("sti\n1: jmp 1b", pin=Pin.EXT_INTR_MASK, exit=vmx.ExitControls.ACK_INTR_ON_EXIT)
    m.raise_interrupt(0x41)
    ex = launch(m)
    assert ex.reason == R.EXTERNAL_INTERRUPT and ex.interruption_info.vector == 0x41


def test_vm_exit_loads_host_state():
    """28.5: after a VM exit the processor has the host's CR3, RSP, RIP, segments; the guest's
    GPRs other than RSP/RIP stay (API.md)."""
    m = vm("mov rbx, 0x1234\nmov rsp, 0x170000\nvmcall")
    m.cpu.vmwrite(F.HOST_RSP, 0x90000)
    m.cpu.vmwrite(F.HOST_RIP, 0x4242)
    launch(m)
    assert (m.cpu.rsp, m.cpu.rip, m.cpu.rbx) == (0x90000, 0x4242, 0x1234)
    assert m.cpu.vmread(F.GUEST_RSP) == 0x170000
    assert m.cpu.segment("cs").selector == m.cpu.vmread(F.HOST_CS_SELECTOR)


def test_vmlaunch_twice_is_error_4_and_vmresume_first_is_error_5():
    """31.3 VMLAUNCH: a launched VMCS is VMfailValid(4); VMRESUME of a clear one VMfailValid(5)."""
    m = vm("vmcall")
    with pytest.raises(vmx.VmFailValid) as e:
        m.cpu.vmresume()
    assert e.value.error == 5
    launch(m)
    with pytest.raises(vmx.VmFailValid) as e:
        m.cpu.vmlaunch()
    assert e.value.error == 4


def test_vmm_base_class_dispatches_by_reason():
    m = vm("cpuid\nmov dx, 0x80\nout dx, al\nvmcall", proc=P.UNCOND_IO_EXITING)
    seen = []

    class Monitor(vmx.Vmm):
        def on_cpuid(self, ex):
            seen.append("cpuid")
            return self.NEXT

        def on_io_instruction(self, ex):
            seen.append(ex.qualification.port)
            return self.NEXT

        def on_vmcall(self, ex):
            return self.STOP

    last = Monitor(m).run()
    assert seen == ["cpuid", 0x80] and last.reason == R.VMCALL


def test_unhandled_exit_is_reported():
    m = vm("cpuid")
    with pytest.raises(vmx.UnhandledExit, match="CPUID"):
        vmx.Vmm(m).run()


def test_control_check_failure_is_vmfail_valid_7_naming_the_field():
    """27.2.1: a VM-execution control field with a bit its capability MSR does not allow makes
    VMLAUNCH fail with VMfailValid(7); `.check` names the field, its value and the rule."""
    m = vm("vmcall")
    m.cpu.vmwrite(F.PIN_BASED_VM_EXEC_CONTROL, 0)
    with pytest.raises(vmx.VmFailValid) as e:
        m.cpu.vmlaunch()
    assert e.value.error == 7
    assert "PIN_BASED_VM_EXEC_CONTROL" in e.value.check.rule and "27.2.1" in e.value.check.section
    assert m.cpu.vmread(F.VM_INSTRUCTION_ERROR) == 7


def test_host_check_failure_is_vmfail_valid_8():
    """27.2.3: the host TR selector must not be 0000H: VMfailValid(8)."""
    m = vm("vmcall")
    m.cpu.vmwrite(F.HOST_TR_SELECTOR, 0)
    with pytest.raises(vmx.VmFailValid) as e:
        m.cpu.vmlaunch()
    assert e.value.error == 8 and "HOST_TR_SELECTOR" in e.value.check.rule


def test_guest_check_failure_is_an_entry_failure_exit_33():
    """27.3.1.4: RFLAGS bit 1 must be 1; a failed guest-state check is a VM exit with basic
    reason 33 and bit 31 set (27.8), the host state loaded, the check named."""
    m = vm("vmcall")
    m.cpu.vmwrite(F.GUEST_RFLAGS, 0)
    m.cpu.vmwrite(F.HOST_RIP, 0x5555)
    ex = m.cpu.vmlaunch()
    assert ex.entry_failure and ex.reason == R.INVALID_STATE and int(ex.qualification) == 0
    assert m.cpu.vmread(F.VM_EXIT_REASON) == 0x80000021
    assert "GUEST_RFLAGS" in ex.explain()
    assert m.cpu.rip == 0x5555
    with pytest.raises(vmx.VmFailValid) as e:        # the VMCS was not launched
        m.cpu.vmresume()
    assert e.value.error == 5


def test_msr_load_failure_is_exit_34_with_the_entry_number():
    """27.4: a VM-entry MSR-load entry that cannot be loaded makes a VM exit with reason 34 and
    the 1-based entry number as qualification."""
    m = vm("vmcall")
    m.memory.write_u32(0x30000, 0xC0000082)          # IA32_LSTAR := canonical: loads
    m.memory.write_u64(0x30008, 0xFFFF800000000000)
    m.memory.write_u32(0x30010, 0xC0000082)          # non-canonical: WRMSR would #GP
    m.memory.write_u64(0x30018, 0x0000800000000000)
    m.cpu.vmwrite(F.VM_ENTRY_MSR_LOAD_ADDR, 0x30000)
    m.cpu.vmwrite(F.VM_ENTRY_MSR_LOAD_COUNT, 2)
    ex = m.cpu.vmlaunch()
    assert ex.entry_failure and ex.reason == R.MSR_LOAD_FAIL and int(ex.qualification) == 2
