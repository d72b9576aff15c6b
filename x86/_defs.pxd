# The processor's typed state, shared by every core module.
# Declarations only (house style: .pxd declares, .pyx implements); the few
# inline helpers here are on the per-instruction path and must inline.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int64_t, int32_t, uintptr_t, intptr_t

cdef extern from "stdint.h":
    const uint64_t U64_MAX "UINT64_MAX"     # a C constant: Cython would box the literal

# --- status codes returned by every handler and memory access -------------
cdef enum:
    OK = 0
    EXC = 1          # an exception is pending in Cpu.exc_* (the loop delivers it)
    STOP = 2         # the run ends: Cpu.stop_reason says why
    REDECODE = 3     # state changed that the decoded block depends on: re-enter the loop
    PYERR = 4        # a Python device handler raised; the loop re-raises it

# --- stop reasons (Cpu.stop_reason) ----------------------------------------
cdef enum:
    STOP_NONE = 0
    STOP_HLT = 1
    STOP_SHUTDOWN = 2
    STOP_EXIT_PORT = 3
    STOP_MAX_INSNS = 4
    STOP_LIMIT = 5
    STOP_UNSUPPORTED = 6
    STOP_EXIT = 7        # an intercept hook asked for an exit (vmx/svm)
    STOP_REQUEST = 8     # a device asked the run to return to Python
    STOP_STORM = 9       # exceptions delivered endlessly without an instruction retiring

# --- exception vectors (SDM Vol. 3A 6.3.1 Table 6-1) ----------------------
cdef enum:
    DE_VEC = 0
    DB_VEC = 1
    NMI_VEC = 2
    BP_VEC = 3
    OF_VEC = 4
    BR_VEC = 5
    UD_VEC = 6
    NM_VEC = 7
    DF_VEC = 8
    TS_VEC = 10
    NP_VEC = 11
    SS_VEC = 12
    GP_VEC = 13
    PF_VEC = 14
    MF_VEC = 16
    AC_VEC = 17
    MC_VEC = 18
    XM_VEC = 19
    VE_VEC = 20
    CP_VEC = 21

# --- registers ---------------------------------------------------------------
cdef enum:
    RAX = 0
    RCX = 1
    RDX = 2
    RBX = 3
    RSP = 4
    RBP = 5
    RSI = 6
    RDI = 7
    NOREG = 0xFF
    RIPREG = 0xFE     # base register of a RIP-relative operand

# segment registers in the SDM's encoding order (Vol. 2A 3.1.1.3: ES CS SS DS FS GS)
cdef enum:
    ES = 0
    CS = 1
    SS = 2
    DS = 3
    FS = 4
    GS = 5
    LDTR = 6
    TR = 7
    NSEG = 8

# RFLAGS bits (SDM Vol. 1 3.4.3)
cdef enum:
    F_CF = 1 << 0
    F_PF = 1 << 2
    F_AF = 1 << 4
    F_ZF = 1 << 6
    F_SF = 1 << 7
    F_TF = 1 << 8
    F_IF = 1 << 9
    F_DF = 1 << 10
    F_OF = 1 << 11
    F_IOPL = 3 << 12
    F_NT = 1 << 14
    F_RF = 1 << 16
    F_VM = 1 << 17
    F_AC = 1 << 18
    F_VIF = 1 << 19
    F_VIP = 1 << 20
    F_ID = 1 << 21
    F_ARITH = 0x8D5     # CF PF AF ZF SF OF
    F_DEFINED = 0x3F7FD7  # the bits that exist (bit 1 reads as 1; 3, 5, 15, 63:22 as 0)

# lazy-flag operations: the flags of the last arithmetic op are computed on demand
cdef enum:
    LF_NONE = 0      # rflags holds the arithmetic flags
    LF_ADD = 1
    LF_SUB = 2       # also CMP and NEG (a = 0)
    LF_LOGIC = 3
    LF_INC = 4       # CF comes from lf_c
    LF_DEC = 5
    LF_ADC = 6       # carry-in in lf_c
    LF_SBB = 7

# operand kinds in a decoded instruction
cdef enum:
    K_NONE = 0
    K_REG = 1
    K_MEM = 2
    K_IMM = 3
    K_SREG = 4
    K_CR = 5
    K_DR = 6

# Insn.pfx bits
cdef enum:
    P_LOCK = 1
    P_REP = 2        # F3
    P_REPNE = 4      # F2
    P_A16 = 8        # string/implicit-address size (with asz)

# memory access kinds (for the page walk and #PF error codes)
cdef enum:
    ACC_R = 0
    ACC_W = 1
    ACC_X = 2
    ACC_SYS = 4      # implicit supervisor access (GDT, IDT, TSS) whatever the CPL
    ACC_NOFAULT = 8  # probe: report failure, raise nothing
    # second-level translation only (the `acc` a slat_t receives):
    ACC_PT = 0x100   # the access is to a guest paging-structure entry (a walk read, an A/D update)
    ACC_NOLA = 0x200 # no linear address goes with it (PAE PDPTE loading by MOV to CR0/CR3/CR4)

# Second-level translation (EPT, AMD nested paging, the IOMMU's second-level tables): every
# guest-physical access of the processor goes through Cpu.slat when it is not NULL:
#   int slat(Cpu* c, uint64_t gpa, int acc, uint64_t* hpa, uint32_t* rights)
# `acc` is ACC_R/W/X with ACC_PT / ACC_NOLA; Cpu.slat_la holds the linear address being
# translated (unless ACC_NOLA) and, for the final access (no ACC_PT), Cpu.slat_lflags the rights
# guest paging gave that linear address (SLAT_LA_*). It returns 0 and fills *hpa and *rights
# (SLAT_R/W/X: what the software TLB may cache for the page without asking again), or a nonzero
# fault code of its own, recorded in its context (Cpu.slat_ctx): the core then aborts the access
# as a second-level fault (raise_slat_fault) and offers EV_SLAT_FAULT to the intercept hook.
cdef enum:
    SLAT_R = 1
    SLAT_W = 2
    SLAT_X = 4
    SLAT_LA_USER = 1     # U/S = 1 in every paging-structure entry (or paging off)
    SLAT_LA_WRITE = 2    # R/W = 1 in every entry (or paging off)
    SLAT_LA_EXEC = 4     # not execute-disable (or paging off, PAE off, or NXE = 0)
    SLAT_FAULT_VEC = 0x100   # Cpu.exc_vector of a pending second-level fault: not a vector

# paging modes (SDM Vol. 3A 4.1.1)
cdef enum:
    PG_NONE = 0
    PG_32 = 1
    PG_PAE = 2
    PG_4L = 3
    PG_5L = 4

cdef enum:
    TLB_BITS = 10
    TLB_N = 1 << 10
    TLB_LOG_N = 64       # filled entries remembered for a cheap flush (more: a full scan)
    PAGE = 4096
    MAXPHYADDR = 39   # CPUID.80000008H:EAX[7:0] of every profile

ctypedef struct Seg:
    uint64_t base
    uint32_t limit       # effective byte-granular limit
    uint32_t attr        # access rights in the VMCS format (SDM 24.4.1): type 3:0, S 4, DPL 6:5, P 7,
                         # AVL 12, L 13, D/B 14, G 15, unusable 16
    uint16_t sel

ctypedef struct TlbEntry:
    uint64_t tag_r       # linear page if reads hit, else 1 (never page aligned)
    uint64_t tag_w
    uint64_t tag_x
    intptr_t addend      # host address = linear + addend
    uint64_t pa          # physical page
    uint32_t flags       # TLBF_* below

cdef enum:
    TLBF_GLOBAL = 1
    TLB_INVALID = 1

ctypedef struct Cpu
ctypedef struct Insn
ctypedef int (*handler_t)(Cpu* c, Insn* i) noexcept
ctypedef int (*slat_t)(Cpu* c, uint64_t gpa, int acc, uint64_t* hpa, uint32_t* rights) noexcept
ctypedef int (*intercept_t)(Cpu* c, int event, uint64_t a, uint64_t b) noexcept
ctypedef void (*code_write_t)(Cpu* c, uint64_t pa) noexcept

