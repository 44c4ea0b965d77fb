/* Row kernels. Each has a plain scalar version (the oracle, *_ref) and an AVX2+FMA version
 * picked at run time; the row kernels are memory-bound, so AVX-512 would mostly add code, not
 * speed (the decode attention's per-head loops are the exception). */
#include "ops.h"

#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../base/alloc.h"
#include "../base/cpu.h"
#include "../base/half.h"
#include "../base/quant.h"
#include "simd.h"

#define AVX2 __attribute__((target("avx2,fma,f16c")))

int lnx_isa(void)
{
    unsigned f = lnx_cpu_flags();
    if (f & LNX_CPU_AVX512)
        return LNX_ISA_AVX512;
    if (f & LNX_CPU_AVX2)
        return LNX_ISA_AVX2;
    return LNX_ISA_SCALAR;
}

static int use_avx2(void)
{
    return lnx_isa() >= LNX_ISA_AVX2;
}

/* ---- AVX2 helpers ---- */

AVX2 static inline float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

AVX2 static inline float hmax8(__m256 v)
{
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* e^x to about 2e-7 relative: x = n ln2 + r, |r| <= ln2/2, e^r by its Taylor polynomial of
 * degree 7, 2^n through the exponent bits. Inputs below -87 give ~1e-38 (not 0). */
AVX2 static inline __m256 exp8(__m256 x)
{
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.0f)), _mm256_set1_ps(88.0f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.428606765330187e-06f), r);
    __m256 p = _mm256_set1_ps(1.0f / 5040);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

/* Loads the first n (< 8) floats, zero elsewhere; stores likewise. */
AVX2 static inline __m256i tail_mask(int64_t n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* ---- dot / axpy ---- */

AVX2 static float dot_f32_avx2(const float *a, const float *b, int64_t n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    float s = hsum8(_mm256_add_ps(s0, s1));
    for (; i < n; i++)
        s += a[i] * b[i];
    return s;
}

AVX2 static float dot_f16_avx2(const uint16_t *a, const float *b, int64_t n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 a0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(a + i)));
        __m256 a1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(a + i + 8)));
        s0 = _mm256_fmadd_ps(a0, _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(a1, _mm256_loadu_ps(b + i + 8), s1);
    }
    float s = hsum8(_mm256_add_ps(s0, s1));
    for (; i < n; i++)
        s += lnx_f16_to_f32(a[i]) * b[i];
    return s;
}

AVX2 static void axpy_f32_avx2(float *y, const float *x, float a, int64_t n)
{
    __m256 va = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++)
        y[i] += a * x[i];
}

AVX2 static void axpy_f16_avx2(float *y, const uint16_t *x, float a, int64_t n)
{
    __m256 va = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 xv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i)));
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, xv, _mm256_loadu_ps(y + i)));
    }
    for (; i < n; i++)
        y[i] += a * lnx_f16_to_f32(x[i]);
}

float lnx_dot_f32(const float *a, const float *b, int64_t n)
{
    if (use_avx2())
        return dot_f32_avx2(a, b, n);
    float s = 0;
    for (int64_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

float lnx_dot_f16(const uint16_t *a, const float *b, int64_t n)
{
    if (use_avx2())
        return dot_f16_avx2(a, b, n);
    float s = 0;
    for (int64_t i = 0; i < n; i++)
        s += lnx_f16_to_f32(a[i]) * b[i];
    return s;
}

/* ---- decode attention over one cached position ---- */

/* A cached position's keys (or values) are one contiguous row of kv-head slices [KV][hd]: query
 * head h reads slice h / group. Walking positions in order keeps the reads sequential. Rows are
 * float32, IEEE half, or Q8 blocks (base/quant.h; hd a multiple of 16, so every head's slice is
 * whole blocks or halves of one: element off of the row lies in block off / 32). */

/* The Q8 scale (an unaligned IEEE half) of the block at p. */
AVX2 static inline float q8_scale(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, sizeof h);
    return _cvtsh_ss(h);
}

/* The 16 int8 values of a Q8 row from element off (a multiple of 16: the first or second half of
 * block off / 32), and that block's scale. */
static inline const int8_t *q8_span16(const void *row, int64_t off, const uint8_t **block)
{
    const uint8_t *blk = (const uint8_t *)row + (size_t)(off / LNX_QBLOCK) * LNX_Q8_BYTES;
    *block = blk;
    return (const int8_t *)(blk + 2 + off % LNX_QBLOCK);
}

/* Elements off .. off + n of a Q8 row (off and n multiples of 16) against float32 b: per 16
 * values the int8 . b sum, times the block's scale. */
AVX2 static float dot_q8_avx2(const void *row, int64_t off, const float *b, int64_t n)
{
    __m256 s = _mm256_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
        const uint8_t *blk;
        __m128i q = _mm_loadu_si128((const __m128i *)q8_span16(row, off + i, &blk));
        __m256 t = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)), _mm256_loadu_ps(b + i));
        t = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(q, 8))), _mm256_loadu_ps(b + i + 8), t);
        s = _mm256_fmadd_ps(t, _mm256_set1_ps(q8_scale(blk)), s);
    }
    return hsum8(s);
}

/* y[0..n) += w x for elements off .. off + n of a Q8 row (off and n multiples of 16). */
AVX2 static void axpy_q8_avx2(float *y, const void *row, int64_t off, float w, int64_t n)
{
    for (int64_t i = 0; i < n; i += 16) {
        const uint8_t *blk;
        __m128i q = _mm_loadu_si128((const __m128i *)q8_span16(row, off + i, &blk));
        __m256 wd = _mm256_set1_ps(w * q8_scale(blk));
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(wd, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)), _mm256_loadu_ps(y + i)));
        _mm256_storeu_ps(y + i + 8, _mm256_fmadd_ps(wd, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(q, 8))),
                                                    _mm256_loadu_ps(y + i + 8)));
    }
}

