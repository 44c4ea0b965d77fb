/* JPEG still images through libjpeg with its default decompression settings (islow DCT, fancy
 * upsampling), which is what Pillow uses: libav's MJPEG decoder upsamples chroma differently, so
 * its pixels would not match PIL.Image.open(...).convert('RGB'). */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>

#include <jpeglib.h>

#include "media_internal.h"

typedef struct jpeg_err {
    struct jpeg_error_mgr base;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
} jpeg_err;

static void on_error(j_common_ptr cinfo)
{
    jpeg_err *e = (jpeg_err *)cinfo->err;
    e->base.format_message(cinfo, e->message);
    longjmp(e->jump, 1);
}

/* Warnings are not printed (the library never writes to stderr). */
static void on_message(j_common_ptr cinfo)
{
    (void)cinfo;
}

lnx_status lnx_jpeg_decode_rgb(const uint8_t *data, size_t size, uint64_t max_pixels, const char *origin,
                               uint8_t **out, int *width, int *height)
{
    *out = NULL;
    struct jpeg_decompress_struct cinfo;
    jpeg_err err;
    /* Read after a longjmp, so it lives in volatile storage. */
    uint8_t *volatile rgb = NULL;
    lnx_status volatile st = LNX_OK;
    cinfo.err = jpeg_std_error(&err.base);
    err.base.error_exit = on_error;
    err.base.output_message = on_message;
    err.message[0] = 0;
    if (setjmp(err.jump)) {
        jpeg_destroy_decompress(&cinfo);
        free(rgb);
        if (st)
            return st;
        return lnx_error(LNX_E_MEDIA, "%s: JPEG decoding failed: %s", origin, err.message);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);
    if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
        jpeg_destroy_decompress(&cinfo);
        return LNX_E_UNSUPPORTED; /* the caller falls back to libav; no message needed */
    }
    uint64_t w = cinfo.image_width, h = cinfo.image_height;
    if (w == 0 || h == 0 || w > LNX_MEDIA_MAX_SIDE || h > LNX_MEDIA_MAX_SIDE || w * h > max_pixels) {
        jpeg_destroy_decompress(&cinfo);
        return lnx_error(LNX_E_LIMIT, "%s: JPEG size %llux%llu exceeds the limit (%d per side, %llu pixels)", origin,
                         (unsigned long long)w, (unsigned long long)h, LNX_MEDIA_MAX_SIDE,
                         (unsigned long long)max_pixels);
    }
    cinfo.out_color_space = JCS_RGB;
    jpeg_start_decompress(&cinfo);
    if (cinfo.output_components != 3) {
        st = lnx_error(LNX_E_MEDIA, "%s: JPEG decodes to %d components", origin, cinfo.output_components);
        longjmp(err.jump, 1);
    }
    size_t row = (size_t)w * 3;
    rgb = malloc(row * (size_t)h);
    if (!rgb) {
        st = lnx_error(LNX_E_NOMEM, "%s: out of memory for a %llux%llu image", origin, (unsigned long long)w,
                       (unsigned long long)h);
        longjmp(err.jump, 1);
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW line = rgb + (size_t)cinfo.output_scanline * row;
        if (jpeg_read_scanlines(&cinfo, &line, 1) != 1) {
            st = lnx_error(LNX_E_MEDIA, "%s: JPEG decoding stalled at row %u", origin, cinfo.output_scanline);
            longjmp(err.jump, 1);
        }
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    *out = rgb;
    *width = (int)w;
    *height = (int)h;
    return LNX_OK;
}
