"""VMCS storage in C and the VMREAD/VMWRITE fast path (SDM Vol. 3C 25.2, 25.11.2, 31.3).

Values live in a C array indexed by a compact slot; a 64K-entry map turns an encoding into its
slot and flags, built once from vmx.fields.FIELDS (the one table). A "high" encoding (bit 0 set,
64-bit fields only) names bits 63:32 of the full field's slot.

`vmread`/`vmwrite` do the common case of SDM 31.3 in C: VMX root operation, 64-bit mode, CPL 0,
a current VMCS, a field that exists and (VMWRITE) is not read-only; VMsucceed clears CF PF AF ZF
SF OF. Every other case goes to the Python functions in vmx.instructions, which produce every
failure outcome and its `.check` text.
"""
from cpython.long cimport (PyLong_AsLongLongAndOverflow, PyLong_AsUnsignedLongLongMask,
                           PyLong_Check, PyLong_CheckExact)
from cpython.object cimport PyObject
from libc.stdint cimport uint8_t, uint16_t, uint64_t
from libc.string cimport memset

from vmx.fields import FIELDS
from x86._exec cimport Core
from x86._defs cimport Cpu, get_rflags, LF_NONE, F_ARITH


cdef extern from "Python.h":
    PyObject** _PyObject_GetDictPtr(object)
    PyObject* PyDict_GetItemWithError(object, object) except? NULL

cdef enum:
    F_KNOWN = 1
    F_HIGH = 2
    F_RO = 4
    F_CTL = 8          # control or host-state field
    F_GUEST = 16       # guest-state field

cdef uint64_t INVALID = 0xFFFFFFFFFFFFFFFFULL

cdef uint16_t SLOT[65536]
cdef uint8_t FLAG[65536]
cdef uint64_t MASK[NSLOTS]


def _build():
    memset(SLOT, 0, sizeof(SLOT))
    memset(FLAG, 0, sizeof(FLAG))
    cdef int n = 0
    full = {}
    for f in FIELDS:
        if not f.high:
            if n >= NSLOTS:
                raise RuntimeError("vmx._vmcs: NSLOTS is too small for vmx.fields.FIELDS")
            full[f.encoding] = n
            bits = 64 if f.width in (64, "natural") else f.width
            MASK[n] = <uint64_t>((1 << bits) - 1)
            n += 1
    for f in FIELDS:
        e = f.encoding
        SLOT[e] = full[e - 1] if f.high else full[e]
        fl = F_KNOWN
        if f.high:
            fl |= F_HIGH
        if f.read_only:
            fl |= F_RO
        if f.kind in ("control", "host"):
            fl |= F_CTL
        elif f.kind == "guest":
            fl |= F_GUEST
        FLAG[e] = fl
    return n


NUM_SLOTS = _build()


cdef inline int _slot(object encoding) except -2:
    """The flags-and-slot of an encoding as (flag << 16 | slot), or -1 when no field has it."""
    cdef long long e
    cdef int overflow = 0
    if not PyLong_Check(encoding):
        encoding = int(encoding)
    e = PyLong_AsLongLongAndOverflow(encoding, &overflow)
    if overflow or e < 0 or e > 0xFFFF:
        return -1
    if not FLAG[e]:
        return -1
    return (FLAG[e] << 16) | SLOT[e]


