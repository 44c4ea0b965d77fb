/* The quantized formats and products (base/quant.h, kernels/quant.h), checkasm style:
 *  - formats: quantize -> dequantize error within each format's bound, row sizes, short Q4
 *    super-blocks at the end of a row, the fallback rule for rows that do not fit;
 *  - the scalar oracle equals the float32 product of the dequantized operands;
 *  - every SIMD variant against the oracle, on ragged K (full and short Q4 super-blocks), for
 *    one and four activation rows; a variant this CPU cannot run is reported as skipped;
 *  - the threaded GEMV/GEMM (lnx_qgemm, and lnx_gemm on a quantized weight) on ragged M and N,
 *    with bias and accumulation, against the oracle and against float32.
 * Runs as is and under LLAVANEXT_CPU_MASK values (tests/kernels/meson.build). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/alloc.h"
#include "base/cpu.h"
#include "base/half.h"
#include "base/quant.h"
#include "kernels/gemm.h"
#include "kernels/quant.h"

static lnx_pool *pool;
static uint32_t rng = 7;

static float frand(void)
{
    rng = rng * 1664525u + 1013904223u;
    return (float)(rng >> 8) * (1.0f / 16777216.0f) * 2.0f - 1.0f;
}

/* values with a spread of block magnitudes and a few outliers, as real weights have */
static float *rand_weights(size_t n)
{
    float *p = lnx_amalloc(n * sizeof(float) + 64);
    for (size_t i = 0; i < n; i++) {
        float scale = 0.02f * (1.0f + 3.0f * (float)((i / 32) % 4));
        p[i] = frand() * scale + (i % 97 == 0 ? 0.3f * frand() : 0.0f) + 0.005f * (float)((i / 256) % 3);
    }
    return p;
}

/* N rows of K random weights (rand_weights) quantized to dt, as a stored matrix. */
static uint8_t *rand_qweights(lnx_dtype dt, int64_t N, int64_t K)
{
    size_t rb = lnx_row_bytes(dt, K);
    float *wf = rand_weights((size_t)(N * K));
    uint8_t *wq = lnx_amalloc(rb * (size_t)N);
    for (int64_t r = 0; r < N; r++)
        lnx_quantize_row(dt, wf + r * K, K, wq + (size_t)r * rb);
    lnx_afree(wf);
    return wq;
}

static float *rand_acts(size_t n)
{
    float *p = lnx_amalloc(n * sizeof(float) + 64);
    for (size_t i = 0; i < n; i++)
        p[i] = frand() * 2.0f + (i % 61 == 0 ? 8.0f * frand() : 0.0f);
    return p;
}

static const int64_t Ks[] = { 32, 64, 96, 160, 224, 256, 288, 512, 800, 4096 };
#define NK (sizeof Ks / sizeof *Ks)

