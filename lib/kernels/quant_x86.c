/* The SIMD variants of the quantized tile (quant.h): one body per format, instantiated for each
 * instruction set by its 32-byte dot-product step:
 *   AVX2:         vpmaddubsw (u8 x s8 -> pairs of s16) + vpmaddwd with ones (-> s32)
 *   AVX-512 VNNI: vpdpbusd on 256-bit vectors (u8 x s8, four products summed into s32)
 *   AVX-VNNI:     the same instruction in its VEX form
 * Q8 weights are signed: the step multiplies |w| by sign(w) a. Q4 weights are 0..15, unsigned
 * already. Each block's s32 sums are converted to float32 and scaled by (weight scale x activation
 * scale) into float32 accumulators, summed at the end. Decode (one activation row) reads one
 * weight row at a time, with 512-bit steps on AVX-512 VNNI; prefill and vision run 4 x 4 tiles.
 * No software prefetch in the row kernels: on one sequential stream per core the hardware
 * prefetcher alone measured faster (AVX-512 EPYC). */
#include <immintrin.h>
#include <string.h>

#include "quant.h"

#define T_AVX2 __attribute__((target("avx2,fma,f16c,bmi2")))
#define T_VNNI512 __attribute__((target("avx2,fma,f16c,bmi2,avx512f,avx512bw,avx512vl,avx512vnni")))
#define T_AVXVNNI __attribute__((target("avx2,fma,f16c,bmi2,avxvnni")))

#define INLINE static inline __attribute__((always_inline))

T_AVX2 INLINE float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

T_AVX2 INLINE float half_at(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

/* The eight 6-bit codes packed in p[0..6) as eight bytes (pdep spreads them). Reads p[0..8),
 * inside the super-block's 16-byte head for both code arrays (at 4 and 10): one 8-byte load (a
 * 6-byte copy into a zeroed word stalls store forwarding: measured 3x slower Q4 decode). */
T_AVX2 INLINE uint64_t unpack6(const uint8_t *p)
{
    uint64_t bits;
    memcpy(&bits, p, 8);
    return _pdep_u64(bits & 0xffffffffffffull, 0x3f3f3f3f3f3f3f3full);
}

/* Eight codes (bytes of v) as float32. */
T_AVX2 INLINE __m256 codes_ps(uint64_t v)
{
    return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)v)));
}

/* The half scales at the start of four blocks as float32 [r0, r1, r2, r3]. */
T_AVX2 INLINE __m128 halves4(const uint8_t *p0, const uint8_t *p1, const uint8_t *p2, const uint8_t *p3)
{
    /* built in a register: small stores read back as one word would stall store forwarding */
    uint16_t h0, h1, h2, h3;
    memcpy(&h0, p0, 2);
    memcpy(&h1, p1, 2);
    memcpy(&h2, p2, 2);
    memcpy(&h3, p3, 2);
    uint64_t v = (uint64_t)h0 | (uint64_t)h1 << 16 | (uint64_t)h2 << 32 | (uint64_t)h3 << 48;
    return _mm_cvtph_ps(_mm_cvtsi64_si128((long long)v));
}

/* The 32 4-bit levels of a Q4 sub-block (16 bytes at p) in order: the bytes in both halves, the
 * upper half shifted down by 4, then masked (one load and two operations). */
T_AVX2 INLINE __m256i nibbles32(const uint8_t *p)
{
    __m256i x = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)p));
    return _mm256_and_si256(_mm256_srlv_epi64(x, _mm256_setr_epi64x(0, 0, 4, 4)), _mm256_set1_epi8(15));
}

#define DOT_AVX2(u, s) _mm256_madd_epi16(_mm256_maddubs_epi16((u), (s)), _mm256_set1_epi16(1))
#define DOT_VNNI512(u, s) _mm256_dpbusd_epi32(_mm256_setzero_si256(), (u), (s))
#define DOT_AVXVNNI(u, s) _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), (u), (s))

/* ---- decode: one weight row at a time ----
 * A GEMV reads each weight row once; reading the four rows of a tile side by side makes four
 * interleaved streams per core, which measured about half the single-stream rate from memory
 * (AVX-512 EPYC: 12.6 against 22-28 GB/s per core for Q8). So one activation row goes against
 * the tile's rows one after the other (they are adjacent: one sequential stream), and the row's
 * scales are made eight blocks at a time: a vector of (weight scale x activation scale) for
 * blocks b..b+7, each block's lane broadcast by a permute. */


/* The half scales at p, p + 34, ..., p + 7 * 34 (eight Q8 blocks) as float32. */
T_AVX2 INLINE __m256 q8_halves8(const uint8_t *p)
{
    uint16_t h[8];
    for (int j = 0; j < 8; j++)
        memcpy(&h[j], p + 34 * j, 2);
    __m128i v = _mm_cvtsi32_si128(h[0]);
    v = _mm_insert_epi16(v, h[1], 1);
    v = _mm_insert_epi16(v, h[2], 2);
    v = _mm_insert_epi16(v, h[3], 3);
    v = _mm_insert_epi16(v, h[4], 4);
    v = _mm_insert_epi16(v, h[5], 5);
    v = _mm_insert_epi16(v, h[6], 6);
    v = _mm_insert_epi16(v, h[7], 7);
    return _mm256_cvtph_ps(v);
}

T_AVX2 INLINE __m256 lane(__m256 v, int j)
{
    return _mm256_permutevar8x32_ps(v, _mm256_set1_epi32(j));
}

/* The decode rows ask for their weight stream pf bytes ahead into L2 (lnx_cpu_stream_prefetch;
 * pf = 0: not at all): one prefetch per 64 bytes of the n read from p. */
