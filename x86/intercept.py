"""The events the processor offers to an intercept hook (`Core.set_hook`) and the kinds of event
delivery, as Python constants. The numbers come from the C enums in `_defs.pxd`.

A hook's `intercept(event, a, b)` receives one of the EV_* values:
EV_EXCEPTION (a = vector, b = error code or 0xFFFFFFFF | kind << 32), EV_INSN (a = mnemonic,
b = detail), EV_IO (a = port | size << 16 | in << 24, b = value), EV_MSR (a = index, b = 1 for
WRMSR), EV_CR (a = cr | write << 8, b = value), EV_INTR (a = vector), EV_TRIPLE_FAULT, EV_NMI,
EV_HLT, and the boundary events EV_STEP, EV_DEADLINE, EV_INTR_WINDOW, EV_NMI_WINDOW.
EV_EXCEPTION's b also carries flags in bits 63:40 (EVF_IRET_NMI << 32: the exception is a fault
of an IRET that ended NMI blocking). EV_DISABLED (a = mnemonic) asks whether another layer
disables an instruction: true makes it #UD. EV_TASK_SWITCH (a = new TSS selector, b = source:
TS_CALL, TS_IRET, TS_JMP, TS_IDT) comes after the checks that precede a task switch; true makes
it an exit, false leaves it to the processor, which does not model task switching
(x86.Unsupported).

It answers false (the event proceeds as it would without a hook), EXIT (true: the event becomes
an exit; an instruction that exits does not execute and RIP stays at it), or, for an
instruction it performed itself (a virtualized access), DONE (the instruction retires) or
DONE_EXIT (it retires, then an exit with RIP after it: a trap-like exit).

EV_SLAT_FAULT: second-level translation (EPT, nested paging; `Cpu.slat` in _defs.pxd) refused a
guest-physical access. The instruction making it is aborted with no architectural effect (RIP at
the instruction); when the access belonged to the delivery of an event (IDT, GDT, TSS, stack),
`Core.delivering` still describes that event while the hook is asked and RIP is where the event
would restart; `get_sys("iret_nmi")` is 1 when it belonged to an IRET that ended NMI blocking.
It is not an exception: no double-fault rule applies. The hook answers EXIT, or
false, which (like no hook) ends the run with `x86.Unsupported` naming it. The walker that
refused the access keeps the details (for EPT: `ept.Ept.fault`).

A second-level translation written in Python (`set_slat(cpu, obj)`, here) answers
`obj.translate(gpa, acc, la, lflags)`: `acc` is ACC_R/ACC_W/ACC_X with ACC_PT (a guest
paging-structure access) and ACC_NOLA (no linear address: PAE PDPTE loading); `la` the linear
address (None with ACC_NOLA); `lflags` the guest-paging rights of `la` for a final access
(SLAT_LA_USER/WRITE/EXEC; None for paging-structure accesses). It returns the host-physical
address, (address, SLAT_R|SLAT_W|SLAT_X: the rights the TLB may cache for the page), or None to
refuse (EV_SLAT_FAULT with code 1).
"""
from x86._exec import DELIVERY_KINDS, EXCEPTION_FLAGS, INTERCEPT_EVENTS, TASK_SWITCH_SOURCES
from x86._slat import SLAT_EVENTS, SLAT_NAMES, set_slat  # noqa: F401 (set_slat: the face)

EXIT, DONE, DONE_EXIT = True, 2, 3
RAISE = 0x100        # | vector: at EV_SLAT_FAULT, deliver that exception instead (no error code)

EV_EXCEPTION = INTERCEPT_EVENTS["EXCEPTION"]
EV_INSN = INTERCEPT_EVENTS["INSN"]
EV_TRIPLE_FAULT = INTERCEPT_EVENTS["TRIPLE_FAULT"]
EV_INTR = INTERCEPT_EVENTS["INTR"]
EV_NMI = INTERCEPT_EVENTS["NMI"]
EV_IO = INTERCEPT_EVENTS["IO"]
EV_MSR = INTERCEPT_EVENTS["MSR"]
EV_CR = INTERCEPT_EVENTS["CR"]
EV_HLT = INTERCEPT_EVENTS["HLT"]
EV_STEP = INTERCEPT_EVENTS["STEP"]
EV_DEADLINE = INTERCEPT_EVENTS["DEADLINE"]
EV_INTR_WINDOW = INTERCEPT_EVENTS["INTR_WINDOW"]
EV_NMI_WINDOW = INTERCEPT_EVENTS["NMI_WINDOW"]
EV_DISABLED = INTERCEPT_EVENTS["DISABLED"]
EV_TASK_SWITCH = INTERCEPT_EVENTS["TASK_SWITCH"]
EV_SLAT_FAULT = SLAT_EVENTS["SLAT_FAULT"]

EVF_IRET_NMI = EXCEPTION_FLAGS["IRET_NMI"]

TS_CALL = TASK_SWITCH_SOURCES["CALL"]
TS_IRET = TASK_SWITCH_SOURCES["IRET"]
TS_JMP = TASK_SWITCH_SOURCES["JMP"]
TS_IDT = TASK_SWITCH_SOURCES["IDT"]

DK_EXCEPTION = DELIVERY_KINDS["EXCEPTION"]
DK_SOFT_INT = DELIVERY_KINDS["SOFT_INT"]
DK_SOFT_EXC = DELIVERY_KINDS["SOFT_EXC"]
DK_EXTERNAL = DELIVERY_KINDS["EXTERNAL"]
DK_NMI = DELIVERY_KINDS["NMI"]
DK_PRIV_SOFT = DELIVERY_KINDS["PRIV_SOFT"]

ACC_R = SLAT_NAMES["ACC_R"]
ACC_W = SLAT_NAMES["ACC_W"]
ACC_X = SLAT_NAMES["ACC_X"]
ACC_PT = SLAT_NAMES["ACC_PT"]
ACC_NOLA = SLAT_NAMES["ACC_NOLA"]
SLAT_R = SLAT_NAMES["SLAT_R"]
SLAT_W = SLAT_NAMES["SLAT_W"]
SLAT_X = SLAT_NAMES["SLAT_X"]
SLAT_LA_USER = SLAT_NAMES["SLAT_LA_USER"]
SLAT_LA_WRITE = SLAT_NAMES["SLAT_LA_WRITE"]
SLAT_LA_EXEC = SLAT_NAMES["SLAT_LA_EXEC"]
