# Exception and interrupt delivery through the IVT or IDT (SDM Vol. 3A chapter 6, 20.1.4).
from libc.stdint cimport uint32_t, uint64_t
from x86._defs cimport *

cdef int deliver_event(Cpu* c, int vector, int kind, int has_error, uint32_t error) noexcept
cdef int deliver_event_ex(Cpu* c, int vector, int kind, int has_error, uint32_t error,
                          uint64_t restart_rip, int injected) noexcept
cdef int deliver_pending_exception(Cpu* c) noexcept
cdef int has_error_code(int vector) noexcept nogil
