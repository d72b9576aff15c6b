# Bochs boot image: a floppy boot sector plus a second stage, linked as one
# flat binary at 0x7C00 (ld -Ttext=0x7c00 --oformat binary).
#
#   sector 1   (0x7C00)  real-mode boot sector: loads the following
#                        STAGE2_SECTORS sectors to 0x7E00 through the BIOS
#                        (INT 13h, one sector at a time, CHS of a 1.44 MB
#                        floppy), builds identity-mapped page tables
#                        (1 GiB with 2 MiB pages), and enters long mode
#                        directly from real mode (PAE + LME + PE|PG at once).
#   sector 2+  (0x7E00)  64-bit code: copies the payload (entry stub +
#                        workload, see entry.s/payload.ld) to 0x100000, clears
#                        its .bss, and jumps to it.  The payload quits Bochs
#                        through the shutdown port 0x8900.
#
# Symbols supplied with --defsym: STAGE2_SECTORS, PAYLOAD_BSS_END.
# The payload is pulled in with .incbin "payload.bin" (assemble with -I).
        .intel_syntax noprefix
        .code16
        .text
        .globl  _start
_start:
        cli
        cld
        xor     ax, ax
        mov     ds, ax
        mov     es, ax
        mov     ss, ax
        mov     sp, 0x7C00
        jmp     0:boot_cs0              # normalise CS:IP to 0000:7Cxx
boot_cs0:
        mov     [boot_drive], dl

        # --- load sectors 2 .. STAGE2_SECTORS+1 to 0x7E00, one at a time.
        mov     ax, 0x07E0
        mov     es, ax                  # ES:0 = destination of this sector
        mov     si, 1                   # LBA of the next sector
        mov     di, STAGE2_SECTORS      # sectors left
load_next:
        test    di, di
        jz      loaded
        mov     bp, 3                   # retries
load_retry:
        mov     ax, si                  # CHS from LBA: 18 sectors, 2 heads
        xor     dx, dx
        mov     bx, 18
        div     bx                      # ax = track index, dx = sector - 1
        mov     cl, dl
        inc     cl                      # cl = sector (1-based)
        xor     dx, dx
        mov     bx, 2
        div     bx                      # ax = cylinder, dx = head
        mov     ch, al
        mov     dh, dl
        mov     dl, [boot_drive]
        xor     bx, bx
        mov     ax, 0x0201              # read 1 sector
        int     0x13
        jnc     load_ok
        xor     ax, ax                  # reset the drive and retry
        mov     dl, [boot_drive]
        int     0x13
        dec     bp
        jnz     load_retry
        jmp     fail
load_ok:
        mov     ax, es
        add     ax, 0x20                # next 512 bytes
        mov     es, ax
        inc     si
        dec     di
        jmp     load_next
loaded:
        xor     ax, ax
        mov     es, ax

        # --- A20 through the "fast A20" port.
        in      al, 0x92
        or      al, 2
        and     al, 0xFE
        out     0x92, al

        # --- page tables: PML4 0x1000, PDPT 0x2000, PD 0x3000 (2 MiB pages).
        mov     di, 0x1000
        xor     eax, eax
        mov     cx, 0x3000 / 4
        rep     stosd
        mov     dword ptr [0x1000], 0x2003      # PML4[0] -> PDPT, P|W
        mov     dword ptr [0x2000], 0x3003      # PDPT[0] -> PD,   P|W
        mov     di, 0x3000
        mov     eax, 0x83                       # P|W|PS, physical 0
        mov     cx, 512
fill_pd:
        mov     [di], eax
        mov     dword ptr [di + 4], 0
        add     eax, 0x200000
        add     di, 8
        loop    fill_pd

        # --- long mode, straight from real mode.
        lidt    [null_idtr]                     # any fault now => shutdown
        lgdt    [gdtr]
        mov     eax, 0x20                       # CR4.PAE
        mov     cr4, eax
        mov     eax, 0x1000
        mov     cr3, eax
        mov     ecx, 0xC0000080                 # EFER
        rdmsr
        or      eax, 0x100                      # EFER.LME
        wrmsr
        mov     eax, cr0
        or      eax, 0x80000001                 # PG | PE
        and     eax, 0x9FFFFFFF                 # caches on (CD, NW clear)
        mov     cr0, eax
        .byte   0xEA                            # jmp far 0x08:long_entry
        .word   long_entry
        .word   0x08

fail:
        mov     si, offset fail_msg
fail_print:
        lodsb
        test    al, al
        jz      fail_halt
        mov     ah, 0x0E
        xor     bx, bx
        int     0x10
        jmp     fail_print
fail_halt:
        hlt
        jmp     fail_halt

boot_drive:
        .byte   0
fail_msg:
        .asciz  "hvsim bench: disk read failed"
        .balign 8
gdt:
        .quad   0                               # null
        .quad   0x00209A0000000000              # 0x08: 64-bit code, DPL 0
        .quad   0x0000920000000000              # 0x10: data
gdt_end:
gdtr:
        .word   gdt_end - gdt - 1
        .long   gdt
null_idtr:
        .word   0
        .long   0

        .org    510
        .byte   0x55, 0xAA

# ---------------------------------------------------------------- sector 2+
        .code64
long_entry:
        mov     ax, 0x10
        mov     ds, ax
        mov     es, ax
        mov     ss, ax
        xor     eax, eax
        mov     fs, ax
        mov     gs, ax
        mov     rsp, 0x80000
        # copy the payload to 0x100000
        lea     rsi, [rip + payload]
        mov     edi, 0x100000
        mov     ecx, payload_end - payload
        rep     movsb
        # zero the rest up to the end of the payload's .bss
        mov     ecx, PAYLOAD_BSS_END
        sub     ecx, edi
        xor     eax, eax
        rep     stosb
        xor     ebx, ebx
        xor     edx, edx
        xor     esi, esi
        xor     edi, edi
        xor     ebp, ebp
        mov     eax, 0x100000
        jmp     rax

        .balign 16
payload:
        .incbin "payload.bin"
payload_end:
