"""VMX non-root operation: which instructions and events cause VM exits (SDM Vol. 3C chapter 26,
"VMX Non-Root Operation") and the exit information they leave (28.2).

`NonRoot` is the processor's intercept hook while a guest runs: the x86 core asks it about each
sensitive instruction and event ("may this exit?"). It answers from the VMCS controls and, when
the answer is yes, records the basic exit information for `vmx.transitions` to write to the VMCS.
"""
from __future__ import annotations

import iced_x86

from vmx import second_level
from vmx.apicv import TprShadow
from vmx.controls import PinBased as Pin, ProcBased as Proc, SecondaryProcBased as Sec
from vmx.exits import ExitReason as R
from vmx.fields import Field as F, field_info
from vmx.instruction_encoding import ENCODED, encode as encode_instruction_info

from x86.intercept import (DONE, DONE_EXIT, RAISE, EV_SLAT_FAULT, DK_EXCEPTION, DK_NMI, DK_SOFT_EXC, EV_CR, EV_DEADLINE,
                          EV_DISABLED, EV_EXCEPTION, EV_INSN, EV_INTR, EV_INTR_WINDOW, EV_IO, EV_MSR,
                          EV_NMI_WINDOW, EV_STEP, EV_TASK_SWITCH, EV_TRIPLE_FAULT, EVF_IRET_NMI, TS_IDT)
from x86.msr import IA32_TIME_STAMP_COUNTER

# the interruption types of exits (25.8.3)
TYPE_EXTERNAL, TYPE_NMI, TYPE_HARD_EXCEPTION, TYPE_SOFT_EXCEPTION = 0, 2, 3, 6

_M = iced_x86.Mnemonic
# 26.1.2 "Instructions That Cause VM Exits Unconditionally"
UNCONDITIONAL = {_M.CPUID: R.CPUID, _M.GETSEC: R.GETSEC, _M.INVD: R.INVD, _M.XSETBV: R.XSETBV,
                 _M.VMCALL: R.VMCALL, _M.VMCLEAR: R.VMCLEAR, _M.VMLAUNCH: R.VMLAUNCH,
                 _M.VMPTRLD: R.VMPTRLD, _M.VMPTRST: R.VMPTRST, _M.VMREAD: R.VMREAD,
                 _M.VMRESUME: R.VMRESUME, _M.VMWRITE: R.VMWRITE, _M.VMXOFF: R.VMOFF,
                 _M.VMXON: R.VMON, _M.INVEPT: R.INVEPT, _M.INVVPID: R.INVVPID}
# 26.1.3 "Instructions That Cause VM Exits Conditionally": (primary control, exit reason)
BY_PRIMARY = {_M.HLT: (Proc.HLT_EXITING, R.HLT), _M.INVLPG: (Proc.INVLPG_EXITING, R.INVLPG),
              _M.MWAIT: (Proc.MWAIT_EXITING, R.MWAIT_INSTRUCTION),
              _M.RDPMC: (Proc.RDPMC_EXITING, R.RDPMC), _M.RDTSC: (Proc.RDTSC_EXITING, R.RDTSC),
              _M.RDTSCP: (Proc.RDTSC_EXITING, R.RDTSCP),
              _M.MONITOR: (Proc.MONITOR_EXITING, R.MONITOR_INSTRUCTION),
              _M.PAUSE: (Proc.PAUSE_EXITING, R.PAUSE_INSTRUCTION),
              _M.INVPCID: (Proc.INVLPG_EXITING, R.INVPCID)}      # with "enable INVPCID" 1
BY_SECONDARY = {_M.WBINVD: (Sec.WBINVD_EXITING, R.WBINVD), _M.RDRAND: (Sec.RDRAND_EXITING, R.RDRAND),
                _M.RDSEED: (Sec.RDSEED_EXITING, R.RDSEED),
                _M.LGDT: (Sec.DESC, R.GDTR_IDTR), _M.LIDT: (Sec.DESC, R.GDTR_IDTR),
                _M.SGDT: (Sec.DESC, R.GDTR_IDTR), _M.SIDT: (Sec.DESC, R.GDTR_IDTR),
                _M.LLDT: (Sec.DESC, R.LDTR_TR), _M.LTR: (Sec.DESC, R.LDTR_TR),
                _M.SLDT: (Sec.DESC, R.LDTR_TR), _M.STR: (Sec.DESC, R.LDTR_TR)}
