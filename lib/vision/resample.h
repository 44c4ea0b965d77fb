/* Bicubic resampling of packed RGB24 images, bit-exact with Pillow's Image.resize(size, BICUBIC)
 * (the resize the Hugging Face image processors use). Internal to lib/vision.
 *
 * The algorithm is Pillow's separable convolution: a horizontal pass, then a vertical pass, each
 * skipped when its dimension is unchanged; the bicubic kernel (a = -0.5) is widened by the
 * shrink factor when downscaling; per-output weights are normalised in double precision, then
 * rounded to 22-bit fixed point; every pass rounds and clamps its result to uint8. */
#ifndef LNX_VISION_RESAMPLE_H
#define LNX_VISION_RESAMPLE_H

#include <stddef.h>
#include <stdint.h>

#include "../base/parallel.h"
#include "../base/status.h"

/* Largest accepted width or height. Pillow computes the resampling box in float, which is exact
 * up to 2^24. */
#define LNX_RESAMPLE_MAX_DIM (1 << 24)

/* Where the resampled pixels go: either packed RGB24 rows, or three float planes (channels
 * first) through a per-channel lookup table from byte value to float. Pixel (0, 0) of the sink is
 * the first pixel of the resampler's window. */
typedef struct lnx_rgb_sink {
    uint8_t *rgb;        /* packed RGB24 output, used when lut is NULL */
    size_t rgb_stride;   /* bytes between rows of rgb */
    float *planes;       /* channel c of pixel (y, x) at planes[c * plane_stride + y * row_stride + x] */
    size_t plane_stride; /* floats between the channel planes */
    size_t row_stride;   /* floats between rows of a plane */
    const float *lut;    /* [3 * 256]: lut[c * 256 + v] is written for byte v of channel c */
} lnx_rgb_sink;

/* A prepared resize of sw x sh to dw x dh that produces only the window of the output that
 * starts at (wx, wy) and is ww x wh pixels (the whole output when the window is 0, 0, dw, dh).
 * Every produced pixel is identical to the same pixel of the full resize. It owns its
 * coefficients and its intermediate buffer, so one run at a time per object. */
typedef struct lnx_resample lnx_resample;

/* Sizes must be 1 .. LNX_RESAMPLE_MAX_DIM and the window non-empty and inside the output
 * (LNX_E_INVALID otherwise). *out is NULL on failure. */
lnx_status lnx_resample_create(lnx_resample **out, int32_t sw, int32_t sh, int32_t dw, int32_t dh, int32_t wx,
                               int32_t wy, int32_t ww, int32_t wh);
/* NULL-safe. */
void lnx_resample_free(lnx_resample *r);

/* Bytes the object holds (coefficients and intermediate rows). */
size_t lnx_resample_bytes(const lnx_resample *r);

/* Resamples `src` (sh rows of sw packed RGB24 pixels, src_stride bytes apart) into the sink,
 * splitting rows over `pool` (NULL = the calling thread). */
void lnx_resample_run(lnx_resample *r, const uint8_t *src, size_t src_stride, const lnx_rgb_sink *sink,
                      lnx_pool *pool);

#endif
