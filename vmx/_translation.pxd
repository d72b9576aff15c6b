# Address translation around VM entry and VM exit (_translation.pyx).
from libc.stdint cimport uint64_t
from x86._exec cimport Core
from vmx._vmcs cimport VmcsStore, VmxStateBase

cdef int keep_vpid_mappings(Core cpu, VmcsStore vm, VmxStateBase st) except -1
cdef int restore_vpid_mappings(Core cpu, VmcsStore vm, VmxStateBase st) except -1
cdef void wrap_apic(Core cpu, VmcsStore vm, uint64_t proc) noexcept
cdef void unwrap_apic(Core cpu) noexcept
