# The interpreter's C data: decoded blocks and `Core`, the object that owns one processor's
# state (the Cpu struct of _defs.pxd) and its physical memory. Declared here so that other
# compiled modules (vmx's VM entry and exit) work on the Cpu directly.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int64_t, uintptr_t
from x86._defs cimport Cpu, Insn, intercept_t

ctypedef struct Block:
    uint64_t pa
    uint32_t mode
    uint32_t n
    Insn* insns
    # chaining: the blocks that followed this one, valid while `gen` equals Core.chain_gen
    # (bumped by anything that may change what a RIP maps to: TLB flushes, mode and CPL
    # changes, event delivery, code invalidation)
    uint64_t gen
    uint64_t next_rip[2]
    void* next[2]
    int next_slot

cdef enum:
    BC_N = 4096
    MAX_MEMORY_SHIFT = 39     # MAXPHYADDR: RAM cannot exceed the physical address space


cdef int py_intercept(Cpu* c, int event, uint64_t a, uint64_t b) noexcept


cdef class Core:
    cdef Cpu c
    cdef Block* bcache[4096]
    cdef dict blocks          # (pa << 2 | mode) -> address of a Block
    cdef dict page_blocks     # pfn -> list of keys
    cdef list graveyard
    cdef Block scratch
    cdef Insn scratch_insn[16]
    cdef public object deferred_error
    cdef public object unsupported_what
    cdef public dict io_handlers      # port -> device with io_read(port, size) / io_write(port, size, value)
    cdef public list mmio_handlers    # [(lo, hi, device)] with mmio_read(pa, size) / mmio_write(pa, size, v)
    cdef public object console        # bytearray of port 0xE9 output
    cdef public object hook           # Python intercept object (vmx/svm), or None
    cdef public object intr_controller  # local APIC: acknowledge(), timer_fired()
    cdef public uint64_t slow_lookups  # block-cache misses (statistics)
    cdef uint64_t chain_gen
    cdef public bint generic_only     # decode every instruction to its general handler (tests)
    cdef uint64_t memory_size

    cdef void _free_all_blocks(self)
    cdef void _free_graveyard(self)
    cdef int _fill(self, Insn* ins, tuple rec) except -1
    cdef Block* _lookup_slow(self, uint64_t la, uint64_t pa, int* status)
    cdef int _events(self)
    cdef int _has_irr(self) noexcept
    cdef int _ack_interrupt(self)
    cdef int _execute(self)
    cdef int _halt_wait(self)
    cdef int run_native(self, uint64_t max_instructions) except -1
    cdef void attach_hook(self, object obj, intercept_t fn)
