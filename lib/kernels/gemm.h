/* The one GEMM interface: float32 activations times a weight matrix in its stored dtype. */
#ifndef LNX_KERNELS_GEMM_H
#define LNX_KERNELS_GEMM_H

#include <stdint.h>

#include "../base/parallel.h"
#include "../base/dtype.h"
#include "../io/config.h"

/*
 * C[m, n] = sum_k A[m, k] * W[n, k] (+ bias[n]) for m < M, n < W->rows, k < W->cols,
 * i.e. y = x W^T + b as torch.nn.Linear computes it. A has row stride lda, C row stride ldc
 * (both in elements). With accumulate != 0 the product is added to C instead of replacing it.
 *
 * F32 weights go straight to lnx_sgemm. BF16/F16 weights are widened into float32 one block
 * of rows at a time (never the whole matrix) and each block goes to lnx_sgemm. Small M
 * (decode) uses a GEMV that reads the stored dtype directly, threaded over output rows.
 * `pool` may be NULL (serial for our own loops; BLAS uses its own threads).
 */
void lnx_gemm(lnx_pool *pool, int64_t M, const float *A, int64_t lda, const lnx_wmat *W,
              const float *bias, float *C, int64_t ldc, int accumulate);

/* C[m, n] = act(C[m, n] + bias[n]) for m < M, n < N (row stride ldc) in one pass over the rows,
 * split over the pool; bias may be NULL, act < 0 means none (then nothing without a bias). */
void lnx_bias_act(lnx_pool *pool, int64_t M, int64_t N, const float *bias, int act, float *C, int64_t ldc);

/* Compute precision of the big GEMMs (vision, prefill); the numbering is the public
 * llavanext_precision's. */
enum { LNX_PRECISION_AUTO = 0, LNX_PRECISION_F32 = 1, LNX_PRECISION_BF16 = 2 };

/*
 * A GEMM backend choice plus what it caches. F32: lnx_gemm as above (the reference-exact path).
 * BF16 (oneDNN): activations are rounded to bf16, products accumulate in float32, output float32;
 * BF16 weights are used in place, F16/F32 weights are narrowed to bf16 once and cached here (keyed
 * by the weight's data pointer). Thread-safe: one context serves every handle of a model. Small M
 * (decode) always takes the float32 GEMV, which reads the stored weights directly.
 */
typedef struct lnx_gemm_ctx lnx_gemm_ctx;

/* AUTO resolves to BF16 when lnx_gemm_bf16_available(), else F32. An explicit BF16 where it is
 * not available fails with LNX_E_UNSUPPORTED saying why. */
lnx_status lnx_gemm_ctx_create(lnx_gemm_ctx **out, int32_t precision);
void lnx_gemm_ctx_free(lnx_gemm_ctx *ctx);
/* The resolved precision: LNX_PRECISION_F32 or LNX_PRECISION_BF16 (F32 for NULL). */
int32_t lnx_gemm_ctx_precision(const lnx_gemm_ctx *ctx);
/* Non-zero when the bf16 backend can run here (built with oneDNN, CPU with AVX512-BF16);
 * otherwise *why (if not NULL) gets the reason. */
int lnx_gemm_bf16_available(const char **why);

/* C = act(A W^T + b) through a context (the bf16 backend fuses the activation). */
void lnx_gemm_act(const lnx_gemm_ctx *ctx, lnx_pool *pool, int64_t M, const float *A, int64_t lda, const lnx_wmat *W,
                  const float *bias, float *C, int64_t ldc, lnx_act act);

/* C (+)= fc2(act(fc1(A) + b1)) + b2, an MLP of two products: hidden [M][fc1->rows] holds the
 * float32 activations between them where they go through memory (the bf16 backend on AMX keeps
 * them in bf16 per row block instead and does not touch hidden). Values as lnx_gemm_act then
 * lnx_gemm_x give. */
void lnx_gemm_mlp(const lnx_gemm_ctx *ctx, lnx_pool *pool, int64_t M, const float *A, int64_t lda, const lnx_wmat *fc1,
                  const float *b1, lnx_act act, const lnx_wmat *fc2, const float *b2, float *hidden, float *C,
                  int64_t ldc, int accumulate);

/* C_i = A W_i^T + b_i for n weights of the same input width (the QKV or gate/up products of one
 * layer): the bf16 backend rounds A once for all of them. bias may be NULL, or hold NULLs. */
void lnx_gemm_multi(const lnx_gemm_ctx *ctx, lnx_pool *pool, int64_t M, const float *A, int64_t lda, int n,
                    const lnx_wmat *const *W, const float *const *bias, float *const *C, const int64_t *ldc);

/* lnx_gemm through a context (NULL = F32). */
void lnx_gemm_x(const lnx_gemm_ctx *ctx, lnx_pool *pool, int64_t M, const float *A, int64_t lda, const lnx_wmat *W,
                const float *bias, float *C, int64_t ldc, int accumulate);

/* C = alpha A op(B) + beta C (row-major float32; op(B) = B^T, B stored [N, K], when b_trans, else
 * B [K, N]). oneDNN's sgemm on the calling thread alone where the build has oneDNN (a host
 * thread's OpenMP setting is restored after), else cblas_sgemm (threaded as the host set BLAS). */
void lnx_sgemm(int b_trans, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
               const float *B, int64_t ldb, float beta, float *C, int64_t ldc);
/* Around a oneDNN call: the calling thread's OpenMP thread count (which oneDNN's OpenMP runtime
 * reads) is 1 until leave. A pool worker's is set once and kept; any other thread's is restored
 * by leave(the value enter returned). Thread-local only: nothing process-wide changes. */
int lnx_omp_single_enter(void);
void lnx_omp_single_leave(int saved);
/* "onednn" or "blas": which GEMM lnx_sgemm uses on this machine (for the bench). */
const char *lnx_sgemm_backend(void);

/* Non-zero when the products should be split over the pool's workers, each calling lnx_sgemm
 * (single-threaded per call): a pool of two or more and the oneDNN backend. 0 for a pool of one
 * worker or the BLAS backend (one call). Changes no state; leave() is kept for the callers. */
int lnx_blas_serial_enter(lnx_pool *pool);
void lnx_blas_serial_leave(int entered);

/* Plain float64-accumulating reference of lnx_gemm, for tests. */
void lnx_gemm_ref(int64_t M, const float *A, int64_t lda, const lnx_wmat *W, const float *bias,
                  float *C, int64_t ldc, int accumulate);

/* Dot product of float32 x[n] with one stored row (exposed for the kernel tests). */
float lnx_dot_row(lnx_dtype dt, const void *row, const float *x, int64_t n);

/* A batched bf16 product for attention: C[b] = A[b] x B[b] for b < batch, with A [M, K] and
 * B [K, N] bf16 (B stored as [N, K] rows when b_trans), C [M, N] float32; leading dimensions
 * (ld*) and batch strides (s*) in elements. */
typedef struct lnx_bmm {
    int64_t batch, M, N, K;
    const uint16_t *A;
    int64_t lda, sa;
    const uint16_t *B;
    int64_t ldb, sb;
    int b_trans;
    float *C;
    int64_t ldc, sc;
} lnx_bmm;

/* Runs it on the context's bf16 backend: 0, or -1 when the context is not bf16 or the backend
 * failed (the caller then computes in float32). */
int lnx_gemm_bf16_bmm(const lnx_gemm_ctx *ctx, lnx_pool *pool, const lnx_bmm *m);

#endif
