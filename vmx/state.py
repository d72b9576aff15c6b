"""Guest-state and host-state areas (SDM Vol. 3C 25.4, 25.5) as one table each: VMCS field ->
processor state name (x86.state). VM entry and VM exit move state with one loop over them."""
from __future__ import annotations

from vmx.fields import Field as F

_SEGS = ("es", "cs", "ss", "ds", "fs", "gs", "ldtr", "tr")

# 25.4.1 guest register state, always loaded on VM entry and saved on VM exit
GUEST = [(F.GUEST_CR0, "cr0"), (F.GUEST_CR3, "cr3"), (F.GUEST_CR4, "cr4"),
         (F.GUEST_RSP, "rsp"), (F.GUEST_RIP, "rip"), (F.GUEST_RFLAGS, "rflags"),
         (F.GUEST_SYSENTER_CS, "sysenter_cs"), (F.GUEST_SYSENTER_ESP, "sysenter_esp"),
         (F.GUEST_SYSENTER_EIP, "sysenter_eip")]
for _s in _SEGS:
    _S = _s.upper()
    GUEST += [(F[f"GUEST_{_S}_SELECTOR"], f"{_s}.selector"), (F[f"GUEST_{_S}_BASE"], f"{_s}.base"),
              (F[f"GUEST_{_S}_LIMIT"], f"{_s}.limit"), (F[f"GUEST_{_S}_AR_BYTES"], f"{_s}.attr")]
GUEST += [(F.GUEST_GDTR_BASE, "gdtr.base"), (F.GUEST_GDTR_LIMIT, "gdtr.limit"),
          (F.GUEST_IDTR_BASE, "idtr.base"), (F.GUEST_IDTR_LIMIT, "idtr.limit")]

# guest state moved only when a control says so: (field, state, entry control bit, exit control bit)
# VM-entry controls 25.8.1 / VM-exit controls 25.7.1
GUEST_CONDITIONAL = [
    (F.GUEST_DR7, "dr7", 1 << 2, 1 << 2),                 # load / save debug controls
    (F.GUEST_IA32_DEBUGCTL, "debugctl", 1 << 2, 1 << 2),
    (F.GUEST_IA32_PAT, "pat", 1 << 14, 1 << 18),          # load / save IA32_PAT
    (F.GUEST_IA32_EFER, "efer", 1 << 15, 1 << 20),        # load / save IA32_EFER
    # load IA32_PERF_GLOBAL_CTRL (27.3.2.1) / save IA32_PERF_GLOBAL_CTRL (28.3.1)
    (F.GUEST_IA32_PERF_GLOBAL_CTRL, "perf_global_ctrl", 1 << 13, 1 << 30),
]

# 25.5 host-state area, loaded on every VM exit (28.5)
HOST = [(F.HOST_CR0, "cr0"), (F.HOST_CR3, "cr3"), (F.HOST_CR4, "cr4"), (F.HOST_RSP, "rsp"),
        (F.HOST_RIP, "rip"), (F.HOST_IA32_SYSENTER_CS, "sysenter_cs"),
        (F.HOST_IA32_SYSENTER_ESP, "sysenter_esp"), (F.HOST_IA32_SYSENTER_EIP, "sysenter_eip"),
        (F.HOST_GDTR_BASE, "gdtr.base"), (F.HOST_IDTR_BASE, "idtr.base")]
HOST_SELECTORS = [(F[f"HOST_{s.upper()}_SELECTOR"], s) for s in ("es", "cs", "ss", "ds", "fs", "gs", "tr")]
HOST_BASES = {"fs": F.HOST_FS_BASE, "gs": F.HOST_GS_BASE, "tr": F.HOST_TR_BASE}
# exit controls: load IA32_PAT, load IA32_EFER, load IA32_PERF_GLOBAL_CTRL (28.5.1)
HOST_CONDITIONAL = [(F.HOST_IA32_PAT, "pat", 1 << 19), (F.HOST_IA32_EFER, "efer", 1 << 21),
                    (F.HOST_IA32_PERF_GLOBAL_CTRL, "perf_global_ctrl", 1 << 12)]
