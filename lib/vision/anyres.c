/* The image AnyRes path of LlavaNextImageProcessor and the processor's token arithmetic. The
 * floating-point expressions mirror the Python ones (double precision, truncating int(), ceil)
 * because their rounding decides sizes at the edges. */
#include "preprocess.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../base/alloc.h"
#include "resample.h"

static int dim_ok(int32_t d)
{
    return d >= 1 && d <= LNX_RESAMPLE_MAX_DIM;
}

/* Python's a // b for b > 0. */
static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}

lnx_status lnx_anyres_best_resolution(int32_t out[2], int32_t img_h, int32_t img_w, const int32_t (*pinpoints)[2],
                                      int32_t npin)
{
    if (!dim_ok(img_h) || !dim_ok(img_w))
        return lnx_error(LNX_E_INVALID, "invalid image size %dx%d", (int)img_w, (int)img_h);
    if (!pinpoints || npin < 1)
        return lnx_error(LNX_E_INVALID, "no AnyRes pinpoints");
    int64_t best_eff = 0, best_waste = 0;
    for (int32_t i = 0; i < npin; i++) {
        int32_t H = pinpoints[i][0], W = pinpoints[i][1];
        if (!dim_ok(H) || !dim_ok(W))
            return lnx_error(LNX_E_INVALID, "invalid AnyRes pinpoint %d: [%d, %d]", (int)i, (int)H, (int)W);
        double sw = (double)W / img_w, sh = (double)H / img_h;
        double scale = sh < sw ? sh : sw;
        int64_t eff = (int64_t)((double)img_w * scale) * (int64_t)((double)img_h * scale);
        int64_t area = (int64_t)img_w * img_h;
        if (eff > area)
            eff = area;
        int64_t waste = (int64_t)W * H - eff;
        if (i == 0 || eff > best_eff || (eff == best_eff && waste < best_waste)) {
            best_eff = eff;
            best_waste = waste;
            out[0] = H;
            out[1] = W;
        }
    }
    return LNX_OK;
}

/* _get_patch_output_size: the aspect-keeping size of an h x w image fitted into H x W. */
static void fit_size(int32_t out[2], int32_t h, int32_t w, int32_t H, int32_t W)
{
    double sw = (double)W / w, sh = (double)H / h;
    if (sw < sh) {
        double nh = ceil((double)h * sw);
        out[0] = nh < H ? (int32_t)nh : H;
        out[1] = W;
    } else {
        double nw = ceil((double)w * sh);
        out[0] = H;
        out[1] = nw < W ? (int32_t)nw : W;
    }
}

lnx_status lnx_anyres_unpad(int32_t out[4], int32_t img_h, int32_t img_w, int32_t feat_h, int32_t feat_w)
{
    if (!dim_ok(img_h) || !dim_ok(img_w) || feat_h < 1 || feat_w < 1)
        return lnx_error(LNX_E_INVALID, "invalid unpadding of a %dx%d feature grid for a %dx%d image", (int)feat_w,
                         (int)feat_h, (int)img_w, (int)img_h);
    int64_t pad_h = 0, pad_w = 0;
    if ((double)img_w / img_h > (double)feat_w / feat_h)
        pad_h = floor_div(feat_h - (int64_t)img_h * feat_w / img_w, 2);
    else
        pad_w = floor_div(feat_w - (int64_t)img_w * feat_h / img_h, 2);
    if (pad_h < 0 || pad_w < 0)
        return lnx_error(LNX_E_INTERNAL, "negative unpadding for a %dx%d image", (int)img_w, (int)img_h);
    out[0] = feat_h - 2 * (int32_t)pad_h;
    out[1] = feat_w - 2 * (int32_t)pad_w;
    out[2] = (int32_t)pad_h;
    out[3] = (int32_t)pad_w;
    return LNX_OK;
}

int64_t lnx_anyres_token_count(int32_t grid, int32_t unpadded_rows, int32_t unpadded_cols)
{
    return (int64_t)grid * grid + (int64_t)unpadded_rows * ((int64_t)unpadded_cols + 1);
}

int32_t lnx_video_tokens_per_frame(int32_t size, int32_t patch)
{
    if (size < 1 || patch < 1)
        return 0;
    int64_t g = size / patch;
    return (int32_t)(g * g / 4);
}