#define STREAM_PREFETCH(p, n)                                                                   \
    do {                                                                                       \
        if (pf)                                                                                \
            for (int l_ = 0; l_ < (n); l_ += 64)                                               \
                _mm_prefetch((const char *)(p) + pf + l_, _MM_HINT_T1);                        \
    } while (0)

/* Q8 row . activations over nb blocks, blocks b.. of the row at w (256-bit steps). */
#define Q8_ROW_BODY(DOT)                                                                        \
    do {                                                                                       \
        __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();                         \
        int64_t b = 0;                                                                         \
        for (; b + 8 <= nb; b += 8) {                                                          \
            const uint8_t *p = w + (size_t)b * 34;                                             \
            STREAM_PREFETCH(p, 8 * 34);                                                        \
            const __m256 sc = _mm256_mul_ps(q8_halves8(p), _mm256_loadu_ps(d + b));            \
            for (int j = 0; j < 8; j += 2) {                                                   \
                __m256i x0 = _mm256_loadu_si256((const __m256i *)(p + 34 * j + 2));            \
                __m256i x1 = _mm256_loadu_si256((const __m256i *)(p + 34 * j + 36));           \
                __m256i a0 = _mm256_loadu_si256((const __m256i *)(q + (b + j) * 32));          \
                __m256i a1 = _mm256_loadu_si256((const __m256i *)(q + (b + j) * 32 + 32));     \
                __m256i s0 = DOT(_mm256_abs_epi8(x0), _mm256_sign_epi8(a0, x0));               \
                __m256i s1 = DOT(_mm256_abs_epi8(x1), _mm256_sign_epi8(a1, x1));               \
                acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s0), lane(sc, j), acc0);             \
                acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s1), lane(sc, j + 1), acc1);         \
            }                                                                                  \
        }                                                                                      \
        for (; b < nb; b++) {                                                                  \
            const uint8_t *p = w + (size_t)b * 34;                                             \
            __m256i x = _mm256_loadu_si256((const __m256i *)(p + 2));                          \
            __m256i a = _mm256_loadu_si256((const __m256i *)(q + b * 32));                     \
            __m256i s = DOT(_mm256_abs_epi8(x), _mm256_sign_epi8(a, x));                       \
            acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(half_at(p) * d[b]), acc0); \
        }                                                                                      \
        return hsum8(_mm256_add_ps(acc0, acc1));                                               \
    } while (0)

/* Q4 row . activations: per super-block the sub-blocks' (d sc[j] x activation scale) as one
 * vector, the minimums' term sum_j dmin mn[j] s[j] in a second accumulator. Q4_ROW_WIDE (defined
 * by each variant) takes sub-blocks several at a time first; WIDE_SUM is the total of any
 * accumulator of its own. */
#define Q4_ROW_BODY(DOT, WIDE_SUM)                                                              \
    do {                                                                                       \
        __m256 acc = _mm256_setzero_ps(), macc = _mm256_setzero_ps();                          \
        size_t off = 0;                                                                        \
        for (int64_t b = 0; b < nb; b += 8) {                                                  \
            const int nsub = nb - b < 8 ? (int)(nb - b) : 8;                                   \
            const uint8_t *p = w + off;                                                        \
            STREAM_PREFETCH(p, LNX_Q4_HEAD + 16 * 8);                                          \
            const __m256 sc = _mm256_mul_ps(_mm256_mul_ps(codes_ps(unpack6(p + 4)), _mm256_set1_ps(half_at(p))), \
                                            _mm256_loadu_ps(d + b));                          \
            const __m256 mins = _mm256_mul_ps(codes_ps(unpack6(p + 10)), _mm256_set1_ps(half_at(p + 2))); \
            macc = _mm256_fmadd_ps(mins, _mm256_loadu_ps(s + b), macc);                        \
            int j = 0;                                                                         \
            Q4_ROW_WIDE;                                                                       \
            for (; j < nsub; j++) {                                                            \
                __m256i a = _mm256_loadu_si256((const __m256i *)(q + (b + j) * 32));           \
                __m256i x = DOT(nibbles32(p + 16 + 16 * j), a);                                \
                acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(x), lane(sc, j), acc);                \
            }                                                                                  \
            off += 16 + 16 * (size_t)nsub;                                                     \
        }                                                                                      \
        return (WIDE_SUM) + hsum8(acc) - hsum8(macc);                                          \
    } while (0)

/* Two sub-blocks per 256-bit step: their 32 bytes of nibbles as they are, the low nibbles
 * (values 0-15 of each) and high ones (16-31) against the activations' halves regrouped to match
 * (one 128-bit lane per sub-block). DOT2(lo, alo, hi, ahi): the lanes' int32 sums of both. */
#define Q4_PAIR_256(DOT2)                                                                       \
    for (__m256i idx = _mm256_add_epi32(_mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1), _mm256_set1_epi32(j)); \
         j + 1 < nsub; j += 2) {                                                               \
        __m256i x = _mm256_loadu_si256((const __m256i *)(p + 16 + 16 * j));                    \
        __m256i lo = _mm256_and_si256(x, _mm256_set1_epi8(15));                                \
        __m256i hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), _mm256_set1_epi8(15));          \
        __m256i A = _mm256_loadu_si256((const __m256i *)(q + (b + j) * 32));                   \
        __m256i B = _mm256_loadu_si256((const __m256i *)(q + (b + j) * 32 + 32));              \
        __m256i x2 = DOT2(lo, _mm256_permute2x128_si256(A, B, 0x20), hi, _mm256_permute2x128_si256(A, B, 0x31)); \
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(x2), _mm256_permutevar8x32_ps(sc, idx), acc); \
        idx = _mm256_add_epi32(idx, _mm256_set1_epi32(2));                                     \
    }