# 26.3 (25.6.2): instructions a secondary control enables; with it 0 they raise #UD, before any
# other exception and before any VM exit
ENABLED_BY = {_M.RDTSCP: Sec.ENABLE_RDTSCP, _M.INVPCID: Sec.ENABLE_INVPCID}
# 26.1.3: an instruction that does not exit by its own control may still exit by this secondary
# control (PAUSE-loop exiting, when "PAUSE exiting" is 0)
ALSO_BY_SECONDARY = {_M.PAUSE: Sec.PAUSE_LOOP_EXITING}


def simple_instruction_exits():
    """The instruction exits whose only information is the reason, the instruction length and
    (INVLPG) the linear address as qualification, as rows (mnemonic, control word: 0 none, 1
    primary, 2 secondary processor-based, control bit, exit reason, qualification is the
    instruction's detail, secondary control that sends the instruction to `NonRoot` when its
    own control does not make it exit: PAUSE-loop exiting). vmx._transition decides these in
    C from the same tables; every other instruction goes to `NonRoot`."""
    also = {m: int(c) for m, c in ALSO_BY_SECONDARY.items()}
    rows = [(m, 0, 0, int(r), False, 0) for m, r in UNCONDITIONAL.items() if m not in ENCODED]
    rows += [(m, 1, int(c), int(r), m == _M.INVLPG, also.get(m, 0))
             for m, (c, r) in BY_PRIMARY.items() if m not in ENCODED]
    rows += [(m, 2, int(c), int(r), False, also.get(m, 0))
             for m, (c, r) in BY_SECONDARY.items() if m not in ENCODED]
    return rows


