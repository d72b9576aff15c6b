"""Exit qualifications: SDM Vol. 3C 28.2.1 "Basic VM-Exit Information" (Tables 28-1 to 28-7).

The exit qualification is one 64-bit VMCS field whose layout depends on the exit reason. Each
layout is an `int` subclass here, so a decoded qualification *is* the raw value
(`CrAccess(0x4) == 4`) and also names the SDM's fields (`.cr`, `.access_type`, `.gpr`, ...).
Instances are immutable like any int. Decoding never raises: values a processor would not store
(reserved bits set, encodings marked "not used") decode to plain numbers where no name exists.

`for_reason(reason, raw)` picks the layout for a basic exit reason.
"""
from __future__ import annotations

import enum

from x86.machine import GPRS
from vmx.exits import ExitReason

__all__ = [
    "Bits", "BitRecord", "bit_fields", "enum_or_int", "Gpr", "Qualification", "DebugException", "TaskSwitch", "TaskSwitchSource",
    "CrAccess", "CrAccessType", "LmswOperandType", "MovDr", "DrDirection", "IoInstruction",
    "IoDirection", "IoOperandEncoding", "ApicAccess", "ApicAccessType", "EptViolation",
    "LinearAddress", "InitSipi", "Displacement", "Mwait", "EoiInduced", "ApicWrite", "PmlFull",
    "LAYOUTS", "for_reason",
]

# General-purpose registers in the SDM's encoding (0 = RAX ... 15 = R15), as used by the
# exit qualifications and the instruction-information field. The order lives in x86.machine.
Gpr = enum.IntEnum("Gpr", [(name.upper(), i) for i, name in enumerate(GPRS)], module=__name__)
Gpr.__doc__ = "General-purpose register numbers as the VMX exit information encodes them."


def enum_or_int(enum_cls):
    """A converter that names a value when the enum has it and keeps the number otherwise."""
    def convert(value: int):
        try:
            return enum_cls(value)
        except ValueError:
            return value
    return convert


class Bits:
    """A named bit range `hi:lo` of an int-valued record, read as a property.

    `convert` turns the extracted number into its meaning (an enum, a bool). Declaration order
    is the order `fields()` reports."""

    def __init__(self, hi: int, lo: int | None = None, convert=None, doc: str = ""):
        self.hi = hi
        self.lo = hi if lo is None else lo
        if convert is None and self.lo == self.hi:
            convert = bool
        self.convert = convert
        self.__doc__ = doc
        self.name = ""

    def __set_name__(self, owner, name):
        self.name = name

    @property
    def mask(self) -> int:
        return ((1 << (self.hi - self.lo + 1)) - 1) << self.lo

    def extract(self, raw: int):
        value = (int(raw) >> self.lo) & ((1 << (self.hi - self.lo + 1)) - 1)
        return self.convert(value) if self.convert else value

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        return self.extract(obj)


def bit_fields(cls) -> dict[str, Bits]:
    """The `Bits` declared by a class and its bases, base fields first, in declaration order."""
    out: dict[str, Bits] = {}
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            if isinstance(value, Bits):
                out[name] = value
    return out


class BitRecord(int):
    """An architectural value made of named bit fields: equal to the raw number, with the
    fields (`Bits`) readable by name. Shared by exit qualifications, interruption information
    and instruction information."""
    __slots__ = ()
    TABLE = ""   # the SDM table that defines the layout, for the records that have one

    def __new__(cls, raw: int = 0):
        return super().__new__(cls, int(raw))

    @property
    def raw(self) -> int:
        return int(self)

    def fields(self) -> dict:
        """Field name -> decoded value, in the order of the SDM's table (low bits first)."""
        return {name: getattr(self, name) for name in bit_fields(type(self))}

    @property
    def reserved_bits(self) -> int:
        """Bits set outside every named field (a processor stores 0 or undefined values)."""
        defined = 0
        for bits in bit_fields(type(self)).values():
            defined |= bits.mask
        return int(self) & ~defined if defined else 0

    def describe(self) -> str:
        return f"{int(self):#x}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({int(self):#x})"

    __str__ = int.__repr__


class Qualification(BitRecord):
    """An exit qualification: equal to the raw 64-bit value. This base class is the layout for
    exit reasons whose qualification the SDM leaves undefined or plain."""
    __slots__ = ()

    def describe(self) -> str:
        return f"qualification {int(self):#x}"


