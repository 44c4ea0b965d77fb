#include "../common/testutil.h"

#include <math.h>
#include <stdlib.h>

#include "base/half.h"
#include "base/parallel.h"
#include "kernels/gemm.h"

/* Builds a weight matrix of the given dtype and its exact float32 value. */
static void *make_weights(lnx_dtype dt, int64_t rows, int64_t cols, uint64_t seed, float *exact)
{
    size_t n = (size_t)(rows * cols);
    float *tmp = malloc(n * sizeof(float));
    tu_fill_random(tmp, n, seed);
    void *w = malloc(n * lnx_dtype_size(dt) + 1);
    for (size_t i = 0; i < n; i++) {
        if (dt == LNX_DT_F32) {
            ((float *)w)[i] = tmp[i];
            exact[i] = tmp[i];
        } else if (dt == LNX_DT_BF16) {
            ((uint16_t *)w)[i] = lnx_f32_to_bf16(tmp[i]);
            exact[i] = lnx_bf16_to_f32(((uint16_t *)w)[i]);
        } else {
            ((uint16_t *)w)[i] = lnx_f32_to_f16(tmp[i]);
            exact[i] = lnx_f16_to_f32(((uint16_t *)w)[i]);
        }
    }
    free(tmp);
    return w;
}

static void check_shape(lnx_pool *pool, lnx_dtype dt, int64_t M, int64_t N, int64_t K, int with_bias,
                        int accumulate)
{
    int64_t lda = K + 3, ldc = N + 5;
    float *A = malloc(sizeof(float) * (size_t)(M * lda + 1));
    float *exact = malloc(sizeof(float) * (size_t)(N * K + 1));
    float *bias = malloc(sizeof(float) * (size_t)(N + 1));
    float *C = malloc(sizeof(float) * (size_t)(M * ldc + 1));
    tu_fill_random(A, (size_t)(M * lda), 11);
    tu_fill_random(bias, (size_t)N, 12);
    tu_fill_random(C, (size_t)(M * ldc), 13);
    float *C0 = malloc(sizeof(float) * (size_t)(M * ldc + 1));
    memcpy(C0, C, sizeof(float) * (size_t)(M * ldc));
    void *wdata = make_weights(dt, N, K, 7 + (uint64_t)dt, exact);
    lnx_wmat W = { wdata, dt, N, K };
    lnx_gemm(pool, M, A, lda, &W, with_bias ? bias : NULL, C, ldc, accumulate);
    for (int64_t m = 0; m < M; m++) {
        for (int64_t n = 0; n < N; n++) {
            double ref = with_bias ? bias[n] : 0.0;
            double mag = fabs(ref);
            for (int64_t k = 0; k < K; k++) {
                ref += (double)A[m * lda + k] * exact[n * K + k];
                mag += fabs((double)A[m * lda + k] * exact[n * K + k]);
            }
            if (accumulate)
                ref += C0[m * ldc + n];
            double err = fabs(C[m * ldc + n] - ref);
            if (err > 1e-5 * (mag + 1.0)) {
                fail_msg("dtype %d M=%ld N=%ld K=%ld at (%ld,%ld): got %g want %g", dt, (long)M, (long)N,
                         (long)K, (long)m, (long)n, C[m * ldc + n], ref);
            }
        }
        /* padding columns untouched */
        for (int64_t n = N; n < ldc && m * ldc + n < M * ldc; n++)
            assert_true(C[m * ldc + n] == C0[m * ldc + n]);
    }
    free(A); free(exact); free(bias); free(C); free(C0); free(wdata);
}

static void gemm_matches_float64_at_awkward_shapes(void **state)
{
    (void)state;
    static const int64_t shapes[][3] = {
        { 1, 1, 1 }, { 1, 17, 33 }, { 3, 65, 31 }, { 4, 7, 129 }, { 5, 3, 1 }, { 17, 1, 64 },
        { 33, 130, 47 }, { 64, 64, 64 }, { 100, 257, 19 }, { 7, 1000, 130 }, { 2, 33, 1000 }, { 3, 9, 4173 },
    };
    lnx_pool *pool;
    assert_int_equal(lnx_pool_create(&pool, 3), LNX_OK);
    for (int dt = 0; dt < 3; dt++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (int var = 0; var < 4; var++)
                check_shape((var & 2) ? pool : NULL, (lnx_dtype)dt, shapes[s][0], shapes[s][1], shapes[s][2],
                            var & 1, var == 3);
    lnx_pool_free(pool);
}

static void gemm_widens_in_blocks_for_tall_weights(void **state)
{
    (void)state;
    /* K large enough that one 4 MiB block holds fewer rows than N: several blocks are used */
    check_shape(NULL, LNX_DT_BF16, 9, 300, 8192, 1, 0);
    check_shape(NULL, LNX_DT_F16, 6, 150, 8192, 0, 1);
}

static void gemm_reference_is_exact_on_integers(void **state)
{
    (void)state;
    float A[6] = { 1, 2, 3, 4, 5, 6 };     /* 2 x 3 */
    float Wf[6] = { 1, 0, -1, 2, 2, 2 };   /* 2 x 3 */
    float bias[2] = { 10, 20 };
    float C[4];
    lnx_wmat W = { Wf, LNX_DT_F32, 2, 3 };
    lnx_gemm_ref(2, A, 3, &W, bias, C, 2, 0);
    assert_true(C[0] == 8 && C[1] == 32 && C[2] == 8 && C[3] == 50);
    lnx_gemm(NULL, 2, A, 3, &W, bias, C, 2, 0);
    assert_true(C[0] == 8 && C[1] == 32 && C[2] == 8 && C[3] == 50);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gemm_reference_is_exact_on_integers),
        cmocka_unit_test(gemm_matches_float64_at_awkward_shapes),
        cmocka_unit_test(gemm_widens_in_blocks_for_tall_weights),
    };
    return cmocka_run_group_tests_name("gemm", tests, NULL, NULL);
}