/* The scalar forms (the oracle for the vector ones). */
static float dot_q8_ref(const void *row, int64_t off, const float *b, int64_t n)
{
    float s = 0;
    for (int64_t i = 0; i < n; i += 16) {
        const uint8_t *blk;
        const int8_t *q = q8_span16(row, off + i, &blk);
        float t = 0;
        for (int k = 0; k < 16; k++)
            t += (float)q[k] * b[i + k];
        s += t * lnx_q_half(blk);
    }
    return s;
}

void lnx_q8_widen(const void *row, int64_t off, int64_t n, float *out)
{
    for (int64_t i = 0; i < n; i += 16) {
        const uint8_t *blk;
        const int8_t *q = q8_span16(row, off + i, &blk);
        float d = lnx_q_half(blk);
        for (int k = 0; k < 16; k++)
            out[i + k] = (float)q[k] * d;
    }
}

static void axpy_q8_ref(float *y, const void *row, int64_t off, float w, int64_t n)
{
    for (int64_t i = 0; i < n; i += 16) {
        const uint8_t *blk;
        const int8_t *q = q8_span16(row, off + i, &blk);
        float wd = w * lnx_q_half(blk);
        for (int k = 0; k < 16; k++)
            y[i + k] += wd * (float)q[k];
    }
}

#define AVX512F __attribute__((target("avx512f,avx512bw,avx512vl,fma,f16c")))

/* 16 values of a Q8 row at element off (off % 16 == 0), scaled. */
AVX512F static inline __m512 q8_load16(const void *row, int64_t off)
{
    const uint8_t *blk;
    __m128i q = _mm_loadu_si128((const __m128i *)q8_span16(row, off, &blk));
    return _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q)), _mm512_set1_ps(q8_scale(blk)));
}

/* 16 values of a row of dtype dt at element off. */
AVX512F static inline __m512 load16(const void *row, lnx_dtype dt, int64_t off)
{
    if (dt == LNX_DT_F16)
        return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)row + off)));
    if (dt == LNX_DT_Q8)
        return q8_load16(row, off);
    return _mm512_loadu_ps((const float *)row + off);
}
/* 16 vectors of partial sums -> one vector whose lane h is the total of acc[h] (shuffle-and-add
 * tree: 30 operations instead of 16 separate reductions). */
