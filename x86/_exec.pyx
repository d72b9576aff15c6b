# The interpreter: decoded-block cache, the execute loop, events between instructions, and
# `Core`, the object that owns one processor's state and its physical memory.
from cpython.bytes cimport PyBytes_FromStringAndSize
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int64_t, uintptr_t
from libc.stdlib cimport malloc, calloc, free
from libc.string cimport memcpy, memset
from x86._defs cimport *
from x86._mem cimport (ea_of, translate, tlb_flush, tlb_drop_writes_to, phys_read, phys_write, ram_ptr,
                       lin_read_bytes, update_paging_mode, load_pdptes)
from x86._seg cimport update_mode
from x86._intr cimport deliver_event, deliver_event_ex, deliver_pending_exception
from x86._task cimport TS_CALL, TS_IRET, TS_JMP, TS_IDT
from x86 cimport _ops_alu, _ops_ctl, _ops_str, _ops_sys, _ops_io, _ops_desc, _ops_fast

from x86 import decode as _decode

cdef extern from "sys/mman.h":
    void* mmap(void* addr, size_t length, int prot, int flags, int fd, long offset)
    int munmap(void* addr, size_t length)
    int PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS, MAP_NORESERVE

cdef handler_t HANDLERS[2048]
# specialized bodies by operand form (_ops_fast): reg,reg / reg,imm / reg / reg,mem / mem,reg
cdef handler_t FAST_RR[2048]
cdef handler_t FAST_RI[2048]
cdef handler_t FAST_R[2048]
cdef handler_t FAST_RM[2048]
cdef handler_t FAST_MR[2048]
# 64-bit operand size in 64-bit mode: one register, one immediate (branches), no operand
cdef handler_t FAST64_R[2048]
cdef handler_t FAST64_I[2048]
cdef handler_t FAST64_0[2048]
cdef int _tables_ready = 0


cdef int h_invalid(Cpu* c, Insn* i) noexcept:
    """An undefined opcode raises #UD (SDM Vol. 2 Appendix A)."""
    return ud(c)


cdef int h_unmodelled(Cpu* c, Insn* i) noexcept:
    c.rip = c.rip_start
    (<object>c.owner)._unsupported(_decode.mnemonic_name(i.imm if i.mnem == _decode.UNMODELLED else i.mnem))
    return STOP


cdef void init_tables() noexcept:
    global _tables_ready
    cdef int k
    if _tables_ready:
        return
    for k in range(2048):
        HANDLERS[k] = h_unmodelled
    _ops_alu.register(HANDLERS)
    _ops_ctl.register(HANDLERS)
    _ops_str.register(HANDLERS)
    _ops_sys.register(HANDLERS)
    _ops_io.register(HANDLERS)
    _ops_desc.register(HANDLERS)
    for k in range(2048):
        FAST_RR[k] = NULL
        FAST_RI[k] = NULL
        FAST_R[k] = NULL
        FAST_RM[k] = NULL
        FAST_MR[k] = NULL
        FAST64_R[k] = NULL
        FAST64_I[k] = NULL
        FAST64_0[k] = NULL
    _ops_fast.register(FAST_RR, FAST_RI, FAST_R, FAST_RM, FAST_MR)
    _ops_fast.register_64(FAST64_R, FAST64_I, FAST64_0)
    HANDLERS[_decode.INVALID] = h_invalid
    HANDLERS[_decode.UNMODELLED] = h_unmodelled
    _tables_ready = 1


cdef void on_code_write(Cpu* c, uint64_t pa) noexcept:
    (<Core>c.owner)._invalidate_page(pa >> 12)


cdef int py_intercept(Cpu* c, int event, uint64_t a, uint64_t b) noexcept:
    """The intercept hook for a Python hook object (`Core.set_hook`): its `intercept(event, a, b)`
    answers (x86.intercept): false, the event proceeds; true (EXIT), the event becomes an exit,
    and an instruction that exits does not execute (RIP stays at it); for an instruction,
    DONE: the hook performed it (it retires); DONE_EXIT: the hook performed it, it retires,
    then an exit (a trap-like exit: RIP after it); for a second-level fault, RAISE | vector:
    the guest gets that exception (no error code) instead. Events are the EV_* of _defs.pxd."""
    cdef int answer
    try:
        r = (<object>c.hook_obj).intercept(event, a, b)
        answer = 0 if not r else (1 if r is True else int(r))
    except BaseException as e:
        (<object>c.owner)._defer_error(e)
        return PYERR
    if answer == 0:
        return OK
    if event == EV_DISABLED:
        return ud(c)                  # the layer disables the instruction: #UD
    if answer == 2:
        return REDECODE               # retire it, and re-enter the loop (state may have changed)
    if answer == 3:
        c.stop_reason = STOP_EXIT
        c.stop_retired = 1
        return STOP
    if answer & 0x100:
        return raise_exc(c, answer & 0xFF, 0, 0)  # RAISE | vector: a fault instead (VMX #VE)
    if event == EV_INSN or event == EV_IO or event == EV_MSR or event == EV_CR or event == EV_HLT:
        c.rip = c.rip_start
    c.stop_reason = STOP_EXIT
    c.stop_retired = 0
    return STOP


cdef inline int mode_index(Cpu* c) noexcept nogil:
    return 2 if c.code_bits == 64 else (1 if c.code_bits == 32 else 0)


