# Task switching (SDM Vol. 3A 8.3): the checks that precede a switch; the switch itself is not
# modelled: it is offered to the intercept hook (EV_TASK_SWITCH), else x86.Unsupported.
from libc.stdint cimport uint16_t, uint32_t
from x86._defs cimport *

# what starts a task switch (SDM Vol. 3A 8.3)
cdef enum:
    TS_CALL = 0
    TS_IRET = 1
    TS_JMP = 2
    TS_IDT = 3       # a task gate in the IDT (an interrupt or exception)

cdef int new_tss_checks(Cpu* c, uint16_t sel, int source, uint32_t ext) noexcept
cdef int back_link(Cpu* c, uint16_t* sel) noexcept
cdef int task_switch(Cpu* c, Insn* i, uint16_t sel, int source) noexcept
