# System and sensitive instructions (SDM Vol. 2; Vol. 3A 2.4-2.8 control registers and
# system instructions). Each sensitive instruction first offers itself to the intercept hook
# ("may this exit?"), which vmx and svm install; without a hook it executes as bare metal.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int64_t
from libc.string cimport memset
from x86._defs cimport *
from x86._mem cimport (ea_of, ld, st, tlb_flush, tlb_flush_page, update_paging_mode, load_pdptes,
                       lin_read_slow, lin_write_slow)
from x86._seg cimport update_mode
from x86._sysops cimport sensitive, disabled, need_cpl0, rm_read, rm_write16
import iced_x86 as _ix
from x86 import decode as _decode


cdef inline uint64_t read_tsc(Cpu* c) noexcept nogil:
    """The TSC as software reads it: time plus IA32_TSC's offset, then the transform another
    layer imposes (VMX TSC scaling and offsetting, SDM Vol. 3C 26.3): (t * mult) >> shift, + add."""
    cdef uint64_t t = c.icount + c.idle + c.tsc_offset
    cdef uint64_t al, ah, bl, bh, ll, lh, hl, mid, lo, hi
    cdef uint64_t m32 = <uint32_t>-1
    if c.tsc_mult:
        al = t & m32
        ah = t >> 32
        bl = c.tsc_mult & m32
        bh = c.tsc_mult >> 32
        ll = al * bl
        lh = al * bh
        hl = ah * bl
        mid = (ll >> 32) + (lh & m32) + (hl & m32)
        lo = (ll & m32) | (mid << 32)
        hi = ah * bh + (lh >> 32) + (hl >> 32) + (mid >> 32)
        if c.tsc_shift == 0:
            t = lo
        elif c.tsc_shift >= 64:
            t = hi >> (c.tsc_shift - 64)
        else:
            t = (lo >> c.tsc_shift) | (hi << (64 - c.tsc_shift))
    return t + c.tsc_add

# --- HLT CLI STI -------------------------------------------------------------------------------

cdef int h_hlt(Cpu* c, Insn* i) noexcept:
    cdef int r
    if c.cpl != 0:
        return gp0(c)
    r = sensitive(c, i, 0)
    if r:
        return r
    c.halted = 1
    c.next_event = c.icount
    return OK

cdef inline int if_allowed(Cpu* c) noexcept:
    if (c.cr0 & 1) and c.cpl > ((c.rflags >> 12) & 3):
        return gp0(c)           # VME/PVI are not modelled: CR4 refuses them
    return OK

cdef int h_cli(Cpu* c, Insn* i) noexcept:
    if if_allowed(c):
        return EXC
    c.rflags &= ~(<uint64_t>F_IF)
    return OK

cdef int h_sti(Cpu* c, Insn* i) noexcept:
    """STI: interrupts stay blocked until after the next instruction (SDM Vol. 2B STI)."""
    if if_allowed(c):
        return EXC
    if not (c.rflags & F_IF):
        c.rflags |= F_IF
        c.inhibit = INHIBIT_STI
        c.shadow_end = c.icount + 2
    c.next_event = c.icount
    return OK

# --- CPUID, MSRs, time ----------------------------------------------------------------------

cdef int h_cpuid(Cpu* c, Insn* i) noexcept:
    cdef int r = sensitive(c, i, 0)
    if r:
        return r
    a, b, cc, d = (<object>c.owner)._cpuid(<uint32_t>c.regs[RAX], <uint32_t>c.regs[RCX])
    c.regs[RAX] = <uint32_t>a
    c.regs[RBX] = <uint32_t>b
    c.regs[RCX] = <uint32_t>cc
    c.regs[RDX] = <uint32_t>d
    return OK

