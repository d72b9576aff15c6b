"""Every basic exit reason of Table C-1 (SDM Vol. 3C Appendix C) is either caused here by real
guest code, with its exit-information fields as 28.2 defines them for it, or listed in
`vmx.exits.NOT_MODELLED` with the reason the simulator never causes it (ARCHITECTURE.md: "a
test fails when a row has neither behaviour nor an explicit 'not modelled' mark")."""
import pytest

import vmx
from vmx import ExitReason as R, Field as F
from vmx.controls import (ExitControls as Ex, PinBased as Pin, ProcBased as Proc,
                          SecondaryProcBased as Sec)
from vmx.exits import NOT_MODELLED
from guest import GUEST_CODE, MSR_BITMAP, vm
from guest32 import task_gate, vm32


def _bad_guest_state(m):
    m.cpu.vmwrite(F.GUEST_RFLAGS, 0)            # 27.3.1.4: bit 1 must be 1


def _msr_load_fail(m):
    m.memory.write_u32(0x50000, 0x174)          # IA32_SYSENTER_CS, bits 63:32 of the entry set
    m.memory.write_u32(0x50004, 1)
    m.cpu.vmwrite(F.VM_ENTRY_MSR_LOAD_ADDR, 0x50000)
    m.cpu.vmwrite(F.VM_ENTRY_MSR_LOAD_COUNT, 1)


def _no_idt(m):
    m.cpu.vmwrite(F.GUEST_IDTR_LIMIT, 0)


def _interrupt(m):
    m.raise_interrupt(0x41)