def _gpr_name(number: int) -> str:
    return GPRS[number & 0xF]


# --- Table 28-1 "Exit Qualification for Debug Exceptions" ---------------------------------

class DebugException(Qualification):
    """A #DB that caused a VM exit (Table 28-1): which debug conditions were met."""
    __slots__ = ()
    TABLE = "Table 28-1"
    b0 = Bits(0, doc="breakpoint condition 0 met (DR0/DR7)")
    b1 = Bits(1, doc="breakpoint condition 1 met")
    b2 = Bits(2, doc="breakpoint condition 2 met")
    b3 = Bits(3, doc="breakpoint condition 3 met")
    bld = Bits(11, doc="a bus lock was asserted with OS bus-lock detection enabled")
    bd = Bits(13, doc="debug-register access detected (DR7.GD)")
    bs = Bits(14, doc="single step (RFLAGS.TF)")
    rtm = Bits(16, doc="the #DB (or #BP) occurred inside an RTM region")

    @property
    def breakpoints(self) -> tuple[int, ...]:
        return tuple(i for i in range(4) if (int(self) >> i) & 1)

    def describe(self) -> str:
        parts = [f"breakpoint condition B{i}" for i in self.breakpoints]
        for name, text in (("bld", "bus lock (BLD)"), ("bd", "debug-register access (BD)"),
                           ("bs", "single step (BS)"), ("rtm", "in an RTM region (RTM)")):
            if getattr(self, name):
                parts.append(text)
        return "debug exception: " + (", ".join(parts) if parts else "no condition bits set")


# --- Table 28-2 "Exit Qualification for Task Switch" --------------------------------------

class TaskSwitchSource(enum.IntEnum):
    CALL = 0
    IRET = 1
    JMP = 2
    TASK_GATE = 3   # a task gate in the IDT


class TaskSwitch(Qualification):
    """An attempted task switch (Table 28-2): the new TSS selector and what started it."""
    __slots__ = ()
    TABLE = "Table 28-2"
    selector = Bits(15, 0, doc="selector of the TSS to switch to")
    source = Bits(31, 30, TaskSwitchSource, doc="source of the task switch")

    def describe(self) -> str:
        how = {TaskSwitchSource.CALL: "CALL", TaskSwitchSource.IRET: "IRET",
               TaskSwitchSource.JMP: "JMP", TaskSwitchSource.TASK_GATE: "a task gate in the IDT"}
        return f"task switch to TSS selector {self.selector:#06x} by {how[self.source]}"


# --- Table 28-3 "Exit Qualification for Control-Register Accesses" ------------------------

class CrAccessType(enum.IntEnum):
    MOV_TO_CR = 0
    MOV_FROM_CR = 1
    CLTS = 2
    LMSW = 3


class LmswOperandType(enum.IntEnum):
    REGISTER = 0
    MEMORY = 1


class CrAccess(Qualification):
    """MOV to/from CR, CLTS or LMSW (Table 28-3)."""
    __slots__ = ()
    TABLE = "Table 28-3"
    cr = Bits(3, 0, doc="number of the control register (0 for CLTS and LMSW)")
    access_type = Bits(5, 4, CrAccessType, doc="0 MOV to CR, 1 MOV from CR, 2 CLTS, 3 LMSW")
    lmsw_operand_type = Bits(6, 6, LmswOperandType, doc="LMSW operand: 0 register, 1 memory")
    gpr = Bits(11, 8, Gpr, doc="for MOV CR, the general-purpose register")
    lmsw_source_data = Bits(31, 16, doc="for LMSW, the source data")

    @property
    def gpr_name(self) -> str:
        return _gpr_name(self.gpr)

    def describe(self) -> str:
        kind = self.access_type
        if kind == CrAccessType.MOV_TO_CR:
            return f"MOV to CR{self.cr} from {self.gpr_name.upper()}"
        if kind == CrAccessType.MOV_FROM_CR:
            return f"MOV from CR{self.cr} to {self.gpr_name.upper()}"
        if kind == CrAccessType.CLTS:
            return "CLTS"
        where = "memory" if self.lmsw_operand_type == LmswOperandType.MEMORY else "register"
        return f"LMSW of {self.lmsw_source_data:#06x} from a {where} operand"


