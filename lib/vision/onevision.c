#include "onevision.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../base/alloc.h"
#include "pooler.h"

int32_t lnx_onevision_pool_side(int32_t grid, int32_t stride)
{
    return stride > 0 ? (grid + stride - 1) / stride : 0;
}

/* torch's source index and weight for output index i (align_corners false, no antialias). */
static void src_index(int32_t in, int32_t out, int32_t i, int32_t *i0, int32_t *i1, float *l1)
{
    float scale = (float)in / (float)out;
    float real = scale * ((float)i + 0.5f) - 0.5f;
    if (real < 0.0f)
        real = 0.0f;
    int32_t idx = (int32_t)floorf(real);
    if (idx > in - 1)
        idx = in - 1;
    float lambda = real - (float)idx;
    lambda = lambda < 0.0f ? 0.0f : lambda > 1.0f ? 1.0f : lambda;
    *i0 = idx;
    *i1 = idx + (idx < in - 1 ? 1 : 0);
    *l1 = lambda;
}

typedef struct resize_ctx {
    const float *in;
    int32_t ih, iw, dim, oh, ow;
    float *out;
} resize_ctx;

static void resize_rows(void *p, int64_t begin, int64_t end, int worker)
{
    (void)worker;
    const resize_ctx *c = p;
    for (int64_t r = begin; r < end; r++) {
        int64_t f = r / c->oh;
        int32_t y = (int32_t)(r % c->oh), y0, y1;
        float ly;
        src_index(c->ih, c->oh, y, &y0, &y1, &ly);
        const float *img = c->in + f * (int64_t)c->ih * c->iw * c->dim;
        for (int32_t x = 0; x < c->ow; x++) {
            int32_t x0, x1;
            float lx;
            src_index(c->iw, c->ow, x, &x0, &x1, &lx);
            const float *a = img + ((int64_t)y0 * c->iw + x0) * c->dim, *b = img + ((int64_t)y0 * c->iw + x1) * c->dim;
            const float *cc = img + ((int64_t)y1 * c->iw + x0) * c->dim, *d = img + ((int64_t)y1 * c->iw + x1) * c->dim;
            float *o = c->out + (r * c->ow + x) * c->dim;
            const float h0 = 1.0f - ly, h1 = ly, w0 = 1.0f - lx, w1 = lx;
            for (int32_t k = 0; k < c->dim; k++)
                o[k] = h0 * (w0 * a[k] + w1 * b[k]) + h1 * (w0 * cc[k] + w1 * d[k]);
        }
    }
}

void lnx_bilinear_resize(lnx_pool *pool, const float *in, int32_t n, int32_t ih, int32_t iw, int32_t dim, int32_t oh,
                         int32_t ow, float *out)
{
    resize_ctx c = { in, ih, iw, dim, oh, ow, out };
    lnx_parallel_for(pool, (int64_t)n * oh, resize_rows, &c);
}

/* Python's float a // b. */
static double py_floordiv(double a, double b)
{
    double mod = fmod(a, b);
    double div = (a - mod) / b;
    if (mod != 0.0 && ((b < 0) != (mod < 0)))
        div -= 1.0;
    if (div == 0.0)
        return copysign(0.0, a / b);
    double fl = floor(div);
    return div - fl > 0.5 ? fl + 1.0 : fl;
}

void lnx_onevision_grid(int32_t rows, int32_t cols, int32_t g, int32_t max_tiles, int32_t out[2])
{
    out[0] = rows;
    out[1] = cols;
    if (max_tiles <= 0)
        return;
    double ratio = sqrt((double)((int64_t)rows * cols) / (double)((int64_t)max_tiles * g * g));
    if (ratio > 1.1) {
        out[0] = (int32_t)py_floordiv((double)rows, ratio);
        out[1] = (int32_t)py_floordiv((double)cols, ratio);
    }
}

int64_t lnx_onevision_packed_tokens(int32_t img_h, int32_t img_w, int32_t grid_rows, int32_t grid_cols, int32_t g,
                                    int32_t max_tiles, int32_t with_newline)
{
    int32_t r, c, r0, c0, rc[2];
    lnx_anyres_unpadded(img_h, img_w, grid_rows, grid_cols, g, &r, &c, &r0, &c0);
    lnx_onevision_grid(r, c, g, max_tiles, rc);
    return (int64_t)g * g + (int64_t)rc[0] * (rc[1] + (with_newline ? 1 : 0));
}

lnx_status lnx_onevision_pack(lnx_pool *pool, const float *proj, int32_t img_h, int32_t img_w, int32_t grid_rows,
                              int32_t grid_cols, int32_t g, int32_t dim, int32_t max_tiles, const float *newline,
                              float *out)
{
    int64_t gg = (int64_t)g * g;
    int32_t rows, cols, r0, c0, rc[2];
    lnx_anyres_unpadded(img_h, img_w, grid_rows, grid_cols, g, &rows, &cols, &r0, &c0);
    lnx_onevision_grid(rows, cols, g, max_tiles, rc);
    float *grid = lnx_amalloc(sizeof(float) * (size_t)rows * (size_t)cols * (size_t)dim);
    float *small = rc[0] != rows || rc[1] != cols
                       ? lnx_amalloc(sizeof(float) * (size_t)rc[0] * (size_t)rc[1] * (size_t)dim + 1)
                       : NULL;
    if (!grid || (!small && (rc[0] != rows || rc[1] != cols))) {
        lnx_afree(grid);
        lnx_afree(small);
        return lnx_error(LNX_E_NOMEM, "out of memory packing a %dx%d image", (int)img_w, (int)img_h);
    }
    /* the unpadded grid, channel-last */
    for (int32_t y = 0; y < rows; y++) {
        int32_t py = (y + r0) / g, iy = (y + r0) % g;
        for (int32_t x = 0; x < cols; x++) {
            int32_t px = (x + c0) / g, ix = (x + c0) % g;
            const float *src = proj + ((int64_t)(1 + py * grid_cols + px) * gg + (int64_t)iy * g + ix) * dim;
            memcpy(grid + ((int64_t)y * cols + x) * dim, src, sizeof(float) * (size_t)dim);
        }
    }
    const float *use = grid;
    if (small) {
        lnx_bilinear_resize(pool, grid, 1, rows, cols, dim, rc[0], rc[1], small);
        use = small;
    }
    memcpy(out, proj, sizeof(float) * (size_t)(gg * dim));
    out += gg * dim;
    for (int32_t y = 0; y < rc[0]; y++) {
        memcpy(out, use + (int64_t)y * rc[1] * dim, sizeof(float) * (size_t)rc[1] * (size_t)dim);
        out += (int64_t)rc[1] * dim;
        if (newline) {
            memcpy(out, newline, sizeof(float) * (size_t)dim);
            out += dim;
        }
    }
    lnx_afree(grid);
    lnx_afree(small);
    return LNX_OK;
}