AVX512F static inline __m512 sum16(const __m512 acc[16])
{
    __m512 s1[8], s2[4], s3[2];
    for (int i = 0; i < 8; i++) /* lanes 0-7: acc[2i]'s halves added, lanes 8-15: acc[2i+1]'s */
        s1[i] = _mm512_add_ps(_mm512_shuffle_f32x4(acc[2 * i], acc[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                              _mm512_shuffle_f32x4(acc[2 * i], acc[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    for (int i = 0; i < 4; i++) /* quarter k: 4 partials of acc[4i + k] */
        s2[i] = _mm512_add_ps(_mm512_shuffle_f32x4(s1[2 * i], s1[2 * i + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                              _mm512_shuffle_f32x4(s1[2 * i], s1[2 * i + 1], _MM_SHUFFLE(3, 1, 3, 1)));
    for (int i = 0; i < 2; i++) /* quarter k: 2 partials of acc[8i + k], then 2 of acc[8i + 4 + k] */
        s3[i] = _mm512_add_ps(_mm512_shuffle_ps(s2[2 * i], s2[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                              _mm512_shuffle_ps(s2[2 * i], s2[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    /* quarter k: totals of acc[k], acc[4 + k], acc[8 + k], acc[12 + k] */
    __m512 r = _mm512_add_ps(_mm512_shuffle_ps(s3[0], s3[1], _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm512_shuffle_ps(s3[0], s3[1], _MM_SHUFFLE(3, 1, 3, 1)));
    /* lane h <- lane 4 (h % 4) + h / 4 */
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    return _mm512_permutexvar_ps(order, r);
}

/* s[(h0 + j) * s_stride] = scale x the total of acc[j], for the sixteen heads h0 .. h0 + 15. */
AVX512F static inline void store_scores16(const __m512 acc[16], float scale, float *s, int32_t h0, int64_t s_stride)
{
    float out[16];
    _mm512_storeu_ps(out, _mm512_mul_ps(sum16(acc), _mm512_set1_ps(scale)));
    for (int j = 0; j < 16; j++)
        s[(h0 + j) * s_stride] = out[j];
}

/* These run once per head and position (150 000 times per layer at 4608 positions): sixteen heads
 * at a time with independent accumulators and one reduction tree, so that the scan of a cache
 * row costs little next to reading it. The heads' key offsets are computed once per call: an
 * integer division per head in the inner loop (grouped-query mapping) held the decode scan at
 * 12-13 GB/s; without it 20-25 GB/s, the streaming read's rate (AVX-512 EPYC, 2 threads, 4608
 * cached positions). hd must be a multiple of 16. */
#define SCORES16(NAME, LOAD)                                                                                 \
    AVX512F static void NAME(const void *row, const float *q, int32_t h0, int32_t group, int32_t hd, float scale, \
                             float *s, int64_t s_stride)                                                    \
    {                                                                                                       \
        __m512 acc[16];                                                                                     \
        const float *qh = q + (int64_t)h0 * hd;                                                             \
        int64_t kv0 = (int64_t)(h0 / group) * hd;                                                          \
        _Pragma("GCC unroll 16") for (int j = 0; j < 16; j++) acc[j] = _mm512_setzero_ps();                 \
        if (group == 1) {                                                                                   \
            /* no grouped queries: head j reads kv head h0 + j (no division in the loop), head by head  \
             * so that the row is read in address order (d outer, the sixteen heads inner, took sixteen \
             * pointers, spilled: 11.4 -> 17.7 GB/s per core at hd 128, AVX-512 EPYC) */                \
            _Pragma("GCC unroll 16") for (int j = 0; j < 16; j++)                                           \
                for (int32_t d = 0; d < hd; d += 16)                                                        \
                    acc[j] = _mm512_fmadd_ps(LOAD(row, kv0 + (int64_t)j * hd + d),                          \
                                             _mm512_loadu_ps(qh + (int64_t)j * hd + d), acc[j]);             \
        } else {                                                                                            \
            int64_t off[16];                                                                                \
            for (int j = 0; j < 16; j++)                                                                    \
                off[j] = (int64_t)((h0 + j) / group) * hd;                                                  \
            for (int32_t d = 0; d < hd; d += 16) {                                                          \
                _Pragma("GCC unroll 16") for (int j = 0; j < 16; j++)                                       \
                    acc[j] = _mm512_fmadd_ps(LOAD(row, off[j] + d), _mm512_loadu_ps(qh + (int64_t)j * hd + d), \
                                             acc[j]);                                                       \
            }                                                                                               \
        }                                                                                                   \
        store_scores16(acc, scale, s, h0, s_stride);                                                        \
    }

#define LOAD_F16(row, off) _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)(row) + (off))))
#define LOAD_F32(row, off) _mm512_loadu_ps((const float *)(row) + (off))
SCORES16(scores16_f16, LOAD_F16)
SCORES16(scores16_f32, LOAD_F32)
SCORES16(scores16_q8, q8_load16)

/* Q8 rows with hd a multiple of 32 (every head whole blocks): per block one scale broadcast for
 * its 32 values (the 16-value loads above scale each half, which held the q8 decode scan below
 * the half cache's). Sixteen heads with their own accumulators and one reduction tree, as above. */
/* The 32 int8 values of the Q8 block at blk as two float32 vectors (unscaled). */
AVX512F static inline void q8_block_ps(const uint8_t *blk, __m512 *k0, __m512 *k1)
{
    __m256i raw = _mm256_loadu_si256((const __m256i *)(blk + 2));
    *k0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_castsi256_si128(raw)));
    *k1 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_extracti128_si256(raw, 1)));
}

AVX512F static inline __m512 q8_dot_block(const uint8_t *blk, const float *q)
{
    __m512 k0, k1;
    q8_block_ps(blk, &k0, &k1);
    return _mm512_fmadd_ps(k1, _mm512_loadu_ps(q + 16), _mm512_mul_ps(k0, _mm512_loadu_ps(q)));
}

AVX512F static void scores16_q8_blocks(const void *row, const float *q, int32_t h0, int32_t group, int32_t hd,
                                       float scale, float *s, int64_t s_stride)
{
    __m512 acc[16];
    const float *qh = q + (int64_t)h0 * hd;
    for (int j = 0; j < 16; j++) {
        const uint8_t *blk = (const uint8_t *)row + (size_t)((int64_t)((h0 + j) / group) * hd / LNX_QBLOCK) * LNX_Q8_BYTES;
        __m512 a = _mm512_setzero_ps();
        for (int32_t d = 0; d < hd; d += LNX_QBLOCK, blk += LNX_Q8_BYTES)
            a = _mm512_fmadd_ps(q8_dot_block(blk, qh + (int64_t)j * hd + d), _mm512_set1_ps(q8_scale(blk)), a);
        acc[j] = a;
    }
    store_scores16(acc, scale, s, h0, s_stride);
}

/* out[h] += sum_r p[h][r] row_r[h / group] over nr Q8 rows, block by block (hd a multiple of 32). */
AVX512F static void wsum_q8_blocks(const void *const *rows, int nr, const float *p, int64_t p_stride, int32_t H,
                                   int32_t group, int32_t hd, float *out)
{
    for (int32_t h = 0; h < H; h++) {
        size_t b0 = (size_t)((int64_t)(h / group) * hd / LNX_QBLOCK) * LNX_Q8_BYTES;
        float *o = out + (int64_t)h * hd;
        for (int32_t d = 0; d < hd; d += LNX_QBLOCK, b0 += LNX_Q8_BYTES) {
            __m512 a0 = _mm512_loadu_ps(o + d), a1 = _mm512_loadu_ps(o + d + 16);
            for (int r = 0; r < nr; r++) {
                const uint8_t *blk = (const uint8_t *)rows[r] + b0;
                __m512 k0, k1, w = _mm512_set1_ps(p[h * p_stride + r] * q8_scale(blk));
                q8_block_ps(blk, &k0, &k1);
                a0 = _mm512_fmadd_ps(w, k0, a0);
                a1 = _mm512_fmadd_ps(w, k1, a1);
            }
            _mm512_storeu_ps(o + d, a0);
            _mm512_storeu_ps(o + d + 16, a1);
        }
    }
}

AVX512F static void scores_heads_avx512(const void *row, lnx_dtype dt, const float *q, int32_t H, int32_t group,
                                        int32_t hd, float scale, float *s, int64_t s_stride)
{
    int32_t h0 = 0;
    for (; h0 + 16 <= H; h0 += 16) {
        if (dt == LNX_DT_F16)
            scores16_f16(row, q, h0, group, hd, scale, s, s_stride);
        else if (dt == LNX_DT_Q8 && hd % LNX_QBLOCK == 0)
            scores16_q8_blocks(row, q, h0, group, hd, scale, s, s_stride);
        else if (dt == LNX_DT_Q8)
            scores16_q8(row, q, h0, group, hd, scale, s, s_stride);
        else
            scores16_f32(row, q, h0, group, hd, scale, s, s_stride);
    }
    for (int32_t h = h0; h < H; h++) {
        int64_t off = (int64_t)(h / group) * hd;
        const float *qh = q + (int64_t)h * hd;
        __m512 a0 = _mm512_setzero_ps();
        for (int32_t d = 0; d < hd; d += 16)
            a0 = _mm512_fmadd_ps(load16(row, dt, off + d), _mm512_loadu_ps(qh + d), a0);
        s[h * s_stride] = _mm512_reduce_add_ps(a0) * scale;
    }
}

/* nr (1..4) consecutive positions' rows (rows[r]) at once: each output vector is loaded and
 * stored once per group instead of once per position. One copy per row type, so that the type
 * is not tested in the inner loop. */
#define WSUM(NAME, LOAD)                                                                                     \
    AVX512F static void NAME(const void *const *rows, int nr, const float *p, int64_t p_stride, int32_t H,     \
                             int32_t group, int32_t hd, float *out)                                          \
    {                                                                                                       \
        for (int32_t h = 0; h < H; h++) {                                                                   \
            int64_t off = (int64_t)(h / group) * hd;                                                        \
            float *o = out + (int64_t)h * hd;                                                               \
            __m512 w[4];                                                                                    \
            for (int r = 0; r < nr; r++)                                                                    \
                w[r] = _mm512_set1_ps(p[h * p_stride + r]);                                                 \
            for (int32_t d = 0; d < hd; d += 16) {                                                          \
                __m512 acc = _mm512_loadu_ps(o + d);                                                        \
                for (int r = 0; r < nr; r++)                                                                \
                    acc = _mm512_fmadd_ps(w[r], LOAD(rows[r], off + d), acc);                               \
                _mm512_storeu_ps(o + d, acc);                                                               \
            }                                                                                               \
        }                                                                                                   \
    }
WSUM(wsum_f16, LOAD_F16)
WSUM(wsum_f32, LOAD_F32)
WSUM(wsum_q8_halves, q8_load16)

AVX512F static void wsum_heads_avx512(const void *const *rows, int nr, lnx_dtype dt, const float *p, int64_t p_stride,
                                      int32_t H, int32_t group, int32_t hd, float *out)
{
    if (dt == LNX_DT_Q8 && hd % LNX_QBLOCK == 0)
        wsum_q8_blocks(rows, nr, p, p_stride, H, group, hd, out);
    else if (dt == LNX_DT_Q8)
        wsum_q8_halves(rows, nr, p, p_stride, H, group, hd, out);
    else if (dt == LNX_DT_F16)
        wsum_f16(rows, nr, p, p_stride, H, group, hd, out);
    else
        wsum_f32(rows, nr, p, p_stride, H, group, hd, out);
}

/* Whether the AVX-512 kernels take rows of this head size and dtype. */
static int heads_avx512(int32_t hd)
{
    return lnx_isa() >= LNX_ISA_AVX512 && hd % 16 == 0;
}

void lnx_scores_heads(const void *row, lnx_dtype dt, const float *q, int32_t H, int32_t group, int32_t hd, float scale,
                      float *s, int64_t s_stride)
{
    if (heads_avx512(hd)) {
        scores_heads_avx512(row, dt, q, H, group, hd, scale, s, s_stride);
        return;
    }
    const int avx2 = use_avx2();
    for (int32_t h = 0; h < H; h++) {
        int64_t off = (int64_t)(h / group) * hd;
        const float *qh = q + (int64_t)h * hd;
        float d;
        if (dt == LNX_DT_F16)
            d = lnx_dot_f16((const uint16_t *)row + off, qh, hd);
        else if (dt == LNX_DT_Q8)
            d = avx2 ? dot_q8_avx2(row, off, qh, hd) : dot_q8_ref(row, off, qh, hd);
        else
            d = lnx_dot_f32((const float *)row + off, qh, hd);
        s[h * s_stride] = d * scale;
    }
}

void lnx_wsum_heads4(const void *const rows[4], lnx_dtype dt, const float *p, int64_t p_stride, int32_t H,
                     int32_t group, int32_t hd, float *out)
{
    if (heads_avx512(hd)) {
        wsum_heads_avx512(rows, 4, dt, p, p_stride, H, group, hd, out);
        return;
    }
    for (int r = 0; r < 4; r++)
        lnx_wsum_heads(rows[r], dt, p + r, p_stride, H, group, hd, out);
}

void lnx_wsum_heads(const void *row, lnx_dtype dt, const float *p, int64_t p_stride, int32_t H, int32_t group,
                    int32_t hd, float *out)
{
    if (heads_avx512(hd)) {
        wsum_heads_avx512(&row, 1, dt, p, p_stride, H, group, hd, out);
        return;
    }
    const int avx2 = use_avx2();
    for (int32_t h = 0; h < H; h++) {
        int64_t off = (int64_t)(h / group) * hd;
        float w = p[h * p_stride], *o = out + (int64_t)h * hd;
        if (dt == LNX_DT_F16) {
            const uint16_t *xh = (const uint16_t *)row + off;
            if (avx2)
                axpy_f16_avx2(o, xh, w, hd);
            else
                for (int32_t d = 0; d < hd; d++)
                    o[d] += w * lnx_f16_to_f32(xh[d]);
        } else if (dt == LNX_DT_Q8) {
            if (avx2)
                axpy_q8_avx2(o, row, off, w, hd);
            else
                axpy_q8_ref(o, row, off, w, hd);
        } else {
            const float *xf = (const float *)row + off;
            if (avx2)
                axpy_f32_avx2(o, xf, w, hd);
            else
                for (int32_t d = 0; d < hd; d++)
                    o[d] += w * xf[d];
        }
    }
}

/* ---- norms ---- */

typedef struct norm_ctx {
    const float *x;
    int64_t dim;
    const float *w, *b;
    float eps;
    float *out;
    int fast;
} norm_ctx;

static void layernorm_row_ref(const float *x, int64_t dim, const float *w, const float *b, float eps, float *o)
{
    double sum = 0.0;
    for (int64_t i = 0; i < dim; i++)
        sum += x[i];
    float mean = (float)(sum / (double)dim);
    double var = 0.0;
    for (int64_t i = 0; i < dim; i++) {
        double d = (double)x[i] - mean;
        var += d * d;
    }
    float inv = (float)(1.0 / sqrt(var / (double)dim + eps));
    for (int64_t i = 0; i < dim; i++)
        o[i] = (x[i] - mean) * inv * w[i] + b[i];
}

AVX2 static void layernorm_row_avx2(const float *x, int64_t dim, const float *w, const float *b, float eps, float *o)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int64_t i = 0, n16 = dim & ~(int64_t)15;
    for (; i < n16; i += 16) {
        s0 = _mm256_add_ps(s0, _mm256_loadu_ps(x + i));
        s1 = _mm256_add_ps(s1, _mm256_loadu_ps(x + i + 8));
    }
    float sum = hsum8(_mm256_add_ps(s0, s1));
    for (; i < dim; i++)
        sum += x[i];
    float mean = sum / (float)dim;
    __m256 vm = _mm256_set1_ps(mean);
    s0 = s1 = _mm256_setzero_ps();
    for (i = 0; i < n16; i += 16) {
        __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(x + i), vm), d1 = _mm256_sub_ps(_mm256_loadu_ps(x + i + 8), vm);
        s0 = _mm256_fmadd_ps(d0, d0, s0);
        s1 = _mm256_fmadd_ps(d1, d1, s1);
    }
    float var = hsum8(_mm256_add_ps(s0, s1));
    for (; i < dim; i++)
        var += (x[i] - mean) * (x[i] - mean);
    float inv = 1.0f / sqrtf(var / (float)dim + eps);
    __m256 vi = _mm256_set1_ps(inv);
    for (i = 0; i + 8 <= dim; i += 8) {
        __m256 t = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm), vi);
        _mm256_storeu_ps(o + i, _mm256_fmadd_ps(t, _mm256_loadu_ps(w + i), _mm256_loadu_ps(b + i)));
    }
    for (; i < dim; i++)
        o[i] = (x[i] - mean) * inv * w[i] + b[i];
}

static void layernorm_rows(void *p, int64_t begin, int64_t end, int worker)
{
    (void)worker;
    const norm_ctx *c = p;
    for (int64_t r = begin; r < end; r++) {
        if (c->fast)
            layernorm_row_avx2(c->x + r * c->dim, c->dim, c->w, c->b, c->eps, c->out + r * c->dim);
        else
            layernorm_row_ref(c->x + r * c->dim, c->dim, c->w, c->b, c->eps, c->out + r * c->dim);
    }
}

void lnx_layernorm(lnx_pool *pool, const float *x, int64_t rows, int64_t dim, const float *w, const float *b,
                   float eps, float *out)
{
    norm_ctx c = { x, dim, w, b, eps, out, use_avx2() };
    lnx_parallel_for(pool, rows, layernorm_rows, &c);
}

void lnx_layernorm_ref(const float *x, int64_t rows, int64_t dim, const float *w, const float *b, float eps,
                       float *out)
{
    norm_ctx c = { x, dim, w, b, eps, out, 0 };
    layernorm_rows(&c, 0, rows, 0);
}

static void rmsnorm_row_ref(const float *x, int64_t dim, const float *w, float eps, float *o)
{
    double ss = 0.0;
    for (int64_t i = 0; i < dim; i++)
        ss += (double)x[i] * x[i];
    float inv = (float)(1.0 / sqrt(ss / (double)dim + eps));
    for (int64_t i = 0; i < dim; i++)
        o[i] = w[i] * (x[i] * inv);
}

AVX2 static void rmsnorm_row_avx2(const float *x, int64_t dim, const float *w, float eps, float *o)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= dim; i += 16) {
        __m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(x + i + 8);
        s0 = _mm256_fmadd_ps(a, a, s0);
        s1 = _mm256_fmadd_ps(b, b, s1);
    }
    float ss = hsum8(_mm256_add_ps(s0, s1));
    for (; i < dim; i++)
        ss += x[i] * x[i];
    float inv = 1.0f / sqrtf(ss / (float)dim + eps);
    __m256 vi = _mm256_set1_ps(inv);
    for (i = 0; i + 8 <= dim; i += 8)
        _mm256_storeu_ps(o + i, _mm256_mul_ps(_mm256_loadu_ps(w + i), _mm256_mul_ps(_mm256_loadu_ps(x + i), vi)));
    for (; i < dim; i++)
        o[i] = w[i] * (x[i] * inv);
}

static void rmsnorm_rows(void *p, int64_t begin, int64_t end, int worker)
{
    (void)worker;
    const norm_ctx *c = p;
    for (int64_t r = begin; r < end; r++) {
        if (c->fast)
            rmsnorm_row_avx2(c->x + r * c->dim, c->dim, c->w, c->eps, c->out + r * c->dim);
        else
            rmsnorm_row_ref(c->x + r * c->dim, c->dim, c->w, c->eps, c->out + r * c->dim);
    }
}

void lnx_rmsnorm(lnx_pool *pool, const float *x, int64_t rows, int64_t dim, const float *w, float eps, float *out)
{
    norm_ctx c = { x, dim, w, NULL, eps, out, use_avx2() };
    lnx_parallel_for(pool, rows, rmsnorm_rows, &c);
}

void lnx_rmsnorm_ref(const float *x, int64_t rows, int64_t dim, const float *w, float eps, float *out)
{
    norm_ctx c = { x, dim, w, NULL, eps, out, 0 };
    rmsnorm_rows(&c, 0, rows, 0);
}

/* ---- activations ---- */

float lnx_scalar_act(lnx_act act, float x)
{
    switch (act) {
    case LNX_ACT_QUICK_GELU:
        return x / (1.0f + expf(-1.702f * x));
    case LNX_ACT_GELU:
        return (float)(0.5 * x * (1.0 + erf(x / sqrt(2.0))));
    case LNX_ACT_GELU_TANH: {
        double t = tanh(0.7978845608028654 * (x + 0.044715 * (double)x * x * x));
        return (float)(0.5 * x * (1.0 + t));
    }
    case LNX_ACT_SILU:
        return x / (1.0f + expf(-x));
    case LNX_ACT_RELU:
        return x > 0 ? x : 0;
    }
    return x;
}

/* x * sigmoid(k x) */
AVX2 static inline __m256 xsigmoid8(__m256 x, float k)
{
    __m256 e = exp8(_mm256_mul_ps(x, _mm256_set1_ps(-k)));
    return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

/* 0.5 x (1 + erf(x / sqrt 2)), erf by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7). */
AVX2 static inline __m256 gelu8(__m256 x)
{
    __m256 z = _mm256_mul_ps(x, _mm256_set1_ps(0.70710678118654752f));
    __m256 az = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), z);
    __m256 t = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_fmadd_ps(az, _mm256_set1_ps(0.3275911f), _mm256_set1_ps(1.0f)));
    __m256 p = _mm256_set1_ps(1.061405429f);
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.453152027f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.421413741f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.284496736f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.254829592f));
    p = _mm256_mul_ps(p, t);
    __m256 e = exp8(_mm256_mul_ps(_mm256_mul_ps(az, az), _mm256_set1_ps(-1.0f)));
    __m256 erf_abs = _mm256_fnmadd_ps(p, e, _mm256_set1_ps(1.0f));
    __m256 erf = _mm256_or_ps(erf_abs, _mm256_and_ps(z, _mm256_set1_ps(-0.0f)));
    return _mm256_mul_ps(_mm256_mul_ps(x, _mm256_set1_ps(0.5f)), _mm256_add_ps(_mm256_set1_ps(1.0f), erf));
}

