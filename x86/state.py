"""Processor state by name: the vocabulary vmx (VMCS) and svm (VMCB) use to move guest and host
state with one loop (ARCHITECTURE.md, "One fact, one place").

Names: "cr0" "cr2" "cr3" "cr4" "dr7" "rsp" "rip" "rflags" "efer" "pat" "debugctl" "sysenter_cs"
"sysenter_esp" "sysenter_eip" "kernel_gs_base" "star" "lstar" "cstar" "fmask" "perf_global_ctrl", "<seg>.selector"
".base" ".limit" ".attr" for es cs ss ds fs gs ldtr tr (attr in the VMCS access-rights format),
"gdtr.base" "gdtr.limit" "idtr.base" "idtr.limit". `set_state` loads values as a processor
transition does (no MOV CR checks: the caller has checked them).
"""
from __future__ import annotations

SEGMENTS = ("es", "cs", "ss", "ds", "fs", "gs", "ldtr", "tr")
_SEG_PARTS = ("selector", "base", "limit", "attr")
_MSRS = {"sysenter_cs": 0x174, "sysenter_esp": 0x175, "sysenter_eip": 0x176, "star": 0xC0000081,
         "lstar": 0xC0000082, "cstar": 0xC0000083, "fmask": 0xC0000084, "kernel_gs_base": 0xC0000102,
         "perf_global_ctrl": 0x38F}
_RAW = ("cr0", "cr2", "cr3", "cr4", "efer", "pat", "dr7")


def get_state(cpu, name: str) -> int:
    if "." in name:
        reg, part = name.split(".")
        if reg in ("gdtr", "idtr"):
            base, limit = cpu.get_dtr(reg == "idtr")
            return base if part == "base" else limit
        return cpu.get_seg(SEGMENTS.index(reg))[_SEG_PARTS.index(part)]
    if name in ("rsp",):
        return cpu.rsp
    if name == "rip":
        return cpu.rip
    if name == "rflags":
        return cpu.rflags
    if name in _RAW:
        return cpu.get_sys(name)
    if name == "debugctl":
        return cpu.msr_file.get(0x1D9, 0)
    return cpu.rdmsr(_MSRS[name])


def set_state(cpu, name: str, value: int) -> None:
    if "." in name:
        reg, part = name.split(".")
        if reg in ("gdtr", "idtr"):
            base, limit = cpu.get_dtr(reg == "idtr")
            if part == "base":
                base = value
            else:
                limit = value
            cpu.set_dtr(reg == "idtr", base, limit)
            return
        i = SEGMENTS.index(reg)
        seg = list(cpu.get_seg(i))
        seg[_SEG_PARTS.index(part)] = value
        cpu.set_seg(i, *seg)
        return
    if name == "rsp":
        cpu.rsp = value
    elif name == "rip":
        cpu.rip = value
    elif name == "rflags":
        cpu.rflags = value
    elif name in _RAW:
        cpu.set_sys_raw(name, value)
    elif name == "debugctl":
        cpu.msr_file[0x1D9] = value
    else:
        index = _MSRS[name]
        cpu.wrmsr(index, value)
