/* The per-frame path of the processors: shortest-edge resize, centre crop, rescale, normalise. */
#include "preprocess.h"

#include <math.h>
#include <stdlib.h>

#include "resample.h"

struct lnx_frame_prep {
    int32_t out_h, out_w;
    int32_t in_h, in_w;
    int32_t win_y, win_x; /* where the computed window of the resized image lands in the output */
    int32_t win_h, win_w;
    lnx_resample *rs;
    size_t bytes;
    float lut[3 * 256]; /* byte -> rescaled, normalised float, per channel */
};

void lnx_preproc_cfg_default(lnx_preproc_cfg *out, int32_t size)
{
    static const float mean[3] = { 0.48145466f, 0.4578275f, 0.40821073f };
    static const float std[3] = { 0.26862954f, 0.26130258f, 0.27577711f };
    *out = (lnx_preproc_cfg){ 0 };
    out->shortest_edge = size;
    out->crop_h = size;
    out->crop_w = size;
    for (int c = 0; c < 3; c++) {
        out->mean[c] = mean[c];
        out->std[c] = std[c];
    }
    out->rescale_factor = 1.0 / 255.0;
    out->do_resize = 1;
    out->do_center_crop = 1;
    out->do_rescale = 1;
    out->do_normalize = 1;
    out->resample = LNX_RESAMPLE_BICUBIC;
}

static int dim_ok(int32_t d)
{
    return d >= 1 && d <= LNX_RESAMPLE_MAX_DIM;
}

static lnx_status check_cfg(const lnx_preproc_cfg *c)
{
    if (!c)
        return lnx_error(LNX_E_INVALID, "preprocessing settings are NULL");
    if (c->resample != LNX_RESAMPLE_BICUBIC)
        return lnx_error(LNX_E_UNSUPPORTED, "resample filter %d is not supported (only bicubic, 3)", (int)c->resample);
    if (c->do_resize && !dim_ok(c->shortest_edge))
        return lnx_error(LNX_E_INVALID, "invalid shortest_edge %d", (int)c->shortest_edge);
    if (c->do_resize && (c->resize_h || c->resize_w) && (!dim_ok(c->resize_h) || !dim_ok(c->resize_w)))
        return lnx_error(LNX_E_INVALID, "invalid resize size %dx%d", (int)c->resize_w, (int)c->resize_h);
    if (c->do_center_crop && (!dim_ok(c->crop_h) || !dim_ok(c->crop_w)))
        return lnx_error(LNX_E_INVALID, "invalid crop size %dx%d", (int)c->crop_w, (int)c->crop_h);
    if (c->do_rescale && !isfinite(c->rescale_factor))
        return lnx_error(LNX_E_INVALID, "rescale_factor is not finite");
    for (int ch = 0; c->do_normalize && ch < 3; ch++) {
        if (!isfinite(c->mean[ch]) || !isfinite(c->std[ch]) || c->std[ch] == 0.0f)
            return lnx_error(LNX_E_INVALID, "image_mean/image_std[%d] = %g/%g is not usable", ch, (double)c->mean[ch],
                             (double)c->std[ch]);
    }
    return LNX_OK;
}

static lnx_status check_image(int32_t w, int32_t h, int32_t stride)
{
    if (!dim_ok(w) || !dim_ok(h) || stride < 3 * (int64_t)w)
        return lnx_error(LNX_E_INVALID, "invalid RGB24 image %dx%d with row stride %d", (int)w, (int)h, (int)stride);
    return LNX_OK;
}

/* Python's a // 2. */
static int32_t floor_half(int32_t a)
{
    return a >= 0 ? a / 2 : -((1 - a) / 2);
}

