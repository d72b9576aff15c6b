# One processor's EPT unit as Python sees it: owns the walker's context (EptCtx), installs it as
# the core's second-level translation, and offers the operations `ept.Ept` (context.py) wraps.
# Values cross as ints and tuples; validation and records are the face's job.
from libc.stdint cimport uint32_t, uint64_t
from libc.stdlib cimport calloc, free
from x86._defs cimport Cpu, ACC_R, ACC_PT, ACC_NOLA, EXC
from x86._exec cimport Core
from x86._mem cimport tlb_flush, translate
from ept._walk cimport (EptCtx, EptWalk, GpmEntry, ept_walk, ept_slat, ept_configure, ept_invalidate,
                        GPM_N, CAP_EXEC_ONLY, CAP_2M, CAP_1G, CAP_ADV_INFO, CAP_MBEC)

# EptCtx.caps bits (_walk.pxd), for the face
CAPS = dict(EXEC_ONLY=CAP_EXEC_ONLY, PAGES_2M=CAP_2M, PAGES_1G=CAP_1G, ADV_INFO=CAP_ADV_INFO,
            MBEC=CAP_MBEC)


cdef class EptUnit:
    cdef EptCtx* x
    cdef Core core

    def __cinit__(self, Core core):
        self.x = <EptCtx*>calloc(1, sizeof(EptCtx))
        if self.x == NULL:
            raise MemoryError("EPT context")
        self.x.gen = 1
        self.x.use_cache = 1
        self.x.levels = 4
        self.core = core

    def __dealloc__(self):
        if self.core is not None and self.core.c.slat_ctx == <void*>self.x:
            self.core.c.slat = NULL
            self.core.c.slat_ctx = NULL
        free(self.x)

    def configure(self, uint64_t eptp, uint32_t caps):
        ept_configure(self.x, eptp, caps)

    def install(self, bint on, bint flush_tlb):
        """Make the walker the core's second-level translation (or remove it)."""
        cdef Cpu* c = &self.core.c
        if on:
            c.slat = ept_slat
            c.slat_ctx = <void*>self.x
        elif c.slat_ctx == <void*>self.x:
            c.slat = NULL
            c.slat_ctx = NULL
        if flush_tlb:
            tlb_flush(c, 0)

    property installed:
        def __get__(self):
            return self.core.c.slat_ctx == <void*>self.x and self.core.c.slat == ept_slat

    property eptp:
        def __get__(self):
            return self.x.eptp

    property caps:
        def __get__(self):
            return self.x.caps

    def invalidate(self, int kind, uint64_t eptp, bint flush_tlb):
        ept_invalidate(self.x, kind, eptp)
        if flush_tlb:
            tlb_flush(&self.core.c, 0)

    def fault(self):
        """(kind, gpa, gla, gla_valid, qualification, level, entry, entry address) or None."""
        cdef EptCtx* x = self.x
        if not x.f_kind:
            return None
        return (x.f_kind, x.f_gpa, x.f_gla, bool(x.f_gla_valid), x.f_qual, x.f_level, x.f_entry,
                x.f_entry_addr)

    def clear_fault(self):
        self.x.f_kind = 0

    def set_pml(self, bint on, uint64_t address, uint32_t index):
        self.x.pml = on
        self.x.pml_addr = address
        self.x.pml_index = <unsigned short>index

    property pml:
        def __get__(self):
            return (bool(self.x.pml), self.x.pml_addr, self.x.pml_index)

    property pml_index:
        def __get__(self):
            return self.x.pml_index
        def __set__(self, uint32_t v):
            self.x.pml_index = <unsigned short>v

    property use_cache:
        def __get__(self):
            return bool(self.x.use_cache)
        def __set__(self, bint v):
            self.x.use_cache = v

    def stats(self):
        return dict(walks=self.x.walks, cache_hits=self.x.hits)

    def cached(self):
        """The guest-physical mappings cached now: [(gfn, ep4ta, host page, rights, dirty,
        memtype, ipat, page shift)]."""
        cdef int i
        cdef GpmEntry* g
        out = []
        for i in range(GPM_N):
            g = &self.x.cache[i]
            if g.gen == self.x.gen and g.gen:
                out.append((g.gfn, g.ep4ta, g.hpa, g.rights, g.dirty, g.memtype, g.ipat, g.shift))
        return out

    def walk(self, uint64_t gpa, int acc, uint32_t lflags, uint64_t la, bint update):
        """One walk of the EPT paging structures in memory (no cache): (status, qualification,
        hpa, rights, memtype, ipat, page shift, levels, [(address, entry)], dirty set)."""
        cdef EptWalk w
        cdef Cpu* c = &self.core.c
        cdef uint64_t saved = c.slat_la
        c.slat_la = la
        ept_walk(self.x, c, gpa, acc, lflags, update, &w)
        c.slat_la = saved
        return (w.status, w.qual, w.hpa, w.rights, w.memtype, w.ipat, w.shift, w.levels,
                [(w.addr[i], w.ent[i]) for i in range(w.n)], bool(w.dirty_set))

    def access(self, uint64_t gpa, int acc, uint32_t lflags, uint64_t la):
        """One access as the core makes it (cache, walk, A/D, PML, fault record):
        (status, hpa, TLB rights)."""
        cdef Cpu* c = &self.core.c
        cdef uint64_t hpa = 0, saved_la = c.slat_la
        cdef uint32_t rights = 0, saved_fl = c.slat_lflags
        cdef void* saved_ctx = c.slat_ctx
        cdef int st
        c.slat_la = la
        c.slat_lflags = lflags
        c.slat_ctx = <void*>self.x
        st = ept_slat(c, gpa, acc, &hpa, &rights)
        c.slat_ctx = saved_ctx
        c.slat_la = saved_la
        c.slat_lflags = saved_fl
        return (st, hpa, rights)

    def bench_2d(self, addresses, bint flush):
        """Benchmark (bench/ept.py): translate each linear address as a data read through guest
        paging and EPT, without filling the TLB; `flush`: drop every guest-physical mapping
        before each translation (cold 2-D walks). The loop runs in C; returns the number of
        translations that faulted."""
        cdef Cpu* c = &self.core.c
        cdef uint64_t[:] la = addresses
        cdef Py_ssize_t i, n = la.shape[0]
        cdef uint64_t pa
        cdef int faults = 0
        if not self.installed:
            raise RuntimeError("the EPT unit is not enabled")
        for i in range(n):
            if flush:
                self.x.gen += 1
            if translate(c, la[i], ACC_R, &pa, 0) == EXC:
                faults += 1
        return faults
