/* Machine ceilings measured in the benchmark's own run, independently of the library's kernels:
 * BLAS and oneDNN GEMMs at a stage's shapes, instruction peaks, a streaming read. */
#ifndef LNX_BENCH_CEILING_H
#define LNX_BENCH_CEILING_H

#include <stdint.h>

#include "base/parallel.h"
#include "kernels/gemm.h"

typedef struct gemm_shape {
    int64_t M, N, K;
    int64_t count; /* how many times the stage runs this shape (weights the average) */
} gemm_shape;



/* A byte range to read (any alignment; where it lives decides the rate: a mapped file's 4 KiB
 * page-cache pages or anonymous memory). */
typedef struct stream_region {
    const void *data;
    uint64_t bytes;
} stream_region;

/* Bytes/s of a streaming read of the given regions, each split over the pool's threads: the best
 * of several plain readers (1, 4 and 8 interleaved streams per thread, AVX2 and, where the CPU has
 * it, AVX-512 loads; best of reps each). The decode stages use it on the very buffers they read
 * (weights where they live, mapped or in memory, and the KV cache), so that the bound is the rate
 * those pages can be read at, measured without the library's kernels. */
double ceiling_stream_regions(lnx_pool *pool, const stream_region *r, int n, int reps);

/* The same readers on a fresh `bytes` buffer of anonymous memory (the machine's figure printed
 * at the start). */
double ceiling_stream_read(lnx_pool *pool, uint64_t bytes, int reps);

/* FLOP/s of AVX512-BF16 dot products (vdpbf16ps, register-resident) on every pool thread; 0 when
 * the CPU lacks AVX512-BF16. */
double ceiling_bf16_dot(lnx_pool *pool);

/* Operations/s (2 per product) of the int8 dot-product step the quantized kernels use here
 * (AVX-512 VNNI vpdpbusd on 256-bit vectors, or AVX2 vpmaddubsw + vpmaddwd + vpaddd),
 * register-resident, on every pool thread; 0 when neither runs. */
double ceiling_int8_dot(lnx_pool *pool);

/* FLOP/s of AMX BF16 tile products (tdpbf16ps) on every pool thread; 0 when the CPU or the
 * kernel does not offer AMX. */
double ceiling_amx_bf16(lnx_pool *pool);


/* The GEMM ceilings independent of the library's kernels: FLOP/s over the shapes (weighted by
 * count; best of `reps` per shape after a warm-up) of CEIL_BLAS (cblas_sgemm, OpenBLAS's own
 * threads set to `threads` for the call) or CEIL_ONEDNN (oneDNN's matmul primitive, its OpenMP
 * runtime at `threads`), float32 or (bf16 != 0, oneDNN only) bf16 inputs with float32 output;
 * 0 when the backend is missing or out of memory. */
enum { CEIL_BLAS = 0, CEIL_ONEDNN = 1, CEIL_AMX = 2 }; /* CEIL_AMX: bf16 only, a plain AMX tile GEMM */
double ceiling_gemm(int backend, int bf16, const gemm_shape *shapes, int n, int reps, int threads);

/* FLOP/s of register-resident float32 FMAs (AVX-512 when avx512, else AVX2) on every pool
 * thread: the instruction peak; 0 when the CPU lacks the ISA. */
double ceiling_fma_peak(lnx_pool *pool, int avx512);

double bench_now(void);

#endif