def _msr_bitmap_read(m):
    m.memory.write_u8(MSR_BITMAP + 0x174 // 8, 1 << (0x174 % 8))     # read bitmap, low MSRs
    m.cpu.vmwrite(F.MSR_BITMAP, MSR_BITMAP)


def _osxsave(m):
    """26.1.1: XSETBV with CR4.OSXSAVE = 0 is #UD, which has priority over the VM exit."""
    m.cpu.vmwrite(F.GUEST_CR4, m.cpu.vmread(F.GUEST_CR4) | 1 << 18)


def _timer_zero(m):
    m.cpu.vmwrite(F.VMX_PREEMPTION_TIMER_VALUE, 0)


def _tpr(m):
    m.memory.write_u32(0x30080, 0x80)
    m.cpu.vmwrite(F.VIRTUAL_APIC_PAGE_ADDR, 0x30000)
    m.cpu.vmwrite(F.TPR_THRESHOLD, 4)


def _ept(perms="rwx", pml_index=None):
    """EPT identity-mapping the guest's 4 MiB, and the page at 0x600000 with `perms`."""
    def setup(m):
        import ept
        b = ept.EptBuilder(m.memory, ept.BumpAllocator(m.memory, 0x1000000, 0x1800000),
                           ad=pml_index is not None)
        b.identity(4 << 20)
        if perms:
            b.map(0x600000, 0x700000, 0x1000, perms=perms)
        m.cpu.vmwrite(F.EPT_POINTER, b.eptp)
        if pml_index is not None:
            m.cpu.vmwrite(F.PML_ADDRESS, 0x800000)
            m.cpu.vmwrite(F.GUEST_PML_INDEX, pml_index)
    return setup


def _exception_bitmap_ud(m):
    m.cpu.vmwrite(F.EXCEPTION_BITMAP, 1 << 6)


def _nmi_window(m):
    m.cpu.vmwrite(F.GUEST_INTERRUPTIBILITY_INFO, 0)


# reason: (guest source, controls, setup before VMLAUNCH)
CAUSED = {
    R.EXCEPTION_NMI: ("ud2", {}, _exception_bitmap_ud),
    R.EXTERNAL_INTERRUPT: ("sti\n1: jmp 1b", {"pin": Pin.EXT_INTR_MASK}, _interrupt),
    R.TRIPLE_FAULT: ("ud2", {}, _no_idt),
    R.INTERRUPT_WINDOW: ("nop", {"proc": Proc.INTR_WINDOW_EXITING}, lambda m: m.cpu.vmwrite(F.GUEST_RFLAGS, 0x202)),
    R.NMI_WINDOW: ("nop", {"pin": Pin.NMI_EXITING | Pin.VIRTUAL_NMIS, "proc": Proc.NMI_WINDOW_EXITING}, _nmi_window),
    R.CPUID: ("cpuid", {}, None),
    R.GETSEC: ("getsec", {}, None),
    R.HLT: ("hlt", {"proc": Proc.HLT_EXITING}, None),
    R.INVD: ("invd", {}, None),
    R.INVLPG: ("invlpg [rax]", {"proc": Proc.INVLPG_EXITING}, None),
    R.RDPMC: ("rdpmc", {"proc": Proc.RDPMC_EXITING}, None),
    R.RDTSC: ("rdtsc", {"proc": Proc.RDTSC_EXITING}, None),
    R.VMCALL: ("vmcall", {}, None),
    R.VMCLEAR: ("vmclear [rax]", {}, None),
    R.VMLAUNCH: ("vmlaunch", {}, None),
    R.VMPTRLD: ("vmptrld [rax]", {}, None),
    R.VMPTRST: ("vmptrst [rax]", {}, None),
    R.VMREAD: ("vmread rax, rbx", {}, None),
    R.VMRESUME: ("vmresume", {}, None),
    R.VMWRITE: ("vmwrite rbx, rax", {}, None),
    R.VMOFF: ("vmxoff", {}, None),
    R.VMON: ("vmxon [rax]", {}, None),
    R.CR_ACCESS: ("mov rax, cr3", {"proc": Proc.CR3_STORE_EXITING}, None),
    R.DR_ACCESS: ("mov rax, dr7", {"proc": Proc.MOV_DR_EXITING}, None),
    R.IO_INSTRUCTION: ("in al, 0x60", {"proc": Proc.UNCOND_IO_EXITING}, None),
    R.MSR_READ: ("mov ecx, 0x174\nrdmsr", {"proc": Proc.USE_MSR_BITMAPS}, _msr_bitmap_read),
    R.MSR_WRITE: ("mov ecx, 0x40000000\nwrmsr", {"proc": Proc.USE_MSR_BITMAPS}, None),
    R.INVALID_STATE: ("nop", {}, _bad_guest_state),
    R.MSR_LOAD_FAIL: ("nop", {}, _msr_load_fail),
    R.MWAIT_INSTRUCTION: ("mwait", {"proc": Proc.MWAIT_EXITING}, None),
    R.MONITOR_TRAP_FLAG: ("nop", {"proc": Proc.MONITOR_TRAP_FLAG}, None),
    R.MONITOR_INSTRUCTION: ("monitor", {"proc": Proc.MONITOR_EXITING}, None),
    R.PAUSE_INSTRUCTION: ("pause", {"proc": Proc.PAUSE_EXITING}, None),
    R.TPR_BELOW_THRESHOLD: ("xor eax, eax\nmov cr8, rax", {"proc": Proc.TPR_SHADOW}, _tpr),
    R.GDTR_IDTR: ("sgdt [rax]", {"secondary": Sec.DESC}, None),
    R.LDTR_TR: ("str eax", {"secondary": Sec.DESC}, None),
    R.INVEPT: ("invept rax, [rbx]", {}, None),
    R.RDTSCP: ("rdtscp", {"proc": Proc.RDTSC_EXITING, "secondary": Sec.ENABLE_RDTSCP}, None),
    R.PREEMPTION_TIMER: ("1: jmp 1b", {"pin": Pin.VMX_PREEMPTION_TIMER}, _timer_zero),
    R.INVVPID: ("invvpid rax, [rbx]", {}, None),
    R.WBINVD: ("wbinvd", {"secondary": Sec.WBINVD_EXITING}, None),
    R.XSETBV: ("xor ecx, ecx\nmov eax, 1\nxor edx, edx\nxsetbv", {}, _osxsave),
    R.RDRAND: ("rdrand eax", {"secondary": Sec.RDRAND_EXITING}, None),
    R.INVPCID: ("invpcid rax, [rbx]", {"proc": Proc.INVLPG_EXITING, "secondary": Sec.ENABLE_INVPCID}, None),
    R.RDSEED: ("rdseed eax", {"secondary": Sec.RDSEED_EXITING}, None),
    R.APIC_ACCESS: ("mov eax, [0x300000]", {"secondary": Sec.VIRTUALIZE_APIC_ACCESSES},
                    lambda m: m.cpu.vmwrite(F.APIC_ACCESS_ADDR, 0x300000)),
    R.EPT_VIOLATION: ("mov rax, [0x600000]", {"secondary": Sec.ENABLE_EPT}, _ept(perms="")),
    R.EPT_MISCONFIG: ("mov rax, [0x600000]", {"secondary": Sec.ENABLE_EPT}, _ept(perms="w")),
    R.VMFUNC: ("mov eax, 1\nvmfunc", {"secondary": Sec.ENABLE_EPT | Sec.ENABLE_VMFUNC}, _ept()),
    R.PML_FULL: ("mov qword ptr [0x600000], 1", {"secondary": Sec.ENABLE_EPT | Sec.ENABLE_PML},
                 _ept(pml_index=0xFFFF)),
}


def test_every_reason_is_caused_or_marked():
    for reason in vmx.ExitReason:
        if int(reason) in NOT_MODELLED:
            assert int(reason) not in {int(r) for r in CAUSED}, reason
            assert NOT_MODELLED[int(reason)]
        else:
            assert reason in CAUSED or reason == R.TASK_SWITCH, f"{reason.name}: no guest causes it here"


@pytest.mark.parametrize("reason", sorted(CAUSED, key=int), ids=lambda r: r.name)
def test_reason_is_caused_by_guest_code(reason):
    source, controls, setup = CAUSED[reason]
    m = vm(source + "\nvmcall", **controls)
    m.cpu.rax, m.cpu.rbx = 0x60000, 0x60000
    if setup:
        setup(m)
    ex = m.cpu.vmlaunch()
    assert ex.reason == reason, ex.explain()
    assert ex.entry_failure == (reason in (R.INVALID_STATE, R.MSR_LOAD_FAIL))
    assert ex.explain()


def test_task_switch_is_caused():
    """26.1.2: "Task switches" cause VM exits unconditionally (a 32-bit guest: CALL to a task
    gate; 64-bit mode has no task switching)."""
    m = vm32("call 0x28:0", gdt={0x28: task_gate(0x20)})
    ex = m.cpu.vmlaunch()
    assert ex.reason == R.TASK_SWITCH
