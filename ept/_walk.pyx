# The EPT walker as the processor's second-level translation (x86/_defs.pxd, slat_t):
#   29.3.2 "EPT Translation Mechanism"          ept_walk: the table walk, page sizes, result
#   29.3.3.1 "EPT Misconfigurations"            entry_misconfigured
#   29.3.3.2 "EPT Violations", Table 28-7       need_bits, violation_qualification
#   29.3.5 "Accessed and Dirty Flags for EPT"   set_flags
#   29.3.6 "Page-Modification Logging"          set_flags
#   29.4 "Caching Translation Information"      ept_slat (guest-physical mappings), ept_invalidate
# SDM references are to Vol. 3C (the edition docs/spec-versions.md names). No Python here: the
# core calls ept_slat on TLB misses only, and the walk never leaves C.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy
from x86._defs cimport (Cpu, MAXPHYADDR, ACC_R, ACC_W, ACC_X, ACC_PT, ACC_NOLA, SLAT_R, SLAT_W,
                        SLAT_X, SLAT_LA_USER, SLAT_LA_WRITE, SLAT_LA_EXEC)
from x86._mem cimport phys_read, phys_write

# bits N-1:12 of an entry (N = MAXPHYADDR) hold a physical address; bits 51:N are reserved
cdef uint64_t ADDR_BITS = ((<uint64_t>1 << MAXPHYADDR) - 1) & ~(<uint64_t>0xFFF)
cdef uint64_t BEYOND_MAXPHYADDR = ((<uint64_t>1 << 52) - 1) & ~((<uint64_t>1 << MAXPHYADDR) - 1)


cdef void ept_configure(EptCtx* x, uint64_t eptp, uint32_t caps) noexcept:
    """Load an EPTP (SDM 25.6.11, Table 25-9; checked at VM entry by 27.2.1.1) and the
    capabilities, and precompute the reserved bits of each kind of entry (29.3.2, Tables 29-1 to
    29-6, every one with bits 51:N reserved):
      entries that reference a table (EPT PML5E, PML4E, PDPTE and PDE with bit 7 = 0): 7:3;
      an EPT PDE that maps a 2-MByte page: 20:12;  an EPT PDPTE that maps a 1-GByte page: 29:12;
      an EPT PTE: none below bit N."""
    x.eptp = eptp
    x.ep4ta = eptp & ADDR_BITS
    x.slot_salt = (x.ep4ta >> 12) * 0x9E5
    x.levels = 5 if ((eptp >> 3) & 7) == 4 else 4       # bits 5:3: page-walk length minus 1
    x.ad = <int>((eptp >> 6) & 1)
    x.caps = caps
    x.rsvd_table = 0xF8 | BEYOND_MAXPHYADDR
    x.rsvd_pte = BEYOND_MAXPHYADDR
    x.rsvd_2m = 0x1FF000 | BEYOND_MAXPHYADDR
    x.rsvd_1g = 0x3FFFF000 | BEYOND_MAXPHYADDR


cdef inline uint64_t read_entry(Cpu* c, uint64_t pa) noexcept:
    """An 8-byte EPT entry from host-physical memory (RAM directly; MMIO and open bus through
    the core, where unclaimed addresses read as all ones: a misconfiguration)."""
    cdef uint64_t v
    if pa + 8 <= c.ram_size and pa + 8 <= c.mmio_lo:
        memcpy(&v, c.ram + pa, 8)
        return v
    return phys_read(c, pa, 8)


cdef inline int entry_misconfigured(EptCtx* x, uint64_t e, int level, int* leaf) noexcept:
    """29.3.3.1 for a present entry at `level` (5 = PML5E ... 1 = PTE); sets *leaf when the entry
    maps a page. The conditions, in the manual's order:
      - bit 0 clear and bit 1 set (write without read: 010b and 110b);
      - execute-only not supported and bit 0 clear with bit 2 set, or (mode-based execute
        control) with bit 10 set;
      - a reserved bit set (29.3.2 by level and page size; bit 7 of an EPT PDE / PDPTE is
        reserved when 2-MByte / 1-GByte pages are not supported, A.10);
      - the entry maps a page and its memory type (bits 5:3) is 2, 3 or 7."""
    cdef uint64_t rsvd
    cdef int mt
    if (e & (E_R | E_W)) == E_W:
        return 1
    if not (x.caps & CAP_EXEC_ONLY) and not (e & E_R):
        if (e & E_X) or ((x.caps & CAP_MBEC) and (e & E_XU)):
            return 1
    leaf[0] = 0
    if level == 1:
        leaf[0] = 1
        rsvd = x.rsvd_pte
    elif level <= 3 and (e & E_PS):
        if not (x.caps & (CAP_2M if level == 2 else CAP_1G)):
            return 1
        leaf[0] = 1
        rsvd = x.rsvd_2m if level == 2 else x.rsvd_1g
    else:
        rsvd = x.rsvd_table
    if e & rsvd:
        return 1
    if leaf[0]:
        mt = <int>((e >> 3) & 7)
        if mt == 2 or mt == 3 or mt == 7:
            return 1
    return 0