class NonRoot:
    """The intercept hook of one VM entry: reads the controls once, answers the core."""

    def __init__(self, cpu, vmcs):
        self.cpu = cpu
        self.vmcs = vmcs
        self.memory = cpu.machine.memory
        r = lambda f: vmcs.read(field_info(f))  # noqa: E731
        self.pin = r(F.PIN_BASED_VM_EXEC_CONTROL)
        self.proc = r(F.CPU_BASED_VM_EXEC_CONTROL)
        self.sec = r(F.SECONDARY_VM_EXEC_CONTROL) if self.proc & Proc.ACTIVATE_SECONDARY_CONTROLS else 0
        self.ve_information_address = r(F.VE_INFORMATION_ADDRESS)
        self.exit_ctls = r(F.VM_EXIT_CONTROLS)
        self.exception_bitmap = r(F.EXCEPTION_BITMAP)
        self.pf_mask = r(F.PAGE_FAULT_ERROR_CODE_MASK)
        self.pf_match = r(F.PAGE_FAULT_ERROR_CODE_MATCH)
        self.cr0_mask, self.cr0_shadow = r(F.CR0_GUEST_HOST_MASK), r(F.CR0_READ_SHADOW)
        self.cr4_mask, self.cr4_shadow = r(F.CR4_GUEST_HOST_MASK), r(F.CR4_READ_SHADOW)
        self.cr3_targets = [r(F[f"CR3_TARGET_VALUE{i}"]) for i in range(min(4, r(F.CR3_TARGET_COUNT)))]
        self.io_bitmap = (r(F.IO_BITMAP_A), r(F.IO_BITMAP_B))
        self.msr_bitmap = r(F.MSR_BITMAP)
        # 30.3: CR8 accesses use the virtual TPR ("virtual-interrupt delivery" is not offered)
        self.tpr_shadow = TprShadow(self.memory, r(F.VIRTUAL_APIC_PAGE_ADDR), r(F.TPR_THRESHOLD)) \
            if self.proc & Proc.TPR_SHADOW else None
        # 25.6.13: PAUSE-loop exiting; vmx._transition clears ple_last at each VM entry
        self.ple_gap, self.ple_window = r(F.PLE_GAP), r(F.PLE_WINDOW)
        self.ple_last: int | None = None        # time of the last PAUSE at CPL 0
        self.ple_first = 0                      # time of the first PAUSE of the current loop
        self.reset()

    def reset(self) -> None:
        """Before each VM entry: no exit recorded, no timer, no exit due at entry."""
        self.exit: dict | None = None
        self.timer = None                       # vmx.events.PreemptionTimer, set by arm()
        self.tpr_exit_due = False               # 27.7.7, set by arm_tpr_threshold()

    def arm_tpr_threshold(self, cpu) -> None:
        """27.7.7: with "use TPR shadow" and "virtualize APIC accesses" 1, a VM exit occurs
        immediately after VM entry (after any event injection, before a pending MTF VM exit and
        lower-priority events) if TPR threshold[3:0] > VTPR[7:4]. (Without "virtualize APIC
        accesses", the VM-entry checks of 27.2.1.1 rule that out.)"""
        if self.tpr_shadow is not None and self.sec & Sec.VIRTUALIZE_APIC_ACCESSES \
                and self.tpr_shadow.below_threshold():
            self.tpr_exit_due = True
            cpu.set_step_exit(True, due=True)

    # --- the hook --------------------------------------------------------------------------------
    def intercept(self, event: int, a: int, b: int) -> bool:
        if event == EV_INSN:
            return self._instruction(a, b)
        if event == EV_IO:
            return self._io(a & 0xFFFF, (a >> 16) & 0xFF, bool(a >> 24 & 1))
        if event == EV_MSR:
            return self._msr(a, bool(b))
        if event == EV_CR:
            return self._cr(a & 0xFF, bool(a & 0x100), b)
        if event == EV_EXCEPTION:
            return self._exception(a, b & 0xFFFFFFFF, (b >> 32) & 0xFF, bool(b >> 32 & EVF_IRET_NMI))
        if event == EV_DISABLED:
            ctl = ENABLED_BY.get(a)                 # 26.3: #UD when its enabling control is 0
            return ctl is not None and not self.sec & ctl
        if event == EV_TASK_SWITCH:
            return self._task_switch(a, b)
        if event == EV_SLAT_FAULT:      # EPT (29.3.3), PML (29.3.6), #VE (25.5.6), APIC access (30.4)
            return second_level.fault_exit(self, b, bool(self.cpu.get_sys("iret_nmi")))
        if event == EV_INTR:
            return self._external_interrupt(a)
        if event == EV_TRIPLE_FAULT:
            return self._exit(R.TRIPLE_FAULT, instruction=False)   # 26.2: always exits
        if event == EV_STEP and self.tpr_shadow is not None and second_level.tpr_written():
            # 30.4.3.1 / 30.1.2: a virtualized write of the TPR through the APIC-access page is
            # followed by TPR virtualization (a trap-like exit when below the threshold)
            if self.tpr_shadow.below_threshold():
                return self._exit(R.TPR_BELOW_THRESHOLD, instruction=False)
            if not self.proc & Proc.MONITOR_TRAP_FLAG:
                return False
        if event == EV_STEP and self.tpr_exit_due:
            self.tpr_exit_due = False
            self.cpu.halted = False             # 27.7.7: it wakes a guest entered in HLT
            return self._exit(R.TPR_BELOW_THRESHOLD, instruction=False)
        if event in _BOUNDARY_EXITS:
            # 26.5.2 MTF, 26.5.1 VMX-preemption timer, 26.7.5 / 26.7.6 interrupt and NMI windows:
            # the core offers these only when arm() asked for them
            return self._exit(_BOUNDARY_EXITS[event], instruction=False)
        return False

    def _exit(self, reason, qualification: int = 0, instruction: bool = True, **info) -> bool:
        """Record the exit; `instruction` exits report the instruction's length (28.2.4)."""
        ins = self.cpu.current_insn() if instruction else None
        self.exit = dict(reason=int(reason), qualification=qualification,
                         instruction_length=ins["len"] if ins else 0, **info)
        if ins is not None and reason not in (R.EXCEPTION_NMI,):
            # 28.2.5: the instruction-information field, and for memory-operand instructions
            # the displacement as the exit qualification (28.2.1)
            iinfo, disp = encode_instruction_info(ins)
            self.exit.setdefault("instruction_info", iinfo)
            if disp is not None and not qualification:
                self.exit["qualification"] = disp
        delivering = self.cpu.delivering
        if delivering is not None and "idt_vectoring_info" not in info:
            # 28.2.4: the exit interrupted the delivery of an event through the IDT; for a
            # software interrupt or exception the instruction length is its length (28.2.5)
            from vmx.events import vectoring_info
            vec, error, length = vectoring_info(delivering)
            self.exit["idt_vectoring_info"] = vec
            if error is not None:
                self.exit["idt_vectoring_error_code"] = error
            if length:
                self.exit["instruction_length"] = length
        return True

    def _gpr(self, offset: int) -> int:
        return offset // 8

    # --- instructions ----------------------------------------------------------------------------
    def _instruction(self, mnem: int, detail: int) -> bool:
        if mnem in UNCONDITIONAL:
            return self._exit(UNCONDITIONAL[mnem])
        if mnem in BY_PRIMARY:
            ctl, reason = BY_PRIMARY[mnem]
            if self.proc & ctl:
                qual = detail if mnem == _M.INVLPG else 0       # the linear address (28.2.1)
                return self._exit(reason, qual)
            if mnem == _M.PAUSE and self.sec & Sec.PAUSE_LOOP_EXITING:
                return self._pause_loop()
            return False
        if mnem in BY_SECONDARY:
            ctl, reason = BY_SECONDARY[mnem]
            return bool(self.sec & ctl) and self._exit(reason)
        if mnem == _M.CLTS:
            # 26.1.3: CLTS exits if CR0.TS is owned by the host and its shadow is 1
            if self.cr0_mask & 8 and self.cr0_shadow & 8:
                return self._exit(R.CR_ACCESS, 2 << 4)
            return False
        if mnem == _M.LMSW:
            # 26.1.3: LMSW exits if it would change a host-owned bit of CR0[3:0] against the shadow
            # (PE can only be set)
            src = detail & 0xF
            m = self.cr0_mask & 0xF
            if (m & 1 and not self.cr0_shadow & 1 and src & 1) or \
                    ((m & 0xE) & (src ^ self.cr0_shadow)):
                ins = self.cpu.current_insn()
                mem = ins["k0"] == 2
                qual = 3 << 4 | (int(mem) << 6) | (src << 16)
                if not mem:
                    qual |= self._gpr(ins["r0"]) << 8
                return self._exit(R.CR_ACCESS, qual)
            return False
        if mnem == _M.VMFUNC:
            # 26.3, 31.3 VMFUNC: #UD unless "enable VM functions" is 1; then 26.5.6
            if not self.sec & Sec.ENABLE_VMFUNC:
                return RAISE | 6
            return second_level.vmfunc(self)
        return self._mov_dr(mnem, detail)

    def _pause_loop(self) -> bool:
        """26.1.3 PAUSE with "PAUSE exiting" 0 and "PAUSE-loop exiting" 1, at CPL 0 only: an
        execution more than PLE_Gap after the previous PAUSE at CPL 0 (or the first after VM
        entry) is the first of a loop; one more than PLE_Window after the first of its loop
        causes a VM exit (reason 40). Time is a counter at the TSC's rate (25.6.13): here the
        processor's deterministic time, retired instructions plus halted time; a TSC offset or
        a write to IA32_TSC does not change it."""
        if self.cpu.cpl != 0:
            return False
        now, last = self.cpu.time, self.ple_last
        self.ple_last = now
        if last is None or now - last > self.ple_gap:
            self.ple_first = now
            return False
        if now - self.ple_first > self.ple_window:
            return self._exit(R.PAUSE_INSTRUCTION)
        return False

    def _task_switch(self, selector: int, source: int) -> bool:
        """26.1.2, 26.4.2: task switches cause VM exits unconditionally, once the checks that
        precede them passed (the core made them). Table 28-2: TSS selector in 15:0, source in
        31:30 (0 CALL, 1 IRET, 2 JMP, 3 task gate in the IDT). 28.2.5: CALL, IRET and JMP report
        their length, and so does a task gate met delivering a software interrupt or exception
        (from the IDT-vectoring information, 28.2.4, which an IDT task gate always records)."""
        return self._exit(R.TASK_SWITCH, selector | (source << 30), instruction=source != TS_IDT)

    def _mov_dr(self, mnem: int, detail: int) -> bool:
        from x86 import decode
        if mnem not in (decode.MOV_TO_DR, decode.MOV_FROM_DR) or not self.proc & Proc.MOV_DR_EXITING:
            return False
        ins = self.cpu.current_insn()
        to_dr = mnem == decode.MOV_TO_DR
        gpr = self._gpr(ins["r1"] if to_dr else ins["r0"])
        # Table 28-4: DR number 2:0, direction bit 4 (0 = MOV to DR), GPR 11:8
        return self._exit(R.DR_ACCESS, (detail & 7) | (int(not to_dr) << 4) | (gpr << 8))

    # --- I/O (26.1.3, 25.6.4) ---------------------------------------------------------------------
    def _io(self, port: int, size: int, is_in: bool) -> bool:
        if self.proc & Proc.USE_IO_BITMAPS:
            exits = False
            for p in range(port, port + size):
                if p > 0xFFFF:
                    exits = True                  # wraps around the I/O-port space
                    break
                bitmap = self.io_bitmap[p >> 15]
                if self.memory.read_u8(bitmap + ((p & 0x7FFF) >> 3)) >> (p & 7) & 1:
                    exits = True
                    break
        else:
            exits = bool(self.proc & Proc.UNCOND_IO_EXITING)
        if not exits:
            return False
        ins = self.cpu.current_insn()
        string = ins["mnem"] in _STRING_IO
        rep = string and bool(ins["pfx"] & 2)
        imm = not string and (ins["k0"] == 3 or ins["k1"] == 3)
        # Table 28-5: size-1 in 2:0, direction 3 (1 = IN), string 4, REP 5, immediate 6, port 31:16
        qual = (size - 1) | (int(is_in) << 3) | (int(string) << 4) | (int(rep) << 5) \
            | (int(imm) << 6) | (port << 16)
        info = {}
        if string:
            reg = "rdi" if is_in else "rsi"
            seg = 0 if is_in else ins["seg"]
            mask = (1 << (8 * ins["asz"])) - 1
            base = self.cpu.get_seg(seg)[1] if not (self.cpu.code_bits == 64 and seg < 4) else 0
            info["guest_linear_address"] = (base + (getattr(self.cpu, reg) & mask)) & 0xFFFFFFFFFFFFFFFF
        return self._exit(R.IO_INSTRUCTION, qual, **info)

    # --- MSRs (26.1.3, 25.6.9) --------------------------------------------------------------------
    def _msr(self, index: int, write: bool) -> bool:
        reason = R.MSR_WRITE if write else R.MSR_READ
        if not self.proc & Proc.USE_MSR_BITMAPS:
            return self._exit(reason)
        if index <= 0x1FFF:
            offset = 0
        elif 0xC0000000 <= index <= 0xC0001FFF:
            offset = 1024
        else:
            return self._exit(reason)             # outside both ranges: always exits
        offset += 2048 * write
        bit = index & 0x1FFF
        if self.memory.read_u8(self.msr_bitmap + offset + (bit >> 3)) >> (bit & 7) & 1:
            return self._exit(reason)
        if write and index == IA32_TIME_STAMP_COUNTER and self.timer is not None:
            # 26.3 leaves WRMSR of IA32_TSC unchanged: it writes the TSC itself (the TSC offset
            # does not apply). The VMX-preemption timer counts the TSC's increments only (26.5.1)
            cpu = self.cpu
            self.timer.tsc_written(((cpu.rdx & 0xFFFFFFFF) << 32) | (cpu.rax & 0xFFFFFFFF))
            cpu.set_exit_deadline(self.timer.deadline())
        return False

    # --- control registers (26.1.3, 25.6.6, 25.6.7; Table 28-3) ------------------------------------
    def _cr(self, n: int, write: bool, value: int) -> bool:
        ins = self.cpu.current_insn()
        gpr = self._gpr(ins["r1"] if write else ins["r0"])
        qual = n | (int(not write) << 4) | (gpr << 8)
        if write:
            if n == 0:
                exits = bool((value ^ self.cr0_shadow) & self.cr0_mask)
            elif n == 4:
                exits = bool((value ^ self.cr4_shadow) & self.cr4_mask)
            elif n == 3:
                exits = bool(self.proc & Proc.CR3_LOAD_EXITING) and value not in self.cr3_targets
            elif n == 8:
                exits = bool(self.proc & Proc.CR8_LOAD_EXITING)
            else:
                exits = False
        else:
            exits = (n == 3 and bool(self.proc & Proc.CR3_STORE_EXITING)) or \
                (n == 8 and bool(self.proc & Proc.CR8_STORE_EXITING))
        if exits:
            return self._exit(R.CR_ACCESS, qual)
        if n == 8 and self.tpr_shadow is not None:
            return self._cr8_virtualized(write, value, gpr)
        return False

    def _cr8_virtualized(self, write: bool, value: int, gpr: int):
        """30.3 with "use TPR shadow": MOV from CR8 reads VTPR; MOV to CR8 writes it (bits 63:4
        of the source set: #GP(0), which the processor raises as without a hook), then a
        TPR-below-threshold VM exit if TPR virtualization calls for one (trap-like: 28.2,
        RIP after the MOV)."""
        if not write:
            self.cpu.set_gpr(gpr, self.tpr_shadow.read_cr8())
            return DONE
        if value >> 4:
            return False
        if self.tpr_shadow.write_cr8(value):
            self._exit(R.TPR_BELOW_THRESHOLD, instruction=False)
            return DONE_EXIT
        return DONE

    # --- exceptions and interrupts (26.2, 25.6.3) ----------------------------------------------------
    def _exception(self, vector: int, error: int, kind: int, iret_nmi: bool = False) -> bool:
        if kind == DK_NMI:
            if not self.pin & Pin.NMI_EXITING:
                return False
            return self._event_exit(R.EXCEPTION_NMI, 2, TYPE_NMI, None)
        if not self.exception_bitmap >> vector & 1 and vector != 14:
            return False
        has_error = error != 0xFFFFFFFF
        if vector == 14:
            # 25.6.3: with bit 14 set, #PF exits iff (error & mask) == match; with it clear, iff !=
            matches = (error & self.pf_mask) == self.pf_match
            if bool(self.exception_bitmap >> 14 & 1) != matches:
                return False
        soft = kind == DK_SOFT_EXC
        qual = self.cpu.pf_addr if vector == 14 else 0
        if vector == 1 and kind == DK_EXCEPTION:
            # Table 28-1: B3-B0 in 3:0, BD 13, BS 14 (DR6 is not written: 28.1)
            qual = self.cpu.get_sys("db_status") & 0x600F
        if soft:
            self.cpu.rip = self.cpu.insn_start        # the exit points at INT3/INTO itself
        # 28.2.3: bit 12, NMI unblocking due to IRET: a fault of an IRET that ended (virtual-)NMI
        # blocking (the core reports it; with "NMI exiting" 1 and "virtual NMIs" 0 IRET ends
        # none, 26.3); undefined, here 0, for #DF and when the exit records IDT vectoring
        unblocking = iret_nmi and vector != 8 and self.cpu.delivering is None
        return self._event_exit(R.EXCEPTION_NMI, vector, TYPE_SOFT_EXCEPTION if soft else TYPE_HARD_EXCEPTION,
                                error if has_error else None, qual, soft, unblocking)

    def _event_exit(self, reason, vector, kind, error, qual=0, with_length=False, unblocking=False) -> bool:
        info = {"interruption_info": vector | (kind << 8) | ((error is not None) << 11) | (1 << 31)
                | (int(unblocking) << 12)}
        if error is not None:
            info["interruption_error_code"] = error
        return self._exit(reason, qual, instruction=with_length, **info)

    def _external_interrupt(self, vector: int) -> bool:
        if not self.pin & Pin.EXT_INTR_MASK:
            return False
        info = {}
        if self.exit_ctls & (1 << 15):             # acknowledge interrupt on exit (25.7.1)
            info["interruption_info"] = vector | (TYPE_EXTERNAL << 8) | (1 << 31)
        else:
            self.cpu.machine.apic.unacknowledge(vector)
        return self._exit(R.EXTERNAL_INTERRUPT, 0, instruction=False, **info)


_BOUNDARY_EXITS = {EV_STEP: R.MONITOR_TRAP_FLAG, EV_DEADLINE: R.PREEMPTION_TIMER,
                   EV_INTR_WINDOW: R.INTERRUPT_WINDOW, EV_NMI_WINDOW: R.NMI_WINDOW}
_STRING_IO = {_M.INSB, _M.INSW, _M.INSD, _M.OUTSB, _M.OUTSW, _M.OUTSD}