ctypedef struct Insn:
    handler_t fn
    int64_t disp         # memory displacement (RIP-relative: relative to the next instruction)
    uint64_t imm         # first immediate, or branch displacement relative to the next instruction
    uint64_t imm2        # second immediate (ENTER nesting level, far pointer selector)
    uint16_t mnem        # iced-x86 Mnemonic
    uint16_t code        # iced-x86 Code (exact opcode form)
    uint8_t len
    uint8_t osz          # operand size in bytes (operand 0, or the instruction's size)
    uint8_t ssz          # source operand size in bytes
    uint8_t asz          # address size in bytes
    uint8_t k0, k1, k2   # operand kinds K_*
    uint8_t r0, r1, r2   # register operand: byte offset in Cpu.regs (or sreg/cr/dr number)
    uint8_t base, index  # register numbers 0-15, NOREG, RIPREG
    uint8_t scale        # shift count 0-3
    uint8_t seg          # effective segment of the memory operand
    uint8_t cond         # condition code 0-15 (Jcc, SETcc, CMOVcc)
    uint8_t pfx          # P_* bits
    uint8_t nops         # operand count

ctypedef struct Cpu:
    uint64_t regs[16]
    uint64_t rip
    uint64_t rip_start   # the current instruction's address (faults report it)
    uint64_t rflags      # arithmetic bits valid only when lf_op == LF_NONE
    # lazy flags
    uint64_t lf_a
    uint64_t lf_b
    uint64_t lf_res
    uint32_t lf_op
    uint32_t lf_size     # bytes
    uint32_t lf_c        # carry-in (ADC/SBB) or the preserved CF (INC/DEC)
    # segmentation
    Seg seg[8]
    uint64_t segbase[6]  # effective bases used for linear addresses (0 in 64-bit mode but FS/GS)
    uint64_t gdtr_base
    uint64_t idtr_base
    uint32_t gdtr_limit
    uint32_t idtr_limit
    # control, debug, model-specific
    uint64_t cr0, cr2, cr3, cr4, cr8
    uint64_t efer
    uint64_t dr[8]
    uint64_t pdpte[4]    # PAE PDPTE registers (SDM 4.4.1)
    uint64_t star, lstar, cstar, fmask, kernel_gs_base
    uint64_t sysenter_cs, sysenter_esp, sysenter_eip
    uint64_t pat, tsc_aux, tsc_offset, xcr0, feature_control, misc_enable, apic_base
    # derived mode
    int cpl
    int mode64           # CS.L with EFER.LMA: 64-bit mode
    int code_bits        # 16, 32, 64: decode mode
    int stack_size       # 2, 4, 8 bytes: SS.B / 64-bit
    int pg_mode          # PG_*
    int seg_checks       # limit checks apply (not 64-bit mode)
    # time and run control
    uint64_t icount      # retired instructions: the TSC and every timer count these
    uint64_t next_event  # the loop leaves its fast path when icount reaches this
    uint64_t run_limit   # icount at which run() stops (max_instructions)
    uint64_t hard_limit  # icount at which InstructionLimit is raised
    int stop_reason
    uint64_t stop_status
    int exit_request
    # events
    int exc_vector       # pending exception
    int exc_has_error
    uint32_t exc_error
    int exc_trap         # 1: RIP already points after the instruction (INT n, INTO, INT3)
    int exc_soft         # software interrupt INT n (privilege check against the gate DPL)
    int delivering       # vector being delivered (double-fault rules), -1 when none
    int inhibit          # STI / MOV SS interrupt shadow: blocks interrupts until icount passes shadow_end
    uint64_t shadow_end
    int halted
    int nmi_pending
    int nmi_blocked
    int intr_line        # an external interrupt controller has a vector to offer
    # memory
    uint8_t* ram
    uint64_t ram_size
    uint8_t* code_pages  # bitmap: physical pages holding decoded code (writes there take the slow path)
    uint8_t* dirty_pages # bitmap: pages ever written (snapshots)
    TlbEntry tlb[2][1024]   # [user][index]
    int tlb_user         # index of the TLB set in use (CPL == 3)
    uint16_t tlb_log[64] # the entries (set << 10 | index) valid since the last flush, when
    int tlb_log_n        #   tlb_log_n <= TLB_LOG_N; above it, any entry may be valid
    slat_t slat          # second-level translation (EPT/NPT), NULL when off (see SLAT_* above)
    void* slat_ctx       # its context (the walker's own C structure)
    uint64_t slat_la     # the linear address being translated, for the slat's fault record
    uint32_t slat_lflags # SLAT_LA_*: the guest-paging rights of slat_la (final accesses only)
    uint64_t slat_gpa    # a pending second-level fault: the guest-physical address
    uint32_t slat_code   #   and the slat's fault code (nonzero)
    intercept_t intercept
    void* owner          # the Python core object (PyObject*), for device and hook callbacks
    void* hook_obj
    uint64_t mmio_lo     # lowest MMIO address claimed (fast rejection)
    int block_dirty      # the running decoded block was invalidated by a write
    code_write_t code_write   # called when a write lands on a page holding decoded code
    int stop_retired     # a handler returning STOP completed its instruction
    uint64_t idle        # time spent halted: time = icount + idle
    uint32_t irr[8]      # external interrupt vectors requested (an interrupt controller's IRR)
    uint64_t timer_deadline  # time at which the timer hook fires (0xFF.. when none)
    int tf_armed         # single-step trap due after the current instruction
    uint64_t dr6
    uint64_t cr4_valid   # CR4 bits this processor supports (others are reserved: #GP)
    uint64_t efer_valid
    uint64_t rng_state   # RDRAND/RDSEED: a deterministic generator
    # fixed bits another layer imposes on CR0/CR4 (VMX operation: IA32_VMX_CR*_FIXED*); a MOV
    # that breaks them is #GP(0). x86 itself sets none.
    uint64_t cr0_must1, cr0_must0, cr4_must1, cr4_must0
    # read shadows: MOV from CR0/CR4 and SMSW return shadow bits where the mask is 1
    # (VMX guest/host masks, SDM 25.6.6); x86 itself sets none
    uint64_t cr0_read_mask, cr0_read_shadow, cr4_read_mask, cr4_read_shadow
    Insn* cur_insn           # the instruction offering itself to the intercept hook
    uint64_t pf_addr         # the linear address of a pending #PF: CR2 is written only when
                             # the #PF is delivered (a #PF that becomes a VM exit leaves CR2)
    uint64_t storm_icount    # icount at the last event delivery (event-storm bound, _intr.pyx)
    uint32_t storm_count     # deliveries in a row at that icount
    # the event being delivered through the IDT/IVT (`delivering` is its vector, -1 when none):
    # an intercept raised during its delivery (a nested exception, a second-level fault) can
    # report which event was interrupted (VMX IDT-vectoring information, SVM EXITINTINFO)
    int dv_kind              # DK_*
    int dv_has_error
    uint32_t dv_error
    uint32_t dv_len          # software INT n / INT3 / INTO / INT1: the instruction's length
    # an event another layer injects (VMX VM-entry event injection, SVM EVENTINJ): delivered
    # before the next instruction, not offered to the intercept hook itself (a nested exception
    # is); inj_vector -1 when none
    int inj_vector
    int inj_kind
    int inj_has_error
    uint32_t inj_error
    uint64_t inj_restart     # RIP a fault during its delivery reports (software kinds: the instruction)
    # exits the intercept hook arms (all inactive without a hook):
    int nmi_block_virtual    # nmi_blocked holds back injected NMIs only: real ones reach the hook
    uint32_t window_exits    # WIN_* below: ask the hook when interrupts / NMIs become deliverable
    int step_exit            # EV_STEP at the next instruction boundary after an instruction
    uint64_t step_icount     #   retired or an event was delivered (icount when armed)
    int step_due
    uint64_t exit_deadline   # time (icount + idle) at which EV_DEADLINE is offered once
    # RDTSC / RDTSCP / RDMSR(IA32_TSC) see ((TSC * tsc_mult) >> tsc_shift) + tsc_add
    # (tsc_mult 0: no scaling); the TSC itself is icount + idle + tsc_offset
    uint64_t tsc_mult
    uint32_t tsc_shift
    uint64_t tsc_add
    # debug exceptions (SDM Vol. 3A 18.2.3, 17.3.1): the DR6 status bits of the #DB being raised
    # (B3-B0, BD, BS; bit 12 alone: an enabled breakpoint matched, as VMX pending debug
    # exceptions say). They reach DR6 when the #DB is delivered, like CR2 for a #PF (a #DB that
    # becomes a VM exit leaves DR6, SDM Vol. 3C 28.1). A trap is delivered at the next boundary
    # not inside a MOV SS shadow (Vol. 3A 6.8.3).
    uint32_t db_status
    # IRET and NMI blocking: IRET ends NMI blocking even when it faults (Vol. 3A 6.7.1);
    # iret_nmi_keep: it does not (another layer owns NMI blocking: VMX "NMI exiting" without
    # "virtual NMIs", Vol. 3C 26.3). exc_iret_nmi: an IRET that ended NMI blocking is running,
    # or raised the exception about to be delivered (offered with EVF_IRET_NMI).
    int iret_nmi_keep
    int exc_iret_nmi


# --- inline helpers on the hot path -------------------------------------------

cdef inline uint64_t size_mask(int size) noexcept nogil:
    if size >= 8:
        return U64_MAX
    return (<uint64_t>1 << (size * 8)) - 1

cdef inline uint64_t sign_bit(int size) noexcept nogil:
    return <uint64_t>1 << (size * 8 - 1)

cdef inline uint64_t sext(uint64_t v, int size) noexcept nogil:
    if size == 1:
        return <uint64_t><int64_t>(<signed char>v)
    if size == 2:
        return <uint64_t><int64_t>(<short>v)
    if size == 4:
        return <uint64_t><int64_t>(<int>v)
    return v

cdef inline uint64_t rd_reg(Cpu* c, uint8_t off, int size) noexcept nogil:
    cdef uint8_t* p = (<uint8_t*>c.regs) + off
    if size == 8:
        return (<uint64_t*>p)[0]
    if size == 4:
        return (<uint32_t*>p)[0]
    if size == 2:
        return (<uint16_t*>p)[0]
    return p[0]

cdef inline void wr_reg(Cpu* c, uint8_t off, int size, uint64_t v) noexcept nogil:
    """SDM Vol. 1 3.4.1.1: 32-bit results are zero-extended to 64 bits; 8/16-bit ones merge."""
    cdef uint8_t* p = (<uint8_t*>c.regs) + off
    if size == 8:
        (<uint64_t*>p)[0] = v
    elif size == 4:
        (<uint64_t*>p)[0] = <uint32_t>v
    elif size == 2:
        (<uint16_t*>p)[0] = <uint16_t>v
    else:
        p[0] = <uint8_t>v