cdef class VmcsStore:
    """The data of one VMCS: every field by slot, zero until written."""

    def __cinit__(self):
        memset(self.v, 0, sizeof(self.v))
        self.dirty_controls = True
        self.dirty_guest = True
        self.recording = False
        self.memo = None
        self.launched = False
        self.ctl_gen = 0
        self.nonroot = None

    cdef inline void _mark(self, int s):
        cdef int fl = s >> 16
        if fl & F_CTL:
            self.dirty_controls = True
            self.ctl_gen += 1
        elif fl & F_GUEST:
            self.dirty_guest = True

    cpdef uint64_t read_enc(self, encoding) except? 0xFFFFFFFFFFFFFFFF:
        """VMREAD's storage side: 64-bit fields whole, bits 63:32 through the "high" encoding;
        KeyError for an encoding no field has."""
        cdef int s = _slot(encoding)
        if s < 0:
            raise KeyError(f"no VMCS field has encoding {int(encoding):#x} (SDM Appendix B)")
        if self.recording:
            self.rd[(s & 0xFFFF) >> 6] |= (<uint64_t>1) << ((s & 0xFFFF) & 63)
        if (s >> 16) & F_HIGH:
            return self.v[s & 0xFFFF] >> 32
        return self.v[s & 0xFFFF]

    cpdef write_enc(self, encoding, value):
        """VMWRITE's storage side: truncated to the field's width; "high" writes bits 63:32.
        Marks the VMCS dirty for the VM-entry checks (control/host or guest fields)."""
        cdef int s = _slot(encoding)
        cdef int i
        cdef uint64_t x
        if s < 0:
            raise KeyError(f"no VMCS field has encoding {int(encoding):#x} (SDM Appendix B)")
        if not PyLong_CheckExact(value):
            value = int(value)
        x = PyLong_AsUnsignedLongLongMask(value)
        i = s & 0xFFFF
        if (s >> 16) & F_HIGH:
            self.v[i] = (self.v[i] & 0xFFFFFFFF) | ((x & 0xFFFFFFFF) << 32)
        else:
            self.v[i] = x & MASK[i]
        self._mark(s)

    cdef void put(self, int slot, uint64_t value) noexcept:
        """The processor's own write of a slot (exit information, guest state saved): any
        field, read-only ones too, truncated to its width. Marks the VMCS only on a change."""
        value &= MASK[slot]
        if self.v[slot] == value:
            return
        self.v[slot] = value
        if SLOT_CTL[slot]:
            self.dirty_controls = True
            self.ctl_gen += 1
        else:
            self.dirty_guest = True

    def read(self, info):
        """VMREAD of a FieldInfo (vmx.fields)."""
        return self.read_enc(info.encoding)

    def write(self, info, value):
        """VMWRITE of a FieldInfo (vmx.fields)."""
        self.write_enc(info.encoding, value)

    def written(self):
        """(slot, value) for every non-zero slot: what the opaque image is derived from."""
        return [(i, self.v[i]) for i in range(NUM_SLOTS) if self.v[i]]


cdef uint8_t SLOT_CTL[NSLOTS]     # the slot holds a control or host-state field


cdef int slot_of(int encoding) noexcept:
    """The slot of a field's (full) encoding, for compiled modules that use fixed fields."""
    return SLOT[encoding & 0xFFFF]


cdef uint64_t slot_mask(int slot) noexcept:
    return MASK[slot]


def _build_kinds():
    for f in FIELDS:
        SLOT_CTL[SLOT[f.encoding]] = 1 if FLAG[f.encoding] & F_CTL else 0


_build_kinds()


cdef class PhysReader:
    """`read_phys` for the VM-entry checks: reads memory and notes that a check did, so that
    the check's outcome is not remembered (it depends on memory, not only on the VMCS)."""
    cdef public object read
    cdef public bint used

    def __init__(self, read):
        self.read = read
        self.used = False

    def __call__(self, pa, n):
        self.used = True
        return self.read(pa, n)


