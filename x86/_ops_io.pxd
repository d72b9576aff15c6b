from libc.stdint cimport uint16_t, uint64_t
from x86._defs cimport handler_t, Cpu, Insn
cdef void register(handler_t* table) noexcept
cdef int io_allowed(Cpu* c, uint16_t port, int size) noexcept
cdef int io_in(Cpu* c, uint16_t port, int size, uint64_t* v, Insn* i) noexcept
cdef int io_out(Cpu* c, uint16_t port, int size, uint64_t v, Insn* i) noexcept
