/* Runtime CPU feature detection (the shipped library is built for baseline x86-64). */
#ifndef LNX_BASE_CPU_H
#define LNX_BASE_CPU_H

enum {
    LNX_CPU_AVX2 = 1 << 0,     /* AVX2 + FMA + F16C */
    LNX_CPU_AVX512 = 1 << 1,   /* AVX-512 F/BW/VL */
    LNX_CPU_AVX512BF16 = 1 << 2,
    LNX_CPU_AMX_BF16 = 1 << 3,
    LNX_CPU_AVX512VNNI = 1 << 4, /* AVX-512 VNNI (with F/BW/VL) */
    LNX_CPU_AVXVNNI = 1 << 5,    /* AVX-VNNI (the VEX form, with AVX2) */
    LNX_CPU_AMX_INT8 = 1 << 6,   /* AMX-TILE + AMX-INT8 (the OS must still grant the tile state) */
};

/* What CPUID (and the OS) report, one field per feature the flags depend on. */
typedef struct lnx_cpu_raw {
    int avx2, fma, f16c, avx512f, avx512bw, avx512vl, avx512bf16, amx_bf16, amx_tile;
    int avx512vnni, avxvnni, amx_int8;
} lnx_cpu_raw;

/* The LNX_CPU_* flags those features allow: a level is set only with everything its kernels use
 * (and the levels below it), so no kernel runs an instruction the CPU lacks. */
unsigned lnx_cpu_flags_from(const lnx_cpu_raw *raw);

/* Bit set of LNX_CPU_* flags, computed once. Setting the environment variable
 * LLAVANEXT_CPU_MASK to a number masks it (used by tests to exercise the portable paths). */
unsigned lnx_cpu_flags(void);

/* How far ahead (bytes, a multiple of 64; 0: not at all) the decode GEMVs ask for the weight
 * stream they read into L2 (prefetcht1). Intel: LNX_INTEL_STREAM_PREFETCH. Measured on a Xeon
 * with AMX (2 threads, bf16 rows): 26 GB/s without, 39 at 8 KiB ahead against 40 for a plain
 * read of the same bytes; the hardware prefetcher alone does not run far enough ahead of a
 * kernel that computes. Elsewhere 0: on an AVX-512 EPYC the hardware prefetcher alone measured
 * fastest (software prefetch into L1 was 1.3x slower there). The environment variable
 * LLAVANEXT_STREAM_PREFETCH (bytes) overrides it, for measuring. */
enum { LNX_INTEL_STREAM_PREFETCH = 8192 };
int lnx_cpu_stream_prefetch(void);

#endif
