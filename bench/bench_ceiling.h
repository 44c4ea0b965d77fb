/* Machine ceilings measured in the benchmark's own run: what the hardware (and OpenBLAS) can do
 * at best, to put each stage's rate next to. */
#ifndef LNX_BENCH_CEILING_H
#define LNX_BENCH_CEILING_H

#include <stdint.h>

#include "base/parallel.h"
#include "kernels/gemm.h"

typedef struct gemm_shape {
    int64_t M, N, K;
    int64_t count; /* how many times the stage runs this shape (weights the average) */
} gemm_shape;

/* FLOP/s of cblas_sgemm (row-major A[M,K] x B[N,K]^T, as lnx_gemm calls it) over the shapes,
 * each weighted by its count: total FLOP / total time, best of `reps` per shape. */
double ceiling_sgemm(const gemm_shape *shapes, int n, int reps);

/* FLOP/s of the library's float32 GEMM (lnx_gemm on float32 weights, split over the pool as the
 * library runs it: oneDNN's sgemm where the build and CPU have it, else BLAS) over the shapes. */
double ceiling_f32_gemm(lnx_pool *pool, const gemm_shape *shapes, int n, int reps);

/* Bytes/s of a streaming read of a `bytes` buffer split over the pool's threads (best of reps). */
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

/* FLOP/s of the library's bf16 linear product (float32 activations rounded to bf16, bf16 weights,
 * float32 output: our AMX kernel where the CPU has AMX, else oneDNN's matmul; split over the pool
 * as the library runs it) over the shapes; 0 when the context is not bf16. */
double ceiling_bf16_gemm(const lnx_gemm_ctx *ctx, lnx_pool *pool, const gemm_shape *shapes, int n, int reps);

double bench_now(void);

#endif
