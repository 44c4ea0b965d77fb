/* Image preprocessing of the Hugging Face LLaVA-NeXT(-Video) processors (transformers 4.47.1,
 * LlavaNextVideoProcessor / LlavaNextImageProcessor with resample = PIL bicubic), reproduced bit
 * for bit from packed RGB24 input:
 *
 *  - the video path, per frame: shortest-edge resize, centre crop, rescale, normalise, channels
 *    first (tests/data/FIXTURES.md section 2);
 *  - the image AnyRes path: best pinpoint resolution, aspect-keeping resize, black padding, cut
 *    into patches, plus the whole image resized as patch 0; every patch then goes through the
 *    per-frame path (section 3);
 *  - the token arithmetic that goes with them (section 4).
 *
 * Every function here is reentrant; a frame preprocessor object is used by one thread at a time.
 * Pixel buffers are borrowed for the duration of a call. Failures return a negative status with
 * the detail in lnx_last_error(). */
#ifndef LNX_VISION_PREPROCESS_H
#define LNX_VISION_PREPROCESS_H

#include <stddef.h>
#include <stdint.h>

#include "../base/parallel.h"
#include "../base/status.h"
#include "../media/frames.h"

/* The only resampling filter supported: PIL's BICUBIC (preprocessor_config.json "resample": 3). */
#define LNX_RESAMPLE_BICUBIC 3

/* The preprocessing settings of preprocessor_config.json (same field names as the io config's
 * lnx_processor_cfg, so it can be filled field by field). */
typedef struct lnx_preproc_cfg {
    int32_t shortest_edge;  /* size.shortest_edge: the short side after resizing */
    int32_t crop_h, crop_w; /* crop_size: the output size of every frame or patch */
    float mean[3], std[3];  /* image_mean, image_std (as float32, like the processor) */
    double rescale_factor;  /* 1/255 */
    int32_t do_resize, do_center_crop, do_rescale, do_normalize;
    int32_t resample;       /* must be LNX_RESAMPLE_BICUBIC */
    int32_t resize_h, resize_w; /* size {"height", "width"} (OneVision): resize to exactly this; 0 = shortest edge */
} lnx_preproc_cfg;

/* The CLIP settings of LLaVA-NeXT-Video for an S x S vision input: shortest edge and crop S,
 * OpenAI CLIP mean and std, rescale 1/255, every step on, bicubic. */
void lnx_preproc_cfg_default(lnx_preproc_cfg *out, int32_t size);

/* ---- resize ---- */

/* Resizes packed RGB24 `src` (sh rows of sw pixels, src_stride bytes apart, src_stride >= 3*sw)
 * to `dst` (dh rows of dw pixels, packed without padding) exactly as Pillow's
 * Image.resize((dw, dh), Image.BICUBIC) does. Sizes 1 .. 2^24. `pool` may be NULL. Allocates the
 * filter coefficients and, when both dimensions change, one intermediate image of dw x (rows of
 * src read) pixels; frees them before returning. */
lnx_status lnx_resize_bicubic(const uint8_t *src, int32_t sw, int32_t sh, int32_t src_stride, uint8_t *dst, int32_t dw,
                              int32_t dh, lnx_pool *pool);

/* ---- per-frame path (video frames and AnyRes patches) ---- */

/* Size of the image after the resize step for a w x h input: the short side becomes
 * c->shortest_edge and the long side int(shortest_edge * long / short) (truncated); unchanged when
 * c->do_resize is 0. out[0] = height, out[1] = width. */
lnx_status lnx_preproc_resized_size(int32_t out[2], const lnx_preproc_cfg *c, int32_t w, int32_t h);

/* Size of the normalised output for a w x h input: the crop size when c->do_center_crop, else the
 * resized size. out[0] = height, out[1] = width. */
lnx_status lnx_preproc_output_size(int32_t out[2], const lnx_preproc_cfg *c, int32_t w, int32_t h);

/* A prepared per-frame preprocessor for one input size: the filter coefficients of the resize,
 * restricted to the pixels the centre crop keeps, the intermediate rows and the byte -> float
 * table of rescale + normalise. Reusing it for every frame of a video makes the per-frame work
 * allocation-free. */
typedef struct lnx_frame_prep lnx_frame_prep;

/* Validates the settings (positive sizes, finite non-zero std, bicubic) and the input size
 * (LNX_E_INVALID / LNX_E_UNSUPPORTED otherwise). *out is NULL on failure. */
lnx_status lnx_frame_prep_create(lnx_frame_prep **out, const lnx_preproc_cfg *c, int32_t w, int32_t h);
/* NULL-safe. */
void lnx_frame_prep_free(lnx_frame_prep *fp);

/* Bytes the object holds (for the 7B model's 336 crop of a 1280x720 frame: about 0.77 MB, almost
 * all of it the 720 horizontally resized rows of the 336 kept columns). */
size_t lnx_frame_prep_bytes(const lnx_frame_prep *fp);

/* Output size of this preprocessor (see lnx_preproc_output_size). */
void lnx_frame_prep_output_size(const lnx_frame_prep *fp, int32_t out[2]);

