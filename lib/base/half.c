#include "half.h"
#include "quant.h"

#include <immintrin.h>

#include "cpu.h"
#include "dtype.h"

float lnx_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    uint32_t u;
    if (exp == 0x1f) {
        u = sign | 0x7f800000u | (man << 13);
    } else if (exp != 0) {
        u = sign | ((exp + 112) << 23) | (man << 13);
    } else if (man == 0) {
        u = sign;
    } else {
        /* subnormal: normalise the mantissa */
        int e = -1;
        do {
            e++;
            man <<= 1;
        } while ((man & 0x400u) == 0);
        u = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3ffu) << 13);
    }
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

uint16_t lnx_f32_to_f16(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t abs = u & 0x7fffffffu;
    if (abs > 0x7f800000u)
        return (uint16_t)(sign | 0x7e00u | ((abs >> 13) & 0x3ffu));
    if (abs >= 0x477ff000u) /* rounds to >= 65520: overflow to infinity */
        return (uint16_t)(sign | 0x7c00u);
    if (abs >= 0x38800000u) { /* normal half */
        uint32_t r = abs - 0x38000000u;
        r += 0xfffu + ((r >> 13) & 1u);
        return (uint16_t)(sign | (r >> 13));
    }
    if (abs < 0x33000000u) /* below half the smallest subnormal: zero (ties to even -> 0) */
        return sign;
    /* subnormal half: value = man * 2^-24 */
    uint32_t exp = abs >> 23;
    uint32_t man = (abs & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126 - exp; /* 14 .. 24 */
    uint32_t q = man >> shift;
    uint32_t rem = man & ((1u << shift) - 1);
    uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1u)))
        q++;
    return (uint16_t)(sign | q);
}

__attribute__((target("avx2,fma,f16c")))
static void bf16_to_f32_avx2(const uint16_t *src, float *dst, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm_loadu_si128((const __m128i *)(src + i));
        __m256i w = _mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16);
        _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(w));
    }
    for (; i < n; i++)
        dst[i] = lnx_bf16_to_f32(src[i]);
}

__attribute__((target("avx2,fma,f16c")))
static void f32_to_bf16_avx2(const float *src, uint16_t *dst, size_t n)
{
    size_t i = 0;
    const __m256i lsb = _mm256_set1_epi32(1);
    const __m256i bias = _mm256_set1_epi32(0x7fff);
    const __m256i absmask = _mm256_set1_epi32(0x7fffffff);
    const __m256i inf = _mm256_set1_epi32(0x7f800000);
    const __m256i quiet = _mm256_set1_epi32(0x00400000);
    for (; i + 8 <= n; i += 8) {
        __m256i u = _mm256_castps_si256(_mm256_loadu_ps(src + i));
        __m256i isnan = _mm256_cmpgt_epi32(_mm256_and_si256(u, absmask), inf);
        __m256i r = _mm256_add_epi32(u, _mm256_add_epi32(bias, _mm256_and_si256(_mm256_srli_epi32(u, 16), lsb)));
        r = _mm256_blendv_epi8(r, _mm256_or_si256(u, quiet), isnan);
        r = _mm256_srli_epi32(r, 16);
        __m128i packed = _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
        _mm_storeu_si128((__m128i *)(dst + i), packed);
    }
    for (; i < n; i++)
        dst[i] = lnx_f32_to_bf16(src[i]);
}

__attribute__((target("avx2,fma,f16c")))
static void f16_to_f32_avx2(const uint16_t *src, float *dst, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    for (; i < n; i++)
        dst[i] = lnx_f16_to_f32(src[i]);
}

__attribute__((target("avx2,fma,f16c")))
static void f32_to_f16_avx2(const float *src, uint16_t *dst, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT);
        _mm_storeu_si128((__m128i *)(dst + i), h);
    }
    for (; i < n; i++)
        dst[i] = lnx_f32_to_f16(src[i]);
}

void lnx_bf16_to_f32_n(const uint16_t *src, float *dst, size_t n)
{
    if (lnx_cpu_flags() & LNX_CPU_AVX2) {
        bf16_to_f32_avx2(src, dst, n);
        return;
    }
    for (size_t i = 0; i < n; i++)
        dst[i] = lnx_bf16_to_f32(src[i]);
}

void lnx_f32_to_bf16_n(const float *src, uint16_t *dst, size_t n)
{
    if (lnx_cpu_flags() & LNX_CPU_AVX2) {
        f32_to_bf16_avx2(src, dst, n);
        return;
    }
    for (size_t i = 0; i < n; i++)
        dst[i] = lnx_f32_to_bf16(src[i]);
}

void lnx_f16_to_f32_n(const uint16_t *src, float *dst, size_t n)
{
    if (lnx_cpu_flags() & LNX_CPU_AVX2) {
        f16_to_f32_avx2(src, dst, n);
        return;
    }
    for (size_t i = 0; i < n; i++)
        dst[i] = lnx_f16_to_f32(src[i]);
}

void lnx_f32_to_f16_n(const float *src, uint16_t *dst, size_t n)
{
    if (lnx_cpu_flags() & LNX_CPU_AVX2) {
        f32_to_f16_avx2(src, dst, n);
        return;
    }
    for (size_t i = 0; i < n; i++)
        dst[i] = lnx_f32_to_f16(src[i]);
}

void lnx_widen(lnx_dtype dt, const void *src, float *dst, size_t n)
{
    switch (dt) {
    case LNX_DT_F32:
        for (size_t i = 0; i < n; i++)
            dst[i] = ((const float *)src)[i];
        break;
    case LNX_DT_F16:
        lnx_f16_to_f32_n(src, dst, n);
        break;
    case LNX_DT_BF16:
        lnx_bf16_to_f32_n(src, dst, n);
        break;
    case LNX_DT_Q8:
    case LNX_DT_Q4:
        lnx_dequantize_row(dt, src, (int64_t)n, dst);
        break;
    }
}
