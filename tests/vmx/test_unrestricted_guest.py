"""Unrestricted guest under EPT (SDM Vol. 3C 26.6 "Unrestricted Guests", 27.3.1 with its relaxed
checks, A.6 IA32_VMX_MISC[5]), from real guest code: a guest entered in real-address mode
(CR0.PE = PG = 0) switches itself to protected mode and then to IA-32e mode, and the VM exit
reports that it did.

26.6: "The first processors to support VMX operation require CR0.PE and CR0.PG to be 1 in VMX
operation ... the 'unrestricted guest' VM-execution control allows ... the guest [to] run in
unpaged protected mode or in real-address mode." 27.3.1.1: with it, "bit 0 (corresponding to
CR0.PE) and bit 31 (PG) are not checked" against IA32_VMX_CR0_FIXED0. A.6: "If bit 5 is read
as 1, VM exits store the value of IA32_EFER.LMA into the 'IA-32e mode guest' VM-entry control."
"""
import pytest

import ept
import vmx
from vmx import ExitReason as R, Field as F
from vmx.controls import EntryControls as En, ProcBased as Proc, SecondaryProcBased as Sec
from x86.asm import assemble
from guest import MSR_BITMAP, vm
from tests.x86.x86_guest import mode_switch_source

BASE = 0x8000

SRC = mode_switch_source("    vmcall")


def real_mode_guest(stop_after_pe=False):
    m = vm("nop", secondary=Sec.ENABLE_EPT | Sec.UNRESTRICTED_GUEST, proc=Proc.USE_MSR_BITMAPS)
    cpu, w = m.cpu, m.cpu.vmwrite
    b = ept.EptBuilder(m.memory, ept.BumpAllocator(m.memory, 0x1000000, 0x1800000))
    w(F.EPT_POINTER, b.identity(8 << 20))
    w(F.MSR_BITMAP, MSR_BITMAP)                            # all zero: RDMSR/WRMSR do not exit
    m.memory.write(BASE, assemble(SRC, bits=16, address=BASE))
    w(F.VM_ENTRY_CONTROLS, cpu.vmread(F.VM_ENTRY_CONTROLS) & ~En.IA32E_MODE)
    w(F.GUEST_CR0, 0x30)                                   # NE ET: real-address mode, no paging
    w(F.GUEST_CR4, 1 << 13)                                # VMXE
    w(F.GUEST_CR3, 0)
    for seg in ("CS", "SS", "DS", "ES", "FS", "GS"):
        w(F[f"GUEST_{seg}_SELECTOR"], 0)
        w(F[f"GUEST_{seg}_BASE"], 0)
        w(F[f"GUEST_{seg}_LIMIT"], 0xFFFF)
        w(F[f"GUEST_{seg}_AR_BYTES"], 0x9B if seg == "CS" else 0x93)
    w(F.GUEST_TR_AR_BYTES, 0x8B)
    w(F.GUEST_RIP, BASE)
    w(F.GUEST_RSP, 0x7000)
    w(F.GUEST_RFLAGS, 0x2)
    return m


def test_a_real_mode_guest_boots_itself_into_long_mode():
    m = real_mode_guest()
    ex = m.cpu.vmlaunch()
    assert ex.reason == R.VMCALL, ex.explain()
    assert m.cpu.r9 & 0x500 == 0x500                                  # LME, LMA
    assert m.cpu.vmread(F.VM_ENTRY_CONTROLS) & En.IA32E_MODE          # A.6, MISC[5]
    assert m.cpu.vmread(F.GUEST_CR0) & 0x80000001 == 0x80000001
    assert m.cpu.vmread(F.GUEST_CS_SELECTOR) == 0x18
    assert m.cpu.vmread(F.GUEST_CS_AR_BYTES) >> 13 & 1                # CS.L
    # resuming the 64-bit guest (at its VMCALL again) passes the IA-32e guest-state checks
    assert m.cpu.vmresume().reason == R.VMCALL


def test_without_unrestricted_guest_real_mode_fails_the_cr0_check():
    """27.3.1.1: without "unrestricted guest", CR0.PE and CR0.PG must be 1 (IA32_VMX_CR0_FIXED0)."""
    m = real_mode_guest()
    m.cpu.vmwrite(F.SECONDARY_VM_EXEC_CONTROL, Sec.ENABLE_EPT)
    ex = m.cpu.vmlaunch()
    assert ex.entry_failure and ex.reason == R.INVALID_STATE and "CR0" in str(ex.check)


def test_unrestricted_guest_requires_ept():
    """27.2.1.1: "If the 'unrestricted guest' VM-execution control is 1, the 'enable EPT'
    VM-execution control must also be 1"."""
    m = real_mode_guest()
    m.cpu.vmwrite(F.SECONDARY_VM_EXEC_CONTROL, Sec.UNRESTRICTED_GUEST)
    with pytest.raises(vmx.VmFailValid) as e:
        m.cpu.vmlaunch()
    assert e.value.error == 7
