# Memory slow paths: the page walk (SDM Vol. 3A chapter 4), the TLB fill and its
# invalidation (4.10), segment limit checks (3.4, 5.3), physical RAM and MMIO.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int64_t, uintptr_t, intptr_t
from libc.string cimport memcpy, memset
from x86._defs cimport *

cdef extern from "sys/mman.h":
    void* mmap(void* addr, size_t length, int prot, int flags, int fd, long offset)
    int munmap(void* addr, size_t length)
    int PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS, MAP_NORESERVE
    void* MAP_FAILED

cdef uint64_t ADDR_MASK = ((<uint64_t>1 << MAXPHYADDR) - 1) & ~(<uint64_t>0xFFF)

# ------------------------------------------------------------------------------------------
# physical memory

cdef uint8_t* ram_ptr(Cpu* c, uint64_t pa, uint64_t n) noexcept:
    """Host pointer for [pa, pa+n) when it is ordinary RAM, else NULL (MMIO, beyond RAM)."""
    if pa + n > c.ram_size or pa + n < pa:
        return NULL
    if pa + n > c.mmio_lo:
        if (<object>c.owner)._mmio_claims(pa):
            return NULL
    return c.ram + pa


cdef uint64_t phys_read(Cpu* c, uint64_t pa, int size) noexcept:
    """A physical read: RAM, a device's MMIO, or open bus (all ones) as on a PC."""
    cdef uint8_t* p = ram_ptr(c, pa, size)
    cdef uint64_t v = 0
    if p != NULL:
        memcpy(&v, p, size)
        return v
    if pa >= c.mmio_lo:
        try:
            r = (<object>c.owner)._mmio_read(pa, size)
            if r is not None:
                return <uint64_t>r & size_mask(size)
        except BaseException as e:
            (<object>c.owner)._defer_error(e)
    return size_mask(size)


cdef void phys_write(Cpu* c, uint64_t pa, int size, uint64_t v) noexcept:
    cdef uint8_t* p = ram_ptr(c, pa, size)
    cdef uint64_t pfn
    if p != NULL:
        memcpy(p, &v, size)
        pfn = pa >> 12
        c.dirty_pages[pfn >> 3] |= 1 << (pfn & 7)
        if c.code_pages[pfn >> 3] & (1 << (pfn & 7)):
            c.code_write(c, pa)
        pfn = (pa + size - 1) >> 12
        if c.code_pages[pfn >> 3] & (1 << (pfn & 7)):
            c.code_write(c, pa + size - 1)
        return
    if pa >= c.mmio_lo:
        try:
            (<object>c.owner)._mmio_write(pa, size, v & size_mask(size))
        except BaseException as e:
            (<object>c.owner)._defer_error(e)


cdef inline uint64_t pt_read(Cpu* c, uint64_t pa, int* st) noexcept:
    """Read a paging-structure entry; guest-physical accesses go through second-level translation."""
    cdef uint64_t hpa = pa, v
    cdef uint32_t rights
    cdef int code
    if c.slat != NULL:
        code = c.slat(c, pa, ACC_R | ACC_PT, &hpa, &rights)
        if code:
            st[0] = raise_slat_fault(c, pa, code)
            return 0
    if hpa + 8 <= c.ram_size and hpa + 8 <= c.mmio_lo:
        memcpy(&v, c.ram + hpa, 8)          # RAM (phys_read's first case, inlined)
        return v
    return phys_read(c, hpa, 8)


cdef inline int pt_set_bits(Cpu* c, uint64_t pa, uint64_t old, uint64_t bits, int size) noexcept:
    """Set accessed/dirty flags in a paging-structure entry (SDM 4.8), a locked write of the entry."""
    cdef uint64_t hpa = pa
    cdef uint32_t rights
    cdef int code
    if (old & bits) == bits:
        return OK
    if c.slat != NULL:
        code = c.slat(c, pa, ACC_W | ACC_PT, &hpa, &rights)
        if code:
            return raise_slat_fault(c, pa, code)
    phys_write(c, hpa, size, (old | bits) & size_mask(size))
    return OK

