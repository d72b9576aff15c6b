# Memory: host-physical RAM, the software TLB, the page walk, linear accesses.
# The inline functions below are the per-access fast path: one TLB tag compare
# and a host load/store. Everything else is in _mem.pyx.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int64_t, uintptr_t, intptr_t
from x86._defs cimport *

# slow paths (_mem.pyx)
cdef int lin_read_slow(Cpu* c, uint64_t la, int size, uint64_t* out, int acc) noexcept
cdef int lin_write_slow(Cpu* c, uint64_t la, int size, uint64_t v, int acc) noexcept
cdef int seg_check(Cpu* c, int seg, uint64_t ea, int size, int acc, uint64_t* la) noexcept
cdef int translate(Cpu* c, uint64_t la, int acc, uint64_t* pa, int fill) noexcept
cdef int lin_read_bytes(Cpu* c, uint64_t la, uint8_t* buf, int n, int acc) noexcept
cdef int lin_write_bytes(Cpu* c, uint64_t la, const uint8_t* buf, int n, int acc) noexcept
cdef uint64_t phys_read(Cpu* c, uint64_t pa, int size) noexcept
cdef void phys_write(Cpu* c, uint64_t pa, int size, uint64_t v) noexcept
cdef uint8_t* ram_ptr(Cpu* c, uint64_t pa, uint64_t n) noexcept
cdef void tlb_flush(Cpu* c, int keep_global) noexcept
cdef int tlb_export(Cpu* c, TlbEntry* out, uint16_t* where) noexcept
cdef void tlb_import(Cpu* c, const TlbEntry* entries, const uint16_t* where, int n) noexcept
cdef void tlb_flush_page(Cpu* c, uint64_t la) noexcept
cdef void tlb_drop_writes_to(Cpu* c, uint64_t pa_page) noexcept
cdef int load_pdptes(Cpu* c, uint64_t cr3) noexcept
cdef void update_paging_mode(Cpu* c) noexcept


cdef inline uint64_t ea_of(Cpu* c, Insn* i) noexcept nogil:
    """Effective address (SDM Vol. 1 3.7.5): base + index*scale + displacement, truncated to the
    address size. RIP-relative operands add the address of the next instruction."""
    cdef uint64_t ea = <uint64_t>i.disp
    if i.base < 16:
        ea += c.regs[i.base]
    elif i.base == RIPREG:
        ea += c.rip
    if i.index < 16:
        ea += c.regs[i.index] << i.scale
    if i.asz == 4:
        return <uint32_t>ea
    if i.asz == 2:
        return <uint16_t>ea
    return ea


cdef inline int rd_lin(Cpu* c, uint64_t la, int size, uint64_t* out) noexcept:
    cdef TlbEntry* e = &c.tlb[c.tlb_user][(la >> 12) & (TLB_N - 1)]
    cdef uint8_t* p
    if e.tag_r == (la & ~(<uint64_t>0xFFF)) and (la & 0xFFF) <= <uint64_t>(PAGE - size):
        p = <uint8_t*><uintptr_t>(la + <uint64_t>e.addend)
        if size == 8:
            out[0] = (<uint64_t*>p)[0]
        elif size == 4:
            out[0] = (<uint32_t*>p)[0]
        elif size == 2:
            out[0] = (<uint16_t*>p)[0]
        else:
            out[0] = p[0]
        return OK
    return lin_read_slow(c, la, size, out, ACC_R)


cdef inline int wr_lin(Cpu* c, uint64_t la, int size, uint64_t v) noexcept:
    cdef TlbEntry* e = &c.tlb[c.tlb_user][(la >> 12) & (TLB_N - 1)]
    cdef uint8_t* p
    if e.tag_w == (la & ~(<uint64_t>0xFFF)) and (la & 0xFFF) <= <uint64_t>(PAGE - size):
        p = <uint8_t*><uintptr_t>(la + <uint64_t>e.addend)
        if size == 8:
            (<uint64_t*>p)[0] = v
        elif size == 4:
            (<uint32_t*>p)[0] = <uint32_t>v
        elif size == 2:
            (<uint16_t*>p)[0] = <uint16_t>v
        else:
            p[0] = <uint8_t>v
        return OK
    return lin_write_slow(c, la, size, v, ACC_W)


cdef inline int rdw_lin(Cpu* c, uint64_t la, int size, uint64_t* out) noexcept:
    """Read with write intent (the read of a read-modify-write): faults as a write would."""
    cdef TlbEntry* e = &c.tlb[c.tlb_user][(la >> 12) & (TLB_N - 1)]
    cdef uint8_t* p
    if e.tag_w == (la & ~(<uint64_t>0xFFF)) and (la & 0xFFF) <= <uint64_t>(PAGE - size):
        p = <uint8_t*><uintptr_t>(la + <uint64_t>e.addend)
        if size == 8:
            out[0] = (<uint64_t*>p)[0]
        elif size == 4:
            out[0] = (<uint32_t*>p)[0]
        elif size == 2:
            out[0] = (<uint16_t*>p)[0]
        else:
            out[0] = p[0]
        return OK
    return lin_read_slow(c, la, size, out, ACC_W)


cdef inline int linear(Cpu* c, int seg, uint64_t ea, int size, int acc, uint64_t* la) noexcept:
    """Logical to linear (SDM Vol. 3A 3.4): in 64-bit mode only FS/GS bases apply and no limits."""
    if not c.seg_checks:
        la[0] = ea + c.segbase[seg]
        return OK
    return seg_check(c, seg, ea, size, acc, la)


cdef inline int ld(Cpu* c, int seg, uint64_t ea, int size, uint64_t* out) noexcept:
    cdef uint64_t la
    if linear(c, seg, ea, size, ACC_R, &la):
        return EXC
    return rd_lin(c, la, size, out)


cdef inline int st(Cpu* c, int seg, uint64_t ea, int size, uint64_t v) noexcept:
    cdef uint64_t la
    if linear(c, seg, ea, size, ACC_W, &la):
        return EXC
    return wr_lin(c, la, size, v)


cdef inline int ldw(Cpu* c, int seg, uint64_t ea, int size, uint64_t* out) noexcept:
    cdef uint64_t la
    if linear(c, seg, ea, size, ACC_W, &la):
        return EXC
    return rdw_lin(c, la, size, out)