cdef inline int block_hash(uint64_t pa, uint32_t mode) noexcept nogil:
    # every byte of a page gets its own slot; pages and modes are spread by multiplication
    return <int>((pa + (pa >> 12) * 0x9E5 + <uint64_t>mode * 0x5A3) & (BC_N - 1))


cdef class Core:
    """One processor and its physical memory. Python faces (x86.Cpu, x86.Memory) wrap it.
    Its C data is declared in _exec.pxd, so that other compiled modules (vmx) reach the Cpu."""

    def __cinit__(self, uint64_t memory_size=256 << 20, *args, **kwargs):
        init_tables()
        if memory_size == 0 or memory_size % PAGE:
            raise ValueError(f"memory_size must be a positive multiple of 4096, not {memory_size}")
        if memory_size > (<uint64_t>1 << MAX_MEMORY_SHIFT):
            raise ValueError(f"memory_size {memory_size:#x} exceeds the {MAX_MEMORY_SHIFT}-bit physical address space")
        memset(&self.c, 0, sizeof(Cpu))
        # Sparse RAM: the kernel backs only the pages that are touched.
        cdef void* p = mmap(NULL, memory_size, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        if p == <void*>-1 or p == NULL:
            raise MemoryError(f"cannot reserve {memory_size:#x} bytes of address space")
        self.memory_size = memory_size
        self.c.ram = <uint8_t*>p
        self.c.ram_size = memory_size
        cdef uint64_t nbits = (memory_size >> 12) + 8
        self.c.code_pages = <uint8_t*>calloc(nbits // 8 + 1, 1)
        self.c.dirty_pages = <uint8_t*>calloc(nbits // 8 + 1, 1)
        self.c.owner = <void*>self
        self.c.code_write = on_code_write
        self.c.mmio_lo = U64_MAX
        self.c.timer_deadline = U64_MAX
        self.c.hard_limit = U64_MAX
        self.c.run_limit = U64_MAX
        self.c.delivering = -1
        self.c.inj_vector = -1
        self.c.exit_deadline = U64_MAX
        self.scratch.insns = self.scratch_insn
        self.blocks = {}
        self.page_blocks = {}
        self.graveyard = []
        self.io_handlers = {}
        self.mmio_handlers = []
        self.console = bytearray()
        self.hook = None
        memset(self.bcache, 0, sizeof(self.bcache))
        self.c.tlb_log_n = TLB_LOG_N + 1       # any entry may be valid: scan them all
        tlb_flush(&self.c, 0)

    def __dealloc__(self):
        self._free_all_blocks()
        if self.c.ram != NULL:
            munmap(self.c.ram, self.memory_size)
        free(self.c.code_pages)
        free(self.c.dirty_pages)

    # --- decoded blocks -----------------------------------------------------------------

    cdef void _free_all_blocks(self):
        cdef uintptr_t a
        if self.blocks is None:
            return
        for a in self.blocks.values():
            free((<Block*>a).insns)
            free(<Block*>a)
        self.blocks.clear()
        self._free_graveyard()
        memset(self.bcache, 0, sizeof(self.bcache))

    cdef void _free_graveyard(self):
        cdef uintptr_t a
        for a in self.graveyard:
            free((<Block*>a).insns)
            free(<Block*>a)
        self.graveyard.clear()

    def _invalidate_page(self, uint64_t pfn):
        """Self-modifying code: drop every block decoded from this physical page."""
        cdef uintptr_t a
        cdef Block* b
        keys = self.page_blocks.pop(pfn, None)
        self.c.code_pages[pfn >> 3] &= ~(1 << (pfn & 7))
        if not keys:
            return
        for key in keys:
            a = self.blocks.pop(key, 0)
            if a:
                b = <Block*>a
                if self.bcache[block_hash(b.pa, b.mode)] == b:
                    self.bcache[block_hash(b.pa, b.mode)] = NULL
                self.graveyard.append(a)
        self.c.block_dirty = 1
        self.chain_gen += 1

    cdef int _fill(self, Insn* ins, tuple rec) except -1:
        cdef handler_t fast
        (ins.mnem, ins.code, ins.len, ins.osz, ins.ssz, ins.asz, ins.k0, ins.k1, ins.k2, ins.r0,
         ins.r1, ins.r2, ins.base, ins.index, ins.scale, ins.seg, ins.cond, ins.pfx, ins.nops,
         disp, ins.imm, ins.imm2, _) = rec
        ins.disp = <int64_t><uint64_t>disp
        ins.fn = HANDLERS[ins.mnem] if ins.mnem < 2048 else h_unmodelled
        if ins.mnem < 2048 and not self.generic_only and not (ins.pfx & P_LOCK):
            fast = NULL
            if ins.nops == 2 and ins.k0 == K_REG and ins.k1 == K_REG and ins.ssz == ins.osz:
                fast = FAST_RR[ins.mnem]
            elif ins.nops == 2 and ins.k0 == K_REG and ins.k1 == K_IMM:
                fast = FAST_RI[ins.mnem]
            elif ins.nops == 1 and ins.k0 == K_REG:
                fast = FAST_R[ins.mnem]
            elif ins.nops == 2 and ins.k0 == K_REG and ins.k1 == K_MEM and ins.ssz == ins.osz:
                fast = FAST_RM[ins.mnem]
            elif ins.nops == 2 and ins.k0 == K_MEM and ins.k1 == K_REG and ins.ssz == ins.osz:
                fast = FAST_MR[ins.mnem]
            if ins.osz == 8 and self.c.code_bits == 64:
                if ins.nops == 1 and ins.k0 == K_REG and FAST64_R[ins.mnem] != NULL:
                    fast = FAST64_R[ins.mnem]
                elif ins.nops == 1 and ins.k0 == K_IMM and FAST64_I[ins.mnem] != NULL:
                    fast = FAST64_I[ins.mnem]
                elif ins.nops == 0 and FAST64_0[ins.mnem] != NULL:
                    fast = FAST64_0[ins.mnem]
            if fast != NULL:
                ins.fn = fast
        return 0

    cdef Block* _lookup_slow(self, uint64_t la, uint64_t pa, int* status):
        """Block cache miss: the dictionary of decoded blocks, else decode the page from pa."""
        cdef Cpu* c = &self.c
        cdef uint64_t page_end
        cdef int st, mode = mode_index(c), k, n
        cdef Block* b
        cdef uintptr_t a
        cdef uint8_t* host
        cdef uint8_t buf[32]
        self.slow_lookups += 1
        key = (pa << 2) | mode
        a = self.blocks.get(key, 0)
        if a:
            b = <Block*>a
            self.bcache[block_hash(pa, mode)] = b
            return b
        host = ram_ptr(c, pa & ~(<uint64_t>0xFFF), PAGE)
        page_end = (pa | 0xFFF) + 1
        if host != NULL:
            data = PyBytes_FromStringAndSize(<char*>(host + (pa & 0xFFF)), <Py_ssize_t>(page_end - pa))
            recs, truncated = _decode.decode_block(data, la, c.code_bits)
            if recs:
                n = len(recs)
                b = <Block*>malloc(sizeof(Block))
                b.insns = <Insn*>malloc(sizeof(Insn) * n)
                b.pa = pa
                b.mode = mode
                b.n = n
                b.gen = 0
                b.next[0] = NULL
                b.next[1] = NULL
                b.next_slot = 0
                for k in range(n):
                    self._fill(&b.insns[k], recs[k])
                self.blocks[key] = <uintptr_t>b
                pfn = pa >> 12
                lst = self.page_blocks.get(pfn)
                if lst is None:
                    self.page_blocks[pfn] = [key]
                    if not (c.code_pages[pfn >> 3] & (1 << (pfn & 7))):
                        c.code_pages[pfn >> 3] |= 1 << (pfn & 7)
                        tlb_drop_writes_to(c, pa & ~(<uint64_t>0xFFF))
                else:
                    lst.append(key)
                self.bcache[block_hash(pa, mode)] = b
                return b
        # uncached: the instruction crosses a page boundary, or code runs from MMIO/open bus
        n = <int>(page_end - pa)
        if n > 15:
            n = 15
        st = lin_read_bytes(c, la, buf, n, ACC_X)
        if st:
            status[0] = st
            return NULL
        data = PyBytes_FromStringAndSize(<char*>buf, n)
        recs, truncated = _decode.decode_block(data, la, c.code_bits, 1)
        if not recs and truncated:
            st = lin_read_bytes(c, la, buf, 15, ACC_X)      # faults on the second page if unmapped
            if st:
                status[0] = st
                return NULL
            data = PyBytes_FromStringAndSize(<char*>buf, 15)
            recs, truncated = _decode.decode_block(data, la, c.code_bits, 1)
        if not recs:
            recs = [_decode.invalid_record()]
        self._fill(&self.scratch_insn[0], recs[0])
        self.scratch.n = 1
        self.scratch.pa = pa
        self.scratch.mode = mode
        self.scratch.gen = U64_MAX     # never chained: it is rewritten each time
        return &self.scratch

    # --- the loop -----------------------------------------------------------------------

    cdef int _events(self):
        """Between instructions: limits, the single-step trap, NMI and external interrupts."""
        cdef Cpu* c = &self.c
        cdef int st, v
        cdef uint64_t now = c.icount + c.idle
        if c.exit_request:
            return PYERR if c.exit_request == 2 else STOP
        if c.inj_vector >= 0:
            # an injected event goes first: it is delivered as part of the entry that injected it
            v = c.inj_vector
            c.inj_vector = -1
            st = deliver_event_ex(c, v, c.inj_kind, c.inj_has_error, c.inj_error, c.inj_restart, 1)
            if st:
                return st
        if c.tf_armed:
            c.tf_armed = 0
            c.db_status |= 1 << 14                # DR6.BS (SDM 17.3.1.4)
        if c.inhibit and c.icount >= c.shadow_end:
            c.inhibit = 0
        if c.step_exit and c.intercept != NULL and (c.icount != c.step_icount or c.step_due):
            # the armed step exit goes before debug traps (VMX: "MTF VM exits take priority
            # over debug-trap exceptions", SDM Vol. 3C 26.5.2); a pending trap stays pending
            c.step_exit = 0
            st = c.intercept(c, EV_STEP, 0, 0)
            if st:
                return st
        if c.db_status and c.inhibit != INHIBIT_MOVSS:
            # a debug trap ("traps on the previous instruction", SDM 6.9), held back by a MOV SS
            # shadow (6.8.3); its status reaches DR6 as it is delivered
            st = deliver_event(c, DB_VEC, DK_EXCEPTION, 0, 0)
            if st:
                return st
            c.inhibit = 0                         # an exception ends an STI shadow
        if c.icount >= c.hard_limit:
            c.stop_reason = STOP_LIMIT
            return STOP
        if c.icount >= c.run_limit:
            c.stop_reason = STOP_MAX_INSNS
            return STOP
        if now >= c.timer_deadline:
            self._timer_fired()
            if c.exit_request == 2:
                return PYERR
        if c.intercept != NULL:
            # exits the hook armed, in the order step > debug traps (above) > deadline >
            # NMI window > NMI > interrupt window > external interrupt (SDM Vol. 3C 26.5, 26.7)
            if now >= c.exit_deadline:
                c.exit_deadline = U64_MAX
                st = c.intercept(c, EV_DEADLINE, 0, 0)
                if st:
                    return st
            if (c.window_exits & WIN_NMI) and not c.nmi_blocked and c.inhibit != INHIBIT_MOVSS:
                st = c.intercept(c, EV_NMI_WINDOW, 0, 0)
                if st:
                    return st
        if not c.inhibit:
            if c.nmi_pending and (not c.nmi_blocked or c.nmi_block_virtual):
                c.nmi_pending = 0
                st = deliver_event(c, NMI_VEC, DK_NMI, 0, 0)
                if st:
                    return st
            elif (c.rflags & F_IF) and (c.window_exits & WIN_INTR) and c.intercept != NULL:
                st = c.intercept(c, EV_INTR_WINDOW, 0, 0)
                if st:
                    return st
            elif (c.rflags & F_IF) and self._has_irr():
                v = self._ack_interrupt()
                if v >= 0:
                    if c.intercept != NULL:
                        st = c.intercept(c, EV_INTR, v, 0)
                        if st:
                            return st
                    st = deliver_event(c, v, DK_EXTERNAL, 0, 0)
                    if st:
                        return st
        c.next_event = c.run_limit if c.run_limit < c.hard_limit else c.hard_limit
        if c.timer_deadline - c.idle < c.next_event and c.timer_deadline >= c.idle:
            c.next_event = c.timer_deadline - c.idle
        if c.exit_deadline != U64_MAX:
            if c.exit_deadline <= c.icount + c.idle:
                c.next_event = c.icount
            elif c.exit_deadline - c.idle < c.next_event:
                c.next_event = c.exit_deadline - c.idle
        if c.inhibit and c.shadow_end < c.next_event:
            c.next_event = c.shadow_end
        if (c.rflags & F_TF):
            c.tf_armed = 1
            c.next_event = c.icount + 1
        if (c.nmi_pending and (not c.nmi_blocked or c.nmi_block_virtual)) or ((c.rflags & F_IF) and self._has_irr()) or c.window_exits:
            if c.inhibit:
                c.next_event = c.shadow_end
        if c.step_exit:
            c.next_event = c.icount if c.step_due or c.icount != c.step_icount else c.icount + 1
        return OK

    cdef int _has_irr(self) noexcept:
        cdef int k
        for k in range(8):
            if self.c.irr[k]:
                return 1
        return 0

    cdef int _ack_interrupt(self):
        """INTA: the highest-priority requested vector (an interrupt controller may override)."""
        cdef int k, b
        ctl = self.intr_controller
        if ctl is not None:
            for k in range(8):
                self.c.irr[k] = 0          # the controller re-asserts the line if more is pending
            return ctl.acknowledge()
        for k in range(7, -1, -1):
            if self.c.irr[k]:
                for b in range(31, -1, -1):
                    if self.c.irr[k] & (1u << b):
                        self.c.irr[k] &= ~(1u << b)
                        return k * 32 + b
        return -1

    def _timer_fired(self):
        self.c.timer_deadline = U64_MAX
        ctl = self.intr_controller
        if ctl is not None:
            try:
                ctl.timer_fired()
            except BaseException as e:
                self._defer_error(e)

    cdef int _execute(self):
        cdef Cpu* c = &self.c
        cdef Block* b
        cdef Block* prev = NULL
        cdef Insn* ins
        cdef int st = 0, k, n
        self.chain_gen += 1
        while True:
            if c.icount >= c.next_event or c.exit_request:
                self.chain_gen += 1
                prev = NULL
                st = self._events()
                if st:
                    return st
            if c.halted:
                st = self._halt_wait()
                if st:
                    return st
                continue
            if self.graveyard:
                self._free_graveyard()
            b = NULL
            if prev != NULL and prev.gen == self.chain_gen:
                if prev.next_rip[0] == c.rip:
                    b = <Block*>prev.next[0]
                elif prev.next_rip[1] == c.rip:
                    b = <Block*>prev.next[1]
            if b == NULL:
                b = lookup_block(self, &st)
                if b == NULL:
                    prev = NULL
                    if st == EXC:
                        self.chain_gen += 1
                        c.rip_start = c.rip
                        st = deliver_pending_exception(c)
                        if st:
                            return st
                        continue
                    return st
                if prev != NULL and b.gen != U64_MAX:
                    if prev.gen != self.chain_gen:
                        prev.gen = self.chain_gen
                        prev.next[0] = NULL
                        prev.next[1] = NULL
                        prev.next_rip[0] = prev.next_rip[1] = U64_MAX
                    prev.next[prev.next_slot] = <void*>b
                    prev.next_rip[prev.next_slot] = c.rip
                    prev.next_slot ^= 1
            c.block_dirty = 0
            n = b.n
            k = 0
            while k < n:
                ins = &b.insns[k]
                c.rip_start = c.rip
                c.rip += ins.len
                st = ins.fn(c, ins)
                if st:
                    break
                c.icount += 1
                k += 1
                if c.icount >= c.next_event or c.block_dirty:
                    break
            if st == 0 and k == n and not c.block_dirty and b.gen != U64_MAX:
                prev = b
                continue
            prev = NULL
            if st:
                self.chain_gen += 1
                if st == EXC:
                    if c.exc_trap:
                        c.icount += 1
                    st = deliver_pending_exception(c)
                    if st:
                        return st
                elif st == REDECODE:
                    c.icount += 1
                elif st == STOP:
                    if c.stop_retired:
                        c.icount += 1
                        c.stop_retired = 0
                    return st
                else:
                    return st

    cdef int _halt_wait(self):
        """HLT: wait for an interrupt. Time jumps to the next timer deadline (deterministic), or
        to the exit deadline the intercept hook armed, whichever comes first."""
        cdef Cpu* c = &self.c
        cdef uint64_t deadline = U64_MAX
        if (c.nmi_pending and (not c.nmi_blocked or c.nmi_block_virtual)) or ((c.rflags & F_IF) and self._has_irr()):
            c.halted = 0
            c.next_event = c.icount
            return OK
        if (c.rflags & F_IF) and c.timer_deadline != U64_MAX:
            deadline = c.timer_deadline
        if c.intercept != NULL and c.exit_deadline < deadline:
            deadline = c.exit_deadline
        if deadline != U64_MAX:
            if deadline > c.icount + c.idle:
                c.idle = deadline - c.icount
            c.next_event = c.icount
            st = self._events()
            if st:
                return st
            if self._has_irr() or c.nmi_pending:
                c.halted = 0
            return OK
        c.stop_reason = STOP_HLT
        c.halted = 0        # the run ends here; a later run() continues after the HLT
        return STOP

    def run(self, max_instructions=None):
        """Execute until a stop; returns (reason code, status)."""
        self.run_native(U64_MAX if max_instructions is None else <uint64_t>max_instructions)
        return self.c.stop_reason, self.c.stop_status

    cdef int run_native(self, uint64_t max_instructions) except -1:
        """`run` for compiled callers: the stop reason is left in c.stop_reason (STOP_*);
        max_instructions U64_MAX: no limit."""
        cdef Cpu* c = &self.c
        cdef int st
        c.run_limit = U64_MAX if max_instructions == U64_MAX else c.icount + max_instructions
        c.stop_reason = STOP_NONE
        c.exit_request = 0
        c.next_event = c.icount
        self.deferred_error = None
        self.unsupported_what = None
        st = self._execute()
        c.next_event = c.icount
        if st == PYERR or c.exit_request == 2:
            err = self.deferred_error
            self.deferred_error = None
            c.exit_request = 0
            raise err
        c.exit_request = 0
        return 0

    # --- callbacks from the C side ------------------------------------------------------

    def _defer_error(self, e):
        if self.deferred_error is None:
            self.deferred_error = e
        self.c.exit_request = 2

    def _unsupported(self, what):
        self.unsupported_what = what
        self.c.stop_reason = STOP_UNSUPPORTED

    def _mmio_claims(self, uint64_t pa):
        for lo, hi, dev in self.mmio_handlers:
            if lo <= pa < hi:
                return True
        return False

    def _mmio_read(self, uint64_t pa, int size):
        for lo, hi, dev in self.mmio_handlers:
            if lo <= pa < hi:
                return dev.mmio_read(pa, size)
        return None

    def _mmio_write(self, uint64_t pa, int size, uint64_t value):
        for lo, hi, dev in self.mmio_handlers:
            if lo <= pa < hi:
                dev.mmio_write(pa, size, value)
                return

    def _map_mmio(self, uint64_t lo, uint64_t hi, device):
        self.mmio_handlers.append((lo, hi, device))
        if lo < self.c.mmio_lo:
            self.c.mmio_lo = lo
        tlb_flush(&self.c, 0)

    # --- state access for the Python faces -------------------------------------------------

    def get_gpr(self, int i):
        return self.c.regs[i]

    def set_gpr(self, int i, uint64_t v):
        self.c.regs[i] = v

    property rip:
        def __get__(self):
            return self.c.rip
        def __set__(self, uint64_t v):
            self.c.rip = v

    property rflags:
        def __get__(self):
            return get_rflags(&self.c)
        def __set__(self, uint64_t v):
            self.c.rflags = (v & F_DEFINED) | 2
            self.c.lf_op = LF_NONE
            update_mode(&self.c)
            self.c.next_event = self.c.icount

    property insn_start:
        """The address of the instruction being executed (where a fault would point)."""
        def __get__(self):
            return self.c.rip_start

    property pf_addr:
        def __get__(self):
            return self.c.pf_addr

    property icount:
        def __get__(self):
            return self.c.icount

    property time:
        def __get__(self):
            return self.c.icount + self.c.idle

    property cpl:
        def __get__(self):
            return self.c.cpl

    property code_bits:
        def __get__(self):
            return self.c.code_bits

    property halted:
        def __get__(self):
            return bool(self.c.halted)
        def __set__(self, v):
            self.c.halted = 1 if v else 0

    def get_seg(self, int i):
        cdef Seg* s = &self.c.seg[i]
        return (s.sel, s.base, s.limit, s.attr)

    def set_seg(self, int i, uint16_t sel, uint64_t base, uint32_t limit, uint32_t attr):
        cdef Seg* s = &self.c.seg[i]
        s.sel = sel
        s.base = base
        s.limit = limit
        s.attr = attr
        update_mode(&self.c)

    def get_dtr(self, int idt):
        if idt:
            return (self.c.idtr_base, self.c.idtr_limit)
        return (self.c.gdtr_base, self.c.gdtr_limit)

    def set_dtr(self, int idt, uint64_t base, uint32_t limit):
        if idt:
            self.c.idtr_base = base
            self.c.idtr_limit = limit
        else:
            self.c.gdtr_base = base
            self.c.gdtr_limit = limit

    def get_sys(self, str name):
        return _ops_sys.get_named(&self.c, name)

    def set_sys_raw(self, str name, uint64_t v):
        """Set a control register / EFER without checks (loaders and reset only)."""
        _ops_sys.set_named_raw(&self.c, name, v)

    def mov_to_cr(self, int n, uint64_t v):
        """MOV to CRn with the architectural checks; returns None or (vector, error code)."""
        cdef int st = _ops_sys.write_cr(&self.c, n, v)
        if st == EXC:
            return (self.c.exc_vector, self.c.exc_error)
        return None

    def rdmsr(self, uint32_t index):
        cdef uint64_t v = 0
        cdef int st = _ops_sys.read_msr(&self.c, index, &v)
        if st == EXC:
            return (self.c.exc_vector, self.c.exc_error)
        return v

    def wrmsr(self, uint32_t index, uint64_t v):
        cdef int st = _ops_sys.write_msr(&self.c, index, v)
        if st == EXC:
            return (self.c.exc_vector, self.c.exc_error)
        return None

    def request_interrupt(self, int vector):
        self.c.irr[vector >> 5] |= 1u << (vector & 31)
        self.c.next_event = self.c.icount

    def request_nmi(self):
        self.c.nmi_pending = 1
        self.c.next_event = self.c.icount

    def set_timer_deadline(self, uint64_t t):
        self.c.timer_deadline = t
        self.c.next_event = self.c.icount

    def inject_event(self, int vector, int kind, error=None, uint64_t length=0):
        """Deliver an event before the next instruction, as if it happened there (VMX VM-entry
        event injection, SVM EVENTINJ). `kind` is a delivery kind (_defs.pxd DK_*); software
        kinds push RIP + `length` and report RIP if their delivery faults. The event itself is
        not offered to the intercept hook; exceptions during its delivery are."""
        self.c.inj_vector = vector & 0xFF
        self.c.inj_kind = kind
        self.c.inj_has_error = error is not None
        self.c.inj_error = <uint32_t>(error if error is not None else 0)
        self.c.inj_restart = self.c.rip
        self.c.rip = self.c.rip + length
        self.c.next_event = self.c.icount

    property delivering:
        """The event being delivered when the intercept hook is asked (an exception nested in
        its delivery, a second-level fault on the way): (vector, kind, error or None, length of
        a software interrupt's instruction), or None."""
        def __get__(self):
            if self.c.delivering < 0:
                return None
            return (self.c.delivering, self.c.dv_kind,
                    self.c.dv_error if self.c.dv_has_error else None, self.c.dv_len)

    property interruptibility:
        """Blocking state: 1 STI shadow, 2 MOV SS shadow, 8 NMIs blocked (the VMX layout of
        SDM Vol. 3C Table 25-3). Setting a shadow blocks events until one instruction retires."""
        def __get__(self):
            cdef int v = 8 if self.c.nmi_blocked else 0
            if self.c.inhibit and self.c.icount < self.c.shadow_end:
                v |= 1 if self.c.inhibit == INHIBIT_STI else 2
            return v
        def __set__(self, int v):
            self.c.nmi_blocked = 1 if v & 8 else 0
            if v & 3:
                self.c.inhibit = INHIBIT_MOVSS if v & 2 else INHIBIT_STI
                self.c.shadow_end = self.c.icount + 1
            else:
                self.c.inhibit = 0
            self.c.next_event = self.c.icount

    property nmi_block_virtual:
        """1: NMI blocking applies to injected (virtual) NMIs only; a pending real NMI is still
        offered to the intercept hook (VMX "virtual NMIs", SDM Vol. 3C 26.7.1). Off without a hook."""
        def __get__(self):
            return bool(self.c.nmi_block_virtual)
        def __set__(self, v):
            self.c.nmi_block_virtual = 1 if v else 0
            self.c.next_event = self.c.icount

    def set_window_exits(self, int mask):
        """Ask the intercept hook (EV_INTR_WINDOW / EV_NMI_WINDOW) at every instruction boundary
        where external interrupts (mask 1) / NMIs (mask 2) could be delivered."""
        self.c.window_exits = mask & 3
        self.c.next_event = self.c.icount

    def set_step_exit(self, bint on, bint due=False):
        """Ask the intercept hook (EV_STEP) at the boundary after the next instruction retires
        or the next event is delivered (`due`: at the next boundary, before any instruction)."""
        self.c.step_exit = 1 if on else 0
        self.c.step_icount = self.c.icount
        self.c.step_due = 1 if due else 0
        self.c.next_event = self.c.icount

    def set_exit_deadline(self, uint64_t t):
        """Ask the intercept hook (EV_DEADLINE) once when time reaches t (U64 max: never)."""
        self.c.exit_deadline = t
        self.c.next_event = self.c.icount

    def set_tsc_transform(self, uint64_t mult=0, uint32_t shift=0, uint64_t add=0):
        """What software reads as the TSC: ((TSC * mult) >> shift) + add (mult 0: TSC + add)."""
        if shift > 127:
            raise ValueError("shift must be below 128")
        self.c.tsc_mult = mult
        self.c.tsc_shift = shift
        self.c.tsc_add = add

    def set_instruction_limit(self, uint64_t n):
        self.c.hard_limit = n

    def stop_request(self):
        """A device asks the run to return to Python after the current instruction."""
        self.c.exit_request = 1
        self.c.stop_reason = STOP_REQUEST
        self.c.next_event = self.c.icount

    def set_exit_status(self, uint64_t status):
        self.c.stop_reason = STOP_EXIT_PORT
        self.c.stop_status = status
        self.c.exit_request = 1
        self.c.next_event = self.c.icount

    def set_hook(self, obj):
        """Install a Python intercept hook (vmx/svm): sensitive instructions and events ask
        `obj.intercept(event, a, b)` whether they exit. None removes it."""
        self.attach_hook(obj, py_intercept)

    cdef void attach_hook(self, object obj, intercept_t fn):
        """`set_hook` for compiled layers whose own intercept function `fn` may answer some
        events in C and pass the rest to py_intercept (which asks `obj`)."""
        self.hook = obj
        if obj is None:
            self.c.intercept = NULL
            self.c.hook_obj = NULL
            # what the hook armed ends with it
            self.c.window_exits = 0
            self.c.nmi_block_virtual = 0
            self.c.step_exit = 0
            self.c.exit_deadline = U64_MAX
            self.c.iret_nmi_keep = 0
            self.c.inj_vector = -1
        else:
            self.c.hook_obj = <void*>obj
            self.c.intercept = fn

    def current_insn(self):
        """The decoded instruction that offered itself to the hook, as a dict of its fields."""
        cdef Insn* i = self.c.cur_insn
        if i == NULL:
            return None
        return dict(mnem=i.mnem, code=i.code, len=i.len, osz=i.osz, ssz=i.ssz, asz=i.asz,
                    k0=i.k0, k1=i.k1, k2=i.k2, r0=i.r0, r1=i.r1, r2=i.r2, base=i.base,
                    index=i.index, scale=i.scale, seg=i.seg, disp=<uint64_t>i.disp, imm=i.imm,
                    imm2=i.imm2, pfx=i.pfx, nops=i.nops)

    def effective_address(self):
        """The effective address of the current instruction's memory operand (before the
        segment base), computed as the instruction does."""
        cdef Insn* i = self.c.cur_insn
        if i == NULL:
            return None
        return ea_of(&self.c, i)

    def flush_tlb(self):
        tlb_flush(&self.c, 0)

    def refresh_mode(self):
        update_paging_mode(&self.c)
        update_mode(&self.c)
        if self.c.pg_mode == PG_PAE:
            load_pdptes(&self.c, self.c.cr3)

    # --- physical memory -------------------------------------------------------------------

    property memory_size:
        def __get__(self):
            return self.memory_size

    def phys_read(self, uint64_t pa, Py_ssize_t n):
        cdef bytearray out = bytearray(n)
        cdef Py_ssize_t k
        cdef uint8_t* p
        if n < 0:
            raise ValueError("negative length")
        if pa + <uint64_t>n <= self.memory_size and pa + <uint64_t>n >= pa and \
                (pa + <uint64_t>n <= self.c.mmio_lo):
            p = self.c.ram + pa
            for k in range(n):
                out[k] = p[k]
            return bytes(out)
        for k in range(n):
            out[k] = <uint8_t>phys_read(&self.c, pa + <uint64_t>k, 1)
        return bytes(out)

    def phys_write(self, uint64_t pa, const uint8_t[:] data):
        cdef Py_ssize_t n = data.shape[0], k
        cdef uint64_t pfn
        if n == 0:
            return
        if pa + <uint64_t>n <= self.memory_size and pa + <uint64_t>n >= pa and \
                (pa + <uint64_t>n <= self.c.mmio_lo):
            memcpy(self.c.ram + pa, &data[0], n)
            for pfn in range(pa >> 12, ((pa + n - 1) >> 12) + 1):
                self.c.dirty_pages[pfn >> 3] |= 1 << (pfn & 7)
                if self.c.code_pages[pfn >> 3] & (1 << (pfn & 7)):
                    self._invalidate_page(pfn)
            return
        for k in range(n):
            phys_write(&self.c, pa + <uint64_t>k, 1, data[k])

    def phys_read_int(self, uint64_t pa, int size):
        return phys_read(&self.c, pa, size)

    def phys_write_int(self, uint64_t pa, int size, uint64_t v):
        phys_write(&self.c, pa, size, v)

    def touched_pages(self):
        """Physical page numbers ever written (by the guest or from Python)."""
        cdef uint64_t pfn, n = self.memory_size >> 12
        return [pfn for pfn in range(n) if self.c.dirty_pages[pfn >> 3] & (1 << (pfn & 7))]

    def translate(self, uint64_t la, int write=0, int fetch=0):
        """Linear -> physical as the current CPL would access it, without side effects on the
        TLB; returns the physical address or raises the fault as (vector, error code)."""
        cdef uint64_t pa = 0
        cdef int acc = ACC_X if fetch else (ACC_W if write else ACC_R)
        cdef int st = translate(&self.c, la, acc, &pa, 0)
        if st == EXC:
            return (self.c.exc_vector, self.c.exc_error)
        return pa

    def decoded_block_count(self):
        return len(self.blocks)

    # --- snapshots (x86.Machine.snapshot / restore) ------------------------------------------

    def cpu_state(self):
        """The whole Cpu struct as bytes: registers, segments, control registers, MSRs, time,
        pending events, interrupt and timer state. Host pointers in it mean nothing outside
        this Core; `set_cpu_state` keeps this Core's own."""
        return PyBytes_FromStringAndSize(<char*>&self.c, sizeof(Cpu))

    def set_cpu_state(self, const uint8_t[:] state):
        """Load a `cpu_state()` of this Core. Kept from the current state: the memory and
        bitmap pointers, the intercept hook and second-level translation (they belong to the
        run in progress, not to the snapshot), the MMIO bound. The TLB and decoded blocks are
        flushed."""
        cdef Cpu* c = &self.c
        cdef uint8_t* ram = c.ram
        cdef uint8_t* code_pages = c.code_pages
        cdef uint8_t* dirty_pages = c.dirty_pages
        cdef uint64_t ram_size = c.ram_size, mmio_lo = c.mmio_lo
        cdef slat_t slat = c.slat
        cdef void* slat_ctx = c.slat_ctx
        cdef intercept_t intercept = c.intercept
        cdef void* hook_obj = c.hook_obj
        cdef void* owner = c.owner
        cdef code_write_t code_write = c.code_write
        if state.shape[0] != sizeof(Cpu):
            raise ValueError(f"a Cpu state is {sizeof(Cpu)} bytes, not {state.shape[0]}")
        tlb_flush(c, 0)         # the entries valid now (the TLB may track them itself) ...
        memcpy(c, &state[0], sizeof(Cpu))
        c.ram, c.ram_size, c.code_pages, c.dirty_pages = ram, ram_size, code_pages, dirty_pages
        c.slat, c.slat_ctx, c.intercept, c.hook_obj = slat, slat_ctx, intercept, hook_obj
        c.owner, c.code_write, c.mmio_lo = owner, code_write, mmio_lo
        c.cur_insn = NULL
        self.flush_decoded()    # ... and those valid in the snapshot

    def flush_decoded(self):
        """Drop every decoded block and the whole TLB. Safe during a run: blocks go to the
        graveyard, freed at the loop's next block boundary."""
        cdef uintptr_t a
        for a in self.blocks.values():
            self.graveyard.append(a)
        self.blocks.clear()
        self.page_blocks.clear()
        memset(self.bcache, 0, sizeof(self.bcache))
        memset(self.c.code_pages, 0, ((self.memory_size >> 12) + 8) // 8 + 1)
        self.c.block_dirty = 1
        self.chain_gen += 1
        tlb_flush(&self.c, 0)

    def dirty_bitmap(self):
        """The bitmap of pages ever written (bit n: page n), as bytes."""
        return PyBytes_FromStringAndSize(<char*>self.c.dirty_pages, ((self.memory_size >> 12) + 8) // 8 + 1)

    def set_dirty_bitmap(self, const uint8_t[:] bitmap):
        if bitmap.shape[0] != ((self.memory_size >> 12) + 8) // 8 + 1:
            raise ValueError("the dirty-page bitmap of another memory size")
        memcpy(self.c.dirty_pages, &bitmap[0], bitmap.shape[0])


# The intercept events and delivery kinds of _defs.pxd, for Python hooks (x86.intercept):
# their numbers are written once, in the C enums.
INTERCEPT_EVENTS = dict(EXCEPTION=EV_EXCEPTION, INSN=EV_INSN, TRIPLE_FAULT=EV_TRIPLE_FAULT,
                        INTR=EV_INTR, NMI=EV_NMI, IO=EV_IO, MSR=EV_MSR, CR=EV_CR, HLT=EV_HLT,
                        STEP=EV_STEP, DEADLINE=EV_DEADLINE, INTR_WINDOW=EV_INTR_WINDOW,
                        NMI_WINDOW=EV_NMI_WINDOW, DISABLED=EV_DISABLED, TASK_SWITCH=EV_TASK_SWITCH)
EXCEPTION_FLAGS = dict(IRET_NMI=EVF_IRET_NMI)
TASK_SWITCH_SOURCES = dict(CALL=TS_CALL, IRET=TS_IRET, JMP=TS_JMP, IDT=TS_IDT)
DELIVERY_KINDS = dict(EXCEPTION=DK_EXCEPTION, SOFT_INT=DK_SOFT_INT, SOFT_EXC=DK_SOFT_EXC,
                      EXTERNAL=DK_EXTERNAL, NMI=DK_NMI, PRIV_SOFT=DK_PRIV_SOFT)


cdef inline Block* lookup_block(Core self, int* status):
    """The block at CS:RIP: translate the fetch through the TLB, then the block cache."""
    cdef Cpu* c = &self.c
    cdef uint64_t la, pa
    cdef TlbEntry* e
    cdef int st, mode
    cdef Block* b
    la = c.rip + c.segbase[CS]
    if c.seg_checks:
        if c.rip > c.seg[CS].limit:
            status[0] = gp0(c)
            return NULL
        la = <uint32_t>la
    e = &c.tlb[c.tlb_user][(la >> 12) & (TLB_N - 1)]
    if e.tag_x == (la & ~(<uint64_t>0xFFF)):
        pa = e.pa | (la & 0xFFF)
    else:
        st = translate(c, la, ACC_X, &pa, 1)
        if st:
            status[0] = st
            return NULL
    mode = mode_index(c)
    b = self.bcache[block_hash(pa, mode)]
    if b != NULL and b.pa == pa and b.mode == <uint32_t>mode:
        return b
    return self._lookup_slow(la, pa, status)