cdef inline uint32_t need_bits(EptCtx* x, int kind, int as_write, uint32_t lflags) noexcept:
    """29.3.3.2: the bit every entry must have. A data read needs bit 0 (reads of guest paging
    structures are data reads), a data write bit 1 (so do updates of guest A/D flags and, with
    EPT A/D flags on, every access to a guest paging-structure entry), an instruction fetch bit 2;
    with mode-based execute control, bit 10 when paging maps the linear address as a user-mode
    address (U/S = 1 at every level, or paging off) and bit 2 when as a supervisor-mode one."""
    if as_write:
        return E_W
    if kind == ACC_R:
        return E_R
    if (x.caps & CAP_MBEC) and (lflags & SLAT_LA_USER):
        return E_XU
    return E_X


cdef inline int treated_as_write(EptCtx* x, int acc) noexcept:
    """29.3.5: with accessed and dirty flags for EPT enabled, processor accesses to guest
    paging-structure entries are treated as writes; loads of the PAE PDPTEs by MOV to CR are
    not (they are reads that set no dirty flag)."""
    return (acc & 3) == ACC_W or ((acc & ACC_PT) != 0 and x.ad != 0 and not (acc & ACC_NOLA))


cdef inline uint64_t violation_qualification(EptCtx* x, int acc, uint32_t rights,
                                             uint32_t lflags) noexcept:
    """Table 28-7 "Exit Qualification for EPT Violations", the bits the walker knows:
      0-2   data read / data write / instruction fetch; an access to a guest paging-structure
            entry treated as a write (EPT A/D on) sets both bits 0 and 1;
      3-5   the logical AND of bits 0, 1, 2 of the entries used (0 when one is not present);
      6     with mode-based execute control, the AND of bit 10;
      7     the guest linear-address field is valid (all but PDPTE loads by MOV to CR);
      8     (bit 7 set) the access was to the translation of the linear address, not to a
            guest paging-structure entry for a walk or an A/D update;
      9-11  (bits 7 and 8 set, advanced VM-exit information) the linear address is user-mode,
            writable, execute-disable under guest paging (1, 1, 0 without paging).
    Bit 12 (NMI unblocking due to IRET) is the VMM's: the walker cannot know it."""
    cdef uint64_t q
    cdef int kind = acc & 3
    if (acc & ACC_PT) and x.ad and not (acc & ACC_NOLA):
        q = 3
    elif kind == ACC_R:
        q = 1
    elif kind == ACC_W:
        q = 2
    else:
        q = 4
    q |= <uint64_t>(rights & 7) << 3
    if x.caps & CAP_MBEC:
        q |= <uint64_t>((rights >> 10) & 1) << 6
    if not (acc & ACC_NOLA):
        q |= 1 << 7
        if not (acc & ACC_PT):
            q |= 1 << 8
            if x.caps & CAP_ADV_INFO:
                q |= (<uint64_t>(lflags & SLAT_LA_USER) << 9) \
                    | (<uint64_t>((lflags >> 1) & 1) << 10) \
                    | (<uint64_t>(((lflags >> 2) & 1) ^ 1) << 11)
    return q


