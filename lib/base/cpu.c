#include "cpu.h"

#include <pthread.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#include <stdlib.h>

static unsigned flags;
static int stream_prefetch;
static pthread_once_t once = PTHREAD_ONCE_INIT;

unsigned lnx_cpu_flags_from(const lnx_cpu_raw *r)
{
    unsigned f = 0;
    /* every AVX2 kernel may also use FMA and the F16C conversions (f16 KV cache, f16 weights) */
    if (r->avx2 && r->fma && r->f16c)
        f |= LNX_CPU_AVX2;
    if ((f & LNX_CPU_AVX2) && r->avx512f && r->avx512bw && r->avx512vl)
        f |= LNX_CPU_AVX512;
    if ((f & LNX_CPU_AVX512) && r->avx512bf16)
        f |= LNX_CPU_AVX512BF16;
    if ((f & LNX_CPU_AVX512BF16) && r->amx_bf16 && r->amx_tile)
        f |= LNX_CPU_AMX_BF16;
    if ((f & LNX_CPU_AVX512) && r->avx512vnni)
        f |= LNX_CPU_AVX512VNNI;
    if ((f & LNX_CPU_AVX2) && r->avxvnni)
        f |= LNX_CPU_AVXVNNI;
    if ((f & LNX_CPU_AVX512) && r->amx_int8 && r->amx_tile)
        f |= LNX_CPU_AMX_INT8;
    return f;
}

static void detect(void)
{
    lnx_cpu_raw r = { 0 };
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    /* __builtin_cpu_supports also checks that the OS saves the AVX / AVX-512 state */
    r.avx2 = __builtin_cpu_supports("avx2");
    r.fma = __builtin_cpu_supports("fma");
    r.avx512f = __builtin_cpu_supports("avx512f");
    r.avx512bw = __builtin_cpu_supports("avx512bw");
    r.avx512vl = __builtin_cpu_supports("avx512vl");
    r.avx512bf16 = __builtin_cpu_supports("avx512bf16");
    r.avx512vnni = __builtin_cpu_supports("avx512vnni");
    unsigned a, b, c, d;
    /* CPUID.1:ECX bit 29 F16C */
    if (__get_cpuid(1, &a, &b, &c, &d))
        r.f16c = (c >> 29) & 1;
    /* CPUID.(7,0).EDX: bit 22 AMX-BF16, bit 24 AMX-TILE (the OS must still grant the tile state) */
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
        r.amx_bf16 = (d >> 22) & 1;
        r.amx_tile = (d >> 24) & 1;
        r.amx_int8 = (d >> 25) & 1; /* bit 25 AMX-INT8 */
    }
    /* CPUID.(7,1).EAX bit 4 AVX-VNNI (by CPUID: clang 14's __builtin_cpu_supports lacks the name;
     * its YMM state is the AVX state the avx2 check already needs) */
    if (__get_cpuid_count(7, 1, &a, &b, &c, &d))
        r.avxvnni = (a >> 4) & 1;
#endif
    unsigned f = lnx_cpu_flags_from(&r);
    const char *mask = getenv("LLAVANEXT_CPU_MASK");
    if (mask && *mask)
        f &= (unsigned)strtoul(mask, NULL, 0);
    flags = f;
    int pf = 0;
#if defined(__x86_64__) || defined(__i386__)
    /* Intel: GenuineIntel in CPUID.0 EBX, EDX, ECX */
    if (__get_cpuid(0, &a, &b, &c, &d) && b == 0x756e6547u && d == 0x49656e69u && c == 0x6c65746eu)
        pf = LNX_INTEL_STREAM_PREFETCH;
#endif
    const char *env = getenv("LLAVANEXT_STREAM_PREFETCH");
    if (env && *env) {
        long v = strtol(env, NULL, 0);
        pf = v < 0 ? 0 : v > (1 << 20) ? (1 << 20) : (int)v;
    }
    stream_prefetch = pf / 64 * 64;
}

unsigned lnx_cpu_flags(void)
{
    pthread_once(&once, detect);
    return flags;
}

int lnx_cpu_stream_prefetch(void)
{
    pthread_once(&once, detect);
    return stream_prefetch;
}
