# The EPT walker's C data (SDM Vol. 3C 29.3 "The Extended Page Table Mechanism (EPT)" and 29.4
# "Caching Translation Information"): one EptCtx per logical processor, reached from the core as
# Cpu.slat_ctx while Cpu.slat is ept_slat. Declarations only; _walk.pyx implements them.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from x86._defs cimport Cpu

# outcome of a translation (EptWalk.status, EptCtx.f_kind, the fault code the core receives)
cdef enum:
    EPT_OK = 0
    EPT_VIOLATION = 1        # 29.3.3.2 -> VM exit 48 (or #VE)
    EPT_MISCONFIG = 2        # 29.3.3.1 -> VM exit 49
    EPT_PML_FULL = 3         # 29.3.6   -> VM exit 62 (page-modification log full)

# EptCtx.caps: what the processor supports (IA32_VMX_EPT_VPID_CAP, SDM Appendix A.10) and the
# VM-execution controls that change the walk
cdef enum:
    CAP_EXEC_ONLY = 1        # A.10 bit 0: execute-only translations
    CAP_2M = 2               # A.10 bit 16: EPT PDEs may map 2-MByte pages
    CAP_1G = 4               # A.10 bit 17: EPT PDPTEs may map 1-GByte pages
    CAP_ADV_INFO = 8         # A.10 bit 22: advanced VM-exit information for EPT violations
    CAP_MBEC = 16            # "mode-based execute control for EPT" (secondary control bit 22)

# bits of an EPT paging-structure entry (Tables 29-1 to 29-6)
cdef enum:
    E_R = 1
    E_W = 2
    E_X = 4                  # execute; with MBEC: execute for supervisor-mode linear addresses
    E_PS = 0x80              # EPT PDPTE / PDE: maps a page
    E_A = 0x100
    E_D = 0x200
    E_XU = 0x400             # with MBEC: execute for user-mode linear addresses
    E_RIGHTS = 0x407

cdef enum:
    GPM_BITS = 11
    GPM_N = 1 << 11          # guest-physical mappings cached (direct-mapped by page number)
    EPT_MAX_LEVELS = 5

ctypedef struct GpmEntry:
    # a guest-physical mapping (29.4.1): valid while gen == EptCtx.gen
    uint64_t gen
    uint64_t gfn             # guest-physical page number
    uint64_t ep4ta           # the EPTP bits 51:12 it was created under (its tag)
    uint64_t hpa             # host-physical 4-KByte page
    uint32_t rights          # E_R|E_W|E_X|E_XU: the logical AND across the entries used
    uint8_t dirty            # a write needs no walk (A/D off, or the dirty flag already set)
    uint8_t memtype          # bits 5:3 of the leaf entry
    uint8_t ipat             # bit 6 of the leaf entry
    uint8_t shift            # log2 of the page size (12, 21, 30)
    uint8_t sve              # bit 63 (suppress #VE) of the entry that maps the page

ctypedef struct EptWalk:
    # one translation, as the walker saw it (the debugger's view, the differential tests)
    int status               # EPT_*
    uint64_t qual            # EPT-violation exit qualification bits the walker knows (Table 28-7)
    uint64_t hpa
    uint32_t rights          # E_RIGHTS bits ANDed across the entries used (0 past a not-present one)
    int memtype, ipat, shift
    int levels               # page-walk length
    int n                    # entries read; addr/ent[0] is the top level
    uint64_t addr[5]
    uint64_t ent[5]
    int dirty_set            # this access set a dirty flag from 0 to 1 (and logged it with PML)

ctypedef struct EptCtx:
    uint64_t eptp
    uint64_t ep4ta           # bits MAXPHYADDR-1:12 of EPTP: the root table, and the cache tag
    uint64_t slot_salt       # spreads the mappings of different EP4TAs over the cache slots
    int levels               # 4 or 5 (EPTP bits 5:3 plus 1)
    int ad                   # EPTP bit 6: accessed and dirty flags
    uint32_t caps            # CAP_*
    uint64_t rsvd_table      # reserved bits of an entry that references a table
    uint64_t rsvd_pte        # ... of an EPT PTE
    uint64_t rsvd_2m         # ... of an EPT PDE that maps a 2-MByte page
    uint64_t rsvd_1g         # ... of an EPT PDPTE that maps a 1-GByte page
    # page-modification logging (29.3.6): the PML address and the 16-bit PML index
    int pml
    uint64_t pml_addr
    uint16_t pml_index
    # the last fault (what vmx turns into an exit): kind, addresses, qualification, and where
    # the walk stopped (level 0: a cached guest-physical mapping refused the access; f_entry
    # then holds only bit 63, suppress #VE, of the entry that mapped the page)
    int f_kind
    uint64_t f_gpa
    uint64_t f_gla
    int f_gla_valid
    uint64_t f_qual
    int f_level
    uint64_t f_entry
    uint64_t f_entry_addr
    # guest-physical mappings (29.4.1), tagged by EP4TA; INVEPT all-context bumps gen
    int use_cache
    uint64_t gen
    GpmEntry cache[2048]
    uint64_t walks           # statistics: EPT walks, cache hits
    uint64_t hits


cdef int ept_walk(EptCtx* x, Cpu* c, uint64_t gpa, int acc, uint32_t lflags, int update,
                  EptWalk* w) noexcept
cdef int ept_slat(Cpu* c, uint64_t gpa, int acc, uint64_t* hpa, uint32_t* rights) noexcept
cdef void ept_configure(EptCtx* x, uint64_t eptp, uint32_t caps) noexcept
cdef void ept_invalidate(EptCtx* x, int kind, uint64_t eptp) noexcept
