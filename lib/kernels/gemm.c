#include "gemm.h"

#include <cblas.h>
#include <immintrin.h>
#include <stdlib.h>

#include "../base/alloc.h"
#include "../base/cpu.h"
#include "../base/half.h"
#include "ops.h"
#include "quant.h"

#ifdef LNX_HAVE_ONEDNN
#include <dnnl.h>
#include <omp.h>
#endif

/* Rows per widened block: about 16 MiB of float32, so that BLAS packs the activations only a few
 * times per weight (it repacks them for every call) while the block stays a bounded copy. */
#define WIDEN_BYTES (16u << 20)
/* Below this many activation rows the weight-streaming GEMV beats widening + sgemm. */
#define GEMV_MAX_M 4
/* How far ahead of the rows being read the GEMV asks for them. */
#define PREFETCH_BYTES 1024

static float dot_scalar(lnx_dtype dt, const void *row, const float *x, int64_t n)
{
    float acc = 0.0f;
    for (int64_t k = 0; k < n; k++) {
        float w;
        if (dt == LNX_DT_F32)
            w = ((const float *)row)[k];
        else if (dt == LNX_DT_BF16)
            w = lnx_bf16_to_f32(((const uint16_t *)row)[k]);
        else
            w = lnx_f16_to_f32(((const uint16_t *)row)[k]);
        acc += w * x[k];
    }
    return acc;
}

#define AVX2 __attribute__((target("avx2,fma,f16c")))
#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,fma,f16c")))

AVX2 static float hsum256(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* 8 stored values at p (element k) as float32 */
AVX2 static inline __m256 load8(lnx_dtype dt, const void *p, int64_t k)
{
    if (dt == LNX_DT_F32)
        return _mm256_loadu_ps((const float *)p + k);
    __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)p + k));
    if (dt == LNX_DT_BF16)
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    return _mm256_cvtph_ps(h);
}

AVX512 static inline __m512 load16(lnx_dtype dt, const void *p, int64_t k)
{
    if (dt == LNX_DT_F32)
        return _mm512_loadu_ps((const float *)p + k);
    __m256i h = _mm256_loadu_si256((const __m256i *)((const uint16_t *)p + k));
    if (dt == LNX_DT_BF16)
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    return _mm512_cvtph_ps(h);
}

/* Dot products of up to 4 stored rows (row_bytes apart) with x[n]: out[r]. Each weight element
 * is loaded once; x is reused across the rows. */
static void dot_rows_scalar(lnx_dtype dt, const char *rows, size_t row_bytes, int nr, const float *x, int64_t n,
                            float *out)
{
    for (int r = 0; r < nr; r++)
        out[r] = dot_scalar(dt, rows + (size_t)r * row_bytes, x, n);
}

AVX2 static void dot_rows_avx2(lnx_dtype dt, const char *rows, size_t row_bytes, int nr, const float *x, int64_t n,
                               float *out)
{
    __m256 acc[4][2];
    for (int r = 0; r < 4; r++)
        acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    int64_t k = 0;
    const size_t es = lnx_dtype_size(dt);
    if (nr == 4) {
        for (; k + 16 <= n; k += 16) {
            __m256 x0 = _mm256_loadu_ps(x + k), x1 = _mm256_loadu_ps(x + k + 8);
            for (int r = 0; r < 4; r++) {
                const char *w = rows + (size_t)r * row_bytes;
                if (!(k & 31))
                    _mm_prefetch(w + (size_t)k * es + PREFETCH_BYTES, _MM_HINT_T0);
                acc[r][0] = _mm256_fmadd_ps(load8(dt, w, k), x0, acc[r][0]);
                acc[r][1] = _mm256_fmadd_ps(load8(dt, w, k + 8), x1, acc[r][1]);
            }
        }
    } else {
        for (; k + 16 <= n; k += 16) {
            __m256 x0 = _mm256_loadu_ps(x + k), x1 = _mm256_loadu_ps(x + k + 8);
            for (int r = 0; r < nr; r++) {
                const char *w = rows + (size_t)r * row_bytes;
                acc[r][0] = _mm256_fmadd_ps(load8(dt, w, k), x0, acc[r][0]);
                acc[r][1] = _mm256_fmadd_ps(load8(dt, w, k + 8), x1, acc[r][1]);
            }
        }
    }
    for (int r = 0; r < nr; r++) {
        out[r] = hsum256(_mm256_add_ps(acc[r][0], acc[r][1]));
        if (k < n)
            out[r] += dot_scalar(dt, rows + (size_t)r * row_bytes + (size_t)k * es, x + k, n - k);
    }
}