/* 0.5 x (1 + tanh(y)) = x * sigmoid(2y), y = sqrt(2/pi) (x + 0.044715 x^3) */
AVX2 static inline __m256 gelu_tanh8(__m256 x)
{
    __m256 x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
    __m256 y = _mm256_mul_ps(_mm256_fmadd_ps(x3, _mm256_set1_ps(0.044715f), x), _mm256_set1_ps(0.7978845608028654f));
    __m256 e = exp8(_mm256_mul_ps(y, _mm256_set1_ps(-2.0f)));
    return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

AVX2 static inline __m256 act8(lnx_act act, __m256 x)
{
    switch (act) {
    case LNX_ACT_QUICK_GELU:
        return xsigmoid8(x, 1.702f);
    case LNX_ACT_GELU:
        return gelu8(x);
    case LNX_ACT_GELU_TANH:
        return gelu_tanh8(x);
    case LNX_ACT_SILU:
        return xsigmoid8(x, 1.0f);
    case LNX_ACT_RELU:
        return _mm256_max_ps(x, _mm256_setzero_ps());
    }
    return x;
}

/* The same on 16 lanes (AVX-512 CPUs): the activation passes over an MLP's hidden rows (8-frame
 * CLIP batches: 4616 x 4096 GELUs per layer) take half the instructions. exp16 as exp8, with the
 * power of two applied by scalef. */
AVX512F static inline __m512 exp16f(__m512 x)
{
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.0f)), _mm512_set1_ps(88.0f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187e-06f), r);
    __m512 p = _mm512_set1_ps(1.0f / 5040);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

