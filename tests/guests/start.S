/*
 * start.S: entry stub of the hvsim test guests (the ELF entry point).
 *
 * On entry (hvsim platform contract): 64-bit long mode, CPL 0, paging with
 * the first 1 GiB identity-mapped, interrupts off, RIP = _start; no other
 * register has a defined value.  The stub sets RSP to __stack_top (defined in
 * guest.ld), clears DF (the SysV x86-64 psABI, section 3.2.1, requires DF = 0
 * on function entry) and RBP (end of the frame chain), calls main(), and
 * writes main's return value to I/O port 0xF4 as a 32-bit OUT, which ends
 * the run with that exit status.  Should the run not end there, the
 * processor halts for good (interrupts are off).
 *
 * With -DHVSIM_HOST_TEST the program is a Linux process instead: the kernel
 * has set up the stack, and the status goes to exit_group(2).
 */
        .intel_syntax noprefix

#define EXIT_PORT 0xF4
#define SYS_exit_group 231

        .section .text.start, "ax", @progbits
        .globl _start
        .type _start, @function
_start:
#ifndef HVSIM_HOST_TEST
        cli
        lea rsp, [rip + __stack_top]    /* 16-byte aligned; the call below */
#endif                                  /* leaves RSP = 8 mod 16 in main   */
        cld
        xor ebp, ebp
        call main
#ifdef HVSIM_HOST_TEST
        mov edi, eax
        mov eax, SYS_exit_group
        syscall
#else
        mov edx, EXIT_PORT
        out dx, eax
#endif
1:      hlt
        jmp 1b
        .size _start, . - _start

        .section .note.GNU-stack, "", @progbits