AVX512 static void dot_rows_avx512(lnx_dtype dt, const char *rows, size_t row_bytes, int nr, const float *x,
                                   int64_t n, float *out)
{
    __m512 acc[4][2];
    for (int r = 0; r < 4; r++)
        acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    int64_t k = 0;
    const size_t es = lnx_dtype_size(dt);
    if (nr == 4) {
        for (; k + 32 <= n; k += 32) {
            __m512 x0 = _mm512_loadu_ps(x + k), x1 = _mm512_loadu_ps(x + k + 16);
            for (int r = 0; r < 4; r++) {
                const char *w = rows + (size_t)r * row_bytes;
                _mm_prefetch(w + (size_t)k * es + PREFETCH_BYTES, _MM_HINT_T0);
                acc[r][0] = _mm512_fmadd_ps(load16(dt, w, k), x0, acc[r][0]);
                acc[r][1] = _mm512_fmadd_ps(load16(dt, w, k + 16), x1, acc[r][1]);
            }
        }
    } else {
        for (; k + 32 <= n; k += 32) {
            __m512 x0 = _mm512_loadu_ps(x + k), x1 = _mm512_loadu_ps(x + k + 16);
            for (int r = 0; r < nr; r++) {
                const char *w = rows + (size_t)r * row_bytes;
                acc[r][0] = _mm512_fmadd_ps(load16(dt, w, k), x0, acc[r][0]);
                acc[r][1] = _mm512_fmadd_ps(load16(dt, w, k + 16), x1, acc[r][1]);
            }
        }
    }
    for (int r = 0; r < nr; r++) {
        out[r] = _mm512_reduce_add_ps(_mm512_add_ps(acc[r][0], acc[r][1]));
        if (k < n)
            out[r] += dot_scalar(dt, rows + (size_t)r * row_bytes + (size_t)k * es, x + k, n - k);
    }
}

/* Decode's GEMV of bf16 weights (the 7B model's, read once per token): each row against the
 * activation row permuted to the order in which interleaving each 128-bit lane's bf16 words with
 * zeros (unpacklo/unpackhi) yields them as float32: one load, two unpacks and two FMAs per 32
 * weights instead of two widening moves and two shifts more, and one row at a time (one read
 * stream per worker). Measured on an AVX-512 EPYC: 9.7 -> 13.5 GB/s per core from memory, and
 * 19.9 -> 25.8 GB/s without software prefetch (the hardware prefetcher follows the one stream).
 * The products are the same float32 products; only the order of their sum differs. */
#define PERM_BLOCK 32

/* xp[blk*32 + 0..15]: the values unpacklo takes from 32 consecutive x, xp[blk*32 + 16..31]: unpackhi's
 * (AVX-512: four 128-bit lanes of 8 words; AVX2 uses the same layout for each half of 16). */
static void permute_x(const float *x, int64_t n, float *xp)
{
    int64_t blocks = n / PERM_BLOCK;
    for (int64_t b = 0; b < blocks; b++) {
        const float *s = x + b * PERM_BLOCK;
        float *d = xp + b * PERM_BLOCK;
        for (int L = 0; L < 4; L++)
            for (int j = 0; j < 4; j++) {
                d[4 * L + j] = s[8 * L + j];
                d[16 + 4 * L + j] = s[8 * L + 4 + j];
            }
    }
}

