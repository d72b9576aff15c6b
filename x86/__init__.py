"""x86: the simulated x86-64 processor every vendor shares (API.md, "Machine, memory, CPU").

It knows nothing of vmx or svm: sensitive instructions and events ask one intercept hook,
which those packages install.
"""
MAXPHYADDR = 39
"""Physical-address width of every processor profile (CPUID.80000008H:EAX[7:0])."""

from x86.errors import Fault, GP, InstructionLimit, PF, UD, Unsupported, vector_name  # noqa: E402
from x86.machine import Cpu, Machine, Memory, Segment, Stop  # noqa: E402
from x86 import msr  # noqa: E402

__all__ = ["Machine", "Cpu", "Memory", "Stop", "Segment", "Fault", "UD", "GP", "PF",
           "Unsupported", "InstructionLimit", "msr", "vector_name", "MAXPHYADDR"]
