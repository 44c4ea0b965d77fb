/* bfloat16 and IEEE half conversions. Widening is exact; narrowing rounds to nearest even,
 * keeps infinities, and keeps NaNs as (quiet) NaNs. Bulk versions are vectorised with runtime
 * dispatch and give bit-identical results to the scalar ones. */
#ifndef LNX_BASE_HALF_H
#define LNX_BASE_HALF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline float lnx_bf16_to_f32(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline uint16_t lnx_f32_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x0040u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

float lnx_f16_to_f32(uint16_t h);
uint16_t lnx_f32_to_f16(float f);

void lnx_bf16_to_f32_n(const uint16_t *src, float *dst, size_t n);
void lnx_f32_to_bf16_n(const float *src, uint16_t *dst, size_t n);
void lnx_f16_to_f32_n(const uint16_t *src, float *dst, size_t n);
void lnx_f32_to_f16_n(const float *src, uint16_t *dst, size_t n);

#endif