/* The size after the resize step, for settings already checked. */
static lnx_status resized_size(int32_t out[2], const lnx_preproc_cfg *c, int32_t w, int32_t h)
{
    out[0] = h;
    out[1] = w;
    if (!c->do_resize)
        return LNX_OK;
    /* int(S * long / short): the exact quotient's floor, since S * long < 2^53 leaves the double
     * division no room to round up to the next integer. */
    if (c->resize_h > 0 && c->resize_w > 0) {
        out[0] = c->resize_h;
        out[1] = c->resize_w;
        return LNX_OK;
    }
    int32_t s = c->shortest_edge;
    int64_t other = w <= h ? (int64_t)s * h / w : (int64_t)s * w / h;
    if (other > LNX_RESAMPLE_MAX_DIM)
        return lnx_error(LNX_E_LIMIT, "resizing %dx%d to a short side of %d gives a side of %lld pixels", (int)w,
                         (int)h, (int)s, (long long)other);
    out[0] = w <= h ? (int32_t)other : s;
    out[1] = w <= h ? s : (int32_t)other;
    return LNX_OK;
}

lnx_status lnx_preproc_resized_size(int32_t out[2], const lnx_preproc_cfg *c, int32_t w, int32_t h)
{
    lnx_status st = check_cfg(c);
    if (st == LNX_OK)
        st = check_image(w, h, 3 * w);
    return st == LNX_OK ? resized_size(out, c, w, h) : st;
}

lnx_status lnx_preproc_output_size(int32_t out[2], const lnx_preproc_cfg *c, int32_t w, int32_t h)
{
    lnx_status st = lnx_preproc_resized_size(out, c, w, h);
    if (st == LNX_OK && c->do_center_crop) {
        out[0] = c->crop_h;
        out[1] = c->crop_w;
    }
    return st;
}

/* The value each byte becomes: float32(v * rescale) like numpy's float64 product cast down, then
 * (x - mean) / std in float32. */
static void fill_lut(float *lut, const lnx_preproc_cfg *c)
{
    for (int ch = 0; ch < 3; ch++) {
        for (int v = 0; v < 256; v++) {
            float x = c->do_rescale ? (float)((double)v * c->rescale_factor) : (float)v;
            if (c->do_normalize) {
                float d = x - c->mean[ch];
                x = d / c->std[ch];
            }
            lut[ch * 256 + v] = x;
        }
    }
}

lnx_status lnx_frame_prep_create(lnx_frame_prep **out, const lnx_preproc_cfg *c, int32_t w, int32_t h)
{
    *out = NULL;
    int32_t rs[2];
    lnx_status st = lnx_preproc_resized_size(rs, c, w, h);
    if (st != LNX_OK)
        return st;
    lnx_frame_prep *fp = calloc(1, sizeof *fp);
    if (!fp)
        return lnx_error(LNX_E_NOMEM, "out of memory");
    fp->in_h = h;
    fp->in_w = w;
    fp->out_h = c->do_center_crop ? c->crop_h : rs[0];
    fp->out_w = c->do_center_crop ? c->crop_w : rs[1];
    /* Output pixel (y, x) is resized pixel (y + top, x + left); outside the resized image it is a
     * zero byte, as the processor pads a crop larger than the image. */
    int32_t top = floor_half(rs[0] - fp->out_h), left = floor_half(rs[1] - fp->out_w);
    int32_t y0 = top > 0 ? top : 0, x0 = left > 0 ? left : 0;
    int32_t y1 = top + fp->out_h < rs[0] ? top + fp->out_h : rs[0];
    int32_t x1 = left + fp->out_w < rs[1] ? left + fp->out_w : rs[1];
    fp->win_y = y0 - top;
    fp->win_x = x0 - left;
    fp->win_h = y1 - y0;
    fp->win_w = x1 - x0;
    fill_lut(fp->lut, c);
    st = lnx_resample_create(&fp->rs, w, h, rs[1], rs[0], x0, y0, fp->win_w, fp->win_h);
    if (st != LNX_OK) {
        free(fp);
        return st;
    }
    fp->bytes = sizeof *fp + lnx_resample_bytes(fp->rs);
    *out = fp;
    return LNX_OK;
}

