/* Allocation helpers: overflow-checked sizes and 64-byte aligned buffers for SIMD and BLAS. */
#ifndef LNX_BASE_ALLOC_H
#define LNX_BASE_ALLOC_H

#include <stddef.h>
#include <stdint.h>

#define LNX_ALIGN 64

/* 64-byte aligned, uninitialised; NULL on failure or size 0 overflow. Free with lnx_afree. */
void *lnx_amalloc(size_t size);
/* Same, zero-filled, with n * size checked for overflow. */
void *lnx_acalloc(size_t n, size_t size);
void lnx_afree(void *p);

/* A buffer kept between calls and grown on demand (zero-initialise it; one user at a time):
 * scratch written afresh on every call costs a page fault per page when it is allocated for each
 * call. */
typedef struct lnx_buf {
    void *p;
    size_t bytes;
} lnx_buf;
/* At least `bytes` (64-byte aligned, contents undefined after growth); NULL when out of memory
 * (the buffer is then empty). */
void *lnx_buf_get(lnx_buf *b, size_t bytes);
void lnx_buf_free(lnx_buf *b);

/* *out = a * b; returns 0 when it overflowed size_t. */
int lnx_mul_size(size_t a, size_t b, size_t *out);

/* malloc'ed copy of a string (NULL-safe input gives NULL). */
char *lnx_strdup(const char *s);
/* malloc'ed copy of n bytes plus a terminating NUL. */
char *lnx_strndup(const char *s, size_t n);

#endif
