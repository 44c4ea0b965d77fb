/* Vector building blocks shared by the kernels (runtime dispatch: AVX-512, AVX2, scalar). */
#ifndef LNX_KERNELS_SIMD_H
#define LNX_KERNELS_SIMD_H

#include <stddef.h>
#include <stdint.h>

#include "../base/dtype.h"

/* Which implementation the dispatchers pick (LNX_ISA_*); honours LLAVANEXT_CPU_MASK. */
enum { LNX_ISA_SCALAR = 0, LNX_ISA_AVX2 = 1, LNX_ISA_AVX512 = 2 };
int lnx_isa(void);

float lnx_dot_f32(const float *a, const float *b, int64_t n);
/* a: IEEE half values. */
float lnx_dot_f16(const uint16_t *a, const float *b, int64_t n);

/* Elements off .. off + n of a row of Q8 blocks (base/quant.h) as float32: off and n multiples of
 * 16, so a span may start or end half-way through a block (a 16-value head's slice). */
void lnx_q8_widen(const void *row, int64_t off, int64_t n, float *out);

/* Rounds n floats to bf16 (nearest even) for the bf16 backend: AVX512-BF16 where available
 * (inputs below 2^-126 become zero there), else lnx_f32_to_bf16_n. */
void lnx_round_bf16_n(const float *src, uint16_t *dst, size_t n);

/* p[i] = bf16(exp(scale * (x[i] - max x))) over n values; returns their float32 sum (the softmax
 * without its normalisation, which the caller applies to the product). x is clobbered. */
float lnx_exp_bf16(float *x, int64_t n, float scale, uint16_t *p);

/* Decode attention at one cached position, whose keys or values are the row [KV][hd] of dtype dt
 * (LNX_DT_F32, LNX_DT_F16, or LNX_DT_Q8 blocks with hd a multiple of 16); query head h uses kv
 * head h / group:
 * s[h * s_stride] = scale * (q_h . row_{h/group}) for h < H, with q [H][hd]. */
void lnx_scores_heads(const void *row, lnx_dtype dt, const float *q, int32_t H, int32_t group, int32_t hd, float scale,
                      float *s, int64_t s_stride);
/* out[h][0..hd) += p[h * p_stride] * row_{h/group} for h < H (out [H][hd]). */
void lnx_wsum_heads(const void *row, lnx_dtype dt, const float *p, int64_t p_stride, int32_t H, int32_t group, int32_t hd,
                    float *out);
/* The same for four positions: rows[r] weighted by p[h * p_stride + r]. */
void lnx_wsum_heads4(const void *const rows[4], lnx_dtype dt, const float *p, int64_t p_stride, int32_t H, int32_t group,
                     int32_t hd, float *out);

#endif
