/* Every optimised kernel against its scalar oracle on ragged shapes (dav1d's checkasm idea):
 * norms, activations, softmax, attention (query tiles through sgemm and the streaming decode
 * kernel, float32 and half caches, causal, sliding window, grouped heads), GEMV and GEMM over
 * every weight dtype. Run once as is and once with LLAVANEXT_CPU_MASK=0 (the portable paths). */
#include <math.h>
/* tests/common/cpureq.c */
void tu_require_cpu(void);
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/alloc.h"
#include "base/half.h"
#include "base/quant.h"
#include "kernels/amx.h"
#include "kernels/gemm.h"
#include "kernels/ops.h"
#include "kernels/simd.h"

static lnx_pool *pool;

static uint32_t rng = 1;

static float frand(void)
{
    rng = rng * 1664525u + 1013904223u;
    return (float)(rng >> 8) * (1.0f / 16777216.0f) * 2.0f - 1.0f;
}

static float *rand_floats(size_t n, float amp)
{
    float *p = lnx_amalloc(n * sizeof(float) + 64);
    for (size_t i = 0; i < n; i++)
        p[i] = frand() * amp;
    return p;
}

static double max_rel(const float *got, const float *want, size_t n, double floor)
{
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]) / (fabs(want[i]) > floor ? fabs(want[i]) : floor);
        if (!(d <= worst))
            worst = d;
    }
    return worst;
}

static const int64_t dims[] = { 1, 3, 7, 8, 15, 16, 17, 31, 64, 100, 1024, 4099 };

static void norms_match(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof dims / sizeof *dims; i++) {
        int64_t dim = dims[i], rows = 5;
        float *x = rand_floats((size_t)(rows * dim), 3.0f), *w = rand_floats((size_t)dim, 1.0f);
        float *b = rand_floats((size_t)dim, 0.5f);
        float *got = lnx_amalloc(sizeof(float) * (size_t)(rows * dim)), *want = lnx_amalloc(sizeof(float) * (size_t)(rows * dim));
        lnx_layernorm(pool, x, rows, dim, w, b, 1e-5f, got);
        lnx_layernorm_ref(x, rows, dim, w, b, 1e-5f, want);
        assert_true(max_rel(got, want, (size_t)(rows * dim), 1e-2) < 1e-5);
        lnx_rmsnorm(pool, x, rows, dim, w, 1e-6f, got);
        lnx_rmsnorm_ref(x, rows, dim, w, 1e-6f, want);
        assert_true(max_rel(got, want, (size_t)(rows * dim), 1e-2) < 1e-5);
        lnx_afree(x); lnx_afree(w); lnx_afree(b); lnx_afree(got); lnx_afree(want);
    }
}

static void activations_match(void **state)
{
    (void)state;
    const lnx_act acts[] = { LNX_ACT_QUICK_GELU, LNX_ACT_GELU, LNX_ACT_GELU_TANH, LNX_ACT_SILU, LNX_ACT_RELU };
    for (size_t a = 0; a < sizeof acts / sizeof *acts; a++)
        for (size_t i = 0; i < sizeof dims / sizeof *dims; i++) {
            int64_t n = dims[i] * 3 + 1;
            float *x = rand_floats((size_t)n, 12.0f);
            float *y = lnx_amalloc(sizeof(float) * (size_t)n);
            memcpy(y, x, sizeof(float) * (size_t)n);
            lnx_activate(pool, acts[a], x, n);
            lnx_activate_ref(acts[a], y, n);
            /* absolute error against the unit scale: the vector erf and exp are approximations */
            assert_true(max_rel(x, y, (size_t)n, 1.0) < 2e-6);
            lnx_afree(x);
            lnx_afree(y);
        }
    for (size_t i = 0; i < sizeof dims / sizeof *dims; i++) {
        int64_t n = dims[i] * 5;
        float *g = rand_floats((size_t)n, 10.0f), *x = rand_floats((size_t)n, 2.0f);
        float *y = lnx_amalloc(sizeof(float) * (size_t)n);
        memcpy(y, x, sizeof(float) * (size_t)n);
        lnx_swiglu(pool, g, x, n);
        lnx_swiglu_ref(g, y, n);
        assert_true(max_rel(x, y, (size_t)n, 1.0) < 2e-6);
        lnx_afree(g); lnx_afree(x); lnx_afree(y);
    }
}

