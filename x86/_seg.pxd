# Segment registers: descriptor loading with its checks (SDM Vol. 3A 3.4, 5.x) and the
# processor mode derived from CR0, EFER, CS and SS.
from libc.stdint cimport uint16_t, uint32_t, uint64_t
from x86._defs cimport *

cdef void update_mode(Cpu* c) noexcept
cdef void set_seg_real(Cpu* c, int sreg, uint16_t sel) noexcept
cdef int read_descriptor(Cpu* c, uint16_t sel, uint64_t* lo, uint64_t* hi, int vec) noexcept
cdef void unpack_descriptor(uint64_t lo, uint64_t hi, Seg* s, uint16_t sel) noexcept
cdef int load_seg(Cpu* c, int sreg, uint16_t sel) noexcept
cdef int load_cs(Cpu* c, uint16_t sel, int cpl) noexcept
cdef int set_dtr_accessed(Cpu* c, uint16_t sel, uint64_t lo) noexcept
