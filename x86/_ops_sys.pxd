from libc.stdint cimport uint32_t, uint64_t
from x86._defs cimport handler_t, Cpu
cdef void register(handler_t* table) noexcept
cdef int write_cr(Cpu* c, int n, uint64_t v) noexcept
cdef int read_msr(Cpu* c, uint32_t index, uint64_t* v) noexcept
cdef int write_msr(Cpu* c, uint32_t index, uint64_t v) noexcept
cdef object get_named(Cpu* c, str name)
cdef void set_named_raw(Cpu* c, str name, uint64_t v)