AVX512 static void dot_bf16_perm_avx512(const char *rows, size_t row_bytes, int nr, const float *xp, const float *x,
                                        int64_t n, float *out, int pf)
{
    const __m512i zero = _mm512_setzero_si512();
    /* one row at a time (one read stream: measured 1.4x four rows side by side from memory),
     * four accumulators to cover the FMA latency */
    for (int r = 0; r < nr; r++) {
        const uint16_t *w = (const uint16_t *)(rows + (size_t)r * row_bytes);
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        int64_t k = 0;
        for (; k + 2 * PERM_BLOCK <= n; k += 2 * PERM_BLOCK) {
            if (pf) { /* the stream ahead into L2 (lnx_cpu_stream_prefetch) */
                _mm_prefetch((const char *)(w + k) + pf, _MM_HINT_T1);
                _mm_prefetch((const char *)(w + k) + pf + 64, _MM_HINT_T1);
            }
            __m512i v = _mm512_loadu_si512(w + k), u = _mm512_loadu_si512(w + k + PERM_BLOCK);
            a0 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_unpacklo_epi16(zero, v)), _mm512_loadu_ps(xp + k), a0);
            a1 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_unpackhi_epi16(zero, v)), _mm512_loadu_ps(xp + k + 16), a1);
            a2 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_unpacklo_epi16(zero, u)), _mm512_loadu_ps(xp + k + 32), a2);
            a3 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_unpackhi_epi16(zero, u)), _mm512_loadu_ps(xp + k + 48), a3);
        }
        for (; k + PERM_BLOCK <= n; k += PERM_BLOCK) {
            __m512i v = _mm512_loadu_si512(w + k);
            a0 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_unpacklo_epi16(zero, v)), _mm512_loadu_ps(xp + k), a0);
            a1 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_unpackhi_epi16(zero, v)), _mm512_loadu_ps(xp + k + 16), a1);
        }
        out[r] = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
        if (k < n)
            out[r] += dot_scalar(LNX_DT_BF16, (const char *)(w + k), x + k, n - k);
    }
}

AVX2 static void dot_bf16_perm_avx2(const char *rows, size_t row_bytes, int nr, const float *xp, const float *x,
                                    int64_t n, float *out, int pf)
{
    const __m256i zero = _mm256_setzero_si256();
    for (int r = 0; r < nr; r++) {
        const uint16_t *w = (const uint16_t *)(rows + (size_t)r * row_bytes);
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        int64_t k = 0;
        for (; k + PERM_BLOCK <= n; k += PERM_BLOCK) {
            if (pf)
                _mm_prefetch((const char *)(w + k) + pf, _MM_HINT_T1);
            /* a 32-value block as two 256-bit halves: lanes 0-1 and 2-3 of the AVX-512 layout */
            __m256i v0 = _mm256_loadu_si256((const __m256i *)(w + k)), v1 = _mm256_loadu_si256((const __m256i *)(w + k + 16));
            a0 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_unpacklo_epi16(zero, v0)), _mm256_loadu_ps(xp + k), a0);
            a1 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_unpackhi_epi16(zero, v0)), _mm256_loadu_ps(xp + k + 16), a1);
            a2 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_unpacklo_epi16(zero, v1)), _mm256_loadu_ps(xp + k + 8), a2);
            a3 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_unpackhi_epi16(zero, v1)), _mm256_loadu_ps(xp + k + 24), a3);
        }
        out[r] = hsum256(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
        if (k < n)
            out[r] += dot_scalar(LNX_DT_BF16, (const char *)(w + k), x + k, n - k);
    }
}

typedef void (*dot_perm_fn)(const char *, size_t, int, const float *, const float *, int64_t, float *, int);

static dot_perm_fn pick_dot_perm(void)
{
    unsigned f = lnx_cpu_flags();
    if ((f & LNX_CPU_AVX512) && (f & LNX_CPU_AVX2))
        return dot_bf16_perm_avx512;
    if (f & LNX_CPU_AVX2)
        return dot_bf16_perm_avx2;
    return NULL;
}

typedef void (*dot_rows_fn)(lnx_dtype, const char *, size_t, int, const float *, int64_t, float *);

static dot_rows_fn pick_dot_rows(void)
{
    unsigned f = lnx_cpu_flags();
    if ((f & LNX_CPU_AVX512) && (f & LNX_CPU_AVX2))
        return dot_rows_avx512;
    if (f & LNX_CPU_AVX2)
        return dot_rows_avx2;
    return dot_rows_scalar;
}