cdef int read_msr(Cpu* c, uint32_t index, uint64_t* v) noexcept:
    """RDMSR of the MSRs the processor keeps itself; the rest come from the machine's MSR file."""
    if index == 0xC0000080:
        v[0] = c.efer
    elif index == 0xC0000081:
        v[0] = c.star
    elif index == 0xC0000082:
        v[0] = c.lstar
    elif index == 0xC0000083:
        v[0] = c.cstar
    elif index == 0xC0000084:
        v[0] = c.fmask
    elif index == 0xC0000100:
        v[0] = c.seg[FS].base
    elif index == 0xC0000101:
        v[0] = c.seg[GS].base
    elif index == 0xC0000102:
        v[0] = c.kernel_gs_base
    elif index == 0xC0000103:
        v[0] = c.tsc_aux
    elif index == 0x10:
        v[0] = read_tsc(c)
    elif index == 0x174:
        v[0] = c.sysenter_cs
    elif index == 0x175:
        v[0] = c.sysenter_esp
    elif index == 0x176:
        v[0] = c.sysenter_eip
    elif index == 0x277:
        v[0] = c.pat
    else:
        try:
            r = (<object>c.owner)._msr_read(index)
        except BaseException as e:
            (<object>c.owner)._defer_error(e)
            return PYERR
        if r is None:
            return gp0(c)
        v[0] = <uint64_t>r
    return OK

cdef int write_msr(Cpu* c, uint32_t index, uint64_t v) noexcept:
    """WRMSR with the architectural #GP(0) checks (SDM Vol. 4 and Vol. 3A 2.2.1 for EFER)."""
    cdef uint64_t old
    cdef int k
    if index == 0xC0000080:
        if v & ~c.efer_valid:
            return gp0(c)
        if ((v ^ c.efer) & 0x100) and (c.cr0 >> 31):
            return gp0(c)              # LME cannot change while paging is on
        v = (v & ~(<uint64_t>0x400)) | (c.efer & 0x400)    # LMA is read-only
        old = c.efer
        c.efer = v
        if (old ^ v) & 0x800:
            tlb_flush(c, 0)
        update_paging_mode(c)
    elif index == 0xC0000081:
        c.star = v
    elif index in (0xC0000082, 0xC0000083, 0xC0000100, 0xC0000101, 0xC0000102, 0x175, 0x176):
        if not canonical(c, v):
            return gp0(c)
        if index == 0xC0000082:
            c.lstar = v
        elif index == 0xC0000083:
            c.cstar = v
        elif index == 0xC0000100:
            c.seg[FS].base = v
        elif index == 0xC0000101:
            c.seg[GS].base = v
        elif index == 0xC0000102:
            c.kernel_gs_base = v
        elif index == 0x175:
            c.sysenter_esp = v
        else:
            c.sysenter_eip = v
        update_mode(c)
    elif index == 0xC0000084:
        c.fmask = v & 0xFFFFFFFF
    elif index == 0xC0000103:
        if v >> 32:
            return gp0(c)
        c.tsc_aux = v
    elif index == 0x10:
        c.tsc_offset = v - (c.icount + c.idle)
    elif index == 0x174:
        c.sysenter_cs = v & 0xFFFFFFFF
    elif index == 0x277:
        for k in range(8):
            if ((v >> (8 * k)) & 0xFF) not in (0, 1, 4, 5, 6, 7):
                return gp0(c)           # PAT memory types 2, 3 and >= 8 are reserved
        c.pat = v
    else:
        try:
            ok = (<object>c.owner)._msr_write(index, v)
        except BaseException as e:
            (<object>c.owner)._defer_error(e)
            return PYERR
        if not ok:
            return gp0(c)
    return OK

cdef int h_rdmsr(Cpu* c, Insn* i) noexcept:
    cdef uint64_t v = 0
    cdef int r
    if need_cpl0(c):
        return EXC
    if c.intercept != NULL:
        c.cur_insn = i
        r = c.intercept(c, EV_MSR, <uint32_t>c.regs[RCX], 0)
        if r:
            return r
    r = read_msr(c, <uint32_t>c.regs[RCX], &v)
    if r:
        return r
    c.regs[RAX] = <uint32_t>v
    c.regs[RDX] = v >> 32
    return OK

cdef int h_wrmsr(Cpu* c, Insn* i) noexcept:
    cdef int r
    if need_cpl0(c):
        return EXC
    if c.intercept != NULL:
        c.cur_insn = i
        r = c.intercept(c, EV_MSR, <uint32_t>c.regs[RCX], 1)
        if r:
            return r
    r = write_msr(c, <uint32_t>c.regs[RCX], (c.regs[RDX] << 32) | <uint32_t>c.regs[RAX])
    if r:
        return r
    return REDECODE