AVX512F static inline __m512 xsigmoid16(__m512 x, float k)
{
    __m512 e = exp16f(_mm512_mul_ps(x, _mm512_set1_ps(-k)));
    return _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

AVX512F static inline __m512 gelu16(__m512 x)
{
    __m512 z = _mm512_mul_ps(x, _mm512_set1_ps(0.70710678118654752f));
    __m512 az = _mm512_abs_ps(z);
    __m512 t = _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_fmadd_ps(az, _mm512_set1_ps(0.3275911f), _mm512_set1_ps(1.0f)));
    __m512 p = _mm512_set1_ps(1.061405429f);
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.453152027f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.421413741f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.284496736f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.254829592f));
    p = _mm512_mul_ps(p, t);
    __m512 e = exp16f(_mm512_mul_ps(_mm512_mul_ps(az, az), _mm512_set1_ps(-1.0f)));
    __m512 erf_abs = _mm512_fnmadd_ps(p, e, _mm512_set1_ps(1.0f));
    /* erf takes z's sign: flip where z < 0 */
    __m512 erf = _mm512_mask_sub_ps(erf_abs, _mm512_cmp_ps_mask(z, _mm512_setzero_ps(), _CMP_LT_OQ),
                                    _mm512_setzero_ps(), erf_abs);
    return _mm512_mul_ps(_mm512_mul_ps(x, _mm512_set1_ps(0.5f)), _mm512_add_ps(_mm512_set1_ps(1.0f), erf));
}