cdef int set_flags(EptCtx* x, Cpu* c, uint64_t gpa, int as_write, EptWalk* w) noexcept:
    """29.3.5: the accessed flag of every entry used; for a write, the dirty flag of the entry
    that maps the page. 29.3.6: before setting a dirty flag from 0 to 1 with PML on, the PML
    index is checked: outside 0-511 the log is full (a page-modification log-full event: no flag
    is set and the access does not happen); else the 4-KByte-aligned guest-physical address is
    written at PML address + 8 * index and the index is decremented."""
    cdef int i, last = w.n - 1
    cdef uint64_t e
    cdef int dirty = as_write and not (w.ent[last] & E_D)
    if dirty and x.pml:
        if x.pml_index > 511:
            return EPT_PML_FULL
        phys_write(c, x.pml_addr + 8 * <uint64_t>x.pml_index, 8, gpa & ~(<uint64_t>0xFFF))
        x.pml_index -= 1
    for i in range(w.n):
        e = w.ent[i] | E_A
        if i == last and dirty:
            e |= E_D
        if e != w.ent[i]:
            phys_write(c, w.addr[i], 8, e)
            w.ent[i] = e
    w.dirty_set = dirty
    return EPT_OK


cdef int ept_walk(EptCtx* x, Cpu* c, uint64_t gpa, int acc, uint32_t lflags, int update,
                  EptWalk* w) noexcept:
    """Translate one guest-physical access (29.3.2): from the EPT PML5 table (5-level) or PML4
    table, 9 bits of the address per level (bits 56:48, 47:39, 38:30, 29:21, 20:12), until an
    entry that maps a page (a PTE, or a PDPTE / PDE with bit 7 set) or one that is not present.
    An entry is present when any of bits 2:0 is 1, or bit 10 with mode-based execute control.
    Misconfigurations are found entry by entry on the way down, so the first misconfigured or
    not-present entry ends the walk; a violation of rights is decided on the whole path.
    `update`: set the A/D flags and log with PML as the access would (29.3.5, 29.3.6)."""
    cdef int level = x.levels, shift = 12, leaf = 0, st
    cdef uint64_t table = x.ep4ta, ea, e = 0
    cdef uint32_t rights = E_RIGHTS, need
    cdef int as_write = treated_as_write(x, acc)
    w.levels = level
    w.n = 0
    w.dirty_set = 0
    w.qual = 0
    w.hpa = 0
    w.memtype = 0
    w.ipat = 0
    w.shift = 0
    while True:
        shift = 12 + 9 * (level - 1)
        ea = table | (((gpa >> shift) & 0x1FF) << 3)
        e = read_entry(c, ea)
        w.addr[w.n] = ea
        w.ent[w.n] = e
        w.n += 1
        rights &= <uint32_t>(e & E_RIGHTS)
        if not (e & (E_R | E_W | E_X)) and not ((x.caps & CAP_MBEC) and (e & E_XU)):
            w.rights = rights
            w.status = EPT_VIOLATION
            w.qual = violation_qualification(x, acc, rights, lflags)
            return EPT_VIOLATION
        if entry_misconfigured(x, e, level, &leaf):
            w.rights = rights
            w.status = EPT_MISCONFIG
            return EPT_MISCONFIG
        if leaf:
            break
        table = e & ADDR_BITS
        level -= 1
    w.rights = rights
    w.shift = shift
    w.memtype = <int>((e >> 3) & 7)
    w.ipat = <int>((e >> 6) & 1)
    w.hpa = (e & ADDR_BITS & ~((<uint64_t>1 << shift) - 1)) | (gpa & ((<uint64_t>1 << shift) - 1))
    need = need_bits(x, acc & 3, as_write, lflags)
    if (rights & need) != need:
        w.status = EPT_VIOLATION
        w.qual = violation_qualification(x, acc, rights, lflags)
        return EPT_VIOLATION
    if update and x.ad:
        st = set_flags(x, c, gpa, as_write, w)
        if st:
            w.status = st
            return st
    w.status = EPT_OK
    return EPT_OK


cdef inline uint32_t tlb_rights(EptCtx* x, uint32_t r, int dirty, uint32_t lflags) noexcept:
    """What the core's TLB may cache for the page (combined mappings, 29.4.1): read and execute
    as EPT grants them (execute for this linear address's mode with mode-based execute control),
    write only once a write needs no dirty flag to be set (A/D off, or the flag already 1)."""
    cdef uint32_t out = 0
    cdef uint32_t xbit = E_X
    if r & E_R:
        out |= SLAT_R
    if (r & E_W) and dirty:
        out |= SLAT_W
    if (x.caps & CAP_MBEC) and (lflags & SLAT_LA_USER):
        xbit = E_XU
    if r & xbit:
        out |= SLAT_X
    return out


