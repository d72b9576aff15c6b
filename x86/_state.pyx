"""The state names of x86.state located in the Cpu struct (x86/_state.pxd)."""
from libc.stdint cimport uint16_t, uint32_t, uint64_t
from x86._defs cimport *

cdef Cpu _probe
SEGMENTS = ("es", "cs", "ss", "ds", "fs", "gs", "ldtr", "tr")


cdef inline Py_ssize_t _off(void* p):
    return <char*>p - <char*>&_probe


cdef int locate(str name, Py_ssize_t* offset, int* width) except -1:
    """The location kind (LOC_*) of a state name, with its offset and width for LOC_PLAIN."""
    cdef int i
    width[0] = 8
    offset[0] = 0
    reg, _, part = name.partition(".")
    if part:
        if reg in ("gdtr", "idtr"):
            if part == "base":
                offset[0] = _off(&_probe.gdtr_base if reg == "gdtr" else &_probe.idtr_base)
            else:
                offset[0] = _off(&_probe.gdtr_limit if reg == "gdtr" else &_probe.idtr_limit)
                width[0] = 4
            return LOC_PLAIN
        i = SEGMENTS.index(reg)
        if part == "selector":
            offset[0], width[0] = _off(&_probe.seg[i].sel), 2
        elif part == "base":
            offset[0] = _off(&_probe.seg[i].base)
        elif part == "limit":
            offset[0], width[0] = _off(&_probe.seg[i].limit), 4
        elif part == "attr":
            offset[0], width[0] = _off(&_probe.seg[i].attr), 4
        else:
            raise KeyError(name)
        return LOC_PLAIN
    if name == "rflags":
        return LOC_RFLAGS
    if name == "dr7":
        offset[0] = _off(&_probe.dr[7])
        return LOC_DR7
    fields = {"cr0": _off(&_probe.cr0), "cr2": _off(&_probe.cr2), "cr3": _off(&_probe.cr3),
              "cr4": _off(&_probe.cr4), "efer": _off(&_probe.efer), "pat": _off(&_probe.pat),
              "rsp": _off(&_probe.regs[4]), "rip": _off(&_probe.rip),
              "sysenter_cs": _off(&_probe.sysenter_cs), "sysenter_esp": _off(&_probe.sysenter_esp),
              "sysenter_eip": _off(&_probe.sysenter_eip), "star": _off(&_probe.star),
              "lstar": _off(&_probe.lstar), "cstar": _off(&_probe.cstar), "fmask": _off(&_probe.fmask),
              "kernel_gs_base": _off(&_probe.kernel_gs_base)}
    if name in fields:
        offset[0] = fields[name]
        return LOC_PLAIN
    return LOC_PYTHON


cdef unsigned long long loc_get(Cpu* c, int kind, Py_ssize_t offset, int width) noexcept:
    cdef char* p = <char*>c + offset
    if kind == LOC_RFLAGS:
        return get_rflags(c)
    if kind == LOC_DR7:
        return (<uint64_t*>p)[0] | 0x400
    if width == 2:
        return (<uint16_t*>p)[0]
    if width == 4:
        return (<uint32_t*>p)[0]
    return (<uint64_t*>p)[0]


cdef void loc_set(Cpu* c, int kind, Py_ssize_t offset, int width, unsigned long long v) noexcept:
    """Store without side effects: the caller derives the mode afterwards (update_mode etc.)."""
    cdef char* p = <char*>c + offset
    if kind == LOC_RFLAGS:
        c.rflags = (v & F_DEFINED) | 2
        c.lf_op = LF_NONE
    elif width == 2:
        (<uint16_t*>p)[0] = <uint16_t>v
    elif width == 4:
        (<uint32_t*>p)[0] = <uint32_t>v
    else:
        (<uint64_t*>p)[0] = v