static void softmax_matches(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof dims / sizeof *dims; i++) {
        int64_t n = dims[i];
        float *x = rand_floats((size_t)n, 20.0f), *y = lnx_amalloc(sizeof(float) * (size_t)n);
        memcpy(y, x, sizeof(float) * (size_t)n);
        double l1 = lnx_softmax(x, n), l2 = lnx_softmax_ref(y, n);
        assert_true(fabs(l1 - l2) < 1e-5 * (1 + fabs(l2)));
        assert_true(max_rel(x, y, (size_t)n, 1e-6) < 1e-5);
        lnx_afree(x);
        lnx_afree(y);
    }
    float all_masked[3] = { -INFINITY, -INFINITY, -INFINITY };
    assert_true(isinf(lnx_softmax(all_masked, 3)));
    assert_true(all_masked[0] == 0.0f && all_masked[2] == 0.0f);
}

/* The bf16 backend (NULL where it cannot run): attention cases then also run through it. */
static lnx_gemm_ctx *bf16_ctx;

/* One attention case through lnx_attention and lnx_attention_ref on identical inputs (and, with
 * the bf16 backend, through its tiles with a bf16-sized tolerance). */
static void attention_case(int64_t Tq, int64_t past, int32_t H, int32_t KV, int32_t hd, int causal, int64_t window,
                           lnx_dtype past_dt)
{
    int64_t Tk = past + (causal ? Tq : Tq + 3);
    if (!causal && past == 0)
        Tk = Tq + 5;
    /* cache rows padded past the heads (Q8: by a block, rows being whole blocks) */
    int64_t qs = (int64_t)H * hd + 3, kvs = (int64_t)KV * hd + 1;
    int64_t ps = (int64_t)KV * hd + (past_dt == LNX_DT_Q8 ? 32 : 2);
    int64_t nnew = Tk - past;
    float *q = rand_floats((size_t)(Tq * qs), 1.5f);
    float *k = rand_floats((size_t)(nnew * kvs + 1), 1.5f), *v = rand_floats((size_t)(nnew * kvs + 1), 1.0f);
    float *kp32 = rand_floats((size_t)(past * ps + 1), 1.5f), *vp32 = rand_floats((size_t)(past * ps + 1), 1.0f);
    uint16_t *kp16 = malloc(sizeof(uint16_t) * (size_t)(past * ps + 1)), *vp16 = malloc(sizeof(uint16_t) * (size_t)(past * ps + 1));
    lnx_f32_to_f16_n(kp32, kp16, (size_t)(past * ps + 1));
    lnx_f32_to_f16_n(vp32, vp16, (size_t)(past * ps + 1));
    const void *kpast = kp32, *vpast = vp32;
    uint8_t *kq = NULL, *vq = NULL;
    if (past_dt == LNX_DT_F16) {
        kpast = kp16;
        vpast = vp16;
    } else if (past_dt == LNX_DT_Q8) {
        size_t rb = lnx_row_bytes(LNX_DT_Q8, ps);
        kq = malloc(rb * (size_t)past + 1);
        vq = malloc(rb * (size_t)past + 1);
        for (int64_t j = 0; j < past; j++) {
            lnx_quantize_row(LNX_DT_Q8, kp32 + j * ps, ps, kq + (size_t)j * rb);
            lnx_quantize_row(LNX_DT_Q8, vp32 + j * ps, ps, vq + (size_t)j * rb);
        }
        kpast = kq;
        vpast = vq;
    }
    int64_t os = (int64_t)H * hd + 5;
    float *got = lnx_acalloc((size_t)(Tq * os), sizeof(float)), *want = lnx_acalloc((size_t)(Tq * os), sizeof(float));
    lnx_attn_args a = { .Tq = Tq, .Tk = Tk, .H = H, .KV = KV, .hd = hd, .q = q, .q_stride = qs, .k = k, .v = v,
                        .kv_stride = kvs, .k_past = kpast, .v_past = vpast, .past_dtype = past_dt,
                        .past_stride = ps, .past = past, .out = got, .out_stride = os,
                        .q_pos0 = causal ? Tk - Tq : 0, .causal = causal, .window = window,
                        .scale = 1.0f / sqrtf((float)hd) };
    lnx_attn_ws ws = { NULL, 0 };
    assert_int_equal(lnx_attention(pool, &a, &ws), LNX_OK);
    a.out = want;
    assert_int_equal(lnx_attention_ref(&a), LNX_OK);
    double worst = 0;
    for (int64_t i = 0; i < Tq; i++)
        for (int64_t d = 0; d < (int64_t)H * hd; d++) {
            double e = fabs((double)got[i * os + d] - want[i * os + d]);
            worst = e > worst ? e : worst;
        }
    if (worst > 2e-5)
        fail_msg("attention Tq %lld past %lld H %d KV %d hd %d causal %d window %lld: max|diff| %g", (long long)Tq,
                 (long long)past, (int)H, (int)KV, (int)hd, causal, (long long)window, worst);
    if (bf16_ctx) {
        a.out = got;
        a.gemm = bf16_ctx;
        assert_int_equal(lnx_attention(pool, &a, &ws), LNX_OK);
        worst = 0;
        for (int64_t i = 0; i < Tq; i++)
            for (int64_t d = 0; d < (int64_t)H * hd; d++) {
                double e = fabs((double)got[i * os + d] - want[i * os + d]);
                worst = e > worst ? e : worst;
            }
        /* values are within [-1, 1]: bf16 keeps 8 bits */
        if (worst > 2e-2)
            fail_msg("bf16 attention Tq %lld past %lld H %d KV %d hd %d: max|diff| %g", (long long)Tq, (long long)past,
                     (int)H, (int)KV, (int)hd, worst);
    }
    lnx_buf_free(&ws);
    lnx_afree(q); lnx_afree(k); lnx_afree(v); lnx_afree(kp32); lnx_afree(vp32);
    free(kp16); free(vp16); free(kq); free(vq); lnx_afree(got); lnx_afree(want);
}