AVX512F static inline __m512 gelu_tanh16(__m512 x)
{
    __m512 x3 = _mm512_mul_ps(_mm512_mul_ps(x, x), x);
    __m512 y = _mm512_mul_ps(_mm512_fmadd_ps(x3, _mm512_set1_ps(0.044715f), x), _mm512_set1_ps(0.7978845608028654f));
    __m512 e = exp16f(_mm512_mul_ps(y, _mm512_set1_ps(-2.0f)));
    return _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

AVX512F static inline __m512 act16(lnx_act act, __m512 x)
{
    switch (act) {
    case LNX_ACT_QUICK_GELU:
        return xsigmoid16(x, 1.702f);
    case LNX_ACT_GELU:
        return gelu16(x);
    case LNX_ACT_GELU_TANH:
        return gelu_tanh16(x);
    case LNX_ACT_SILU:
        return xsigmoid16(x, 1.0f);
    case LNX_ACT_RELU:
        return _mm512_max_ps(x, _mm512_setzero_ps());
    }
    return x;
}

AVX512F static void act_avx512(lnx_act act, float *x, int64_t n)
{
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(x + i, act16(act, _mm512_loadu_ps(x + i)));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(x + i, m, act16(act, _mm512_maskz_loadu_ps(m, x + i)));
    }
}

AVX512F static void swiglu_avx512(const float *gate, float *x, int64_t n)
{
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(x + i, _mm512_mul_ps(xsigmoid16(_mm512_loadu_ps(gate + i), 1.0f), _mm512_loadu_ps(x + i)));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(x + i, m,
                              _mm512_mul_ps(xsigmoid16(_mm512_maskz_loadu_ps(m, gate + i), 1.0f), _mm512_maskz_loadu_ps(m, x + i)));
    }
}

typedef struct act_ctx {
    lnx_act act;
    float *x;
    const float *gate;
    int fast; /* LNX_ISA_* of the kernel to run */
} act_ctx;