# --- Table 28-4 "Exit Qualification for MOV DR" -------------------------------------------

class DrDirection(enum.IntEnum):
    MOV_TO_DR = 0
    MOV_FROM_DR = 1


class MovDr(Qualification):
    """MOV to or from a debug register (Table 28-4)."""
    __slots__ = ()
    TABLE = "Table 28-4"
    dr = Bits(2, 0, doc="number of the debug register")
    direction = Bits(4, 4, DrDirection, doc="0 MOV to DR, 1 MOV from DR")
    gpr = Bits(11, 8, Gpr, doc="the general-purpose register")

    @property
    def gpr_name(self) -> str:
        return _gpr_name(self.gpr)

    def describe(self) -> str:
        if self.direction == DrDirection.MOV_TO_DR:
            return f"MOV to DR{self.dr} from {self.gpr_name.upper()}"
        return f"MOV from DR{self.dr} to {self.gpr_name.upper()}"


# --- Table 28-5 "Exit Qualification for I/O Instructions" ---------------------------------

class IoDirection(enum.IntEnum):
    OUT = 0
    IN = 1


class IoOperandEncoding(enum.IntEnum):
    DX = 0
    IMMEDIATE = 1


_IO_SIZES = {0: 1, 1: 2, 3: 4}      # bits 2:0 -> bytes; other encodings are not used
_WIDTH_WORDS = {1: "byte", 2: "word", 4: "dword"}


class IoInstruction(Qualification):
    """IN, INS/INSB/INSW/INSD, OUT, OUTS/OUTSB/OUTSW/OUTSD (Table 28-5)."""
    __slots__ = ()
    TABLE = "Table 28-5"
    size_encoding = Bits(2, 0, doc="size of access: 0 1-byte, 1 2-byte, 3 4-byte")
    direction = Bits(3, 3, IoDirection, doc="0 OUT, 1 IN")
    string = Bits(4, doc="string instruction (INS/OUTS)")
    rep = Bits(5, doc="REP prefixed")
    operand_encoding = Bits(6, 6, IoOperandEncoding, doc="port in 0 DX, 1 an immediate")
    port = Bits(31, 16, doc="port number")

    @property
    def size(self) -> int | None:
        """Bytes accessed (1, 2 or 4); None for an encoding the SDM does not use."""
        return _IO_SIZES.get(self.size_encoding)

    def describe(self) -> str:
        op = "IN" if self.direction == IoDirection.IN else "OUT"
        if self.string:
            op += "S"
        if self.rep:
            op = "REP " + op
        width = _WIDTH_WORDS.get(self.size, f"size encoding {self.size_encoding}")
        prep = "from" if self.direction == IoDirection.IN else "to"
        src = "immediate" if self.operand_encoding == IoOperandEncoding.IMMEDIATE else "DX"
        return f"{op} {width} {prep} port {self.port:#x} ({src})"


# --- Table 28-6 "Exit Qualification for APIC-Access VM Exits from Linear Accesses and
#     Guest-Physical Accesses" ---------------------------------------------------------------

class ApicAccessType(enum.IntEnum):
    LINEAR_READ = 0                     # linear access, data read during instruction execution
    LINEAR_WRITE = 1                    # linear access, data write during instruction execution
    LINEAR_FETCH = 2                    # linear access for an instruction fetch
    LINEAR_EVENT_DELIVERY = 3           # linear access (read or write) during event delivery
    GUEST_PHYSICAL_EVENT_DELIVERY = 10  # guest-physical access during event delivery
    GUEST_PHYSICAL_INSTRUCTION = 15     # guest-physical access for a fetch or during execution


_APIC_ACCESS_TEXT = {
    ApicAccessType.LINEAR_READ: "linear data read during instruction execution",
    ApicAccessType.LINEAR_WRITE: "linear data write during instruction execution",
    ApicAccessType.LINEAR_FETCH: "linear instruction fetch",
    ApicAccessType.LINEAR_EVENT_DELIVERY: "linear access during event delivery",
    ApicAccessType.GUEST_PHYSICAL_EVENT_DELIVERY: "guest-physical access during event delivery",
    ApicAccessType.GUEST_PHYSICAL_INSTRUCTION:
        "guest-physical access for an instruction fetch or during instruction execution",
}