static void formats_round_trip(void **state)
{
    (void)state;
    for (size_t i = 0; i < NK; i++) {
        int64_t K = Ks[i];
        float *x = rand_weights((size_t)K), *y = lnx_amalloc(sizeof(float) * (size_t)K);
        uint8_t *q = lnx_amalloc(lnx_row_bytes(LNX_DT_Q4, K) + lnx_row_bytes(LNX_DT_Q8, K));
        assert_int_equal(lnx_row_bytes(LNX_DT_Q8, K), (size_t)(K / 32 * 34));
        assert_int_equal(lnx_row_bytes(LNX_DT_Q4, K), (size_t)(K / 256 * 144 + (K % 256 ? 16 + (K % 256) / 2 : 0)));
        /* Q8: each value within half a step of its block's scale */
        lnx_quantize_row(LNX_DT_Q8, x, K, q);
        lnx_dequantize_row(LNX_DT_Q8, q, K, y);
        for (int64_t b = 0; b < K / 32; b++) {
            float amax = 0;
            for (int j = 0; j < 32; j++)
                amax = fmaxf(amax, fabsf(x[b * 32 + j]));
            for (int j = 0; j < 32; j++)
                assert_true(fabsf(y[b * 32 + j] - x[b * 32 + j]) <= amax / 127.0f * 0.502f + 1e-7f);
        }
        /* Q4: RMS error under 0.75 of a step of 1/15 of each sub-block's range (a uniform
         * quantizer's is 0.29; the 6-bit scales and minimums add to it in sub-blocks much
         * narrower than their super-block's widest: measured at most 0.65 here), and over the
         * row under 9% of the values' RMS (measured 5.9%; Gaussian values 7.3%, Q8 0.5%) */
        lnx_quantize_row(LNX_DT_Q4, x, K, q);
        lnx_dequantize_row(LNX_DT_Q4, q, K, y);
        for (int64_t b = 0; b < K / 32; b++) {
            float lo = 0, hi = 0;
            double e = 0;
            for (int j = 0; j < 32; j++) {
                lo = fminf(lo, x[b * 32 + j]);
                hi = fmaxf(hi, x[b * 32 + j]);
                e += (double)(y[b * 32 + j] - x[b * 32 + j]) * (y[b * 32 + j] - x[b * 32 + j]);
            }
            assert_true(sqrt(e / 32) <= 0.75 * (hi - lo) / 15.0 + 1e-6);
        }
        double e = 0, n = 0;
        for (int64_t k = 0; k < K; k++) {
            e += (double)(y[k] - x[k]) * (y[k] - x[k]);
            n += (double)x[k] * x[k];
        }
        assert_true(sqrt(e / n) < 0.09);
        lnx_afree(x);
        lnx_afree(y);
        lnx_afree(q);
    }
    /* the fallback: Q4 -> Q8 -> the 16-bit form for rows not a multiple of 32 */
    assert_int_equal(lnx_quant_choose(LNX_DT_Q4, 4096, LNX_DT_BF16), LNX_DT_Q4);
    assert_int_equal(lnx_quant_choose(LNX_DT_Q4, 96, LNX_DT_BF16), LNX_DT_Q4);
    assert_int_equal(lnx_quant_choose(LNX_DT_Q4, 200, LNX_DT_BF16), LNX_DT_BF16);
    assert_int_equal(lnx_quant_choose(LNX_DT_Q8, 100, LNX_DT_F16), LNX_DT_F16);
    assert_int_equal(lnx_quant_choose(LNX_DT_Q8, 0, LNX_DT_F16), LNX_DT_F16);
}

/* A quantized weight [rows x K] of dt made from random values, plus quantized activations. */
typedef struct operands {
    int64_t rows, K, M, nbp;
    uint8_t *w;
    int8_t *q, *qn; /* qn: q arranged for the Q4 GEMV */
    float *d, *s;
} operands;

static void make_operands(operands *o, lnx_dtype dt, int64_t rows, int64_t K, int64_t M)
{
    o->rows = rows;
    o->K = K;
    o->M = M;
    o->nbp = K / 32 + 8;
    size_t rb = lnx_row_bytes(dt, K);
    o->w = lnx_amalloc(rb * (size_t)rows);
    float *x = rand_weights((size_t)(rows * K));
    for (int64_t r = 0; r < rows; r++)
        lnx_quantize_row(dt, x + r * K, K, o->w + (size_t)r * rb);
    lnx_afree(x);
    o->q = lnx_amalloc((size_t)(M * K));
    o->qn = lnx_amalloc((size_t)(M * K));
    o->d = lnx_acalloc((size_t)(M * o->nbp), sizeof(float));
    o->s = lnx_acalloc((size_t)(M * o->nbp), sizeof(float));
    float *a = rand_acts((size_t)(M * K));
    for (int64_t m = 0; m < M; m++)
        lnx_quantize_acts(a + m * K, K, o->q + m * K, o->d + m * o->nbp, o->s + m * o->nbp);
    for (int64_t m = 0; m < M; m++)
        lnx_q4_arrange_acts(o->q + m * K, K, o->qn + m * K);
    lnx_afree(a);
}

static void free_operands(operands *o)
{
    lnx_afree(o->w);
    lnx_afree(o->q);
    lnx_afree(o->qn);
    lnx_afree(o->d);
    lnx_afree(o->s);
}

static void fill_tile(const operands *o, lnx_dtype dt, lnx_qtile *t, int64_t r0, int64_t m0)
{
    t->K = o->K;
    t->pf = 0;
    for (int i = 0; i < 4; i++) {
        t->w[i] = o->w + (size_t)(r0 + i) * lnx_row_bytes(dt, o->K);
        t->q[i] = o->q + (m0 + i) * o->K;
        t->d[i] = o->d + (m0 + i) * o->nbp;
        t->s[i] = o->s + (m0 + i) * o->nbp;
        t->qn[i] = NULL;
    }
}