# ------------------------------------------------------------------------------------------
# the page walk

cdef inline int pf(Cpu* c, uint64_t la, uint32_t err, int acc) noexcept:
    if acc & ACC_NOFAULT:
        return EXC
    c.pf_addr = la                  # CR2 is loaded when the #PF is delivered (_intr.pyx)
    return raise_exc(c, PF_VEC, 1, err)


cdef int walk(Cpu* c, uint64_t la, int acc, uint64_t* pa_out, uint32_t* flags_out) noexcept:
    """Translate a linear address (SDM Vol. 3A 4.3-4.5); checks rights (4.6); sets A/D (4.8).

    flags_out: bit0 user page, bit1 writable, bit2 executable, bit3 global, bit4 dirty."""
    cdef int kind = acc & 3
    cdef int user = (c.cpl == 3) and not (acc & ACC_SYS)
    cdef uint32_t err = (<uint32_t>(kind == ACC_W) << 1) | (<uint32_t>user << 2)
    cdef int nxe = (c.efer >> 11) & 1
    cdef int st = 0
    cdef int level, shift, leaf_size
    cdef uint64_t e = 0, table, epa, pa, rsvd, ent_addr[5], ents[5]
    cdef int n = 0, i
    cdef int us = 1, rw = 1, xd = 0
    cdef int smep = (c.cr4 >> 20) & 1
    if kind == ACC_X and (smep or (c.pg_mode != PG_32 and nxe)):
        err |= 1 << 4
    if c.pg_mode == PG_32:
        # 32-bit paging (SDM 4.3)
        epa = (c.cr3 & <uint64_t>0xFFFFF000) | ((la >> 20) & 0xFFC)
        e = pt_read(c, epa, &st) & <uint64_t>0xFFFFFFFF
        if st:
            return st
        if not (e & 1):
            return pf(c, la, err, acc)
        ent_addr[n] = epa; ents[n] = e; n += 1
        us &= (e >> 2) & 1
        rw &= (e >> 1) & 1
        if (e & 0x80) and (c.cr4 & 0x10):
            # 4-MByte page: bit 21 and bits 20:(M-19) are reserved (Table 4-5)
            if e & (0x200000 | (((<uint64_t>1 << 21) - 1) & ~((<uint64_t>1 << (MAXPHYADDR - 19)) - 1))):
                return pf(c, la, err | 9, acc)
            pa = (e & <uint64_t>0xFFC00000) | (((e >> 13) & 0xFF) << 32) | (la & 0x3FFFFF)
            leaf_size = 22
        else:
            epa = (e & <uint64_t>0xFFFFF000) | ((la >> 10) & 0xFFC)
            e = pt_read(c, epa, &st) & <uint64_t>0xFFFFFFFF
            if st:
                return st
            if not (e & 1):
                return pf(c, la, err, acc)
            ent_addr[n] = epa; ents[n] = e; n += 1
            us &= (e >> 2) & 1
            rw &= (e >> 1) & 1
            pa = (e & <uint64_t>0xFFFFF000) | (la & 0xFFF)
            leaf_size = 12
        return finish(c, la, acc, err, user, us, rw, 0, e, pa, ent_addr, ents, n, 4, pa_out, flags_out)

    if c.pg_mode == PG_PAE:
        # PAE paging (SDM 4.4): the PDPTE comes from the PDPTE registers loaded with CR3
        e = c.pdpte[(la >> 30) & 3]
        if not (e & 1):
            return pf(c, la, err, acc)
        table = e & ADDR_MASK
        level = 2
        rsvd = ~((<uint64_t>1 << MAXPHYADDR) - 1) & <uint64_t>0x7FFFFFFFFFFFFFFF
    else:
        level = 5 if c.pg_mode == PG_5L else 4
        table = c.cr3 & ADDR_MASK
        rsvd = ~((<uint64_t>1 << MAXPHYADDR) - 1) & <uint64_t>0x000FFFFFFFFFFFFF
    if not nxe:
        rsvd |= <uint64_t>1 << 63
    while True:
        shift = 12 + 9 * (level - 1)
        epa = table | (((la >> shift) & 0x1FF) << 3)
        e = pt_read(c, epa, &st)
        if st:
            return st
        if not (e & 1):
            return pf(c, la, err, acc)
        if e & rsvd:
            return pf(c, la, err | 9, acc)
        if (e & 0x80) and level >= 4:
            return pf(c, la, err | 9, acc)      # PS is reserved in PML4Es and PML5Es
        ent_addr[n] = epa; ents[n] = e; n += 1
        us &= (e >> 2) & 1
        rw &= (e >> 1) & 1
        xd |= <int>(e >> 63) & nxe
        if level == 1 or ((e & 0x80) and level <= 3):
            if level > 1:
                # large page: bits (shift-1):13 are reserved (Tables 4-17, 4-18)
                if e & (((<uint64_t>1 << shift) - 1) & ~(<uint64_t>0x1FFF)):
                    return pf(c, la, err | 9, acc)
            pa = (e & ADDR_MASK & ~((<uint64_t>1 << shift) - 1)) | (la & ((<uint64_t>1 << shift) - 1))
            return finish(c, la, acc, err, user, us, rw, xd, e, pa, ent_addr, ents, n, 8, pa_out, flags_out)
        table = e & ADDR_MASK
        level -= 1