class ApicAccess(Qualification):
    """An access to the APIC-access page (Table 28-6)."""
    __slots__ = ()
    TABLE = "Table 28-6"
    offset = Bits(11, 0, doc="offset of the access within the APIC page (linear accesses)")
    access_type = Bits(15, 12, enum_or_int(ApicAccessType), doc="access type")
    asynchronous = Bits(16, doc="asynchronous to instruction execution, not event delivery")

    def describe(self) -> str:
        kind = _APIC_ACCESS_TEXT.get(self.access_type, f"access type {int(self.access_type)}")
        text = f"APIC access: {kind} at offset {self.offset:#05x}"
        if self.asynchronous:
            text += " (asynchronous to instruction execution)"
        return text


# --- Table 28-7 "Exit Qualification for EPT Violations" -----------------------------------

class EptViolation(Qualification):
    """A guest-physical access that the EPT paging structures disallow (Table 28-7)."""
    __slots__ = ()
    TABLE = "Table 28-7"
    read = Bits(0, doc="the access was a data read")
    write = Bits(1, doc="the access was a data write")
    fetch = Bits(2, doc="the access was an instruction fetch")
    readable = Bits(3, doc="AND of bit 0 (read) of the EPT entries: the GPA was readable")
    writable = Bits(4, doc="AND of bit 1 (write): the GPA was writable")
    executable = Bits(5, doc="AND of bit 2 (execute; supervisor execute with mode-based "
                             "execute control): the GPA was executable")
    user_executable = Bits(6, doc="AND of bit 10 (user execute) with mode-based execute "
                                  "control")
    linear_address_valid = Bits(7, doc="the guest linear-address field is valid")
    translation = Bits(8, doc="with bit 7: the access was to the translation of the linear "
                              "address (clear: to a paging-structure entry)")
    user_mode_linear = Bits(9, doc="with bit 7 and advanced information: user-mode address")
    rw_linear = Bits(10, doc="with bit 7 and advanced information: read/write address")
    nx_linear = Bits(11, doc="with bit 7 and advanced information: execute-disable address")
    nmi_unblocking = Bits(12, doc="NMI unblocking due to IRET")
    shadow_stack = Bits(13, doc="the access was a shadow-stack access")
    supervisor_shadow_stack = Bits(14, doc="the GPA was a supervisor shadow-stack page")
    guest_paging_verification = Bits(15, doc="related to guest-paging verification")
    asynchronous = Bits(16, doc="asynchronous to instruction execution")

    def describe(self) -> str:
        kinds = [name for name, on in (("read", self.read), ("write", self.write),
                                       ("instruction fetch", self.fetch)) if on]
        access = " and ".join(kinds) if kinds else "access"
        perms = ", ".join(("" if on else "not ") + name for name, on in
                          (("readable", self.readable), ("writable", self.writable),
                           ("executable", self.executable)))
        text = (f"EPT violation: {access} to a guest-physical address whose translation is "
                f"{perms}")
        if self.linear_address_valid:
            text += ("; guest linear address valid, the access was to its translation"
                     if self.translation else
                     "; guest linear address valid, the access was to a paging-structure entry")
        for name, words in (("shadow_stack", "shadow-stack access"),
                            ("supervisor_shadow_stack", "supervisor shadow-stack page"),
                            ("guest_paging_verification", "guest-paging verification"),
                            ("asynchronous", "asynchronous to instruction execution"),
                            ("nmi_unblocking", "NMI unblocking due to IRET")):
            if getattr(self, name):
                text += f"; {words}"
        return text


# --- 28.2.1: qualifications that are a single value ---------------------------------------

class LinearAddress(Qualification):
    """INVLPG (the linear-address operand) and #PF (the faulting linear address)."""
    __slots__ = ()

    @property
    def linear_address(self) -> int:
        return int(self)

    def fields(self) -> dict:
        return {"linear_address": self.linear_address}

    def describe(self) -> str:
        return f"linear address {self.linear_address:#x}"


class InitSipi(Qualification):
    """A start-up IPI in wait-for-SIPI state: bits 7:0 hold the SIPI vector."""
    __slots__ = ()
    vector = Bits(7, 0, doc="SIPI vector")

    def describe(self) -> str:
        return f"SIPI vector {self.vector:#04x} (start at {self.vector << 12:#x})"


