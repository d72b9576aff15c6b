/*
 * hello.c: the freestanding guest program that CI runs on hvsim.
 *
 * Platform contract (binding): the guest starts in 64-bit long mode at CPL 0,
 * with identity-mapped paging over at least the first 1 GiB and interrupts
 * off, at the ELF entry (_start in start.S), which sets up a stack and calls
 * main().  A byte written to I/O port 0xE9 is a character on the debug
 * console; a 32-bit write to I/O port 0xF4 ends the run, the value being the
 * exit status.
 *
 * main() prints a greeting, then the results of small computations chosen to
 * exercise the integer instructions gcc emits (mul/imul/div/idiv in several
 * widths, shifts and rotates, jump tables, recursion, byte loops, rep movsb,
 * a varargs formatter), and returns 0 if every result equals the constant
 * written here, otherwise a bit mask of the checks that failed.  The
 * constants were computed independently in Python, not by running this
 * program; EXPECTED_OUTPUT.txt is the exact console text of a correct run.
 *
 * Compiled with -DHVSIM_HOST_TEST the same program runs as a Linux x86-64
 * process (write and exit_group system calls instead of port I/O), which lets
 * the tests check the expected output on the host, without the simulator.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

typedef uint8_t u8;
typedef uint32_t u32;
typedef uint64_t u64;
typedef int32_t i32;
typedef int64_t i64;

#define DEBUGCON_PORT 0xE9

/* ---- console --------------------------------------------------------- */

static void console_putc(char c)
{
#ifdef HVSIM_HOST_TEST
    long ret;
    __asm__ volatile("syscall"                       /* write(1, &c, 1) */
                     : "=a"(ret)
                     : "a"(1L), "D"(1L), "S"(&c), "d"(1L)
                     : "rcx", "r11", "memory");
    (void)ret;
#else
    __asm__ volatile("outb %0, %1" : : "a"(c), "Nd"((uint16_t)DEBUGCON_PORT));
#endif
}

static void console_puts(const char *s)
{
    while (*s)
        console_putc(*s++);
}

/* Keeps gcc from computing a value at compile time: the result is "unknown". */
static inline u64 opaque(u64 x)
{
    __asm__("" : "+r"(x));
    return x;
}

/* ---- the mem* functions a freestanding program must provide ---------- */
/* (gcc may also call these for struct copies and initialisations.)       */

void *memset(void *dst, int c, size_t n)
{
    u8 *d = dst;
    while (n--)
        *d++ = (u8)c;
    return dst;
}

void *memcpy(void *restrict dst, const void *restrict src, size_t n)
{
    u8 *d = dst;
    const u8 *s = src;
    while (n--)
        *d++ = *s++;
    return dst;
}

void *memmove(void *dst, const void *src, size_t n)
{
    u8 *d = dst;
    const u8 *s = src;
    if (d < s) {
        while (n--)
            *d++ = *s++;
    } else {
        while (n--)
            d[n] = s[n];
    }
    return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const u8 *x = a, *y = b;
    for (; n; n--, x++, y++)
        if (*x != *y)
            return (int)*x - (int)*y;
    return 0;
}

static size_t string_length(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

static void rep_movsb(void *dst, const void *src, size_t n)
{
    __asm__ volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(n) : : "memory");
}

/* ---- a small printf ---------------------------------------------------- */
/* Conversions %d %i %u %x %X %p %s %c %%, length l/ll, flags '-' and '0', a
 * field width.  Integers are converted by repeated division by a base that
 * is a run-time value, so gcc emits real div instructions.                 */

static char *format_unsigned(char *end, u64 v, unsigned base, int upper)
{
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    do {
        *--end = digits[v % base];
        v /= base;
    } while (v);
    return end;
}