cdef inline void set_lazy(Cpu* c, uint32_t op, int size, uint64_t a, uint64_t b, uint64_t res) noexcept nogil:
    c.lf_op = op
    c.lf_size = size
    c.lf_a = a
    c.lf_b = b
    c.lf_res = res

cdef inline int parity8(uint64_t v) noexcept nogil:
    cdef uint32_t x = <uint8_t>v
    x ^= x >> 4
    x ^= x >> 2
    x ^= x >> 1
    return (~x) & 1

cdef inline uint64_t lazy_cf(Cpu* c) noexcept nogil:
    cdef uint64_t m = size_mask(c.lf_size)
    cdef uint32_t op = c.lf_op
    if op == LF_NONE:
        return c.rflags & 1
    if op == LF_ADD:
        return (c.lf_res & m) < (c.lf_a & m)
    if op == LF_SUB:
        return (c.lf_a & m) < (c.lf_b & m)
    if op == LF_LOGIC:
        return 0
    if op == LF_ADC:
        if c.lf_c:
            return (c.lf_res & m) <= (c.lf_a & m)
        return (c.lf_res & m) < (c.lf_a & m)
    if op == LF_SBB:
        if c.lf_c:
            return (c.lf_a & m) <= (c.lf_b & m)
        return (c.lf_a & m) < (c.lf_b & m)
    return c.lf_c          # INC / DEC preserve CF

