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
/* y += a * x */
void lnx_axpy_f32(float *y, const float *x, float a, int64_t n);
void lnx_axpy_f16(float *y, const uint16_t *x, float a, int64_t n);

/* Rounds n floats to bf16 (nearest even) for the bf16 backend: AVX512-BF16 where available
 * (inputs below 2^-126 become zero there), else lnx_f32_to_bf16_n. */
void lnx_round_bf16_n(const float *src, uint16_t *dst, size_t n);

/* p[i] = bf16(exp(scale * (x[i] - max x))) over n values; returns their float32 sum (the softmax
 * without its normalisation, which the caller applies to the product). x is clobbered. */
float lnx_exp_bf16(float *x, int64_t n, float scale, uint16_t *p);

#endif
