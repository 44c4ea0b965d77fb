#include "gemm.h"

#include <cblas.h>
#include <immintrin.h>
#include <stdlib.h>

#include "../base/alloc.h"
#include "../base/cpu.h"
#include "../base/half.h"

/* Rows per widened block: bounded to about 4 MiB of float32 so the block stays in cache. */
#define WIDEN_BYTES (4u << 20)
/* Below this many activation rows the weight-streaming GEMV beats widening + sgemm. */
#define GEMV_MAX_M 4

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

__attribute__((target("avx2,fma,f16c")))
static float hsum256(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

__attribute__((target("avx2,fma,f16c")))
static float dot_avx2(lnx_dtype dt, const void *row, const float *x, int64_t n)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 16 <= n; k += 16) {
        __m256 w0, w1;
        if (dt == LNX_DT_F32) {
            w0 = _mm256_loadu_ps((const float *)row + k);
            w1 = _mm256_loadu_ps((const float *)row + k + 8);
        } else {
            __m256i h = _mm256_loadu_si256((const __m256i *)((const uint16_t *)row + k));
            if (dt == LNX_DT_BF16) {
                w0 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm256_castsi256_si128(h)), 16));
                w1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm256_extracti128_si256(h, 1)), 16));
            } else {
                w0 = _mm256_cvtph_ps(_mm256_castsi256_si128(h));
                w1 = _mm256_cvtph_ps(_mm256_extracti128_si256(h, 1));
            }
        }
        a0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + k), a0);
        a1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + k + 8), a1);
    }
    float acc = hsum256(_mm256_add_ps(a0, a1));
    if (k < n) {
        size_t es = lnx_dtype_size(dt);
        acc += dot_scalar(dt, (const char *)row + (size_t)k * es, x + k, n - k);
    }
    return acc;
}

float lnx_dot_row(lnx_dtype dt, const void *row, const float *x, int64_t n)
{
    if (lnx_cpu_flags() & LNX_CPU_AVX2)
        return dot_avx2(dt, row, x, n);
    return dot_scalar(dt, row, x, n);
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
} gemv_ctx;

static void gemv_rows(void *p, int64_t begin, int64_t end, int worker)
{
    (void)worker;
    const gemv_ctx *g = p;
    size_t row_bytes = (size_t)g->W->cols * lnx_dtype_size(g->W->dtype);
    for (int64_t n = begin; n < end; n++) {
        const void *row = (const char *)g->W->data + (size_t)n * row_bytes;
        for (int64_t m = 0; m < g->M; m++) {
            float v = lnx_dot_row(g->W->dtype, row, g->A + m * g->lda, g->W->cols);
            if (g->bias)
                v += g->bias[n];
            float *c = g->C + m * g->ldc + n;
            *c = g->accumulate ? *c + v : v;
        }
    }
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

static void add_bias(int64_t M, int64_t N, const float *bias, float *C, int64_t ldc)
{
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++)
            C[m * ldc + n] += bias[n];
}

void lnx_gemm(lnx_pool *pool, int64_t M, const float *A, int64_t lda, const lnx_wmat *W,
              const float *bias, float *C, int64_t ldc, int accumulate)
{
    int64_t N = W->rows, K = W->cols;
    if (M <= 0 || N <= 0)
        return;
    if (M <= GEMV_MAX_M || K == 0) {
        gemv_ctx g = { M, A, lda, W, bias, C, ldc, accumulate };
        lnx_parallel_for(pool, N, gemv_rows, &g);
        return;
    }
    float beta = accumulate ? 1.0f : 0.0f;
    if (W->dtype == LNX_DT_F32) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, (int)N, (int)K, 1.0f, A,
                    (int)lda, W->data, (int)K, beta, C, (int)ldc);
    } else {
        int64_t block = (int64_t)(WIDEN_BYTES / ((size_t)K * sizeof(float)));
        if (block < 16)
            block = 16;
        if (block > N)
            block = N;
        float *buf = lnx_amalloc((size_t)block * (size_t)K * sizeof(float));
        if (!buf) {
            /* no room for even one block: fall back to streaming the weights */
            gemv_ctx g = { M, A, lda, W, bias, C, ldc, accumulate };
            lnx_parallel_for(pool, N, gemv_rows, &g);
            return;
        }
        for (int64_t n0 = 0; n0 < N; n0 += block) {
            int64_t nb = N - n0 < block ? N - n0 : block;
            widen_ctx w = { W, n0, buf };
            lnx_parallel_for(pool, nb, widen_rows, &w);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, (int)nb, (int)K, 1.0f, A,
                        (int)lda, buf, (int)K, beta, C + n0, (int)ldc);
        }
        lnx_afree(buf);
    }
    if (bias)
        add_bias(M, N, bias, C, ldc);
}

void lnx_gemm_ref(int64_t M, const float *A, int64_t lda, const lnx_wmat *W, const float *bias,
                  float *C, int64_t ldc, int accumulate)
{
    size_t es = lnx_dtype_size(W->dtype);
    float *row = malloc((size_t)(W->cols ? W->cols : 1) * sizeof(float));
    if (!row)
        return;
    for (int64_t n = 0; n < W->rows; n++) {
        lnx_widen(W->dtype, (const char *)W->data + (size_t)n * (size_t)W->cols * es, row, (size_t)W->cols);
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
