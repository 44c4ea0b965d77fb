/* Pictures -> packed RGB24: swscale with PyAV's settings, display rotation, host frames. */
#include <string.h>

#include <libavutil/imgutils.h>

#include "media_internal.h"

/* PyAV converts into av_image_alloc(..., align 16) buffers; doing the same keeps swscale on the
 * same code paths (its SIMD converters write whole blocks into the row padding). */
#define RGB_ALIGN 16

static lnx_status ensure_tmp(lnx_rgb_conv *c, int w, int h)
{
    if (c->tmp && c->tmp_w == w && c->tmp_h == h)
        return LNX_OK;
    av_freep(&c->tmp_data[0]);
    c->tmp = NULL;
    int ret = av_image_alloc(c->tmp_data, c->tmp_linesize, w, h, AV_PIX_FMT_RGB24, RGB_ALIGN);
    if (ret < 0)
        return lnx_error(LNX_E_NOMEM, "cannot allocate a %dx%d RGB picture", w, h);
    c->tmp = c->tmp_data[0];
    c->tmp_size = (size_t)ret;
    c->tmp_w = w;
    c->tmp_h = h;
    return LNX_OK;
}

/* Copies the w x h RGB24 picture (rows of `stride` bytes) into packed dst, turned clockwise. */
static void rotate_rgb(const uint8_t *src, int stride, int w, int h, int rotation, uint8_t *dst)
{
    size_t row = (size_t)w * 3;
    if (rotation == 0) {
        for (int y = 0; y < h; y++)
            memcpy(dst + (size_t)y * row, src + (size_t)y * (size_t)stride, row);
        return;
    }
    if (rotation == 180) {
        for (int y = 0; y < h; y++) {
            const uint8_t *s = src + (size_t)(h - 1 - y) * (size_t)stride;
            uint8_t *d = dst + (size_t)y * row;
            for (int x = 0; x < w; x++)
                memcpy(d + (size_t)x * 3, s + (size_t)(w - 1 - x) * 3, 3);
        }
        return;
    }
    /* Quarter turns: the output is h wide and w high. */
    size_t orow = (size_t)h * 3;
    for (int y = 0; y < w; y++) {
        uint8_t *d = dst + (size_t)y * orow;
        for (int x = 0; x < h; x++) {
            /* 90: out(y, x) = in(h-1-x, y); 270: out(y, x) = in(x, w-1-y) */
            int sy = rotation == 90 ? h - 1 - x : x;
            int sx = rotation == 90 ? y : w - 1 - y;
            memcpy(d + (size_t)x * 3, src + (size_t)sy * (size_t)stride + (size_t)sx * 3, 3);
        }
    }
}

lnx_status lnx_rgb_convert(lnx_rgb_conv *c, const uint8_t *const src[4], const int src_stride[4], int src_w,
                           int src_h, enum AVPixelFormat src_fmt, int dst_w, int dst_h, int rotation, uint8_t *dst)
{
    c->sws = sws_getCachedContext(c->sws, src_w, src_h, src_fmt, dst_w, dst_h, AV_PIX_FMT_RGB24, SWS_BILINEAR, NULL,
                                  NULL, NULL);
    if (!c->sws) {
        const char *name = av_get_pix_fmt_name(src_fmt);
        return lnx_error(LNX_E_UNSUPPORTED, "cannot convert %dx%d %s pictures to %dx%d RGB24", src_w, src_h,
                         name ? name : "?", dst_w, dst_h);
    }
    lnx_status st = ensure_tmp(c, dst_w, dst_h);
    if (st)
        return st;
    int ret = sws_scale(c->sws, src, src_stride, 0, src_h, c->tmp_data, c->tmp_linesize);
    if (ret < 0)
        return lnx_error(LNX_E_MEDIA, "RGB24 conversion of a %dx%d picture failed", src_w, src_h);
    rotate_rgb(c->tmp, c->tmp_linesize[0], dst_w, dst_h, rotation, dst);
    return LNX_OK;
}