cdef class CheckMemo:
    """The VM-entry checks (27.2, 27.3.1) of one VMCS, remembered by what each read.

    A check is a pure function of the VMCS fields it reads and of the context (profile,
    VMLAUNCH or VMRESUME, the VMM's IA32_EFER.LMA, the VMXON pointer: `key`), except where it
    reads memory. A check that passed is skipped at the next VM entry when the context is the
    same, it read no memory, and every field it read still holds the value it had: it would
    pass again, so the first failing check (the outcome) is the same as running them all. This
    holds whoever wrote the fields: VMWRITE, or the processor saving guest state at a VM exit
    (the SDM does not promise that such state passes 27.3.1, so nothing assumes it does).
    Checks that read memory (virtual-APIC VTPR, VMCS link pointer, PDPTEs) always run again.
    """

    def __cinit__(self):
        memset(self.ok, 0, sizeof(self.ok))
        self.key = None
        self.ctx = None
        self.reader = None
        self.nctl = 0
        self.nall = 0
        self.ctl_pure = False
        self.passed = False
        self.nu = -1

    cdef bint _same(self, VmcsStore vm, int i):
        cdef int k
        for k in range(self.nr[i]):
            if vm.v[self.slot[i][k]] != self.val[i][k]:
                return False
        return True

    cdef void _remember(self, VmcsStore vm, int i, bint ctl):
        cdef int w, b, n = 0
        cdef uint64_t m
        for w in range(NWORDS):
            m = vm.rd[w]
            while m:
                b = __builtin_ctzll(m)
                m &= m - 1
                if n == MAXRD:
                    self.ok[i] = 0
                    return
                self.slot[i][n] = w * 64 + b
                self.val[i][n] = vm.v[w * 64 + b]
                if ctl and not SLOT_CTL[w * 64 + b]:
                    self.ctl_pure = False
                n += 1
        self.nr[i] = n
        self.ok[i] = 1

    cdef object _run(self, VmcsStore vm, object checks, int base, bint ctl):
        cdef int j, i, n = len(checks)
        cdef PhysReader reader = self.reader
        if base + n > MAXCHK:
            raise RuntimeError("vmx._vmcs: MAXCHK is too small for the VM-entry checks")
        for j in range(n):
            i = base + j
            if self.ok[i] and self._same(vm, i):
                continue
            self.ok[i] = 0
            memset(vm.rd, 0, sizeof(vm.rd))
            reader.used = False
            vm.recording = True
            try:
                failure = checks[j](self.ctx)
            finally:
                vm.recording = False
            if failure is not None:
                if ctl:
                    self.ctl_pure = False
                return failure
            if reader.used:
                if ctl:
                    self.ctl_pure = False
            else:
                self._remember(vm, i, ctl)
        return None

    cdef bint all_pass(self, VmcsStore vm, int launch, int lma, uint64_t vmxon):
        """Whether `run` would find no failure without running a check: the last run passed in
        the same context, no control or host field was written since, and every field a guest
        check read holds the value it had then (so each check would read what it read when it
        passed)."""
        cdef int k
        if not self.passed or launch != self.k_launch or lma != self.k_lma or vmxon != self.k_vmxon:
            return False
        if vm.dirty_controls or not self.ctl_pure or self.nu < 0:
            return False
        for k in range(self.nu):
            if vm.v[self.uslot[k]] != self.uval[k]:
                return False
        return True

    cdef void _snapshot(self, VmcsStore vm):
        """After a run that passed: the union of the slots the guest checks read, and their
        values (each remembered check read exactly these values when it last ran)."""
        cdef uint8_t seen[NSLOTS]
        cdef int i, k, s
        memset(seen, 0, sizeof(seen))
        self.nu = 0
        for i in range(self.nctl, self.nall):
            if not self.ok[i]:
                self.nu = -1
                return
            for k in range(self.nr[i]):
                s = self.slot[i][k]
                if not seen[s]:
                    seen[s] = 1
                    self.uslot[self.nu] = s
                    self.uval[self.nu] = vm.v[s]
                    self.nu += 1

    def run(self, VmcsStore vm, key, control_checks, host_checks, guest_checks, launch=False, lma=False,
            vmxon=0xFFFFFFFFFFFFFFFF):
        """The first failing check of control, host, guest (27.2 then 27.3.1), or None. `launch`,
        `lma` and `vmxon` repeat the parts of `key` that `all_pass` compares."""
        self.passed = False
        if key != self.key:
            memset(self.ok, 0, sizeof(self.ok))
            self.key = key
            vm.dirty_controls = True
        nctl = len(control_checks) + len(host_checks)
        if vm.dirty_controls or not self.ctl_pure or nctl != self.nctl:
            # a control or host field was written (or a control/host check read a guest field or
            # memory): run the checks of 27.2 (each still skipped if what it read is unchanged)
            self.nctl = nctl
            self.ctl_pure = True
            failure = self._run(vm, control_checks, 0, True)
            if failure is None:
                failure = self._run(vm, host_checks, len(control_checks), True)
            if failure is not None:
                return failure
            vm.dirty_controls = False
        failure = self._run(vm, guest_checks, nctl, False)
        self.nall = nctl + len(guest_checks)
        if failure is None:
            self.passed = True
            self.k_launch, self.k_lma, self.k_vmxon = bool(launch), bool(lma), vmxon
            self._snapshot(vm)
        return failure


cdef extern from *:
    int __builtin_ctzll(unsigned long long)


cdef class VmxStateBase:
    """What the processor remembers about VMX operation (SDM 24.1, 25.1), in C where the
    VMREAD/VMWRITE fast path reads it."""

    def __cinit__(self):
        self.root = False
        self.non_root = False
        self.vmxon_pointer = INVALID
        self.cache = {}
        self._current = INVALID
        self.cur = None
        self.cr0_must1 = self.cr0_must0 = self.cr4_must1 = self.cr4_must0 = 0
        self.monitor = None
        self.ept_on = False
        self.save_efer_lma = False
        self.vpid_tlb = {}

    property current:
        """The current-VMCS pointer (FFFFFFFF_FFFFFFFFH: none)."""
        def __get__(self):
            return self._current
        def __set__(self, value):
            self._current = value
            self.cur = None