AVX2 static void act_avx2(lnx_act act, float *x, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(x + i, act8(act, _mm256_loadu_ps(x + i)));
    if (i < n) {
        __m256i m = tail_mask(n - i);
        _mm256_maskstore_ps(x + i, m, act8(act, _mm256_maskload_ps(x + i, m)));
    }
}

static void act_range(void *p, int64_t begin, int64_t end, int worker)
{
    (void)worker;
    const act_ctx *c = p;
    if (c->fast == LNX_ISA_AVX512) {
        act_avx512(c->act, c->x + begin, end - begin);
        return;
    }
    if (c->fast) {
        act_avx2(c->act, c->x + begin, end - begin);
        return;
    }
    for (int64_t i = begin; i < end; i++)
        c->x[i] = lnx_scalar_act(c->act, c->x[i]);
}

/* Chunks of at least this many elements per parallel task keep the pool's overhead small. */
#define ELEM_GRAIN 4096

typedef struct grain_ctx {
    lnx_range_fn fn;
    void *ctx;
    int64_t n;
} grain_ctx;

static void grain_range(void *p, int64_t begin, int64_t end, int worker)
{
    const grain_ctx *g = p;
    int64_t b = begin * ELEM_GRAIN, e = end * ELEM_GRAIN < g->n ? end * ELEM_GRAIN : g->n;
    g->fn(g->ctx, b, e, worker);
}

static void parallel_elems(lnx_pool *pool, int64_t n, lnx_range_fn fn, void *ctx)
{
    grain_ctx g = { fn, ctx, n };
    lnx_parallel_for(pool, (n + ELEM_GRAIN - 1) / ELEM_GRAIN, grain_range, &g);
}

void lnx_activate(lnx_pool *pool, lnx_act act, float *x, int64_t n)
{
    act_ctx c = { act, x, NULL, lnx_isa() };
    parallel_elems(pool, n, act_range, &c);
}

void lnx_activate_ref(lnx_act act, float *x, int64_t n)
{
    act_ctx c = { act, x, NULL, 0 };
    act_range(&c, 0, n, 0);
}

AVX2 static void swiglu_avx2(const float *gate, float *x, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(x + i, _mm256_mul_ps(xsigmoid8(_mm256_loadu_ps(gate + i), 1.0f), _mm256_loadu_ps(x + i)));
    for (; i < n; i++) {
        float g = gate[i];
        x[i] = (g / (1.0f + expf(-g))) * x[i];
    }
}

static void swiglu_range(void *p, int64_t begin, int64_t end, int worker)
{
    (void)worker;
    const act_ctx *c = p;
    if (c->fast == LNX_ISA_AVX512) {
        swiglu_avx512(c->gate + begin, c->x + begin, end - begin);
        return;
    }
    if (c->fast) {
        swiglu_avx2(c->gate + begin, c->x + begin, end - begin);
        return;
    }
    for (int64_t i = begin; i < end; i++) {
        float g = c->gate[i];
        c->x[i] = (g / (1.0f + expf(-g))) * c->x[i];
    }
}

void lnx_swiglu(lnx_pool *pool, const float *gate, float *x, int64_t n)
{
    act_ctx c = { LNX_ACT_SILU, x, gate, lnx_isa() };
    parallel_elems(pool, n, swiglu_range, &c);
}

void lnx_swiglu_ref(const float *gate, float *x, int64_t n)
{
    act_ctx c = { LNX_ACT_SILU, x, gate, 0 };
    swiglu_range(&c, 0, n, 0);
}

/* ---- softmax ---- */

double lnx_softmax_ref(float *x, int64_t n)
{
    float mx = -INFINITY;
    for (int64_t i = 0; i < n; i++)
        if (x[i] > mx)
            mx = x[i];
    if (mx == -INFINITY) {
        for (int64_t i = 0; i < n; i++)
            x[i] = 0.0f;
        return -INFINITY;
    }
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - mx);
        sum += x[i];
    }
    float inv = (float)(1.0 / sum);
    for (int64_t i = 0; i < n; i++)
        x[i] *= inv;
    return log(sum) + mx;
}

AVX2 static double softmax_avx2(float *x, int64_t n)
{
    __m256 vm = _mm256_set1_ps(-INFINITY);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        vm = _mm256_max_ps(vm, _mm256_loadu_ps(x + i));
    float mx = hmax8(vm);
    for (; i < n; i++)
        mx = x[i] > mx ? x[i] : mx;
    if (mx == -INFINITY || isnan(mx))
        return lnx_softmax_ref(x, n);
    vm = _mm256_set1_ps(mx);
    __m256 s = _mm256_setzero_ps();
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
        _mm256_storeu_ps(x + i, e);
        s = _mm256_add_ps(s, e);
    }
    double sum = hsum8(s);
    for (; i < n; i++) {
        x[i] = expf(x[i] - mx);
        sum += x[i];
    }
    __m256 vi = _mm256_set1_ps((float)(1.0 / sum));
    for (i = 0; i + 8 <= n; i += 8)
        _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), vi));
    for (; i < n; i++)
        x[i] *= (float)(1.0 / sum);
    return log(sum) + mx;
}

double lnx_softmax(float *x, int64_t n)
{
    if (use_avx2())
        return softmax_avx2(x, n);
    return lnx_softmax_ref(x, n);
}

/* ---- bf16 rounding and the probabilities of the bf16 attention ---- */

#define AVX512BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,fma")))

AVX512BF16 static void round_bf16_avx512(const float *src, uint16_t *dst, size_t n)
{
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512bh b = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(src + i + 16), _mm512_loadu_ps(src + i));
        _mm512_storeu_si512((void *)(dst + i), (__m512i)b);
    }
    if (i < n) {
        __mmask16 m0 = (__mmask16)(n - i >= 16 ? 0xffff : (1u << (n - i)) - 1);
        __mmask16 m1 = (__mmask16)(n - i > 16 ? (n - i >= 32 ? 0xffff : (1u << (n - i - 16)) - 1) : 0);
        __m512bh b = _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(m1, src + i + 16), _mm512_maskz_loadu_ps(m0, src + i));
        _mm512_mask_storeu_epi16(dst + i, (__mmask32)m0 | ((__mmask32)m1 << 16), (__m512i)b);
    }
}

