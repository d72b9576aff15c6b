# Entry stub linked in front of every workload (at the load address,
# 0x100000).  It passes the iteration count to the workload in RDI, calls it,
# and then stops the guest at the label `stop`:
#   * default (hvsim, unicorn): `hlt` with interrupts off.  unicorn is started
#     with until=stop and never executes it; hvsim stops on it.
#   * --defsym BOCHS=1: writes "Shutdown" to Bochs's shutdown port 0x8900,
#     which makes Bochs quit; if that ever fails it triple-faults.
# Instructions retired before `stop`: 2 (mov rdi, call) + the workload's.
        .intel_syntax noprefix
        .code64
        .section .text.entry, "ax"
        .globl  _start
        .globl  stop
_start:
        mov     rdi, ITERATIONS
        call    workload
stop:
.ifdef BOCHS
        mov     dx, 0x8900
        lea     rsi, [rip + shutdown_msg]
        mov     ecx, 8
        rep     outsb
        # Not reached when the shutdown port works: force a triple fault
        # (load an empty IDT, then raise an exception).
        lidt    [rip + null_idtr]
        ud2
        .balign 8
null_idtr:
        .word   0
        .quad   0
shutdown_msg:
        .ascii  "Shutdown"
.else
        hlt
        jmp     stop
.endif