float lnx_dot_row(lnx_dtype dt, const void *row, const float *x, int64_t n)
{
    float out;
    pick_dot_rows()(dt, row, 0, 1, x, n, &out);
    return out;
}

typedef struct gemv_ctx {
    int64_t M;
    const float *A;
    int64_t lda;
    const lnx_wmat *W;
    const float *bias;
    float *C;
    int64_t ldc;
    int accumulate;
    dot_rows_fn dot;
    dot_perm_fn perm; /* bf16 weights: the permuted-x kernel, with xp (M rows of K) */
    const float *xp;
    int pf; /* its prefetch distance (lnx_cpu_stream_prefetch) */
} gemv_ctx;

/* Rows are handed out in groups of 4 (the unit of dot_rows). A worker walks its range as
 * GEMV_STREAMS interleaved parts. With the kernels that read four rows side by side, four parts
 * (16 streams) measured 28 GB/s against 23 with one on a Sapphire Rapids; the bf16 kernel reads
 * one row after the other, so one part is one sequential stream per worker, which measured
 * 19.7 GB/s against 17 with four parts on an AVX-512 EPYC (2 threads). */
#define GEMV_STREAMS 1

/* Rows n .. n+3 (fewer at the end) against every activation row. */
static void gemv_group(const gemv_ctx *g, int64_t n, size_t row_bytes)
{
    int64_t N = g->W->rows;
    int nr = N - n < 4 ? (int)(N - n) : 4;
    const char *rows = (const char *)g->W->data + (size_t)n * row_bytes;
    for (int64_t m = 0; m < g->M; m++) {
        float v[4];
        if (g->perm)
            g->perm(rows, row_bytes, nr, g->xp + m * g->W->cols, g->A + m * g->lda, g->W->cols, v, g->pf);
        else
            g->dot(g->W->dtype, rows, row_bytes, nr, g->A + m * g->lda, g->W->cols, v);
        float *c = g->C + m * g->ldc + n;
        for (int r = 0; r < nr; r++) {
            float y = v[r] + (g->bias ? g->bias[n + r] : 0.0f);
            c[r] = g->accumulate ? c[r] + y : y;
        }
    }
}

static void gemv_rows(void *p, int64_t begin, int64_t end, int worker)
{
    (void)worker;
    const gemv_ctx *g = p;
    size_t row_bytes = (size_t)g->W->cols * lnx_dtype_size(g->W->dtype);
    int64_t groups = end - begin, part = (groups + GEMV_STREAMS - 1) / GEMV_STREAMS;
    for (int64_t i = 0; i < part; i++)
        for (int k = 0; k < GEMV_STREAMS; k++) {
            int64_t grp = begin + k * part + i;
            if (grp < end)
                gemv_group(g, grp * 4, row_bytes);
        }
}

static void gemv(lnx_pool *pool, int64_t M, const float *A, int64_t lda, const lnx_wmat *W, const float *bias,
                 float *C, int64_t ldc, int accumulate)
{
    gemv_ctx g = { M, A, lda, W, bias, C, ldc, accumulate, pick_dot_rows(), NULL, NULL, lnx_cpu_stream_prefetch() };
    float *xp = NULL;
    if (W->dtype == LNX_DT_BF16 && W->cols >= PERM_BLOCK && (g.perm = pick_dot_perm()) != NULL) {
        xp = lnx_amalloc(sizeof(float) * (size_t)M * (size_t)W->cols);
        if (xp) {
            for (int64_t m = 0; m < M; m++)
                permute_x(A + m * lda, W->cols, xp + m * W->cols);
            g.xp = xp;
        } else {
            g.perm = NULL;
        }
    }
    lnx_parallel_for(pool, (W->rows + 3) / 4, gemv_rows, &g);
    lnx_afree(xp);
}

typedef struct widen_ctx {
    const lnx_wmat *W;
    int64_t row0;
    float *dst;
} widen_ctx;

static void widen_rows(void *p, int64_t begin, int64_t end, int worker)
{
    (void)worker;
    const widen_ctx *w = p;
    size_t es = lnx_dtype_size(w->W->dtype);
    size_t cols = (size_t)w->W->cols;
    const char *src = (const char *)w->W->data + (size_t)(w->row0 + begin) * cols * es;
    lnx_widen(w->W->dtype, src, w->dst + (size_t)begin * cols, (size_t)(end - begin) * cols);
}