cdef int h_rdtsc(Cpu* c, Insn* i) noexcept:
    """RDTSC: time is retired instructions (plus halted time); CR4.TSD restricts it to CPL 0."""
    cdef uint64_t t
    cdef int r
    if i.mnem == _RDTSCP:
        r = disabled(c, i)                        # #UD before any other exception
        if r:
            return r
    if (c.cr4 & 4) and c.cpl != 0 and (c.cr0 & 1):
        return gp0(c)
    r = sensitive(c, i, 0)
    if r:
        return r
    t = read_tsc(c)
    c.regs[RAX] = <uint32_t>t
    c.regs[RDX] = t >> 32
    if i.mnem == _RDTSCP:
        c.regs[RCX] = <uint32_t>c.tsc_aux
    return OK

cdef int h_rdpmc(Cpu* c, Insn* i) noexcept:
    """RDPMC: no performance counters are advertised (CPUID.0AH), so every index is invalid: #GP(0)."""
    cdef int r
    if not (c.cr4 & 0x100) and c.cpl != 0 and (c.cr0 & 1):
        return gp0(c)
    r = sensitive(c, i, 0)
    if r:
        return r
    return gp0(c)

cdef int h_rdrand(Cpu* c, Insn* i) noexcept:
    """RDRAND/RDSEED: a deterministic xorshift generator; CF = 1 (a value is always ready)."""
    cdef int r = sensitive(c, i, 0)
    cdef uint64_t x
    if r:
        return r
    x = c.rng_state if c.rng_state else 0x9E3779B97F4A7C15
    x ^= x << 13
    x ^= x >> 7
    x ^= x << 17
    c.rng_state = x
    wr_reg(c, i.r0, i.osz, x)
    flush_flags(c)
    c.rflags = (c.rflags & ~(<uint64_t>F_ARITH)) | F_CF | 2
    return OK

cdef int h_pause(Cpu* c, Insn* i) noexcept:
    return sensitive(c, i, 0)

cdef int h_cache(Cpu* c, Insn* i) noexcept:
    """WBINVD/INVD: CPL 0; caches are not modelled, so nothing else happens."""
    if need_cpl0(c):
        return EXC
    return sensitive(c, i, 0)

cdef int h_monitor(Cpu* c, Insn* i) noexcept:
    if need_cpl0(c):
        return EXC
    if c.regs[RCX] >> 32 if c.mode64 else 0:
        return gp0(c)
    return sensitive(c, i, 0)

cdef int h_mwait(Cpu* c, Insn* i) noexcept:
    """MWAIT: a wake-up may happen at any time; this model wakes at once."""
    if need_cpl0(c):
        return EXC
    if <uint32_t>c.regs[RCX] > 1:
        return gp0(c)
    return sensitive(c, i, 0)

cdef int h_xsetbv(Cpu* c, Insn* i) noexcept:
    """XSETBV: CPL 0, CR4.OSXSAVE, ECX = 0, bit 0 set, supported bits only, AVX needs SSE."""
    cdef uint64_t v = (c.regs[RDX] << 32) | <uint32_t>c.regs[RAX]
    cdef int r
    if not (c.cr4 & (1 << 18)):
        return ud(c)
    if need_cpl0(c):
        return EXC
    r = sensitive(c, i, 0)
    if r:
        return r
    if <uint32_t>c.regs[RCX] != 0 or not (v & 1) or (v & ~(<uint64_t>3)):
        return gp0(c)
    c.xcr0 = v
    return OK

cdef int h_xgetbv(Cpu* c, Insn* i) noexcept:
    if not (c.cr4 & (1 << 18)):
        return ud(c)
    if <uint32_t>c.regs[RCX] != 0:
        return gp0(c)
    c.regs[RAX] = <uint32_t>c.xcr0
    c.regs[RDX] = c.xcr0 >> 32
    return OK

# --- control and debug registers (SDM Vol. 3A 2.5, Vol. 2B MOV CR) ----------------------------

