# Where the state names of x86.state live in the Cpu struct, for layers that move state in bulk
# between the processor and a VMCS or VMCB (vmx, svm) without a Python call per register.
from x86._defs cimport Cpu

cdef enum:
    LOC_PLAIN = 0     # an unsigned integer field of `width` bytes at `offset` in Cpu
    LOC_RFLAGS = 1    # RFLAGS: the lazy arithmetic flags are folded in and out
    LOC_DR7 = 2       # DR7: bit 10 reads as 1 (SDM Vol. 3B 18.2.4)
    LOC_PYTHON = 3    # kept outside the struct (x86.state.get_state/set_state)

cdef int locate(str name, Py_ssize_t* offset, int* width) except -1
cdef unsigned long long loc_get(Cpu* c, int kind, Py_ssize_t offset, int width) noexcept
cdef void loc_set(Cpu* c, int kind, Py_ssize_t offset, int width, unsigned long long v) noexcept
