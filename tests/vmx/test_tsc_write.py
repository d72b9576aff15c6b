"""WRMSR of IA32_TIME_STAMP_COUNTER (10H) in VMX non-root operation when it does not exit (SDM
Vol. 3C 26.3, 26.1.3, 26.5.1), from real guest code.

26.1.3: WRMSR exits unless "use MSR bitmaps" is 1 and the MSR's write bit is 0. 26.3 lists the
ECX values for which an execution of WRMSR that does not exit behaves differently in VMX
non-root operation (79H, the x2APIC MSRs, ...); 10H is not among them: the write operates
normally, setting the TSC itself. "Use TSC offsetting" and "use TSC scaling" change only what
RDTSC, RDTSCP and RDMSR return (26.3): the guest then reads the value it wrote (plus the time
since) scaled and offset, and the VMM reads the TSC the guest wrote. The VMX-preemption timer
"counts down by 1 every time bit X in the TSC changes due to a TSC increment" (26.5.1): a write
is not an increment.
"""
import pytest

from vmx import ExitControls as Ex, ExitReason as R, Field as F, PinBased as Pin, ProcBased as P
from vmx import SecondaryProcBased as S
from guest import MSR_BITMAP, vm

V = 0x1234_5678_9ABC
WRITE = f"mov ecx, 0x10\nmov eax, {V & 0xFFFFFFFF}\nmov edx, {V >> 32}\nwrmsr\n"
U64 = (1 << 64) - 1


def run(source, offset=None, multiplier=None, pin=0, exit=0):
    proc = P.USE_MSR_BITMAPS | (P.USE_TSC_OFFSETTING if offset is not None else 0)
    m = vm(WRITE + source + "\nvmcall", proc=proc, secondary=S.TSC_SCALING if multiplier else 0,
           pin=pin, exit=exit)
    m.cpu.vmwrite(F.MSR_BITMAP, MSR_BITMAP)              # every bit 0: RDMSR/WRMSR do not exit
    m.cpu.vmwrite(F.TSC_OFFSET, offset or 0)
    m.cpu.vmwrite(F.TSC_MULTIPLIER, multiplier or 1 << 48)
    return m


def read(m, lo="rax", hi="rdx"):
    return (getattr(m.cpu, hi) << 32) | (getattr(m.cpu, lo) & 0xFFFFFFFF)


@pytest.mark.parametrize("offset", [None, 0, 1000, (-(1 << 40)) & U64])
def test_the_guest_writes_the_tsc_itself_and_reads_it_offset(offset):
    """RDTSC one instruction after the write reads V + 1 (+ the TSC offset); RDMSR of IA32_TSC
    five instructions after it V + 5 (+ offset); the host then reads the TSC the guest set."""
    m = run("rdtsc\nmov r8, rax\nmov r9, rdx\nmov ecx, 0x10\nrdmsr", offset=offset)
    assert m.cpu.vmlaunch().reason == R.VMCALL
    o = offset or 0
    assert read(m, "r8", "r9") == (V + 1 + o) & U64
    assert read(m) == (V + 5 + o) & U64
    assert m.cpu.rdmsr(0x10) == V + 6                    # the VMCALL did not retire


def test_scaling_applies_to_the_tsc_the_guest_wrote():
    m = run("rdtsc", offset=7, multiplier=3 << 47)      # x 1.5
    assert m.cpu.vmlaunch().reason == R.VMCALL
    assert read(m) == (((V + 1) * 3) >> 1) + 7


def test_a_write_exits_when_its_bitmap_bit_is_set():
    m = run("")
    m.memory.write_u8(MSR_BITMAP + 2048 + (0x10 >> 3), 1 << (0x10 & 7))
    ex = m.cpu.vmlaunch()
    assert ex.reason == R.MSR_WRITE and m.cpu.rdmsr(0x10) < 1 << 32


@pytest.mark.parametrize("value", [3, 10, 40])
@pytest.mark.parametrize("new", [V, 5])
def test_the_preemption_timer_counts_increments_not_the_write(value, new):
    """Ticks counted before the write are kept; the count goes on from the new TSC value, so
    the exit comes when `value` changes of bit X have happened by incrementing, a forward or
    backward jump of the TSC notwithstanding."""
    source = f"mov ecx, 0x10\nmov eax, {new & 0xFFFFFFFF}\nmov edx, {new >> 32}\nwrmsr\n2:\njmp 2b"
    m = vm(source, proc=P.USE_MSR_BITMAPS, pin=Pin.VMX_PREEMPTION_TIMER, exit=Ex.SAVE_VMX_PREEMPTION_TIMER)
    m.cpu.vmwrite(F.MSR_BITMAP, MSR_BITMAP)
    m.cpu.vmwrite(F.VMX_PREEMPTION_TIMER_VALUE, value)
    x = m.profile.msr(0x485) & 0x1F
    start_time, offset = m.cpu.time, m.cpu.get_sys("tsc_offset")
    start = start_time + offset
    written_at = start_time + 3                         # the WRMSR is the fourth instruction
    counted = ((written_at + offset) >> x) - (start >> x)
    assert m.cpu.vmlaunch().reason == R.PREEMPTION_TIMER
    expected = (((new >> x) + value - counted) << x) - (new - written_at)
    assert m.cpu.time == expected and m.cpu.vmread(F.VMX_PREEMPTION_TIMER_VALUE) == 0
    assert m.cpu.rdmsr(0x10) == new + (m.cpu.time - written_at)
