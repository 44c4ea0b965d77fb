#include "cpu.h"

#include <pthread.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#include <stdlib.h>

static unsigned flags;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void detect(void)
{
    unsigned f = 0;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        f |= LNX_CPU_AVX2;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl"))
        f |= LNX_CPU_AVX512;
    if ((f & LNX_CPU_AVX512) && __builtin_cpu_supports("avx512bf16"))
        f |= LNX_CPU_AVX512BF16;
    if ((f & LNX_CPU_AVX512) && __builtin_cpu_supports("avx512vnni"))
        f |= LNX_CPU_AVX512VNNI;
    if ((f & LNX_CPU_AVX2) && __builtin_cpu_supports("avxvnni"))
        f |= LNX_CPU_AVXVNNI;
    unsigned a, b, c, d;
    /* CPUID.(7,0).EDX: bit 22 AMX-BF16, bit 24 AMX-TILE (the OS must still grant the tile state) */
    if ((f & LNX_CPU_AVX512BF16) && __get_cpuid_count(7, 0, &a, &b, &c, &d) && (d & (1u << 22)) && (d & (1u << 24)))
        f |= LNX_CPU_AMX_BF16;
    /* bit 25 AMX-INT8 */
    if ((f & LNX_CPU_AVX512) && __get_cpuid_count(7, 0, &a, &b, &c, &d) && (d & (1u << 25)) && (d & (1u << 24)))
        f |= LNX_CPU_AMX_INT8;
#endif
    const char *mask = getenv("LLAVANEXT_CPU_MASK");
    if (mask && *mask)
        f &= (unsigned)strtoul(mask, NULL, 0);
    flags = f;
}

unsigned lnx_cpu_flags(void)
{
    pthread_once(&once, detect);
    return flags;
}
