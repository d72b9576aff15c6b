"""VM-entry checks on the guest-state area: SDM Vol. 3C 27.3.1 "Checks on the Guest State Area".

27.3.1.1 control registers, debug registers and MSRs; 27.3.1.2 segment registers (with the
virtual-8086 and unrestricted-guest variants); 27.3.1.3 GDTR and IDTR; 27.3.1.4 RIP and RFLAGS;
27.3.1.5 non-register state (activity state, interruptibility state, pending debug exceptions,
VMCS link pointer); 27.3.1.6 PDPTEs. A failure is a VM exit with basic reason 33 ("VM-entry
failure due to invalid guest state") and bit 31 set; the exit qualification is 0, or 2 for the
PDPTEs, 3 for NMI injection under blocking by STI, 4 for the VMCS link pointer (27.8).
"""
from __future__ import annotations

from typing import Optional

from vmx.entry.context import EntryContext, Failure, run
from vmx.entry.guest_registers import (  # noqa: F401  (re-exported)
    check_guest_cr0_fixed0, check_guest_cr0_fixed1, check_guest_cr0_pg_needs_pe,
    check_guest_cr4_fixed0, check_guest_cr4_fixed1, check_guest_debugctl,
    check_guest_ia32e_needs_pg, check_guest_ia32e_needs_pae, check_guest_pcide,
    check_guest_cr3, check_guest_dr7, check_guest_sysenter_esp, check_guest_sysenter_eip,
    check_guest_perf_global_ctrl, check_guest_pat, check_guest_efer_reserved,
    check_guest_efer_lma, check_guest_efer_lme, check_guest_bndcfgs, check_guest_pkrs)
from vmx.entry.guest_segments import (  # noqa: F401  (re-exported)
    check_guest_tr_ti, check_guest_ldtr_ti, check_guest_ss_rpl, check_guest_v86_bases,
    check_guest_tr_base, check_guest_fs_base, check_guest_gs_base, check_guest_ldtr_base,
    check_guest_cs_base, check_guest_ss_ds_es_bases, check_guest_v86_limits,
    check_guest_v86_access_rights, check_guest_cs_type, check_guest_ss_type,
    check_guest_data_accessed, check_guest_data_code_readable, check_guest_segment_s,
    check_guest_cs_dpl, check_guest_ss_dpl_rpl, check_guest_ss_dpl_zero, check_guest_data_dpl,
    check_guest_segment_present, check_guest_segment_reserved_11_8, check_guest_cs_db,
    check_guest_segment_granularity, check_guest_segment_reserved_31_17, check_guest_tr_type,
    check_guest_tr_s, check_guest_tr_present, check_guest_tr_reserved_11_8,
    check_guest_tr_granularity, check_guest_tr_usable, check_guest_tr_reserved_31_17,
    check_guest_ldtr_type, check_guest_ldtr_s, check_guest_ldtr_present,
    check_guest_ldtr_reserved_11_8, check_guest_ldtr_granularity,
    check_guest_ldtr_reserved_31_17, check_guest_gdtr_base, check_guest_idtr_base,
    check_guest_gdtr_limit, check_guest_idtr_limit)
from vmx.entry.guest_nonregister import (  # noqa: F401  (re-exported)
    check_guest_rip_high, check_guest_rip_canonical, check_guest_rflags_reserved,
    check_guest_rflags_bit1, check_guest_rflags_vm, check_guest_rflags_if,
    check_guest_activity_supported, check_guest_activity_hlt_dpl,
    check_guest_activity_blocking, check_guest_activity_injection, check_guest_activity_smm,
    check_guest_interruptibility_reserved, check_guest_interruptibility_sti_movss,
    check_guest_interruptibility_sti_if, check_guest_interruptibility_external_interrupt,
    check_guest_interruptibility_nmi_movss, check_guest_interruptibility_nmi_sti,
    check_guest_interruptibility_smi, check_guest_interruptibility_virtual_nmi,
    check_guest_pending_debug_reserved, check_guest_pending_debug_bs,
    check_guest_link_pointer_alignment, check_guest_link_pointer_width,
    check_guest_link_pointer_revision, check_guest_link_pointer_not_current,
    check_guest_pdptes_ept, check_guest_pdptes_memory)