typedef struct bias_ctx {
    int64_t N;
    const float *bias;
    int act;
    float *C;
    int64_t ldc;
} bias_ctx;

static void bias_rows(void *p, int64_t begin, int64_t end, int worker)
{
    (void)worker;
    const bias_ctx *b = p;
    for (int64_t m = begin; m < end; m++) {
        float *row = b->C + m * b->ldc;
        if (b->bias)
            for (int64_t n = 0; n < b->N; n++)
                row[n] += b->bias[n];
        if (b->act >= 0)
            lnx_activate(NULL, (lnx_act)b->act, row, b->N);
    }
}

void lnx_bias_act(lnx_pool *pool, int64_t M, int64_t N, const float *bias, int act, float *C, int64_t ldc)
{
    if (!bias && act < 0)
        return;
    bias_ctx b = { N, bias, act, C, ldc };
    lnx_parallel_for(pool, M, bias_rows, &b);
}

/* ---- the float32 products ----
 *
 * Where the build has oneDNN, the float32 products run through oneDNN's sgemm (its AVX-512 or
 * AVX2 kernels as the CPU has them: measured 1.7x OpenBLAS's AVX2 kernels on a Sapphire Rapids,
 * about equal to them on AVX2 and on a Zen 4/5 class EPYC), one thread per call, split over the
 * pool's workers by the callers. A handle created with N threads therefore never has more than N
 * cores computing, and nothing process-wide is touched: oneDNN (OpenMP runtime) reads the calling
 * thread's own OpenMP thread count, which the pool's workers set to 1 once for themselves, and
 * which is set to 1 around the call and restored on any other thread (a host thread running
 * worker 0's share; that setting belongs to that thread alone).
 *
 * Without oneDNN (meson -Donednn=disabled) the products go to cblas_sgemm in one call from the
 * calling thread, and BLAS threads them as the host configured it (e.g. OPENBLAS_NUM_THREADS):
 * the library does not change BLAS's process-wide thread count, so there `threads` bounds only the
 * library's own loops. */

static int use_dnnl_sgemm(void)
{
#ifdef LNX_HAVE_ONEDNN
    return 1;
#else
    return 0;
#endif
}

int lnx_omp_single_enter(void)
{
#ifdef LNX_HAVE_ONEDNN
    if (lnx_pool_on_worker()) {
        /* the pool's own thread: set once, kept (no other code runs OpenMP on it) */
        static _Thread_local int set_once;
        if (!set_once) {
            omp_set_num_threads(1);
            set_once = 1;
        }
        return 1;
    }
    int saved = omp_get_max_threads();
    if (saved != 1)
        omp_set_num_threads(1);
    return saved;
#else
    return 1;
#endif
}

void lnx_omp_single_leave(int saved)
{
#ifdef LNX_HAVE_ONEDNN
    if (saved != 1)
        omp_set_num_threads(saved);
#else
    (void)saved;
#endif
}

const char *lnx_sgemm_backend(void)
{
    return use_dnnl_sgemm() ? "onednn" : "blas";
}