class Displacement(Qualification):
    """INVEPT, INVPCID, INVVPID, LGDT, LIDT, LLDT, LTR, SGDT, SIDT, SLDT, STR, VMCLEAR,
    VMPTRLD, VMPTRST, VMREAD, VMWRITE, VMXON, XRSTORS, XSAVES: the memory operand's
    displacement, sign-extended to 64 bits (0 for register operands)."""
    __slots__ = ()

    @property
    def displacement(self) -> int:
        value = int(self) & ((1 << 64) - 1)
        return value - (1 << 64) if value >> 63 else value

    def fields(self) -> dict:
        return {"displacement": self.displacement}

    def describe(self) -> str:
        d = self.displacement
        return f"displacement {'-' if d < 0 else ''}{abs(d):#x}"


class Mwait(Qualification):
    """MWAIT: 1 if address-range monitoring hardware was armed, else 0."""
    __slots__ = ()
    armed = Bits(0, doc="address-range monitoring hardware armed")

    def describe(self) -> str:
        return "MWAIT with monitoring hardware " + ("armed" if self.armed else "not armed")


class EoiInduced(Qualification):
    """EOI virtualization: bits 7:0 are the vector of the virtual interrupt dismissed."""
    __slots__ = ()
    vector = Bits(7, 0, doc="vector dismissed by the virtualized EOI")

    def describe(self) -> str:
        return f"virtualized EOI of vector {self.vector:#04x}"


class ApicWrite(Qualification):
    """APIC-write VM exit: bits 11:0 are the page offset of the write."""
    __slots__ = ()
    offset = Bits(11, 0, doc="page offset of the write")

    def describe(self) -> str:
        return f"APIC write at offset {self.offset:#05x}"


class PmlFull(Qualification):
    """Page-modification log full: only bit 12 (NMI unblocking due to IRET) is defined."""
    __slots__ = ()
    nmi_unblocking = Bits(12, doc="NMI unblocking due to IRET")

    def describe(self) -> str:
        return "page-modification log full" + ("; NMI unblocking due to IRET"
                                               if self.nmi_unblocking else "")


_DISPLACEMENT_REASONS = ("INVEPT", "INVPCID", "INVVPID", "GDTR_IDTR", "LDTR_TR", "VMCLEAR",
                         "VMPTRLD", "VMPTRST", "VMREAD", "VMWRITE", "VMON", "XRSTORS", "XSAVES")

LAYOUTS: dict[int, type[Qualification]] = {
    ExitReason.TASK_SWITCH: TaskSwitch,
    ExitReason.SIPI_SIGNAL: InitSipi,
    ExitReason.INVLPG: LinearAddress,
    ExitReason.CR_ACCESS: CrAccess,
    ExitReason.DR_ACCESS: MovDr,
    ExitReason.IO_INSTRUCTION: IoInstruction,
    ExitReason.MWAIT_INSTRUCTION: Mwait,
    ExitReason.APIC_ACCESS: ApicAccess,
    ExitReason.EOI_INDUCED: EoiInduced,
    ExitReason.EPT_VIOLATION: EptViolation,
    ExitReason.APIC_WRITE: ApicWrite,
    ExitReason.PML_FULL: PmlFull,
    **{ExitReason[name]: Displacement for name in _DISPLACEMENT_REASONS},
}
"""Basic exit reason -> qualification layout. Reasons not listed get the plain base class."""

_VECTOR_DB, _VECTOR_PF = 1, 14


def for_reason(reason: int, raw: int, vector: int | None = None) -> Qualification:
    """Decode `raw` with the layout of basic exit reason `reason` (bits 15:0 are used).

    For EXCEPTION_NMI the layout depends on the exception: pass its `vector` to get the
    debug-exception layout for #DB and the faulting linear address for #PF."""
    basic = int(reason) & 0xFFFF
    if basic == ExitReason.EXCEPTION_NMI and vector is not None:
        if vector == _VECTOR_DB:
            return DebugException(raw)
        if vector == _VECTOR_PF:
            return LinearAddress(raw)
        return Qualification(raw)
    return LAYOUTS.get(basic, Qualification)(raw)