void lnx_rgb_conv_free(lnx_rgb_conv *c)
{
    sws_freeContext(c->sws);
    c->sws = NULL;
    av_freep(&c->tmp_data[0]);
    c->tmp = NULL;
}

lnx_status lnx_frames_from_host(lnx_frames **out, int32_t pix_fmt, const uint8_t *const planes[3],
                                const int32_t strides[3], int32_t width, int32_t height)
{
    if (!out)
        return lnx_error(LNX_E_INVALID, "lnx_frames_from_host: out is NULL");
    *out = NULL;
    if (!planes || !strides)
        return lnx_error(LNX_E_INVALID, "host frame: NULL planes or strides");
    if (width <= 0 || height <= 0 || width > LNX_MEDIA_MAX_SIDE || height > LNX_MEDIA_MAX_SIDE)
        return lnx_error(width <= 0 || height <= 0 ? LNX_E_INVALID : LNX_E_LIMIT, "host frame: bad size %dx%d",
                         (int)width, (int)height);
    enum AVPixelFormat fmt;
    int nplanes;
    switch (pix_fmt) {
    case LNX_PIX_RGB24: fmt = AV_PIX_FMT_RGB24; nplanes = 1; break;
    case LNX_PIX_YUV420P: fmt = AV_PIX_FMT_YUV420P; nplanes = 3; break;
    case LNX_PIX_NV12: fmt = AV_PIX_FMT_NV12; nplanes = 2; break;
    default: return lnx_error(LNX_E_INVALID, "host frame: unknown pixel format %d", (int)pix_fmt);
    }
    if (fmt != AV_PIX_FMT_RGB24 && ((width | height) & 1))
        return lnx_error(LNX_E_INVALID, "host frame: %s needs an even size, got %dx%d", av_get_pix_fmt_name(fmt),
                         (int)width, (int)height);
    int need[4];
    if (av_image_fill_linesizes(need, fmt, width) < 0)
        return lnx_error(LNX_E_INVALID, "host frame: bad size %dx%d", (int)width, (int)height);
    for (int i = 0; i < nplanes; i++) {
        if (!planes[i])
            return lnx_error(LNX_E_INVALID, "host frame: plane %d is NULL", i);
        if (strides[i] < need[i])
            return lnx_error(LNX_E_INVALID, "host frame: stride %d of plane %d is below the row size %d",
                             (int)strides[i], i, need[i]);
    }
    lnx_frames *f;
    lnx_status st = lnx_frames_alloc(&f, 1, width, height, 0);
    if (st)
        return st;
    if (fmt == AV_PIX_FMT_RGB24) {
        rotate_rgb(planes[0], strides[0], width, height, 0, f->data);
        *out = f;
        return LNX_OK;
    }
    /* Copy into padded libav-style planes: swscale's SIMD readers may read past the row end. */
    uint8_t *data[4] = {0};
    int ls[4] = {0};
    if (av_image_alloc(data, ls, width, height, fmt, 64) < 0) {
        lnx_frames_free(f);
        return lnx_error(LNX_E_NOMEM, "host frame: out of memory");
    }
    const uint8_t *src[4] = {planes[0], planes[1], nplanes > 2 ? planes[2] : NULL, NULL};
    int sstride[4] = {strides[0], strides[1], nplanes > 2 ? strides[2] : 0, 0};
    av_image_copy(data, ls, src, sstride, fmt, width, height);
    lnx_rgb_conv conv = {0};
    st = lnx_rgb_convert(&conv, (const uint8_t *const *)data, ls, width, height, fmt, width, height, 0, f->data);
    lnx_rgb_conv_free(&conv);
    av_freep(&data[0]);
    if (st) {
        lnx_frames_free(f);
        return st;
    }
    *out = f;
    return LNX_OK;
}