/* vpmaddubsw sums of the two halves stay within int16 (2 x 2 x 15 x 127) before vpmaddwd */
#define DOT2_AVX2(l, al, h, ah)                                                                 \
    _mm256_madd_epi16(_mm256_add_epi16(_mm256_maddubs_epi16((l), (al)), _mm256_maddubs_epi16((h), (ah))), \
                      _mm256_set1_epi16(1))
#define DOT2_AVXVNNI(l, al, h, ah)                                                              \
    _mm256_dpbusd_avx_epi32(_mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), (l), (al)), (h), (ah))
#define DOT2_VNNI512(l, al, h, ah)                                                              \
    _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(_mm256_setzero_si256(), (l), (al)), (h), (ah))

#define Q4_ROW_WIDE Q4_PAIR_256(DOT2_AVX2)
T_AVX2 static float avx2_q8_row(const uint8_t *w, const int8_t *q, const float *d, int64_t nb, int pf)
{
    Q8_ROW_BODY(DOT_AVX2);
}
T_AVX2 static float avx2_q4_row(const uint8_t *w, const int8_t *q, const float *d, const float *s, int64_t nb,
                               const int8_t *qn, int pf)
{
    (void)qn;
    Q4_ROW_BODY(DOT_AVX2, 0.0f);
}
T_AVXVNNI static float avxvnni_q8_row(const uint8_t *w, const int8_t *q, const float *d, int64_t nb, int pf)
{
    Q8_ROW_BODY(DOT_AVXVNNI);
}
#undef Q4_ROW_WIDE
#define Q4_ROW_WIDE Q4_PAIR_256(DOT2_AVXVNNI)
T_AVXVNNI static float avxvnni_q4_row(const uint8_t *w, const int8_t *q, const float *d, const float *s, int64_t nb,
                                     const int8_t *qn, int pf)
{
    (void)qn;
    Q4_ROW_BODY(DOT_AVXVNNI, 0.0f);
}
#undef Q4_ROW_WIDE

/* AVX-512 VNNI: two blocks per 512-bit step. Q8: the two blocks' 32 bytes joined in one vector,
 * the sign moved onto the activations by a mask (AVX-512 has no vpsignb); Q4: the two sub-blocks'
 * 32 bytes placed as [j low, j high, j + 1 low, j + 1 high] nibbles. Each half's scale lane comes
 * from one permute. */
T_VNNI512 INLINE __m512 lane2(__m256 v, int j)
{
    const __m512i idx = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi32(j)), _mm256_set1_epi32(j + 1), 1);
    return _mm512_permutexvar_ps(idx, _mm512_castps256_ps512(v));
}

T_VNNI512 static float avx512vnni_q8_row(const uint8_t *w, const int8_t *q, const float *d, int64_t nb, int pf)
{
    const __m512i zero = _mm512_setzero_si512();
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    int64_t b = 0;
    for (; b + 8 <= nb; b += 8) {
        const uint8_t *p = w + (size_t)b * 34;
        STREAM_PREFETCH(p, 8 * 34);
        const __m256 sc = _mm256_mul_ps(q8_halves8(p), _mm256_loadu_ps(d + b));
        for (int j = 0; j < 8; j += 4) {
            __m512i x0 = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(p + 34 * j + 2))),
                                            _mm256_loadu_si256((const __m256i *)(p + 34 * j + 36)), 1);
            __m512i x1 = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(p + 34 * j + 70))),
                                            _mm256_loadu_si256((const __m256i *)(p + 34 * j + 104)), 1);
            __m512i a0 = _mm512_loadu_si512((const void *)(q + (b + j) * 32));
            __m512i a1 = _mm512_loadu_si512((const void *)(q + (b + j) * 32 + 64));
            a0 = _mm512_mask_sub_epi8(a0, _mm512_movepi8_mask(x0), zero, a0);
            a1 = _mm512_mask_sub_epi8(a1, _mm512_movepi8_mask(x1), zero, a1);
            __m512i s0 = _mm512_dpbusd_epi32(zero, _mm512_abs_epi8(x0), a0);
            __m512i s1 = _mm512_dpbusd_epi32(zero, _mm512_abs_epi8(x1), a1);
            acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s0), lane2(sc, j), acc0);
            acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s1), lane2(sc, j + 2), acc1);
        }
    }
    float tail = 0.0f;
    if (b < nb)
        tail = avx2_q8_row(w + (size_t)b * 34, q + b * 32, d + b, nb - b, 0);
    return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1)) + tail;
}

/* Four sub-blocks per 512-bit step (64 bytes of nibbles) against the activations' halves
 * regrouped (low halves of the four blocks, then high halves): AREG(alo, ahi) gives them, by two
 * lane shuffles of the activations as they are, or as two loads when the GEMV arranged them once
 * for all rows (lnx_q4_arrange_acts); then a 256-bit pair and single sub-blocks for a short
 * super-block. */
#define Q4_WIDE_512(AREG)                                                                       \
    for (__m512i idx4 = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3); j + 3 < nsub; j += 4) { \
        __m512i x = _mm512_loadu_si512((const void *)(p + 16 + 16 * j));                       \
        __m512i lo = _mm512_and_si512(x, _mm512_set1_epi8(15));                                \
        __m512i hi = _mm512_and_si512(_mm512_srli_epi16(x, 4), _mm512_set1_epi8(15));          \
        __m512i alo, ahi;                                                                      \
        AREG(alo, ahi);                                                                        \
        __m512i x4 = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, alo), hi, ahi); \
        acc4 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(x4), _mm512_permutexvar_ps(idx4, _mm512_castps256_ps512(sc)), acc4); \
        idx4 = _mm512_add_epi32(idx4, _mm512_set1_epi32(4));                                   \
    }                                                                                          \
    Q4_PAIR_256(DOT2_VNNI512)
