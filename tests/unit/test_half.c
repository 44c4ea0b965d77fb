#include "../common/testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/cpu.h"
#include "base/half.h"

static uint32_t bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* float64 oracle: round a float to the nearest representable value of a format with `man`
 * mantissa bits, exponent range [emin, emax], ties to even, by exhaustive neighbour search. */
static void bf16_all_values_round_trip_exactly(void **state)
{
    (void)state;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = lnx_bf16_to_f32((uint16_t)h);
        assert_int_equal(bits(f), h << 16);
        uint16_t back = lnx_f32_to_bf16(f);
        if (isnan(f))
            assert_true(isnan(lnx_bf16_to_f32(back)));
        else
            assert_int_equal(back, h);
    }
}

static uint16_t bf16_oracle(float f)
{
    /* nearest of the two bf16 neighbours (truncation and truncation + 1 ulp) in double */
    uint32_t u = bits(f);
    if (isnan(f))
        return 0x7fc0;
    uint16_t lo = (uint16_t)(u >> 16);
    uint16_t hi = (uint16_t)(lo + 1);
    double dl = fabs((double)f - (double)lnx_bf16_to_f32(lo));
    double dh = fabs((double)lnx_bf16_to_f32(hi) - (double)f);
    if ((u & 0xffff) == 0)
        return lo;
    if (dl < dh)
        return lo;
    if (dh < dl)
        return hi;
    return (lo & 1) ? hi : lo;
}

static void bf16_rounding_is_nearest_even(void **state)
{
    (void)state;
    uint64_t s = 12345;
    for (int i = 0; i < 2000000; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        uint32_t u = (uint32_t)(s >> 32);
        float f = from_bits(u);
        if (isnan(f)) {
            assert_true(isnan(lnx_bf16_to_f32(lnx_f32_to_bf16(f))));
            continue;
        }
        if (isinf(f) || fabsf(f) > 3.38e38f)
            continue;
        assert_int_equal(lnx_f32_to_bf16(f), bf16_oracle(f));
    }
    /* exact ties */
    assert_int_equal(lnx_f32_to_bf16(from_bits(0x3f808000)), 0x3f80); /* tie, even below */
    assert_int_equal(lnx_f32_to_bf16(from_bits(0x3f818000)), 0x3f82); /* tie, odd below */
    assert_int_equal(lnx_f32_to_bf16(INFINITY), 0x7f80);
    assert_int_equal(lnx_f32_to_bf16(-INFINITY), 0xff80);
    assert_int_equal(lnx_f32_to_bf16(from_bits(0x7f7fffff)), 0x7f80); /* FLT_MAX rounds up to inf */
}

static void f16_all_values_round_trip_exactly(void **state)
{
    (void)state;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = lnx_f16_to_f32((uint16_t)h);
        uint16_t back = lnx_f32_to_f16(f);
        if (isnan(f)) {
            assert_true((h & 0x7c00) == 0x7c00 && (h & 0x3ff));
            assert_true(isnan(lnx_f16_to_f32(back)));
        } else {
            assert_int_equal(back, h);
        }
    }
    assert_true(lnx_f16_to_f32(0x3c00) == 1.0f);
    assert_true(lnx_f16_to_f32(0x0001) == ldexpf(1.0f, -24));
    assert_true(lnx_f16_to_f32(0x7bff) == 65504.0f);
}

static uint16_t f16_oracle(float f)
{
    /* exhaustive: find nearest finite half, ties to even; overflow per IEEE */
    if (isnan(f))
        return 0x7e00;
    double x = fabs((double)f);
    uint16_t sign = signbit(f) ? 0x8000 : 0;
    if (x >= 65520.0)
        return sign | 0x7c00;
    uint16_t best = 0;
    double bestd = INFINITY;
    /* binary search over the monotonic positive halves */
    int lo = 0, hi = 0x7bff;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if ((double)lnx_f16_to_f32((uint16_t)mid) <= x)
            lo = mid;
        else
            hi = mid - 1;
    }
    for (int c = lo; c <= lo + 1 && c <= 0x7bff; c++) {
        double d = fabs((double)lnx_f16_to_f32((uint16_t)c) - x);
        if (d < bestd || (d == bestd && (c & 1) == 0)) {
            bestd = d;
            best = (uint16_t)c;
        }
    }
    if (lo == 0x7bff && x > 65504.0) /* between max and overflow threshold */
        best = 0x7bff;
    return sign | best;
}

static void f16_rounding_is_nearest_even(void **state)
{
    (void)state;
    uint64_t s = 999;
    for (int i = 0; i < 300000; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        /* concentrate on the half range, including subnormals */
        float f = ldexpf((float)((s >> 40) & 0xffffff) / 16777216.0f + 0.5f, (int)((s >> 20) % 48) - 30);
        if (s & 1)
            f = -f;
        assert_int_equal(lnx_f32_to_f16(f), f16_oracle(f));
    }
}

static void bulk_conversions_match_scalar(void **state)
{
    (void)state;
    enum { N = 1037 };
    float src[N], out[N], out2[N];
    uint16_t h[N], h2[N];
    tu_fill_random(src, N, 3);
    for (int i = 0; i < N; i++)
        src[i] *= (float)(i % 17) * 1000.0f;
    src[5] = NAN;
    src[6] = INFINITY;
    src[7] = -0.0f;
    src[8] = 1e-7f;
    lnx_f32_to_bf16_n(src, h, N);
    for (int i = 0; i < N; i++) {
        if (isnan(src[i]))
            assert_true(isnan(lnx_bf16_to_f32(h[i])));
        else
            assert_int_equal(h[i], lnx_f32_to_bf16(src[i]));
    }
    lnx_bf16_to_f32_n(h, out, N);
    for (int i = 0; i < N; i++)
        h2[i] = (uint16_t)i * 61u;
    lnx_bf16_to_f32_n(h2, out2, N);
    for (int i = 0; i < N; i++)
        assert_int_equal(bits(out2[i]), bits(lnx_bf16_to_f32(h2[i])));
    lnx_f32_to_f16_n(src, h, N);
    for (int i = 0; i < N; i++) {
        if (isnan(src[i]))
            assert_true(isnan(lnx_f16_to_f32(h[i])));
        else
            assert_int_equal(h[i], lnx_f32_to_f16(src[i]));
    }
    lnx_f16_to_f32_n(h2, out, N);
    for (int i = 0; i < N; i++) {
        float ref = lnx_f16_to_f32(h2[i]);
        if (isnan(ref))
            assert_true(isnan(out[i]));
        else
            assert_int_equal(bits(out[i]), bits(ref));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bf16_all_values_round_trip_exactly),
        cmocka_unit_test(bf16_rounding_is_nearest_even),
        cmocka_unit_test(f16_all_values_round_trip_exactly),
        cmocka_unit_test(f16_rounding_is_nearest_even),
        cmocka_unit_test(bulk_conversions_match_scalar),
    };
    return cmocka_run_group_tests_name("half", tests, NULL, NULL);
}