cdef int finish(Cpu* c, uint64_t la, int acc, uint32_t err, int user, int us, int rw, int xd,
                uint64_t leaf, uint64_t pa, uint64_t* ent_addr, uint64_t* ents, int n, int esize,
                uint64_t* pa_out, uint32_t* flags_out) noexcept:
    """Access rights (SDM 4.6.1), then the accessed and dirty flags (4.8)."""
    cdef int kind = acc & 3
    cdef int wp = (c.cr0 >> 16) & 1
    cdef int smap_block = 0
    cdef int i, st, shift
    err |= 1   # from here on, a fault is a protection violation
    if user:
        if not us:
            return pf(c, la, err, acc)
        if kind == ACC_W and not rw:
            return pf(c, la, err, acc)
        if kind == ACC_X and xd:
            return pf(c, la, err, acc)
    else:
        if kind == ACC_X:
            if xd or (us and (c.cr4 >> 20) & 1):
                return pf(c, la, err, acc)
        else:
            if us and (c.cr4 >> 21) & 1:
                # SMAP: implicit accesses and explicit ones with EFLAGS.AC = 0 fault
                if (acc & ACC_SYS) or not (get_rflags(c) & F_AC) or c.cpl == 3:
                    return pf(c, la, err, acc)
            if kind == ACC_W and not rw and wp:
                return pf(c, la, err, acc)
    for i in range(n):
        st = pt_set_bits(c, ent_addr[i], ents[i], 0x20, esize)
        if st:
            return st
    if kind == ACC_W:
        st = pt_set_bits(c, ent_addr[n - 1], ents[n - 1] | 0x20, 0x40, esize)
        if st:
            return st
    pa_out[0] = pa
    # the page size, from how many entries the walk used (4.3, 4.4, 4.5): 32-bit paging has two
    # 10-bit levels, PAE two 9-bit levels below the PDPTE registers, 4/5-level paging 4 or 5
    if c.pg_mode == PG_32:
        shift = 12 + 10 * (2 - n)
    elif c.pg_mode == PG_PAE:
        shift = 12 + 9 * (2 - n)
    else:
        shift = 12 + 9 * ((5 if c.pg_mode == PG_5L else 4) - n)
    # G counts only with CR4.PGE (4.10.2.4); both operands are 0/1 so `and` yields a 0/1 flag
    flags_out[0] = (<uint32_t>us) | (<uint32_t>rw << 1) | (<uint32_t>(not xd) << 2) \
        | (<uint32_t>(((leaf >> 8) & 1) and ((c.cr4 >> 7) & 1)) << 3) \
        | (<uint32_t>(kind == ACC_W or (leaf & 0x40) != 0) << 4) \
        | (<uint32_t>shift << TLBF_SHIFT_POS)
    return OK


