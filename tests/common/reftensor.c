#include "reftensor.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

lnx_st *ref_open(const char *case_name)
{
    char rel[256];
    snprintf(rel, sizeof rel, "reference/tiny-a/%s/reference.safetensors", case_name);
    lnx_st *st = NULL;
    int rc = lnx_st_open(&st, tu_data(rel), LNX_ST_READ);
    if (rc != 0)
        fail_msg("cannot open %s: %s", rel, lnx_last_error());
    return st;
}

const lnx_st_tensor *ref_tensor(const lnx_st *st, const char *name)
{
    const lnx_st_tensor *t = lnx_st_find(st, name);
    if (!t)
        fail_msg("reference tensor %s missing", name);
    return t;
}

float *ref_floats(const lnx_st *st, const char *name, int64_t *numel)
{
    const lnx_st_tensor *t = ref_tensor(st, name);
    assert_int_equal(t->dtype, LNX_ST_F32);
    float *out = malloc(t->nbytes + 4);
    memcpy(out, t->data, t->nbytes);
    if (numel)
        *numel = t->numel;
    return out;
}

int64_t *ref_ints(const lnx_st *st, const char *name, int64_t *numel)
{
    const lnx_st_tensor *t = ref_tensor(st, name);
    assert_int_equal(t->dtype, LNX_ST_I64);
    int64_t *out = malloc(t->nbytes + 8);
    memcpy(out, t->data, t->nbytes);
    if (numel)
        *numel = t->numel;
    return out;
}

double ref_max_diff(const float *a, const float *b, int64_t n)
{
    double m = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > m || isnan(d))
            m = isnan(d) ? INFINITY : d;
    }
    return m;
}

void ref_check(const char *what, const float *got, int64_t n, const lnx_st *st, const char *name, double tol)
{
    int64_t rn;
    float *want = ref_floats(st, name, &rn);
    if (rn != n)
        fail_msg("%s: %lld values, reference %s has %lld", what, (long long)n, name, (long long)rn);
    double d = ref_max_diff(got, want, n);
    printf("    %-28s %-32s max|diff| %.3g (tol %.0e)\n", what, name, d, tol);
    free(want);
    if (!(d <= tol))
        fail_msg("%s: max difference %g against %s exceeds %g", what, d, name, tol);
}