cdef inline uint64_t lazy_zf(Cpu* c) noexcept nogil:
    if c.lf_op == LF_NONE:
        return (c.rflags >> 6) & 1
    return (c.lf_res & size_mask(c.lf_size)) == 0

cdef inline uint64_t lazy_sf(Cpu* c) noexcept nogil:
    if c.lf_op == LF_NONE:
        return (c.rflags >> 7) & 1
    return (c.lf_res & sign_bit(c.lf_size)) != 0

cdef inline uint64_t lazy_of(Cpu* c) noexcept nogil:
    cdef uint64_t sb = sign_bit(c.lf_size)
    cdef uint32_t op = c.lf_op
    if op == LF_NONE:
        return (c.rflags >> 11) & 1
    if op == LF_ADD or op == LF_ADC or op == LF_INC:
        return ((c.lf_a ^ c.lf_res) & (c.lf_b ^ c.lf_res) & sb) != 0
    if op == LF_SUB or op == LF_SBB or op == LF_DEC:
        return ((c.lf_a ^ c.lf_b) & (c.lf_a ^ c.lf_res) & sb) != 0
    return 0

cdef inline uint64_t get_rflags(Cpu* c) noexcept nogil:
    """Materialize RFLAGS (SDM Vol. 1 3.4.3); bit 1 is always 1."""
    if c.lf_op == LF_NONE:
        return c.rflags | 2
    cdef uint64_t f = c.rflags & ~(<uint64_t>F_ARITH)
    f |= lazy_cf(c)
    f |= <uint64_t>parity8(c.lf_res) << 2
    f |= ((c.lf_a ^ c.lf_b ^ c.lf_res) & 0x10) if c.lf_op != LF_LOGIC else 0
    f |= lazy_zf(c) << 6
    f |= lazy_sf(c) << 7
    f |= lazy_of(c) << 11
    return f | 2

cdef inline void flush_flags(Cpu* c) noexcept nogil:
    c.rflags = get_rflags(c)
    c.lf_op = LF_NONE

cdef inline int test_cond(Cpu* c, int cc) noexcept nogil:
    """Condition codes of Jcc/SETcc/CMOVcc (SDM Vol. 1 Appendix B, Table B-1)."""
    cdef int r
    cdef int k = cc >> 1
    if k == 0:
        r = <int>lazy_of(c)
    elif k == 1:
        r = <int>lazy_cf(c)
    elif k == 2:
        r = <int>lazy_zf(c)
    elif k == 3:
        r = <int>(lazy_cf(c) | lazy_zf(c))
    elif k == 4:
        r = <int>lazy_sf(c)
    elif k == 5:
        if c.lf_op == LF_NONE:
            r = (c.rflags >> 2) & 1
        else:
            r = parity8(c.lf_res)
    elif k == 6:
        r = <int>(lazy_sf(c) != lazy_of(c))
    else:
        r = <int>(lazy_zf(c) | (lazy_sf(c) != lazy_of(c)))
    return r ^ (cc & 1)


cdef inline int raise_exc(Cpu* c, int vector, int has_error, uint32_t error) noexcept nogil:
    """Record an exception for the loop to deliver; returns EXC for the handler to pass up."""
    c.exc_vector = vector
    c.exc_has_error = has_error
    c.exc_error = error
    c.exc_trap = 0
    c.exc_soft = 0
    return EXC