static void attention_matches(void **state)
{
    (void)state;
    /* vision: bidirectional, no cache */
    attention_case(1, 0, 2, 2, 16, 0, 0, LNX_DT_F32);
    attention_case(50, 0, 4, 4, 64, 0, 0, LNX_DT_F32);
    attention_case(300, 0, 3, 3, 24, 0, 0, LNX_DT_F32);
    attention_case(577, 0, 2, 2, 72, 0, 0, LNX_DT_F32); /* SigLIP's heads: 72 values, ragged tiles */
    attention_case(40, 0, 2, 2, 160, 0, 0, LNX_DT_F32); /* more than four 32-value steps per head */
    /* prompt blocks after a cache, both cache types, grouped heads, ragged tiles */
    for (int dt = 0; dt < 2; dt++) {
        lnx_dtype pd = dt ? LNX_DT_F16 : LNX_DT_F32;
        attention_case(7, 0, 4, 2, 16, 1, 0, pd);
        attention_case(37, 11, 4, 2, 16, 1, 0, pd);
        attention_case(270, 40, 4, 1, 32, 1, 0, pd);
        attention_case(260, 300, 2, 2, 8, 1, 0, pd);
        attention_case(65, 20, 4, 4, 16, 1, 9, pd); /* sliding window */
        attention_case(130, 70, 4, 2, 96, 1, 0, pd);
        /* a long cache: 64-row query tiles whose windows start past a 32-key boundary */
        attention_case(150, 10850, 1, 1, 16, 1, 40, pd);
        /* decode steps and short continuations (streaming kernel) */
        attention_case(1, 0, 4, 2, 16, 1, 0, pd);
        attention_case(1, 100, 4, 2, 128, 1, 0, pd);
        attention_case(3, 33, 8, 2, 16, 1, 0, pd);
        attention_case(2, 50, 4, 4, 16, 1, 7, pd);
        /* sixteen heads at a time (7B geometry, grouped, and a remainder of heads) */
        attention_case(1, 203, 32, 32, 128, 1, 0, pd);
        attention_case(2, 90, 32, 8, 64, 1, 0, pd);
        attention_case(1, 61, 20, 4, 16, 1, 0, pd);
        attention_case(4, 5, 16, 16, 48, 1, 3, pd);
    }
    /* an 8-bit cache (rows of whole 32-value blocks, a head 16 values or more: half a block): the
     * tiles read it widened, the streaming kernel directly, against the reference on the same
     * dequantized values */
    attention_case(7, 0, 4, 2, 16, 1, 0, LNX_DT_Q8);
    attention_case(37, 11, 4, 2, 16, 1, 0, LNX_DT_Q8);
    attention_case(1, 61, 20, 4, 16, 1, 0, LNX_DT_Q8);
    attention_case(4, 5, 16, 16, 48, 1, 3, LNX_DT_Q8);
    attention_case(2, 9, 6, 6, 16, 1, 0, LNX_DT_Q8);
    attention_case(37, 11, 4, 2, 32, 1, 0, LNX_DT_Q8);
    attention_case(270, 40, 4, 1, 64, 1, 0, LNX_DT_Q8);
    attention_case(65, 20, 4, 4, 32, 1, 9, LNX_DT_Q8);
    attention_case(1, 100, 4, 2, 128, 1, 0, LNX_DT_Q8);
    attention_case(3, 33, 8, 2, 32, 1, 0, LNX_DT_Q8);
    attention_case(2, 50, 4, 4, 64, 1, 7, LNX_DT_Q8);
    attention_case(1, 203, 32, 32, 128, 1, 0, LNX_DT_Q8);
    attention_case(2, 90, 32, 8, 64, 1, 0, LNX_DT_Q8);
    attention_case(1, 61, 20, 4, 32, 1, 0, LNX_DT_Q8);
    attention_case(5, 7, 16, 16, 96, 1, 3, LNX_DT_Q8);
}

