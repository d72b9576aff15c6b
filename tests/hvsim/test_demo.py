"""`hvsim demo`: the bundled scenarios run, and the summary counts what happened."""
import re
import subprocess
import sys

import pytest

from hvsim import cli


@pytest.fixture(autouse=True)
def wide(monkeypatch):
    monkeypatch.setenv("COLUMNS", "160")      # rich's width when output is not a terminal


def demo(capsys, *args):
    status = cli.main(["demo", "--plain", *args])
    return status, capsys.readouterr().out


def summary(out: str) -> dict:
    """The summary table's rows: label -> value."""
    part = out.split("summary ---")[1]
    rows = {}
    for line in part.splitlines():
        m = re.match(r"\s*(.+?)\s+\|\s+(.+?)\s*$", line)
        if m:
            rows[m.group(1)] = m.group(2)
    return rows


def test_the_tour(capsys):
    status, out = demo(capsys)
    assert status == 0
    for line in ("guest: hello from VMX non-root operation",
                 "guest: CPU GenuineIntel under hypervisor hvsim-sample",
                 "guest: IA32_FEATURE_CONTROL = 0x0000000000000001",
                 "guest: CR4 = 0x00000000000000a0", "guest: halting"):
        assert line in out
    # the streamed trace: serial I/O folded, the other exits one line each
    assert re.search(r"\b83\s+462 CPUID\s+leaf 0x0\s+0x20000e", out)
    assert re.search(r"MSR_WRITE\s+MSR 0xc0000082 IA32_LSTAR <- 0x200133", out)
    assert re.search(r"CR_ACCESS\s+MOV to CR4 from RAX\s+0x200096", out)
    # the EPT step: a write to a page EPT does not map yet; the VMM maps it and the write completes
    assert re.search(r"EPT_VIOLATION\s+EPT violation: write to a guest-physical address", out)
    assert "guest: wrote through a page the VMM mapped on demand: " in out
    assert "82 exits to #82: IN 0x3fd x41, OUT 0x3f8 x41" in out
    rows = summary(out)
    assert rows["exits: IO_INSTRUCTION"] == "606  (98.9%)"
    assert rows["exits: CPUID"] == "2  (0.3%)"
    for reason in ("MSR_READ", "MSR_WRITE", "CR_ACCESS", "EPT_VIOLATION", "HLT"):
        assert rows[f"exits: {reason}"] == "1  (0.2%)"
    assert rows["exits"] == "613"
    assert rows["guest instructions retired"] == "4,088"
    assert rows["instruction exits (emulated by the VMM)"] == "612"     # not the EPT violation
    assert rows["ran without VMM intervention"] == "87.0%"
    assert rows["simulated time (ticks: instructions + halted)"] == "4,088"
    assert rows["wall time"].endswith(" ms")


def test_every_exit_on_its_line_and_the_trace_file(capsys, tmp_path):
    status, out = demo(capsys, "--all", "--trace", str(tmp_path / "t.jsonl"))
    assert status == 0
    assert len(re.findall(r"IO_INSTRUCTION\s+(IN|OUT) byte", out)) == 606
    assert "exit trace written to" in out and (tmp_path / "t.jsonl").exists()


def test_the_list_names_every_bundled_scenario(capsys):
    status, out = demo(capsys, "--list")
    assert status == 0
    for name in ("tour", "entry-failure", "vmfail", "bare-metal"):
        assert re.search(rf"^{name}\s", out, re.M)


def test_entry_failure_and_vmfail_are_explained(capsys):
    status, out = demo(capsys, "entry-failure")
    assert status == 0
    assert "VM-entry failure (exit reason 33, INVALID_STATE, qualification 4)" in out
    assert "check: SDM Vol. 3C 27.3.1.5: VMCS_LINK_POINTER = 0x0" in out
    assert summary(out)["exits: INVALID_STATE"] == "1  (100.0%)"
    status, out = demo(capsys, "vmfail")
    assert status == 0
    assert "VM-instruction error 7 (VM entry with invalid control field(s))" in out
    assert "check: SDM Vol. 3C 27.2.1.1: PIN_BASED_VM_EXEC_CONTROL = 0x0 clears bits 1, 2, 4" in out


def test_bare_metal_and_unknown(capsys):
    status, out = demo(capsys, "bare-metal")
    assert status == 0 and "APIC timer interrupt" in out and "instructions retired" in out
    assert demo(capsys, "nothing-like-it")[0] == 2


def test_the_command_in_a_real_process():
    r = subprocess.run([sys.executable, "-m", "hvsim.cli", "demo"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "guest: halting" in r.stdout and "ran without VMM intervention" in r.stdout