#define AREG_SHUFFLE(alo, ahi)                                                                  \
    do {                                                                                       \
        __m512i A = _mm512_loadu_si512((const void *)(q + (b + j) * 32));                      \
        __m512i B = _mm512_loadu_si512((const void *)(q + (b + j) * 32 + 64));                 \
        alo = _mm512_shuffle_i64x2(A, B, _MM_SHUFFLE(2, 0, 2, 0));                             \
        ahi = _mm512_shuffle_i64x2(A, B, _MM_SHUFFLE(3, 1, 3, 1));                             \
    } while (0)
#define AREG_ARRANGED(alo, ahi)                                                                 \
    do {                                                                                       \
        alo = _mm512_loadu_si512((const void *)(qn + (b + j) * 32));                           \
        ahi = _mm512_loadu_si512((const void *)(qn + (b + j) * 32 + 64));                      \
    } while (0)
T_VNNI512 static float avx512vnni_q4_row_shuffled(const uint8_t *w, const int8_t *q, const float *d, const float *s,
                                                  int64_t nb, int pf)
{
    __m512 acc4 = _mm512_setzero_ps(); /* the 512-bit steps */
#define Q4_ROW_WIDE Q4_WIDE_512(AREG_SHUFFLE)
    Q4_ROW_BODY(DOT_VNNI512, _mm512_reduce_add_ps(acc4));
#undef Q4_ROW_WIDE
}
T_VNNI512 static float avx512vnni_q4_row_arranged(const uint8_t *w, const int8_t *q, const float *d, const float *s,
                                                  int64_t nb, const int8_t *qn, int pf)
{
    __m512 acc4 = _mm512_setzero_ps();
#define Q4_ROW_WIDE Q4_WIDE_512(AREG_ARRANGED)
    Q4_ROW_BODY(DOT_VNNI512, _mm512_reduce_add_ps(acc4));
#undef Q4_ROW_WIDE
}
static float avx512vnni_q4_row(const uint8_t *w, const int8_t *q, const float *d, const float *s, int64_t nb,
                               const int8_t *qn, int pf)
{
    return qn ? avx512vnni_q4_row_arranged(w, q, d, s, nb, qn, pf) : avx512vnni_q4_row_shuffled(w, q, d, s, nb, pf);
}
#undef AREG_SHUFFLE
#undef AREG_ARRANGED

/* Four activation rows (prefill, vision): per block, each activation row's four dot products are
 * reduced into the lanes [r0, r1, r2, r3] of a vector (horizontal adds), two rows per 8-lane
 * vector, and scaled and accumulated together: 2 conversions and 2 FMAs per block instead of 16. */
T_AVX2 INLINE __m256i rows4(__m256i s0, __m256i s1, __m256i s2, __m256i s3)
{
    return _mm256_hadd_epi32(_mm256_hadd_epi32(s0, s1), _mm256_hadd_epi32(s2, s3));
}

/* [x lanes 0-3 + x lanes 4-7 | y lanes 0-3 + y lanes 4-7] for rows4 results x, y */
T_AVX2 INLINE __m256i pair_halves(__m256i x, __m256i y)
{
    return _mm256_add_epi32(_mm256_permute2x128_si256(x, y, 0x20), _mm256_permute2x128_si256(x, y, 0x31));
}

T_AVX2 INLINE __m256 two_scales(float lo, float hi)
{
    return _mm256_set_m128(_mm_set1_ps(hi), _mm_set1_ps(lo));
}

T_AVX2 INLINE void store_tile(lnx_qtile *t, __m256 acc01, __m256 acc23)
{
    float o[16];
    _mm256_storeu_ps(o, acc01);
    _mm256_storeu_ps(o + 8, acc23);
    for (int m = 0; m < 4; m++)
        for (int r = 0; r < 4; r++)
            t->out[m][r] = o[4 * m + r];
}

#define Q8_GEMM_BODY(DOT)                                                                       \
    do {                                                                                       \
        const int64_t nb = t->K / 32;                                                          \
        const uint8_t *w0 = t->w[0], *w1 = t->w[1], *w2 = t->w[2], *w3 = t->w[3];              \
        __m256 acc01 = _mm256_setzero_ps(), acc23 = _mm256_setzero_ps();                       \
        for (int64_t b = 0; b < nb; b++) {                                                     \
            const size_t o = (size_t)b * 34;                                                   \
            __m256i x0 = _mm256_loadu_si256((const __m256i *)(w0 + o + 2));                    \
            __m256i x1 = _mm256_loadu_si256((const __m256i *)(w1 + o + 2));                    \
            __m256i x2 = _mm256_loadu_si256((const __m256i *)(w2 + o + 2));                    \
            __m256i x3 = _mm256_loadu_si256((const __m256i *)(w3 + o + 2));                    \
            __m256i a0 = _mm256_abs_epi8(x0), a1 = _mm256_abs_epi8(x1);                        \
            __m256i a2 = _mm256_abs_epi8(x2), a3 = _mm256_abs_epi8(x3);                        \
            __m128 dw = halves4(w0 + o, w1 + o, w2 + o, w3 + o);                               \
            __m256 dw2 = _mm256_set_m128(dw, dw);                                              \
            __m256i y[4];                                                                      \
            for (int m = 0; m < 4; m++) {                                                      \
                __m256i a = _mm256_loadu_si256((const __m256i *)(t->q[m] + b * 32));           \
                y[m] = rows4(DOT(a0, _mm256_sign_epi8(a, x0)), DOT(a1, _mm256_sign_epi8(a, x1)), \
                             DOT(a2, _mm256_sign_epi8(a, x2)), DOT(a3, _mm256_sign_epi8(a, x3))); \
            }                                                                                  \
            acc01 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(pair_halves(y[0], y[1])),               \
                                    _mm256_mul_ps(dw2, two_scales(t->d[0][b], t->d[1][b])), acc01); \
            acc23 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(pair_halves(y[2], y[3])),               \
                                    _mm256_mul_ps(dw2, two_scales(t->d[2][b], t->d[3][b])), acc23); \
        }                                                                                      \
        store_tile(t, acc01, acc23);                                                           \
    } while (0)