cdef int write_cr(Cpu* c, int n, uint64_t v) noexcept:
    cdef uint64_t old
    cdef int lma
    if n == 0:
        old = c.cr0
        if v >> 32:
            return gp0(c)
        v |= 0x10                                 # ET is fixed to 1
        if (v & c.cr0_must1) != c.cr0_must1 or (v & c.cr0_must0):
            return gp0(c)                         # fixed bits (SDM 24.8: in VMX operation)
        if (v >> 31) and not (v & 1):
            return gp0(c)                         # PG without PE
        if (v >> 29) & 1 and not (v >> 30) & 1:
            return gp0(c)                         # NW without CD
        if (v >> 31) and not (old >> 31) and (c.efer & 0x100):
            if not (c.cr4 & 0x20):
                return gp0(c)                     # IA-32e mode needs PAE
            if (c.seg[CS].attr >> 13) & 1:
                return gp0(c)                     # CS.L must be 0 when activating IA-32e mode
        if not (v >> 31) and (old >> 31) and c.mode64:
            return gp0(c)                         # paging cannot be disabled in 64-bit mode
        if (v >> 31) and (c.cr4 & 0x20) and not (c.efer & 0x100) and \
                ((v ^ old) & 0xE0000001):
            if load_pdptes(c, c.cr3):
                return EXC
        if not (v >> 16) & 1 and (c.cr4 >> 23) & 1:
            return gp0(c)                         # CET requires WP (not modelled: CR4.CET refused)
        c.cr0 = v
        if (v >> 31) and (c.efer & 0x100):
            c.efer |= 0x400                       # LMA
        elif not (v >> 31):
            c.efer &= ~(<uint64_t>0x400)
        if (old ^ v) & 0xE0010001:
            update_paging_mode(c)
        update_mode(c)
        return OK
    if n == 2:
        c.cr2 = v
        return OK
    if n == 3:
        if c.pg_mode >= PG_4L or (c.efer & 0x400):
            if v & ~((<uint64_t>1 << MAXPHYADDR) - 1) & ~(<uint64_t>1 << 63 if c.cr4 & 0x20000 else 0):
                return gp0(c)
            v &= ~(<uint64_t>1 << 63)
        if c.pg_mode == PG_PAE:
            if load_pdptes(c, v):
                return EXC
        c.cr3 = v
        tlb_flush(c, 1)                           # global translations survive (SDM 4.10.4.1)
        return OK
    if n == 4:
        old = c.cr4
        if v & ~c.cr4_valid:
            return gp0(c)
        if (v & c.cr4_must1) != c.cr4_must1 or (v & c.cr4_must0):
            return gp0(c)                         # fixed bits (SDM 24.8: in VMX operation)
        if (c.efer & 0x400) and not (v & 0x20):
            return gp0(c)                         # PAE cannot be cleared in IA-32e mode
        if (c.efer & 0x400) and ((v ^ old) & 0x1000):
            return gp0(c)                         # LA57 cannot change in IA-32e mode
        if (v & 0x20000) and not (old & 0x20000) and ((c.cr3 & 0xFFF) or not (c.efer & 0x400)):
            return gp0(c)                         # PCIDE needs IA-32e mode and PCID 0
        if (v & 0x20) and (c.cr0 >> 31) and not (c.efer & 0x400) and ((v ^ old) & 0x000000B0):
            if load_pdptes(c, c.cr3):
                return EXC
        c.cr4 = v
        if (old ^ v) & 0x3000B0:                  # PSE PAE PGE LA57 SMEP SMAP
            update_paging_mode(c)
        return OK
    if n == 8:
        if v >> 4:
            return gp0(c)
        c.cr8 = v
        # the TPR changed: an interrupt it held back may now be deliverable (SDM 11.8.6)
        ctl = getattr(<object>c.owner, "intr_controller", None)
        if ctl is not None:
            try:
                ctl._sync()
            except BaseException as e:
                (<object>c.owner)._defer_error(e)
                return PYERR
        c.next_event = c.icount
        return OK
    return ud(c)

cdef int h_mov_to_cr(Cpu* c, Insn* i) noexcept:
    cdef int n = i.r0
    cdef uint64_t v = rd_reg(c, i.r1, 8 if c.mode64 else 4)
    cdef int r
    if n not in (0, 2, 3, 4, 8):
        return ud(c)
    if need_cpl0(c):
        return EXC
    if c.intercept != NULL:
        c.cur_insn = i
        r = c.intercept(c, EV_CR, <uint64_t>n | 0x100, v)
        if r:
            return r
    r = write_cr(c, n, v)
    if r:
        return r
    return REDECODE