REGISTER_CHECKS = (
    check_guest_cr0_fixed0, check_guest_cr0_fixed1, check_guest_cr0_pg_needs_pe,
    check_guest_cr4_fixed0, check_guest_cr4_fixed1, check_guest_debugctl,
    check_guest_ia32e_needs_pg, check_guest_ia32e_needs_pae, check_guest_pcide, check_guest_cr3,
    check_guest_dr7, check_guest_sysenter_esp, check_guest_sysenter_eip,
    check_guest_perf_global_ctrl, check_guest_pat, check_guest_efer_reserved,
    check_guest_efer_lma, check_guest_efer_lme, check_guest_bndcfgs, check_guest_pkrs,
)
SEGMENT_CHECKS = (
    check_guest_tr_ti, check_guest_ldtr_ti, check_guest_ss_rpl,
    check_guest_v86_bases, check_guest_tr_base, check_guest_fs_base, check_guest_gs_base,
    check_guest_ldtr_base, check_guest_cs_base, check_guest_ss_ds_es_bases,
    check_guest_v86_limits, check_guest_v86_access_rights,
    check_guest_cs_type, check_guest_ss_type, check_guest_data_accessed,
    check_guest_data_code_readable, check_guest_segment_s, check_guest_cs_dpl,
    check_guest_ss_dpl_rpl, check_guest_ss_dpl_zero, check_guest_data_dpl,
    check_guest_segment_present, check_guest_segment_reserved_11_8, check_guest_cs_db,
    check_guest_segment_granularity, check_guest_segment_reserved_31_17,
    check_guest_tr_type, check_guest_tr_s, check_guest_tr_present, check_guest_tr_reserved_11_8,
    check_guest_tr_granularity, check_guest_tr_usable, check_guest_tr_reserved_31_17,
    check_guest_ldtr_type, check_guest_ldtr_s, check_guest_ldtr_present,
    check_guest_ldtr_reserved_11_8, check_guest_ldtr_granularity,
    check_guest_ldtr_reserved_31_17,
)
TABLE_CHECKS = (check_guest_gdtr_base, check_guest_idtr_base, check_guest_gdtr_limit,
                check_guest_idtr_limit)
RIP_RFLAGS_CHECKS = (check_guest_rip_high, check_guest_rip_canonical, check_guest_rflags_reserved,
                     check_guest_rflags_bit1, check_guest_rflags_vm, check_guest_rflags_if)
NON_REGISTER_CHECKS = (
    check_guest_activity_supported, check_guest_activity_hlt_dpl, check_guest_activity_blocking,
    check_guest_activity_injection, check_guest_activity_smm,
    check_guest_interruptibility_reserved, check_guest_interruptibility_sti_movss,
    check_guest_interruptibility_sti_if, check_guest_interruptibility_external_interrupt,
    check_guest_interruptibility_nmi_movss, check_guest_interruptibility_nmi_sti,
    check_guest_interruptibility_smi, check_guest_interruptibility_virtual_nmi,
    check_guest_pending_debug_reserved, check_guest_pending_debug_bs,
    check_guest_link_pointer_alignment, check_guest_link_pointer_width,
    check_guest_link_pointer_revision, check_guest_link_pointer_not_current,
)
PDPTE_CHECKS = (check_guest_pdptes_ept, check_guest_pdptes_memory)
GUEST_CHECKS = (REGISTER_CHECKS + SEGMENT_CHECKS + TABLE_CHECKS + RIP_RFLAGS_CHECKS
                + NON_REGISTER_CHECKS + PDPTE_CHECKS)


def run_guest_checks(ctx: EntryContext) -> Optional[Failure]:
    """27.3.1.1-27.3.1.6 in the SDM's order; a VM exit (reason 33) on failure."""
    return run(ctx, GUEST_CHECKS)