void lnx_round_bf16_n(const float *src, uint16_t *dst, size_t n)
{
    if (lnx_cpu_flags() & LNX_CPU_AVX512BF16)
        round_bf16_avx512(src, dst, n);
    else
        lnx_f32_to_bf16_n(src, dst, n);
}

AVX2 static float exp_bf16_avx2(float *x, int64_t n, float scale)
{
    __m256 vm = _mm256_set1_ps(-INFINITY);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        vm = _mm256_max_ps(vm, _mm256_loadu_ps(x + i));
    float mx = hmax8(vm);
    for (; i < n; i++)
        mx = x[i] > mx ? x[i] : mx;
    __m256 vs = _mm256_set1_ps(scale), vb = _mm256_set1_ps(-mx * scale), sum = _mm256_setzero_ps();
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 e = exp8(_mm256_fmadd_ps(_mm256_loadu_ps(x + i), vs, vb));
        _mm256_storeu_ps(x + i, e);
        sum = _mm256_add_ps(sum, e);
    }
    float s = hsum8(sum);
    for (; i < n; i++) {
        x[i] = expf((x[i] - mx) * scale);
        s += x[i];
    }
    return s;
}

/* exp8's scheme at 16 lanes */
/* exp(x) for x <= 0 (scores less their row maximum): x = n ln2 + r, |r| <= ln2 / 2, e^r by its
 * degree-5 Taylor polynomial (relative error < 3e-6, far below the bf16 rounding of the result),
 * times 2^n by scalef (0 for very negative x; -inf is clamped first, so that it gives 0, not NaN). */
AVX512BF16 static inline __m512 exp16(__m512 x)
{
    x = _mm512_max_ps(x, _mm512_set1_ps(-200.0f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187e-06f), r);
    __m512 q = _mm512_set1_ps(1.0f / 120);
    q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(1.0f / 24));
    q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(1.0f / 6));
    q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(0.5f));
    q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(1.0f));
    q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(q, n);
}

/* Two passes: the maximum, then exp, sum and bf16 store together. */
AVX512BF16 static float exp_bf16_avx512(const float *x, int64_t n, float scale, uint16_t *p)
{
    __m512 vm = _mm512_set1_ps(-INFINITY);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        vm = _mm512_max_ps(vm, _mm512_loadu_ps(x + i));
    if (i < n)
        vm = _mm512_max_ps(vm, _mm512_mask_loadu_ps(vm, (__mmask16)((1u << (n - i)) - 1), x + i));
    float mx = _mm512_reduce_max_ps(vm);
    __m512 vs = _mm512_set1_ps(scale), vb = _mm512_set1_ps(-mx * scale), sum = _mm512_setzero_ps();
    for (i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 e = exp16(_mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x + i), vs, vb));
        e = _mm512_maskz_mov_ps(m, e);
        sum = _mm512_add_ps(sum, e);
        _mm256_mask_storeu_epi16(p + i, m, (__m256i)_mm512_cvtneps_pbh(e));
    }
    return _mm512_reduce_add_ps(sum);
}

float lnx_exp_bf16(float *x, int64_t n, float scale, uint16_t *p)
{
    float s = 0;
    if (lnx_cpu_flags() & LNX_CPU_AVX512BF16)
        return exp_bf16_avx512(x, n, scale, p);
    if (use_avx2()) {
        s = exp_bf16_avx2(x, n, scale);
    } else {
        float mx = -INFINITY;
        for (int64_t i = 0; i < n; i++)
            mx = x[i] > mx ? x[i] : mx;
        for (int64_t i = 0; i < n; i++) {
            x[i] = expf((x[i] - mx) * scale);
            s += x[i];
        }
    }
    lnx_round_bf16_n(x, p, (size_t)n);
    return s;
}

/* ---- rotary embeddings ---- */

lnx_status lnx_rope_init(lnx_rope *r, int32_t head_dim, double theta, double factor)
{
    r->head_dim = head_dim;
    r->inv_freq = malloc(sizeof(float) * (size_t)(head_dim / 2));
    if (!r->inv_freq)
        return lnx_error(LNX_E_NOMEM, "out of memory");
    /* float32 as transformers computes it: 1 / base^(2i/d), then / factor */
    for (int32_t i = 0; i < head_dim / 2; i++) {
        float expo = (float)(2 * i) / (float)head_dim;
        float f = 1.0f / powf((float)theta, expo);
        r->inv_freq[i] = f / (float)factor;
    }
    return LNX_OK;
}

void lnx_rope_free(lnx_rope *r)
{
    free(r->inv_freq);
    r->inv_freq = NULL;
}

void lnx_rope_apply(const lnx_rope *r, float *x, int32_t heads, int64_t pos)
{
    lnx_rope_apply2(r, x, heads, NULL, 0, pos);
}

void lnx_rope_apply2(const lnx_rope *r, float *x, int32_t heads, float *y, int32_t heads_y, int64_t pos)
{
    int32_t half = r->head_dim / 2;
    float cs[512], sn[512];
    for (int32_t i = 0; i < half && i < 512; i++) {
        float ang = (float)pos * r->inv_freq[i];
        cs[i] = (float)cos((double)ang);
        sn[i] = (float)sin((double)ang);
    }
    for (int32_t t = 0; t < 2; t++) {
        float *base = t ? y : x;
        int32_t n = t ? heads_y : heads;
        for (int32_t h = 0; base && h < n; h++) {
            float *v = base + (int64_t)h * r->head_dim;
            for (int32_t i = 0; i < half; i++) {
                float x1 = v[i], x2 = v[i + half];
                v[i] = x1 * cs[i] - x2 * sn[i];
                v[i + half] = x2 * cs[i] + x1 * sn[i];
            }
        }
    }
}