cdef int h_mov_from_cr(Cpu* c, Insn* i) noexcept:
    cdef int n = i.r1
    cdef uint64_t v
    cdef int r
    if n not in (0, 2, 3, 4, 8):
        return ud(c)
    if need_cpl0(c):
        return EXC
    if c.intercept != NULL:
        c.cur_insn = i
        r = c.intercept(c, EV_CR, <uint64_t>n, 0)
        if r:
            return r
    v = c.cr0 if n == 0 else c.cr2 if n == 2 else c.cr3 if n == 3 else c.cr4 if n == 4 else c.cr8
    if n == 0:
        v = (v & ~c.cr0_read_mask) | (c.cr0_read_shadow & c.cr0_read_mask)
    elif n == 4:
        v = (v & ~c.cr4_read_mask) | (c.cr4_read_shadow & c.cr4_read_mask)
    wr_reg(c, i.r0, 8 if c.mode64 else 4, v)
    return OK

cdef int dr_index(Cpu* c, int n) noexcept:
    """DR4/DR5 alias DR6/DR7 unless CR4.DE is set, when they are #UD (SDM 18.2.2)."""
    if n == 4 or n == 5:
        if c.cr4 & 8:
            return -1
        return n + 2
    if n > 7:
        return -1
    return n

cdef int h_mov_dr(Cpu* c, Insn* i) noexcept:
    cdef int to = i.mnem == _decode.MOV_TO_DR
    cdef int n = dr_index(c, i.r0 if to else i.r1)
    cdef uint64_t v
    cdef int r
    if n < 0:
        return ud(c)
    if need_cpl0(c):
        return EXC
    if (c.dr[7] >> 13) & 1:
        c.db_status |= 1 << 13                    # general detect (DR7.GD): #DB, BD set
        c.dr[7] &= ~(<uint64_t>(1 << 13))
        return raise_exc(c, DB_VEC, 0, 0)
    r = sensitive(c, i, <uint64_t>n | (<uint64_t>to << 8))
    if r:
        return r
    if to:
        v = rd_reg(c, i.r1, 8 if c.mode64 else 4)
        if n >= 6 and (v >> 32):
            return gp0(c)
        if n == 7 and (v & 0xFF):
            (<object>c.owner)._unsupported("hardware breakpoints (MOV to DR7 enabling L0-L3/G0-G3)")
            return STOP
        if n == 6:
            c.dr6 = (v & 0x1E00F) | 0xFFFF0FF0
        elif n == 7:
            c.dr[7] = (v & 0xFFFF2BFF) | 0x400
        else:
            c.dr[n] = v
    else:
        v = c.dr6 if n == 6 else (c.dr[7] | 0x400) if n == 7 else c.dr[n]
        wr_reg(c, i.r0, 8 if c.mode64 else 4, v)
    return OK

cdef int h_clts(Cpu* c, Insn* i) noexcept:
    cdef int r
    if need_cpl0(c):
        return EXC
    r = sensitive(c, i, 0)
    if r:
        return r
    c.cr0 &= ~(<uint64_t>8)
    return OK

cdef int h_lmsw(Cpu* c, Insn* i) noexcept:
    """LMSW: loads CR0[3:0]; it can set PE but never clear it."""
    cdef uint64_t v = 0
    cdef int r
    if need_cpl0(c):
        return EXC
    if rm_read(c, i, 2, &v):
        return EXC
    r = sensitive(c, i, v)
    if r:
        return r
    v = (c.cr0 & ~(<uint64_t>0xE)) | (v & 0xF) | (c.cr0 & 1)
    r = write_cr(c, 0, v)
    return r if r else REDECODE

cdef int h_smsw(Cpu* c, Insn* i) noexcept:
    cdef uint64_t v = (c.cr0 & ~c.cr0_read_mask) | (c.cr0_read_shadow & c.cr0_read_mask)
    if (c.cr4 & 0x800) and c.cpl > 0:
        return gp0(c)                              # UMIP
    if i.k0 == K_REG:
        wr_reg(c, i.r0, i.osz, v & size_mask(i.osz))
        return OK
    return st(c, i.seg, ea_of(c, i), 2, v & 0xFFFF)

