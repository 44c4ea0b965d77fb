/* Helpers shared by the cmocka tests. */
#ifndef LNX_TESTUTIL_H
#define LNX_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

/* Path of a file under tests/data (LLAVANEXT_TEST_DATA), in a static buffer per call slot. */
const char *tu_data(const char *rel);

/* Reads a whole file; NULL when it cannot. *len receives its size. Free with free(). */
char *tu_read_file(const char *path, size_t *len);

/* Writes a file; returns 0 on success. */
int tu_write_file(const char *path, const void *data, size_t len);

/* A fresh empty directory under $TMPDIR; free the string with free() and remove with tu_rmtree. */
char *tu_tempdir(void);
void tu_rmtree(const char *path);

/* Deterministic pseudo-random floats in [-1, 1). */
void tu_fill_random(float *x, size_t n, uint64_t seed);

/* For a test run that stands for one SIMD level: when LLAVANEXT_TEST_REQUIRE_CPU names CPU
 * flags (LNX_CPU_* bits) this CPU lacks, prints why and exits 77, meson's "skipped", so that an
 * AVX-512 run on an AVX2-only CPU is reported as skipped rather than passing on another path. */
void tu_require_cpu(void);

#define assert_string_contains(haystack, needle) \
    assert_non_null(strstr((haystack), (needle)))

#endif
