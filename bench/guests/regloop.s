# regloop: 64-bit register-only loop.
#
# Called with the iteration count N in RDI; returns with RET.
# Instructions retired by one call, including the RET:
#     1 (mov rcx, rdi) + 4*N (loop body) + 1 (ret)  =  4*N + 2
        .intel_syntax noprefix
        .code64
        .text
        .globl  workload
workload:
        mov     rcx, rdi
1:
        add     rax, rbx
        add     rbx, 1
        dec     rcx
        jnz     1b
        ret
