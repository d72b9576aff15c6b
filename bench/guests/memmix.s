# memmix: 64-bit load/store/call/branch mix.
#
# Each iteration loads from and stores to an 8-entry array of quadwords
# (which lives in its own page, away from the code, so that emulators that
# watch code pages for self-modification are not disturbed), calls a short
# leaf function that pushes, stores and pops, and takes a conditional branch
# whose direction alternates with the parity of the loop counter.
#
# Called with the iteration count N (N >= 1) in RDI; returns with RET.
# Instructions retired by one call:
#     prologue        4   (lea, xor, xor, mov)
#     loop body      15 * N   (10 in the loop incl. the call, 5 in the leaf incl. its ret)
#     odd counters   ceil(N/2)  (the extra `add rax, r8` when RCX is odd)
#     ret             1
#   = 15*N + (N+1)//2 + 5
        .intel_syntax noprefix
        .code64
        .text
        .globl  workload
workload:
        lea     rsi, [rip + memmix_array]
        xor     eax, eax
        xor     edx, edx
        mov     rcx, rdi
1:
        mov     r8, [rsi + rdx*8]       # load
        add     r8, rcx
        mov     [rsi + rdx*8], r8       # store
        call    leaf
        add     rdx, 1
        and     edx, 7                  # index wraps around the 8 entries
        test    cl, 1
        jz      2f                      # taken when RCX is even
        add     rax, r8
2:
        dec     rcx
        jnz     1b
        ret

leaf:
        push    rbx
        lea     rbx, [rax + rcx]
        mov     [rsi + 64], rbx         # store to the 9th quadword
        pop     rbx
        ret

        .bss
        .balign 4096
memmix_array:
        .skip   4096
