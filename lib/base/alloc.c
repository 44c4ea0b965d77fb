#include "alloc.h"

#include <stdlib.h>
#include <string.h>

void *lnx_amalloc(size_t size)
{
    if (size == 0)
        size = 1;
    size_t rounded = (size + LNX_ALIGN - 1) & ~(size_t)(LNX_ALIGN - 1);
    if (rounded < size)
        return NULL;
    return aligned_alloc(LNX_ALIGN, rounded);
}

void *lnx_acalloc(size_t n, size_t size)
{
    size_t total;
    if (!lnx_mul_size(n, size, &total))
        return NULL;
    void *p = lnx_amalloc(total);
    if (p)
        memset(p, 0, total);
    return p;
}

void lnx_afree(void *p)
{
    free(p);
}

int lnx_mul_size(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a)
        return 0;
    *out = a * b;
    return 1;
}

char *lnx_strdup(const char *s)
{
    return s ? lnx_strndup(s, strlen(s)) : NULL;
}

char *lnx_strndup(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (!p)
        return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}
