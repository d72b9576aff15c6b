from x86._defs cimport handler_t
cdef void register(handler_t* rr, handler_t* ri, handler_t* r1, handler_t* rm, handler_t* mr) noexcept
cdef void register_64(handler_t* r1, handler_t* i1, handler_t* none) noexcept
