"""Scenarios: what `hvsim demo` runs and `hvsim debug` steps through.

A scenario is a Python module (a bundled name, or any `.py` file) that builds a machine, its
guest and the VMM that runs it:

    NAME = "my-vmm"                       # optional: the file's stem otherwise
    DESCRIPTION = "one line"              # optional: the docstring's first line otherwise

    def build():
        m = vmx.Machine(...)              # VMX on, a current VMCS written, the guest loaded
        return m, MyVmm(m)                # MyVmm: a vmx.Vmm (or None for a bare-metal guest)

    def run(vmm, launch=True):            # optional: vmm.run(launch=launch) otherwise
        return vmm.run(launch=launch)

The VMM is entered with `run(vmm, launch=True)`. Reverse stepping in the debugger re-enters it
at a checkpoint with `run(vmm, launch=False)` (the VMRESUME that follows an exit), after
restoring the machine and a deep copy of the VMM's attributes: a VMM's state must live in its
attributes, which `vmx.Vmm.run` already assumes.

A VMM that emulates a console exposes its output as `console_text`; the guest's writes to the
debug port 0xE9 are in `machine.console`.
"""
from __future__ import annotations

import importlib
import importlib.util
import pathlib
from types import ModuleType
from typing import Callable

import attrs

# bundled name -> module (hvsim.scenarios); the first is the default of `hvsim demo`
BUNDLED = {
    "tour": "hvsim.scenarios.tour",
    "entry-failure": "hvsim.scenarios.entry_failure",
    "vmfail": "hvsim.scenarios.vmfail",
    "bare-metal": "hvsim.scenarios.bare_metal",
}
DEFAULT = "tour"


class ScenarioError(Exception):
    """A scenario that cannot be found or does not follow the protocol."""


@attrs.frozen
class Scenario:
    """A loaded scenario: `build()` makes a fresh (machine, vmm) each time it is called."""
    name: str
    description: str
    module: ModuleType = attrs.field(repr=False)

    def build(self):
        built = self.module.build()
        if not (isinstance(built, tuple) and len(built) == 2):
            raise ScenarioError(f"scenario {self.name!r}: build() must return (machine, vmm)")
        return built

    @property
    def runner(self) -> Callable:
        """`run(vmm, launch)`: the module's own, or `vmm.run(launch=launch)`."""
        return getattr(self.module, "run", None) or (lambda vmm, launch=True: vmm.run(launch=launch))


def _from_module(module: ModuleType, default_name: str) -> Scenario:
    if not callable(getattr(module, "build", None)):
        raise ScenarioError(f"{module.__name__}: a scenario module defines build() -> (machine, vmm)")
    doc = (module.__doc__ or "").strip().splitlines()
    return Scenario(getattr(module, "NAME", default_name),
                    getattr(module, "DESCRIPTION", doc[0] if doc else ""), module)


def load(spec: str) -> Scenario:
    """A bundled scenario by name, or a scenario file by path."""
    if spec in BUNDLED:
        return _from_module(importlib.import_module(BUNDLED[spec]), spec)
    path = pathlib.Path(spec)
    if path.suffix == ".py" and path.is_file():
        mod_spec = importlib.util.spec_from_file_location(f"hvsim_scenario_{path.stem}", path)
        module = importlib.util.module_from_spec(mod_spec)
        mod_spec.loader.exec_module(module)
        return _from_module(module, path.stem)
    raise ScenarioError(f"no scenario {spec!r}: bundled ones are {', '.join(BUNDLED)}; "
                        "or give the path of a .py file that defines build()")


def bundled() -> list[Scenario]:
    return [load(name) for name in BUNDLED]
