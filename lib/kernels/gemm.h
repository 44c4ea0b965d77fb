/* The one GEMM interface: float32 activations times a weight matrix in its stored dtype. */
#ifndef LNX_KERNELS_GEMM_H
#define LNX_KERNELS_GEMM_H

#include <stdint.h>

#include "../base/parallel.h"
#include "../base/dtype.h"

/*
 * C[m, n] = sum_k A[m, k] * W[n, k] (+ bias[n]) for m < M, n < W->rows, k < W->cols,
 * i.e. y = x W^T + b as torch.nn.Linear computes it. A has row stride lda, C row stride ldc
 * (both in elements). With accumulate != 0 the product is added to C instead of replacing it.
 *
 * F32 weights go straight to cblas_sgemm. BF16/F16 weights are widened into float32 one block
 * of rows at a time (never the whole matrix) and each block goes to cblas_sgemm. Small M
 * (decode) uses a GEMV that reads the stored dtype directly, threaded over output rows.
 * `pool` may be NULL (serial for our own loops; BLAS uses its own threads).
 */
void lnx_gemm(lnx_pool *pool, int64_t M, const float *A, int64_t lda, const lnx_wmat *W,
              const float *bias, float *C, int64_t ldc, int accumulate);

/* Plain float64-accumulating reference of lnx_gemm, for tests. */
void lnx_gemm_ref(int64_t M, const float *A, int64_t lda, const lnx_wmat *W, const float *bias,
                  float *C, int64_t ldc, int accumulate);

/* Dot product of float32 x[n] with one stored row (exposed for the kernel tests). */
float lnx_dot_row(lnx_dtype dt, const void *row, const float *x, int64_t n);

#endif