# The Python functions for every case the fast path does not take (set by vmx.instructions).
cdef object _slow_read = None
cdef object _slow_write = None


def set_fallbacks(read, write):
    global _slow_read, _slow_write
    _slow_read = read
    _slow_write = write


cdef VmxStateBase state_of(cpu):
    """cpu.vmx, or None when cpu is not a processor with VMX."""
    if isinstance(cpu, VmxCore):
        return (<VmxCore>cpu).vmx
    return None


cdef VmcsStore ready(cpu, VmxStateBase s):
    """The current VMCS when the common case of 31.3 applies: VMX root operation, 64-bit mode
    (so CR0.PE = 1, RFLAGS.VM = 0, CS.L = 1), CPL 0, a current VMCS; else None. `s` is
    state_of(cpu)."""
    if s is None or not isinstance(cpu, Core):
        return None
    cdef Cpu* c = &(<Core>cpu).c
    if c.code_bits != 64 or c.cpl != 0:
        return None
    if not s.root or s.non_root or s._current == INVALID or s.cur is None:
        return None
    return <VmcsStore>s.cur


cdef inline void _vmsucceed(Cpu* c) noexcept:
    """VMsucceed (31.2): CF PF AF ZF SF OF cleared."""
    cdef uint64_t f = get_rflags(c)
    if f & F_ARITH:
        c.rflags = f & ~(<uint64_t>F_ARITH)
        c.lf_op = LF_NONE


cdef object vmread_impl(cpu, VmxStateBase st, encoding):
    cdef VmcsStore vm = ready(cpu, st)
    cdef int s
    cdef uint64_t r
    if not PyLong_Check(encoding):
        encoding = int(encoding)
    if vm is not None:
        s = _slot(encoding)
        if s >= 0:
            if (s >> 16) & F_HIGH:
                r = vm.v[s & 0xFFFF] >> 32
            else:
                r = vm.v[s & 0xFFFF]
            _vmsucceed(&(<Core>cpu).c)
            return r
    return _slow_read(cpu, int(encoding))


cdef object vmwrite_impl(cpu, VmxStateBase st, encoding, value):
    cdef VmcsStore vm = ready(cpu, st)
    cdef int s, i
    cdef uint64_t x
    if not PyLong_Check(encoding):
        encoding = int(encoding)
    if not PyLong_Check(value):
        value = int(value)
    if vm is not None:
        s = _slot(encoding)
        if s >= 0 and not (s >> 16) & F_RO:
            x = PyLong_AsUnsignedLongLongMask(value)
            i = s & 0xFFFF
            if (s >> 16) & F_HIGH:
                vm.v[i] = (vm.v[i] & 0xFFFFFFFF) | ((x & 0xFFFFFFFF) << 32)
            else:
                vm.v[i] = x & MASK[i]
            vm._mark(s)
            _vmsucceed(&(<Core>cpu).c)
            return None
    return _slow_write(cpu, int(encoding), int(value))


def vmread(cpu, encoding):
    """VMREAD (31.3 "VMREAD - Read Field from Virtual-Machine Control Structure")."""
    return vmread_impl(cpu, state_of(cpu), encoding)


def vmwrite(cpu, encoding, value):
    """VMWRITE (31.3 "VMWRITE - Write Field to Virtual-Machine Control Structure")."""
    return vmwrite_impl(cpu, state_of(cpu), encoding, value)


cdef entry_fn _entry = NULL


cdef void set_entry(entry_fn fn) noexcept:
    global _entry
    _entry = fn


cdef class VmxCore(Core):
    """The processor's VMX part in C: the VMX state (`vmx`, SDM 24.1 / 25.1) and the
    instructions a VMM runs most, as methods (no Python between the call and the C code).
    vmx.machine.Cpu derives from it and from x86.Cpu."""

    def vmread(self, encoding):
        """VMREAD (31.3 "VMREAD - Read Field from Virtual-Machine Control Structure")."""
        return vmread_impl(self, self.vmx, encoding)

    def vmwrite(self, encoding, value):
        """VMWRITE (31.3 "VMWRITE - Write Field to Virtual-Machine Control Structure")."""
        return vmwrite_impl(self, self.vmx, encoding, value)

    def vmlaunch(self):
        """VMLAUNCH (31.3): VM entry; returns the `vmx.VmExit` that ends the guest's run."""
        return _entry(self, True)

    def vmresume(self):
        """VMRESUME (31.3): VM entry; returns the `vmx.VmExit` that ends the guest's run."""
        return _entry(self, False)
