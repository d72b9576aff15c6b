/* cwork: a gcc-compiled integer workload for bench/mips.py (sieve, CRC-32, insertion sort,
 * 64-bit multiply/divide), repeated ROUNDS times. Exit status: the low bits of a checksum. */
#define ROUNDS 40

static unsigned char sieve[8192];
static unsigned long arr[256];

static unsigned crc32(const unsigned char *p, unsigned long n) {
    unsigned c = 0xFFFFFFFFu;
    for (unsigned long i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1)));
    }
    return ~c;
}

static unsigned long primes(void) {
    unsigned long count = 0;
    for (unsigned long i = 0; i < sizeof sieve; i++) sieve[i] = 1;
    for (unsigned long i = 2; i < sizeof sieve; i++) {
        if (!sieve[i]) continue;
        count++;
        for (unsigned long j = i * i; j < sizeof sieve; j += i) sieve[j] = 0;
    }
    return count;
}

static unsigned long sort(unsigned long seed) {
    for (int i = 0; i < 256; i++) {
        seed = seed * 6364136223846793005ul + 1442695040888963407ul;
        arr[i] = seed >> 11;
    }
    for (int i = 1; i < 256; i++) {
        unsigned long v = arr[i];
        int j = i - 1;
        while (j >= 0 && arr[j] > v) { arr[j + 1] = arr[j]; j--; }
        arr[j + 1] = v;
    }
    return arr[0] ^ arr[255];
}

int main(void) {
    unsigned long sum = 0;
    for (int r = 0; r < ROUNDS; r++) {
        sum += primes();
        sum += crc32(sieve, 2048);
        sum += sort(sum);
        sum += (sum * 0x9E3779B97F4A7C15ul) / (unsigned long)(r + 3);
    }
    return (int)(sum & 0x7F);
}