lnx_status lnx_anyres_plan_for(lnx_anyres_plan *out, int32_t img_h, int32_t img_w, const int32_t (*pinpoints)[2],
                               int32_t npin, int32_t size, int32_t patch)
{
    if (!out)
        return lnx_error(LNX_E_INVALID, "NULL AnyRes plan");
    memset(out, 0, sizeof *out);
    /* the feature grid is size // patch per side (SigLIP at 384 with 14-pixel patches: 27, the
     * last 6 pixels of each side unused by the patch embedding) */
    if (patch < 1 || !dim_ok(size) || size < patch)
        return lnx_error(LNX_E_INVALID, "AnyRes patch size %d is smaller than the vision patch %d", (int)size,
                         (int)patch);
    int32_t best[2];
    lnx_status st = lnx_anyres_best_resolution(best, img_h, img_w, pinpoints, npin);
    if (st != LNX_OK)
        return st;
    for (int32_t i = 0; i < npin; i++) {
        if (pinpoints[i][0] % size != 0 || pinpoints[i][1] % size != 0)
            return lnx_error(LNX_E_INVALID, "AnyRes pinpoint [%d, %d] is not a multiple of the patch size %d",
                             (int)pinpoints[i][0], (int)pinpoints[i][1], (int)size);
    }
    lnx_anyres_plan p = { 0 };
    p.image_h = img_h;
    p.image_w = img_w;
    p.size = size;
    p.best_h = best[0];
    p.best_w = best[1];
    int32_t rs[2], fit[2];
    fit_size(rs, img_h, img_w, best[0], best[1]);
    p.resized_h = rs[0];
    p.resized_w = rs[1];
    /* The processor computes the padding from the resized image fitted again (the same size). */
    fit_size(fit, rs[0], rs[1], best[0], best[1]);
    p.pad_top = (best[0] - fit[0]) / 2;
    p.pad_left = (best[1] - fit[1]) / 2;
    p.padded_h = rs[0] + 2 * p.pad_top;
    p.padded_w = rs[1] + 2 * p.pad_left;
    p.rows = (p.padded_h + size - 1) / size;
    p.cols = (p.padded_w + size - 1) / size;
    int64_t patches = 1 + (int64_t)p.rows * p.cols;
    p.grid = size / patch;
    int64_t feat_h = (int64_t)p.grid * (best[0] / size), feat_w = (int64_t)p.grid * (best[1] / size);
    if (patches > INT32_MAX || feat_h > INT32_MAX || feat_w > INT32_MAX)
        return lnx_error(LNX_E_LIMIT, "AnyRes pinpoint [%d, %d] gives too many patches", (int)best[0], (int)best[1]);
    p.patches = (int32_t)patches;
    p.feat_h = (int32_t)feat_h;
    p.feat_w = (int32_t)feat_w;
    int32_t un[4];
    st = lnx_anyres_unpad(un, img_h, img_w, p.feat_h, p.feat_w);
    if (st != LNX_OK)
        return st;
    p.unpadded_rows = un[0];
    p.unpadded_cols = un[1];
    p.unpad_top = un[2];
    p.unpad_left = un[3];
    int64_t tokens = lnx_anyres_token_count(p.grid, p.unpadded_rows, p.unpadded_cols);
    if (tokens > INT32_MAX)
        return lnx_error(LNX_E_LIMIT, "an image of %dx%d needs %lld tokens", (int)img_w, (int)img_h,
                         (long long)tokens);
    p.tokens = (int32_t)tokens;
    *out = p;
    return LNX_OK;
}

static lnx_status check_input(const lnx_anyres_plan *p, const uint8_t *rgb, int32_t w, int32_t h, int32_t stride)
{
    if (!p || !rgb)
        return lnx_error(LNX_E_INVALID, "NULL argument to AnyRes preprocessing");
    if (w != p->image_w || h != p->image_h || p->size < 1)
        return lnx_error(LNX_E_INVALID, "image %dx%d does not match the AnyRes plan for %dx%d", (int)w, (int)h,
                         (int)p->image_w, (int)p->image_h);
    if (stride < 3 * (int64_t)w)
        return lnx_error(LNX_E_INVALID, "row stride %d is too small for %d RGB24 pixels", (int)stride, (int)w);
    return LNX_OK;
}