# TlbEntry.flags bits 15:8 hold log2 of the size of the page the entry belongs to (12, 21, 22,
# 30), so that INVLPG can drop every 4-KByte piece of a large page (SDM 4.10.4.1)
cdef enum:
    TLBF_SHIFT_POS = 8

cdef int large_cached = 0      # some TLB, of some CPU, may hold a piece of a large page


cdef int translate(Cpu* c, uint64_t la, int acc, uint64_t* pa, int fill) noexcept:
    """Linear to physical for one access; fills the TLB when `fill` and the rights allow it."""
    cdef uint32_t fl = 7 | 16
    cdef uint32_t rights = SLAT_R | SLAT_W | SLAT_X
    cdef int st, kind = acc & 3
    cdef uint64_t hpa, page
    cdef TlbEntry* e
    cdef uint8_t* host
    cdef int sup_user_smap
    global large_cached
    c.slat_la = la                  # for second-level faults on the way (pt_read, pt_set_bits)
    if c.pg_mode == PG_NONE:
        pa[0] = la
    else:
        if c.pg_mode >= PG_4L:
            # canonical check; stack accesses turn it into #SS (callers, stack_fault)
            if not canonical(c, la):
                return EXC if acc & ACC_NOFAULT else gp0(c)
        st = walk(c, la, acc, pa, &fl)
        if st:
            return st
    hpa = pa[0]
    if c.slat != NULL:
        # the final access; fl & 7 are the U/S, R/W and executable rights of the linear address
        # (7 without paging), which second-level translation may need (mode-based execute
        # control, EPT-violation qualification)
        c.slat_lflags = fl & 7
        st = c.slat(c, pa[0], kind, &hpa, &rights)
        if st:
            return EXC if acc & ACC_NOFAULT else raise_slat_fault(c, pa[0], st)
        pa[0] = hpa
    if not fill:
        return OK
    page = hpa & ~(<uint64_t>0xFFF)
    host = ram_ptr(c, page, PAGE)
    if host == NULL:
        return OK
    if (acc & ACC_SYS) and c.cpl == 3:
        return OK          # implicit supervisor access: not for the CPL-3 TLB set
    sup_user_smap = (fl & 1) and c.cpl != 3 and ((c.cr4 >> 21) & 1)
    if sup_user_smap and kind != ACC_X:
        return OK          # SMAP depends on EFLAGS.AC: never cached
    e = &c.tlb[c.tlb_user][(la >> 12) & (TLB_N - 1)]
    if e.tag_r == TLB_INVALID and e.tag_w == TLB_INVALID and e.tag_x == TLB_INVALID:
        if c.tlb_log_n < TLB_LOG_N:
            c.tlb_log[c.tlb_log_n] = <uint16_t>((c.tlb_user << 10) | ((la >> 12) & (TLB_N - 1)))
        c.tlb_log_n += c.tlb_log_n <= TLB_LOG_N
    if e.pa != page or e.addend != <intptr_t>(<uintptr_t>host) - <intptr_t>(la & ~(<uint64_t>0xFFF)):
        e.tag_r = TLB_INVALID
        e.tag_w = TLB_INVALID
        e.tag_x = TLB_INVALID
    e.addend = <intptr_t>(<uintptr_t>host) - <intptr_t>(la & ~(<uint64_t>0xFFF))
    e.pa = page
    e.flags = (TLBF_GLOBAL if (fl & 8) else 0) | (fl & (<uint32_t>0xFF << TLBF_SHIFT_POS))
    if (fl >> TLBF_SHIFT_POS) & 0xFF > 12:
        large_cached = 1
    # the entry gets only the rights that both guest paging and second-level translation grant
    # (`rights`: all three without it); a right it withholds makes that kind of access ask again
    if kind == ACC_X:
        if rights & SLAT_X:
            e.tag_x = la & ~(<uint64_t>0xFFF)
    elif rights & SLAT_R:
        e.tag_r = la & ~(<uint64_t>0xFFF)
        if (rights & SLAT_W) and \
                (kind == ACC_W or (fl & 16 and (fl & 2 or (c.cpl != 3 and not (c.cr0 >> 16) & 1)))):
            if not (c.code_pages[page >> 15] & (1 << ((page >> 12) & 7))):
                e.tag_w = la & ~(<uint64_t>0xFFF)
                c.dirty_pages[page >> 15] |= 1 << ((page >> 12) & 7)
    return OK

