"""RDTSC, RDTSCP and RDMSR of IA32_TSC in VMX non-root operation (SDM Vol. 3C 26.3, 25.6.5),
from real guest code. The TSC here is retired instructions plus halted time (plus IA32_TSC's own
offset).

26.3: "If the 'RDTSC exiting' control is 0 and the 'use TSC offsetting' control is 1, the value
returned is determined by the setting of the 'use TSC scaling' control: if the control is 0,
RDTSC loads EAX:EDX with the sum of the value of the IA32_TSC MSR and the value of the TSC
offset; if the control is 1, RDTSC first computes the product of the value of the IA32_TSC MSR
and the value of the TSC multiplier. It then shifts the value of the product right 48 bits and
loads EAX:EDX with the sum of that shifted value and the value of the TSC offset." "If the 'use
TSC offsetting' control is 0, RDTSC operates normally." RDTSCP and RDMSR of IA32_TSC likewise.
"""
import pytest

from vmx import ExitReason as R, Field as F, ProcBased as P, SecondaryProcBased as S
from guest import MSR_BITMAP, vm

U64 = (1 << 64) - 1


def guest_tsc(m) -> tuple[int, int]:
    """(what the guest read, the TSC at that instruction): the reading instruction is the one
    before the exiting VMCALL."""
    value = (m.cpu.rdx << 32) | (m.cpu.rax & 0xFFFFFFFF)
    return value, m.cpu.time - 1 + m.cpu.get_sys("tsc_offset")


def run(source, offset=None, multiplier=None, **controls):
    proc = controls.pop("proc", 0) | (P.USE_TSC_OFFSETTING if offset is not None else 0)
    secondary = controls.pop("secondary", 0) | (S.TSC_SCALING if multiplier is not None else 0)
    m = vm(source + "\nvmcall", proc=proc, secondary=secondary, **controls)
    m.cpu.vmwrite(F.TSC_OFFSET, offset or 0)
    m.cpu.vmwrite(F.TSC_MULTIPLIER, multiplier if multiplier is not None else 1 << 48)
    ex = m.cpu.vmlaunch()
    assert ex.reason == R.VMCALL
    # the guest's RAX/RDX are its own registers: read them from the processor (not saved by VMX)
    return m


READERS = ["rdtsc", "rdtscp"]


def _secondary(source):
    return S.ENABLE_RDTSCP if source == "rdtscp" else 0


@pytest.mark.parametrize("source", READERS)
def test_without_offsetting_the_tsc_is_read_unchanged(source):
    m = run(source, secondary=_secondary(source))
    m.cpu.vmwrite(F.TSC_OFFSET, 12345)
    value, tsc = guest_tsc(m)
    assert value == tsc


@pytest.mark.parametrize("source", READERS)
@pytest.mark.parametrize("offset", [1000, (1 << 40) + 7, (-500) & U64])
def test_offsetting_adds_the_tsc_offset(source, offset):
    m = run("mov rax, 3\n" + source, offset=offset, secondary=_secondary(source))
    value, tsc = guest_tsc(m)
    assert value == (tsc + offset) & U64


@pytest.mark.parametrize("multiplier,offset", [(3 << 48, 0), (1 << 47, 100), (5 << 46, 1 << 33),
                                               ((1 << 64) - 1, 0)])
def test_scaling_multiplies_then_shifts_right_48_then_offsets(multiplier, offset):
    m = run("nop\n" * 20 + "rdtsc", offset=offset, multiplier=multiplier)
    value, tsc = guest_tsc(m)
    assert value == (((tsc * multiplier) >> 48) + offset) & U64


def test_scaling_applies_only_with_offsetting():
    m = run("rdtsc", secondary=S.TSC_SCALING)
    m.cpu.vmwrite(F.TSC_MULTIPLIER, 3 << 48)
    value, tsc = guest_tsc(m)
    assert value == tsc


def test_rdmsr_of_ia32_tsc_is_offset_and_scaled():
    m = run("mov ecx, 0x10\nrdmsr", offset=77, multiplier=2 << 48, proc=P.USE_MSR_BITMAPS)
    value, tsc = guest_tsc(m)
    assert value == 2 * tsc + 77


def test_rdtsc_exiting_takes_precedence():
    m = vm("rdtsc", proc=P.RDTSC_EXITING | P.USE_TSC_OFFSETTING)
    assert m.cpu.vmlaunch().reason == R.RDTSC


def test_the_host_reads_the_unchanged_tsc_after_the_exit():
    m = run("rdtsc", offset=1 << 50)
    assert m.cpu.rdmsr(0x10) < 1 << 40
