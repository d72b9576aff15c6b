"""A freestanding C program compiled with gcc (-ffreestanding -mgeneral-regs-only -nostdlib),
loaded as ELF64, prints through port 0xE9 and exits through the exit port."""
import importlib.util
import pathlib
import shutil

import pytest

import x86

HERE = pathlib.Path(__file__).parent
pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is not installed")


def _build(name):
    spec = importlib.util.spec_from_file_location("guest_build", HERE / "guests" / "build.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.build_guest(name)


def test_hello_guest_prints_and_exits_with_status_zero():
    m = x86.Machine(memory_size=64 << 20)
    m.load(_build("hello"))
    stop = m.cpu.run()
    assert m.console.text == (HERE / "guests" / "EXPECTED_OUTPUT.txt").read_text()
    assert stop.reason == "exit" and stop.status == 0


def test_same_program_same_trace():
    """Determinism: the same image retires the same number of instructions every run."""
    counts = set()
    for _ in range(2):
        m = x86.Machine(memory_size=64 << 20)
        m.load(_build("hello"))
        counts.add(m.cpu.run().instructions)
    assert len(counts) == 1


def test_generic_handlers_agree_with_specialized_ones():
    """The specialized operand-form bodies (_ops_fast) compute what the general ones do."""
    outs = []
    for generic in (False, True):
        m = x86.Machine(memory_size=64 << 20)
        m.cpu.generic_only = generic
        m.load(_build("hello"))
        stop = m.cpu.run()
        outs.append((m.console.text, stop.instructions, stop.status))
    assert outs[0] == outs[1]


def test_c_workload_runs():
    m = x86.Machine(memory_size=64 << 20)
    m.load(_build("cwork"))
    stop = m.cpu.run()
    assert stop.reason == "exit" and stop.instructions > 1_000_000