# ------------------------------------------------------------------------------------------
# TLB invalidation (SDM 4.10.4)

cdef inline void tlb_invalidate(TlbEntry* e) noexcept nogil:
    e.tag_r = TLB_INVALID
    e.tag_w = TLB_INVALID
    e.tag_x = TLB_INVALID
    e.pa = 0xFFFFFFFFFFFFFFFF


cdef void tlb_flush(Cpu* c, int keep_global) noexcept:
    """Invalidate every entry (global ones survive with `keep_global`). Only the entries filled
    since the last flush can be valid: when they are few (tlb_log), only they are visited."""
    cdef int u, i, k, n = c.tlb_log_n
    cdef TlbEntry* e
    cdef uint16_t at
    c.tlb_log_n = 0
    if n <= TLB_LOG_N:
        for k in range(n):
            at = c.tlb_log[k]
            e = &c.tlb[at >> 10][at & (TLB_N - 1)]
            if keep_global and (e.flags & TLBF_GLOBAL):
                c.tlb_log[c.tlb_log_n] = at          # still valid: still remembered
                c.tlb_log_n += 1
            else:
                tlb_invalidate(e)
        return
    for u in range(2):
        for i in range(TLB_N):
            e = &c.tlb[u][i]
            if keep_global and (e.flags & TLBF_GLOBAL) and e.tag_r & e.tag_w & e.tag_x != TLB_INVALID:
                if c.tlb_log_n < TLB_LOG_N:
                    c.tlb_log[c.tlb_log_n] = <uint16_t>((u << 10) | i)
                c.tlb_log_n += c.tlb_log_n <= TLB_LOG_N
                continue
            tlb_invalidate(e)


cdef int tlb_export(Cpu* c, TlbEntry* out, uint16_t* where) noexcept:
    """The entries filled since the last flush (at most TLB_LOG_N) and their places, for a layer
    that keeps a context's translations across a switch (VMX VPIDs, SDM Vol. 3C 29.4.3); -1
    when more were filled than the log remembers (the context keeps none: always allowed)."""
    cdef int k, n = c.tlb_log_n
    if n > TLB_LOG_N:
        return -1
    for k in range(n):
        where[k] = c.tlb_log[k]
        out[k] = c.tlb[c.tlb_log[k] >> 10][c.tlb_log[k] & (TLB_N - 1)]
    return n


cdef void tlb_import(Cpu* c, const TlbEntry* entries, const uint16_t* where, int n) noexcept:
    """Put back `tlb_export`ed entries after a flush. A page that holds decoded code now loses
    its write tag (writes there must take the slow path, which invalidates the code)."""
    cdef int k
    cdef TlbEntry* e
    cdef uint64_t page
    for k in range(n):
        e = &c.tlb[where[k] >> 10][where[k] & (TLB_N - 1)]
        if not (e.tag_r == TLB_INVALID and e.tag_w == TLB_INVALID and e.tag_x == TLB_INVALID):
            continue                         # filled since: the newer entry stays
        e[0] = entries[k]
        page = e.pa
        if page != 0xFFFFFFFFFFFFFFFF and c.code_pages[page >> 15] & (1 << ((page >> 12) & 7)):
            e.tag_w = TLB_INVALID
        if c.tlb_log_n < TLB_LOG_N:
            c.tlb_log[c.tlb_log_n] = where[k]
        c.tlb_log_n += c.tlb_log_n <= TLB_LOG_N


