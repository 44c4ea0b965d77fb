/* Reading reference tensors (tests/data/reference/...) for comparisons. */
#ifndef LNX_REFTENSOR_H
#define LNX_REFTENSOR_H

#include <stdint.h>

#include "io/safetensors.h"

/* Opens tests/data/reference/tiny-a/<name>/reference.safetensors (fails the test if absent). */
lnx_st *ref_open(const char *case_name);
/* The tensor (fails the test if absent). */
const lnx_st_tensor *ref_tensor(const lnx_st *st, const char *name);
/* An aligned float32 copy of an F32 tensor; free with free(). */
float *ref_floats(const lnx_st *st, const char *name, int64_t *numel);
/* int64 tensor copied into a fresh int64 array; free with free(). */
int64_t *ref_ints(const lnx_st *st, const char *name, int64_t *numel);
/* max |a - b| over n values. */
double ref_max_diff(const float *a, const float *b, int64_t n);
/* Asserts max |got - want(tensor)| <= tol, printing the difference; counts must match. */
void ref_check(const char *what, const float *got, int64_t n, const lnx_st *st, const char *name, double tol);

#endif