/* sum |w| |a| of a row pair: the scale float32 rounding errors are relative to */
static double abs_dot(const float *w, const float *a, int64_t K)
{
    double s = 0;
    for (int64_t k = 0; k < K; k++)
        s += fabs((double)w[k] * a[k]);
    return s;
}

static void dequant_acts(const operands *o, int64_t m, float *out)
{
    for (int64_t k = 0; k < o->K; k++)
        out[k] = o->d[m * o->nbp + k / 32] * (float)o->q[m * o->K + k];
}

static void oracle_is_float_product(void **state)
{
    (void)state;
    const lnx_dtype dts[] = { LNX_DT_Q8, LNX_DT_Q4 };
    for (int f = 0; f < 2; f++)
        for (size_t i = 0; i < NK; i++) {
            operands o;
            make_operands(&o, dts[f], 4, Ks[i], 4);
            lnx_qtile t;
            fill_tile(&o, dts[f], &t, 0, 0);
            lnx_qtile_run(LNX_QISA_SCALAR, dts[f], &t, 4);
            float *w = lnx_amalloc(sizeof(float) * (size_t)o.K), *a = lnx_amalloc(sizeof(float) * (size_t)o.K);
            for (int m = 0; m < 4; m++) {
                dequant_acts(&o, m, a);
                for (int r = 0; r < 4; r++) {
                    lnx_dequantize_row(dts[f], t.w[r], o.K, w);
                    double want = 0;
                    for (int64_t k = 0; k < o.K; k++)
                        want += (double)w[k] * a[k];
                    assert_true(fabs(t.out[m][r] - want) <= 1e-5 * abs_dot(w, a, o.K) + 1e-6);
                }
            }
            lnx_afree(w);
            lnx_afree(a);
            free_operands(&o);
        }
}

static void variant_matches(lnx_qisa isa)
{
    const char *why = NULL;
    if (!lnx_qisa_runnable(isa, &why)) {
        printf("    %s: skipped: %s\n", lnx_qisa_name(isa), why);
        skip();
        return;
    }
    const lnx_dtype dts[] = { LNX_DT_Q8, LNX_DT_Q4 };
    for (int f = 0; f < 2; f++)
        for (size_t i = 0; i < NK; i++) {
            operands o;
            make_operands(&o, dts[f], 8, Ks[i], 5);
            float *w = lnx_amalloc(sizeof(float) * (size_t)o.K), *a = lnx_amalloc(sizeof(float) * (size_t)o.K);
            /* one activation row with q as it is, with q arranged for the Q4 GEMV, four rows */
            for (int pass = 0; pass < 3; pass++) {
                const int nm = pass == 2 ? 4 : 1;
                lnx_qtile want, got;
                /* rows 3..6 and activation rows 1..4: nothing aligned */
                fill_tile(&o, dts[f], &want, 3, 1);
                got = want;
                got.pf = pass == 1 ? LNX_INTEL_STREAM_PREFETCH : 0; /* prefetching past the rows changes nothing */
                if (pass == 1)
                    for (int j = 0; j < 4; j++)
                        got.qn[j] = o.qn + (1 + j) * o.K;
                lnx_qtile_run(LNX_QISA_SCALAR, dts[f], &want, nm);
                lnx_qtile_run(isa, dts[f], &got, nm);
                for (int m = 0; m < nm; m++) {
                    dequant_acts(&o, 1 + m, a);
                    for (int r = 0; r < 4; r++) {
                        lnx_dequantize_row(dts[f], want.w[r], o.K, w);
                        double tol = 2e-6 * abs_dot(w, a, o.K) + 1e-6;
                        if (!(fabs(got.out[m][r] - want.out[m][r]) <= tol))
                            fail_msg("%s %s K=%lld pass %d [%d][%d]: %g vs oracle %g", lnx_qisa_name(isa),
                                     dts[f] == LNX_DT_Q8 ? "q8" : "q4", (long long)o.K, pass, m, r,
                                     (double)got.out[m][r], (double)want.out[m][r]);
                    }
                }
            }
            lnx_afree(w);
            lnx_afree(a);
            free_operands(&o);
        }
    printf("    %s: matches the scalar oracle\n", lnx_qisa_name(isa));
}