void lnx_sgemm(int b_trans, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
               const float *B, int64_t ldb, float beta, float *C, int64_t ldc)
{
    if (M <= 0 || N <= 0)
        return;
#ifdef LNX_HAVE_ONEDNN
    {
        int saved = lnx_omp_single_enter();
        dnnl_status_t st = dnnl_sgemm('N', b_trans ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        lnx_omp_single_leave(saved);
        if (st == dnnl_success)
            return;
        /* (only for arguments it rejects, which ours never are) fall through to BLAS */
    }
#endif
    cblas_sgemm(CblasRowMajor, CblasNoTrans, b_trans ? CblasTrans : CblasNoTrans, (int)M, (int)N, (int)K, alpha, A,
                (int)lda, B, (int)ldb, beta, C, (int)ldc);
}

int lnx_blas_serial_enter(lnx_pool *pool)
{
    /* oneDNN's sgemm runs single-threaded per call: split the products over the pool */
    return lnx_pool_size(pool) >= 2 && use_dnnl_sgemm() ? 2 : 0;
}

void lnx_blas_serial_leave(int entered)
{
    (void)entered;
}

typedef struct rows_ctx {
    int64_t M, N, K;
    const float *A;
    int64_t lda;
    const float *B;
    int64_t ldb;
    float beta;
    float *C;
    int64_t ldc;
} rows_ctx;

static void sgemm_rows(void *p, int64_t begin, int64_t end, int worker)
{
    (void)worker;
    const rows_ctx *r = p;
    if (end > begin)
        lnx_sgemm(1, end - begin, r->N, r->K, 1.0f, r->A + begin * r->lda, r->lda, r->B, r->ldb, r->beta,
                  r->C + begin * r->ldc, r->ldc);
}

/* C[M,N] = A[M,K] B[N,K]^T + beta C: split by rows over the pool when `serial`, else one call. */
static void sgemm_nt(lnx_pool *pool, int serial, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda,
                     const float *B, int64_t ldb, float beta, float *C, int64_t ldc)
{
    rows_ctx r = { M, N, K, A, lda, B, ldb, beta, C, ldc };
    if (serial)
        lnx_parallel_for(pool, M, sgemm_rows, &r);
    else
        sgemm_rows(&r, 0, M, 0);
}

void lnx_gemm(lnx_pool *pool, int64_t M, const float *A, int64_t lda, const lnx_wmat *W,
              const float *bias, float *C, int64_t ldc, int accumulate)
{
    int64_t N = W->rows, K = W->cols;
    if (M <= 0 || N <= 0)
        return;
    if (lnx_dtype_is_quant(W->dtype)) {
        lnx_qgemm(pool, M, A, lda, W, bias, C, ldc, accumulate);
        return;
    }
    if (M <= GEMV_MAX_M || K == 0) {
        gemv(pool, M, A, lda, W, bias, C, ldc, accumulate);
        return;
    }
    float beta = accumulate ? 1.0f : 0.0f;
    int serial = lnx_blas_serial_enter(pool);
    if (W->dtype == LNX_DT_F32) {
        sgemm_nt(pool, serial, M, N, K, A, lda, W->data, K, beta, C, ldc);
    } else {
        int64_t block = (int64_t)(WIDEN_BYTES / ((size_t)K * sizeof(float)));
        if (block < 16)
            block = 16;
        if (block > N)
            block = N;
        /* the pool's reusable buffer; without one (no pool, nested calls) a fresh one */
        size_t bytes = (size_t)block * (size_t)K * sizeof(float);
        float *buf = lnx_pool_scratch(pool, bytes), *own = NULL;
        if (!buf)
            buf = own = lnx_amalloc(bytes);
        if (!buf) {
            /* no room for even one block: fall back to streaming the weights */
            lnx_blas_serial_leave(serial);
            gemv(pool, M, A, lda, W, bias, C, ldc, accumulate);
            return;
        }
        for (int64_t n0 = 0; n0 < N; n0 += block) {
            int64_t nb = N - n0 < block ? N - n0 : block;
            widen_ctx w = { W, n0, buf };
            lnx_parallel_for(pool, nb, widen_rows, &w);
            sgemm_nt(pool, serial, M, nb, K, A, lda, buf, K, beta, C + n0, ldc);
        }
        lnx_afree(own);
    }
    lnx_blas_serial_leave(serial);
    if (bias)
        lnx_bias_act(pool, M, N, bias, -1, C, ldc);
}

void lnx_gemm_ref(int64_t M, const float *A, int64_t lda, const lnx_wmat *W, const float *bias,
                  float *C, int64_t ldc, int accumulate)
{
    float *row = malloc((size_t)(W->cols ? W->cols : 1) * sizeof(float));
    if (!row)
        return;
    for (int64_t n = 0; n < W->rows; n++) {
        lnx_wmat_row(W, n, row);
        for (int64_t m = 0; m < M; m++) {
            double acc = bias ? bias[n] : 0.0;
            for (int64_t k = 0; k < W->cols; k++)
                acc += (double)A[m * lda + k] * row[k];
            float *c = C + m * ldc + n;
            *c = accumulate ? (float)(*c + acc) : (float)acc;
        }
    }
    free(row);
}