cdef inline int raise_slat_fault(Cpu* c, uint64_t gpa, uint32_t code) noexcept nogil:
    """Second-level translation refused a guest-physical access: the access (and the instruction
    or event delivery making it) is aborted with no architectural effect, and the loop offers
    EV_SLAT_FAULT to the intercept hook (_intr.pyx). Not an exception: no double-fault rules."""
    c.exc_vector = SLAT_FAULT_VEC
    c.exc_has_error = 0
    c.exc_error = 0
    c.exc_trap = 0
    c.exc_soft = 0
    c.slat_gpa = gpa
    c.slat_code = code
    return EXC

cdef inline int gp0(Cpu* c) noexcept nogil:
    return raise_exc(c, GP_VEC, 1, 0)

cdef inline int ud(Cpu* c) noexcept nogil:
    return raise_exc(c, UD_VEC, 0, 0)

# events offered to the intercept hook ("may this exit?"); vmx and svm install the hook
cdef enum:
    EV_EXCEPTION = 1     # a = vector, b = error code
    EV_INSN = 2          # a = mnemonic (sensitive instruction), b = detail
    EV_TRIPLE_FAULT = 3
    EV_INTR = 4          # external interrupt, a = vector
    EV_NMI = 5
    EV_IO = 6            # a = port | size << 16 | in << 24 | string << 25 | rep << 26, b = value
    EV_MSR = 7           # a = index, b = 1 for WRMSR
    EV_CR = 8            # a = cr | write << 8, b = value
    EV_HLT = 9
    EV_STEP = 10         # an armed one-instruction step completed (Cpu.step_exit)
    EV_DEADLINE = 11     # the armed exit deadline passed (Cpu.exit_deadline)
    EV_INTR_WINDOW = 12  # IF = 1 and no STI / MOV SS shadow (Cpu.window_exits & WIN_INTR)
    EV_NMI_WINDOW = 13   # NMIs not blocked and no MOV SS shadow (Cpu.window_exits & WIN_NMI)
    EV_DISABLED = 14     # a = mnemonic of an instruction another layer may disable; true: #UD
    EV_TASK_SWITCH = 15  # a = new TSS selector, b = source (TS_* of _task.pxd), after the checks
                         # that precede a task switch; true: the switch becomes an exit
    EV_SLAT_FAULT = 16   # second-level translation fault: a = guest-physical address, b = the
                         # slat's fault code; RIP is at the instruction (or at the event's restart
                         # point with `delivering` set); not taking it stops the run (Unsupported)

# EV_EXCEPTION's b: the error code (0xFFFFFFFF: none) | delivery kind << 32 | flags
cdef enum:
    EVF_IRET_NMI = 1 << 8    # (in b >> 32) a fault of an IRET that ended NMI blocking

cdef enum:
    WIN_INTR = 1
    WIN_NMI = 2

# Cpu.inhibit: which instruction opened the interrupt shadow
cdef enum:
    INHIBIT_STI = 1
    INHIBIT_MOVSS = 2

# kinds of event delivery (SDM 6.4-6.5)
cdef enum:
    DK_EXCEPTION = 0     # hardware exception (EXT = 1 in nested error codes)
    DK_SOFT_INT = 1      # INT n
    DK_SOFT_EXC = 2      # INT3, INTO (software exceptions: DPL check, EXT = 0)
    DK_EXTERNAL = 3      # external interrupt
    DK_NMI = 4
    DK_PRIV_SOFT = 5     # INT1 (ICEBP)


cdef inline int canonical(Cpu* c, uint64_t v) noexcept nogil:
    """Canonical form (SDM Vol. 1 3.3.7.1): bits 63:N-1 all equal, N = 57 with 5-level paging
    (CR4.LA57) and 48 otherwise."""
    if c.pg_mode == PG_5L:
        return ((v + (<uint64_t>1 << 56)) >> 57) == 0
    return ((v + (<uint64_t>1 << 47)) >> 48) == 0


cdef inline int stack_fault(Cpu* c) noexcept nogil:
    """A stack access that fails the canonical check is #SS(0), not #GP(0) (SDM Vol. 3A 6.15)."""
    if c.exc_vector == GP_VEC and c.exc_error == 0:
        c.exc_vector = SS_VEC
    return EXC