static lnx_status padded_into(const lnx_anyres_plan *p, const uint8_t *rgb, int32_t stride, uint8_t *out,
                              lnx_pool *pool)
{
    size_t row = 3 * (size_t)p->padded_w;
    memset(out, 0, row * (size_t)p->padded_h);
    lnx_resample *r;
    lnx_status st = lnx_resample_create(&r, p->image_w, p->image_h, p->resized_w, p->resized_h, 0, 0, p->resized_w,
                                        p->resized_h);
    if (st != LNX_OK)
        return st;
    lnx_rgb_sink sink = { out + (size_t)p->pad_top * row + 3 * (size_t)p->pad_left, row, NULL, 0, 0, NULL };
    lnx_resample_run(r, rgb, (size_t)stride, &sink, pool);
    lnx_resample_free(r);
    return LNX_OK;
}

lnx_status lnx_anyres_padded_image(const lnx_anyres_plan *p, const uint8_t *rgb, int32_t w, int32_t h, int32_t stride,
                                   uint8_t *out, lnx_pool *pool)
{
    lnx_status st = check_input(p, rgb, w, h, stride);
    if (st != LNX_OK)
        return st;
    if (!out)
        return lnx_error(LNX_E_INVALID, "NULL output for the padded AnyRes image");
    return padded_into(p, rgb, stride, out, pool);
}

lnx_status lnx_preprocess_anyres(const lnx_preproc_cfg *c, const lnx_anyres_plan *p, const uint8_t *rgb, int32_t w,
                                 int32_t h, int32_t stride, float *out, lnx_pool *pool)
{
    lnx_status st = check_input(p, rgb, w, h, stride);
    if (st != LNX_OK)
        return st;
    if (!c || !out)
        return lnx_error(LNX_E_INVALID, "NULL argument to AnyRes preprocessing");
    /* every patch ends S x S: by a centre crop (LLaVA-NeXT) or by resizing to exactly S x S (OneVision) */
    int exact = !c->do_center_crop && c->resize_h == p->size && c->resize_w == p->size;
    if (!exact && (!c->do_center_crop || c->crop_h != p->size || c->crop_w != p->size))
        return lnx_error(LNX_E_UNSUPPORTED, "AnyRes needs a centre crop to the %dx%d patch size", (int)p->size,
                         (int)p->size);
    int32_t base = exact ? p->size : c->shortest_edge;
    if (!dim_ok(base))
        return lnx_error(LNX_E_INVALID, "invalid shortest_edge %d", (int)base);
    size_t padded_bytes, base_bytes;
    if (!lnx_mul_size((size_t)p->padded_w * 3, (size_t)p->padded_h, &padded_bytes) ||
        !lnx_mul_size((size_t)base * 3, (size_t)base, &base_bytes))
        return lnx_error(LNX_E_LIMIT, "AnyRes image of %dx%d is too large", (int)p->padded_w, (int)p->padded_h);
    uint8_t *padded = lnx_amalloc(padded_bytes);
    uint8_t *small = lnx_amalloc(base_bytes);
    if (!padded || !small) {
        lnx_afree(padded);
        lnx_afree(small);
        return lnx_error(LNX_E_NOMEM, "cannot allocate %zu bytes for AnyRes preprocessing",
                         padded_bytes + base_bytes);
    }
    size_t per_patch = 3 * (size_t)p->size * (size_t)p->size;
    st = lnx_resize_bicubic(rgb, w, h, stride, small, base, base, pool);
    if (st == LNX_OK)
        st = lnx_preprocess_frame(c, small, base, base, 3 * base, out, pool);
    if (st == LNX_OK)
        st = padded_into(p, rgb, stride, padded, pool);
    size_t row = 3 * (size_t)p->padded_w;
    for (int32_t r = 0; st == LNX_OK && r < p->rows; r++) {
        for (int32_t col = 0; st == LNX_OK && col < p->cols; col++) {
            int32_t y0 = r * p->size, x0 = col * p->size;
            int32_t ph = p->padded_h - y0 < p->size ? p->padded_h - y0 : p->size;
            int32_t pw = p->padded_w - x0 < p->size ? p->padded_w - x0 : p->size;
            const uint8_t *src = padded + (size_t)y0 * row + 3 * (size_t)x0;
            float *dst = out + per_patch * (size_t)(1 + r * p->cols + col);
            st = lnx_preprocess_frame(c, src, pw, ph, (int32_t)row, dst, pool);
        }
    }
    lnx_afree(padded);
    lnx_afree(small);
    if (st != LNX_OK)
        lnx_error_prefix("AnyRes preprocessing of a %dx%d image", (int)w, (int)h);
    return st;
}
