#include "pooler.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../base/alloc.h"
#include "../kernels/gemm.h"
#include "../kernels/ops.h"

lnx_status lnx_projector_bind(lnx_projector *p, const lnx_model_cfg *cfg, lnx_wstore *ws, const char *prefix)
{
    memset(p, 0, sizeof *p);
    p->in_dim = cfg->vision.hidden;
    p->out_dim = cfg->text.hidden;
    p->act = cfg->projector_act;
    char buf[256];
    lnx_status st;
    snprintf(buf, sizeof buf, "%smulti_modal_projector.linear_1.weight", prefix);
    if ((st = lnx_wstore_matrix(ws, buf, p->out_dim, p->in_dim, &p->l1)) != LNX_OK)
        return st;
    snprintf(buf, sizeof buf, "%smulti_modal_projector.linear_2.weight", prefix);
    if ((st = lnx_wstore_matrix(ws, buf, p->out_dim, p->out_dim, &p->l2)) != LNX_OK)
        return st;
    if (cfg->projector_bias) {
        snprintf(buf, sizeof buf, "%smulti_modal_projector.linear_1.bias", prefix);
        if ((st = lnx_wstore_vector(ws, buf, p->out_dim, &p->b1)) != LNX_OK)
            return st;
        snprintf(buf, sizeof buf, "%smulti_modal_projector.linear_2.bias", prefix);
        if ((st = lnx_wstore_vector(ws, buf, p->out_dim, &p->b2)) != LNX_OK)
            return st;
    }
    snprintf(buf, sizeof buf, "%simage_newline", prefix);
    /* the architecture defines it (transformers creates it whatever the checkpoint holds, so a
     * checkpoint without it would answer image prompts differently): missing is an error */
    if (cfg->use_image_newline) {
        if ((st = lnx_wstore_vector(ws, buf, p->out_dim, &p->newline)) != LNX_OK)
            return st;
    }
    return LNX_OK;
}

int32_t lnx_pool_out_side(int32_t grid, int32_t stride)
{
    return stride > 0 ? grid / stride : 0;
}

typedef struct pool_ctx {
    const float *in;
    int32_t grid, dim, stride, mode, o;
    float *out;
} pool_ctx;

static void pool_cells(void *p, int64_t begin, int64_t end, int worker)
{
    (void)worker;
    const pool_ctx *c = p;
    int64_t cells = (int64_t)c->o * c->o;
    const float inv = 1.0f / (float)(c->stride * c->stride);
    for (int64_t idx = begin; idx < end; idx++) {
        int64_t f = idx / cells, cell = idx % cells;
        int32_t oy = (int32_t)(cell / c->o), ox = (int32_t)(cell % c->o);
        float *dst = c->out + idx * c->dim;
        const float *frame = c->in + f * (int64_t)c->grid * c->grid * c->dim;
        for (int32_t d = 0; d < c->dim; d++) {
            float acc = c->mode == LNX_POOL_MAX ? -INFINITY : 0.0f;
            for (int32_t ky = 0; ky < c->stride; ky++)
                for (int32_t kx = 0; kx < c->stride; kx++) {
                    float v = frame[((int64_t)(oy * c->stride + ky) * c->grid + ox * c->stride + kx) * c->dim + d];
                    if (c->mode == LNX_POOL_MAX)
                        acc = v > acc || isnan(v) ? v : acc;
                    else
                        acc += v;
                }
            dst[d] = c->mode == LNX_POOL_MAX ? acc : acc * inv;
        }
    }
}

void lnx_pool_frames(lnx_pool *pool, const float *in, int32_t frames, int32_t grid, int32_t dim, int32_t stride,
                     int32_t mode, float *out)
{
    int32_t o = lnx_pool_out_side(grid, stride);
    if (stride == 1) {
        memcpy(out, in, sizeof(float) * (size_t)frames * (size_t)grid * (size_t)grid * (size_t)dim);
        return;
    }
    pool_ctx c = { in, grid, dim, stride, mode, o, out };
    lnx_parallel_for(pool, (int64_t)frames * o * o, pool_cells, &c);
}

lnx_status lnx_project(const lnx_projector *p, lnx_pool *pool, const float *in, int64_t n, float *out)
{
    /* the float32 hidden rows, where the products go through memory (untouched on AMX) */
    float *mid = lnx_amalloc(sizeof(float) * (size_t)n * (size_t)p->out_dim);
    if (!mid)
        return lnx_error(LNX_E_NOMEM, "out of memory projecting %lld features", (long long)n);
    lnx_gemm_mlp(p->gemm, pool, n, in, p->in_dim, &p->l1, p->b1, p->act, &p->l2, p->b2, mid, out, p->out_dim, 0);
    lnx_afree(mid);
    return LNX_OK;
}

void lnx_anyres_unpadded(int32_t img_h, int32_t img_w, int32_t grid_rows, int32_t grid_cols, int32_t g,
                         int32_t *out_rows, int32_t *out_cols, int32_t *out_row0, int32_t *out_col0)
{
    int32_t cur_h = grid_rows * g, cur_w = grid_cols * g;
    double orig_aspect = (double)img_w / (double)img_h;
    double cur_aspect = (double)cur_w / (double)cur_h;
    *out_row0 = 0;
    *out_col0 = 0;
    *out_rows = cur_h;
    *out_cols = cur_w;
    /* transformers' unpad_image: int(round(size * scale, 7)), then symmetric padding */
    if (orig_aspect > cur_aspect) {
        double scale = (double)cur_w / (double)img_w;
        int32_t new_h = (int32_t)(round((double)img_h * scale * 1e7) / 1e7);
        int32_t pad = (cur_h - new_h) / 2;
        *out_row0 = pad;
        *out_rows = cur_h - 2 * pad;
    } else {
        double scale = (double)cur_h / (double)img_h;
        int32_t new_w = (int32_t)(round((double)img_w * scale * 1e7) / 1e7);
        int32_t pad = (cur_w - new_w) / 2;
        *out_col0 = pad;
        *out_cols = cur_w - 2 * pad;
    }
}

int64_t lnx_anyres_packed_tokens(int32_t img_h, int32_t img_w, int32_t grid_rows, int32_t grid_cols, int32_t g,
                                 int32_t with_newline)
{
    int32_t r, c, r0, c0;
    lnx_anyres_unpadded(img_h, img_w, grid_rows, grid_cols, g, &r, &c, &r0, &c0);
    return (int64_t)g * g + (int64_t)r * (c + (with_newline ? 1 : 0));
}

void lnx_anyres_pack(const float *proj, int32_t img_h, int32_t img_w, int32_t grid_rows, int32_t grid_cols, int32_t g,
                     int32_t dim, const float *newline, float *out)
{
    int64_t gg = (int64_t)g * g;
    memcpy(out, proj, sizeof(float) * (size_t)(gg * dim));
    out += gg * dim;
    int32_t rows, cols, r0, c0;
    lnx_anyres_unpadded(img_h, img_w, grid_rows, grid_cols, g, &rows, &cols, &r0, &c0);
    for (int32_t y = r0; y < r0 + rows; y++) {
        int32_t py = y / g, iy = y % g;
        for (int32_t x = c0; x < c0 + cols; x++) {
            int32_t px = x / g, ix = x % g;
            const float *src = proj + ((int64_t)(1 + py * grid_cols + px) * gg + (int64_t)iy * g + ix) * dim;
            memcpy(out, src, sizeof(float) * (size_t)dim);
            out += dim;
        }
        if (newline) {
            memcpy(out, newline, sizeof(float) * (size_t)dim);
            out += dim;
        }
    }
}