cdef int h_invlpg(Cpu* c, Insn* i) noexcept:
    cdef int r
    cdef uint64_t la
    if need_cpl0(c):
        return EXC
    la = ea_of(c, i) + c.segbase[i.seg]
    r = sensitive(c, i, la)
    if r:
        return r
    tlb_flush_page(c, la)
    return REDECODE

cdef int h_invpcid(Cpu* c, Insn* i) noexcept:
    """INVPCID types 0-3 (SDM Vol. 2A); this TLB is untagged by PCID, so every type flushes
    at least what it must. Another layer may disable it (#UD first) or make it exit (after the
    CPL check, before the descriptor is read: Vol. 3C 26.1.1)."""
    cdef uint64_t kind = rd_reg(c, i.r0, 8 if c.mode64 else 4), pcid = 0, addr = 0
    cdef uint64_t ea
    cdef int r
    r = disabled(c, i)
    if r:
        return r
    if need_cpl0(c):
        return EXC
    r = sensitive(c, i, kind)
    if r:
        return r
    ea = ea_of(c, i)
    if ld(c, i.seg, ea, 8, &pcid) or ld(c, i.seg, ea + 8, 8, &addr):
        return EXC
    if kind > 3 or (pcid >> 12):
        return gp0(c)
    if kind == 0:
        if not canonical(c, addr):
            return gp0(c)
        tlb_flush_page(c, addr)
    else:
        tlb_flush(c, kind == 1 or kind == 3)
    return REDECODE

cdef int h_swapgs(Cpu* c, Insn* i) noexcept:
    cdef uint64_t t
    if not c.mode64:
        return ud(c)
    if need_cpl0(c):
        return EXC
    t = c.seg[GS].base
    c.seg[GS].base = c.kernel_gs_base
    c.kernel_gs_base = t
    update_mode(c)
    return OK

# --- #UD and the virtualization instructions --------------------------------------------------

cdef int h_ud(Cpu* c, Insn* i) noexcept:
    return ud(c)

cdef int h_virt(Cpu* c, Insn* i) noexcept:
    """VMX and SVM instructions: behaviour comes from vmx/svm through the intercept hook; a
    processor without them raises #UD (CPUID does not advertise them)."""
    cdef int r
    if c.intercept == NULL:
        return ud(c)
    c.cur_insn = i
    r = c.intercept(c, EV_INSN, i.mnem, <uint64_t><void*>i)
    if r:
        return r
    return REDECODE


# --- state access for the Python face -----------------------------------------------------------

cdef object get_named(Cpu* c, str name):
    """One register by name (the Python faces and x86.state); a chain of C comparisons."""
    if name == "cr0":
        return c.cr0
    if name == "cr3":
        return c.cr3
    if name == "cr4":
        return c.cr4
    if name == "efer":
        return c.efer
    if name == "cr2":
        return c.cr2
    if name == "cr8":
        return c.cr8
    if name == "dr7":
        return c.dr[7] | 0x400
    if name == "dr6":
        return c.dr6
    if name == "pat":
        return c.pat
    if name in ("dr0", "dr1", "dr2", "dr3"):
        return c.dr[int(name[2])]
    if name == "xcr0":
        return c.xcr0
    if name == "tsc_offset":
        return c.tsc_offset
    if name == "kernel_gs_base":
        return c.kernel_gs_base
    if name == "star":
        return c.star
    if name == "lstar":
        return c.lstar
    if name == "cstar":
        return c.cstar
    if name == "fmask":
        return c.fmask
    if name == "cr4_valid":
        return c.cr4_valid
    if name == "efer_valid":
        return c.efer_valid
    if name == "pg_mode":
        return c.pg_mode
    if name == "nmi_blocked":
        return c.nmi_blocked
    if name == "inhibit":
        return c.inhibit
    if name.startswith("pdpte"):
        return c.pdpte[int(name[5])]
    if name == "cr0_must1":
        return c.cr0_must1
    if name == "cr0_must0":
        return c.cr0_must0
    if name == "cr4_must1":
        return c.cr4_must1
    if name == "cr4_must0":
        return c.cr4_must0
    if name == "cr0_read_mask":
        return c.cr0_read_mask
    if name == "cr0_read_shadow":
        return c.cr0_read_shadow
    if name == "cr4_read_mask":
        return c.cr4_read_mask
    if name == "cr4_read_shadow":
        return c.cr4_read_shadow
    if name == "db_status":
        return c.db_status
    if name == "iret_nmi":
        return c.exc_iret_nmi
    raise KeyError(name)

cdef void set_named_raw(Cpu* c, str name, uint64_t v):
    if name == "cr0":
        c.cr0 = v
    elif name == "cr2":
        c.cr2 = v
    elif name == "cr3":
        c.cr3 = v
    elif name == "cr4":
        c.cr4 = v
    elif name == "cr8":
        c.cr8 = v
    elif name == "efer":
        c.efer = v
    elif name == "dr6":
        c.dr6 = v
    elif name == "dr7":
        c.dr[7] = v
    elif name == "xcr0":
        c.xcr0 = v
    elif name == "pat":
        c.pat = v
    elif name == "cr0_read_mask":
        c.cr0_read_mask = v
    elif name == "cr0_read_shadow":
        c.cr0_read_shadow = v
    elif name == "cr4_read_mask":
        c.cr4_read_mask = v
    elif name == "cr4_read_shadow":
        c.cr4_read_shadow = v
    elif name == "cr0_must1":
        c.cr0_must1 = v
    elif name == "cr0_must0":
        c.cr0_must0 = v
    elif name == "cr4_must1":
        c.cr4_must1 = v
    elif name == "cr4_must0":
        c.cr4_must0 = v
    elif name == "cr4_valid":
        c.cr4_valid = v
    elif name == "efer_valid":
        c.efer_valid = v
    elif name == "nmi_blocked":
        c.nmi_blocked = <int>v
    elif name == "intr_line":
        # the interrupt controller's output: v = the vector it would deliver now, 0 for none
        # (a vector masked by the TPR/PPR must neither be taken nor wake HLT, SDM 11.8.3.1)
        memset(c.irr, 0, sizeof(c.irr))
        if v:
            c.irr[(v >> 5) & 7] |= 1u << (v & 31)
            c.next_event = c.icount
    else:
        raise KeyError(name)


cdef uint16_t _RDTSCP

cdef void register(handler_t* t) noexcept:
    global _RDTSCP
    M = _ix.Mnemonic
    _RDTSCP = M.RDTSCP
    table = {
        "HLT": <long>h_hlt, "CLI": <long>h_cli, "STI": <long>h_sti,
        "CPUID": <long>h_cpuid, "RDMSR": <long>h_rdmsr, "WRMSR": <long>h_wrmsr,
        "RDTSC": <long>h_rdtsc, "RDTSCP": <long>h_rdtsc, "RDPMC": <long>h_rdpmc,
        "RDRAND": <long>h_rdrand, "RDSEED": <long>h_rdrand, "PAUSE": <long>h_pause,
        "WBINVD": <long>h_cache, "INVD": <long>h_cache, "MONITOR": <long>h_monitor,
        "MWAIT": <long>h_mwait, "XSETBV": <long>h_xsetbv, "XGETBV": <long>h_xgetbv,
        "CLTS": <long>h_clts, "LMSW": <long>h_lmsw, "SMSW": <long>h_smsw,
        "INVLPG": <long>h_invlpg, "INVPCID": <long>h_invpcid, "SWAPGS": <long>h_swapgs,
        "UD0": <long>h_ud, "UD1": <long>h_ud, "UD2": <long>h_ud,
    }
    for name in ("VMXON", "VMXOFF", "VMCLEAR", "VMPTRLD", "VMPTRST", "VMREAD", "VMWRITE",
                 "VMLAUNCH", "VMRESUME", "VMCALL", "VMFUNC", "INVEPT", "INVVPID", "VMRUN",
                 "VMLOAD", "VMSAVE", "STGI", "CLGI", "SKINIT", "INVLPGA", "VMMCALL", "GETSEC"):
        table[name] = <long>h_virt
    for name, fn in table.items():
        t[getattr(M, name)] = <handler_t><long>fn
    t[_decode.MOV_TO_CR] = h_mov_to_cr
    t[_decode.MOV_FROM_CR] = h_mov_from_cr
    t[_decode.MOV_TO_DR] = h_mov_dr
    t[_decode.MOV_FROM_DR] = h_mov_dr