cdef inline void record_fault(EptCtx* x, Cpu* c, int kind, uint64_t gpa, int acc, uint64_t qual,
                              int level, uint64_t entry, uint64_t entry_addr) noexcept:
    x.f_kind = kind
    x.f_gpa = gpa
    x.f_gla_valid = not (acc & ACC_NOLA)
    x.f_gla = c.slat_la if x.f_gla_valid else 0
    x.f_qual = qual
    x.f_level = level
    x.f_entry = entry
    x.f_entry_addr = entry_addr


cdef int ept_slat(Cpu* c, uint64_t gpa, int acc, uint64_t* hpa, uint32_t* rights) noexcept:
    """The core's second-level translation (slat_t) for EPT.

    29.4.1-29.4.2: a guest-physical mapping (page number -> host page, the ANDed rights, memory
    type), tagged with the EP4TA it was made under, may be used for later accesses instead of
    the EPT paging structures, until INVEPT (29.4.3.1) removes it: a VMM that edits an entry and
    does not invalidate sees the old translation. A write through a mapping cached before the
    dirty flag was set walks again (it must set the flag). An access that a cached mapping does
    not permit is an EPT violation, reported from the cached rights; an EPT violation
    invalidates the mappings for its guest-physical address (29.4.3.1), so a retry walks the
    structures in memory."""
    cdef EptCtx* x = <EptCtx*>c.slat_ctx
    cdef uint64_t gfn = gpa >> 12
    cdef GpmEntry* g = &x.cache[(gfn + x.slot_salt) & (GPM_N - 1)]
    cdef uint32_t lflags = 0 if (acc & ACC_PT) else c.slat_lflags
    cdef int as_write = treated_as_write(x, acc)
    cdef uint32_t need
    cdef int st
    cdef EptWalk w
    if x.use_cache and g.gen == x.gen and g.gfn == gfn and g.ep4ta == x.ep4ta:
        need = need_bits(x, acc & 3, as_write, lflags)
        if (g.rights & need) == need:
            if not as_write or g.dirty:
                x.hits += 1
                hpa[0] = g.hpa | (gpa & 0xFFF)
                rights[0] = tlb_rights(x, g.rights, g.dirty, lflags)
                return EPT_OK
        else:
            g.gen = 0
            record_fault(x, c, EPT_VIOLATION, gpa, acc,
                         violation_qualification(x, acc, g.rights, lflags), 0,
                         <uint64_t>g.sve << 63, 0)
            return EPT_VIOLATION
    x.walks += 1
    st = ept_walk(x, c, gpa, acc, lflags, 1, &w)
    if st:
        if g.gfn == gfn:
            g.gen = 0
        record_fault(x, c, st, gpa, acc, w.qual, w.levels - w.n + 1, w.ent[w.n - 1],
                     w.addr[w.n - 1])
        return st
    if x.use_cache:
        g.gen = x.gen
        g.gfn = gfn
        g.ep4ta = x.ep4ta
        g.hpa = w.hpa & ~(<uint64_t>0xFFF)
        g.rights = w.rights
        g.dirty = 1 if (not x.ad or (w.ent[w.n - 1] & E_D)) else 0
        g.memtype = <uint8_t>w.memtype
        g.ipat = <uint8_t>w.ipat
        g.shift = <uint8_t>w.shift
        g.sve = <uint8_t>(w.ent[w.n - 1] >> 63)
    hpa[0] = w.hpa
    rights[0] = tlb_rights(x, w.rights, not x.ad or (w.ent[w.n - 1] & E_D) != 0, lflags)
    return EPT_OK


cdef void ept_invalidate(EptCtx* x, int kind, uint64_t eptp) noexcept:
    """INVEPT (29.4.3.1, Vol. 3C 31 "INVEPT"): single-context (1) invalidates the guest-physical
    mappings tagged with the EP4TA of `eptp` (bits 51:12); all-context (2) every one."""
    cdef int i
    cdef uint64_t tag = eptp & ADDR_BITS
    if kind == 2:
        x.gen += 1
        return
    for i in range(GPM_N):
        if x.cache[i].ep4ta == tag:
            x.cache[i].gen = 0
