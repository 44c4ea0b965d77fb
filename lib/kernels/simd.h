/* Vector building blocks shared by the kernels (runtime dispatch: AVX-512, AVX2, scalar). */
#ifndef LNX_KERNELS_SIMD_H
#define LNX_KERNELS_SIMD_H

#include <stddef.h>
#include <stdint.h>

/* Which implementation the dispatchers pick (LNX_ISA_*); honours LLAVANEXT_CPU_MASK. */
enum { LNX_ISA_SCALAR = 0, LNX_ISA_AVX2 = 1, LNX_ISA_AVX512 = 2 };
int lnx_isa(void);

float lnx_dot_f32(const float *a, const float *b, int64_t n);
/* a: IEEE half values. */
float lnx_dot_f16(const uint16_t *a, const float *b, int64_t n);

/* Rounds n floats to bf16 (nearest even) for the bf16 backend: AVX512-BF16 where available
 * (inputs below 2^-126 become zero there), else lnx_f32_to_bf16_n. */
void lnx_round_bf16_n(const float *src, uint16_t *dst, size_t n);

/* p[i] = bf16(exp(scale * (x[i] - max x))) over n values; returns their float32 sum (the softmax
 * without its normalisation, which the caller applies to the product). x is clobbered. */
float lnx_exp_bf16(float *x, int64_t n, float scale, uint16_t *p);

/* Attention over one head's cached rows (row j at base + j * stride, hd values, IEEE half when
 * `half`, else float32): s[j] = scale * (row_j . q) for j < n. */
void lnx_scores_rows(const void *base, int half, int64_t stride, int64_t n, const float *q, int32_t hd, float scale,
                     float *s);
/* out[0..hd) += sum_j p[j] * row_j for j < n (the rows as above). */
void lnx_wsum_rows(const void *base, int half, int64_t stride, int64_t n, const float *p, int32_t hd, float *out);

#endif