/* lnx_gemm against lnx_gemm_ref for every dtype: GEMV rows (M <= 4) and blocked sgemm. */
static void gemm_case(lnx_dtype dt, int64_t M, int64_t N, int64_t K, int bias, int accumulate)
{
    size_t es = lnx_dtype_size(dt);
    float *w32 = rand_floats((size_t)(N * K), 0.5f);
    void *w = lnx_amalloc((size_t)(N * K) * es + 64);
    if (dt == LNX_DT_F32)
        memcpy(w, w32, sizeof(float) * (size_t)(N * K));
    else if (dt == LNX_DT_BF16)
        lnx_f32_to_bf16_n(w32, w, (size_t)(N * K));
    else
        lnx_f32_to_f16_n(w32, w, (size_t)(N * K));
    lnx_wmat W = { w, dt, N, K };
    int64_t lda = K + 3, ldc = N + 2;
    float *A = rand_floats((size_t)(M * lda), 1.0f), *b = rand_floats((size_t)N, 0.3f);
    float *got = rand_floats((size_t)(M * ldc), 1.0f), *want = lnx_amalloc(sizeof(float) * (size_t)(M * ldc));
    memcpy(want, got, sizeof(float) * (size_t)(M * ldc));
    lnx_gemm(pool, M, A, lda, &W, bias ? b : NULL, got, ldc, accumulate);
    lnx_gemm_ref(M, A, lda, &W, bias ? b : NULL, want, ldc, accumulate);
    double worst = 0;
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
            double e = fabs((double)got[m * ldc + n] - want[m * ldc + n]) / sqrt((double)K);
            worst = e > worst ? e : worst;
        }
    if (worst > 1e-6)
        fail_msg("gemm dt %d M %lld N %lld K %lld: max|diff|/sqrt(K) %g", (int)dt, (long long)M, (long long)N,
                 (long long)K, worst);
    lnx_afree(w32); lnx_afree(w); lnx_afree(A); lnx_afree(b); lnx_afree(got); lnx_afree(want);
}

static void gemm_matches(void **state)
{
    (void)state;
    const lnx_dtype dts[] = { LNX_DT_F32, LNX_DT_BF16, LNX_DT_F16 };
    const int64_t ms[] = { 1, 2, 3, 4, 5, 33 };
    const int64_t nk[][2] = { { 1, 1 }, { 3, 17 }, { 5, 31 }, { 9, 32 }, { 13, 64 }, { 64, 100 }, { 130, 257 } };
    for (size_t d = 0; d < 3; d++)
        for (size_t m = 0; m < sizeof ms / sizeof *ms; m++)
            for (size_t s = 0; s < sizeof nk / sizeof *nk; s++)
                gemm_case(dts[d], ms[m], nk[s][0], nk[s][1], (int)(s & 1), (int)((s >> 1) & 1));
}