#define Q4_GEMM_BODY(DOT)                                                                       \
    do {                                                                                       \
        const int64_t nb = t->K / 32;                                                          \
        __m256 acc01 = _mm256_setzero_ps(), acc23 = _mm256_setzero_ps();                       \
        __m256 macc[4][4];                                                                     \
        for (int m = 0; m < 4; m++)                                                            \
            for (int r = 0; r < 4; r++)                                                        \
                macc[m][r] = _mm256_setzero_ps();                                              \
        size_t off = 0;                                                                        \
        for (int64_t b = 0; b < nb; b += 8) {                                                  \
            const int nsub = nb - b < 8 ? (int)(nb - b) : 8;                                   \
            __m256 sc[4];                                                                      \
            for (int r = 0; r < 4; r++) {                                                      \
                const uint8_t *p = t->w[r] + off;                                              \
                sc[r] = _mm256_mul_ps(codes_ps(unpack6(p + 4)), _mm256_set1_ps(half_at(p)));   \
                __m256 mins = _mm256_mul_ps(codes_ps(unpack6(p + 10)), _mm256_set1_ps(half_at(p + 2))); \
                for (int m = 0; m < 4; m++)                                                    \
                    macc[m][r] = _mm256_fmadd_ps(mins, _mm256_loadu_ps(t->s[m] + b), macc[m][r]); \
            }                                                                                  \
            __m256 t01l = _mm256_unpacklo_ps(sc[0], sc[1]), t01h = _mm256_unpackhi_ps(sc[0], sc[1]); \
            __m256 t23l = _mm256_unpacklo_ps(sc[2], sc[3]), t23h = _mm256_unpackhi_ps(sc[2], sc[3]); \
            __m256 c04 = _mm256_castpd_ps(_mm256_unpacklo_pd(_mm256_castps_pd(t01l), _mm256_castps_pd(t23l))); \
            __m256 c15 = _mm256_castpd_ps(_mm256_unpackhi_pd(_mm256_castps_pd(t01l), _mm256_castps_pd(t23l))); \
            __m256 c26 = _mm256_castpd_ps(_mm256_unpacklo_pd(_mm256_castps_pd(t01h), _mm256_castps_pd(t23h))); \
            __m256 c37 = _mm256_castpd_ps(_mm256_unpackhi_pd(_mm256_castps_pd(t01h), _mm256_castps_pd(t23h))); \
            /* col[j]: sub-block j's scale of the four rows, in both halves */                  \
            __m256 col[8] = { _mm256_permute2f128_ps(c04, c04, 0x00), _mm256_permute2f128_ps(c15, c15, 0x00), \
                              _mm256_permute2f128_ps(c26, c26, 0x00), _mm256_permute2f128_ps(c37, c37, 0x00), \
                              _mm256_permute2f128_ps(c04, c04, 0x11), _mm256_permute2f128_ps(c15, c15, 0x11), \
                              _mm256_permute2f128_ps(c26, c26, 0x11), _mm256_permute2f128_ps(c37, c37, 0x11) }; \
            for (int j = 0; j < nsub; j++) {                                                   \
                __m256i wv[4];                                                                 \
                for (int r = 0; r < 4; r++)                                                    \
                    wv[r] = nibbles32(t->w[r] + off + 16 + 16 * j);                            \
                __m256i y[4];                                                                  \
                for (int m = 0; m < 4; m++) {                                                  \
                    __m256i a = _mm256_loadu_si256((const __m256i *)(t->q[m] + (b + j) * 32)); \
                    y[m] = rows4(DOT(wv[0], a), DOT(wv[1], a), DOT(wv[2], a), DOT(wv[3], a));  \
                }                                                                              \
                acc01 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(pair_halves(y[0], y[1])),           \
                                        _mm256_mul_ps(col[j], two_scales(t->d[0][b + j], t->d[1][b + j])), acc01); \
                acc23 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(pair_halves(y[2], y[3])),           \
                                        _mm256_mul_ps(col[j], two_scales(t->d[2][b + j], t->d[3][b + j])), acc23); \
            }                                                                                  \
            off += 16 + 16 * (size_t)nsub;                                                     \
        }                                                                                      \
        store_tile(t, acc01, acc23);                                                           \
        for (int m = 0; m < 4; m++)                                                            \
            for (int r = 0; r < 4; r++)                                                        \
                t->out[m][r] -= hsum8(macc[m][r]);                                             \
    } while (0)


