# Second-level translation written in Python (tests, prototypes of a new format), and the names
# a second-level translation deals in (x86.intercept). Compiled walkers (ept) set Cpu.slat and
# Cpu.slat_ctx themselves; see _defs.pxd, "Second-level translation". Kept apart from _exec.pyx
# so that the interpreter loop's code is not moved by it.
from libc.stdint cimport uint32_t, uint64_t
from x86._defs cimport *
from x86._exec cimport Core
from x86._mem cimport tlb_flush


cdef int py_slat(Cpu* c, uint64_t gpa, int acc, uint64_t* hpa, uint32_t* rights) noexcept:
    """Ask `translate(gpa, acc, la, lflags)` of the object `set_slat` installed: it returns the
    host-physical address (every right cacheable), (address, SLAT_R|SLAT_W|SLAT_X rights the
    TLB may cache), or None to refuse the access (a second-level fault with code 1). An
    exception it raises ends the run as itself."""
    try:
        r = (<object>c.slat_ctx).translate(gpa, acc, None if acc & ACC_NOLA else c.slat_la,
                                           c.slat_lflags if not (acc & ACC_PT) else None)
        if r is None:
            return 1
        if isinstance(r, tuple):
            hpa[0] = <uint64_t>r[0]
            rights[0] = <uint32_t>r[1]
        else:
            hpa[0] = <uint64_t>r
            rights[0] = SLAT_R | SLAT_W | SLAT_X
        return 0
    except BaseException as e:
        (<object>c.owner)._defer_error(e)
        return 1


def set_slat(cpu, obj):
    """Make `obj.translate` the second-level translation of `cpu` (an x86.Cpu), or remove it
    (None; a compiled one is left alone). The TLB is flushed. The cpu keeps `obj` alive."""
    cdef Cpu* c = &(<Core?>cpu).c
    if obj is None:
        if c.slat == py_slat:
            c.slat = NULL
            c.slat_ctx = NULL
    else:
        c.slat = py_slat
        c.slat_ctx = <void*>obj
    cpu.__dict__["_python_slat"] = obj
    tlb_flush(c, 0)


SLAT_EVENTS = dict(SLAT_FAULT=EV_SLAT_FAULT)
SLAT_NAMES = dict(ACC_R=ACC_R, ACC_W=ACC_W, ACC_X=ACC_X, ACC_PT=ACC_PT, ACC_NOLA=ACC_NOLA,
                  SLAT_R=SLAT_R, SLAT_W=SLAT_W, SLAT_X=SLAT_X, SLAT_LA_USER=SLAT_LA_USER,
                  SLAT_LA_WRITE=SLAT_LA_WRITE, SLAT_LA_EXEC=SLAT_LA_EXEC)