void lnx_frame_prep_free(lnx_frame_prep *fp)
{
    if (!fp)
        return;
    lnx_resample_free(fp->rs);
    free(fp);
}

size_t lnx_frame_prep_bytes(const lnx_frame_prep *fp)
{
    return fp ? fp->bytes : 0;
}

void lnx_frame_prep_output_size(const lnx_frame_prep *fp, int32_t out[2])
{
    out[0] = fp->out_h;
    out[1] = fp->out_w;
}

lnx_status lnx_frame_prep_run(lnx_frame_prep *fp, const uint8_t *rgb, int32_t stride, float *out, lnx_pool *pool)
{
    if (!fp || !rgb || !out)
        return lnx_error(LNX_E_INVALID, "NULL argument to frame preprocessing");
    lnx_status st = check_image(fp->in_w, fp->in_h, stride);
    if (st != LNX_OK)
        return st;
    size_t plane = (size_t)fp->out_h * (size_t)fp->out_w;
    if (fp->win_h != fp->out_h || fp->win_w != fp->out_w) {
        for (size_t ch = 0; ch < 3; ch++) {
            for (size_t i = 0; i < plane; i++)
                out[ch * plane + i] = fp->lut[ch * 256];
        }
    }
    lnx_rgb_sink sink = { NULL, 0, out + (size_t)fp->win_y * (size_t)fp->out_w + (size_t)fp->win_x, plane,
                          (size_t)fp->out_w, fp->lut };
    lnx_resample_run(fp->rs, rgb, (size_t)stride, &sink, pool);
    return LNX_OK;
}

lnx_status lnx_preprocess_frame(const lnx_preproc_cfg *c, const uint8_t *rgb, int32_t w, int32_t h, int32_t stride,
                                float *out, lnx_pool *pool)
{
    lnx_frame_prep *fp;
    lnx_status st = lnx_frame_prep_create(&fp, c, w, h);
    if (st != LNX_OK)
        return st;
    st = lnx_frame_prep_run(fp, rgb, stride, out, pool);
    lnx_frame_prep_free(fp);
    return st;
}

lnx_status lnx_preprocess_frames(const lnx_preproc_cfg *c, const lnx_frames *frames, float *out, lnx_pool *pool)
{
    if (!frames || !frames->data || !out)
        return lnx_error(LNX_E_INVALID, "NULL argument to video preprocessing");
    if (frames->count < 1)
        return LNX_OK;
    lnx_frame_prep *fp;
    lnx_status st = lnx_frame_prep_create(&fp, c, frames->width, frames->height);
    if (st != LNX_OK)
        return st;
    size_t per_frame = 3 * (size_t)fp->out_h * (size_t)fp->out_w;
    for (int32_t i = 0; i < frames->count && st == LNX_OK; i++)
        st = lnx_frame_prep_run(fp, lnx_frame_ptr(frames, i), 3 * frames->width, out + (size_t)i * per_frame, pool);
    lnx_frame_prep_free(fp);
    return st;
}

lnx_status lnx_resize_bicubic(const uint8_t *src, int32_t sw, int32_t sh, int32_t src_stride, uint8_t *dst, int32_t dw,
                              int32_t dh, lnx_pool *pool)
{
    if (!src || !dst)
        return lnx_error(LNX_E_INVALID, "NULL image passed to resize");
    lnx_status st = check_image(sw, sh, src_stride);
    if (st != LNX_OK)
        return st;
    lnx_resample *r;
    st = lnx_resample_create(&r, sw, sh, dw, dh, 0, 0, dw, dh);
    if (st != LNX_OK)
        return st;
    lnx_rgb_sink sink = { dst, 3 * (size_t)dw, NULL, 0, 0, NULL };
    lnx_resample_run(r, src, (size_t)src_stride, &sink, pool);
    lnx_resample_free(r);
    return LNX_OK;
}