#define VARIANT(NAME, TARGET, DOT)                                                             \
    static void NAME##_q8_1(lnx_qtile *t)                                                      \
    {                                                                                          \
        for (int r = 0; r < 4; r++)                                                            \
            t->out[0][r] = NAME##_q8_row(t->w[r], t->q[0], t->d[0], t->K / 32, t->pf);          \
    }                                                                                          \
    TARGET static void NAME##_q8_4(lnx_qtile *t) { Q8_GEMM_BODY(DOT); }                        \
    static void NAME##_q4_1(lnx_qtile *t)                                                      \
    {                                                                                          \
        for (int r = 0; r < 4; r++)                                                            \
            t->out[0][r] = NAME##_q4_row(t->w[r], t->q[0], t->d[0], t->s[0], t->K / 32, t->qn[0], t->pf); \
    }                                                                                          \
    TARGET static void NAME##_q4_4(lnx_qtile *t) { Q4_GEMM_BODY(DOT); }                        \
    void lnx_qtile_##NAME(lnx_dtype dt, lnx_qtile *t, int nm)                                  \
    {                                                                                          \
        if (dt == LNX_DT_Q8)                                                                   \
            (nm == 1 ? NAME##_q8_1 : NAME##_q8_4)(t);                                          \
        else                                                                                   \
            (nm == 1 ? NAME##_q4_1 : NAME##_q4_4)(t);                                          \
    }

void lnx_qtile_avx2(lnx_dtype dt, lnx_qtile *t, int nm);
void lnx_qtile_avx512vnni(lnx_dtype dt, lnx_qtile *t, int nm);
void lnx_qtile_avxvnni(lnx_dtype dt, lnx_qtile *t, int nm);
void lnx_quantize_acts_avx2(const float *x, int64_t K, int8_t *q, float *d, float *s);

VARIANT(avx2, T_AVX2, DOT_AVX2)
VARIANT(avx512vnni, T_VNNI512, DOT_VNNI512)
VARIANT(avxvnni, T_AVXVNNI, DOT_AVXVNNI)

/* lnx_quantize_acts on AVX2: the same values as the scalar version (the scale, 127 / amax, and
 * round-to-nearest-even conversions are the same operations). */
T_AVX2 void lnx_quantize_acts_avx2(const float *x, int64_t K, int8_t *q, float *d, float *s)
{
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int64_t b = 0; b < K / 32; b++) {
        const float *xb = x + b * 32;
        __m256 v[4], mx = _mm256_setzero_ps();
        for (int i = 0; i < 4; i++) {
            v[i] = _mm256_loadu_ps(xb + 8 * i);
            mx = _mm256_max_ps(mx, _mm256_and_ps(v[i], absmask));
        }
        __m128 h = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
        h = _mm_max_ps(h, _mm_movehl_ps(h, h));
        h = _mm_max_ss(h, _mm_movehdup_ps(h));
        float amax = _mm_cvtss_f32(h);
        float id = amax > 0.0f ? 127.0f / amax : 0.0f;
        __m256 vid = _mm256_set1_ps(id);
        __m256i qi[4], sum = _mm256_setzero_si256();
        for (int i = 0; i < 4; i++) {
            qi[i] = _mm256_cvtps_epi32(_mm256_mul_ps(v[i], vid));
            sum = _mm256_add_epi32(sum, qi[i]);
        }
        __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(qi[0], qi[1]), _mm256_packs_epi32(qi[2], qi[3]));
        _mm256_storeu_si256((__m256i *)(q + b * 32), _mm256_permutevar8x32_epi32(p, perm));
        __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
        d[b] = amax / 127.0f;
        s[b] = d[b] * (float)_mm_cvtsi128_si32(s4);
    }
}

void lnx_widen_i8_avx2(const int8_t *q, int64_t n, int16_t *out);
T_AVX2 void lnx_widen_i8_avx2(const int8_t *q, int64_t n, int16_t *out)
{
    for (int64_t i = 0; i < n; i += 16)
        _mm256_storeu_si256((__m256i *)(out + i), _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(q + i))));
}

/* ---- AVX-512 VNNI GEMM on repacked panels (quant.h) ---- */

T_VNNI512 INLINE __m512i bcast4(const int8_t *p)
{
    int32_t x;
    memcpy(&x, p, sizeof x);
    return _mm512_set1_epi32(x);
}

/* The 8 activation rows' int32 dot products with the panel's 16 rows over block b. */
#define PANEL_DOTS(dot, v, r, b)                                                                \
    do {                                                                                       \
        _Pragma("GCC unroll 8") for (int m = 0; m < 8; m++) dot[m] = _mm512_setzero_si512();   \
        _Pragma("GCC unroll 8") for (int k = 0; k < 8; k++) {                                  \
            __m512i w = _mm512_load_si512((const void *)((v) + ((size_t)(b) * 8 + (size_t)k) * 64)); \
            _Pragma("GCC unroll 8") for (int m = 0; m < 8; m++)                                \
                dot[m] = _mm512_dpbusd_epi32(dot[m], w, bcast4((r)->q[m] + (b) * 32 + 4 * k));  \
        }                                                                                      \
    } while (0)

T_VNNI512 static void panel_q8(lnx_qpanel_run *r, const uint8_t *v, const float *sc, int64_t nb)
{
    __m512 acc[8];
    _Pragma("GCC unroll 8") for (int m = 0; m < 8; m++) acc[m] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        __m512i dot[8];
        PANEL_DOTS(dot, v, r, b);
        __m512 scv = _mm512_load_ps(sc + b * 16);
        _Pragma("GCC unroll 8") for (int m = 0; m < 8; m++) {
            /* values carry +128: less 128 x the activations' sum, exactly, in integers */
            __m512i t = _mm512_sub_epi32(dot[m], _mm512_set1_epi32(128 * r->si[m][b]));
            acc[m] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(t), _mm512_mul_ps(scv, _mm512_set1_ps(r->d[m][b])), acc[m]);
        }
    }
    _Pragma("GCC unroll 8") for (int m = 0; m < 8; m++) _mm512_storeu_ps(r->out[m], acc[m]);
}

T_VNNI512 static void panel_q4(lnx_qpanel_run *r, const uint8_t *v, const float *sc, const float *mn, int64_t nb)
{
    __m512 acc[8], macc[8];
    _Pragma("GCC unroll 8") for (int m = 0; m < 8; m++) acc[m] = macc[m] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        __m512i dot[8];
        PANEL_DOTS(dot, v, r, b);
        __m512 scv = _mm512_load_ps(sc + b * 16), mnv = _mm512_load_ps(mn + b * 16);
        _Pragma("GCC unroll 8") for (int m = 0; m < 8; m++) {
            acc[m] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot[m]), _mm512_mul_ps(scv, _mm512_set1_ps(r->d[m][b])), acc[m]);
            macc[m] = _mm512_fmadd_ps(mnv, _mm512_set1_ps(r->s[m][b]), macc[m]);
        }
    }
    _Pragma("GCC unroll 8") for (int m = 0; m < 8; m++) _mm512_storeu_ps(r->out[m], _mm512_sub_ps(acc[m], macc[m]));
}
#undef PANEL_DOTS

