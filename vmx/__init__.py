"""vmx: Intel VT-x on the simulated x86-64 processor (SDM Vol. 3C chapters 24-31, Appendices A-C).

The architectural tables live in small modules, one per manual section:
  fields    VMCS field encodings (Appendix B)         -> Field, FieldInfo, field_info, FIELDS
  exits     basic exit reasons (Appendix C)           -> ExitReason
  errors    VM-instruction error numbers (31.4)       -> VmInstructionError
  controls  VM-execution/exit/entry control bits (25.6-25.8, A.2-A.5)
  profiles  capability MSRs 480H-493H of a processor (Appendix A)
"""
from vmx import controls, errors, exits, fields, profiles
from vmx.controls import (DEFAULT1, EntryControls, ExitControls, PinBased, ProcBased,
                          SecondaryExitControls, SecondaryProcBased, TertiaryProcBased, VmFunc)
from vmx.errors import VmInstructionError
from vmx.exits import ExitReason
from vmx.fields import FIELDS, Field, FieldInfo, field_info

from vmx.machine import Cpu, Machine, enable
from vmx.builder import VmcsBuilder
from vmx.vmm import UnhandledExit, Vmm
from vmx.exit_record import VmExit
from vmx import qualification, interruption, instruction_info
from vmx.transitions import GuestStuck
from vmx.outcome import Check, VmFail, VmFailInvalid, VmFailValid
from vmx.abort import VmxAbort, VmxAbortIndicator
from vmx.invalidation import InveptType, InvvpidType

__all__ = [
    "Machine", "Cpu", "enable", "VmcsBuilder", "GuestStuck", "Vmm", "UnhandledExit", "VmExit",
    "qualification", "interruption", "instruction_info", "VmFail", "VmFailInvalid", "VmFailValid", "Check",
    "VmxAbort", "VmxAbortIndicator",
    "controls", "errors", "exits", "fields", "profiles",
    "Field", "FieldInfo", "field_info", "FIELDS",
    "ExitReason", "VmInstructionError",
    "PinBased", "ProcBased", "SecondaryProcBased", "TertiaryProcBased", "ExitControls",
    "SecondaryExitControls", "EntryControls", "VmFunc", "DEFAULT1", "InveptType", "InvvpidType",
]
