/* Each sampler against its definition on hand-made logits. */
#include "../common/testutil.h"

#include <math.h>
#include <stdlib.h>

#include "llm/sampling.h"

#define V 8

static lnx_sample_scratch ss;

static int setup(void **s)
{
    (void)s;
    return lnx_sample_scratch_init(&ss, V) == LNX_OK ? 0 : -1;
}

static int teardown(void **s)
{
    (void)s;
    lnx_sample_scratch_free(&ss);
    return 0;
}

static const float base[V] = { 1.0f, 3.0f, 2.0f, -1.0f, 3.0f, 0.5f, -2.0f, 2.5f };

/* Draws many samples and returns the empirical distribution. */
static void histogram(const lnx_sampler_cfg *c, double *freq, int draws, const int32_t *hist, int nh)
{
    lnx_rng rng;
    lnx_rng_seed(&rng, 42);
    int count[V] = { 0 };
    for (int i = 0; i < draws; i++) {
        float l[V];
        memcpy(l, base, sizeof l);
        count[lnx_sample(c, &rng, l, V, hist, nh, &ss)]++;
    }
    for (int i = 0; i < V; i++)
        freq[i] = (double)count[i] / draws;
}

static void softmax_ref(const float *x, const int *keep, double temp, double *p)
{
    double mx = -INFINITY, sum = 0;
    for (int i = 0; i < V; i++)
        if (keep[i] && x[i] / temp > mx)
            mx = x[i] / temp;
    for (int i = 0; i < V; i++) {
        p[i] = keep[i] ? exp(x[i] / temp - mx) : 0;
        sum += p[i];
    }
    for (int i = 0; i < V; i++)
        p[i] /= sum;
}

static void assert_close_dist(const double *got, const double *want)
{
    for (int i = 0; i < V; i++)
        if (fabs(got[i] - want[i]) > 0.01)
            fail_msg("token %d: frequency %.4f, expected %.4f", i, got[i], want[i]);
}

static void greedy_takes_first_maximum(void **s)
{
    (void)s;
    lnx_sampler_cfg c = { 0.0f, 0, 1.0f, 0.0f, 1.0f };
    lnx_rng rng;
    lnx_rng_seed(&rng, 1);
    float l[V];
    memcpy(l, base, sizeof l);
    assert_int_equal(lnx_sample(&c, &rng, l, V, NULL, 0, &ss), 1); /* 1 and 4 tie: first wins */
    assert_int_equal(lnx_argmax(base, V), 1);
}

static void temperature_scales_the_softmax(void **s)
{
    (void)s;
    lnx_sampler_cfg c = { 0.7f, 0, 1.0f, 0.0f, 1.0f };
    double got[V], want[V];
    int keep[V] = { 1, 1, 1, 1, 1, 1, 1, 1 };
    histogram(&c, got, 200000, NULL, 0);
    softmax_ref(base, keep, 0.7, want);
    assert_close_dist(got, want);
}

static void top_k_keeps_k_largest_and_ties(void **s)
{
    (void)s;
    /* k = 3: values 3, 3, 2.5 */
    lnx_sampler_cfg c = { 1.0f, 3, 1.0f, 0.0f, 1.0f };
    double got[V], want[V];
    int keep[V] = { 0, 1, 0, 0, 1, 0, 0, 1 };
    histogram(&c, got, 200000, NULL, 0);
    softmax_ref(base, keep, 1.0, want);
    assert_close_dist(got, want);
    /* k = 1 with a tie at the top keeps both (transformers keeps every value >= the k-th) */
    lnx_sampler_cfg c1 = { 1.0f, 1, 1.0f, 0.0f, 1.0f };
    int keep1[V] = { 0, 1, 0, 0, 1, 0, 0, 0 };
    histogram(&c1, got, 100000, NULL, 0);
    softmax_ref(base, keep1, 1.0, want);
    assert_close_dist(got, want);
}