void lnx_qpanel_avx512vnni(lnx_dtype dt, lnx_qpanel_run *r);
void lnx_qpanel_avx512vnni(lnx_dtype dt, lnx_qpanel_run *r)
{
    int64_t nb = r->K / 32;
    const uint8_t *v = r->panel;
    const float *sc = (const float *)(v + (size_t)nb * 512), *mn = sc + nb * 16;
    if (dt == LNX_DT_Q8)
        panel_q8(r, v, sc, nb);
    else
        panel_q4(r, v, sc, mn, nb);
}

/* ---- AVX2 and AVX-VNNI GEMM on the same panels ----
 * A panel's 16 rows as two 256-bit halves (rows 0-7 and 8-15, lane = row), four activation rows
 * at a time (the eight in two passes): eight int32 accumulators per block, then scaled into float
 * accumulators as on AVX-512, with no horizontal sums. AVX2's u8 x s8 product (vpmaddubsw) sums
 * pairs into int16, which Q8's +128 values would saturate (255 x 127 x 2 > 32767): it takes each
 * value back to signed (xor 128, once per vector for the four activation rows) and multiplies |w|
 * by sign(w) a, as the row kernels do. AVX-VNNI sums four products in int32 and subtracts 128 x
 * the activations' block sum, as AVX-512 does. Q4's values, 0..15, need neither. */

#define P256_LOAD(v, b, k, h) _mm256_load_si256((const __m256i *)((v) + ((size_t)(b) * 8 + (size_t)(k)) * 64 + 32 * (h)))
#define P256_BCAST(r, m, b, k) _mm256_set1_epi32(load_i32((r)->q[m] + (b) * 32 + 4 * (k)))

INLINE int32_t load_i32(const int8_t *p)
{
    int32_t x;
    memcpy(&x, p, sizeof x);
    return x;
}

/* dot[h][i] for activation rows m0 + i over block b: Q8 on AVX2, int16 panel values against
 * the activations widened to int16 (quant.h), vpmaddwd summing each lane's pair: one multiply
 * per 16 products, the adds on the other pipes. */
#define P256_DOTS_Q8_AVX2(dot, v, r, m0, b)                                                     \
    do {                                                                                       \
        _Pragma("GCC unroll 8") for (int i = 0; i < 8; i++) dot[i] = _mm256_setzero_si256();   \
        const int16_t *vb = (const int16_t *)(v) + (size_t)(b) * 512;                          \
        _Pragma("GCC unroll 2") for (int p = 0; p < 16; p++) {                                 \
            __m256i w0 = _mm256_load_si256((const __m256i *)(vb + p * 32));                    \
            __m256i w1 = _mm256_load_si256((const __m256i *)(vb + p * 32 + 16));               \
            _Pragma("GCC unroll 4") for (int i = 0; i < 4; i++) {                              \
                int32_t pair;                                                                  \
                memcpy(&pair, (r)->q16[(m0) + i] + (b) * 32 + 2 * p, sizeof pair);             \
                const __m256i x = _mm256_set1_epi32(pair);                                     \
                dot[i] = _mm256_add_epi32(dot[i], _mm256_madd_epi16(w0, x));                   \
                dot[4 + i] = _mm256_add_epi32(dot[4 + i], _mm256_madd_epi16(w1, x));           \
            }                                                                                  \
        }                                                                                      \
    } while (0)

/* Unsigned panel bytes against signed activations: ACC(acc, u, x) adds u . x */
#define P256_DOTS_U8(dot, v, r, m0, b, ACC)                                                     \
    do {                                                                                       \
        _Pragma("GCC unroll 8") for (int i = 0; i < 8; i++) dot[i] = _mm256_setzero_si256();   \
        _Pragma("GCC unroll 1") for (int k = 0; k < 8; k++) {                                  \
            __m256i u0 = P256_LOAD(v, b, k, 0), u1 = P256_LOAD(v, b, k, 1);                    \
            _Pragma("GCC unroll 4") for (int i = 0; i < 4; i++) {                              \
                __m256i x = P256_BCAST(r, (m0) + i, b, k);                                     \
                dot[i] = ACC(dot[i], u0, x);                                                   \
                dot[4 + i] = ACC(dot[4 + i], u1, x);                                           \
            }                                                                                  \
        }                                                                                      \
    } while (0)

/* Q4 on AVX2: a level (0..15) times an activation (|a| <= 127), summed in pairs, is at most
 * 3810 in magnitude, so a block's eight steps add up in int16 (30480 < 32767) and are widened to
 * int32 once per block: one vpmaddubsw and one 16-bit add per step, one vpmaddwd per block. */
#define ACC_AVX2_I16(acc, u, x) _mm256_add_epi16((acc), _mm256_maddubs_epi16((u), (x)))
#define P256_DOTS_Q4_AVX2(dot, v, r, m0, b)                                                     \
    do {                                                                                       \
        P256_DOTS_U8(dot, v, r, m0, b, ACC_AVX2_I16);                                          \
        _Pragma("GCC unroll 8") for (int i = 0; i < 8; i++) dot[i] = _mm256_madd_epi16(dot[i], _mm256_set1_epi16(1)); \
    } while (0)

#define ACC_AVXVNNI(acc, u, x) _mm256_dpbusd_avx_epi32((acc), (u), (x))
#define ACC_VNNI256(acc, u, x) _mm256_dpbusd_epi32((acc), (u), (x))

/* The float side of a block, shared: acc[h][i] += dot[h][i] (less the +128 correction when FIX)
 * x (row scale x activation scale); Q4 (MN) also macc += the minimums x the activations' sums. */