static void avx2_matches(void **state) { (void)state; variant_matches(LNX_QISA_AVX2); }
static void avx512vnni_matches(void **state) { (void)state; variant_matches(LNX_QISA_AVX512VNNI); }
static void avxvnni_matches(void **state) { (void)state; variant_matches(LNX_QISA_AVXVNNI); }

static void activation_quantizing_matches(void **state)
{
    (void)state;
    int64_t K = 4096;
    float *x = rand_acts((size_t)K);
    int8_t *q1 = lnx_amalloc((size_t)K), *q2 = lnx_amalloc((size_t)K);
    float d1[128], d2[128], s1[128], s2[128];
    lnx_quantize_acts(x, K, q1, d1, s1);
    /* the dispatched version against the plain formula */
    for (int64_t b = 0; b < K / 32; b++) {
        float amax = 0;
        for (int j = 0; j < 32; j++)
            amax = fmaxf(amax, fabsf(x[b * 32 + j]));
        int sum = 0;
        for (int j = 0; j < 32; j++) {
            int v = (int)nearbyintf(x[b * 32 + j] * (127.0f / amax));
            assert_int_equal(q1[b * 32 + j], v);
            sum += v;
        }
        assert_true(d1[b] == amax / 127.0f);
        assert_true(s1[b] == d1[b] * (float)sum);
        d2[b] = d1[b];
        s2[b] = s1[b];
    }
    (void)q2;
    (void)d2;
    (void)s2;
    lnx_afree(x);
    lnx_afree(q1);
    lnx_afree(q2);
}

/* lnx_gemm on a quantized weight (the dispatched variant, threaded) on ragged shapes, with bias
 * and accumulation: against the scalar-oracle GEMM closely, and against float32 products of the
 * unquantized activations within the activation quantization's error. */
static void qgemm_matches(void **state)
{
    (void)state;
    const int64_t Ms[] = { 1, 2, 3, 4, 5, 7, 33 }, Ns[] = { 1, 3, 5, 33, 100 };
    const int64_t Kq[] = { 64, 96, 288 };
    const lnx_dtype dts[] = { LNX_DT_Q8, LNX_DT_Q4 };
    for (int f = 0; f < 2; f++)
        for (size_t ki = 0; ki < 3; ki++)
            for (size_t ni = 0; ni < 5; ni++)
                for (size_t mi = 0; mi < 7; mi++) {
                    int64_t M = Ms[mi], N = Ns[ni], K = Kq[ki], ldc = N + 3, lda = K + 5;
                    uint8_t *wq = rand_qweights(dts[f], N, K);
                    lnx_wmat W = { wq, dts[f], N, K };
                    float *A = rand_acts((size_t)(M * lda)), *bias = rand_acts((size_t)N);
                    float *C = lnx_amalloc(sizeof(float) * (size_t)(M * ldc));
                    float *R = lnx_amalloc(sizeof(float) * (size_t)(M * ldc));
                    float *F = lnx_amalloc(sizeof(float) * (size_t)(M * ldc));
                    for (int64_t i = 0; i < M * ldc; i++)
                        C[i] = R[i] = F[i] = (float)(i % 7);
                    int acc = (int)(mi % 2);
                    lnx_gemm(pool, M, A, lda, &W, bias, C, ldc, acc);
                    lnx_qgemm_isa(LNX_QISA_SCALAR, NULL, M, A, lda, &W, bias, R, ldc, acc);
                    lnx_gemm_ref(M, A, lda, &W, bias, F, ldc, acc);
                    float *wrow = lnx_amalloc(sizeof(float) * (size_t)K);
                    for (int64_t n = 0; n < N; n++) {
                        lnx_wmat_row(&W, n, wrow);
                        for (int64_t m = 0; m < M; m++) {
                            double mag = abs_dot(wrow, A + m * lda, K) + 1.0;
                            float c = C[m * ldc + n], r = R[m * ldc + n], fl = F[m * ldc + n];
                            if (!(fabs(c - r) <= 2e-6 * mag))
                                fail_msg("K=%lld N=%lld M=%lld [%lld][%lld]: %g vs oracle %g", (long long)K,
                                         (long long)N, (long long)M, (long long)m, (long long)n, (double)c, (double)r);
                            /* int8 activations: a relative error of about 1/254 per value, mostly averaging out */
                            assert_true(fabs(c - fl) <= 1e-2 * mag);
                        }
                        /* the padding columns of C are untouched */
                        for (int64_t m = 0; m < M; m++)
                            for (int64_t j = N; j < ldc; j++)
                                assert_true(C[m * ldc + j] == (float)((m * ldc + j) % 7));
                    }
                    lnx_afree(wrow);
                    lnx_afree(wq);
                    lnx_afree(A);
                    lnx_afree(bias);
                    lnx_afree(C);
                    lnx_afree(R);
                    lnx_afree(F);
                }
}

/* Each variant's GEMM driver (for AVX-512 VNNI: the repacked 16-row panels against 8 activation
 * rows at a time, a panel group per worker) against the scalar oracle's, on shapes that leave
 * partial panels, partial groups of activation rows and short Q4 super-blocks. */
static void variant_gemm_matches(void **state)
{
    (void)state;
    const int64_t shapes[][3] = { { 5, 16, 32 }, { 9, 17, 64 }, { 16, 33, 96 }, { 23, 48, 288 }, { 37, 70, 256 },
                                  { 64, 31, 544 } };
    const lnx_dtype dts[] = { LNX_DT_Q8, LNX_DT_Q4 };
    int ran = 0;
    for (int isa = LNX_QISA_AVX2; isa < LNX_QISA_COUNT; isa++) {
        const char *why = NULL;
        if (!lnx_qisa_runnable((lnx_qisa)isa, &why)) {
            printf("    %s GEMM: skipped: %s\n", lnx_qisa_name((lnx_qisa)isa), why);
            continue;
        }
        ran++;
        for (int f = 0; f < 2; f++)
            for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
                int64_t M = shapes[i][0], N = shapes[i][1], K = shapes[i][2], ldc = N + 1;
                uint8_t *wq = rand_qweights(dts[f], N, K);
                lnx_wmat W = { wq, dts[f], N, K };
                float *A = rand_acts((size_t)(M * K)), *bias = rand_acts((size_t)N);
                float *C = lnx_amalloc(sizeof(float) * (size_t)(M * ldc)), *R = lnx_amalloc(sizeof(float) * (size_t)(M * ldc));
                lnx_qgemm_isa((lnx_qisa)isa, pool, M, A, K, &W, bias, C, ldc, 0);
                lnx_qgemm_isa(LNX_QISA_SCALAR, NULL, M, A, K, &W, bias, R, ldc, 0);
                float *wrow = lnx_amalloc(sizeof(float) * (size_t)K);
                for (int64_t n = 0; n < N; n++) {
                    lnx_wmat_row(&W, n, wrow);
                    for (int64_t m = 0; m < M; m++) {
                        double mag = abs_dot(wrow, A + m * K, K) + 1.0;
                        if (!(fabs(C[m * ldc + n] - R[m * ldc + n]) <= 2e-6 * mag))
                            fail_msg("%s %s GEMM M=%lld N=%lld K=%lld [%lld][%lld]: %g vs oracle %g",
                                     lnx_qisa_name((lnx_qisa)isa), dts[f] == LNX_DT_Q8 ? "q8" : "q4", (long long)M,
                                     (long long)N, (long long)K, (long long)m, (long long)n, (double)C[m * ldc + n],
                                     (double)R[m * ldc + n]);
                    }
                }
                lnx_afree(wrow);
                lnx_afree(wq);
                lnx_afree(A);
                lnx_afree(bias);
                lnx_afree(C);
                lnx_afree(R);
            }
        printf("    %s GEMM: matches the scalar oracle\n", lnx_qisa_name((lnx_qisa)isa));
    }
    if (!ran)
        skip();
}

/* The GEMM variants at the formats' extremes: weights of +-1 (Q8 values +-127; Q4 levels 0 and
 * 15) against activations of +-1 (all +-127) matched in sign or opposed, so that every partial
 * sum a kernel keeps in 16 bits is at its largest: against the scalar oracle. */
static void variant_gemm_extremes(void **state)
{
    (void)state;
    const int64_t M = 19, N = 17, K = 288; /* 19 rows: the AMX tiles too (from 16), in a part-filled 32 */
    const lnx_dtype dts[] = { LNX_DT_Q8, LNX_DT_Q4 };
    float *wf = lnx_amalloc(sizeof(float) * (size_t)(N * K)), *A = lnx_amalloc(sizeof(float) * (size_t)(M * K));
    for (int64_t n = 0; n < N; n++)
        for (int64_t k = 0; k < K; k++)
            wf[n * K + k] = (n % 3 == 2 ? (k % 2 ? 1.0f : -1.0f) : (n % 3 ? 1.0f : -1.0f)) * (k % 5 == 4 && n > 8 ? -1.0f : 1.0f);
    for (int64_t m = 0; m < M; m++)
        for (int64_t k = 0; k < K; k++)
            A[m * K + k] = m % 3 == 0 ? 1.0f : m % 3 == 1 ? -1.0f : wf[(m % N) * K + k];
    int ran = 0;
    for (int isa = LNX_QISA_AVX2; isa < LNX_QISA_COUNT; isa++) {
        if (!lnx_qisa_runnable((lnx_qisa)isa, NULL))
            continue;
        ran++;
        for (int f = 0; f < 2; f++) {
            size_t rb = lnx_row_bytes(dts[f], K);
            uint8_t *wq = lnx_amalloc(rb * (size_t)N);
            for (int64_t n = 0; n < N; n++)
                lnx_quantize_row(dts[f], wf + n * K, K, wq + (size_t)n * rb);
            lnx_wmat W = { wq, dts[f], N, K };
            float *C = lnx_amalloc(sizeof(float) * (size_t)(M * N)), *R = lnx_amalloc(sizeof(float) * (size_t)(M * N));
            lnx_qgemm_isa((lnx_qisa)isa, pool, M, A, K, &W, NULL, C, N, 0);
            lnx_qgemm_isa(LNX_QISA_SCALAR, NULL, M, A, K, &W, NULL, R, N, 0);
            for (int64_t i = 0; i < M * N; i++)
                if (!(fabs(C[i] - R[i]) <= 2e-6 * ((double)K + 1.0)))
                    fail_msg("%s %s extremes [%lld]: %g vs oracle %g", lnx_qisa_name((lnx_qisa)isa),
                             dts[f] == LNX_DT_Q8 ? "q8" : "q4", (long long)i, (double)C[i], (double)R[i]);
            /* the extremes were reached: a matched row sums to about +K, an opposed one to -K */
            assert_true(fabs(R[2 * N + 2]) > 0.9 * K);
            lnx_afree(wq);
            lnx_afree(C);
            lnx_afree(R);
        }
    }
    lnx_afree(wf);
    lnx_afree(A);
    if (!ran)
        skip();
}

/* Each panel kernel on its own (13 rows of a 16-row panel against 8 activation rows), including
 * the AVX-VNNI kernels' source compiled for AVX-512 VNNI (LNX_QPANEL_VNNI256), which tests that
 * source on CPUs without AVX-VNNI: against the scalar oracle's dot products. */