static size_t kvsnprintf(char *out, size_t size, const char *fmt, va_list ap)
{
    size_t len = 0;
#define EMIT(ch) do { if (len + 1 < size) out[len] = (ch); len++; } while (0)
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            EMIT(*fmt);
            continue;
        }
        int left = 0, zero = 0, longs = 0;
        unsigned width = 0;
        for (fmt++; *fmt == '-' || *fmt == '0'; fmt++) {
            if (*fmt == '-')
                left = 1;
            else
                zero = 1;
        }
        for (; *fmt >= '0' && *fmt <= '9'; fmt++)
            width = width * 10 + (unsigned)(*fmt - '0');
        for (; *fmt == 'l'; fmt++)
            longs++;

        char tmp[24], *end = tmp + sizeof tmp, *s = end;
        const char *str = 0;
        char sign = 0;
        switch (*fmt) {
        case 'd':
        case 'i': {
            i64 v = longs ? va_arg(ap, i64) : va_arg(ap, int);
            u64 mag = v < 0 ? 0 - (u64)v : (u64)v;
            sign = v < 0 ? '-' : 0;
            s = format_unsigned(end, mag, 10, 0);
            break;
        }
        case 'u':
            s = format_unsigned(end, longs ? va_arg(ap, u64) : va_arg(ap, unsigned), 10, 0);
            break;
        case 'x':
        case 'X':
            s = format_unsigned(end, longs ? va_arg(ap, u64) : va_arg(ap, unsigned), 16,
                                *fmt == 'X');
            break;
        case 'p':
            s = format_unsigned(end, (u64)(uintptr_t)va_arg(ap, void *), 16, 0);
            *--s = 'x';
            *--s = '0';
            break;
        case 'c':
            *--s = (char)va_arg(ap, int);
            break;
        case 's':
            str = va_arg(ap, const char *);
            if (!str)
                str = "(null)";
            break;
        case '%':
            *--s = '%';
            break;
        default:            /* unknown: print it as written */
            *--s = *fmt ? *fmt : '?';
            if (!*fmt)
                fmt--;
            break;
        }
        size_t body = str ? string_length(str) : (size_t)(end - s);
        size_t total = body + (sign != 0);
        size_t pad = width > total ? width - total : 0;
        if (!left && !zero)
            for (; pad; pad--)
                EMIT(' ');
        if (sign)
            EMIT(sign);
        if (!left && zero)
            for (; pad; pad--)
                EMIT('0');
        for (size_t i = 0; i < body; i++)
            EMIT(str ? str[i] : s[i]);
        for (; pad; pad--)
            EMIT(' ');
    }
#undef EMIT
    if (size)
        out[len < size ? len : size - 1] = 0;
    return len;
}

static size_t ksnprintf(char *out, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t n = kvsnprintf(out, size, fmt, ap);
    va_end(ap);
    return n;
}

static void kprintf(const char *fmt, ...)
{
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    kvsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    console_puts(line);
}

/* ---- checks ------------------------------------------------------------ */

static u32 failures;
static unsigned checks_run;

static void check(unsigned bit, const char *what, u64 got, u64 want)
{
    checks_run++;
    if (got != want) {
        failures |= 1u << bit;
        kprintf("MISMATCH %s: got 0x%llx, expected 0x%llx\n", what, got, want);
    }
}

/* ---- the computations -------------------------------------------------- */

/* CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), one bit at a time. */
static u32 crc32(const void *data, size_t n)
{
    const u8 *p = data;
    u32 crc = 0xFFFFFFFFu;
    while (n--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

#define SIEVE_LIMIT 1000
static u8 composite[SIEVE_LIMIT + 1];        /* .bss */
static volatile u64 bss_probe[8];            /* .bss: must read as zero */
static volatile u32 data_probe = 0x1234ABCDu; /* .data */

static __attribute__((noinline)) u64 alu_op(unsigned k, u64 a, u64 b)
{
    switch (k) {            /* dense cases: gcc emits a jump table */
    case 0: return a + b;
    case 1: return a - b;
    case 2: return a * b;
    case 3: return a & b;
    case 4: return a | b;
    case 5: return a ^ b;
    case 6: return a << (b & 63);
    case 7: return a >> (b & 63);
    case 8: return (u64)((i64)a >> (b & 63));
    case 9: return b ? a / b : 0;
    case 10: return b ? a % b : 0;
    case 11: return ~a + 1;
    default: return 0xDEADull;
    }
}

static __attribute__((noinline)) u64 fib(unsigned n)
{
    return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

static __attribute__((noinline)) u64 ackermann(u64 m, u64 n)
{
    if (m == 0)
        return n + 1;
    if (n == 0)
        return ackermann(m - 1, 1);
    return ackermann(m - 1, ackermann(m, n - 1));
}

static void quicksort(u64 *a, long lo, long hi)
{
    if (lo >= hi)
        return;
    u64 pivot = a[lo + (hi - lo) / 2];
    long i = lo - 1, j = hi + 1;
    for (;;) {
        do i++; while (a[i] < pivot);
        do j--; while (a[j] > pivot);
        if (i >= j)
            break;
        u64 t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
    quicksort(a, lo, j);
    quicksort(a, j + 1, hi);
}

static const char quick_fox[] = "The quick brown fox jumps over the lazy dog";
static const char check_string[] = "123456789";

int main(void)
{
    console_puts("Hello from hvsim guest\n");

    /* 1. the loader: .data initialised, .bss zero */
    unsigned nonzero = 0;
    for (int i = 0; i < 8; i++)
        nonzero += bss_probe[i] != 0;
    kprintf("data: 0x%x, bss: %u nonzero words\n", data_probe, nonzero);
    check(0, "data", data_probe, 0x1234ABCD);
    check(1, "bss", nonzero, 0);

    /* 2. CRC-32 */
    u32 c1 = crc32((const void *)opaque((u64)check_string), string_length(check_string));
    u32 c2 = crc32((const void *)opaque((u64)quick_fox), string_length(quick_fox));
    kprintf("crc32(\"%s\") = 0x%08x\n", check_string, c1);
    kprintf("crc32(\"%s\") = 0x%08x\n", quick_fox, c2);
    check(2, "crc32", ((u64)c1 << 32) | c2, 0xCBF43926414FA339ull);

    /* 3. sieve of Eratosthenes */
    unsigned limit = (unsigned)opaque(SIEVE_LIMIT);
    memset(composite, 0, sizeof composite);
    unsigned count = 0, largest = 0, twins = 0;
    u64 sum = 0;
    for (unsigned n = 2; n <= limit; n++) {
        if (composite[n])
            continue;
        count++;
        sum += n;
        twins += n >= 5 && !composite[n - 2];
        largest = n;
        for (unsigned m = n * n; m <= limit; m += n)
            composite[m] = 1;
    }
    kprintf("primes to %u: %u, sum %llu, largest %u, twin pairs %u\n",
            limit, count, sum, largest, twins);
    check(3, "primes", ((u64)count << 48) | ((u64)twins << 32) | sum, 0x00A800230001295Full);

    /* 4. 64/32-bit multiply and divide, signed and unsigned */
    u64 x = opaque(1);
    for (int i = 0; i < 1000; i++)
        x = x * 6364136223846793005ull + 1442695040888963407ull;
    u64 d = opaque(1000000007);
    u64 q = x / d, r = x % d;
    i64 sx = (i64)x, sd = (i64)opaque((u64)-12345);
    i64 sq = sx / sd, sr = sx % sd;
    u32 x32 = (u32)x, d32 = (u32)opaque(97);
    i32 s32 = (i32)x32, sd32 = (i32)(u32)opaque((u32)-97);
    u64 mulhi = (u64)(((unsigned __int128)x * opaque(0xFEDCBA9876543210ull)) >> 64);
    i64 imulhi = (i64)(((__int128)sx * (i64)opaque((u64)-0x123456789ll)) >> 64);
    u64 mullo = x * opaque(0x9E3779B97F4A7C15ull);
    i64 sar = sx >> (opaque(37) & 63);
    u64 rol = (x << 13) | (x >> 51);
    kprintf("lcg: x = 0x%016llx\n", x);
    kprintf("div: %llu / %llu = %llu rem %llu\n", x, d, q, r);
    kprintf("idiv: %lld / %lld = %lld rem %lld\n", sx, sd, sq, sr);
    kprintf("div32: %u / %u = %u rem %u; idiv32: %d / %d = %d rem %d\n",
            x32, d32, x32 / d32, x32 % d32, s32, sd32, s32 / sd32, s32 % sd32);
    kprintf("mulhi: 0x%llx, imulhi: %lld, mullo: 0x%llx\n", mulhi, imulhi, mullo);
    kprintf("sar: %lld, rol: 0x%llx\n", sar, rol);
    u64 h = q ^ r ^ (u64)sq ^ (u64)sr ^ mulhi ^ (u64)imulhi ^ mullo ^ (u64)sar ^ rol;
    h ^= ((u64)(x32 / d32) << 32) ^ (x32 % d32) ^ ((u64)(u32)(s32 / sd32) << 16) ^ (u32)(s32 % sd32);
    check(4, "lcg", x, 0xF517FF66DF0CBEA9ull);
    check(5, "muldiv", h, 0x181556C5E3D38751ull);

    /* 5. a switch compiled to a jump table */
    u64 a = x, b = opaque(0x0123456789ABCDEFull), acc = 0;
    for (unsigned k = 0; k <= 12; k++) {
        u64 v = alu_op((unsigned)opaque(k), a, b);
        kprintf("op %2u: 0x%016llx\n", k, v);
        acc = acc * 31 + v;
    }
    check(6, "switch", acc, 0xAE7959F2745344D4ull);

    /* 6. recursion */
    u64 f = fib((unsigned)opaque(20));
    u64 ack = ackermann(opaque(2), opaque(3));
    static u64 keys[64];
    u64 s = opaque(88172645463325252ull);
    for (int i = 0; i < 64; i++) {          /* xorshift64 */
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        keys[i] = s;
    }
    quicksort(keys, 0, 63);
    u64 weighted = 0;
    unsigned sorted = 1;
    for (int i = 0; i < 64; i++) {
        weighted += (u64)(i + 1) * keys[i];
        sorted &= i == 0 || keys[i - 1] <= keys[i];
    }
    kprintf("fib(20) = %llu, ackermann(2, 3) = %llu\n", f, ack);
    kprintf("quicksort: sorted %u, min 0x%llx, max 0x%llx, weighted sum 0x%llx\n",
            sorted, keys[0], keys[63], weighted);
    check(7, "fib", f, 6765);
    check(8, "ackermann", ack, 9);
    check(9, "quicksort", weighted ^ keys[0] ^ keys[63] ^ sorted, 0x39019A9C5817486Aull);

    /* 7. memory loops */
    static u8 buf[256];
    static const char text[] = "hvsim guest memory";
    memset(buf, 0xA5, sizeof buf);
    memcpy(buf + 16, text, 18);
    memmove(buf + 20, buf + 16, 18);        /* overlapping, copies backwards */
    memmove(buf + 8, buf + 20, 18);         /* overlapping, copies forwards */
    rep_movsb(buf + 100, buf + 4, 40);
    int cmp1 = memcmp(buf + 8, text, 18);
    int cmp2 = memcmp(buf + 100, buf + 4, 40);
    int cmp3 = memcmp(buf + 20, "hvsim gueZ", 10);
    u32 bufcrc = crc32(buf, sizeof buf);
    kprintf("memory: crc32 0x%08x, memcmp %d %d %d\n", bufcrc, cmp1, cmp2, cmp3);
    check(10, "memory", ((u64)bufcrc << 32) ^ ((u64)(u32)cmp1 << 16) ^ (u64)(u32)cmp2 ^ (u64)(u32)cmp3,
          0x99D3986200000005ull);

    /* 8. formatting */
    char line[160];
    size_t n = ksnprintf(line, sizeof line,
                         "[%5d] [%-5d] [%05d] [%x] [%08X] [%lld] [%llu] [%c%c] [%-4s] [%%] [%p]",
                         42, -42, -42, 0xBEEFu, 0xBEEFu, (i64)opaque((u64)INT64_MIN),
                         opaque(UINT64_MAX), 'o', 'k', "ab", (void *)0x200000);
    kprintf("format: %s\n", line);
    check(11, "format", ((u64)n << 32) | crc32(line, n), 0x00000072B18695F2ull);

    kprintf("checks: %u run, failure mask 0x%x\n", checks_run, failures);
    return (int)failures;
}