cdef void tlb_flush_page(Cpu* c, uint64_t la) noexcept:
    """INVLPG: the entries for the page containing la; when that page is larger than 4 KBytes,
    every entry cached for it ("the instruction invalidates all of them", SDM 4.10.4.1)."""
    cdef int u, i, shift
    cdef TlbEntry* e
    cdef uint64_t tag
    if large_cached:
        for u in range(2):
            for i in range(TLB_N):
                e = &c.tlb[u][i]
                shift = (e.flags >> TLBF_SHIFT_POS) & 0xFF
                if shift <= 12 or shift > 63:
                    continue
                tag = e.tag_r if e.tag_r != TLB_INVALID else e.tag_x if e.tag_x != TLB_INVALID else e.tag_w
                if tag != TLB_INVALID and (tag >> shift) == (la >> shift):
                    e.tag_r = TLB_INVALID
                    e.tag_w = TLB_INVALID
                    e.tag_x = TLB_INVALID
    for u in range(2):
        e = &c.tlb[u][(la >> 12) & (TLB_N - 1)]
        if e.tag_r == (la & ~(<uint64_t>0xFFF)) or e.tag_w == (la & ~(<uint64_t>0xFFF)) \
                or e.tag_x == (la & ~(<uint64_t>0xFFF)):
            e.tag_r = TLB_INVALID
            e.tag_w = TLB_INVALID
            e.tag_x = TLB_INVALID


cdef void tlb_drop_writes_to(Cpu* c, uint64_t pa_page) noexcept:
    """A page now holds decoded code: its writes must take the slow path (self-modifying code)."""
    cdef int u, i
    for u in range(2):
        for i in range(TLB_N):
            if c.tlb[u][i].pa == pa_page:
                c.tlb[u][i].tag_w = TLB_INVALID


cdef int load_pdptes(Cpu* c, uint64_t cr3) noexcept:
    """PAE paging: MOV to CR3 (and paging activation) loads the four PDPTEs (SDM 4.4.1);
    a present PDPTE with reserved bits set (63:MAXPHYADDR, 8:5, 2:1) makes it #GP(0). They are
    guest-physical reads without a linear address (second-level translation: ACC_NOLA)."""
    cdef uint64_t v[4]
    cdef uint64_t gpa, hpa
    cdef uint32_t rights
    cdef int i, code
    cdef uint64_t rsvd = (~((<uint64_t>1 << MAXPHYADDR) - 1)) | 0x1E6
    for i in range(4):
        gpa = (cr3 & <uint64_t>0xFFFFFFE0) + 8 * i
        hpa = gpa
        if c.slat != NULL:
            code = c.slat(c, gpa, ACC_R | ACC_PT | ACC_NOLA, &hpa, &rights)
            if code:
                return raise_slat_fault(c, gpa, code)
        v[i] = phys_read(c, hpa, 8)
        if (v[i] & 1) and (v[i] & rsvd):
            return gp0(c)
    for i in range(4):
        c.pdpte[i] = v[i]
    return OK


cdef void update_paging_mode(Cpu* c) noexcept:
    if not (c.cr0 >> 31) & 1:
        c.pg_mode = PG_NONE
    elif not (c.cr4 >> 5) & 1:
        c.pg_mode = PG_32
    elif not (c.efer >> 10) & 1:
        c.pg_mode = PG_PAE
    elif (c.cr4 >> 12) & 1:
        c.pg_mode = PG_5L
    else:
        c.pg_mode = PG_4L
    tlb_flush(c, 0)

# ------------------------------------------------------------------------------------------
# segment checks outside 64-bit mode (SDM Vol. 3A 5.3, 5.4.1)

cdef int seg_check(Cpu* c, int seg, uint64_t ea, int size, int acc, uint64_t* la) noexcept:
    cdef Seg* s = &c.seg[seg]
    cdef uint32_t t = s.attr & 0xF
    cdef uint64_t last = ea + <uint64_t>size - 1
    cdef uint64_t top
    cdef int vec = SS_VEC if seg == SS else GP_VEC
    if c.mode64:
        la[0] = ea + c.segbase[seg]
        return OK
    if (c.cr0 & 1) and not (get_rflags(c) & F_VM):
        if s.attr & 0x10000:
            return raise_exc(c, vec, 1, 0)            # null/unusable segment
        if acc & 3 == ACC_W:
            if (t & 8) or not (t & 2):
                return raise_exc(c, vec, 1, 0)        # code, or read-only data
        elif (t & 0xA) == 8:
            return raise_exc(c, vec, 1, 0)            # execute-only code
    if (t & 0xC) == 4:
        # expand-down data segment: valid offsets are limit+1 .. 0xFFFF or 0xFFFFFFFF
        top = 0xFFFFFFFF if (s.attr >> 14) & 1 else 0xFFFF
        if ea <= s.limit or last > top:
            return raise_exc(c, vec, 1, 0)
    elif last > s.limit or last < ea:
        return raise_exc(c, vec, 1, 0)
    la[0] = <uint32_t>(ea + s.base)
    return OK

# ------------------------------------------------------------------------------------------
# linear accesses that miss the TLB

cdef int lin_read_bytes(Cpu* c, uint64_t la, uint8_t* buf, int n, int acc) noexcept:
    """Read n bytes at a linear address, translating each page before touching any (faults
    are reported for the first page that fails, and nothing is read before all succeed)."""
    cdef uint64_t pa0 = 0, pa1 = 0
    cdef int first = <int>(PAGE - (la & 0xFFF))
    cdef int st, i
    if first > n:
        first = n
    st = translate(c, la, acc, &pa0, 1)
    if st:
        return st
    if first < n:
        st = translate(c, la + first, acc, &pa1, 1)
        if st:
            return st
    for i in range(n):
        if i < first:
            buf[i] = <uint8_t>phys_read(c, pa0 + i, 1)
        else:
            buf[i] = <uint8_t>phys_read(c, pa1 + (i - first), 1)
    return OK


cdef int lin_write_bytes(Cpu* c, uint64_t la, const uint8_t* buf, int n, int acc) noexcept:
    cdef uint64_t pa0 = 0, pa1 = 0
    cdef int first = <int>(PAGE - (la & 0xFFF))
    cdef int st, i
    if first > n:
        first = n
    st = translate(c, la, acc, &pa0, 1)
    if st:
        return st
    if first < n:
        st = translate(c, la + first, acc, &pa1, 1)
        if st:
            return st
    for i in range(n):
        if i < first:
            phys_write(c, pa0 + i, 1, buf[i])
        else:
            phys_write(c, pa1 + (i - first), 1, buf[i])
    return OK


cdef int lin_read_slow(Cpu* c, uint64_t la, int size, uint64_t* out, int acc) noexcept:
    cdef uint64_t pa
    cdef int st
    cdef uint8_t buf[8]
    if (la & 0xFFF) + <uint64_t>size > PAGE:
        st = lin_read_bytes(c, la, buf, size, acc)
        if st:
            return st
        out[0] = 0
        memcpy(out, buf, size)
        return OK
    st = translate(c, la, acc, &pa, 1)
    if st:
        return st
    out[0] = phys_read(c, pa, size)
    if c.exit_request == 2:
        return PYERR
    return OK


cdef int lin_write_slow(Cpu* c, uint64_t la, int size, uint64_t v, int acc) noexcept:
    cdef uint64_t pa
    cdef int st
    if (la & 0xFFF) + <uint64_t>size > PAGE:
        return lin_write_bytes(c, la, <uint8_t*>&v, size, acc)
    st = translate(c, la, acc, &pa, 1)
    if st:
        return st
    phys_write(c, pa, size, v)
    if c.exit_request == 2:
        return PYERR
    return OK
