"""VM-entry checks (SDM Vol. 3C chapter 27 "VM Entries"): one named function per rule, each
citing its subsection, run in the SDM's order.

  controls  27.2.1 VM-execution, VM-exit and VM-entry control fields  -> VMfailValid(7)
  host      27.2.2-27.2.4 host-state area                             -> VMfailValid(8)
  guest     27.3.1.1-27.3.1.6 guest-state area                        -> VM exit, reason 33
  baseline  valid_vmcs(profile): a VMCS that passes all three

    ctx = EntryContext(vmcs, profile, read_phys=memory.read, launch=True)
    failure = run_checks(ctx)          # None, or a Failure with .kind/.error/.check/.explain()
"""
from vmx.entry.context import EntryContext, Failure
from vmx.entry.controls import CONTROL_CHECKS, run_control_checks
from vmx.entry.guest import GUEST_CHECKS, run_guest_checks
from vmx.entry.host import HOST_CHECKS, run_host_checks


def run_checks(ctx: EntryContext):
    """27.2 then 27.3.1: the first failure, or None."""
    return run_control_checks(ctx) or run_host_checks(ctx) or run_guest_checks(ctx)


__all__ = ["EntryContext", "Failure", "run_control_checks", "run_host_checks",
           "run_guest_checks", "run_checks", "CONTROL_CHECKS", "HOST_CHECKS", "GUEST_CHECKS"]