static void bf16_rounding_matches(void **state)
{
    (void)state;
    float x[77];
    uint16_t got[77];
    for (int i = 0; i < 77; i++)
        x[i] = frand() * (float)(1 << (i % 20));
    for (size_t n = 0; n <= 77; n += 11) {
        lnx_round_bf16_n(x, got, n);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(got[i], lnx_f32_to_bf16(x[i]));
    }
    /* unnormalised softmax into bf16 */
    float row[70], ref[70];
    uint16_t p[70];
    for (int i = 0; i < 70; i++)
        row[i] = ref[i] = frand() * 30.0f;
    float sum = lnx_exp_bf16(row, 70, 0.125f, p);
    float mx = -INFINITY;
    double rs = 0;
    for (int i = 0; i < 70; i++)
        mx = ref[i] > mx ? ref[i] : mx;
    for (int i = 0; i < 70; i++) {
        double e = exp((ref[i] - mx) * 0.125);
        rs += e;
        assert_true(fabs(lnx_bf16_to_f32(p[i]) - e) <= 4e-3 * e + 1e-30);
    }
    assert_true(fabs(sum - rs) <= 1e-5 * rs);
}

/* sum_k bf16(A[m, k]) W[n, k] in float64, and the sum of the terms' magnitudes (the scale of
 * float32 rounding in any summation order). */
static void bf16_ref(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const uint16_t *W, double *out,
                     double *mag)
{
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
            double acc = 0, abs_acc = 0;
            for (int64_t k = 0; k < K; k++) {
                double t = (double)lnx_bf16_to_f32(lnx_f32_to_bf16(A[m * lda + k])) * lnx_bf16_to_f32(W[n * K + k]);
                acc += t;
                abs_acc += fabs(t);
            }
            out[m * N + n] = acc;
            mag[m * N + n] = abs_acc;
        }
}

static uint16_t *rand_bf16(size_t n)
{
    uint16_t *w = lnx_amalloc(n * sizeof(uint16_t) + 64);
    for (size_t i = 0; i < n; i++)
        w[i] = lnx_f32_to_bf16(frand());
    return w;
}

/* The AMX kernel itself: ragged M, N, K (tails in every dimension, K past one packed block),
 * weight rows further apart than K, column ranges as the workers split them, accumulation. */
static void amx_linear_matches(void **state)
{
    (void)state;
    if (!lnx_amx_available())
        skip(); /* no AMX here (or masked off): the bf16 backend uses oneDNN's matmul */
    const int64_t shapes[][3] = { { 1, 1, 2 }, { 33, 47, 70 }, { 32, 32, 32 }, { 70, 300, 130 }, { 5, 64, 4610 },
                                  { 100, 96, 4096 }, { 40, 1100, 1000 } /* several 512-column blocks */ };
    void *pack = lnx_amalloc(lnx_amx_pack_bytes());
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        int64_t M = shapes[i][0], N = shapes[i][1], K = shapes[i][2];
        int64_t lda = (K + 31) / 32 * 32 + (int64_t)(i & 1) * 32, Mp = (M + 31) / 32 * 32, ldc = N + 3;
        int64_t ldw = K + (int64_t)(i % 3) * 6;
        float *A = rand_floats((size_t)(M * K), 2.0f);
        uint16_t *Wd = rand_bf16((size_t)(N * ldw)), *W = lnx_amalloc(sizeof(uint16_t) * (size_t)(N * K) + 64);
        uint16_t *A16 = lnx_acalloc((size_t)(Mp * lda), sizeof(uint16_t));
        for (int64_t n = 0; n < N; n++)
            memcpy(W + n * K, Wd + n * ldw, sizeof(uint16_t) * (size_t)K);
        for (int64_t m = 0; m < M; m++)
            for (int64_t k = 0; k < K; k++)
                A16[m * lda + k] = lnx_f32_to_bf16(A[m * K + k]);
        double *want = malloc(sizeof(double) * (size_t)(M * N)), *mag = malloc(sizeof(double) * (size_t)(M * N));
        bf16_ref(M, N, K, A, K, W, want, mag);
        for (int accumulate = 0; accumulate < 2; accumulate++) {
            float *C = rand_floats((size_t)(M * ldc), 1.0f), *C0 = malloc(sizeof(float) * (size_t)(M * ldc));
            memcpy(C0, C, sizeof(float) * (size_t)(M * ldc));
            int64_t split = N > 32 ? 32 : N; /* two shares, the first a multiple of 32 */
            lnx_amx_linear(M, N, K, A16, lda, Wd, ldw, C, ldc, 0, split, accumulate, NULL, pack);
            lnx_amx_linear(M, N, K, A16, lda, Wd, ldw, C, ldc, split, N, accumulate, NULL, pack);
            for (int64_t m = 0; m < M; m++) {
                for (int64_t n = 0; n < N; n++) {
                    double w = want[m * N + n] + (accumulate ? C0[m * ldc + n] : 0);
                    double tol = 1e-6 * mag[m * N + n] + 1e-6 + 1e-6 * fabs(w);
                    if (!(fabs(C[m * ldc + n] - w) <= tol))
                        fail_msg("amx M %lld N %lld K %lld acc %d: C[%lld][%lld] = %g, want %g", (long long)M,
                                 (long long)N, (long long)K, accumulate, (long long)m, (long long)n, C[m * ldc + n], w);
                }
                for (int64_t n = N; n < ldc; n++) /* the padding columns of C are not written */
                    assert_true(C[m * ldc + n] == C0[m * ldc + n]);
            }
            lnx_afree(C);
            free(C0);
        }
        lnx_afree(A);
        lnx_afree(W);
        lnx_afree(Wd);
        lnx_afree(A16);
        free(want);
        free(mag);
    }
    lnx_afree(pack);
}