#define P256_SCALE(acc, macc, dot, r, m0, b, sc, mn, FIX, MN)                                   \
    do {                                                                                       \
        const __m256 s0 = _mm256_load_ps((sc) + (b) * 16), s1 = _mm256_load_ps((sc) + (b) * 16 + 8); \
        _Pragma("GCC unroll 4") for (int i = 0; i < 4; i++) {                                  \
            const __m256 da = _mm256_set1_ps((r)->d[(m0) + i][b]);                              \
            __m256i t0 = dot[i], t1 = dot[4 + i];                                              \
            if (FIX) {                                                                         \
                const __m256i c = _mm256_set1_epi32(128 * (r)->si[(m0) + i][b]);               \
                t0 = _mm256_sub_epi32(t0, c);                                                  \
                t1 = _mm256_sub_epi32(t1, c);                                                  \
            }                                                                                  \
            acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(t0), _mm256_mul_ps(s0, da), acc[i]);   \
            acc[4 + i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(t1), _mm256_mul_ps(s1, da), acc[4 + i]); \
            if (MN) {                                                                          \
                const __m256 sa = _mm256_set1_ps((r)->s[(m0) + i][b]);                          \
                macc[i] = _mm256_fmadd_ps(_mm256_load_ps((mn) + (b) * 16), sa, macc[i]);        \
                macc[4 + i] = _mm256_fmadd_ps(_mm256_load_ps((mn) + (b) * 16 + 8), sa, macc[4 + i]); \
            }                                                                                  \
        }                                                                                      \
    } while (0)

/* One variant's panel kernel: NAME(dt, r) for both formats. */
#define PANEL256_VARIANT(NAME, TARGET, Q8_DOTS, Q8_VBYTES, Q4_DOTS, Q8_FIX)                                 \
    TARGET static void NAME##_q8(lnx_qpanel_run *r, int m0, const uint8_t *v, const float *sc, int64_t nb) \
    {                                                                                          \
        __m256 acc[8];                                                                         \
        _Pragma("GCC unroll 8") for (int i = 0; i < 8; i++) acc[i] = _mm256_setzero_ps();      \
        for (int64_t b = 0; b < nb; b++) {                                                     \
            __m256i dot[8];                                                                    \
            Q8_DOTS;                                                                           \
            P256_SCALE(acc, acc, dot, r, m0, b, sc, sc, Q8_FIX, 0);                            \
        }                                                                                      \
        _Pragma("GCC unroll 4") for (int i = 0; i < 4; i++) {                                  \
            _mm256_storeu_ps(r->out[m0 + i], acc[i]);                                          \
            _mm256_storeu_ps(r->out[m0 + i] + 8, acc[4 + i]);                                  \
        }                                                                                      \
    }                                                                                          \
    TARGET static void NAME##_q4(lnx_qpanel_run *r, int m0, const uint8_t *v, const float *sc, const float *mn, \
                                 int64_t nb)                                                   \
    {                                                                                          \
        __m256 acc[8], macc[8];                                                                \
        _Pragma("GCC unroll 8") for (int i = 0; i < 8; i++) acc[i] = macc[i] = _mm256_setzero_ps(); \
        for (int64_t b = 0; b < nb; b++) {                                                     \
            __m256i dot[8];                                                                    \
            Q4_DOTS;                                                                           \
            P256_SCALE(acc, macc, dot, r, m0, b, sc, mn, 0, 1);                                \
        }                                                                                      \
        _Pragma("GCC unroll 4") for (int i = 0; i < 4; i++) {                                  \
            _mm256_storeu_ps(r->out[m0 + i], _mm256_sub_ps(acc[i], macc[i]));                  \
            _mm256_storeu_ps(r->out[m0 + i] + 8, _mm256_sub_ps(acc[4 + i], macc[4 + i]));      \
        }                                                                                      \
    }                                                                                          \
    void lnx_qpanel_##NAME(lnx_dtype dt, lnx_qpanel_run *r);                                   \
    void lnx_qpanel_##NAME(lnx_dtype dt, lnx_qpanel_run *r)                                    \
    {                                                                                          \
        int64_t nb = r->K / 32;                                                                \
        const uint8_t *v = r->panel;                                                           \
        const size_t vbytes = dt == LNX_DT_Q8 ? (Q8_VBYTES) : 512;                             \
        const float *sc = (const float *)(v + (size_t)nb * vbytes), *mn = sc + nb * 16;        \
        for (int m0 = 0; m0 < LNX_QPANEL_ACTS; m0 += 4) {                                      \
            if (dt == LNX_DT_Q8)                                                               \
                NAME##_q8(r, m0, v, sc, nb);                                                   \
            else                                                                               \
                NAME##_q4(r, m0, v, sc, mn, nb);                                               \
        }                                                                                      \
    }

PANEL256_VARIANT(avx2, T_AVX2, P256_DOTS_Q8_AVX2(dot, v, r, m0, b), 1024, P256_DOTS_Q4_AVX2(dot, v, r, m0, b), 0)
PANEL256_VARIANT(avxvnni, T_AVXVNNI, P256_DOTS_U8(dot, v, r, m0, b, ACC_AVXVNNI), 512,
                 P256_DOTS_U8(dot, v, r, m0, b, ACC_AVXVNNI), 1)
/* The AVX-VNNI body in its EVEX form (vpdpbusd on 256-bit vectors, AVX-512 VNNI): the same
 * source, so a CPU without AVX-VNNI still tests its logic against the oracle. */
PANEL256_VARIANT(vnni256, T_VNNI512, P256_DOTS_U8(dot, v, r, m0, b, ACC_VNNI256), 512,
                 P256_DOTS_U8(dot, v, r, m0, b, ACC_VNNI256), 1)