static void panel_kernels_match(void **state)
{
    (void)state;
    const int64_t K = 288, nb = K / 32;
    const int nr = 13;
    const int variants[] = { LNX_QISA_AVX2, LNX_QISA_AVX512VNNI, LNX_QISA_AVXVNNI, LNX_QPANEL_VNNI256 };
    const lnx_dtype dts[] = { LNX_DT_Q8, LNX_DT_Q4 };
    int ran = 0;
    for (size_t vi = 0; vi < sizeof variants / sizeof *variants; vi++) {
        int v = variants[vi];
        const char *name = v == LNX_QPANEL_VNNI256 ? "avxvnni source as avx512vnni" : lnx_qisa_name((lnx_qisa)v);
        if (!lnx_qisa_runnable(v == LNX_QPANEL_VNNI256 ? LNX_QISA_AVX512VNNI : (lnx_qisa)v, NULL)) {
            printf("    %s panel: skipped: the CPU cannot run it\n", name);
            continue;
        }
        ran++;
        for (int f = 0; f < 2; f++) {
            uint8_t *wq = rand_qweights(dts[f], nr, K);
            size_t rb = lnx_row_bytes(dts[f], K);
            const uint8_t *rows[16];
            for (int r = 0; r < nr; r++)
                rows[r] = wq + (size_t)r * rb;
            void *panel = lnx_amalloc(lnx_qpanel_bytes(v, dts[f], K));
            lnx_qpanel_pack(v, dts[f], rows, nr, K, panel);
            float *x = rand_acts((size_t)(8 * K));
            int8_t *q = lnx_amalloc((size_t)(8 * K));
            int16_t *q16 = lnx_amalloc(sizeof(int16_t) * (size_t)(8 * K));
            float *d = lnx_amalloc(sizeof(float) * (size_t)(8 * (nb + 8))), *sm = lnx_amalloc(sizeof(float) * (size_t)(8 * (nb + 8)));
            int32_t *si = lnx_amalloc(sizeof(int32_t) * (size_t)(8 * nb));
            lnx_qpanel_run run;
            run.panel = panel;
            run.K = K;
            for (int m = 0; m < 8; m++) {
                lnx_quantize_acts(x + m * K, K, q + m * K, d + m * (nb + 8), sm + m * (nb + 8));
                lnx_widen_i8(q + m * K, K, q16 + m * K);
                for (int64_t b = 0; b < nb; b++) {
                    int32_t t = 0;
                    for (int i = 0; i < 32; i++)
                        t += q[m * K + b * 32 + i];
                    si[m * nb + b] = t;
                }
                run.q[m] = q + m * K;
                run.q16[m] = q16 + m * K;
                run.d[m] = d + m * (nb + 8);
                run.s[m] = sm + m * (nb + 8);
                run.si[m] = si + m * nb;
            }
            assert_int_equal(lnx_qpanel_kernel(v, dts[f], &run), 1);
            for (int m = 0; m < 8; m++)
                for (int r0 = 0; r0 < nr; r0 += 4) {
                    lnx_qtile t;
                    t.K = K;
                    t.pf = 0;
                    for (int i = 0; i < 4; i++) {
                        t.w[i] = rows[r0 + i < nr ? r0 + i : r0];
                        t.q[i] = run.q[m];
                        t.d[i] = run.d[m];
                        t.s[i] = run.s[m];
                        t.qn[i] = NULL;
                    }
                    lnx_qtile_run(LNX_QISA_SCALAR, dts[f], &t, 1);
                    for (int i = 0; i < 4 && r0 + i < nr; i++)
                        if (!(fabs(run.out[m][r0 + i] - t.out[0][i]) <= 1e-5 * (fabs(t.out[0][i]) + 1.0)))
                            fail_msg("%s %s panel [%d][%d]: %g vs oracle %g", name, f ? "q4" : "q8", m, r0 + i,
                                     (double)run.out[m][r0 + i], (double)t.out[0][i]);
                }
            printf("    %s %s panel: matches the scalar oracle\n", name, f ? "q4" : "q8");
            lnx_afree(wq);
            lnx_afree(panel);
            lnx_afree(x);
            lnx_afree(q);
            lnx_afree(q16);
            lnx_afree(d);
            lnx_afree(sm);
            lnx_afree(si);
        }
    }
    if (!ran)
        skip();
}

int main(void)
{
    if (lnx_pool_create(&pool, 3) != LNX_OK)
        return 1;
    printf("    quantized products on this CPU use: %s\n", lnx_qisa_name(lnx_qisa_best()));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(formats_round_trip), cmocka_unit_test(oracle_is_float_product),
        cmocka_unit_test(activation_quantizing_matches), cmocka_unit_test(avx2_matches),
        cmocka_unit_test(avx512vnni_matches), cmocka_unit_test(avxvnni_matches), cmocka_unit_test(qgemm_matches),
        cmocka_unit_test(variant_gemm_matches), cmocka_unit_test(variant_gemm_extremes),
        cmocka_unit_test(panel_kernels_match),
    };
    int rc = cmocka_run_group_tests_name("quant", tests, NULL, NULL);
    lnx_pool_free(pool);
    return rc;
}
