"""What the guest-state checks (SDM Vol. 3C 27.3.1) share: the guest facts, segment
registers as the VMCS holds them, canonical-address and event-injection helpers."""
from __future__ import annotations

from vmx import profiles as P
from vmx.controls import EntryControls as En, SecondaryProcBased as Sec

from vmx.entry.context import EntryContext, Failure, show
from vmx.fields import Field


CRS, SEGS, TABLES, RIPFL, NONREG, PDPTES = ("27.3.1.1", "27.3.1.2", "27.3.1.3", "27.3.1.4",
                                             "27.3.1.5", "27.3.1.6")
CR0_PE, CR0_PG = 1 << 0, 1 << 31
CR4_PAE, CR4_PCIDE = 1 << 5, 1 << 17
RFLAGS_TF, RFLAGS_IF, RFLAGS_VM = 1 << 8, 1 << 9, 1 << 17
RFLAGS_RESERVED0 = ~((1 << 22) - 1) & ((1 << 64) - 1) | (1 << 15) | (1 << 5) | (1 << 3)
DEBUGCTL_BTF = 1 << 1

# Activity states (25.4.2) and the IA32_VMX_MISC bit that advertises each (A.6).
ACTIVE, HLT, SHUTDOWN, WAIT_FOR_SIPI = 0, 1, 2, 3
ACTIVITY_MISC_BIT = {HLT: P.MISC_ACTIVITY_HLT, SHUTDOWN: P.MISC_ACTIVITY_SHUTDOWN,
                     WAIT_FOR_SIPI: P.MISC_ACTIVITY_WAIT_SIPI}
ACTIVITY_NAME = {ACTIVE: "active", HLT: "HLT", SHUTDOWN: "shutdown",
                 WAIT_FOR_SIPI: "wait-for-SIPI"}

# Interruptibility state (25.4.2, Table 25-3).
BLOCK_STI, BLOCK_MOVSS, BLOCK_SMI, BLOCK_NMI, ENCLAVE_INTERRUPTION = 1, 2, 4, 8, 16

# Interruption types of the VM-entry interruption-information field (25.8.3).
EXTERNAL_INTERRUPT, NMI, HARDWARE_EXCEPTION = 0, 2, 3

AR_UNUSABLE = 1 << 16
DATA_SEGMENTS = ("DS", "ES", "FS", "GS")
ALL_SEGMENTS = ("CS", "SS", "DS", "ES", "FS", "GS")


def _fail(ctx: EntryContext, section: str, rule: str, qualification: int = 0) -> Failure:
    return ctx.fail("guest", section, rule, qualification)


# -- guest facts the checks share --------------------------------------------------------------

def _ug(ctx) -> bool:
    return bool(ctx.secondary & Sec.UNRESTRICTED_GUEST)


def _ia32e(ctx) -> bool:
    return bool(ctx.entry_controls & En.IA32E_MODE)


def _v86(ctx) -> bool:
    return bool(ctx.read(Field.GUEST_RFLAGS) & RFLAGS_VM)


def _f(reg: str, part: str):
    return Field[f"GUEST_{reg}_{part}"]


class Seg:
    """One guest segment register as the VMCS holds it (access rights in the VMCS format:
    3:0 type, 4 S, 6:5 DPL, 7 P, 11:8 reserved, 12 AVL, 13 L, 14 D/B, 15 G, 16 unusable,
    31:17 reserved)."""

    def __init__(self, ctx, reg: str):
        self.reg = reg
        self.selector = ctx.read(_f(reg, "SELECTOR"))
        self.base = ctx.read(_f(reg, "BASE"))
        self.limit = ctx.read(_f(reg, "LIMIT"))
        self.ar = ctx.read(_f(reg, "AR_BYTES"))

    type = property(lambda s: s.ar & 0xF)
    s = property(lambda s: s.ar >> 4 & 1)
    dpl = property(lambda s: s.ar >> 5 & 3)
    p = property(lambda s: s.ar >> 7 & 1)
    l = property(lambda s: s.ar >> 13 & 1)
    db = property(lambda s: s.ar >> 14 & 1)
    g = property(lambda s: s.ar >> 15 & 1)
    usable = property(lambda s: not s.ar & AR_UNUSABLE)
    rpl = property(lambda s: s.selector & 3)
    ti = property(lambda s: s.selector >> 2 & 1)

    def show(self, part: str) -> str:
        value = {"SELECTOR": self.selector, "BASE": self.base, "LIMIT": self.limit,
                 "AR_BYTES": self.ar}[part]
        return show(_f(self.reg, part), value)


def _segs(ctx, regs=ALL_SEGMENTS):
    return [Seg(ctx, r) for r in regs]


def _canonical(ctx, section, field, what=""):
    v = ctx.read(field)
    if not ctx.canonical(v):
        return _fail(ctx, section, f"{show(field, v)} is not canonical (bits 63:"
                     f"{ctx.linear_width - 1} must all equal bit {ctx.linear_width - 1}){what}")
    return None


def _injection(ctx):
    info = ctx.read(Field.VM_ENTRY_INTR_INFO_FIELD)
    if not info >> 31:
        return None
    return (info >> 8) & 7, info & 0xFF