/* Linear products through the bf16 backend (AMX or oneDNN): bias, activation, accumulation,
 * several weights sharing one input, against float64 sums of the bf16-rounded inputs. */
static void bf16_linear_matches(void **state)
{
    (void)state;
    if (!bf16_ctx)
        skip(); /* the bf16 backend cannot run here */
    const int64_t shapes[][3] = { { 5, 7, 6 }, { 33, 65, 70 }, { 200, 130, 96 }, { 577, 64, 588 } };
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        int64_t M = shapes[i][0], N = shapes[i][1], K = shapes[i][2], lda = K + 5, ldc = N + 2;
        float *A = rand_floats((size_t)(M * lda), 1.0f), *bias = rand_floats((size_t)N, 0.5f);
        uint16_t *W = rand_bf16((size_t)(N * K));
        lnx_wmat w = { W, LNX_DT_BF16, N, K };
        double *want = malloc(sizeof(double) * (size_t)(M * N)), *mag = malloc(sizeof(double) * (size_t)(M * N));
        bf16_ref(M, N, K, A, lda, W, want, mag);
        float *C = rand_floats((size_t)(M * ldc), 1.0f), *C0 = malloc(sizeof(float) * (size_t)(M * ldc));
        memcpy(C0, C, sizeof(float) * (size_t)(M * ldc));
        lnx_gemm_x(bf16_ctx, pool, M, A, lda, &w, bias, C, ldc, 1); /* C += A W^T + b */
        for (int64_t m = 0; m < M; m++)
            for (int64_t n = 0; n < N; n++) {
                double e = want[m * N + n] + bias[n] + C0[m * ldc + n];
                assert_true(fabs(C[m * ldc + n] - e) <= 1e-5 * (mag[m * N + n] + 1.0));
            }
        lnx_gemm_act(bf16_ctx, pool, M, A, lda, &w, bias, C, ldc, LNX_ACT_SILU);
        for (int64_t m = 0; m < M; m++)
            for (int64_t n = 0; n < N; n++) {
                double x = want[m * N + n] + bias[n], e = x / (1 + exp(-x));
                assert_true(fabs(C[m * ldc + n] - e) <= 1e-5 * (mag[m * N + n] + 1.0) + 1e-5 * fabs(e));
            }
        float *C2 = rand_floats((size_t)(M * N), 1.0f);
        const lnx_wmat *ws[2] = { &w, &w };
        const float *bs[2] = { NULL, bias };
        float *cs[2] = { C, C2 };
        const int64_t lds[2] = { ldc, N };
        lnx_gemm_multi(bf16_ctx, pool, M, A, lda, 2, ws, bs, cs, lds);
        for (int64_t m = 0; m < M; m++)
            for (int64_t n = 0; n < N; n++) {
                double tol = 1e-5 * (mag[m * N + n] + 1.0);
                assert_true(fabs(C[m * ldc + n] - want[m * N + n]) <= tol);
                assert_true(fabs(C2[m * N + n] - (want[m * N + n] + bias[n])) <= tol);
            }
        lnx_afree(A);
        lnx_afree(bias);
        lnx_afree(W);
        lnx_afree(C);
        lnx_afree(C2);
        free(C0);
        free(want);
        free(mag);
    }
}

