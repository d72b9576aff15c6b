"""Scenarios (hvsim.scenario): bundled names and Python files, each giving (machine, vmm)."""
import pytest

import vmx
from hvsim import scenario


@pytest.mark.parametrize("name", list(scenario.BUNDLED))
def test_bundled_scenarios_build(name):
    s = scenario.load(name)
    assert s.name == name and s.description
    machine, vmm = s.build()
    assert (vmm is None) == (name == "bare-metal")
    if vmm is not None:
        assert isinstance(vmm, vmx.Vmm) and machine.cpu.vmx.current_vmcs() is not None


def test_a_scenario_file(tmp_path):
    f = tmp_path / "mine.py"
    f.write_text('"""My own scenario: CPUID then HLT."""\n'
                 "from hvsim.scenarios import bench\n"
                 "import vmx\n"
                 "def build():\n"
                 "    m = bench.vmx_machine()\n"
                 "    bench.load_guest(m, 'cpuid\\nhlt')\n"
                 "    vmx.VmcsBuilder(m.cpu).controls(proc=vmx.ProcBased.HLT_EXITING).write(bench.GUEST_CODE, bench.GUEST_STACK)\n"
                 "    return m, vmx.Vmm(m)\n")
    s = scenario.load(str(f))
    assert (s.name, s.description) == ("mine", "My own scenario: CPUID then HLT.")
    m, vmm = s.build()
    assert m.cpu.vmlaunch().reason == vmx.ExitReason.CPUID


def test_unknown_scenario_names_the_bundled_ones(tmp_path):
    with pytest.raises(scenario.ScenarioError, match="tour"):
        scenario.load("no-such-thing")
    bad = tmp_path / "bad.py"
    bad.write_text("X = 1\n")
    with pytest.raises(scenario.ScenarioError, match="build"):
        scenario.load(str(bad))
