#include "frames.h"

#include <math.h>
#include <stdlib.h>

#include "../base/alloc.h"

lnx_status lnx_frames_alloc(lnx_frames **out, int32_t count, int32_t width, int32_t height, uint64_t max_bytes)
{
    *out = NULL;
    if (count < 0 || width <= 0 || height <= 0)
        return lnx_error(LNX_E_INVALID, "invalid frame batch %d x %dx%d", (int)count, (int)width, (int)height);
    size_t bytes;
    if (!lnx_mul_size((size_t)width, (size_t)height, &bytes) || !lnx_mul_size(bytes, 3, &bytes) ||
        !lnx_mul_size(bytes, (size_t)count, &bytes) || (max_bytes && bytes > max_bytes))
        return lnx_error(LNX_E_LIMIT, "%d frames of %dx%d need more memory than the %llu byte limit allows",
                         (int)count, (int)width, (int)height, (unsigned long long)max_bytes);
    lnx_frames *f = calloc(1, sizeof *f);
    if (!f)
        return lnx_error(LNX_E_NOMEM, "out of memory");
    f->count = count;
    f->width = width;
    f->height = height;
    f->data = lnx_amalloc(bytes);
    f->index = malloc(sizeof *f->index * (size_t)(count ? count : 1));
    f->time = malloc(sizeof *f->time * (size_t)(count ? count : 1));
    if (!f->data || !f->index || !f->time) {
        lnx_frames_free(f);
        return lnx_error(LNX_E_NOMEM, "cannot allocate %zu bytes for %d frames of %dx%d", bytes, (int)count,
                         (int)width, (int)height);
    }
    for (int32_t i = 0; i < count; i++) {
        f->index[i] = -1;
        f->time[i] = NAN;
    }
    *out = f;
    return LNX_OK;
}

void lnx_frames_free(lnx_frames *f)
{
    if (!f)
        return;
    lnx_afree(f->data);
    free(f->index);
    free(f->time);
    free(f);
}