static void top_p_keeps_smallest_prefix_reaching_p(void **s)
{
    (void)s;
    double p[V];
    int all[V] = { 1, 1, 1, 1, 1, 1, 1, 1 };
    softmax_ref(base, all, 1.0, p);
    /* sorted: 1 (3), 4 (3), 7 (2.5), 2 (2), 0 (1), ... ; p(1)+p(4) = 0.56.., + p(7) = 0.74.. */
    double two = p[1] + p[4];
    lnx_sampler_cfg c = { 1.0f, 0, (float)(two + 0.01), 0.0f, 1.0f };
    double got[V], want[V];
    int keep[V] = { 0, 1, 0, 0, 1, 0, 0, 1 };
    histogram(&c, got, 200000, NULL, 0);
    softmax_ref(base, keep, 1.0, want);
    assert_close_dist(got, want);
}

static void min_p_drops_tokens_below_fraction_of_top(void **s)
{
    (void)s;
    /* p_i / p_max = exp(x_i - 3): keep x >= 3 + ln(0.3) = 1.796: ids 1, 2, 4, 7 */
    lnx_sampler_cfg c = { 1.0f, 0, 1.0f, 0.3f, 1.0f };
    double got[V], want[V];
    int keep[V] = { 0, 1, 1, 0, 1, 0, 0, 1 };
    histogram(&c, got, 200000, NULL, 0);
    softmax_ref(base, keep, 1.0, want);
    assert_close_dist(got, want);
}

static void repetition_penalty_divides_positive_multiplies_negative(void **s)
{
    (void)s;
    float l[V];
    memcpy(l, base, sizeof l);
    int32_t hist[5] = { 1, 3, 1, 1, 6 };
    lnx_repetition_penalty(l, V, hist, 5, 2.0f, &ss);
    assert_true(l[1] == 1.5f);  /* 3 / 2, once despite three occurrences */
    assert_true(l[3] == -2.0f); /* -1 * 2 */
    assert_true(l[6] == -4.0f);
    assert_true(l[0] == 1.0f && l[4] == 3.0f);
    /* greedy after the penalty: 4 now wins */
    lnx_sampler_cfg c = { 0.0f, 0, 1.0f, 0.0f, 2.0f };
    lnx_rng rng;
    lnx_rng_seed(&rng, 1);
    memcpy(l, base, sizeof l);
    assert_int_equal(lnx_sample(&c, &rng, l, V, hist, 5, &ss), 4);
}

static void seeded_sampling_is_reproducible(void **s)
{
    (void)s;
    lnx_sampler_cfg c = { 1.3f, 5, 0.95f, 0.01f, 1.1f };
    int32_t a[64], b[64];
    for (int rep = 0; rep < 2; rep++) {
        lnx_rng rng;
        lnx_rng_seed(&rng, 1234);
        for (int i = 0; i < 64; i++) {
            float l[V];
            memcpy(l, base, sizeof l);
            (rep ? b : a)[i] = lnx_sample(&c, &rng, l, V, rep ? b : a, i, &ss);
        }
    }
    assert_memory_equal(a, b, sizeof a);
    lnx_rng r1, r2;
    lnx_rng_seed(&r1, 1);
    lnx_rng_seed(&r2, 2);
    assert_true(lnx_rng_uniform(&r1) != lnx_rng_uniform(&r2));
    for (int i = 0; i < 1000; i++) {
        double u = lnx_rng_uniform(&r1);
        assert_true(u >= 0.0 && u < 1.0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(greedy_takes_first_maximum),
        cmocka_unit_test(temperature_scales_the_softmax),
        cmocka_unit_test(top_k_keeps_k_largest_and_ties),
        cmocka_unit_test(top_p_keeps_smallest_prefix_reaching_p),
        cmocka_unit_test(min_p_drops_tokens_below_fraction_of_top),
        cmocka_unit_test(repetition_penalty_divides_positive_multiplies_negative),
        cmocka_unit_test(seeded_sampling_is_reproducible),
    };
    return cmocka_run_group_tests_name("sampling", tests, setup, teardown);
}
