from x86._defs cimport handler_t
cdef void register(handler_t* table) noexcept