/* Preprocesses one RGB24 frame of the prepared size (h rows, `stride` bytes apart) into `out`:
 * float32 channels first, 3 x out_h x out_w. Equal to the processor's output: resize (only the
 * pixels inside the crop are computed), crop (zero pixels where a crop is larger than the image,
 * as the processor pads), x = float32(u8 * rescale_factor), (x - mean) / std in float32. One call
 * at a time per object; rows are split over `pool` (may be NULL). Allocates nothing. */
lnx_status lnx_frame_prep_run(lnx_frame_prep *fp, const uint8_t *rgb, int32_t stride, float *out, lnx_pool *pool);

/* One-shot form: prepares, runs and frees (see lnx_frame_prep_bytes for what it allocates). */
lnx_status lnx_preprocess_frame(const lnx_preproc_cfg *c, const uint8_t *rgb, int32_t w, int32_t h, int32_t stride,
                                float *out, lnx_pool *pool);

/* The video path for a whole batch: `out` holds frames->count x 3 x out_h x out_w floats (the
 * processor's pixel_values_videos without the leading batch dimension). One preprocessor serves
 * every frame, so the allocations are per batch, not per frame. */
lnx_status lnx_preprocess_frames(const lnx_preproc_cfg *c, const lnx_frames *frames, float *out, lnx_pool *pool);

/* ---- image AnyRes path ---- */

/* The geometry of one image under AnyRes, and its token layout. All sizes in pixels unless said
 * otherwise; "features" are vision-grid cells (S / patch of them per patch side). */
typedef struct lnx_anyres_plan {
    int32_t image_h, image_w;          /* original size */
    int32_t size;                      /* S: the patch side (crop size) */
    int32_t best_h, best_w;            /* selected pinpoint */
    int32_t resized_h, resized_w;      /* aspect-keeping resize for patching */
    int32_t pad_top, pad_left;         /* black rows on top (and bottom), columns left (and right) */
    int32_t padded_h, padded_w;        /* resized + 2 * pad: best size, or one less when odd */
    int32_t rows, cols;                /* patch grid (edge patches may be S - 1 pixels) */
    int32_t patches;                   /* 1 + rows * cols: the base image first */
    int32_t grid;                      /* g = S / patch: features per patch side */
    int32_t feat_h, feat_w;            /* feature grid before unpadding: g * best / S */
    int32_t unpad_top, unpad_left;     /* feature rows (top and bottom) / cols (left and right) cut */
    int32_t unpadded_rows, unpadded_cols;
    int32_t tokens;                    /* g*g + unpadded_rows * (unpadded_cols + 1) */
} lnx_anyres_plan;

/* The pinpoint the processor picks for an img_h x img_w image: the largest effective resolution
 * min(int(w*scale) * int(h*scale), w*h) with scale = min(W/w, H/h), ties to the least waste
 * H*W - effective, exact ties to the first. pinpoints[i] = {height, width}. out[0] = height,
 * out[1] = width. */
lnx_status lnx_anyres_best_resolution(int32_t out[2], int32_t img_h, int32_t img_w, const int32_t (*pinpoints)[2],
                                      int32_t npin);

/* Unpadding of a feat_h x feat_w feature grid back to the img_h x img_w aspect ratio, as the
 * processor counts it. out = {rows, cols, top, left}: the kept size and the rows (or columns) cut
 * from the top and from the bottom (left and right). */
lnx_status lnx_anyres_unpad(int32_t out[4], int32_t img_h, int32_t img_w, int32_t feat_h, int32_t feat_w);

/* Number of <image> tokens: g*g base features + rows * (cols + 1) unpadded grid features with one
 * newline per row. */
int64_t lnx_anyres_token_count(int32_t grid, int32_t unpadded_rows, int32_t unpadded_cols);

/* Number of <video> tokens per frame: (S/patch)^2 / 4 (features after the 2x2 pooling), as the
 * processor counts them. 0 when the sizes are invalid. */
int32_t lnx_video_tokens_per_frame(int32_t size, int32_t patch);

/* Computes the whole plan for an img_h x img_w image. S (`size`) must be a positive multiple of
 * `patch` (the vision patch, 14) and every pinpoint a positive multiple of S (LNX_E_INVALID). */
lnx_status lnx_anyres_plan_for(lnx_anyres_plan *out, int32_t img_h, int32_t img_w, const int32_t (*pinpoints)[2],
                               int32_t npin, int32_t size, int32_t patch);

/* The padded image of the plan: the image resized to resized_w x resized_h and placed at
 * (pad_left, pad_top) on black; `out` holds padded_h x padded_w packed RGB24 pixels. */
lnx_status lnx_anyres_padded_image(const lnx_anyres_plan *p, const uint8_t *rgb, int32_t w, int32_t h, int32_t stride,
                                   uint8_t *out, lnx_pool *pool);

/* The processor's pixel_values for one image: `out` holds p->patches x 3 x S x S floats, patch 0
 * the whole image resized to shortest_edge x shortest_edge, then the grid patches row-major, each
 * through the per-frame path. Needs c->do_center_crop with crop_h == crop_w == p->size
 * (LNX_E_UNSUPPORTED otherwise) and the image size the plan was made for (LNX_E_INVALID).
 * Allocates the padded image and one base image of shortest_edge^2 pixels. */
lnx_status lnx_preprocess_anyres(const lnx_preproc_cfg *c, const lnx_anyres_plan *p, const uint8_t *rgb, int32_t w,
                                 int32_t h, int32_t stride, float *out, lnx_pool *pool);

#endif