/* An MLP through lnx_gemm_mlp gives the values of its two products in turn (lnx_gemm_act, then
 * lnx_gemm_x), bit for bit: with the bf16 backend (on AMX the hidden rows stay in bf16 inside the
 * kernel; ragged M, I and K, accumulation into C) and in float32. */
static void mlp_matches(void **state)
{
    (void)state;
    const int64_t shapes[][3] = { { 37, 70, 48 }, { 100, 600, 130 }, { 5, 64, 32 } }; /* M, I, K */
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        const int64_t M = shapes[i][0], I = shapes[i][1], K = shapes[i][2], D = 40, lda = K + 3, ldc = D + 5;
        float *A = rand_floats((size_t)(M * lda), 2.0f), *b1 = rand_floats((size_t)I, 1.0f);
        float *b2 = rand_floats((size_t)D, 1.0f);
        uint16_t *W1 = rand_bf16((size_t)(I * K)), *W2 = rand_bf16((size_t)(D * I));
        lnx_wmat fc1 = { W1, LNX_DT_BF16, I, K }, fc2 = { W2, LNX_DT_BF16, D, I };
        float *hidden = lnx_amalloc(sizeof(float) * (size_t)(M * I));
        float *C0 = rand_floats((size_t)(M * ldc), 1.0f);
        float *got = lnx_amalloc(sizeof(float) * (size_t)(M * ldc)), *want = lnx_amalloc(sizeof(float) * (size_t)(M * ldc));
        for (int b = 0; b < 2; b++) {
            lnx_gemm_ctx *ctx = b ? bf16_ctx : NULL;
            if (b && !ctx)
                continue;
            memcpy(got, C0, sizeof(float) * (size_t)(M * ldc));
            memcpy(want, C0, sizeof(float) * (size_t)(M * ldc));
            lnx_gemm_mlp(ctx, pool, M, A, lda, &fc1, b1, LNX_ACT_GELU, &fc2, b2, hidden, got, ldc, 1);
            lnx_gemm_act(ctx, pool, M, A, lda, &fc1, b1, hidden, I, LNX_ACT_GELU);
            lnx_gemm_x(ctx, pool, M, hidden, I, &fc2, b2, want, ldc, 1);
            for (int64_t m = 0; m < M; m++)
                for (int64_t n = 0; n < D; n++)
                    if (got[m * ldc + n] != want[m * ldc + n])
                        fail_msg("mlp %s M %lld I %lld K %lld: C[%lld][%lld] = %.9g, the two products %.9g",
                                 b ? "bf16" : "f32", (long long)M, (long long)I, (long long)K, (long long)m,
                                 (long long)n, got[m * ldc + n], want[m * ldc + n]);
        }
        lnx_afree(A); lnx_afree(b1); lnx_afree(b2); lnx_afree(W1); lnx_afree(W2);
        lnx_afree(hidden); lnx_afree(C0); lnx_afree(got); lnx_afree(want);
    }
}

int main(void)
{
    tu_require_cpu();
    if (lnx_pool_create(&pool, 3) != LNX_OK)
        return 1;
    if (lnx_gemm_bf16_available(NULL))
        lnx_gemm_ctx_create(&bf16_ctx, LNX_PRECISION_BF16);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(norms_match),     cmocka_unit_test(activations_match), cmocka_unit_test(softmax_matches),
        cmocka_unit_test(attention_matches), cmocka_unit_test(gemm_matches), cmocka_unit_test(bf16_rounding_matches),
        cmocka_unit_test(amx_linear_matches), cmocka_unit_test(bf16_linear_matches), cmocka_unit_test(mlp_matches),
    };
    int rc = cmocka_run_group_tests_name("kernels", tests, NULL, NULL);
    lnx_gemm_ctx_free(bf16_ctx);
    lnx_pool_free(pool);
    return rc;
}
